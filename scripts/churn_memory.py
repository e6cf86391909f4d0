"""Envoy's resident memory while sni-guard's configuration keeps changing: the example's TLS
listener with sni-guard delivered by ECDS (as a WasmPlugin reaches Envoy), 10,000 servers, one
server renamed every INTERVAL seconds for MINUTES; VmRSS of that Envoy (`--concurrency 1`: the
worker's VM and the main thread's hold root contexts) before, at its peak, and after a quiet time
longer than the module's drop window. The figures in docs/configuration-delivery.md.
e2e/envoy/test_config_churn.py asserts a shorter run.

    .venv/bin/python scripts/churn_memory.py [--minutes 10] [--interval 10] [--wasm dist/sni-guard.wasm]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from e2e.support import envoy as envoy_support
from e2e.support import xds

QUIET_SECONDS = 15  # the module drops a root 10 s after its last tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--wasm", type=Path, default=envoy_support.WASM)
    args = parser.parse_args()
    workdir = envoy_support.new_workdir("churn-memory-")
    certs = envoy_support.make_certs(workdir / "certs")
    base = envoy_support.many_servers(args.servers)
    files = xds.FileXds(workdir / "xds")
    bootstrap, resource = xds.ecds_gateway(certs, files, envoy_support.one_server_renamed(base, 0),
                                           wasm=args.wasm.resolve())
    with xds.XdsEnvoy(bootstrap, workdir, name="envoy", concurrency=1) as envoy:
        time.sleep(5)
        start = peak = envoy_support.rss_kib(envoy.pid)
        began, change = time.monotonic(), 0
        while time.monotonic() - began < args.minutes * 60:
            change += 1
            update = xds.with_plugin_config(resource, envoy_support.one_server_renamed(base, change))
            if xds.push_extension_config(envoy, files, update, str(change + 1), timeout=60) != "accepted":
                raise SystemExit(f"change {change} was rejected:\n{envoy.log_tail()}")
            while time.monotonic() - began < change * args.interval:
                peak = max(peak, envoy_support.rss_kib(envoy.pid))
                time.sleep(0.5)
        time.sleep(QUIET_SECONDS)
        end = envoy_support.rss_kib(envoy.pid)
        dropped = envoy.stderr_path.read_text(errors="replace").count("has stopped ticking")
    mib = lambda kib: f"{kib / 1024:.1f} MiB"  # noqa: E731
    print(f"{change} changes of {args.servers:,} servers, one every {args.interval:g} s: VmRSS {mib(start)} before, "
          f"peak {mib(peak)} (+{mib(peak - start)}), {mib(end)} {QUIET_SECONDS} s after the last "
          f"(+{mib(end - start)}); root contexts dropped: {dropped}")


if __name__ == "__main__":
    main()
