"""Gateway API's HTTPRouteHTTPSListenerDetectMisdirectedRequests (GEP-3567) in real Envoy.

The Gateway `same-namespace-with-https-listener` and its HTTPRoutes
(fixtures/gateway-api-conformance.yaml) become an Envoy bootstrap shaped as istiod builds it
(e2e/support/istio_gateway.py); sni-guard's configuration is what `sni-guard config` prints for
that file. Every case sends exactly its SNI and `:authority` over HTTP/2, with path
/detect-misdirected-requests, to one Envoy per installation: without sni-guard (to show what it
fixes), and with sni-guard as a WasmPlugin installs it (form a) and behind Envoy's same-name
matcher as shipped for plain Envoy and the EnvoyFilter (form b). Both forms must answer alike.

Beyond the 15 cases: the same Gateway without its catch-all listener (a Host no listener serves
gets the route table's 404, not 421), SNIs with a trailing dot and connections without SNI (Envoy
puts both in the catch-all chain), and malformed `:authority` values.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest
import yaml

from e2e.support import envoy as envoy_support
from e2e.support import exact_client, istio_gateway
from e2e.support import gateway_api_conformance as conformance
from e2e.support import matcher as matcher_support
from e2e.support.gateway_api_conformance import CASES, Case, Outcome, check

FORMS = [None, istio_gateway.WASM_FORM, istio_gateway.MATCHER_FORM]
FORM_IDS = ["no-sni-guard", "wasm-filter", "matcher"]
# --- the Envoys --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gateway_certs(workdir):
    return envoy_support.make_certs(workdir / "gateway-api-certs", conformance.CERTIFICATE_NAMES)


@pytest.fixture(scope="module")
def docs():
    return conformance.documents()


@pytest.fixture(scope="module")
def config_with_catch_all():
    return conformance.cli_config(conformance.FIXTURE)


@pytest.fixture(scope="module")
def docs_without_catch_all(docs):
    return conformance.without_catch_all(docs)


@pytest.fixture(scope="module")
def config_without_catch_all(docs_without_catch_all, workdir):
    manifest = workdir / "gateway-api-without-catch-all.yaml"
    manifest.write_text(yaml.safe_dump_all(docs_without_catch_all, sort_keys=False))
    return conformance.cli_config(manifest)


def start(servers, certs, plugin_config, form, workdir, name):
    config = istio_gateway.bootstrap(servers, certs, plugin_config=plugin_config, form=form)
    return envoy_support.Envoy(config, workdir, name=name)


@pytest.fixture(scope="module", params=FORMS, ids=FORM_IDS)
def gateway(request, docs, config_with_catch_all, gateway_certs, workdir):
    """The conformance Gateway in Envoy, in one installation form (None: no sni-guard)."""
    name = f"conformance-{FORM_IDS[FORMS.index(request.param)]}"
    with start(conformance.servers(docs), gateway_certs, config_with_catch_all, request.param, workdir, name) as envoy:
        envoy.form = request.param
        yield envoy


@pytest.fixture(scope="module", params=FORMS, ids=FORM_IDS)
def gateway_without_catch_all(request, docs_without_catch_all, config_without_catch_all, gateway_certs, workdir):
    name = f"no-catch-all-{FORM_IDS[FORMS.index(request.param)]}"
    with start(conformance.servers(docs_without_catch_all), gateway_certs, config_without_catch_all,
               request.param, workdir, name) as envoy:
        envoy.form = request.param
        yield envoy


# --- the configuration -------------------------------------------------------------------------

def test_the_cli_writes_one_server_per_listener(config_with_catch_all, config_without_catch_all):
    assert [s["hosts"] for s in config_with_catch_all["servers"]] == [
        ["*"], ["second-example.org"], ["*.wildcard.org"], ["fourth-example.wildcard.org"]]
    assert [s["hosts"] for s in config_without_catch_all["servers"]] == [
        ["second-example.org"], ["*.wildcard.org"], ["fourth-example.wildcard.org"]]


def test_the_routes_are_the_httproutes(docs):
    routes = {s.name: [(r.domains, r.prefix, r.backend) for r in s.routes] for s in conformance.servers(docs)}
    assert routes == {
        "https": [(("example.org",), conformance.PATH, "infra-backend-v1")],
        "https-with-hostname": [(("second-example.org",), conformance.PATH, "infra-backend-v2")],
        "https-with-wildcard-hostname": [(("*.wildcard.org",), conformance.PATH, "infra-backend-v3")],
        "https-with-hostname-matching-wildcard": [(("fourth-example.wildcard.org",), conformance.PATH,
                                                   "infra-backend-v1")],
    }


def test_the_matcher_form_declares_its_matcher(config_with_catch_all, config_without_catch_all):
    with_star = istio_gateway.form_configuration(config_with_catch_all, istio_gateway.MATCHER_FORM)
    assert with_star["same_name_matcher"] == matcher_support.HOST_NAME
    without_star = istio_gateway.form_configuration(config_without_catch_all, istio_gateway.MATCHER_FORM)
    # Still a server below another's wildcard (fourth-example.wildcard.org below *.wildcard.org).
    assert without_star["same_name_matcher"] == matcher_support.HOST_NAME
    assert "same_name_matcher" not in istio_gateway.form_configuration(config_with_catch_all, istio_gateway.WASM_FORM)
    # The parsed expression is the text: the example's comparison, and the SNI's characters
    # beside it; every node has its own id.
    def without_ids(node):
        if isinstance(node, dict):
            return {k: without_ids(v) for k, v in node.items() if k != "id"}
        if isinstance(node, list):
            return [without_ids(v) for v in node]
        return node

    _, parsed = istio_gateway.matcher_for(config_with_catch_all)
    _, plain = istio_gateway.matcher_for({"servers": [{"hosts": ["second-example.org"]}]})
    assert parsed["call_expr"]["function"] == "_&&_"
    equal, name_test = parsed["call_expr"]["args"]
    assert without_ids(equal) == without_ids(plain)
    assert name_test["call_expr"]["function"] == "matches"
    assert name_test["call_expr"]["target"]["select_expr"]["field"] == "host"
    regex = {"const_expr": {"string_value": matcher_support.DOTTED_NAME_REGEX}}
    assert without_ids(name_test["call_expr"]["args"]) == [regex]
    ids = re.findall(r"'id': (\d+)", str(parsed))
    assert len(ids) == len(set(ids)) == 10
    # No `*` server, no nesting, on_missing_sni: reject: the SNI must not be empty either.
    reject = {"servers": [{"hosts": ["second-example.org"]}], "on_missing_sni": "reject"}
    text, parsed = istio_gateway.matcher_for(reject)
    assert istio_gateway.form_configuration(reject, istio_gateway.MATCHER_FORM)["same_name_matcher"] == text
    assert text == matcher_support.WITH_SNI
    has_sni, rest = parsed["call_expr"]["args"]
    assert (parsed["call_expr"]["function"], rest["call_expr"]["function"]) == ("_&&_", "_&&_")
    assert has_sni["call_expr"]["function"] == "_!=_"
    assert has_sni["call_expr"]["args"][1]["const_expr"] == {"string_value": ""}
    ids = re.findall(r"'id': (\d+)", str(parsed))
    assert len(ids) == len(set(ids)) == 16


# --- the 15 cases ------------------------------------------------------------------------------

# What Envoy answers without sni-guard, where the spec wants something else: the request runs
# in the route table of the chain its SNI picked. Six of the spec's 421s are that table's 404;
# one is a 200 from the wrong backend (fourth-example.wildcard.org has its own listener, but the
# `*.wildcard.org` chain's route table covers it too).
WITHOUT_SNI_GUARD = {
    ("example.org", "second-example.org"): "404",
    ("second-example.org", "example.org"): "404",
    ("second-example.org", "unknown-example.org"): "404",
    ("third-example.wildcard.org", "fourth-example.wildcard.org"): "200 infra-backend-v3",
    ("third-example.wildcard.org", "second-example.org"): "404",
    ("third-example.wildcard.org", "unknown-example.org"): "404",
    ("fourth-example.wildcard.org", "fith-example.wildcard.org"): "404",
}


def spec(case: Case) -> str:
    return Outcome(case.status, case.backend).shown()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance_case(gateway, gateway_certs, case):
    want = spec(case)
    if gateway.form is None:
        want = WITHOUT_SNI_GUARD.get((case.server_name, case.host), want)
    check(gateway, gateway_certs, case.server_name, case.host, want)


def test_without_sni_guard_seven_cases_fail_the_spec():
    # The table above is exactly the spec's 421 cases: sni-guard fixes all of them and no other.
    assert sorted(WITHOUT_SNI_GUARD) == sorted((c.server_name, c.host) for c in CASES if c.status == 421)


# --- the Gateway without its catch-all listener -------------------------------------------------

NO_CATCH_ALL = conformance.NO_CATCH_ALL


@pytest.mark.parametrize("sni,host,with_guard,without", NO_CATCH_ALL, ids=[f"{c[0]}->{c[1]}" for c in NO_CATCH_ALL])
def test_without_catch_all(gateway_without_catch_all, gateway_certs, sni, host, with_guard, without):
    want = without if gateway_without_catch_all.form is None else with_guard
    check(gateway_without_catch_all, gateway_certs, sni, host, want)


# --- trailing dots and no SNI ------------------------------------------------------------------

# Envoy lowercases the SNI and matches server_names literally: `second-example.org.` is no
# listed name, so the connection lands in the catch-all chain (`https`), whose route table knows
# example.org only. The catch-all server's own host passes there; another server's is 421.
# (SNI, :authority, with sni-guard, without, the chain Envoy picks)
TRAILING_DOT_AND_NO_SNI = [
    ("second-example.org.", "second-example.org", "421", "404", "https"),
    ("second-example.org.", "second-example.org.", "421", "404", "https"),
    ("SECOND-EXAMPLE.ORG.", "second-example.org", "421", "404", "https"),
    ("second-example.org.", "example.org", "200 infra-backend-v1", "200 infra-backend-v1", "https"),
    ("second-example.org.", "unknown-example.org", "404", "404", "https"),
    ("third-example.wildcard.org.", "third-example.wildcard.org", "421", "404", "https"),
    ("fourth-example.wildcard.org.", "fourth-example.wildcard.org.", "421", "404", "https"),
    ("example.org.", "example.org", "200 infra-backend-v1", "200 infra-backend-v1", "https"),
    (None, "example.org", "200 infra-backend-v1", "200 infra-backend-v1", "https"),
    (None, "second-example.org", "421", "404", "https"),
    (None, "third-example.wildcard.org", "421", "404", "https"),
    (None, "unknown-example.org", "404", "404", "https"),
    # Upper case without a dot: Envoy lowercases it and picks the listener's own chain.
    ("SECOND-example.org", "second-example.org", "200 infra-backend-v2", "200 infra-backend-v2",
     "https-with-hostname"),
]


@pytest.mark.parametrize("sni,host,with_guard,without,chain", TRAILING_DOT_AND_NO_SNI,
                         ids=[f"{c[0]}->{c[1]}" for c in TRAILING_DOT_AND_NO_SNI])
def test_trailing_dot_and_no_sni_with_catch_all(gateway, gateway_certs, sni, host, with_guard, without, chain):
    want = without if gateway.form is None else with_guard
    check(gateway, gateway_certs, sni, host, want, chain=chain)


@pytest.mark.parametrize("sni", ["second-example.org.", "third-example.wildcard.org.", None],
                         ids=["second-example.org.", "third-example.wildcard.org.", "no-sni"])
def test_trailing_dot_and_no_sni_fail_the_handshake_without_catch_all(gateway_without_catch_all, gateway_certs, sni):
    # No chain matches, and there is no chain without server_names: Envoy closes the connection
    # during the handshake, so neither the route table nor sni-guard (nor on_missing_sni) is asked.
    check(gateway_without_catch_all, gateway_certs, sni, "second-example.org", "handshake fails")


# --- malformed :authority ----------------------------------------------------------------------

# (:authority on a connection for second-example.org, what Envoy answers without sni-guard).
# Envoy's HTTP/2 codec lets these through to the filters. Malformed ones (`[::1`, a port that is
# not a number, an empty label, a label starting with '-') are misdirected whenever there is an
# SNI; an IP literal is no host of second-example.org's server. Without sni-guard the route table
# answers; it ignores the port (`ignore_port_in_host_matching`, as Istio sets it), even one that
# is not a number, so `second-example.org:x` reaches the backend.
MALFORMED = [
    ("[::1", "404"),
    ("[::1]:443", "404"),
    ("1.2.3.4", "404"),
    ("second-example.org:x", "200 infra-backend-v2"),
    ("second-example.org..", "404"),
    ("-", "404"),
]


@pytest.mark.parametrize("host,without", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_or_foreign_authority_is_421(gateway, gateway_certs, host, without):
    want = without if gateway.form is None else "421"
    check(gateway, gateway_certs, "second-example.org", host, want)


@pytest.mark.parametrize("host", ["", "a b", "second-example.org "])
def test_envoy_itself_refuses_an_empty_or_spaced_authority(gateway, gateway_certs, host):
    """Never reaches sni-guard: Envoy's HTTP/2 codec treats the header as invalid and closes the
    connection (`http2.invalid.header.field` in the access log, no status). Envoy 1.36 still
    passes an empty `:authority` on (scripts/test_envoy_versions.sh): then sni-guard answers 421
    (malformed), and the route table 404 without it."""
    before = sum("details=http2.invalid.header.field" in line for line in gateway.access_log())
    try:
        reply = exact_client.get(gateway.port, "second-example.org", host, conformance.PATH, ca=gateway_certs.ca)
    except ConnectionError:
        lines = gateway.wait_for_access_log(lambda line: "details=http2.invalid.header.field" in line,
                                            count=before + 1)
        assert len(lines) == before + 1, gateway.access_log()[-3:]
        return
    assert host == "" and envoy_support.envoy_minor() < 37, f"Envoy passed {host!r} on: {reply.status}"
    assert reply.status == (404 if gateway.form is None else 421), reply


# --- form b: what Envoy's matcher leaves to the module -----------------------------------------

def checked_after_a_flush(envoy, certs) -> int:
    """`sni_guard.checked` once a misdirected request (reaching the module in both forms) and
    everything before it are counted: the module hands its pending count to Envoy on its
    1-second tick; wait until the 421 shows, then one tick more."""
    before = envoy.stats().get("wasmcustom.sni_guard.rejected", 0)
    check(envoy, certs, "example.org", "second-example.org", "421")
    envoy.wait_for_stats({"wasmcustom.sni_guard.rejected": before + 1})
    time.sleep(1.2)
    return envoy.stats().get("wasmcustom.sni_guard.checked", 0)


def test_which_requests_reach_the_module(gateway, gateway_certs):
    """Behind the matcher (form b), a request whose :authority is its SNI never reaches the
    module, unless the SNI ends with a dot: Envoy put that connection in the catch-all chain, so
    the name may be another server's (`!request.host.endsWith('.')` in the matcher). As a
    WasmPlugin installs it (form a), every request reaches the module."""
    if gateway.form is None:
        assert gateway.stats() == {}, "no sni-guard, no sni-guard counters"
        return
    before = checked_after_a_flush(gateway, gateway_certs)
    for sni, backend in [("second-example.org", "infra-backend-v2"), ("example.org", "infra-backend-v1"),
                         ("third-example.wildcard.org", "infra-backend-v3")]:
        check(gateway, gateway_certs, sni, sni, f"200 {backend}")
    check(gateway, gateway_certs, "second-example.org.", "second-example.org.", "421")
    reached = checked_after_a_flush(gateway, gateway_certs) - before
    # The trailing-dot request and the flushing one; in form a also the three same-name ones.
    assert reached == (2 if gateway.form == istio_gateway.MATCHER_FORM else 5), reached


@pytest.mark.parametrize("host,without", [("", "404"), ("[::1", "404")], ids=["empty", "[::1"])
def test_http1_empty_host_reaches_the_filter_and_is_421(gateway, gateway_certs, host, without):
    """HTTP/1.1 carries an empty Host to the filters (HTTP/2's codec refuses an empty
    :authority): with an SNI it is malformed, so misdirected."""
    status = exact_client.http1_status(gateway.port, "second-example.org", host, conformance.PATH, ca=gateway_certs.ca)
    assert status == (int(without) if gateway.form is None else 421)


def test_curl_sends_a_trailing_dot_in_the_host_only(gateway, gateway_certs, curl):
    """What an HTTP/2 client makes of a URL with a trailing dot: curl (7.88) opens the connection
    with the SNI without the dot and sends `:authority` with it. The connection lands in the
    listener's own chain; `second-example.org.` is that server's host (one trailing dot ignored),
    so sni-guard lets it through, and the route table, which lists `second-example.org` only,
    answers 404, as without sni-guard."""
    url_host = "second-example.org."
    out = subprocess.run(
        [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--http2", "--cacert", str(gateway_certs.ca),
         "--resolve", f"{url_host}:{gateway.port}:127.0.0.1", "-H", "x-case: curl-dot", "--max-time", "10",
         f"https://{url_host}:{gateway.port}{conformance.PATH}"],
        capture_output=True, text=True, check=False)
    line = gateway.wait_for_access_log(lambda line: " case=curl-dot " in line)[-1]
    assert f"sni=second-example.org authority=second-example.org.:{gateway.port} " in line, line
    assert "chain=https-with-hostname " in line and "details=route_not_found" in line, line
    assert out.stdout == "404", (out.stdout, out.stderr)
