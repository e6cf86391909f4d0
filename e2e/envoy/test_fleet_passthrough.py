"""A passthrough host another server's certificate covers, on the generated fleet
(cli/tests/support/fleet.rs, `sni-guard`'s fleet example), in real Envoy built as istiod builds
that gateway (e2e/support/istio_gateway.py): the PASSTHROUGH server `legacy.corp.example` is a
TCP proxy chain of the port's listener, beside the HTTPS chain of `portal.corp.example`, whose
certificate (`*.corp.example`) covers it.

A browser holding portal's connection reuses it for legacy. Without sni-guard, and with a
configuration that leaves the passthrough server out (`--no-passthrough`, what `config` wrote
before issue #19), portal's route table answers 404 and a dry run counts nothing. With the
configuration `sni-guard config` writes for the fleet, the request gets 421 (counted in a dry
run), and the retry, on a connection opened with SNI legacy, reaches the passthrough backend.
"""

from __future__ import annotations

import json

import pytest

from e2e.support import cli, h2client, istio_gateway
from e2e.support import envoy as envoy_support
from e2e.support.istio_gateway import Route, Server

PORTAL = "portal.corp.example"
LEGACY = "legacy.corp.example"
APP = "app-0.corp.example"
FORMS = [None, istio_gateway.WASM_FORM, istio_gateway.MATCHER_FORM]
FORM_IDS = ["no-sni-guard", "wasm-filter", "matcher"]


@pytest.fixture(scope="module")
def fleet_file(workdir):
    path = workdir / "fleet.yaml"
    path.write_text(cli.fleet(20))
    return path


@pytest.fixture(scope="module")
def fleet_certs(workdir):
    # One certificate valid for *.corp.example, as portal's: the gateway's HTTPS chains present
    # it, and the passthrough backend too (a browser's retry checks it against SNI legacy).
    return envoy_support.make_certs(workdir / "fleet-certs", [PORTAL, "*.corp.example", LEGACY, APP])


def plugin_config(fleet_file, mode: str, *flags: str) -> dict:
    return json.loads(cli.config("--selector", "istio=ingressgateway", "--mode", mode, *flags, fleet_file))


@pytest.fixture(scope="module")
def backend(fleet_certs, workdir):
    """The passthrough server's backend: it terminates TLS itself and names itself."""
    config = istio_gateway.bootstrap([Server(hosts=[LEGACY], routes=[Route((LEGACY,), "/", "legacy-backend")],
                                             name="legacy-backend")],
                                     fleet_certs, plugin_config=None, form=None)
    with envoy_support.Envoy(config, workdir, name="fleet-legacy-backend") as envoy:
        yield envoy


def gateway(fleet_certs, workdir, backend, form, config: dict | None, name: str) -> envoy_support.Envoy:
    servers = [
        Server(hosts=[PORTAL], routes=[Route((PORTAL,), "/", "portal-backend")], name="portal"),
        Server(hosts=[APP], routes=[Route((APP,), "/", "app-0-backend")], name="app-0"),
        Server(hosts=[LEGACY], passthrough_to=backend.port, name="legacy"),
    ]
    bootstrap = istio_gateway.bootstrap(servers, fleet_certs, plugin_config=config, form=form)
    return envoy_support.Envoy(bootstrap, workdir, name=name)


def coalesced(envoy, certs) -> list[list[tuple[int, bytes, int]]]:
    """A browser's two requests: portal, then legacy on portal's connection (and its retry)."""
    with h2client.CoalescingClient(envoy.port, str(certs.ca)) as client:
        return [[(r.status, r.body, r.connection) for r in client.get(host)] for host in (PORTAL, LEGACY)]


def test_the_audit_reports_the_passthrough_host_and_config_lists_it(fleet_file):
    audit = cli.run("audit", fleet_file)
    said = " ".join(audit.stdout.split())
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert "Passthrough at risk: 1 server" in said, audit.stdout
    assert f"{LEGACY} is covered by *.corp.example, a name of the certificate web/portal spec.servers[0]" in said
    hosts = [h for s in plugin_config(fleet_file, "enforce")["servers"] for h in s["hosts"]]
    assert LEGACY in hosts and PORTAL in hosts
    assert LEGACY not in [h for s in plugin_config(fleet_file, "enforce", "--no-passthrough")["servers"]
                          for h in s["hosts"]]


@pytest.mark.parametrize("form", FORMS, ids=FORM_IDS)
def test_421_then_the_retry_reaches_the_passthrough_backend(fleet_file, fleet_certs, workdir, backend, form):
    config = plugin_config(fleet_file, "enforce") if form else None
    with gateway(fleet_certs, workdir, backend, form, config, f"fleet-gateway-{form}") as envoy:
        portal, legacy = coalesced(envoy, fleet_certs)
        assert portal == [(200, b"portal-backend\n", 0)]
        if form is None:
            # portal's route table has no legacy: 404, and a browser has nothing to retry.
            assert [status for status, _, _ in legacy] == [404]
        else:
            # 421 on portal's connection; the retry opens a connection with SNI legacy, which
            # Envoy forwards by SNI, TLS and all, to the backend.
            assert legacy == [(421, legacy[0][1], 0), (200, b"legacy-backend\n", 1)], legacy
        lines = envoy.wait_for_access_log(lambda line: f"authority={LEGACY}" in line)
        assert all("chain=portal" in line for line in lines), lines


@pytest.mark.parametrize("listed", [True, False], ids=["listed", "no-passthrough"])
def test_the_dry_run_counts_it_only_when_listed(fleet_file, fleet_certs, workdir, backend, listed):
    flags = () if listed else ("--no-passthrough",)
    config = plugin_config(fleet_file, "dry_run", *flags)
    name = f"fleet-dry-run-{'listed' if listed else 'left-out'}"
    with gateway(fleet_certs, workdir, backend, istio_gateway.WASM_FORM, config, name) as envoy:
        portal, legacy = coalesced(envoy, fleet_certs)
        assert portal[0][0] == 200
        # A dry run lets it through: portal's route table answers 404 either way.
        assert [status for status, _, _ in legacy] == [404]
        stats = envoy.wait_for_stats({"wasmcustom.sni_guard.dry_run_mismatch": 1 if listed else 0})
        assert stats.get("wasmcustom.sni_guard.dry_run_mismatch") == (1 if listed else 0), stats
