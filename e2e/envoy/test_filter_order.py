"""sni-guard decides first (issue #23, item 4): on a gateway whose HTTP filters hold what istiod
puts there for a CUSTOM AuthorizationPolicy (ext_authz), a RequestAuthentication (jwt_authn) and
a DENY AuthorizationPolicy (RBAC), which filter answers a misdirected request, with sni-guard
placed as each installed form places it: the EnvoyFilter before the router (0.1.0) and first
(now), the WasmPlugin and the TrafficExtension in phase AUTHN. The gateway, its policies and the
variants: e2e/support/filter_order.py; the table in the README comes from
`scripts/filter_order_table.py`, which runs the same gateway.
"""

from __future__ import annotations

import time

import pytest

from e2e.support import filter_order, istio_chain
from e2e.support.ext_authz import LOGIN_PAGE
from e2e.support.wasm_modules import STAND_IN_LOGGED_421, STAND_IN_LOGGED_OTHER, STAND_IN_REQUEST_HEADERS

# The ECDS filter names istiod gives the plugin (Istio 1.30+ naming: e2e/support/istiod.py).
SNI_GUARD_NAMES = {
    "wasmplugin":
        "extensions.istio.io/trafficextension/istio-system.sni-guard-ingressgateway~istio-translated-wasmplugin",
    "trafficextension": "extensions.istio.io/trafficextension/istio-system.sni-guard-ingressgateway"}


@pytest.fixture(scope="module")
def gateway(certs, workdir):
    with filter_order.gateway(certs, workdir / "filter-order") as gw:
        yield gw


def test_the_filters_in_envoy_are_in_istios_order_with_sni_guard_where_each_form_puts_it(gateway):
    istio = ["envoy.filters.http.rbac", "envoy.filters.http.ext_authz", "envoy.filters.http.jwt_authn",
             "envoy.filters.http.rbac", "envoy.filters.http.grpc_stats", "envoy.filters.http.fault",
             "envoy.filters.http.cors", istio_chain.STATS_FILTER, "envoy.filters.http.router"]
    assert gateway.http_filter_names("none") == istio
    expected = {
        "envoyfilter-before-router": istio[:-1] + ["sni-guard"] + istio[-1:],  # after every policy and the stats
        "envoyfilter": ["sni-guard"] + istio,                                   # ahead of everything
        "wasmplugin": istio[:2] + [SNI_GUARD_NAMES["wasmplugin"]] + istio[2:],  # AUTHN: after CUSTOM's two
        "trafficextension": istio[:2] + [SNI_GUARD_NAMES["trafficextension"]] + istio[2:],
    }
    for variant, names in expected.items():
        assert gateway.http_filter_names(variant) == names, variant


@pytest.mark.parametrize("variant", filter_order.VARIANTS)
@pytest.mark.parametrize("probe", filter_order.MISDIRECTED)
def test_who_answers_a_misdirected_request(gateway, variant, probe):
    request = filter_order.MISDIRECTED[probe]
    checks_before = len(gateway.ext_authz.checked())
    reply = gateway.get(variant, request)
    expected = filter_order.EXPECTED[variant][probe]
    name = filter_order.VARIANT_NAMES[variant]
    assert reply.status == expected, f"{name}: {request.what}: {reply.status} {reply.text}"
    checked = gateway.ext_authz.checked()[checks_before:]
    if expected == 421:
        assert reply.text.startswith("421 Misdirected Request"), f"not sni-guard's body: {reply.text!r}"
        # sni-guard answered before anything else could: the single sign-on service never saw it.
        if variant == "envoyfilter":
            assert checked == [], checked
    if expected == 302:
        assert reply.headers["location"].startswith(LOGIN_PAGE), reply.headers
        assert checked == [(request.authority, request.path)], "the CUSTOM provider was asked"


@pytest.mark.parametrize("variant", filter_order.VARIANTS)
@pytest.mark.parametrize("probe", filter_order.WELL_DIRECTED)
def test_the_policies_still_judge_a_request_on_its_own_connection(gateway, variant, probe):
    """sni-guard first answers only misdirected requests: every other one meets the policies as
    without sni-guard (b's request, retried on b's own connection after the 421, included)."""
    request, expected = filter_order.WELL_DIRECTED[probe]
    reply = gateway.get(variant, request)
    assert reply.status == expected, f"{filter_order.VARIANT_NAMES[variant]}: {request.what}: {reply.status}"


def _delta(gateway, variant, server, request) -> dict[str, int]:
    """What one request changes in the chain's counters and the `istio.stats` stand-in's, once
    Envoy has logged the stream (the counters move at the stream's end, after the reply)."""
    before = gateway.counters(variant, server)
    gateway.get(variant, request)
    deadline = time.monotonic() + 5
    while True:
        after = gateway.counters(variant, server)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        logged = delta.get(STAND_IN_LOGGED_421, 0) + delta.get(STAND_IN_LOGGED_OTHER, 0)
        if (logged and delta.get("downstream_rq_completed")) or time.monotonic() > deadline:
            return {k: v for k, v in delta.items() if v}
        time.sleep(0.05)


@pytest.mark.parametrize("variant", ["envoyfilter", "envoyfilter-before-router", "wasmplugin"])
def test_what_counts_a_421_whichever_filter_placement(gateway, variant):
    """Envoy's `downstream_rq_4xx` is the connection manager's, and a stats filter later in the
    chain, registered for the access log as `istio.stats` is, logs the stream with its 421 though
    the request never reached it (sni-guard first) or did (before the router)."""
    delta = _delta(gateway, variant, "apps", filter_order.MISDIRECTED["plain"])
    reached_stats_filter = variant == "envoyfilter-before-router"
    assert delta.get("downstream_rq_4xx") == 1 and delta.get("downstream_rq_completed") == 1, delta
    assert delta.get(STAND_IN_LOGGED_421) == 1 and STAND_IN_LOGGED_OTHER not in delta, delta
    assert delta.get(STAND_IN_REQUEST_HEADERS, 0) == (1 if reached_stats_filter else 0), delta


def test_before_sni_guard_first_the_stats_filter_counted_the_wrong_servers_answer(gateway):
    """The old placement on a request a policy answered: Istio's stats saw a 302 (or a 401, a 403),
    not a 421."""
    delta = _delta(gateway, "envoyfilter-before-router", "apps", filter_order.MISDIRECTED["sso"])
    assert delta.get("downstream_rq_3xx") == 1 and "downstream_rq_4xx" not in delta, delta
    assert delta.get(STAND_IN_LOGGED_OTHER) == 1 and STAND_IN_LOGGED_421 not in delta, delta


def test_an_envoyfilter_inserting_first_at_the_default_priority_stays_behind_sni_guard(workdir):
    """istiod applies EnvoyFilters in ascending priority; the manifest's priority puts sni-guard's
    INSERT_FIRST after theirs, so it stays first (the patch model of e2e/support/istio_chain.py,
    no Envoy)."""
    sni_guard = filter_order.manifest("envoyfilter", workdir / "priority")
    other = {"spec": {"configPatches": [{
        "applyTo": "HTTP_FILTER",
        "match": {"context": "GATEWAY", "listener": {"filterChain": {"filter": {"name": istio_chain.HCM}}}},
        "patch": {"operation": "INSERT_FIRST", "value": {"name": "operators-lua"}}}]}}
    listener = {"name": "0.0.0.0_443", "filter_chains": [{"filters": [{"name": istio_chain.HCM, "typed_config": {
        "http_filters": istio_chain.http_filters(istio_chain.GatewayPolicies())}}]}]}
    for order in ([sni_guard, other], [other, sni_guard]):  # either created first
        patched = istio_chain.apply_http_filter_patches(listener, order, filter_order.LISTENER_PORT)
        names = [f["name"] for f in patched["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]]
        assert names[:2] == ["sni-guard", "operators-lua"], names
