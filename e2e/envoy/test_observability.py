"""What an operator sees of sni-guard in an Istio gateway set up as the README's Adopt section
says (issue #22): the gateway chart's annotations (monitoring/gateway-values.yaml:
the per-pair tags, Envoy's ECDS counters kept), istiod's access-log provider and the gateway's
Telemetry (istiod-values.yaml, telemetry.yaml), then the WasmPlugin `sni-guard config` writes,
delivered as istiod and istio-agent deliver it (e2e/support/istio_install.py), in Envoy at
istio-proxy's log level (`warning`).

In dry_run nothing is answered 421, yet every would-be 421 shows: in the log (under the plugin
name Istio gives it), per pair of servers in Prometheus, and on its access-log line. The README
shows these lines; the test compares them with what Envoy printed. Over HTTP/3 (the example's
QUIC listener, with the same Istio stats and access-log settings) the same counters and marks."""

import re

import pytest

from e2e.support import curl as curl_support
from e2e.support import envoy as envoy_support
from e2e.support import h3client, istio_install, istio_telemetry, istiod, readme

MISDIRECTED = [("a.example.com", "b.example.com"), ("a.example.com", "b.example.com"),
               ("c.example.com", "b.example.com")]
SAME_SERVER = ("c.example.com", "d.example.com")
# (mode, Istio naming): 1.30+ translates a WasmPlugin into a TrafficExtension and names the
# plugin after it; 1.29 and before name it after the WasmPlugin.
GATEWAYS = [("dry_run", "1.30"), ("dry_run", "1.29"), ("enforce", "1.30")]


@pytest.fixture(scope="module", params=GATEWAYS, ids=[f"{m}-istio{n}" for m, n in GATEWAYS])
def gateway(request, certs, workdir):
    mode, naming = request.param
    directory = workdir / f"observability-{mode}-{naming}"
    installed = istio_install.install(directory, mode=mode)
    running = istio_install.start_gateway(certs, installed.registry, directory,
                                          {"gateway_https": [installed.plugin]}, naming=naming)
    try:
        statuses = [curl_support.status(certs, running.envoy.port, sni, host) for sni, host in MISDIRECTED]
        statuses.append(curl_support.status(certs, running.envoy.port, *SAME_SERVER))
        yield mode, istiod.plugin_name(installed.plugin, naming), running.envoy, statuses
    finally:
        running.stop()


def test_statuses(gateway):
    mode, _, _, statuses = gateway
    assert statuses == [404 if mode == "dry_run" else 421] * len(MISDIRECTED) + [200]


def test_counters_per_pair_as_prometheus_scrapes_them(gateway):
    mode, _, envoy, _ = gateway
    total = "dry_run_mismatch" if mode == "dry_run" else "rejected"
    envoy.wait_for_stats({"wasmcustom.sni_guard.checked": 4})
    assert envoy.prometheus_totals() == {"sni_guard_checked": 4, f"sni_guard_{total}": 3,
                                         "sni_guard_dry_run_mismatch" if mode == "enforce" else "sni_guard_rejected": 0}
    assert envoy.prometheus_pairs() == {(total, "a.example.com", "b.example.com"): 2,
                                        (total, "c.example.com", "b.example.com"): 1}
    text = envoy.admin("/stats/prometheus")
    # Istio's inclusion list is in force (the HTTP connection manager's counters are dropped),
    # and the annotation keeps the ECDS counters the alerts read.
    assert "envoy_http_downstream_rq_total" not in text
    ecds = r"^envoy_extension_config_discovery_http_filter_\w+_sni_guard\w*_update_success\{\} 1$"
    assert re.search(ecds, text, re.M)
    if mode == "dry_run":
        shown = readme.block_after("pilot-agent request GET stats/prometheus | grep '^sni_guard'")
        scraped = [line for line in text.splitlines() if line.startswith("sni_guard")]
        assert shown == scraped, "README, Adopt in Istio, step 5"


def test_access_log_lines(gateway):
    mode, _, envoy, _ = gateway
    lines = envoy.wait_for_access_log(lambda line: "sni_guard=" in line, count=4)
    fields = [dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line)) for line in lines]
    mark = "dry_run_421" if mode == "dry_run" else "421"
    assert sorted((f["sni"], f["authority"]) for f in fields if f["sni_guard"] == mark) == sorted(MISDIRECTED)
    assert [(f["sni"], f["authority"], f["sni_guard"]) for f in fields if f["sni_guard"] == "-"] == [
        (*SAME_SERVER, "-")]
    assert all(f["client"] == "127.0.0.1" and f["ua"].startswith('"curl/') for f in fields), lines
    if mode == "enforce":
        assert all(f["details"] == "sni_guard_misdirected_request" for f in fields if f["sni_guard"] == "421")
    shown = readme.block_after("-c istio-proxy | grep " + {"dry_run": "sni_guard=", "enforce": "sni_guard=421"}[mode])
    for shown_line in shown:
        assert any(readme.matches(shown_line, line) for line in lines), (shown_line, lines)


def test_log_lines_carry_istios_plugin_name(gateway):
    mode, plugin_name, envoy, _ = gateway
    log = envoy.stderr_path.read_text(errors="replace").splitlines()
    would = [line for line in log if "sni-guard dry run: would answer 421" in line]
    if mode == "enforce":
        assert would == [], "enforce logs each 421 at debug only"
        return
    # At istio-proxy's default level, each would-be 421 (up to the log bound) is a warning, in
    # istio-proxy's log format, under the plugin name Istio gives the filter.
    assert len(would) == len(MISDIRECTED), log
    assert all(re.fullmatch(rf"\S+Z\twarning\tenvoy wasm \S+context\.cc:\d+\twasm log {re.escape(plugin_name)} "
                            r"sni-guard: sni-guard dry run: would answer 421: .*\tthread=\d+", line)
               for line in would), would
    if plugin_name.endswith(istiod.SYNTHETIC_MARKER):
        (shown,) = readme.block_after("-c istio-proxy | grep 'sni-guard dry run'")
        assert readme.matches(shown, would[0]), (shown, would[0])


@pytest.fixture(scope="module", params=["dry_run", "enforce"])
def quic_gateway(request, certs, workdir):
    """The example (its QUIC listener included) with the settings the Adopt section applies."""
    plugin = envoy_support.plugin_configuration(envoy_support.load_example())
    plugin["mode"] = request.param
    config = istio_telemetry.Observability.shipped().apply(
        envoy_support.without_matcher(envoy_support.prepare(certs, plugin_config=plugin)))
    with envoy_support.Envoy(config, workdir, name=f"observability-h3-{request.param}", log_level="warning") as envoy:
        yield request.param, envoy


def test_over_http3_the_same_counters_and_marks(certs, quic_gateway):
    mode, envoy = quic_gateway
    for sni, host in MISDIRECTED:
        assert h3client.get(envoy.quic_port, sni, host, ca=certs.ca).status == (404 if mode == "dry_run" else 421)
    assert h3client.get(envoy.quic_port, *SAME_SERVER, ca=certs.ca).status == 200
    total = "dry_run_mismatch" if mode == "dry_run" else "rejected"
    envoy.wait_for_stats({f"wasmcustom.sni_guard.{total}": 3})
    assert envoy.prometheus_pairs() == {(total, "a.example.com", "b.example.com"): 2,
                                        (total, "c.example.com", "b.example.com"): 1}
    lines = envoy.wait_for_access_log(lambda line: "sni_guard=" in line, count=4)
    fields = [dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line)) for line in lines]
    mark = "dry_run_421" if mode == "dry_run" else "421"
    assert sorted((f["sni"], f["authority"]) for f in fields if f["sni_guard"] == mark) == sorted(MISDIRECTED), lines
