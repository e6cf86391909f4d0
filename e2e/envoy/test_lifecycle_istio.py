"""Uninstall, rollback and upgrade as istiod delivers them to a gateway (issue #22), in Envoy set
up as istio-proxy runs (e2e/support/istio_install.py: pilot-agent's drain options, istiod's
listeners and ECDS, istio-agent's module fetch):

- uninstall, `kubectl delete wasmplugin sni-guard`: istiod sends the listener without the
  filter. New connections get the old answers (a misdirected request 404). A connection opened
  before is on a draining filter chain: its next request is still answered by sni-guard, with a
  GOAWAY (pilot-agent's `--drain-strategy immediate`), and its client reconnects;
- rollback, the dry_run manifest applied again: a new ECDS resource, no listener change; every
  request from then on, on old connections too, is let through (404) and counted;
- upgrade, a manifest with another image digest: istio-agent fetches the new module, Envoy starts
  a VM from it for the next requests, and the old module's VMs are freed.
"""

from __future__ import annotations

import time

import h2.exceptions
import pytest

from e2e.support import curl as curl_support
from e2e.support import envoy as envoy_support
from e2e.support import istio_install, istiod, xds
from e2e.support.h2client import Connection
from e2e.support.wasm_modules import with_custom_section

NEXT_TAG = "0.1.1-test"


@pytest.fixture(scope="module")
def installed(workdir):
    """The enforcing manifest of the module under test, and a next release of it: the same
    code under another digest, pushed as another tag of the same image."""
    current = istio_install.install(workdir / "lifecycle", mode="enforce")
    module = workdir / "lifecycle-next" / "sni-guard.wasm"
    module.parent.mkdir(parents=True)
    module.write_bytes(with_custom_section(envoy_support.WASM.read_bytes(), "sni-guard-next", b"next release"))
    following = istio_install.install(workdir / "lifecycle-next", mode="enforce", module=module, tag=NEXT_TAG,
                                      registry=current.registry)
    assert following.plugin.spec["sha256"] != current.plugin.spec["sha256"]
    return current, following


@pytest.fixture()
def gateway(certs, workdir, installed, request):
    current, _ = installed
    running = istio_install.start_gateway(certs, current.registry, workdir / f"lifecycle-{request.node.name}",
                                          {"gateway_https": [current.plugin]})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture()
def older(certs, gateway):
    """An HTTP/2 connection opened for a.example.com before the change, whose coalesced request
    for b.example.com got sni-guard's 421."""
    connection = Connection(gateway.ports["gateway_https"], "a.example.com", str(certs.ca), timeout=10)
    try:
        assert connection.get("b.example.com", "/")[0] == 421
        yield connection
    finally:
        connection.close()


def status(certs, running, sni: str, host: str) -> int:
    return curl_support.status(certs, running.ports["gateway_https"], sni, host)


def counters(envoy) -> dict[str, int]:
    stats = envoy.stats()
    return {name: stats.get(f"wasmcustom.sni_guard.{name}", 0) for name in ("rejected", "dry_run_mismatch")}


def access_log_statuses(envoy, sni: str, authority: str) -> list[str]:
    lines = envoy.wait_for_access_log(lambda line: f"sni={sni} authority={authority}" in line)
    return [line.split(" status=")[1].split()[0] for line in lines]


def test_uninstall(certs, gateway, older):
    envoy = gateway.envoy
    gateway.push_listeners({"gateway_https": []}, "2")  # kubectl delete wasmplugin sni-guard
    filters = [f["name"] for f in xds.listener_filters(envoy, "gateway_https")]
    assert not any(name.startswith("extensions.istio.io/") for name in filters), filters
    assert [status(certs, gateway, "a.example.com", h) for h in ("b.example.com", "a.example.com")] == [404, 200]
    try:
        on_older = older.get("b.example.com", "/")[0]
    except h2.exceptions.ProtocolError:
        on_older = "GOAWAY"  # h2 refuses the answer that follows Envoy's GOAWAY
    assert on_older == "GOAWAY"
    # The access log shows what the older connection's request got: sni-guard's 421, from the
    # draining chain; the new connection's got the route table's 404.
    deadline = time.monotonic() + 5
    while access_log_statuses(envoy, "a.example.com", "b.example.com") != ["421", "404", "421"]:
        assert time.monotonic() < deadline, access_log_statuses(envoy, "a.example.com", "b.example.com")
        time.sleep(0.1)


def test_rollback_to_dry_run(certs, gateway, installed, older):
    current, _ = installed
    envoy = gateway.envoy
    before = counters(envoy)
    lds = envoy.admin("/stats?filter=^listener_manager\\.lds\\.update_success$")
    dry_run = current.plugin.updated("2", pluginConfig=dict(current.plugin.spec["pluginConfig"], mode="dry_run"))
    assert gateway.istiod.push(envoy, dry_run) == "accepted"
    got = {"older connection": older.get("b.example.com", "/")[0],
           "new connection": status(certs, gateway, "a.example.com", "b.example.com")}
    assert got == {"older connection": 404, "new connection": 404}
    assert older.get("a.example.com", "/")[0] == 200, "the older connection goes on: nothing drained"
    expected = {"wasmcustom.sni_guard.dry_run_mismatch": before["dry_run_mismatch"] + 2,
                "wasmcustom.sni_guard.rejected": before["rejected"]}
    stats = envoy.wait_for_stats(expected)
    assert {k: stats.get(k) for k in expected} == expected
    assert envoy.admin("/stats?filter=^listener_manager\\.lds\\.update_success$") == lds, "no listener update"


def wasm_vms(envoy) -> dict[str, int]:
    stats = envoy.admin("/stats?filter=^wasm\\.envoy\\.wasm\\.runtime\\.v8\\.")
    return {line.split(": ")[0].rsplit(".", 1)[1]: int(line.split(": ")[1]) for line in stats.splitlines()}


def test_upgrade_to_a_new_digest(certs, gateway, installed, older):
    current, following = installed
    envoy = gateway.envoy
    name = istiod.resource_name(current.plugin)

    def module_file() -> str:
        return xds.ecds_dump(envoy, name)["ecds_filter"]["typed_config"]["config"]["vm_config"]["code"]["local"][
            "filename"]

    assert module_file().endswith(f"/{current.plugin.spec['sha256']}.wasm")
    vms_before = wasm_vms(envoy)
    upgrade = current.plugin.updated("2", url=following.plugin.spec["url"], sha256=following.plugin.spec["sha256"])
    assert gateway.istiod.push(envoy, upgrade) == "accepted"
    assert module_file().endswith(f"/{following.plugin.spec['sha256']}.wasm"), "the new module is in force"
    got = [older.get("b.example.com", "/")[0], status(certs, gateway, "a.example.com", "b.example.com"),
           status(certs, gateway, "a.example.com", "a.example.com")]
    assert got == [421, 421, 200]
    # New VMs from the new module; the old module's are freed once no request holds them.
    deadline = time.monotonic() + 5
    while (vms := wasm_vms(envoy))["active"] != vms_before["active"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert vms["created"] > vms_before["created"] and vms["active"] == vms_before["active"], (vms_before, vms)
