"""The HTTP filters istiod puts in a gateway's HTTP connection manager, in Istio's order, and
sni-guard placed among them as each installed form places it: a WasmPlugin or TrafficExtension
by its `phase`, an EnvoyFilter by its patch, applied as istiod applies it.

Istio's order, from pilot/pkg/networking/core/listener_builder.go `buildHTTPConnectionManager`
(istio/istio at the mirror's HEAD, Aug 2026; the same at tags 1.24.0 and 1.29.6, where the
phases are a WasmPlugin's, `extension.PopAppendHTTP`):

1. `istio.metadata_exchange` (`appendMxFilter`): istio/proxy's, not in upstream Envoy, and it
   answers no request: left out here.
2. CUSTOM AuthorizationPolicies: an RBAC filter in shadow mode and ext_authz
   (`authzCustomBuilder.BuildHTTP`).
3. WasmPlugins and TrafficExtensions of phase AUTHN (`PopAppendHTTPTrafficExtension`).
4. RequestAuthentication: `jwt_authn` (`authnBuilder.BuildHTTP`).
5. Phase AUTHZ.
6. ALLOW, DENY and AUDIT AuthorizationPolicies: RBAC (`authzBuilder.BuildHTTP`).
7. Phase STATS, then plugins without a phase.
8. `grpc_stats`, `istio.alpn` (istio/proxy's, left out), `fault`, `cors`
   (pilot/pkg/xds/filters/filters.go).
9. The Telemetry API's filters: `istio.stats` for Prometheus (pilot/pkg/model/telemetry.go);
   istio/proxy's, so a stand-in takes its place here (`e2e/support/wasm_modules.py`).
10. The router.

Within a phase, plugins are ordered by descending `priority`, then by creation time.

EnvoyFilter patches are applied to the listeners once they are built
(`ListenerBuilder.patchListeners`, for a gateway with context GATEWAY), EnvoyFilter by
EnvoyFilter in ascending `priority`, then root namespace first, then creation time
(pilot/pkg/model/push_context.go `EnvoyFilters`), each one's patches in order. An HTTP_FILTER
patch (pilot/pkg/networking/core/envoyfilter/listener_patch.go `patchHTTPFilters`) applies to
every HTTP connection manager whose listener, filter chain and network filter match it:
`INSERT_FIRST` puts its filter at the head of the list built above, ahead of everything in it
(its `subFilter` is not read); `INSERT_BEFORE` and `INSERT_AFTER` put it next to the first
filter named by `subFilter` (without one, first and last); `ADD` appends it; `REPLACE` and
`REMOVE` act on the first, or every, filter named.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

PHASES = ("AUTHN", "AUTHZ", "STATS", "UNSPECIFIED")

GRPC_STATS = {"name": "envoy.filters.http.grpc_stats", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
    "emit_filter_state": True, "stats_for_all_methods": False}}
FAULT = {"name": "envoy.filters.http.fault", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}}
CORS = {"name": "envoy.filters.http.cors", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}}
ROUTER = {"name": "envoy.filters.http.router", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
STATS_FILTER = "istio.stats"
HCM = "envoy.filters.network.http_connection_manager"


def phase(spec: dict) -> str:
    """A WasmPlugin's or TrafficExtension's phase; none, `UNSPECIFIED_PHASE` (WasmPlugin) and
    `UNSPECIFIED` (TrafficExtension) are the same phase."""
    value = spec.get("phase") or "UNSPECIFIED"
    return "UNSPECIFIED" if value == "UNSPECIFIED_PHASE" else value


@dataclass
class GatewayPolicies:
    """The filters the gateway's policies and telemetry contribute, each already rendered
    (`e2e/support/istio_policies.py`)."""
    custom: list[dict] = field(default_factory=list)     # CUSTOM AuthorizationPolicy: RBAC (shadow), ext_authz
    authn: list[dict] = field(default_factory=list)      # RequestAuthentication: jwt_authn
    authz: list[dict] = field(default_factory=list)      # ALLOW/DENY AuthorizationPolicy: RBAC
    telemetry: list[dict] = field(default_factory=list)  # Telemetry: istio.stats (a stand-in)


def http_filters(policies: GatewayPolicies, extensions: dict[str, list[dict]] | None = None) -> list[dict]:
    """The HTTP filter list istiod builds, with `extensions` (by phase, each list in istiod's
    order) in their phases."""
    extensions = extensions or {}
    unknown = set(extensions) - set(PHASES)
    if unknown:
        raise ValueError(f"unknown phases {sorted(unknown)}")
    filters = [*policies.custom, *extensions.get("AUTHN", []), *policies.authn, *extensions.get("AUTHZ", []),
               *policies.authz, *extensions.get("STATS", []), *extensions.get("UNSPECIFIED", []),
               GRPC_STATS, FAULT, CORS, *policies.telemetry, ROUTER]
    return copy.deepcopy(filters)


# --- EnvoyFilter HTTP_FILTER patches ----------------------------------------------------------------

def _priority_order(envoy_filters: list[dict]) -> list[dict]:
    """`envoy_filters` (oldest first, all in one namespace) in the order istiod applies them."""
    return sorted(envoy_filters, key=lambda ef: ef["spec"].get("priority", 0))


def _matches(patch: dict, context: str, listener: dict, port: int, chain: dict, network_filter: dict) -> bool:
    match = patch.get("match", {})
    if match.get("context", "ANY") not in (context, "ANY"):
        return False
    lmatch = match.get("listener")
    if lmatch is None:
        return True
    if lmatch.get("name") and lmatch["name"] != listener["name"]:
        return False
    if lmatch.get("portNumber") and lmatch["portNumber"] != port:
        return False
    fcmatch = lmatch.get("filterChain")
    if fcmatch is None:
        return True
    if fcmatch.get("name") and fcmatch["name"] != chain.get("name"):
        return False
    chain_match = chain.get("filter_chain_match", {})
    if fcmatch.get("sni") and fcmatch["sni"] not in chain_match.get("server_names", []):
        return False
    if fcmatch.get("transportProtocol") and fcmatch["transportProtocol"] != chain_match.get("transport_protocol"):
        return False
    unread = set(fcmatch) - {"name", "sni", "transportProtocol", "filter"}
    if unread:
        raise ValueError(f"filterChain match fields not modelled here: {sorted(unread)}")
    fmatch = fcmatch.get("filter")
    return fmatch is None or fmatch["name"] == network_filter["name"]


def _sub_filter(patch: dict) -> str | None:
    sub = patch.get("match", {}).get("listener", {}).get("filterChain", {}).get("filter", {}).get("subFilter")
    return sub["name"] if sub else None


def _patch_list(filters: list[dict], patch: dict) -> list[dict]:
    operation = patch["patch"]["operation"]
    value = copy.deepcopy(patch["patch"].get("value"))
    sub = _sub_filter(patch)
    named = [i for i, f in enumerate(filters) if f["name"] == sub] if sub else []
    if operation == "ADD" or (operation == "INSERT_AFTER" and sub is None):
        return [*filters, value]
    if operation == "INSERT_FIRST" or (operation == "INSERT_BEFORE" and sub is None):
        return [value, *filters]
    if operation in ("INSERT_BEFORE", "INSERT_AFTER", "REPLACE") and not named:
        return filters  # nothing named: not applied
    if operation == "INSERT_BEFORE":
        return [*filters[:named[0]], value, *filters[named[0]:]]
    if operation == "INSERT_AFTER":
        return [*filters[:named[0] + 1], value, *filters[named[0] + 1:]]
    if operation == "REPLACE":
        return [*filters[:named[0]], value, *filters[named[0] + 1:]]
    if operation == "REMOVE":
        return [f for f in filters if f["name"] != sub] if sub else filters
    raise ValueError(f"operation {operation} not modelled here")


def apply_http_filter_patches(listener: dict, envoy_filters: list[dict], port: int,
                              context: str = "GATEWAY") -> dict:
    """`listener` (as istiod built it, its address aside: `port` is the port istiod gave it) with
    the HTTP_FILTER patches of `envoy_filters` (EnvoyFilter manifests, oldest first) applied."""
    listener = copy.deepcopy(listener)
    patches = [p for ef in _priority_order(envoy_filters) for p in ef["spec"].get("configPatches", [])
               if p["applyTo"] == "HTTP_FILTER"]
    for chain in listener["filter_chains"]:
        for network_filter in chain["filters"]:
            if network_filter["name"] != HCM:
                continue
            hcm = network_filter["typed_config"]
            for patch in patches:
                if _matches(patch, context, listener, port, chain, network_filter):
                    hcm["http_filters"] = _patch_list(hcm["http_filters"], patch)
    return listener


def apply_to_listeners(config: dict, envoy_filters: list[dict], context: str = "GATEWAY") -> list[tuple[str, str]]:
    """The HTTP_FILTER patches of `envoy_filters` applied, in place, to every static listener of
    `config` (a bootstrap shaped as istiod builds a gateway, its addresses on istiod's ports:
    `istio_gateway.at_istio_port`), as istiod would for a proxy in `context`. A patch's
    `portNumber` matches a listener by the port of its address, whatever its protocol: the TCP
    listener `0.0.0.0_8443` and the QUIC listener `udp_0.0.0.0_8443` both have port 8443.
    Returns the (listener, chain) pairs whose filters changed, in order."""
    patched = []
    listeners = config["static_resources"]["listeners"]
    for i, listener in enumerate(listeners):
        port = listener["address"]["socket_address"]["port_value"]
        listeners[i] = apply_http_filter_patches(listener, envoy_filters, port, context)
        patched += [(listener["name"], new.get("name", ""))
                    for old, new in zip(listener["filter_chains"], listeners[i]["filter_chains"]) if old != new]
    return patched
