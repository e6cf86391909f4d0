"""Every manifest's plugin configuration parses with sni-guard's own parser
(`sni_guard::config::Settings::from_json`, via `cargo run --example check_config`): a field
renamed in the filter breaks this test, not a user's gateway."""

import subprocess

import pytest

from tests.support import manifests as m

DOCUMENTS = m.all_documents()


def check_config(json_text: str) -> subprocess.CompletedProcess:
    return subprocess.run(["cargo", "run", "-q", "--example", "check_config"], input=json_text,
                          capture_output=True, text=True, cwd=m.ROOT, timeout=600)


@pytest.fixture(scope="module", autouse=True)
def built():
    # Compile once, so the per-manifest runs below are quick and a build error is reported once.
    result = subprocess.run(["cargo", "build", "-q", "--example", "check_config"], cwd=m.ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name,document", DOCUMENTS, ids=[n for n, _ in DOCUMENTS])
def test_plugin_config_parses_with_the_filters_parser(name, document):
    result = check_config(m.plugin_config_json(document))
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stdout + result.stderr


def test_the_parser_check_is_real():
    """A renamed field and a bad host are refused, with the field named."""
    result = check_config('{"server": [{"hosts": ["a.example.com"]}]}')
    assert result.returncode == 1 and "unknown field `server`" in result.stdout
    result = check_config('{"servers": [{"hosts": ["a.*.com"]}]}')
    assert result.returncode == 1 and "servers[0].hosts[0]" in result.stdout
