"""Every manifest's plugin configuration, read by `sni-guard check` with sni-guard's own parser
(`sni_guard::config::Settings::from_json`, what Envoy runs when it loads the filter): a field
renamed in the filter breaks this test, not a user's gateway."""

import pytest

from e2e.support import cli
from e2e.support import manifests as m

FILES = m.manifest_files() + [m.MANIFEST_DIR / "envoy.yaml"]
PLACEHOLDER = "0" * 64


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_plugin_config_parses_with_the_filters_parser(path, tmp_path):
    text = path.read_text()
    if PLACEHOLDER in text:
        # The examples' placeholder digest is refused, and only it...
        result = cli.run("check", path)
        flat = " ".join(result.stdout.split())
        assert result.returncode == 1 and "is the examples' placeholder (64 zeros)" in flat, result.stdout
        assert "the filter refuses" not in flat, result.stdout
        # ...so with a real one, as a user applies it, the file passes.
        path = tmp_path / path.name
        path.write_text(text.replace(PLACEHOLDER, "7d" * 32))
    result = cli.run("check", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": refused:" not in result.stdout and " accepted, 0 refused." in result.stdout, result.stdout


def test_the_parser_check_is_real():
    """A renamed field and a bad host are refused, with the field named; stdin works."""
    result = cli.run("check", "-", stdin='{"server": [{"hosts": ["a.example.com"]}]}')
    assert result.returncode == 1 and "unknown field `server`" in " ".join(result.stdout.split()), result.stdout
    result = cli.run("check", "-", stdin='{"servers": [{"hosts": ["a.*.com"]}]}')
    assert result.returncode == 1 and "servers[0].hosts[0]" in result.stdout, result.stdout
