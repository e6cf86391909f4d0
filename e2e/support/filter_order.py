"""Who answers a misdirected request on an Istio gateway that has security policies (issue #23,
item 4): one Envoy whose listeners are the same gateway with the HTTP filters istiod builds for
it (`e2e/support/istio_chain.py`), and sni-guard placed as each installed form places it, as
`sni-guard config` writes it for that gateway's Gateways (`GATEWAYS`):

- `none`: no sni-guard;
- `envoyfilter-before-router`: the EnvoyFilter as sni-guard 0.1.0 wrote it, `INSERT_BEFORE`
  the router (the manifest of today with that one patch operation put back);
- `envoyfilter`: the EnvoyFilter as written now (`INSERT_FIRST`);
- `wasmplugin`, `trafficextension`: phase AUTHN, delivered by ECDS (`e2e/support/istiod.py`).

The gateway's servers, one certificate for all: `*.example.com` (server `apps`, which a
connection for `a.example.com` lands in), `b.example.com` and `c.example.com`, each with a route
table of its own; `apps` routes every host under example.com, as a wildcard VirtualService does,
so its route table has a route for `b.example.com` too (as in Gateway API conformance case 9).

The gateway's policies, rendered as istiod renders them (`e2e/support/istio_policies.py`):

- `sso`, CUSTOM, provider `sso`: requests for `/account/*` on a's and c's connections
  (condition `connection.sni`) are checked by a single sign-on service
  (`e2e/support/ext_authz.py`), which sends a request without its session cookie to the login
  page (302). Envoy's ext_authz checks only a request its connection's route table routes (it
  skips one without a route: source/extensions/filters/http/ext_authz/ext_authz.cc,
  `getPerRouteFlags`), which is why both connections are probed;
- a RequestAuthentication with one JWT rule: a request carrying a token the rule's keys do not
  verify gets 401 (one without a token passes);
- `internal`, DENY: `/internal/*` on a's and c's connections gets 403;
- the Telemetry API's `istio.stats`, a stand-in counting what it would count
  (`wasm_modules.stats_stand_in_module`).

Each listener binds its own port and has its own HTTP connection manager statistics
(`http.<variant>.https.443.<server>.`).
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from e2e.support import cli, exact_client, istio_chain, istio_gateway, istio_policies, istiod, xds
from e2e.support import envoy as envoy_support
from e2e.support.ext_authz import ExtAuthzServer
from e2e.support.wasm_modules import stats_stand_in_module

A, B, C, APPS = "a.example.com", "b.example.com", "c.example.com", "*.example.com"
SERVERS = [istio_gateway.Server([APPS], [istio_gateway.Route((APPS,), "/", "backend-apps")], name="apps"),
           istio_gateway.Server([B], [istio_gateway.Route((B,), "/", "backend-b")], name="b"),
           istio_gateway.Server([C], [istio_gateway.Route((C,), "/", "backend-c")], name="c")]
# The same servers as Istio Gateways, for `sni-guard config`.
GATEWAYS = "".join(f"""---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw-{server.name}, namespace: team-{server.name}}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: ["{server.hosts[0]}"]
    tls: {{mode: SIMPLE, credentialName: example-com}}
""" for server in SERVERS)
LISTENER_PORT = 443  # the port istiod gave the listener, which the EnvoyFilter's patches match

PROVIDER = istio_policies.ExtAuthzProvider("sso", "sso.auth.svc.cluster.local", 8000)
SSO = istio_policies.AuthorizationPolicy(
    "sso", "istio-system", "CUSTOM", provider="sso",
    rules=[{"to": [{"operation": {"paths": ["/account/*"]}}], "when": [{"key": "connection.sni", "values": [A, C]}]}])
INTERNAL = istio_policies.AuthorizationPolicy(
    "internal", "istio-system", "DENY",
    rules=[{"to": [{"operation": {"paths": ["/internal/*"]}}], "when": [{"key": "connection.sni", "values": [A, C]}]}])
ISSUER = "https://issuer.example.com"

VARIANTS = ("none", "envoyfilter-before-router", "envoyfilter", "wasmplugin", "trafficextension")
VARIANT_NAMES = {"none": "no sni-guard", "envoyfilter-before-router": "EnvoyFilter, before the router (0.1.0)",
                 "envoyfilter": "EnvoyFilter, first (now)", "wasmplugin": "WasmPlugin, phase AUTHN",
                 "trafficextension": "TrafficExtension, phase AUTHN"}
SNI_GUARD = "sni-guard"


@dataclass(frozen=True)
class Probe:
    """One HTTP/2 request on a new connection."""
    what: str
    sni: str
    authority: str
    path: str
    forged_token: bool = False

    @property
    def server(self) -> str:
        """The server whose chain the SNI picks."""
        return next((s.name for s in SERVERS if self.sni in s.hosts), "apps")


# Misdirected requests (:authority b on another server's connection), each meeting one of the
# policies first.
MISDIRECTED = {
    "sso": Probe("b on a's connection (routed there), /account/: CUSTOM", A, B, "/account/settings"),
    "sso-unrouted": Probe("b on c's connection (no route there), /account/: CUSTOM", C, B, "/account/settings"),
    "jwt": Probe("b on a's connection, a token jwt_authn rejects", A, B, "/", forged_token=True),
    "rbac": Probe("b on a's connection, /internal/: DENY", A, B, "/internal/status"),
    "plain": Probe("b on a's connection, no policy applies", A, B, "/"),
}
# Requests on their own connections, which the policies must still judge whatever the placement:
# sni-guard first answers only misdirected requests and never skips a policy for the others.
WELL_DIRECTED = {
    "a-sso": (Probe("a, /account/", A, A, "/account/settings"), 302),
    "c-sso": (Probe("c, /account/", C, C, "/account/settings"), 302),
    "b-sso": (Probe("b, /account/ (b's connection: no SSO)", B, B, "/account/settings"), 200),
    "a-jwt": (Probe("a, a token jwt_authn rejects", A, A, "/", forged_token=True), 401),
    "b-jwt": (Probe("b, a token jwt_authn rejects", B, B, "/", forged_token=True), 401),
    "a-rbac": (Probe("a, /internal/", A, A, "/internal/status"), 403),
    "b-rbac": (Probe("b, /internal/ (b's connection: allowed)", B, B, "/internal/status"), 200),
}
# What each misdirected request gets, by variant: the HTTP/2 status seen in Envoy 1.40.
EXPECTED = {
    "none": {"sso": 302, "sso-unrouted": 404, "jwt": 401, "rbac": 403, "plain": 200},
    "envoyfilter-before-router": {"sso": 302, "sso-unrouted": 421, "jwt": 401, "rbac": 403, "plain": 421},
    "envoyfilter": {"sso": 421, "sso-unrouted": 421, "jwt": 421, "rbac": 421, "plain": 421},
    "wasmplugin": {"sso": 302, "sso-unrouted": 421, "jwt": 421, "rbac": 421, "plain": 421},
    "trafficextension": {"sso": 302, "sso-unrouted": 421, "jwt": 421, "rbac": 421, "plain": 421},
}


def stand_in_filter(module: Path) -> dict:
    """The `istio.stats` stand-in as the Telemetry API's filter sits: a Wasm filter in a VM of
    its own."""
    return {"name": istio_chain.STATS_FILTER, "typed_config": {
        "@type": istiod.WASM_HTTP_FILTER_TYPE,
        "config": {"name": "stats-stand-in", "root_id": "stats-stand-in",
                   "vm_config": {"vm_id": "stats-stand-in", "runtime": "envoy.wasm.runtime.v8",
                                 "code": {"local": {"filename": str(module)}}}}}}


def ext_authz_cluster(port: int) -> dict:
    """The cluster istiod names for the provider's service, here the loopback server."""
    return {"name": PROVIDER.cluster, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": PROVIDER.cluster, "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


def manifest(kind: str, workdir: Path) -> dict:
    """`sni-guard config --kind KIND --mode enforce` for `GATEWAYS`, with the module this test
    runs."""
    if kind == "envoyfilter":
        args = ["--module-path", envoy_support.WASM]
    else:
        args = ["--image", f"file://{envoy_support.WASM}"]
    workdir.mkdir(parents=True, exist_ok=True)
    gateways = workdir / "gateways.yaml"
    gateways.write_text(GATEWAYS)
    text = cli.config("--kind", kind, "--mode", "enforce", "--selector", "istio=ingressgateway", *args, gateways)
    (workdir / f"{kind}.yaml").write_text(text)
    [doc] = [d for d in yaml.safe_load_all(text) if d]
    return doc


def before_router(envoy_filter: dict) -> dict:
    """`envoy_filter` with each patch as sni-guard 0.1.0 wrote it: INSERT_BEFORE the router,
    no priority."""
    envoy_filter = copy.deepcopy(envoy_filter)
    envoy_filter["spec"].pop("priority", None)
    for patch in envoy_filter["spec"]["configPatches"]:
        patch["patch"]["operation"] = "INSERT_BEFORE"
        patch["match"]["listener"]["filterChain"]["filter"]["subFilter"] = {"name": "envoy.filters.http.router"}
    return envoy_filter


def _named(listener: dict, variant: str) -> dict:
    listener = copy.deepcopy(listener)
    listener["name"] = variant
    for chain in listener["filter_chains"]:
        hcm = chain["filters"][0]["typed_config"]
        hcm["stat_prefix"] = f"{variant}.{hcm['stat_prefix']}"
    return listener


def _with_filters(listener: dict, filters: list[dict]) -> dict:
    listener = copy.deepcopy(listener)
    for chain in listener["filter_chains"]:
        chain["filters"][0]["typed_config"]["http_filters"] = copy.deepcopy(filters)
    return listener


@dataclass
class Gateway:
    envoy: xds.XdsEnvoy
    ext_authz: ExtAuthzServer
    ports: dict[str, int]
    forged_token: str
    certs: envoy_support.Certs

    def get(self, variant: str, probe: Probe) -> exact_client.Reply:
        headers = [("authorization", f"Bearer {self.forged_token}")] if probe.forged_token else []
        return exact_client.get(self.ports[variant], probe.sni, probe.authority, probe.path,
                                ca=self.certs.ca, extra_headers=headers)

    def counters(self, variant: str, server: str) -> dict[str, int]:
        """The chain's HCM response classes and the `istio.stats` stand-in's counters (one VM for
        every listener: read them around one request)."""
        prefix = f"http.{variant}.https.443.{server}."
        out = {}
        for line in self.envoy.admin("/stats?filter=^(http\\.|wasmcustom\\.stats_stand_in)").splitlines():
            name, _, value = line.partition(": ")
            if not value.strip().isdigit():
                continue
            if name.startswith(prefix):
                out[name[len(prefix):]] = int(value)
            elif name.startswith("wasmcustom.stats_stand_in."):
                out[name.removeprefix("wasmcustom.")] = int(value)
        return out

    def http_filter_names(self, variant: str) -> list[str]:
        """The HTTP filters of the listener's first chain, as Envoy holds them (`/config_dump`)."""
        dump = json.loads(self.envoy.admin("/config_dump?resource=dynamic_listeners"))
        for entry in dump["configs"]:
            listener = entry.get("active_state", {}).get("listener", {})
            if listener.get("name") == variant:
                hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
                return [f["name"] for f in hcm["http_filters"]]
        raise KeyError(variant)


@contextlib.contextmanager
def gateway(certs: envoy_support.Certs, workdir: Path):
    """The gateway Envoy with one listener per variant, and the ext_authz server; stopped when
    the `with` block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    module = workdir / "stats-stand-in.wasm"
    module.write_bytes(stats_stand_in_module())
    jwks = istio_policies.make_jwks(workdir / "jwt")
    policies = istio_chain.GatewayPolicies(
        custom=istio_policies.custom_filters([SSO], PROVIDER),
        authn=[istio_policies.jwt_filter([istio_policies.JwtRule(ISSUER, jwks)])],
        authz=istio_policies.rbac_filters([INTERNAL]),
        telemetry=[stand_in_filter(module)])
    base_bootstrap = istio_gateway.bootstrap(SERVERS, certs, plugin_config=None, form=None)
    base = envoy_support.https_listener(base_bootstrap)
    istio_built = _with_filters(base, istio_chain.http_filters(policies))
    envoy_filter = manifest("envoyfilter", workdir)
    files = xds.FileXds(workdir / "xds")
    ecds = istiod.Gateway(files, istiod.FakeRegistry(workdir / "agent-cache"))
    plugins = {kind: istiod.WasmPlugin.from_manifest(manifest(kind, workdir))
               for kind in ("wasmplugin", "trafficextension")}
    listeners = [
        _named(istio_built, "none"),
        _named(istio_chain.apply_http_filter_patches(istio_built, [before_router(envoy_filter)], LISTENER_PORT),
               "envoyfilter-before-router"),
        _named(istio_chain.apply_http_filter_patches(istio_built, [envoy_filter], LISTENER_PORT), "envoyfilter"),
        *(_named(ecds.listener(base, [plugin], policies=policies), kind) for kind, plugin in plugins.items()),
    ]
    with ExtAuthzServer() as ext_authz:
        bootstrap = files.bootstrap(base_bootstrap, listeners)
        bootstrap["static_resources"]["clusters"] = [ext_authz_cluster(ext_authz.port)]
        envoy = xds.XdsEnvoy(bootstrap, workdir, name="filter-order")
        with envoy:
            ports = xds.listener_ports(envoy)
            yield Gateway(envoy, ext_authz, ports, istio_policies.forged_token(ISSUER), certs)
