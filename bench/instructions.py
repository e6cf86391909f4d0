"""Envoy's instructions per request, counted by valgrind's callgrind.

CPU time on a shared virtual machine swings by 20% and more between rounds; an instruction
count does not: for the same binary, configuration and requests it repeats within a fraction
of a percent to about 1% (seen here), whatever else the machine runs. It is not time (a V8 call and a Lua call do not
cost the same per instruction), but differences of a few thousand instructions per request, the
size of one host call, show plainly where CPU figures drown them.

Each variant's Envoy runs under callgrind (the real binary, not the venv's launcher), gets a
warm-up load (V8 compiles the module, caches fill), then callgrind's counters are zeroed, the
measured load runs, and the counters are dumped and read.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from e2e.support import envoy as envoy_support


def available() -> str | None:
    """Why the count cannot run here, or None."""
    for tool, package in (("valgrind", "valgrind"), ("callgrind_control", "valgrind"), ("wasm-as", "binaryen")):
        if shutil.which(tool) is None:
            return f"{tool} is missing (Debian package {package})"
    return None


def h2load(port: int, sni: str, authority: str | None, requests: int) -> dict[str, int]:
    cmd = ["h2load", "-n", str(requests), "-c", "1", "-m", "16", f"--connect-to=127.0.0.1:{port}", f"https://{sni}/"]
    if authority is not None:
        cmd += ["-H", f":authority: {authority}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    return dict(zip(["2xx", "3xx", "4xx", "5xx"], map(int, m.groups())))


def count(config: dict, workdir: Path, name: str, loads: list[tuple[str, str | None, str, int]],
          warmup: int = 2000) -> list[float]:
    """Instructions per request for each (sni, authority, expected status class, requests) in
    `loads`, measured one after the other in one Envoy under callgrind."""
    out_prefix = workdir / f"{name}.callgrind"
    envoy = envoy_support.Envoy(config, workdir, name=f"{name}-callgrind", concurrency=1, log_level="warn")
    envoy.command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_prefix}.%p",
                     "--smc-check=all-non-file", envoy_support.envoy_binary()]
    # Under valgrind, V8 compiling a module takes tens of seconds.
    envoy.start(timeout=400)
    try:
        results = []
        for sni, authority, expect, requests in loads:
            # Each path warmed up on its own (V8 tiers up the reject path too, first replies
            # fill caches), so one-off costs stay out of the count.
            h2load(envoy.port, sni, authority, warmup)
            subprocess.run(["callgrind_control", "--zero", str(envoy.pid)], check=True, capture_output=True)
            codes = h2load(envoy.port, sni, authority, requests)
            if codes[expect] != requests:
                raise RuntimeError(f"{name}: expected {requests} x {expect}, got {codes}")
            before = set(workdir.glob(f"{out_prefix.name}.*"))
            subprocess.run(["callgrind_control", "--dump", str(envoy.pid)], check=True, capture_output=True)
            results.append(_read_dump(workdir, out_prefix.name, before) / requests)
        return results
    finally:
        envoy.stop()


def _read_dump(workdir: Path, prefix: str, before: set[Path], timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for dump in set(workdir.glob(f"{prefix}.*")) - before:
            # `summary:` is the cost since the last --zero; `totals:` (at the end) is not.
            m = re.search(r"^summary: (\d+)", dump.read_text(errors="replace"), re.M)
            if m:
                return int(m.group(1))
        time.sleep(0.2)
    raise TimeoutError("callgrind wrote no dump")
