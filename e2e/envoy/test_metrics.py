"""sni-guard's counters as Prometheus scrapes them, after a known mix of requests on a fresh
Envoy. Envoy prints Wasm-defined counters without its `envoy_` prefix and without the
`wasmcustom.` it shows at /stats: `sni_guard_checked{} 5`; the per-pair counters carry the two
labels the example's `stats_config` (Istio: `extraStatTags`) declares."""

import time

import pytest

from e2e.support import curl as curl_support
from e2e.support import envoy as envoy_support
from e2e.support.h2client import CoalescingClient


@pytest.fixture(scope="module")
def envoy_metrics(certs, workdir):
    with envoy_support.Envoy(envoy_support.prepare(certs), workdir, name="metrics") as envoy:
        yield envoy


def test_prometheus_shows_the_counters(curl, certs, envoy_metrics):
    assert envoy_metrics.prometheus_totals() == {
        "sni_guard_checked": 0, "sni_guard_rejected": 0, "sni_guard_dry_run_mismatch": 0}
    # 5 requests checked: 2 misdirected (answered 421), 3 passed (c+d share a server; the
    # coalescing client retries b on a connection of its own).
    assert curl_support.status(certs, envoy_metrics.port, "a.example.com", "b.example.com", "--http1.1") == 421
    assert curl_support.status(certs, envoy_metrics.port, "c.example.com", "d.example.com", "--http2") == 200
    with CoalescingClient(envoy_metrics.port, str(certs.ca)) as client:
        assert [r.status for r in client.get("a.example.com") + client.get("b.example.com")] == [200, 421, 200]
    expected = {"sni_guard_checked": 5, "sni_guard_rejected": 2, "sni_guard_dry_run_mismatch": 0}
    # `checked` reaches Envoy on the module's 1-second tick: poll for it.
    deadline = time.monotonic() + 3
    while envoy_metrics.prometheus_totals() != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert envoy_metrics.prometheus_totals() == expected
    assert envoy_metrics.prometheus_pairs() == {("rejected", "a.example.com", "b.example.com"): 2}
