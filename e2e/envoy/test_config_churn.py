"""Configuration churn in real Envoy (issue #23). Each change of sni-guard's configuration brings
a new root context in every Wasm VM (the workers' and the main thread's), and Envoy removes the
old one without telling the module: at once under ECDS (Istio's WasmPlugin, as istio-agent hands
it to Envoy: the module a local file, no environment), after the drain time under LDS (plain
Envoy, the EnvoyFilter). The module drops a root 10 s after its last tick (src/liveness.rs).

- Memory: at 10,000 servers, a change every 1.5 s for a bounded round, quiet for longer than the
  drop window, then a second round. The second round must grow Envoy's resident memory (VmRSS
  of the Envoy started here) by at most a quarter of what the first grew it: the first grows the
  VMs' linear memory to hold one window's configurations, the second reuses it. Before, no root
  was dropped while changes kept coming, and every round added its configurations.
- Counters: 50 changes, each root counting the same three pairs of servers; every pair's
  counter has them all, and there is no `other` series (series were kept per root, and ran out
  after about 34 changes).
"""

from __future__ import annotations

import time

import pytest

from e2e.support import curl as curl_support
from e2e.support import envoy as envoy_support
from e2e.support import xds

# The module's window (liveness::GONE_AFTER_NS), and time for the ticks that notice it.
DROP_WINDOW_SECONDS = 10
QUIET_SECONDS = DROP_WINDOW_SECONDS + 5
# Pairs of servers of the example: (SNI, :authority); each is misdirected.
PAIRS = [("a.example.com", "b.example.com"), ("b.example.com", "c.example.com"), ("c.example.com", "a.example.com")]


def dropped_roots(envoy) -> int:
    return envoy.stderr_path.read_text(errors="replace").count("has stopped ticking")


def test_memory_after_churn_comes_back_to_what_one_round_needs(certs, workdir):
    base = envoy_support.many_servers(10_000)
    files = xds.FileXds(workdir / "churn" / "xds")
    bootstrap, resource = xds.ecds_gateway(certs, files, envoy_support.one_server_renamed(base, 0))
    changes_per_round, interval = 30, 1.5
    with xds.XdsEnvoy(bootstrap, workdir / "churn", name="envoy", concurrency=1) as envoy:
        change = 0

        def round_of_changes() -> int:
            nonlocal change
            started = time.monotonic()
            for i in range(changes_per_round):
                change += 1
                changed = xds.with_plugin_config(resource, envoy_support.one_server_renamed(base, change))
                outcome = xds.push_extension_config(envoy, files, changed, str(change + 1), timeout=60)
                assert outcome == "accepted", f"change {change}"
                # One change every `interval` s, or as fast as Envoy takes them on a loaded machine.
                time.sleep(max(0.0, started + (i + 1) * interval - time.monotonic()))
            time.sleep(QUIET_SECONDS)
            assert curl_support.status(certs, envoy.port, "a.example.com", "b.example.com") == 421
            assert curl_support.status(certs, envoy.port, "a.example.com", "a.example.com") == 200
            return envoy_support.rss_kib(envoy.pid)

        # Settle the first configuration (V8 compiles the module, the first root is configured).
        time.sleep(2)
        assert curl_support.status(certs, envoy.port, "a.example.com", "b.example.com") == 421
        start = envoy_support.rss_kib(envoy.pid)
        first = round_of_changes()
        dropped_first = dropped_roots(envoy)
        second = round_of_changes()
        grown_first, grown_second = first - start, second - first
        print(f"VmRSS: {start} KiB before, {first} KiB after the first round (+{grown_first}), "
              f"{second} KiB after the second (+{grown_second}); roots dropped: {dropped_first}, "
              f"then {dropped_roots(envoy)}")
        # Each change replaces the root in the worker's and the main thread's VM; all but the
        # last of each round's are gone after the quiet time.
        assert dropped_first >= 2 * (changes_per_round - 1), envoy.log_tail()
        assert dropped_roots(envoy) >= 2 * (2 * changes_per_round - 1), envoy.log_tail()
        assert grown_second * 4 <= grown_first, \
            f"the second round grew Envoy's memory by {grown_second} KiB, the first by {grown_first} KiB"


@pytest.mark.parametrize("delivery", ["ecds", "lds"])
def test_per_pair_counters_count_the_right_pair_after_50_changes(certs, workdir, delivery):
    base = envoy_support.plugin_configuration(envoy_support.load_example())
    directory = workdir / f"counters-{delivery}"
    files = xds.FileXds(directory / "xds")
    config = lambda i: dict(base, response_body=f"misdirected, configuration {i}\n")  # noqa: E731
    if delivery == "ecds":
        bootstrap, resource = xds.ecds_gateway(certs, files, config(0))
    else:
        # The example as shipped (Envoy's matcher in front), by LDS; the replaced chains drain
        # for Envoy's default 600 s, holding their roots: all 50 live at the end.
        bootstrap = files.bootstrap(envoy_support.prepare(certs, plugin_config=config(0)), version="1")
    with xds.XdsEnvoy(bootstrap, directory, name="envoy") as envoy:
        for i in range(1, 51):
            for sni, host in PAIRS:
                assert curl_support.status(certs, envoy.port, sni, host) == 421, f"change {i}: {sni} -> {host}"
            if delivery == "ecds":
                update = xds.with_plugin_config(resource, config(i))
                assert xds.push_extension_config(envoy, files, update, str(i + 1)) == "accepted"
            else:
                listener = envoy_support.https_listener(envoy_support.prepare(certs, plugin_config=config(i)))
                xds.push_listeners(envoy, files, [listener], str(i + 1))
        for sni, host in PAIRS:
            assert curl_support.status(certs, envoy.port, sni, host) == 421
        pairs = envoy.pair_stats()
        assert pairs == {("rejected", sni, host): 51 for sni, host in PAIRS}, pairs
