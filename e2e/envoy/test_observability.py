"""What an operator sees of sni-guard in an Istio gateway, reproduced in Envoy as istio-proxy
runs it: the log at its default level (`warning`), Istio's stats inclusion list (only `wasm`-
prefixed Wasm stats kept), the two tags Istio's `extraStatTags: [connection_server,
host_server]` generates, and an access log that prints sni-guard's mark
(`%FILTER_STATE(wasm.sni_guard:PLAIN)%`). In dry_run nothing is answered 421, yet every
would-be 421 shows: in the log, per pair of servers in Prometheus, and on its access-log line,
over HTTP/2 and over HTTP/3 alike."""

import copy
import re

import pytest

from e2e.support import curl as curl_support
from e2e.support import envoy as envoy_support
from e2e.support import h3client

# Istio's default bootstrap `stats_matcher` (pkg/bootstrap, tools/packaging/common/envoy_bootstrap.json):
# the inclusion list that decides which Envoy stats istio-proxy keeps.
ISTIO_STATS_MATCHER = {"inclusion_list": {"patterns": [
    {"prefix": "reporter="}, {"prefix": "cluster_manager"}, {"prefix": "listener_manager"},
    {"prefix": "server"}, {"prefix": "cluster.xds-grpc"}, {"prefix": "wasm"},
    {"suffix": "rbac.allowed"}, {"suffix": "rbac.denied"}, {"suffix": "shadow_allowed"},
    {"suffix": "shadow_denied"}, {"safe_regex": {"regex": r"vhost\..*\.route\..*"}},
    {"prefix": "component"}, {"prefix": "istio"}]}}


def istio_extra_stat_tag(tag: str) -> dict:
    """The stats tag istio-agent writes into the bootstrap for one `extraStatTags` entry."""
    return {"tag_name": tag, "regex": f"({tag}=\\.=(.*?);\\.;)"}


ACCESS_LOG_FORMAT = ("sni=%REQUESTED_SERVER_NAME% authority=%REQ(:AUTHORITY)% status=%RESPONSE_CODE% "
                     "details=%RESPONSE_CODE_DETAILS% sni_guard=%FILTER_STATE(wasm.sni_guard:PLAIN)%\n")


def as_istio_proxy(config: dict) -> dict:
    config = copy.deepcopy(config)
    config["stats_config"] = {"stats_matcher": ISTIO_STATS_MATCHER,
                              "stats_tags": [istio_extra_stat_tag("connection_server"),
                                             istio_extra_stat_tag("host_server")]}
    for hcm in envoy_support.connection_managers(config):
        log_format = {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}}
        hcm["access_log"][0]["typed_config"]["log_format"] = log_format
    return config


# Each mode over HTTP/2 (curl, the TLS listener) and over HTTP/3 (the QUIC listener): the same
# counters, log lines and access-log marks.
@pytest.fixture(scope="module", params=[("dry_run", "h2"), ("enforce", "h2"), ("dry_run", "h3"), ("enforce", "h3")],
                ids=["dry_run-h2", "enforce-h2", "dry_run-h3", "enforce-h3"])
def gateway(request, certs, workdir):
    mode, transport = request.param
    plugin = envoy_support.plugin_configuration(envoy_support.load_example())
    plugin["mode"] = mode
    config = as_istio_proxy(envoy_support.without_matcher(envoy_support.prepare(certs, plugin_config=plugin)))
    with envoy_support.Envoy(config, workdir, name=f"observability-{mode}-{transport}", log_level="warning") as envoy:
        yield mode, transport, envoy


def status(certs, envoy, transport: str, sni: str, host: str) -> int:
    if transport == "h3":
        return h3client.get(envoy.quic_port, sni, host, ca=certs.ca).status
    return curl_support.status(certs, envoy.port, sni, host)


def test_would_be_421s_show_in_log_metrics_and_access_log(certs, gateway):
    mode, transport, envoy = gateway
    misdirected = [("a.example.com", "b.example.com"), ("a.example.com", "c.example.com"),
                   ("c.example.com", "b.example.com")]
    for sni, host in misdirected:
        assert status(certs, envoy, transport, sni, host) == (404 if mode == "dry_run" else 421), (sni, host)
    assert status(certs, envoy, transport, "c.example.com", "d.example.com") == 200

    total = "dry_run_mismatch" if mode == "dry_run" else "rejected"
    expected = {(total, "a.example.com", "b.example.com"): 1, (total, "a.example.com", "c.example.com"): 1,
                (total, "c.example.com", "b.example.com"): 1}
    envoy.wait_for_stats({f"wasmcustom.sni_guard.{total}": 3})
    assert envoy.prometheus_pairs() == expected

    mark = "dry_run_421" if mode == "dry_run" else "421"
    lines = envoy.wait_for_access_log(lambda line: "sni_guard=" in line, count=4)
    marked = sorted((re.search(r"sni=(\S+)", line).group(1), re.search(r"authority=(\S+)", line).group(1))
                    for line in lines if f"sni_guard={mark}" in line)
    assert marked == sorted(misdirected), lines
    assert any("authority=d.example.com" in line and "sni_guard=-" in line for line in lines), lines
    if mode == "enforce":
        assert all("details=sni_guard_misdirected_request" in line for line in lines if "sni_guard=421" in line)

    log = envoy.stderr_path.read_text(errors="replace")
    would = [line for line in log.splitlines() if "sni-guard dry run: would answer 421" in line]
    if mode == "dry_run":
        # At istio-proxy's default level, each would-be 421 (up to the log bound) is a warning.
        assert len(would) == 3 and all("[warning]" in line for line in would), log
    else:
        assert would == [], "enforce logs each 421 at debug only"
