"""`make bench`: what sni-guard costs Envoy per request, side by side with no filter and with the
Lua snippet it replaces.

One Envoy per variant (`--concurrency 1`, the shipped example's TLS listener and
`direct_response` routes, no access log), all started once and kept up. Each round runs h2load
against every variant in turn, so the machine's drift hits all alike; the figures are medians
over the rounds. Cost is Envoy's CPU time (user + system, from /proc: each thread's run time in
/proc/<pid>/task/*/schedstat, the nanosecond figure behind /proc/<pid>/stat's utime + stime)
over the requests h2load counted; wall-clock throughput is printed too. Only ratios within one run mean
anything: compare nothing across runs or machines.

Usage: .venv/bin/python bench/run.py [--rounds 12] [--seconds 0.8] [--out bench/results.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import instructions  # noqa: E402  (bench/instructions.py)
import probes  # noqa: E402  (bench/probes.py)

from tests.support import envoy as envoy_support  # noqa: E402

# The Lua EnvoyFilter sni-guard replaces: raw SNI against the :authority up to its first ':'.
LUA_SNIPPET = """\
function envoy_on_request(request_handle)
  local sni = request_handle:streamInfo():requestedServerName()
  if sni == nil or sni == "" then
    return
  end
  local authority = request_handle:headers():get(":authority") or ""
  local host = string.match(authority, "^([^:]*)")
  if host ~= sni then
    request_handle:respond({[":status"] = "421"}, "misdirected request\\n")
  end
end
"""

LUA_FILTER = {
    "name": "envoy.filters.http.lua",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": LUA_SNIPPET},
    },
}


# Instruction-table labels the summary looks up again.
SHIPPED = "sni-guard, default configuration (Envoy's matcher in front)"
WITHOUT_MATCHER = "sni-guard without the matcher (as a WasmPlugin installs it)"


def fifty_servers() -> dict:
    """A realistic gateway: 50 servers, the example's a, b and c+d among them, wildcards,
    multi-host servers and Istio's namespace/host form."""
    servers = [{"hosts": ["a.example.com"]}, {"hosts": ["b.example.com"]},
               {"hosts": ["c.example.com", "d.example.com"]}]
    i = 0
    while len(servers) < 50:
        i += 1
        if i % 5 == 0:
            servers.append({"hosts": [f"*.apps{i}.example.com"]})
        elif i % 7 == 0:
            servers.append({"hosts": [f"team{i}/api{i}.example.net", f"www{i}.example.net"]})
        else:
            servers.append({"hosts": [f"svc{i}.example.org", f"svc{i}-alt.example.org", f"*.svc{i}.example.io"]})
    return {"servers": servers}


@dataclass
class Row:
    key: str
    label: str
    envoy: str  # which Envoy serves it
    sni: str = "a.example.com"
    authority: str | None = None  # None: the SNI
    expect: str = "2xx"  # the status class every request must get
    cpu_us: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)

    def median_cpu(self) -> float:
        return statistics.median(self.cpu_us)

    def median_rps(self) -> float:
        return statistics.median(self.rps)


def h2load(port: int, row: Row, requests: int, clients: int, streams: int) -> tuple[int, float, dict]:
    """Runs h2load once; returns (requests answered with the expected status, requests per
    second, status counts)."""
    cmd = ["h2load", "-n", str(requests), "-c", str(clients), "-m", str(streams),
           f"--connect-to=127.0.0.1:{port}", f"https://{row.sni}/"]
    if row.authority is not None:
        cmd += ["-H", f":authority: {row.authority}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    # h2load rounds "finished in" to 10 ms; its req/s has the precision.
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    codes = dict(zip(["2xx", "3xx", "4xx", "5xx"], map(int, m.groups())))
    return codes[row.expect], rps, codes


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}"


def busy_processes(own: set[int]) -> str:
    """Other processes that used CPU in the last second: what else was running."""
    def ticks() -> dict[int, tuple[str, int]]:
        out = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) in own:
                continue
            try:
                raw = (d / "stat").read_text()
            except OSError:
                continue
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            f = raw.rsplit(")", 1)[1].split()
            out[int(d.name)] = (name, int(f[11]) + int(f[12]))
        return out
    before = ticks()
    time.sleep(1)
    after = ticks()
    hz = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for pid, (name, t) in after.items():
        if pid in before:
            used[name] = used.get(name, 0) + (t - before[pid][1]) / hz
    top = sorted(((v, k) for k, v in used.items() if v >= 0.05), reverse=True)[:6]
    return ", ".join(f"{k} {v:.0%}" for v, k in top) or "nothing measurable"


def build_envoys(certs, extra_wasm: dict[str, Path], naive_wasm: Path | None) -> dict[str, dict]:
    base = envoy_support.without_access_log(envoy_support.prepare(certs))
    configs = {
        "none": envoy_support.replace_filter(base, None),
        "lua": envoy_support.replace_filter(base, LUA_FILTER),
        # As shipped (envoyfilter/envoy.yaml, envoyfilter.yaml): Envoy's same-name matcher in
        # front of the module.
        "sni-guard": envoy_support.without_access_log(envoy_support.prepare(certs, plugin_config={})),
        "sni-guard-50": envoy_support.without_access_log(
            envoy_support.prepare(certs, plugin_config=fifty_servers())),
        # As a WasmPlugin or TrafficExtension installs it: every request reaches the module.
        "sni-guard-wasmplugin": envoy_support.without_matcher(envoy_support.without_access_log(
            envoy_support.prepare(certs, plugin_config={}))),
    }
    # The other modules are measured alone, each called on every request.
    if naive_wasm is not None:
        configs["naive-sdk"] = envoy_support.without_matcher(envoy_support.without_access_log(
            envoy_support.prepare(certs, plugin_config={}, wasm=naive_wasm)))
    for name, path in extra_wasm.items():
        configs[name] = envoy_support.without_matcher(envoy_support.without_access_log(
            envoy_support.prepare(certs, plugin_config={}, wasm=path)))
    return configs


def instruction_table(certs, workdir: Path, requests: int, naive: Path | None) -> list[str]:
    """Envoy instructions per request (callgrind) for the main variants and the probe modules."""
    why_not = instructions.available()
    if why_not:
        return ["", f"## Instructions per request: NOT MEASURED ({why_not})"]
    built = probes.build(workdir / "probes")
    configs = build_envoys(certs, {name: path for name, (_, path) in built.items()}, naive)
    a, b = "a.example.com", "b.example.com"
    same = (a, None, "2xx", requests)
    plan = [  # (Envoy, label, loads)
        ("none", ["no filter", "mismatch: no filter (404)"], [same, (a, b, "4xx", requests)]),
        ("lua", ["Lua snippet", "mismatch: Lua snippet (421)"], [same, (a, b, "4xx", requests)]),
        ("sni-guard", [SHIPPED, "mismatch: sni-guard (421)"], [same, (a, b, "4xx", requests)]),
        ("sni-guard-50", ["sni-guard, 50 servers"], [same]),
        ("sni-guard-wasmplugin", [WITHOUT_MATCHER,
                                  "mismatch: sni-guard without the matcher (421)"], [same, (a, b, "4xx", requests)]),
    ] + ([("naive-sdk", ["proxy-wasm SDK filter, naive"], [same])] if naive else []) + [
        (name, [f"probe: {what}"], [same]) for name, (what, _) in built.items()]
    # Two Envoys under callgrind at a time (one per core): a count does not depend on what else
    # runs, and valgrind makes each Envoy slow to start.
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(lambda step: instructions.count(configs[step[0]], workdir, step[0], step[2]), plan))
    measured = {label: value for (_, labels, _), values in zip(plan, counts) for label, value in zip(labels, values)}
    none, none_mis = measured["no filter"], measured["mismatch: no filter (404)"]
    lua_added = measured["Lua snippet"] - none
    lua_mis_added = measured["mismatch: Lua snippet (421)"] - none_mis
    out = ["", f"## Envoy instructions per request (callgrind, {requests} requests per variant after a warm-up)", "",
           "Steady where CPU time is not: the added figures repeat within about 1% from run to run.", "",
           "| variant | instructions/req | added | added / Lua's |", "|---|---:|---:|---:|"]
    for label, value in measured.items():
        base, lua = (none_mis, lua_mis_added) if label.startswith("mismatch") else (none, lua_added)
        is_base = label in ("no filter", "mismatch: no filter (404)")
        out.append(f"| {label} | {value:,.0f} | {'' if is_base else f'{value - base:+,.0f}'} | "
                   f"{'' if is_base else f'{(value - base) / lua:.2f}x'} |")
    sg_added = measured[SHIPPED] - none
    out += ["", f"- sni-guard's added instructions / Lua's: **{sg_added / lua_added:.2f}** (default configuration), "
            f"{(measured['sni-guard, 50 servers'] - none) / lua_added:.2f} (50 servers); "
            f"50 servers / default, added: {(measured['sni-guard, 50 servers'] - none) / sg_added:.2f}; "
            f"without the matcher (as a WasmPlugin installs it): "
            f"**{(measured[WITHOUT_MATCHER] - none) / lua_added:.2f}**"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=0.8, help="target length of one variant's run")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--streams", type=int, default=16, help="h2load -m: concurrent streams per connection")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.md")
    ap.add_argument("--naive-wasm", type=Path, default=ROOT / "dist" / "bench" / "naive-sdk-filter.wasm",
                    help="the proxy-wasm SDK filter for the 'naive SDK' row (skipped if missing)")
    ap.add_argument("--extra-wasm", action="append", default=[], metavar="LABEL=PATH",
                    help="another module to measure like sni-guard with the default configuration")
    ap.add_argument("--instructions", type=int, default=1000, metavar="N",
                    help="requests per variant for the callgrind instruction count (0: skip it)")
    ap.add_argument("--rows", default="", help="comma-separated row keys to run (default: all); "
                    "for exploring, the summary needs none, lua, sg, sg50, none-mis, lua-mis, sg-mis")
    args = ap.parse_args()

    wasm = envoy_support.WASM
    if not wasm.exists():
        sys.exit(f"{wasm} is missing: run `make build`")
    extra = {}
    for spec in args.extra_wasm:
        label, _, path = spec.partition("=")
        extra[label] = Path(path)
    naive = args.naive_wasm if args.naive_wasm.exists() else None

    rows = [
        Row("none", "no filter", "none"),
        Row("lua", "Lua snippet", "lua"),
        Row("sg", "sni-guard, default configuration (as shipped: Envoy's matcher in front)", "sni-guard"),
        Row("sg50", "sni-guard, 50 servers", "sni-guard-50"),
        Row("sg-wp", WITHOUT_MATCHER, "sni-guard-wasmplugin"),
        Row("sg50-cd", "sni-guard, 50 servers, SNI c / :authority d (same server)", "sni-guard-50",
            sni="c.example.com", authority="d.example.com"),
    ]
    if naive is not None:
        rows.append(Row("naive", "proxy-wasm SDK filter, naive (SNI + :authority)", "naive-sdk"))
    for label in extra:
        rows.append(Row(label, f"{label} (extra module, default configuration)", label))
    rows += [
        Row("none-mis", "mismatch: no filter (404 from the route table)", "none",
            authority="b.example.com", expect="4xx"),
        Row("lua-mis", "mismatch: Lua snippet, 421", "lua", authority="b.example.com", expect="4xx"),
        Row("sg-mis", "mismatch: sni-guard, 421", "sni-guard", authority="b.example.com", expect="4xx"),
    ]

    if args.rows:
        keep = set(args.rows.split(",")) | {"none"}
        rows = [row for row in rows if row.key in keep]
        configs_needed = {row.envoy for row in rows}
    started = datetime.datetime.now(datetime.timezone.utc)
    workdir = envoy_support.new_workdir("sni-guard-bench-")
    certs = envoy_support.make_certs(workdir / "certs")
    configs = build_envoys(certs, extra, naive)
    if args.rows:
        configs = {k: v for k, v in configs.items() if k in configs_needed or k in ("none", "lua", "sni-guard")}
    envoy_version = subprocess.run([envoy_support.ENVOY_BIN, "--version"], capture_output=True,
                                   text=True).stdout.strip().split("version:")[-1].strip()
    load_before = os.getloadavg()

    with ExitStack() as stack:
        envoys = {}
        for name, config in configs.items():
            envoys[name] = stack.enter_context(
                envoy_support.Envoy(config, workdir, name=name, concurrency=1, log_level="warn"))
        rss = {name: envoy_support.rss_kib(e.pid) for name, e in envoys.items()}
        others = busy_processes({os.getpid()} | {e.pid for e in envoys.values()})

        # Warm up every variant (V8 tiers the module up, caches fill) and size the runs from the
        # fastest: the same request count for every variant.
        fastest = 0.0
        for row in rows:
            done, rps, codes = h2load(envoys[row.envoy].port, row, 20000, args.clients, args.streams)
            if done != 20000:
                sys.exit(f"{row.label}: expected every request {row.expect}, got {codes}")
            fastest = max(fastest, rps)
        requests = max(20000, int(fastest * args.seconds))
        print(f"{len(rows)} variants x {args.rounds} rounds x {requests} requests "
              f"(h2load -c {args.clients} -m {args.streams})", file=sys.stderr)

        for r in range(args.rounds):
            order = rows if r % 2 == 0 else list(reversed(rows))
            for row in order:
                pid = envoys[row.envoy].pid
                cpu0 = envoy_support.cpu_seconds(pid)
                done, rps, codes = h2load(envoys[row.envoy].port, row, requests, args.clients, args.streams)
                cpu1 = envoy_support.cpu_seconds(pid)
                if done != requests:
                    sys.exit(f"{row.label}: expected every request {row.expect}, got {codes}")
                row.cpu_us.append((cpu1 - cpu0) / done * 1e6)
                row.rps.append(rps)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        rss_after = {name: envoy_support.rss_kib(e.pid) for name, e in envoys.items()}
    load_after = os.getloadavg()

    if args.rows:
        for row in rows:
            # Paired: each round's difference to the no-filter run of the same round, so drift
            # between rounds cancels; the median of those differences.
            paired = statistics.median(c - n for c, n in zip(row.cpu_us, rows[0].cpu_us))
            print(f"{row.key:10} paired added {paired:+6.2f}  ", end="")
            print(f"{row.key:10} median {row.median_cpu():6.2f} min {min(row.cpu_us):6.2f} "
                  f"added(median) {row.median_cpu() - rows[0].median_cpu():+6.2f} "
                  f"added(min) {min(row.cpu_us) - min(rows[0].cpu_us):+6.2f}  rps {row.median_rps():,.0f}")
        return 0
    by = {row.key: row for row in rows}
    none, lua = by["none"].median_cpu(), by["lua"].median_cpu()
    lua_added = lua - none

    def added(key: str, base: str = "none") -> float:
        return by[key].median_cpu() - by[base].median_cpu()

    lines = []
    p = lines.append
    p(f"# sni-guard benchmark, {started:%Y-%m-%d %H:%M} UTC")
    p("")
    p(f"- Machine: {machine()}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
      f"busy besides the benchmark at start: {others}.")
    p(f"- Envoy {envoy_version}, `--concurrency 1`, TLS HTTP/2 listener, `direct_response` routes, "
      f"no access log. h2load `-c {args.clients} -m {args.streams}`, {requests} requests per variant "
      f"per round, {args.rounds} rounds alternating the variants; medians.")
    p("- CPU us/req: Envoy's user+system CPU time (/proc/<pid>/task/*/schedstat, all threads) over the requests. "
      "Wall us/req: 1e6 / (requests per second).")
    p("")
    p("| variant | req/s | wall us/req | CPU us/req | added CPU us/req | added / Lua's |")
    p("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        base = "none-mis" if row.key.endswith("-mis") else "none"
        base_lua = "lua-mis" if row.key.endswith("-mis") else "lua"
        a = added(row.key, base)
        la = added(base_lua, base)
        rel = f"{a / la:.2f}x" if row.key not in (base,) and la > 0 else ""
        p(f"| {row.label} | {row.median_rps():,.0f} | {1e6 / row.median_rps():.2f} | {row.median_cpu():.2f} | "
          f"{'' if row.key == base else f'{a:+.2f}'} | {rel} |")
    p("")
    p("Mismatch rows are measured against the no-filter mismatch row (404).")
    p("")
    p("## The figures that matter")
    p("")
    p(f"- sni-guard's added CPU per request / Lua's added CPU per request: "
      f"**{added('sg') / lua_added:.2f}** (default configuration), {added('sg50') / lua_added:.2f} (50 servers)")
    p(f"- Without Envoy's matcher (as a WasmPlugin installs it), added CPU / Lua's: "
      f"**{added('sg-wp') / lua_added:.2f}**")
    p(f"- sni-guard's throughput / no filter's: **{by['sg'].median_rps() / by['none'].median_rps():.2f}** "
      f"(Lua's: {by['lua'].median_rps() / by['none'].median_rps():.2f})")
    p(f"- 50 servers / default configuration, CPU per request: "
      f"**{by['sg50'].median_cpu() / by['sg'].median_cpu():.2f}** "
      f"(added CPU {added('sg50'):+.2f} us against {added('sg'):+.2f} us)")
    mis_sg, mis_lua = added("sg-mis", "none-mis"), added("lua-mis", "none-mis")
    p(f"- Mismatch path (every request answered 421), added CPU over no filter's 404: sni-guard "
      f"{mis_sg:+.2f} us, Lua {mis_lua:+.2f} us, ratio {mis_sg / mis_lua:.2f}" if mis_lua > 0 else
      f"- Mismatch path: sni-guard {mis_sg:+.2f} us, Lua {mis_lua:+.2f} us")
    if "naive" in by:
        p(f"- Naive proxy-wasm SDK filter's added CPU / Lua's: {added('naive') / lua_added:.2f}")
    p(f"- Module size: dist/sni-guard.wasm {wasm.stat().st_size:,} bytes"
      + (f"; naive SDK filter {naive.stat().st_size:,} bytes" if naive else ""))
    p(f"- Envoy memory (VmRSS) after the run: no filter {rss_after['none'] / 1024:.1f} MiB, "
      f"Lua {rss_after['lua'] / 1024:.1f} MiB, sni-guard {rss_after['sni-guard'] / 1024:.1f} MiB "
      f"(+{(rss_after['sni-guard'] - rss_after['none']) / 1024:.1f} MiB with the module loaded; "
      f"at start +{(rss['sni-guard'] - rss['none']) / 1024:.1f} MiB)")
    p("")
    p("Per-round CPU us/req, in order: " + "; ".join(
        f"{row.key} " + " ".join(f"{v:.2f}" for v in row.cpu_us) for row in rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def write() -> str:
        text = "\n".join(lines) + "\n"
        args.out.write_text(text)
        return text

    write()  # the CPU figures are kept even if the slower instruction count fails
    if args.instructions:
        try:
            lines += instruction_table(certs, workdir, args.instructions, naive)
        except Exception as e:  # noqa: BLE001 - report, keep the CPU table
            lines += ["", f"## Instructions per request: NOT MEASURED ({type(e).__name__}: {e})"]
    print(write())
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
