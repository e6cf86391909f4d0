"""Misdirected requests at the edges, in real Envoy shaped as istiod builds a gateway
(e2e/support/istio_gateway.py), with sni-guard in both installation forms (a: a plain Wasm
filter, as a WasmPlugin installs it; b: behind Envoy's same-name matcher, as shipped for plain
Envoy and the EnvoyFilter):

- exempt paths cannot be walked out of (`..`, encoded separators, `;`, empty segments), with
  Envoy's path normalisation on (Istio's default) and off (what the filter itself must refuse);
- domain fronting past a client-certificate requirement: server b's chain requires a client
  certificate, the catch-all server's does not, and its route table also routes b's host (one
  route bound to both Gateways). Without sni-guard a client without a certificate reaches b's
  backend through the catch-all chain; with it, 421;
- the same with an SNI that is not a host name and the identical `:authority`
  (`b.example.com:443`, `b.example.com:`, `b.example.com.:443`, `x@b.example.com`): Envoy
  matches `server_names` literally, so each lands in the catch-all chain, whose route table
  routes it to b's backend (the port ignored) or the catch-all's; sni-guard answers 421, over
  HTTP/2 and HTTP/1.1. Without a catch-all chain Envoy refuses each handshake. With a server
  below another's wildcard whose route table lists its host as `host:*` (what older istiod wrote),
  an SNI the wildcard matched reaches the inner server's backend the same way, and gets 421;
- `on_missing_sni`: with a correct configuration a connection without SNI lands in the
  catch-all chain, and then belongs to the `*` server (e2e/envoy/test_gateway_api_conformance.py);
  without a catch-all chain the handshake fails. `on_missing_sni` decides only where Envoy has a
  chain without `server_names` that the configuration does not describe (it lacks the `*`
  server: written before the catch-all listener was added, say), built here on purpose.
"""

from __future__ import annotations

import pytest

from e2e.support import envoy as envoy_support
from e2e.support import exact_client, istio_gateway
from e2e.support import gateway_api_conformance as conformance
from e2e.support.gateway_api_conformance import HTTP1, HTTP2, check
from e2e.support.istio_gateway import MATCHER_FORM, WASM_FORM, Route, Server


@pytest.fixture(scope="module")
def gateway_certs(workdir):
    return envoy_support.make_certs(workdir / "edges-certs", conformance.CERTIFICATE_NAMES)


def conformance_servers(extra_catch_all_routes=()) -> list[Server]:
    """The conformance Gateway's servers (e2e/envoy/fixtures/gateway-api-conformance.yaml), with
    more routes on its catch-all listener if given."""
    servers = conformance.servers(conformance.documents())
    servers[0].routes.extend(extra_catch_all_routes)
    assert servers[0].is_catch_all
    return servers


CONFORMANCE_SERVERS = [{"hosts": ["*"]}, {"hosts": ["second-example.org"]}, {"hosts": ["*.wildcard.org"]},
                       {"hosts": ["fourth-example.wildcard.org"]}]


# --- exempt paths ------------------------------------------------------------------------------

ACME = "/.well-known/acme-challenge/"
EXEMPT_CONFIG = {"servers": CONFORMANCE_SERVERS, "exempt_paths": [ACME, "/healthz"]}
# An ACME solver and a health check answering for any host on the catch-all listener (HTTPRoutes
# without hostnames): where an exempt request that sni-guard lets through ends up.
EXEMPT_ROUTES = [Route(("*",), ACME, "acme-solver"), Route(("*",), "/healthz", "health")]

# (path, with Envoy's normalisation on (Istio's default), off). Every request is misdirected:
# SNI example.org (the catch-all server), :authority second-example.org (another server).
# With normalisation Envoy resolves `.`/`..` (also after turning `\` into `/` and decoding
# `%2e`) and merges `//` before any filter runs; it keeps `%2f`, `%5c` and `;` as they are.
EXEMPT_CASES = [
    (ACME + "token", "200 acme-solver", "200 acme-solver"),
    (ACME + "a/b.c~d-e_F9", "200 acme-solver", "200 acme-solver"),
    (ACME + "token?next=..%2f..%2fadmin", "200 acme-solver", "200 acme-solver"),
    (ACME + "..%2fadmin", "421", "421"),
    (ACME + "..%2Fadmin", "421", "421"),
    (ACME + "..%5cadmin", "421", "421"),
    (ACME + "%2e%2e/admin", "421", "421"),
    (ACME + "x;y", "421", "421"),
    (ACME + "../admin", "421", "421"),
    (ACME + "..\\admin", "421", "421"),
    (ACME + "./token", "200 acme-solver", "421"),
    (ACME + "/token", "200 acme-solver", "421"),
    ("/.well-known/acme-challenge", "421", "421"),
    ("/healthz", "200 health", "200 health"),
    ("/healthz/x", "200 health", "200 health"),
    ("/healthz?verbose=1", "200 health", "200 health"),
    ("/healthzX", "421", "421"),
    ("/healthz/../admin", "421", "421"),
]


@pytest.fixture(scope="module", params=[(WASM_FORM, True), (MATCHER_FORM, True), (WASM_FORM, False),
                                        (MATCHER_FORM, False)],
                ids=["wasm-filter-normalized", "matcher-normalized", "wasm-filter-raw", "matcher-raw"])
def exempt_gateway(request, gateway_certs, workdir):
    form, normalized = request.param
    config = istio_gateway.bootstrap(conformance_servers(EXEMPT_ROUTES), gateway_certs, plugin_config=EXEMPT_CONFIG,
                                     form=form, normalize_path=normalized, merge_slashes=normalized)
    with envoy_support.Envoy(config, workdir, name=f"exempt-{form}-{'normalized' if normalized else 'raw'}") as envoy:
        envoy.normalized = normalized
        yield envoy


@pytest.mark.parametrize("path,normalized,raw", EXEMPT_CASES, ids=[c[0] for c in EXEMPT_CASES])
def test_exempt_paths_cannot_be_walked_out_of(exempt_gateway, gateway_certs, path, normalized, raw):
    want = normalized if exempt_gateway.normalized else raw
    check(exempt_gateway, gateway_certs, "example.org", "second-example.org", want, path=path)


def test_exempt_paths_do_not_change_requests_that_are_not_misdirected(exempt_gateway, gateway_certs):
    # The catch-all server's own host, and another server's own connection.
    check(exempt_gateway, gateway_certs, "example.org", "example.org", "404", path=ACME + "..%2fadmin")
    check(exempt_gateway, gateway_certs, "second-example.org", "second-example.org", "200 infra-backend-v2",
          path=conformance.PATH)


# --- domain fronting past a client-certificate requirement -----------------------------------

A, B = "a.example.com", "b.example.com"
# The catch-all server (gateway `front`, hosts `*`, no client certificate) and server b (its own
# Gateway, hosts b.example.com, client certificate required). One route for b.example.com is
# bound to both Gateways, so istiod puts b's host into both route tables.
FRONTING_SERVERS = [
    Server(hosts=["*"], name="front", routes=[Route((A,), "/", "a-backend"), Route((B,), "/", "b-backend"),
                                              Route(("*",), "/", "front-backend")]),
    Server(hosts=[B], name="b-mtls", require_client_certificate=True, routes=[Route((B,), "/", "b-backend")]),
]
FRONTING_CONFIG = {"servers": [{"hosts": ["*"]}, {"hosts": [B]}]}


@pytest.fixture(scope="module")
def client_certs(workdir):
    """A client CA (what b's chain trusts) and a client certificate it signed."""
    return envoy_support.make_certs(workdir / "client-certs", ["client.example.test"])


@pytest.fixture(scope="module", params=[None, WASM_FORM, MATCHER_FORM], ids=["no-sni-guard", "wasm-filter", "matcher"])
def fronting_gateway(request, gateway_certs, client_certs, workdir):
    config = istio_gateway.bootstrap(FRONTING_SERVERS, gateway_certs, plugin_config=FRONTING_CONFIG,
                                     form=request.param, client_ca=client_certs.ca)
    with envoy_support.Envoy(config, workdir, name=f"fronting-{request.param or 'none'}") as envoy:
        envoy.form = request.param
        yield envoy


# (SNI, :authority, with sni-guard, without, the chain Envoy picks); no client certificate.
FRONTING_WITHOUT_CERTIFICATE = [
    (A, B, "421", "200 b-backend", "front"),
    (None, B, "421", "200 b-backend", "front"),
    (B + ".", B, "421", "200 b-backend", "front"),
    ("unknown-example.org", B + ":443", "421", "200 b-backend", "front"),
    (A, A, "200 a-backend", "200 a-backend", "front"),
    (B, B, "handshake fails", "handshake fails", None),
    ("B.Example.COM", B, "handshake fails", "handshake fails", None),
]


@pytest.mark.parametrize("sni,host,with_guard,without,chain", FRONTING_WITHOUT_CERTIFICATE,
                         ids=[f"{c[0]}->{c[1]}" for c in FRONTING_WITHOUT_CERTIFICATE])
def test_a_client_without_certificate_cannot_reach_b(fronting_gateway, gateway_certs, sni, host, with_guard,
                                                     without, chain):
    want = without if fronting_gateway.form is None else with_guard
    check(fronting_gateway, gateway_certs, sni, host, want, chain=chain)


def test_a_client_with_certificate_reaches_b_on_bs_own_connection(fronting_gateway, gateway_certs, client_certs):
    client_cert = (client_certs.cert, client_certs.key)
    check(fronting_gateway, gateway_certs, B, B, "200 b-backend", client_cert=client_cert, chain="b-mtls")
    # b's connection is b's alone: a's host is another server's there.
    check(fronting_gateway, gateway_certs, B, A, "404" if fronting_gateway.form is None else "421",
          client_cert=client_cert, chain="b-mtls")


# --- SNIs that are not host names ------------------------------------------------------------

# (SNI, sent as the :authority too; without sni-guard over HTTP/2, over HTTP/1.1). The access
# log shows these SNIs as `invalid:b.example.com_443` (Envoy's formatter escapes them); the
# filter chain match and CEL see them as sent. HTTP/2's codec refuses `@` in `:authority`.
NON_HOST_SNIS = [
    (B + ":443", "200 b-backend", "200 b-backend"),
    (B + ":", "200 b-backend", "200 b-backend"),
    (B + ".:443", "200 front-backend", "200 front-backend"),
    ("x@" + B, "refused by the codec", "200 front-backend"),
]


@pytest.mark.parametrize("transport", [HTTP2, HTTP1], ids=["http2", "http1"])
@pytest.mark.parametrize("sni,without_h2,without_h1", NON_HOST_SNIS, ids=[c[0] for c in NON_HOST_SNIS])
def test_an_sni_that_is_no_host_name_is_checked(fronting_gateway, gateway_certs, sni, without_h2, without_h1,
                                                transport):
    without = without_h1 if transport == HTTP1 else without_h2
    if without == "refused by the codec":
        with pytest.raises(ConnectionError):
            conformance.request(fronting_gateway, gateway_certs, sni, sni, "/", transport=transport)
        return
    want = without if fronting_gateway.form is None else "421"
    check(fronting_gateway, gateway_certs, sni, sni, want, path="/", chain="front", transport=transport)


@pytest.fixture(scope="module", params=[None, WASM_FORM, MATCHER_FORM], ids=["no-sni-guard", "wasm-filter", "matcher"])
def named_only_gateway(request, gateway_certs, workdir):
    """Servers a and b, no catch-all: every chain has server_names."""
    servers = [Server(hosts=[A], name="a", routes=[Route((A,), "/", "a-backend")]),
               Server(hosts=[B], name="b", routes=[Route((B,), "/", "b-backend")])]
    plugin_config = {"servers": [{"hosts": [A]}, {"hosts": [B]}]}
    config = istio_gateway.bootstrap(servers, gateway_certs, plugin_config=plugin_config, form=request.param)
    with envoy_support.Envoy(config, workdir, name=f"named-only-{request.param or 'none'}") as envoy:
        yield envoy


@pytest.mark.parametrize("transport", [HTTP2, HTTP1], ids=["http2", "http1"])
@pytest.mark.parametrize("sni", [c[0] for c in NON_HOST_SNIS] + [B + "."])
def test_without_a_catch_all_chain_envoy_refuses_the_handshake(named_only_gateway, gateway_certs, sni, transport):
    check(named_only_gateway, gateway_certs, sni, sni, "handshake fails", path="/", transport=transport)
    check(named_only_gateway, gateway_certs, B, B, "200 b-backend", path="/", chain="b", transport=transport)


# Server w (`*.w.example.com`) and server n (`n.w.example.com`, client certificate required)
# below it; one route for n's host bound to both, listed as `host` and `host:*` as istiod did
# before `ignore_port_in_host_matching`. No catch-all chain.
W, N = "x.w.example.com", "n.w.example.com"
NESTED_SERVERS = [
    Server(hosts=["*.w.example.com"], name="w", routes=[Route((W,), "/", "w-backend"),
                                                        Route((N, N + ":*"), "/", "n-backend")]),
    Server(hosts=[N], name="n-mtls", require_client_certificate=True, routes=[Route((N, N + ":*"), "/", "n-backend")]),
]


@pytest.fixture(scope="module", params=[None, WASM_FORM, MATCHER_FORM], ids=["no-sni-guard", "wasm-filter", "matcher"])
def nested_gateway(request, gateway_certs, client_certs, workdir):
    plugin_config = {"servers": [{"hosts": ["*.w.example.com"]}, {"hosts": [N]}]}
    config = istio_gateway.bootstrap(NESTED_SERVERS, gateway_certs, plugin_config=plugin_config, form=request.param,
                                     client_ca=client_certs.ca)
    with envoy_support.Envoy(config, workdir, name=f"nested-{request.param or 'none'}") as envoy:
        envoy.form = request.param
        yield envoy


@pytest.mark.parametrize("transport", [HTTP2, HTTP1], ids=["http2", "http1"])
def test_an_sni_the_outer_wildcard_matched_cannot_reach_the_inner_server(nested_gateway, gateway_certs, transport):
    # Envoy: no server name is the SNI; its suffix ".w.example.com" is w's wildcard. The route
    # table: `n.w.example.com:*` is a prefix the :authority starts with.
    sni = N + ":" + W
    want = "200 n-backend" if nested_gateway.form is None else "421"
    check(nested_gateway, gateway_certs, sni, sni, want, path="/", chain="w", transport=transport)
    check(nested_gateway, gateway_certs, W, W, "200 w-backend", path="/", chain="w", transport=transport)
    check(nested_gateway, gateway_certs, N, N, "handshake fails", path="/", transport=transport)


# --- on_missing_sni ----------------------------------------------------------------------------

# Envoy has the conformance Gateway's catch-all chain, the configuration does not list the `*`
# server: only then is a connection without SNI served and left to on_missing_sni.
STALE_SERVERS = CONFORMANCE_SERVERS[1:]


@pytest.fixture(scope="module", params=[(WASM_FORM, "allow"), (MATCHER_FORM, "allow"), (WASM_FORM, "reject"),
                                        (MATCHER_FORM, "reject")],
                ids=["wasm-filter-allow", "matcher-allow", "wasm-filter-reject", "matcher-reject"])
def stale_gateway(request, gateway_certs, workdir):
    form, on_missing_sni = request.param
    plugin_config = {"servers": STALE_SERVERS, "on_missing_sni": on_missing_sni}
    config = istio_gateway.bootstrap(conformance_servers(), gateway_certs, plugin_config=plugin_config, form=form)
    with envoy_support.Envoy(config, workdir, name=f"stale-{form}-{on_missing_sni}") as envoy:
        envoy.on_missing_sni = on_missing_sni
        yield envoy


@pytest.mark.parametrize("host,allowed", [("example.org", "200 infra-backend-v1"), ("second-example.org", "404"),
                                          ("fourth-example.wildcard.org", "404")])
def test_on_missing_sni_decides_where_no_star_server_is_configured(stale_gateway, gateway_certs, host, allowed):
    want = allowed if stale_gateway.on_missing_sni == "allow" else "421"
    check(stale_gateway, gateway_certs, None, host, want, path=conformance.PATH, chain="https")


def test_with_sni_the_missing_star_server_changes_nothing_else(stale_gateway, gateway_certs):
    check(stale_gateway, gateway_certs, "second-example.org", "second-example.org", "200 infra-backend-v2",
          path=conformance.PATH)
    check(stale_gateway, gateway_certs, "second-example.org", "third-example.wildcard.org", "421",
          path=conformance.PATH)
    # The SNI is no configured server's, the Host is one's: another server.
    check(stale_gateway, gateway_certs, "example.org", "second-example.org", "421", path=conformance.PATH)


def test_on_missing_sni_reject_also_refuses_an_empty_host(stale_gateway, gateway_certs):
    """HTTP/1.1 carries an empty Host to the filters. Without SNI that is "the same name" as the
    empty SNI: Envoy's matcher in front (form b) must not skip the module for it when
    on_missing_sni is reject, or the request would pass (it is why the matcher for that
    configuration also requires a non-empty SNI)."""
    status = exact_client.http1_status(stale_gateway.port, None, "", conformance.PATH, ca=gateway_certs.ca)
    assert status == (404 if stale_gateway.on_missing_sni == "allow" else 421)
