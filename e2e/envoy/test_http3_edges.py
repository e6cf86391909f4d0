"""The misdirection edges over HTTP/3: Gateway API's conformance Gateway in Envoy shaped as istiod
builds it with QUIC listeners on (e2e/support/istio_gateway.py, `quic=True`: the TCP listener and
beside it the QUIC listener, one chain per server with the same SNI names and route tables),
without sni-guard and with it in both installed forms. Each case opens one QUIC connection with
exactly its SNI (e2e/support/h3client.py) and sends exactly its `:authority`.

The cases are the TCP ones (e2e/envoy/test_gateway_api_conformance.py), imported, not copied:
Envoy picks a QUIC chain by SNI as it picks a TLS chain, so each must answer as over HTTP/2. Plus
the SNIs that are not host names (`host:443`, `host:`, `host.:443`), which quiche refuses; and
what differs in Envoy's diagnostics over QUIC: a connection that matches no chain is closed before
the handshake without a word to the client and is not counted in `no_filter_chain_match`, and
quiche warns about every upper-case SNI.
"""

from __future__ import annotations

import re

import pytest
import yaml

from e2e.envoy.test_gateway_api_conformance import (
    MALFORMED,
    TRAILING_DOT_AND_NO_SNI,
    WITHOUT_SNI_GUARD,
    checked_after_a_flush,
    spec,
)
from e2e.support import envoy as envoy_support
from e2e.support import exact_client, h3client, istio_gateway
from e2e.support import gateway_api_conformance as conformance
from e2e.support.gateway_api_conformance import CASES, HTTP3, NO_CATCH_ALL, check

FORMS = [None, istio_gateway.WASM_FORM, istio_gateway.MATCHER_FORM]
FORM_IDS = ["no-sni-guard", "wasm-filter", "matcher"]


@pytest.fixture(scope="module")
def gateway_certs(workdir):
    return envoy_support.make_certs(workdir / "http3-edges-certs", conformance.CERTIFICATE_NAMES)


def start(servers, certs, plugin_config, form, workdir, name):
    config = istio_gateway.bootstrap(servers, certs, plugin_config=plugin_config, form=form, quic=True)
    return envoy_support.Envoy(config, workdir, name=name)


@pytest.fixture(scope="module", params=FORMS, ids=FORM_IDS)
def gateway(request, gateway_certs, workdir):
    """The conformance Gateway with its catch-all listener, over TCP and QUIC."""
    docs = conformance.documents()
    config = conformance.cli_config(conformance.FIXTURE)
    name = f"http3-conformance-{FORM_IDS[FORMS.index(request.param)]}"
    with start(conformance.servers(docs), gateway_certs, config, request.param, workdir, name) as envoy:
        envoy.form = request.param
        yield envoy


@pytest.fixture(scope="module", params=FORMS, ids=FORM_IDS)
def gateway_without_catch_all(request, gateway_certs, workdir):
    docs = conformance.without_catch_all(conformance.documents())
    manifest = workdir / "http3-without-catch-all.yaml"
    manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    config = conformance.cli_config(manifest)
    name = f"http3-no-catch-all-{FORM_IDS[FORMS.index(request.param)]}"
    with start(conformance.servers(docs), gateway_certs, config, request.param, workdir, name) as envoy:
        envoy.form = request.param
        yield envoy


def h3_check(envoy, certs, sni, host, want, **options):
    check(envoy, certs, sni, host, want, transport=HTTP3, **options)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance_case_over_http3(gateway, gateway_certs, case):
    want = spec(case)
    if gateway.form is None:
        want = WITHOUT_SNI_GUARD.get((case.server_name, case.host), want)
    h3_check(gateway, gateway_certs, case.server_name, case.host, want)


@pytest.mark.parametrize("sni,host,with_guard,without", NO_CATCH_ALL, ids=[f"{c[0]}->{c[1]}" for c in NO_CATCH_ALL])
def test_without_catch_all_over_http3(gateway_without_catch_all, gateway_certs, sni, host, with_guard, without):
    want = without if gateway_without_catch_all.form is None else with_guard
    h3_check(gateway_without_catch_all, gateway_certs, sni, host, want)


@pytest.mark.parametrize("sni,host,with_guard,without,chain", TRAILING_DOT_AND_NO_SNI,
                         ids=[f"{c[0]}->{c[1]}" for c in TRAILING_DOT_AND_NO_SNI])
def test_trailing_dot_no_sni_and_upper_case_over_http3(gateway, gateway_certs, sni, host, with_guard, without, chain):
    want = without if gateway.form is None else with_guard
    h3_check(gateway, gateway_certs, sni, host, want, chain=chain)


@pytest.mark.parametrize("sni", ["second-example.org.", "third-example.wildcard.org.", None],
                         ids=["second-example.org.", "third-example.wildcard.org.", "no-sni"])
def test_trailing_dot_and_no_sni_fail_the_handshake_without_catch_all(gateway_without_catch_all, gateway_certs, sni):
    h3_check(gateway_without_catch_all, gateway_certs, sni, "second-example.org", "handshake fails")


@pytest.mark.parametrize("host,without", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_or_foreign_authority_is_421_over_http3(gateway, gateway_certs, host, without):
    h3_check(gateway, gateway_certs, "second-example.org", host, without if gateway.form is None else "421")


# --- SNIs that are not host names ------------------------------------------------------------------

# A port or an empty port after the name, with or without a trailing dot. Over TCP Envoy puts such
# a connection in the catch-all chain (no chain lists the name). Over QUIC no request is ever
# made on such a connection, with or without sni-guard: with a catch-all chain Envoy creates the
# connection in it, and quiche refuses the handshake with a CONNECTION_CLOSE saying why; without
# one, no chain matches and Envoy closes it silently, as for any SNI no chain lists.
NON_HOST_SNIS = ["second-example.org:443", "second-example.org:", "second-example.org.:443"]


@pytest.mark.parametrize("sni", NON_HOST_SNIS)
def test_quiche_refuses_a_non_host_sni_with_catch_all(gateway, gateway_certs, sni):
    closed_before = gateway.quic_closed_by_envoy()
    with pytest.raises(h3client.HandshakeRefused, match=f"Invalid SNI provided: {re.escape(sni)}"):
        h3client.get(gateway.quic_port, sni, "second-example.org", conformance.PATH, ca=gateway_certs.ca)
    assert gateway.quic_closed_by_envoy() == closed_before, "quiche's refusal is not Envoy's silent close"


@pytest.mark.parametrize("sni", NON_HOST_SNIS)
def test_a_non_host_sni_fails_the_handshake_without_catch_all(gateway_without_catch_all, gateway_certs, sni):
    h3_check(gateway_without_catch_all, gateway_certs, sni, "second-example.org", "handshake fails")


# --- what Envoy's diagnostics say over QUIC -------------------------------------------------------

def no_filter_chain_match(envoy) -> int:
    return sum(v for k, v in envoy.stats("listener.").items() if k.endswith(".no_filter_chain_match"))


def test_no_chain_is_counted_over_tcp_but_not_over_quic(gateway_without_catch_all, gateway_certs):
    """The same SNI, no chain for it: over TCP Envoy counts `no_filter_chain_match` and the
    client gets a TLS alert; over QUIC Envoy closes the connection before the handshake, says
    nothing to the client and counts only the close (`quic_closed_by_envoy`)."""
    envoy = gateway_without_catch_all
    before = (no_filter_chain_match(envoy), envoy.quic_closed_by_envoy())
    h3_check(envoy, gateway_certs, "unknown-example.org", "second-example.org", "handshake fails")
    assert (no_filter_chain_match(envoy), envoy.quic_closed_by_envoy()) == (before[0], before[1] + 1)
    with pytest.raises(exact_client.HandshakeFailed):
        exact_client.get(envoy.port, "unknown-example.org", "second-example.org", conformance.PATH,
                         ca=gateway_certs.ca)
    assert (no_filter_chain_match(envoy), envoy.quic_closed_by_envoy()) == (before[0] + 1, before[1] + 1)


def test_quiche_warns_about_an_upper_case_sni(gateway, gateway_certs):
    """quiche lowercases the SNI and logs a warning for each such handshake (Envoy's TLS over TCP
    says nothing); the request is answered as for the lower-case name."""
    h3_check(gateway, gateway_certs, "Second-Example.ORG", "second-example.org", "200 infra-backend-v2",
             chain="https-with-hostname")
    log = gateway.stderr_path.read_text(errors="replace")
    assert "Raw and normalized hostnames differ, but both are valid SNIs. raw hostname:Second-Example.ORG" in log, \
        gateway.log_tail()


def test_the_matcher_skips_same_name_requests_over_quic(gateway, gateway_certs):
    """Behind Envoy's matcher (form b) a request whose :authority is exactly its SNI never reaches
    the module over QUIC either: Envoy sets `connection.requested_server_name` on QUIC
    connections. As a WasmPlugin installs it (form a), every request does."""
    if gateway.form is None:
        return
    before = checked_after_a_flush(gateway, gateway_certs)
    for sni, backend in [("second-example.org", "infra-backend-v2"), ("example.org", "infra-backend-v1")]:
        h3_check(gateway, gateway_certs, sni, sni, f"200 {backend}")
    h3_check(gateway, gateway_certs, "example.org", "second-example.org", "421")
    reached = checked_after_a_flush(gateway, gateway_certs) - before
    # The misdirected request and the flushing one; in form a also the two same-name ones.
    assert reached == (2 if gateway.form == istio_gateway.MATCHER_FORM else 4), reached
