"""dry_run: the coalesced request sni-guard would answer 421 passes through (to the 404 of a's
route table) and is counted. Its own Envoy, so the counters start at zero."""

import pytest

from e2e.support import envoy as envoy_support
from e2e.support.h2client import CoalescingClient


@pytest.fixture(scope="module")
def envoy_dry_run(certs, workdir):
    plugin = envoy_support.plugin_configuration(envoy_support.load_example())
    plugin["mode"] = "dry_run"
    with envoy_support.Envoy(envoy_support.prepare(certs, plugin_config=plugin), workdir, name="dry-run") as envoy:
        yield envoy


def test_dry_run_lets_the_coalesced_request_through_and_counts_it(certs, envoy_dry_run):
    with CoalescingClient(envoy_dry_run.port, str(certs.ca)) as client:
        responses = client.get("a.example.com") + client.get("b.example.com")
        assert [(r.status, r.connection) for r in responses] == [(200, 0), (404, 0)]
    expected = {"wasmcustom.sni_guard.checked": 2, "wasmcustom.sni_guard.dry_run_mismatch": 1,
                "wasmcustom.sni_guard.rejected": 0}
    assert envoy_dry_run.wait_for_stats(expected) == expected
    assert "sni-guard dry run: would answer 421" in envoy_dry_run.stderr_path.read_text()
