"""Envoy bootstraps shaped like the HTTPS port istiod builds for a gateway, with sni-guard
installed in either of its two forms, for tests that need other Gateways than the example's.

What istiod builds (read from Istio's source, pilot/pkg/networking/core: gateway.go,
listener_builder.go, connection_settings.go; pilot/pkg/model/gateway.go):

- one listener for the port, named `<bind>_<port>` (`0.0.0.0_443`), with the TLS inspector;
- one filter chain per Gateway server, matched by `filter_chain_match.server_names` = the
  server's hosts (namespace prefix removed); a server whose hosts include `*` gets a chain without
  `server_names`, which Envoy picks when no other chain's names match (a Gateway API listener
  without `hostname` is such a server);
- in each chain its own HTTP connection manager (`codec_type: AUTO`, `normalize_path: true`,
  `merge_slashes: true`, the defaults of Istio's path normalisation and connection settings)
  and its own route table: one virtual host per host, routes of every VirtualService/HTTPRoute
  bound to that server;
- ALPN `h2` and `http/1.1`;
- a PASSTHROUGH server is a chain of the same listener matched by its SNI hosts, with no TLS
  context and a TCP proxy to the destination of its TLS route (`buildGatewayNetworkFiltersFromTLSRoutes`
  in gateway.go): its connections never meet an HTTP connection manager, sni-guard included.

With `quic=True`, also the QUIC listener istiod adds when `PILOT_ENABLE_QUIC_LISTENERS` is on and
the gateway's Service exposes the port over UDP too (pilot/pkg/model/gateway.go `MergeGateways`,
`udpSupportedPort`; pilot/pkg/networking/core/gateway.go `buildGatewayHTTP3FilterChains`,
`createGatewayHTTPFilterChainOpts`; listener.go `buildGatewayListener`,
`buildDownstreamQUICTransportSocket`, `BuildListenerTLSContext`):

- named `udp_<bind>_<port>` beside the TCP listener's `<bind>_<port>` (`getListenerName`), on the
  same port number over UDP, with `udp_listener_config` (`quic_options: {}`,
  `downstream_socket_config: {}`) and no listener filter (no TLS inspector: QUIC reads the SNI
  itself);
- one chain per HTTPS server with the same `server_names` (`TLSServerInfo.SNIHosts`) and the same
  route table (same RDS name: "this HTTP/3 server is a mirror of an existing HTTPS server");
- its TLS context inside `envoy.transport_sockets.quic` (`QuicDownstreamTransport`), ALPN `h3`,
  and `require_client_certificate: false` whatever the server's TLS mode (a MUTUAL server's
  QUIC chain does not ask for a client certificate: istiod's TODO for envoy#23809);
- the HTTP connection manager from the same builder, hence the same HTTP filters (a WasmPlugin's
  included), with `codec_type: HTTP3` and `http3_protocol_options: {}`.

istiod also adds `alt-svc: h3=":<port>"; ma=86400` to every route of such a server
(route.go `buildHTTP3AltSvcHeader`); these route tables leave it out (no test follows it).

Istio's current route tables have one domain per virtual host and set
`ignore_port_in_host_matching` (gateway.go); older releases listed `host` and `host:*`. Both
route `host:port` like `host`; this module does as current Istio does.

Backends are `direct_response` bodies naming the backend (`infra-backend-v1\\n`), so a test
sees which route table and route answered. Every chain serves one certificate whose SANs cover
every name the test uses (`envoy.make_certs`). The access log shows the chain Envoy picked, the
SNI, `:authority`, the protocol, the status and `%RESPONSE_CODE_DETAILS%` (`direct_response`,
`route_not_found`, or sni-guard's `sni_guard_misdirected_request`), and an `x-case` request
header so a test finds its own line.

sni-guard is installed in one of two forms, which must answer alike:

- `WASM_FORM` ("a"): a plain `envoy.extensions.filters.http.wasm.v3.Wasm` HTTP filter before the
  router, as an Istio WasmPlugin installs it: every request reaches the module.
- `MATCHER_FORM` ("b"): the same filter inside Envoy's `ExtensionWithMatcher`, whose CEL matcher
  skips it for a request whose `:authority` is exactly the SNI, as shipped for plain Envoy and
  the EnvoyFilter (`envoyfilter/envoy.yaml`). The plugin configuration then declares that matcher
  in `same_name_matcher` (its CEL text), so the module can refuse a matcher too weak for its
  configuration. The matcher comes from `same_name_matcher`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

from e2e.support import envoy as envoy_support
from e2e.support import matcher as matcher_support

WASM_FORM = "a"
MATCHER_FORM = "b"
FORMS = (WASM_FORM, MATCHER_FORM)
FORM_NAMES = {WASM_FORM: "Wasm filter (WasmPlugin)", MATCHER_FORM: "behind Envoy's matcher (EnvoyFilter)",
              None: "no sni-guard"}

CATCH_ALL = "*"
ACCESS_LOG_FORMAT = (
    "conn=%CONNECTION_ID% chain=%FILTER_CHAIN_NAME% sni=%REQUESTED_SERVER_NAME% "
    "authority=%REQ(:AUTHORITY)% path=%REQ(:PATH)% protocol=%PROTOCOL% case=%REQ(X-CASE)% "
    "status=%RESPONSE_CODE% details=%RESPONSE_CODE_DETAILS%\n")

TLS_INSPECTOR = {
    "name": "envoy.filters.listener.tls_inspector",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
}
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
QUIC_TRANSPORT_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.quic.v3.QuicDownstreamTransport"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}


@dataclass(frozen=True)
class Route:
    """One route: requests for any of `domains` whose path has the prefix `prefix` (Gateway
    API's PathPrefix: whole segments) go to `backend`."""
    domains: tuple[str, ...]
    prefix: str
    backend: str


@dataclass
class Server:
    """One Gateway server (an Istio Gateway's `servers[]` entry, a Gateway API listener)."""
    hosts: list[str]
    routes: list[Route] = field(default_factory=list)
    require_client_certificate: bool = False
    name: str = ""
    passthrough_to: int | None = None
    """A PASSTHROUGH server: the loopback port its TLS stream is forwarded to, as is."""

    @property
    def is_catch_all(self) -> bool:
        return any(_strip_namespace(h) == CATCH_ALL for h in self.hosts)

    @property
    def server_names(self) -> list[str]:
        """The chain's `filter_chain_match.server_names`: none for a catch-all server."""
        if self.is_catch_all:
            return []
        return sorted({_strip_namespace(h) for h in self.hosts})


def _strip_namespace(host: str) -> str:
    return host.split("/", 1)[1] if "/" in host else host


# --- sni-guard's two forms --------------------------------------------------------------------

def matcher_for(plugin_config: dict) -> tuple[str, dict]:
    """The CEL matcher that skips sni-guard for this plugin configuration, as (text, parsed
    expression for Envoy's `cel_expr_parsed.expr`; Envoy 1.40 takes no CEL text there): the
    weakest test the filter accepts (e2e/support/matcher.py `required`, which the filter's
    `SameNameTest::required` agrees with):

    - no `*` server, no server below another's wildcard, `on_missing_sni: allow`: `:authority`
      exactly the SNI (the example's);
    - a `*` server, or a server below another's wildcard: also an SNI that is a host name.
      Envoy matches `server_names` literally, so `b.example.com:443` or `b.example.com.` lands
      in the catch-all chain, whose route table may serve b.example.com: an `:authority` equal
      to such an SNI must reach the module;
    - else, `on_missing_sni: reject`: a connection without SNI must reach the module even with
      an empty `:authority` (HTTP/1.1 carries an empty Host to the filters)."""
    text = matcher_support.required(plugin_config)
    return text, matcher_support.parsed(text)["expr"]


def form_configuration(plugin_config: dict, form: str) -> dict:
    """The plugin configuration as installed in `form`: in the matcher form it declares the
    matcher in front (`same_name_matcher`)."""
    config = copy.deepcopy(plugin_config)
    if form == MATCHER_FORM:
        config["same_name_matcher"] = matcher_for(plugin_config)[0]
    return config


def _example_sni_guard_filter() -> dict:
    """sni-guard's HTTP filter as the shipped example has it (behind the matcher)."""
    for hcm in envoy_support.connection_managers(envoy_support.load_example()):
        for f in hcm["http_filters"]:
            if f["name"] == envoy_support.SNI_GUARD_FILTER:
                return f
    raise KeyError("no sni-guard filter in envoyfilter/envoy.yaml")


def sni_guard_filter(plugin_config: dict, form: str, wasm: Path = envoy_support.WASM) -> dict:
    """sni-guard's HTTP filter in `form`, built from the shipped example's filter: the module
    path, the configuration (`form_configuration`) and, in the matcher form, the matcher
    (`same_name_matcher`) are replaced."""
    if form not in FORMS:
        raise ValueError(f"form {form!r}: expected one of {FORMS}")
    example = copy.deepcopy(_example_sni_guard_filter())
    wasm_typed = envoy_support.wasm_filter(example)
    wasm_typed["config"]["vm_config"]["code"] = {"local": {"filename": str(wasm)}}
    wasm_typed["config"]["configuration"]["value"] = json.dumps(form_configuration(plugin_config, form))
    if form == WASM_FORM:
        return {"name": envoy_support.SNI_GUARD_FILTER, "typed_config": wasm_typed}
    text, expr = matcher_for(plugin_config)
    typed = example["typed_config"]
    if typed["@type"] != envoy_support.EXTENSION_WITH_MATCHER:
        raise ValueError("the example's sni-guard filter is no longer behind Envoy's matcher")
    [matcher] = typed["xds_matcher"]["matcher_list"]["matchers"]
    cel = matcher["predicate"]["single_predicate"]["custom_match"]["typed_config"]
    cel["description"] = text
    cel["expr_match"] = {"cel_expr_parsed": {"expr": expr}}
    typed["extension_config"]["typed_config"] = wasm_typed
    return example


# --- the bootstrap ------------------------------------------------------------------------------

def _route(route: Route) -> dict:
    # Istio turns Gateway API's PathPrefix into `path_separated_prefix` (whole segments), and
    # `/` into `prefix: /`.
    match = {"prefix": "/"} if route.prefix == "/" else {"path_separated_prefix": route.prefix.rstrip("/")}
    return {"match": match, "direct_response": {"status": 200, "body": {"inline_string": f"{route.backend}\n"}}}


def route_table(name: str, server: Server) -> dict:
    """One virtual host per host named by the server's routes, in Istio's order (exact before
    wildcard, longer first); a server without routes gets Istio's blackhole virtual host `*`
    with no routes (every request 404)."""
    by_domain: dict[str, list[dict]] = {}
    for route in server.routes:
        for domain in route.domains:
            by_domain.setdefault(domain.lower(), []).append(_route(route))
    if not by_domain:
        virtual_hosts = [{"name": "blackhole:443", "domains": ["*"], "routes": []}]
    else:
        virtual_hosts = [{"name": f"{domain}:443", "domains": [domain], "routes": routes}
                         for domain, routes in by_domain.items()]
    return {"name": name, "virtual_hosts": virtual_hosts, "ignore_port_in_host_matching": True}


ISTIO_BIND = "0.0.0.0"


def listener_names(port: int = 443) -> tuple[str, str]:
    """The names istiod gives a gateway's TCP and QUIC listeners on `port` (`getListenerName`,
    bind 0.0.0.0)."""
    return f"{ISTIO_BIND}_{port}", f"udp_{ISTIO_BIND}_{port}"


def _access_log() -> list[dict]:
    return [{"name": "envoy.access_loggers.stdout", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
        "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}}}}]


def stat_prefix(chain: str, istio_port: int = 443) -> str:
    """The HTTP connection manager's stat prefix in the chains of the server named `chain`, TCP
    and QUIC alike (istiod: the server's name for both)."""
    return f"https.{istio_port}.{chain}"


def _chain(server: Server, name: str, certs: envoy_support.Certs, http_filters: list[dict], *, quic: bool,
           client_ca: Path | None, normalize_path: bool, merge_slashes: bool, istio_port: int) -> dict:
    """One server's filter chain, on the TCP listener or (`quic`) on the QUIC listener."""
    tls_context: dict = {"common_tls_context": {
        "alpn_protocols": ["h3"] if quic else ["h2", "http/1.1"],
        "tls_certificates": [{"certificate_chain": {"filename": str(certs.cert)},
                              "private_key": {"filename": str(certs.key)}}]}}
    if server.require_client_certificate and not quic:
        if client_ca is None:
            raise ValueError(f"{name} requires a client certificate: pass client_ca")
        tls_context["require_client_certificate"] = True
        tls_context["common_tls_context"]["validation_context"] = {"trusted_ca": {"filename": str(client_ca)}}
    elif quic:
        tls_context["require_client_certificate"] = False
    if quic:
        transport_socket = {"name": "envoy.transport_sockets.quic", "typed_config": {
            "@type": QUIC_TRANSPORT_TYPE, "downstream_tls_context": tls_context}}
    else:
        transport_socket = {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": TLS_TYPE, **tls_context}}
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix(name, istio_port),
        "codec_type": "HTTP3" if quic else "AUTO",
        "normalize_path": normalize_path,
        "merge_slashes": merge_slashes,
        "access_log": _access_log(),
        "http_filters": copy.deepcopy(http_filters),
        "route_config": route_table(f"https.{istio_port}.{name}", server),
    }
    if quic:
        hcm["http3_protocol_options"] = {}
    chain = {"name": name, "transport_socket": transport_socket,
             "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
    if server.server_names:
        chain["filter_chain_match"] = {"server_names": server.server_names}
    return chain


def bootstrap(servers: list[Server], certs: envoy_support.Certs, *, plugin_config: dict | None, form: str | None,
              client_ca: Path | None = None, normalize_path: bool = True, merge_slashes: bool = True,
              wasm: Path = envoy_support.WASM, quic: bool = False, istio_port: int = 443) -> dict:
    """An Envoy bootstrap for `servers` on 127.0.0.1 (ports chosen by the kernel): sni-guard with
    `plugin_config` in `form` (`WASM_FORM`, `MATCHER_FORM`), or no sni-guard when `form` is None.
    `client_ca` is what a server with `require_client_certificate` trusts. `quic` adds the QUIC
    listener istiod builds beside the TCP one. `istio_port` is the port istiod would listen on:
    it names the listeners and route tables (`at_istio_port` puts it in their addresses)."""
    if form is not None and plugin_config is None:
        raise ValueError("sni-guard needs a plugin configuration")
    http_filters = []
    if form is not None:
        http_filters.append(sni_guard_filter(plugin_config, form, wasm))
    http_filters.append(copy.deepcopy(ROUTER))
    options = {"client_ca": client_ca, "normalize_path": normalize_path, "merge_slashes": merge_slashes,
               "istio_port": istio_port}
    names = [server.name or f"server-{i}" for i, server in enumerate(servers)]
    tcp_chains, clusters = [], []
    for server, name in zip(servers, names):
        if server.passthrough_to is not None:
            chain, cluster = _passthrough_chain(name, server)
            tcp_chains.append(chain)
            clusters.append(cluster)
        else:
            tcp_chains.append(_chain(server, name, certs, http_filters, quic=False, **options))
    tcp_name, quic_name = listener_names(istio_port)
    listeners = [{
        "name": tcp_name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "listener_filters": [copy.deepcopy(TLS_INSPECTOR)],
        "filter_chains": tcp_chains,
    }]
    if quic:
        # QUIC chains mirror the HTTPS servers only: a passthrough server has none.
        listeners.append({
            "name": quic_name,
            "address": {"socket_address": {"protocol": "UDP", "address": "127.0.0.1", "port_value": 0}},
            "udp_listener_config": {"quic_options": {}, "downstream_socket_config": {}},
            "filter_chains": [_chain(s, n, certs, http_filters, quic=True, **options)
                              for s, n in zip(servers, names) if s.passthrough_to is None],
        })
    resources: dict = {"listeners": listeners}
    if clusters:
        resources["clusters"] = clusters
    return {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": resources}


def _passthrough_chain(name: str, server: Server) -> tuple[dict, dict]:
    """A PASSTHROUGH server's chain (SNI match, no TLS context, a TCP proxy) and the cluster
    it forwards to, named as istiod names an outbound cluster."""
    if not server.server_names:
        raise ValueError(f"{name}: a passthrough server needs SNI hosts")
    cluster_name = f"outbound|443||{server.server_names[0]}"
    chain = {
        "name": name,
        "filter_chain_match": {"server_names": server.server_names},
        "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": cluster_name, "cluster": cluster_name}}],
    }
    cluster = {"name": cluster_name, "type": "STATIC", "connect_timeout": "5s", "load_assignment": {
        "cluster_name": cluster_name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": "127.0.0.1", "port_value": server.passthrough_to}}}}]}]}}
    return chain, cluster


def at_istio_port(config: dict, port: int) -> dict:
    """`config` with every listener's address on `port`, as istiod writes them: for matching an
    EnvoyFilter's `portNumber` against them (`istio_chain.apply_to_listeners`), not for running."""
    config = copy.deepcopy(config)
    for listener in config["static_resources"]["listeners"]:
        listener["address"]["socket_address"]["port_value"] = port
    return config


def on_kernel_ports(config: dict) -> dict:
    """`config` with every port back to 0, for running on loopback."""
    return at_istio_port(config, 0)


# --- Gateway API manifests -> servers -------------------------------------------------------------

def gateway_api_servers(documents: list[dict], gateway_name: str) -> list[Server]:
    """The servers istiod makes of a Gateway API Gateway and the HTTPRoutes attached to it by
    `sectionName`: one server per listener (hosts: its `hostname`, `*` without one); a route's
    virtual hosts are its `hostnames`, or the listener's hostname (`*`) without any."""
    [gateway] = [d for d in documents if d and d.get("kind") == "Gateway" and d["metadata"]["name"] == gateway_name]
    servers: dict[str, Server] = {}
    for listener in gateway["spec"]["listeners"]:
        hostname = listener.get("hostname", CATCH_ALL)
        servers[listener["name"]] = Server(hosts=[hostname], name=listener["name"])
    for doc in documents:
        if not doc or doc.get("kind") != "HTTPRoute":
            continue
        for parent in doc["spec"]["parentRefs"]:
            if parent["name"] != gateway_name or parent.get("sectionName") not in servers:
                continue
            server = servers[parent["sectionName"]]
            domains = tuple(doc["spec"].get("hostnames") or server.hosts)
            for rule in doc["spec"]["rules"]:
                backend = rule["backendRefs"][0]["name"]
                for match in rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]:
                    if match["path"]["type"] != "PathPrefix":
                        raise ValueError(f"{doc['metadata']['name']}: only PathPrefix matches are built")
                    server.routes.append(Route(domains, match["path"]["value"], backend))
    return list(servers.values())
