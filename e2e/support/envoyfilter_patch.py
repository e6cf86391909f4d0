"""An EnvoyFilter's HTTP_FILTER patches applied to a gateway's listeners as istiod applies them,
rebuilt in Python from Istio's source (pilot/pkg/networking/core/envoyfilter/listener_patch.go,
`patchHTTPFilters`, `listenerMatch`, `filterChainMatch`, `networkFilterMatch`,
`httpFilterMatch`; listener_builder.go `patchListeners`), so a test sees which listeners and
chains the EnvoyFilter `sni-guard config` writes reaches, the QUIC ones included.

What decides a match, and nothing else:

- `match.context`: a gateway's listeners are patched in context GATEWAY (or ANY);
- `match.listener.name`, if set, against the listener's name; `match.listener.portNumber`, if
  set, against the port of the listener's address, whatever its protocol: the TCP listener
  `0.0.0.0_8443` and the QUIC listener `udp_0.0.0.0_8443` both have port 8443;
- `match.listener.filterChain`: `name`, `sni` (one of the chain's `server_names`),
  `transportProtocol`, and `filter.name` against each network filter of the chain;
  `filter.subFilter.name` against the HTTP filters of its connection manager.

Only INSERT_BEFORE with a `subFilter` is rebuilt (what `sni-guard config` writes): the value goes
in front of the first HTTP filter of that name. Any other operation is refused rather than
guessed at.
"""

from __future__ import annotations

import copy

HCM = "envoy.filters.network.http_connection_manager"
GATEWAY = "GATEWAY"


def _chain_matches(chain: dict, match: dict) -> bool:
    chain_match = chain.get("filter_chain_match", {})
    if match.get("name") and match["name"] != chain.get("name"):
        return False
    if match.get("sni") and match["sni"] not in chain_match.get("server_names", []):
        return False
    if match.get("transportProtocol") and match["transportProtocol"] != chain_match.get("transport_protocol"):
        return False
    return True


def apply(config: dict, envoy_filter: dict, context: str = GATEWAY) -> list[tuple[str, str]]:
    """Applies `envoy_filter`'s HTTP_FILTER patches to the static listeners of `config` (an
    Envoy bootstrap shaped as istiod builds a gateway, its addresses on istiod's ports), in
    place, as istiod would for a proxy in `context`. Returns the (listener, chain) pairs patched,
    in order."""
    patched = []
    for patch in envoy_filter["spec"]["configPatches"]:
        if patch["applyTo"] != "HTTP_FILTER":
            raise ValueError(f"applyTo {patch['applyTo']}: not rebuilt here")
        match = patch.get("match", {})
        if match.get("context", "ANY") not in (context, "ANY"):
            continue
        operation = patch["patch"]["operation"]
        listener_match = match.get("listener", {})
        chain_match = listener_match.get("filterChain", {})
        filter_match = chain_match.get("filter", {})
        sub_filter = filter_match.get("subFilter", {}).get("name")
        if operation != "INSERT_BEFORE" or not sub_filter:
            raise ValueError(f"operation {operation} without a subFilter match: not rebuilt here")
        for listener in config["static_resources"]["listeners"]:
            if listener_match.get("name") and listener_match["name"] != listener["name"]:
                continue
            port = listener_match.get("portNumber", 0)
            if port and listener["address"]["socket_address"]["port_value"] != port:
                continue
            for chain in listener["filter_chains"]:
                if not _chain_matches(chain, chain_match):
                    continue
                for network_filter in chain["filters"]:
                    if filter_match.get("name") and filter_match["name"] != network_filter["name"]:
                        continue
                    if network_filter["name"] != HCM:
                        continue
                    http_filters = network_filter["typed_config"]["http_filters"]
                    names = [f["name"] for f in http_filters]
                    if sub_filter in names:
                        http_filters.insert(names.index(sub_filter), copy.deepcopy(patch["patch"]["value"]))
                        patched.append((listener["name"], chain.get("name", "")))
    return patched
