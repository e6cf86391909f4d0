"""The monitoring rules (monitoring/prometheusrule.yaml) in a real Prometheus scraping
an Istio-shaped gateway (issue #22): Envoy set up with the repository's observability settings
and fed the WasmPlugin `sni-guard config` writes as istiod and istio-agent deliver it
(e2e/support/istio_install.py), scraped every second at `/stats/prometheus` (what istio-proxy
serves on port 15090 and pilot-agent merges on 15020), the rules evaluated every second.

The dry-run review rules return exactly the requests the test sent per pair of servers; the
rates and alerts see the pairs, the configuration Envoy refused at first load and the update it
rejected; and every series the rules select exists in the scrape, except istio-agent's (no
istio-agent here: its counter is covered by the promtool unit tests only)."""

from __future__ import annotations

import re

import pytest

from e2e.support import curl as curl_support
from e2e.support import istio_install, istiod, prometheus, readme

POD = "istio-ingressgateway-0"
DRY_RUN_SENT = [("a.example.com", "b.example.com"), ("a.example.com", "b.example.com"),
                ("c.example.com", "b.example.com")]
ENFORCE_SENT = [("a.example.com", "b.example.com")] * 3
PAIR = ("connection_server", "host_server")


@pytest.fixture(scope="module")
def monitored(certs, workdir):
    """The gateway in dry_run on `gateway_https`, plus a listener whose own plugin (another
    sni-guard WasmPlugin, in istio-ingress) Envoy refuses at first load; and Prometheus."""
    try:
        prometheus.tool("prometheus")
    except prometheus.MissingPrometheus as e:
        pytest.fail(str(e), pytrace=False)
    directory = workdir / "prometheus"
    installed = istio_install.install(directory, mode="dry_run")
    refused = istiod.WasmPlugin("sni-guard", "istio-ingress", dict(
        installed.plugin.spec, pluginConfig=dict(installed.plugin.spec["pluginConfig"], mode="block")))
    running = istio_install.start_gateway(certs, installed.registry, directory, {
        "gateway_https": [installed.plugin], "refused_at_first_load": [refused]})
    try:
        rules = prometheus.write_rules_file(directory / "rules")
        targets = {"istio-ingressgateway": (f"127.0.0.1:{running.envoy.admin_port}", "/stats/prometheus",
                                            {"namespace": "istio-system", "pod": POD})}
        with prometheus.Prometheus(directory / "server", targets, [rules]) as server:
            yield installed.plugin, running, server
    finally:
        running.stop()


def by_pair(result) -> dict[tuple[str, str], float]:
    return {tuple(labels[k] for k in PAIR): value for labels, value in result}


def send(certs, port: int, requests) -> list[int]:
    return [curl_support.status(certs, port, sni, host) for sni, host in requests]


def test_the_rules_load_and_every_series_they_select_is_scraped(monitored):
    _, _, server = monitored
    up = server.wait_for("up", lambda r: bool(r) and r[0][1] == 1.0)
    assert [(labels["job"], labels["pod"], value) for labels, value in up] == [("istio-ingressgateway", POD, 1.0)], (
        server.log_tail())
    selectors = set()
    for rule in prometheus.rules().values():
        selectors |= set(re.findall(r"\b(?:sni_guard|envoy)_[a-z_]+\b(?![:(])", rule["expr"]))
        selectors |= set(re.findall(r'\{__name__=~"[^"]+"\}', rule["expr"]))
    selectors -= {"sni_guard_rejected_by_server", "sni_guard_dry_run_mismatch_by_server"}  # per pair: test below
    for selector in sorted(selectors):
        assert server.wait_for(f"count({selector})", bool), f"{selector}: no such series in the scrape"
    agent = [rule for rule in prometheus.rules().values() if "istio_agent_" in rule["expr"]]
    assert [r["alert"] for r in agent] == ["SniGuardModuleFetchFailed"]


def send_in_two_rounds(certs, server, port: int, requests, record: str, status: int) -> dict:
    """Sends one request of each pair, waits until `record` counts them (a pair's counter is
    created with its first request, so `rate` sees only what comes after its first scrape),
    then the rest; returns `record` once it counts them all."""
    first, rest, seen = [], [], set()
    for request in requests:
        (rest if request in seen else first).append(request)
        seen.add(request)
    for batch, sent in ((first, first), (rest, requests)):
        assert send(certs, port, batch) == [status] * len(batch)
        expected = {}
        for pair in sent:
            expected[pair] = expected.get(pair, 0.0) + 1.0
        counted = by_pair(server.wait_for(record, lambda r, expected=expected: by_pair(r) == expected))
        assert counted == expected, record
    return counted


def test_dry_run_review_per_pair_is_exact(certs, monitored):
    _, running, server = monitored
    record = "gateway:sni_guard_dry_run_mismatch_by_server:sum"
    expected = {("a.example.com", "b.example.com"): 2.0, ("c.example.com", "b.example.com"): 1.0}
    assert send_in_two_rounds(certs, server, running.ports["gateway_https"], DRY_RUN_SENT, record, 404) == expected
    recorded = server.query(record)
    assert all(labels["namespace"] == "istio-system" and "pod" not in labels for labels, _ in recorded)
    # The README's query over the dry run's days gives the same counts.
    (review,) = readme.block_after("# the dry run's would-be 421s per pair of servers, over 7 days")
    assert by_pair(server.query(review)) == expected, review
    # Both pairs have a rate; only a->b got requests after its counter's first scrape.
    rates = by_pair(server.wait_for("gateway:sni_guard_dry_run_mismatch_by_server:rate5m", lambda r: len(r) == 2))
    assert set(rates) == set(expected) and rates[("a.example.com", "b.example.com")] > 0, rates
    assert server.wait_for("gateway:sni_guard_dry_run_mismatch:rate5m", lambda r: r and r[0][1] > 0)


def test_the_configuration_refused_at_first_load_is_the_one_alerted(certs, monitored):
    plugin, running, server = monitored
    assert send(certs, running.ports["refused_at_first_load"], [("a.example.com", "a.example.com")]) == [500]
    expr = prometheus.rules()["SniGuardNoConfiguration"]["expr"]
    result = server.wait_for(expr, bool)
    assert [(labels["resource"], labels["pod"]) for labels, _ in result] == [
        ("extensions_istio_io_trafficextension_istio_ingress_sni_guard_istio_translated_wasmplugin", POD)], result


def test_enforce_then_a_rejected_update(certs, monitored):
    plugin, running, server = monitored
    port = running.ports["gateway_https"]
    assert running.istiod.push(running.envoy, plugin.updated("2", pluginConfig=dict(
        plugin.spec["pluginConfig"], mode="enforce"))) == "accepted"
    expected = {("a.example.com", "b.example.com"): 3.0}
    assert send_in_two_rounds(certs, server, port, ENFORCE_SENT, "gateway:sni_guard_rejected_by_server:sum",
                              421) == expected
    for record in ("gateway:sni_guard_rejected_by_server:rate5m", "gateway:sni_guard_rejected_by_server:rate1h"):
        rates = by_pair(server.wait_for(record, lambda r: len(r) == 1))
        assert set(rates) == set(expected) and all(v > 0 for v in rates.values()), record
    assert server.wait_for("gateway:sni_guard_rejected:rate5m", lambda r: r and r[0][1] > 0)

    assert running.istiod.push(running.envoy, plugin.updated("3", pluginConfig=dict(
        plugin.spec["pluginConfig"], mode="block"))) == "rejected"
    assert send(certs, port, ENFORCE_SENT[:1]) == [421], "the previous configuration stays in force"

    firing = server.wait_for_firing("SniGuardUpdateRejected")
    assert [(a["labels"]["pod"], a["labels"]["resource"]) for a in firing] == [
        (POD, "extensions_istio_io_trafficextension_istio_system_sni_guard_ingressgateway_istio_translated"
              "_wasmplugin")], (
        server.alerts())
    assert all(h == "ok" for h in server.rule_health().values()), server.rule_health()
