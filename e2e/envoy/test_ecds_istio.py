"""sni-guard delivered as Istio delivers a WasmPlugin (issue #12): what istiod and istio-agent
hand Envoy, rebuilt by e2e/support/istiod.py from the WasmPlugin `sni-guard config` writes for
envoyfilter/example-gateways.yaml (as `make manifests` runs it, in enforce mode), served to a
real Envoy through files (LDS for the listener, ECDS for each WasmPlugin) instead of istiod's
gRPC stream.

Shown here: the first load; an update and a rollback taking effect for new requests without a
restart; two WasmPlugins selecting one gateway; and what Envoy does to traffic when a
configuration or module is bad, under each `failStrategy`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.support import curl as curl_support
from e2e.support import envoy as envoy_support
from e2e.support import istio_install, istiod, readme, xds
from e2e.support.wasm_modules import crashing_module

# The example's configuration as a WasmPlugin carries it: without the matcher's knob (a
# WasmPlugin's filter has no matcher in front).
BASE = {k: v for k, v in envoy_support.plugin_configuration(envoy_support.load_example()).items()
        if k != "same_name_matcher"}
DRY_RUN = dict(BASE, mode="dry_run")
A_AND_B_MERGED = dict(BASE, servers=[{"hosts": ["a.example.com", "b.example.com"]},
                                     {"hosts": ["c.example.com", "d.example.com"]}])
REFUSED = dict(BASE, mode="block")  # sni-guard refuses it: proxy_on_configure returns false
UNLOADABLE_URL = "https://modules.example.com/sni-guard-truncated.wasm"
CRASHING_URL = "https://modules.example.com/crashing.wasm"
FAIL_STRATEGIES = ["FAIL_OPEN", "FAIL_CLOSE"]


@dataclass
class Istio:
    plugin: istiod.WasmPlugin  # the WasmPlugin `make manifests MODE=enforce` writes, resourceVersion 1
    registry: istiod.FakeRegistry
    layout: Path
    unloadable_sha256: str
    crashing_sha256: str


@pytest.fixture(scope="module")
def istio(workdir) -> Istio:
    """`make manifests` for the module under test (the image script and `sni-guard config`, into
    the test's own directory), and a registry serving its image at the manifest's URL, plus two
    bad modules."""
    out = workdir / "istio"
    installed = istio_install.install(out, mode="enforce")
    registry = installed.registry
    # A module with the Wasm magic (istio-agent checks only that) that Envoy cannot parse.
    unloadable = out / "sni-guard-truncated.wasm"
    unloadable.write_bytes(envoy_support.WASM.read_bytes()[:4096])
    registry.add_file(UNLOADABLE_URL, unloadable)
    crashing = out / "crashing.wasm"
    crashing.write_bytes(crashing_module())
    registry.add_file(CRASHING_URL, crashing)
    return Istio(installed.plugin, registry, installed.layout, hashlib.sha256(unloadable.read_bytes()).hexdigest(),
                 hashlib.sha256(crashing.read_bytes()).hexdigest())


def start_gateway(certs, istio: Istio, directory: Path, listeners: dict[str, list[istiod.WasmPlugin]]):
    running = istio_install.start_gateway(certs, istio.registry, directory, listeners)
    return running.envoy, running.istiod, running.ports


def status(certs, port: int, sni: str, host: str) -> int:
    return curl_support.status(certs, port, sni, host, "--http2")


def counters(envoy) -> dict[str, int]:
    stats = envoy.stats()
    return {name: stats.get(f"wasmcustom.sni_guard.{name}", 0) for name in ("rejected", "dry_run_mismatch")}


def counted(envoy, before: dict[str, int], delta: dict[str, int]) -> dict[str, int]:
    """The counters' change since `before`, once it reaches `delta` (or after a few seconds)."""
    expected = {f"wasmcustom.sni_guard.{k}": before[k] + v for k, v in delta.items()}
    after = envoy.wait_for_stats(expected)
    return {k: after.get(f"wasmcustom.sni_guard.{k}", 0) - before[k] for k in delta}


# --- what istiod and istio-agent hand Envoy ---

def test_what_envoy_receives_for_the_shipped_wasmplugin(istio):
    plugin = istio.plugin
    assert plugin.spec["pluginConfig"] == dict(BASE, mode="enforce", on_missing_sni="allow"), \
        "the manifest carries the example's configuration, every field written"
    assert plugin.spec["sha256"] == istiod.manifest_digest(istio.layout), "make manifests wrote the image digest"
    for naming, name in [("1.30", "istio-system.sni-guard-ingressgateway~istio-translated-wasmplugin"),
                         ("1.29", "istio-system.sni-guard-ingressgateway")]:
        from_istiod = istiod.extension_config(plugin, naming)
        config = from_istiod["typed_config"]["config"]
        assert config["name"] == name and from_istiod["name"].endswith("/" + name)
        assert config["root_id"] == "sni-guard" and "vm_id" not in config["vm_config"]
        assert config["vm_config"]["environment_variables"]["key_values"] == {
            "ISTIO_META_WASM_IMAGE_PULL_POLICY": "IfNotPresent", "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": "1"}
        assert config["failure_policy"] == "FAIL_OPEN"
        assert istiod.http_filter(plugin, naming)["config_discovery"]["config_source"]["initial_fetch_timeout"] == "0s"
        to_envoy = istiod.agent_convert(from_istiod, istio.registry)["typed_config"]["config"]
        # istio-agent: the module from the image, as a local file; the ISTIO_META_ variables gone.
        assert Path(to_envoy["vm_config"]["code"]["local"]["filename"]).read_bytes() == envoy_support.WASM.read_bytes()
        assert "environment_variables" not in to_envoy["vm_config"]
        assert {k: v for k, v in to_envoy.items() if k != "vm_config"} == {
            k: v for k, v in config.items() if k != "vm_config"}


# --- first load, update, rollback ---

@pytest.fixture(scope="module")
def gateway(certs, workdir, istio):
    envoy, gateway, _ = start_gateway(certs, istio, workdir / "ecds-gateway", {"gateway_https": [istio.plugin]})
    try:
        yield envoy, gateway
    finally:
        envoy.stop()


def test_first_load_answers_as_configured(certs, istio, gateway):
    envoy, _ = gateway
    name = istiod.resource_name(istio.plugin)
    assert xds.ecds_stats(envoy, name)["version_text"] == "1"
    in_force = xds.ecds_dump(envoy, name)["ecds_filter"]["typed_config"]["config"]
    assert (in_force["name"], in_force["root_id"], in_force["failure_policy"]) == (
        "istio-system.sni-guard-ingressgateway~istio-translated-wasmplugin", "sni-guard", "FAIL_OPEN")
    before = counters(envoy)
    got = [status(certs, envoy.port, sni, host) for sni, host in
           [("a.example.com", "b.example.com"), ("a.example.com", "a.example.com"), ("c.example.com", "d.example.com")]]
    assert got == [421, 200, 200]
    assert counted(envoy, before, {"rejected": 1, "dry_run_mismatch": 0}) == {"rejected": 1, "dry_run_mismatch": 0}


def test_update_and_rollback_take_effect_without_restart(certs, istio, gateway):
    """kubectl apply of a changed pluginConfig, then of the previous one: each a new
    resourceVersion, so a new ECDS resource; no listener change, no restart."""
    envoy, gw = gateway
    pid, lds_before = envoy.pid, envoy.admin("/stats?filter=^listener_manager\\.lds\\.update_success$")
    steps = [("2", DRY_RUN, 404, {"rejected": 0, "dry_run_mismatch": 1}),
             ("3", BASE, 421, {"rejected": 1, "dry_run_mismatch": 0}),
             ("4", A_AND_B_MERGED, 404, {"rejected": 0, "dry_run_mismatch": 0}),
             ("5", BASE, 421, {"rejected": 1, "dry_run_mismatch": 0})]
    seen = []
    for version, plugin_config, expected_status, expected_delta in steps:
        assert gw.push(envoy, istio.plugin.updated(version, pluginConfig=plugin_config)) == "accepted"
        before = counters(envoy)
        got = status(certs, envoy.port, "a.example.com", "b.example.com")
        seen.append((version, got, counted(envoy, before, expected_delta)))
        assert seen[-1][1:] == (expected_status, expected_delta), f"steps so far (version, status, counters): {seen}"
    assert envoy.pid == pid and envoy.process.poll() is None
    assert envoy.admin("/stats?filter=^listener_manager\\.lds\\.update_success$") == lds_before, "no listener update"
    assert xds.draining(envoy) == {"total_listeners_draining": 0, "total_filter_chains_draining": 0}, "nothing drains"


# --- two WasmPlugins selecting one gateway ---

VM_CONFIGS = {
    # As the shipped manifest: no vmConfig. istio-agent strips the ISTIO_META_ variables (the
    # resource version among them): both plugins get one vm_config, so one VM in Envoy.
    "same vm_config": None,
    # Control: a vmConfig.env entry of its own per plugin survives the agent, so two VMs.
    "control: distinct vmConfig.env": {"env": [{"name": "SNI_GUARD_PLUGIN", "value": "{name}"}]},
}


@pytest.mark.parametrize("vm_config", VM_CONFIGS)
def test_two_wasmplugins_on_one_gateway_each_run_their_own_configuration(certs, workdir, istio, vm_config):
    """sni-guard (enforce) and, created after it with a higher priority so that it runs first,
    sni-guard-dry-run, from the same module: a misdirected request is counted by the dry-run
    plugin, then answered 421 by the enforcing one."""
    plugins = [istio.plugin, istio.plugin.renamed("sni-guard-dry-run").updated("1", pluginConfig=DRY_RUN, priority=10)]
    if VM_CONFIGS[vm_config]:
        plugins = [p.updated(p.resource_version, vmConfig={"env": [
            dict(e, value=e["value"].format(name=p.name)) for e in VM_CONFIGS[vm_config]["env"]]}) for p in plugins]
    gw = istiod.Gateway(xds.FileXds(workdir / "unused"), istio.registry)
    vm = [gw.resource(p)["typed_config"]["config"]["vm_config"] for p in plugins]
    assert (vm[0] == vm[1]) == (VM_CONFIGS[vm_config] is None), "what Envoy receives: one VM key, or two"
    envoy, _, _ = start_gateway(certs, istio, workdir / f"ecds-two-plugins-{len(vm_config)}",
                                     {"gateway_https": plugins})
    try:
        before = counters(envoy)
        got = [status(certs, envoy.port, "a.example.com", "b.example.com"),
               status(certs, envoy.port, "a.example.com", "a.example.com")]
        delta = counted(envoy, before, {"rejected": 1, "dry_run_mismatch": 1})
        assert (got, delta) == ([421, 200], {"rejected": 1, "dry_run_mismatch": 1}), (
            f"statuses {got}, counters {delta}: the dry-run plugin must count the misdirected request and let it "
            "on, the enforcing one answer it 421")
    finally:
        envoy.stop()


# --- bad configuration or module, per failStrategy ---

@dataclass
class FailingGateway:
    strategy: str
    envoy: xds.XdsEnvoy
    gateway: istiod.Gateway
    ports: dict[str, int]
    good: istiod.WasmPlugin
    refused: istiod.WasmPlugin
    unloadable: istiod.WasmPlugin


@pytest.fixture(scope="module", params=FAIL_STRATEGIES)
def failing_gateway(request, certs, workdir, istio):
    """Four listeners: `gateway_https` starts good (for bad updates), `refused_at_first_load`
    gets a configuration sni-guard refuses from the start, `unloadable_at_first_load` a module
    Envoy cannot load, `crashing_module` a module that traps on every request; all with the
    failStrategy under test."""
    strategy = request.param
    good = istio.plugin.updated("1", failStrategy=strategy)
    refused = istio.plugin.renamed("sni-guard-refused").updated("1", failStrategy=strategy, pluginConfig=REFUSED)
    unloadable = istio.plugin.renamed("sni-guard-unloadable").updated("1", failStrategy=strategy, url=UNLOADABLE_URL,
                                                                       sha256=istio.unloadable_sha256)
    crashing = istio.plugin.renamed("crashing").updated("1", failStrategy=strategy, url=CRASHING_URL,
                                                         sha256=istio.crashing_sha256)
    envoy, gw, ports = start_gateway(certs, istio, workdir / f"ecds-{strategy}", {
        "gateway_https": [good], "refused_at_first_load": [refused], "unloadable_at_first_load": [unloadable],
        "crashing_module": [crashing]})
    try:
        yield FailingGateway(strategy, envoy, gw, ports, good, refused, unloadable)
    finally:
        envoy.stop()


def test_bad_updates(certs, istio, failing_gateway):
    """On a gateway running sni-guard: a configuration sni-guard refuses, then a module Envoy
    cannot load, are rejected (Envoy keeps the configuration in force); a module istio-agent
    cannot fetch is replaced by the agent's RBAC filter: allow-all under FAIL_OPEN (sni-guard is
    gone), deny-all under FAIL_CLOSE; the good one again restores sni-guard."""
    fg = failing_gateway
    strategy, envoy, gw, good = fg.strategy, fg.envoy, fg.gateway, fg.good
    port = fg.ports["gateway_https"]
    name = istiod.resource_name(good)

    def traffic():
        return [status(certs, port, "a.example.com", host) for host in ("b.example.com", "a.example.com")]

    assert traffic() == [421, 200]
    assert gw.push(envoy, good.updated("2", pluginConfig=REFUSED)) == "rejected"
    assert xds.ecds_stats(envoy, name)["version_text"] == "1" and traffic() == [421, 200]
    (shown,) = readme.block_after("-c istio-proxy | grep 'invalid configuration'")
    refused = [line for line in envoy.stderr_path.read_text().splitlines() if "invalid configuration" in line]
    assert refused and all(readme.matches(shown, line) for line in refused), (shown, refused)
    # Envoy 1.40's /config_dump (and so istioctl's view of it) shows the rejected configuration.
    assert xds.ecds_dump(envoy, name)["version_info"] == "2"

    assert gw.push(envoy, good.updated("3", url=UNLOADABLE_URL, sha256=istio.unloadable_sha256)) == "rejected"
    assert xds.ecds_stats(envoy, name)["version_text"] == "1" and traffic() == [421, 200]

    unfetchable = good.updated("4", sha256="1" * 64)  # the image's digest is another: the agent refuses it
    assert gw.push(envoy, unfetchable) == "accepted"
    assert gw.resource(unfetchable)["typed_config"]["@type"] == istiod.RBAC_HTTP_FILTER_TYPE
    assert traffic() == {"FAIL_OPEN": [404, 200], "FAIL_CLOSE": [403, 403]}[strategy]

    assert gw.push(envoy, good.updated("5")) == "accepted"
    assert traffic() == [421, 200]


@pytest.mark.parametrize("listener", ["refused_at_first_load", "unloadable_at_first_load"])
def test_bad_configuration_or_module_at_first_load(certs, failing_gateway, listener):
    """No previous configuration to keep: Envoy rejects the resource, the listener serves anyway
    (istiod's initial_fetch_timeout 0 only waits for a first response), and the filter without
    a configuration answers every request 500 (response flag NFCF), whatever the failStrategy."""
    plugin = {"refused_at_first_load": failing_gateway.refused, "unloadable_at_first_load": failing_gateway.unloadable}
    stats = xds.ecds_stats(failing_gateway.envoy, istiod.resource_name(plugin[listener]))
    assert (stats["update_rejected"], stats["version_text"]) == (1, "")
    port = failing_gateway.ports[listener]
    assert [status(certs, port, "a.example.com", h) for h in ("b.example.com", "a.example.com")] == [500, 500]


def test_module_crash_while_serving(certs, failing_gateway):
    """A module that traps in proxy_on_request_headers: the request it crashes on gets 503 under
    both strategies; afterwards FAIL_OPEN skips the failed plugin, FAIL_CLOSE answers 503."""
    port = failing_gateway.ports["crashing_module"]
    got = [status(certs, port, "a.example.com", h) for h in ("a.example.com", "a.example.com", "b.example.com")]
    assert got == {"FAIL_OPEN": [503, 200, 404], "FAIL_CLOSE": [503, 503, 503]}[failing_gateway.strategy]
