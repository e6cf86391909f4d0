"""`make bench`: what sni-guard costs Envoy per request, side by side with no filter and with the
Lua snippet it replaces.

One Envoy per variant (`--concurrency 1`, the shipped example's TLS listener and
`direct_response` routes, no access log), all started once and kept up. Each round runs h2load
against every variant in turn, so the machine's drift hits all alike; the figures are medians
over the rounds. Cost is Envoy's CPU time (user + system, from /proc: each thread's run time in
/proc/<pid>/task/*/schedstat, the nanosecond figure behind /proc/<pid>/stat's utime + stime)
over the requests h2load counted; wall-clock throughput is printed too. Only ratios within one run mean
anything: compare nothing across runs or machines.

Last, the `sni-guard` command at a fleet's scale (bench/cli_scale.py): time and peak memory of audit,
merge, config and check at 1,000 to 20,000 servers; `--cli` runs that part alone (no Envoy, no
valgrind) and replaces its section of the results.

Usage: .venv/bin/python bench/run.py [--rounds 8] [--seconds 0.8] [--instructions 1000] [--out bench/results.md]
       .venv/bin/python bench/run.py --cli [--out bench/results.md]
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

import cli_scale  # bench/cli_scale.py
import instructions  # bench/instructions.py, beside this script
import probes  # bench/probes.py

from e2e.support import envoy as envoy_support

ROOT = Path(__file__).resolve().parents[1]

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


# The example's servers (a, b, c+d), and the large gateway Istio's maintainers asked about
# (istio/istio#60046: "users with >5k unique domains").
EXAMPLE_SERVERS = envoy_support.many_servers(3)
LARGE = 10_000

# The three paths of a request, each an (SNI, :authority) pair on the example's listener.
PATHS = {
    "same": ("a.example.com", None, "`:authority` = SNI"),
    "cd": ("c.example.com", "d.example.com", "other host of the same server (SNI c, `:authority` d)"),
    "mis": ("a.example.com", "b.example.com", "misdirected, answered 421 (against Lua's own 421)"),
}
# The two installed forms.
FORMS = {
    "wp": "as a WasmPlugin installs it (no matcher)",
    "shipped": "as shipped (Envoy's matcher in front)",
}


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


def sni_guard_config(certs, servers: dict, form: str, wasm: Path | None = None) -> dict:
    """The example with sni-guard configured with `servers`, in one installed form."""
    config = envoy_support.prepare(certs, plugin_config=servers, **({"wasm": wasm} if wasm else {}))
    if form == "wp":
        config = envoy_support.without_matcher(config)
    return envoy_support.without_access_log(envoy_support.without_quic(config))


def build_envoys(certs, extra_wasm: dict[str, Path], naive_wasm: Path | None, large: bool = True) -> dict[str, dict]:
    base = envoy_support.without_access_log(envoy_support.without_quic(envoy_support.prepare(certs)))
    configs = {
        "none": envoy_support.replace_filter(base, None),
        "lua": envoy_support.replace_filter(base, LUA_FILTER),
    }
    for form in FORMS:
        configs[f"sg-{form}"] = sni_guard_config(certs, EXAMPLE_SERVERS, form)
        if large:
            configs[f"sg{LARGE}-{form}"] = sni_guard_config(certs, envoy_support.many_servers(LARGE), form)
    # The other modules are measured alone, each called on every request.
    if naive_wasm is not None:
        configs["naive-sdk"] = sni_guard_config(certs, EXAMPLE_SERVERS, "wp", naive_wasm)
    for name, path in extra_wasm.items():
        configs[name] = sni_guard_config(certs, EXAMPLE_SERVERS, "wp", path)
    return configs


def loads(path_keys: list[str], requests: int) -> list[tuple[str, str | None, str, int]]:
    """h2load loads for these paths: (SNI, :authority, expected status class, requests)."""
    out = []
    for key in path_keys:
        sni, authority, _ = PATHS[key]
        out.append((sni, authority, "4xx" if key == "mis" else "2xx", requests))
    return out


def instruction_table(certs, workdir: Path, requests: int, naive: Path | None) -> tuple[list[str], dict]:
    """Envoy instructions per request (callgrind) for every path in both forms, at 3 and at
    10,000 servers, with no filter and Lua for reference, and the probe modules."""
    why_not = instructions.available()
    if why_not:
        return ["", f"## Instructions per request: NOT MEASURED ({why_not})"], {}
    built = probes.build(workdir / "probes")
    configs = build_envoys(certs, {name: path for name, (_, path) in built.items()}, naive)
    all_paths = list(PATHS)
    plan = [("none", all_paths), ("lua", ["same", "mis"])]
    plan += [(f"sg-{form}", all_paths) for form in FORMS]
    plan += [(f"sg{LARGE}-{form}", all_paths) for form in FORMS]
    plan += [("naive-sdk", ["same"])] if naive else []
    plan += [(name, ["same"]) for name in built]
    # Two Envoys under callgrind at a time (one per core): a count does not depend on what else
    # runs, and valgrind makes each Envoy slow to start.
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(lambda step: instructions.count(configs[step[0]], workdir, step[0],
                                                               loads(step[1], requests)), plan))
    measured = {(envoy, path): value for (envoy, paths), values in zip(plan, counts)
                for path, value in zip(paths, values)}
    none = {path: measured[("none", path)] for path in all_paths}
    lua_same = measured[("lua", "same")] - none["same"]
    lua_mis = measured[("lua", "mis")] - none["mis"]

    def added(envoy: str, path: str) -> float:
        return measured[(envoy, path)] - none[path]

    def vs_lua(envoy: str, path: str) -> float:
        return added(envoy, path) / (lua_mis if path == "mis" else lua_same)

    out = ["", f"## Envoy instructions per request (callgrind, {requests} requests per path after a warm-up)", "",
           "Added over no filter on the same path; against the Lua snippet's added instructions on the same-name "
           "path, except the misdirected path, against Lua's own 421. On an otherwise idle machine the counts "
           "repeat within about 1% from run to run (a build running beside the benchmark moved them by up to 5% "
           "here: timers count per request); CPU time does not.", "",
           "| path | no filter | Lua | " + " | ".join(f"sni-guard {FORMS[f]}" for f in FORMS) + " |",
           "|---|---:|---:|" + "---:|" * len(FORMS)]
    for path, (_, _, label) in PATHS.items():
        lua = (f"{measured[('lua', path)] - none[path]:+,.0f} (1.00x)" if ("lua", path) in measured
               else "421 (not comparable)")
        cells = [f"{added(f'sg-{form}', path):+,.0f} (**{vs_lua(f'sg-{form}', path):.2f}x**)" for form in FORMS]
        out.append(f"| {label} | {none[path]:,.0f} | {lua} | " + " | ".join(cells) + " |")
    out += ["", f"### {LARGE:,} servers against the example's 3", "",
            "| path | " + " | ".join(f"{FORMS[f]}: added, 3 servers" for f in FORMS) + " | "
            + " | ".join(f"{LARGE:,} / 3, per request" for _ in FORMS) + " |",
            "|---|" + "---:|" * (2 * len(FORMS))]
    large_ratios = {}
    for path, (_, _, label) in PATHS.items():
        cells = [f"{added(f'sg-{form}', path):+,.0f}" for form in FORMS]
        ratios = []
        for form in FORMS:
            ratio = measured[(f"sg{LARGE}-{form}", path)] / measured[(f"sg-{form}", path)]
            large_ratios[(form, path)] = ratio
            ratios.append(f"{ratio:.3f}")
        out.append(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    out += ["", "### Other modules, same-name path, called on every request", "",
            "| module | instructions/req | added | added / Lua's |", "|---|---:|---:|---:|"]
    others = ([("naive-sdk", "proxy-wasm SDK filter, naive (reads SNI and :authority)")] if naive else [])
    others += [(name, f"probe: {what}") for name, (what, _) in built.items()]
    for name, label in others:
        out.append(f"| {label} | {measured[(name, 'same')]:,.0f} | {added(name, 'same'):+,.0f} | "
                   f"{vs_lua(name, 'same'):.2f}x |")
    summary = {(form, path): vs_lua(f"sg-{form}", path) for form in FORMS for path in PATHS}
    summary["large"] = large_ratios
    return out, summary


def plugin_start(certs, workdir: Path) -> list[str]:
    """How long Envoy takes from its first log line to the last worker's sni-guard configured
    (every root context of the worker and main thread VMs), at 3 and at 10,000 servers."""
    def stamp(line: str) -> datetime.datetime:
        return datetime.datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S.%f")

    out = ["", "## Plugin start", "",
           "From Envoy's first log line to the last `configured` line of sni-guard (main thread and worker "
           "VMs), read from Envoy's log; the configuration is in the bootstrap, so this includes Envoy parsing it.",
           "", "| servers | " + " | ".join(FORMS.values()) + " |", "|---|" + "---:|" * len(FORMS)]
    for n, servers in [(3, EXAMPLE_SERVERS), (LARGE, envoy_support.many_servers(LARGE))]:
        cells = []
        for form in FORMS:
            with envoy_support.Envoy(sni_guard_config(certs, servers, form), workdir, name=f"start-{n}-{form}",
                                     log_level="info") as envoy:
                lines = envoy.stderr_path.read_text(errors="replace").splitlines()
            configured = [line for line in lines if "sni-guard: root context" in line and "configured" in line]
            cells.append(f"{(stamp(configured[-1]) - stamp(lines[0])).total_seconds():.2f} s "
                         f"({len(configured)} configures)")
        out.append(f"| {n:,} | " + " | ".join(cells) + " |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8)
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
    ap.add_argument("--rows", default="", help="comma-separated CPU row keys to run (default: all), for "
                    "exploring: prints paired CPU figures only; keys: none, lua, sg-shipped, sg-wp, "
                    "sg-shipped-cd, sg-wp-cd, naive, none-mis, lua-mis, sg-shipped-mis, sg-wp-mis")
    ap.add_argument("--cli", action="store_true",
                    help="only the sni-guard command's part (bench/cli_scale.py); replaces its section of --out")
    args = ap.parse_args()

    if args.cli:
        section = cli_scale.run(machine())
        cli_scale.replace_section(args.out, section)
        print(f"written to {args.out}", file=sys.stderr)
        return 0

    wasm = envoy_support.WASM
    if not wasm.exists():
        sys.exit(f"{wasm} is missing: run `make build`")
    extra = {}
    for spec in args.extra_wasm:
        label, _, path = spec.partition("=")
        extra[label] = Path(path)
    naive = args.naive_wasm if args.naive_wasm.exists() else None

    rows = [Row("none", "no filter", "none"), Row("lua", "Lua snippet", "lua")]
    for form, label in FORMS.items():
        rows.append(Row(f"sg-{form}", f"sni-guard, {label}", f"sg-{form}"))
    for form, label in FORMS.items():
        rows.append(Row(f"sg-{form}-cd", f"sni-guard, {label}: SNI c, :authority d (same server)", f"sg-{form}",
                        sni="c.example.com", authority="d.example.com"))
    if naive is not None:
        rows.append(Row("naive", "proxy-wasm SDK filter, naive (SNI + :authority)", "naive-sdk"))
    for label in extra:
        rows.append(Row(label, f"{label} (extra module, the example's servers)", label))
    rows += [
        Row("none-mis", "mismatch: no filter (404 from the route table)", "none",
            authority="b.example.com", expect="4xx"),
        Row("lua-mis", "mismatch: Lua snippet, 421", "lua", authority="b.example.com", expect="4xx"),
    ] + [Row(f"sg-{form}-mis", f"mismatch: sni-guard {label}, 421", f"sg-{form}", authority="b.example.com",
             expect="4xx") for form, label in FORMS.items()]

    if args.rows:
        keep = set(args.rows.split(",")) | {"none"}
        rows = [row for row in rows if row.key in keep]
    started = datetime.datetime.now(datetime.timezone.utc)
    workdir = envoy_support.new_workdir("sni-guard-bench-")
    certs = envoy_support.make_certs(workdir / "certs")
    configs = {k: v for k, v in build_envoys(certs, extra, naive, large=False).items()
               if k in {row.envoy for row in rows}}
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
            print(f"{row.key:16} paired added {paired:+6.2f}  median {row.median_cpu():6.2f} "
                  f"min {min(row.cpu_us):6.2f} added(median) {row.median_cpu() - rows[0].median_cpu():+6.2f}  "
                  f"rps {row.median_rps():,.0f}")
        return 0
    by = {row.key: row for row in rows}

    def added(key: str, base: str = "none") -> float:
        return by[key].median_cpu() - by[base].median_cpu()

    header = [f"# sni-guard benchmark, {started:%Y-%m-%d %H:%M} UTC", "",
              f"- Machine: {machine()}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
              f"busy besides the benchmark at start: {others}.",
              f"- Envoy {envoy_version}, `--concurrency 1`, the example's TLS HTTP/2 listener (servers a, b, c+d), "
              "`direct_response` routes, no access log.",
              f"- Module: dist/sni-guard.wasm {wasm.stat().st_size:,} bytes"
              + (f"; naive SDK filter {naive.stat().st_size:,} bytes" if naive else "") + "."]
    cpu = ["", "## CPU time per request",
           "", f"h2load `-c {args.clients} -m {args.streams}`, {requests} requests per variant per round, "
           f"{args.rounds} rounds alternating the variants; medians. CPU us/req: Envoy's user+system CPU time "
           "(/proc/<pid>/task/*/schedstat, all threads) over the requests; wall us/req: 1e6 / (requests per "
           "second). On a shared VM these swing 20% and more from round to round: the instruction counts above "
           "are the steady figures.", "",
           "| variant | req/s | wall us/req | CPU us/req | added CPU us/req | added / Lua's |",
           "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        base = "none-mis" if row.key.endswith("-mis") else "none"
        base_lua = "lua-mis" if row.key.endswith("-mis") else "lua"
        a = added(row.key, base)
        la = added(base_lua, base)
        rel = f"{a / la:.2f}x" if row.key != base and la > 0 else ""
        cpu.append(f"| {row.label} | {row.median_rps():,.0f} | {1e6 / row.median_rps():.2f} | "
                   f"{row.median_cpu():.2f} | {'' if row.key == base else f'{a:+.2f}'} | {rel} |")
    cpu += ["", "Mismatch rows against the no-filter mismatch row (404) and Lua's own 421; the others against the "
            "no-filter and Lua rows on the same-name path.", "",
            "- Throughput / no filter's: "
            + ", ".join(f"{label} {by[key].median_rps() / by['none'].median_rps():.2f}"
                        for key, label in [("sg-shipped", "sni-guard as shipped"),
                                           ("sg-wp", "as a WasmPlugin installs it"), ("lua", "Lua")]) + ".",
            f"- Envoy memory (VmRSS) after the run: no filter {rss_after['none'] / 1024:.1f} MiB, "
            f"Lua {rss_after['lua'] / 1024:.1f} MiB, sni-guard as shipped {rss_after['sg-shipped'] / 1024:.1f} MiB "
            f"(+{(rss_after['sg-shipped'] - rss_after['none']) / 1024:.1f} MiB with the module loaded; "
            f"at start +{(rss['sg-shipped'] - rss['none']) / 1024:.1f} MiB).", "",
            "Per-round CPU us/req, in order: " + "; ".join(
                f"{row.key} " + " ".join(f"{v:.2f}" for v in row.cpu_us) for row in rows)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sections = {"header": header, "summary": [], "instructions": [], "start": [], "cpu": cpu, "cli": []}

    def write() -> str:
        text = "\n".join(line for part in sections.values() for line in part) + "\n"
        args.out.write_text(text)
        return text

    write()  # the CPU figures are kept even if the slower measurements fail
    try:
        sections["start"] = plugin_start(certs, workdir)
    except Exception as e:  # noqa: BLE001 - report, keep the rest
        sections["start"] = ["", f"## Plugin start: NOT MEASURED ({type(e).__name__}: {e})"]
    write()
    if args.instructions:
        try:
            sections["instructions"], figures = instruction_table(certs, workdir, args.instructions, naive)
            sections["summary"] = summary(figures)
        except Exception as e:  # noqa: BLE001 - report, keep the rest
            sections["instructions"] = ["", f"## Instructions per request: NOT MEASURED ({type(e).__name__}: {e})"]
    write()
    try:
        sections["cli"] = cli_scale.run(machine())
    except Exception as e:  # noqa: BLE001 - report, keep the rest
        sections["cli"] = ["", f"{cli_scale.HEADING}: NOT MEASURED ({type(e).__name__}: {e})"]
    print(write())
    print(f"written to {args.out}", file=sys.stderr)
    return 0


def summary(figures: dict) -> list[str]:
    """The headline figures (added instructions per request against Lua's), each beside its goal."""
    if not figures:
        return []
    goals = {("shipped", "cd"): 2.2, ("shipped", "mis"): 2.0, ("wp", "mis"): 2.0}
    out = ["", "## The figures that matter", "",
           "Added Envoy instructions per request against the Lua snippet's (its same-name path; its own 421 for "
           "the misdirected path):", ""]
    for form, label in FORMS.items():
        parts = []
        for path in PATHS:
            goal = goals.get((form, path))
            met = goal is not None and figures[(form, path)] <= goal
            mark = f" (goal at most {goal:.1f}x: {'met' if met else 'NOT met'})" if goal else ""
            parts.append(f"{path} **{figures[(form, path)]:.2f}x**{mark}")
        out.append(f"- sni-guard {label}: " + ", ".join(parts))
    worst = max(abs(r - 1) for r in figures["large"].values())
    out.append(f"- {LARGE:,} servers against the example's 3: instructions per request within "
               f"{worst:.1%} on every path and form (goal: within 2%: {'met' if worst <= 0.02 else 'NOT met'}).")
    return out


if __name__ == "__main__":
    sys.exit(main())
