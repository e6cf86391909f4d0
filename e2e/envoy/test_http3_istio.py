"""sni-guard on the QUIC listeners of an Istio gateway, as istiod builds them when
`PILOT_ENABLE_QUIC_LISTENERS` is on and the gateway's Service exposes the port over UDP too
(e2e/support/istio_gateway.py, `quic=True`), in both installed forms:

- the WasmPlugin `sni-guard config` writes, delivered as istiod and istio-agent deliver it
  (ECDS, e2e/support/istiod.py): istiod builds the QUIC chains' connection managers with the same
  builder, so the same ECDS filter is in them, and one resource configures both listeners, an
  update included;
- the EnvoyFilter `sni-guard config` writes, applied as istiod applies it
  (e2e/support/istio_chain.py): its patch matches a listener by port number alone, so it
  reaches the QUIC listener of each port it names, and only in context GATEWAY.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from e2e.support import cli, h3client, istio_chain, istio_gateway, istiod, manifests, xds
from e2e.support import envoy as envoy_support
from e2e.support import gateway_api_conformance as conformance
from e2e.support.gateway_api_conformance import HTTP2, HTTP3, check
from e2e.support.istio_gateway import Route, Server

MODULE_URL = "https://modules.example.com/sni-guard.wasm"
ROUTER = "envoy.filters.http.router"


def http_filter_names(chain: dict) -> list[str]:
    return [f["name"] for f in chain["filters"][0]["typed_config"]["http_filters"]]


@pytest.fixture(scope="module")
def gateway_certs(workdir):
    return envoy_support.make_certs(workdir / "http3-istio-certs", conformance.CERTIFICATE_NAMES)


# --- the listener istiod builds --------------------------------------------------------------------

def test_the_quic_listener_mirrors_the_tcp_one(gateway_certs):
    config = istio_gateway.bootstrap(conformance.servers(conformance.documents()), gateway_certs,
                                     plugin_config={"servers": []}, form=istio_gateway.WASM_FORM, quic=True)
    tcp, quic = config["static_resources"]["listeners"]
    assert (tcp["name"], quic["name"]) == ("0.0.0.0_443", "udp_0.0.0.0_443")
    assert quic["address"]["socket_address"]["protocol"] == "UDP" and "listener_filters" not in quic

    def chains(listener):
        return [(c["name"], c.get("filter_chain_match", {}).get("server_names"),
                 c["filters"][0]["typed_config"]["route_config"]["name"], http_filter_names(c))
                for c in listener["filter_chains"]]

    # Same chains, same SNI names (none for the catch-all), same route tables, same HTTP filters.
    assert chains(quic) == chains(tcp)
    assert chains(tcp)[0] == ("https", None, "https.443.https", ["sni-guard", ROUTER])
    for chain in quic["filter_chains"]:
        tls = chain["transport_socket"]["typed_config"]["downstream_tls_context"]
        assert (tls["common_tls_context"]["alpn_protocols"], tls["require_client_certificate"]) == (["h3"], False)
        assert chain["filters"][0]["typed_config"]["codec_type"] == "HTTP3"


# --- the WasmPlugin, through ECDS -------------------------------------------------------------------

@pytest.fixture(scope="module")
def wasm_plugin(workdir) -> tuple[istiod.WasmPlugin, istiod.FakeRegistry]:
    """The WasmPlugin `sni-guard config` writes for the conformance Gateway (module over https,
    enforce), and a registry serving the module at its URL."""
    text = cli.config("--kind", "wasmplugin", "--image", MODULE_URL, "--wasm", envoy_support.WASM,
                      "--selector", conformance.SELECTOR, "--mode", "enforce", conformance.FIXTURE)
    [plugin] = [istiod.WasmPlugin.from_manifest(d) for d in yaml.safe_load_all(text) if d]
    registry = istiod.FakeRegistry(workdir / "http3-istio-agent-cache")
    registry.add_file(MODULE_URL, envoy_support.WASM)
    return plugin, registry


@pytest.fixture(scope="module")
def ecds_gateway(gateway_certs, wasm_plugin, workdir):
    plugin, registry = wasm_plugin
    directory = workdir / "http3-istio-ecds"
    files = xds.FileXds(directory / "xds")
    gateway = istiod.Gateway(files, registry)
    config = istio_gateway.bootstrap(conformance.servers(conformance.documents()), gateway_certs,
                                     plugin_config={"servers": []}, form=istio_gateway.WASM_FORM, quic=True)
    listeners = [gateway.listener(listener, [plugin]) for listener in config["static_resources"]["listeners"]]
    with xds.XdsEnvoy(files.bootstrap(config, listeners), directory, name="envoy") as envoy:
        yield envoy, gateway, plugin, listeners


def test_the_wasmplugins_filter_is_in_every_quic_chain(ecds_gateway):
    _, _, plugin, listeners = ecds_gateway
    name = istiod.resource_name(plugin)
    for listener in listeners:
        for chain in listener["filter_chains"]:
            filters = chain["filters"][0]["typed_config"]["http_filters"]
            assert http_filter_names(chain) == [name, ROUTER], (listener["name"], chain["name"])
            assert filters[0]["config_discovery"]["config_source"]["path_config_source"]


@pytest.mark.parametrize("transport", [HTTP2, HTTP3])
def test_the_wasmplugin_answers_on_both_listeners(ecds_gateway, gateway_certs, transport):
    envoy = ecds_gateway[0]
    check(envoy, gateway_certs, "third-example.wildcard.org", "fourth-example.wildcard.org", "421", transport=transport)
    check(envoy, gateway_certs, "second-example.org", "second-example.org", "200 infra-backend-v2", transport=transport)
    check(envoy, gateway_certs, "example.org", "second-example.org", "421", chain="https", transport=transport)


def test_an_update_reaches_the_quic_chains(ecds_gateway, gateway_certs):
    """kubectl apply of the WasmPlugin in dry_run, then back to enforce: one ECDS resource, so the
    QUIC chains follow each update as the TCP ones do."""
    envoy, gateway, plugin, _ = ecds_gateway
    seen = []
    for version, mode, want in [("2", "dry_run", "404"), ("3", "enforce", "421")]:
        update = plugin.updated(version, pluginConfig=dict(plugin.spec["pluginConfig"], mode=mode))
        assert gateway.push(envoy, update) == "accepted"
        for transport in (HTTP3, HTTP2):
            check(envoy, gateway_certs, "example.org", "second-example.org", want, transport=transport)
        seen.append((version, mode))
    assert xds.ecds_stats(envoy, istiod.resource_name(plugin))["version_text"] == "3", seen


# --- the EnvoyFilter -------------------------------------------------------------------------------

# The example's Istio Gateways (envoyfilter/example-gateways.yaml) behind the Service Istio's
# HTTP/3 needs: port 443 over TCP and over UDP, both to targetPort 8443.
SERVICE = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
           "spec": {"selector": {"istio": "ingressgateway"}, "ports": [
               {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
               {"name": "http3", "port": 443, "targetPort": 8443, "protocol": "UDP"}]}}
EXAMPLE_SERVERS = [Server(hosts=[h], name=h[0], routes=[Route((h,), "/", f"{h[0]}-backend")])
                   for h in ("a.example.com", "b.example.com")] + [
    Server(hosts=["c.example.com", "d.example.com"], name="cd",
           routes=[Route(("c.example.com", "d.example.com"), "/", "cd-backend")])]
CHAINS = ["a", "b", "cd"]


@pytest.fixture(scope="module")
def envoy_filter(workdir) -> dict:
    gateways = workdir / "http3-gateways-with-udp.yaml"
    gateways.write_text(manifests.EXAMPLE_GATEWAYS.read_text() + "---\n" + yaml.safe_dump(SERVICE))
    text = cli.config("--kind", "envoyfilter", "--selector", "istio=ingressgateway", "--mode", "enforce", gateways)
    [document] = [d for d in yaml.safe_load_all(text) if d]
    return document


def gateway_listeners(certs, *ports: int) -> dict:
    """The example Gateways' listeners on each of `ports`, TCP and QUIC, at istiod's ports."""
    configs = [istio_gateway.at_istio_port(istio_gateway.bootstrap(EXAMPLE_SERVERS, certs, plugin_config=None,
                                                                   form=None, quic=True, istio_port=port), port)
               for port in ports]
    config = configs[0]
    for other in configs[1:]:
        config["static_resources"]["listeners"] += other["static_resources"]["listeners"]
    return config


def test_the_patch_matches_the_quic_listener_of_its_port_in_context_gateway(envoy_filter, gateway_certs):
    assert manifests.envoy_filter_ports(envoy_filter) == [8443], "the Service's targetPort, once for TCP and UDP"
    config = gateway_listeners(gateway_certs, 8443, 9443)
    patched = istio_chain.apply_to_listeners(config, [envoy_filter])
    assert patched == [(listener, chain) for listener in ("0.0.0.0_8443", "udp_0.0.0.0_8443") for chain in CHAINS]
    for listener in config["static_resources"]["listeners"]:
        names = [http_filter_names(c) for c in listener["filter_chains"]]
        with_guard = ["sni-guard", ROUTER] if "8443" in listener["name"] else [ROUTER]
        assert names == [with_guard] * len(CHAINS), listener["name"]
    # A sidecar's listeners (any other context) are not patched.
    sidecar = istio_chain.apply_to_listeners(gateway_listeners(gateway_certs, 8443), [envoy_filter],
                                           context="SIDECAR_INBOUND")
    assert sidecar == []


@pytest.fixture(scope="module")
def envoyfilter_gateway(envoy_filter, gateway_certs, workdir):
    config = gateway_listeners(gateway_certs, 8443)
    istio_chain.apply_to_listeners(config, [envoy_filter])
    config = istio_gateway.on_kernel_ports(config)
    for hcm in envoy_support.connection_managers(config):
        for f in hcm["http_filters"]:
            if f["name"] == envoy_support.SNI_GUARD_FILTER:
                envoy_support.wasm_filter(f)["config"]["vm_config"]["code"] = {
                    "local": {"filename": str(envoy_support.WASM)}}
    with envoy_support.Envoy(copy.deepcopy(config), workdir, name="http3-istio-envoyfilter") as envoy:
        yield envoy


@pytest.mark.parametrize("transport", [HTTP2, HTTP3])
def test_the_envoyfilter_answers_on_both_listeners(envoyfilter_gateway, gateway_certs, transport):
    check(envoyfilter_gateway, gateway_certs, "a.example.com", "b.example.com", "421", path="/", chain="a",
          transport=transport)
    check(envoyfilter_gateway, gateway_certs, "c.example.com", "d.example.com", "200 cd-backend", path="/",
          transport=transport)
    check(envoyfilter_gateway, gateway_certs, "a.example.com", "a.example.com", "200 a-backend", path="/",
          transport=transport)


def test_a_quic_connection_carries_a_then_gets_421_for_b(envoyfilter_gateway, gateway_certs):
    with h3client.Connection(envoyfilter_gateway.quic_port, "a.example.com", ca=gateway_certs.ca) as connection:
        statuses = [connection.get(host, "/").status for host in ("a.example.com", "b.example.com", "a.example.com")]
    assert statuses == [200, 421, 200]
