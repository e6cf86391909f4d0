"""The `sni-guard` command at a fleet's scale: wall time and peak resident memory of `audit`,
`merge`, `config` and `check` on generated fleets (cli/tests/support/fleet.rs, printed by the
`fleet` example) of 1,000 to 20,000 servers, most under one wildcard certificate, and on 2,000
servers presenting one certificate that names all 2,000 hosts.

Each command runs alone, as a user runs it, under GNU time (`/usr/bin/time -f %M`, Debian's
`time`, from `make deps`): its peak resident memory, as the kernel counts it for the command
alone (a child forked from Python would also count Python's pages, which it holds until its
exec); its time is the wall clock around it, the median of `rounds` runs. Release builds
(`cargo build --release`, what `cargo install` makes) for the table; the debug build `make
cli` makes for the targets too. No valgrind, no Envoy: `bench/run.py --cli` runs this part alone.
"""

from __future__ import annotations

import datetime
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000, 5_000, 10_000, 20_000)
SAN_SERVERS = 2_000
# issue #19's targets: release build, under 2 s and 200 MB; the debug build within 10x.
GOAL_SECONDS = 2.0
GOAL_MIB = 200.0
DEBUG_FACTOR = 10
PUBLIC = "istio=ingressgateway"
GNU_TIME = "/usr/bin/time"


@dataclass
class Run:
    seconds: float
    peak_mib: float
    code: int

    def __str__(self) -> str:
        return f"{self.seconds:.2f} s, {self.peak_mib:.0f} MiB"


def build(release: bool) -> tuple[Path, Path]:
    """The sni-guard command and the fleet generator, built with cargo."""
    cargo = shutil.which("cargo")
    if cargo is None:
        raise RuntimeError("cargo is missing: rustup, `make deps`")
    profile = ["--release"] if release else []
    subprocess.run([cargo, "build", "-q", *profile, "-p", "sni-guard-cli", "--bin", "sni-guard", "--example", "fleet"],
                   cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    target = (target if target.is_absolute() else ROOT / target) / ("release" if release else "debug")
    return target / "sni-guard", target / "examples" / "fleet"


def measure_once(command: list[str], stdout: Path) -> Run:
    if not Path(GNU_TIME).exists():
        raise RuntimeError(f"{GNU_TIME} is missing: `make deps` installs Debian's time")
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss, stdout.open("wb") as out:
        start = time.monotonic()
        done = subprocess.run([GNU_TIME, "-q", "-f", "%M", "-o", rss.name, *command], stdout=out,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - start
        peak_kib = int(Path(rss.name).read_text().split()[-1])
    return Run(seconds, peak_kib / 1024, done.returncode)


def measure(command: list[str], stdout: Path, rounds: int, expect: int) -> Run:
    runs = [measure_once(command, stdout) for _ in range(rounds)]
    for run in runs:
        if run.code != expect:
            raise RuntimeError(f"{' '.join(map(str, command))}: exit {run.code}, expected {expect}")
    return Run(statistics.median(r.seconds for r in runs), max(r.peak_mib for r in runs), expect)


def commands(sni_guard: Path, fleet: Path, work: Path) -> dict[str, tuple[list[str], int]]:
    """What is measured on one fleet: the command and its exit status (1: risks found)."""
    plugin = work / "wasmplugin.yaml"
    return {
        "audit": ([str(sni_guard), "audit", str(fleet)], 1),
        "merge": ([str(sni_guard), "merge", str(fleet)], 0),
        "config": ([str(sni_guard), "config", "--kind", "wasmplugin", "--image", "file:///var/local/lib/wasm/sni-guard.wasm",
                    "--selector", PUBLIC, str(fleet)], 0),
        "check": ([str(sni_guard), "check", str(plugin)], 0),
    }


HEADING = "## The sni-guard command at a fleet's scale"


def run(machine: str, rounds: int = 3) -> list[str]:
    """The section of bench/results.md, as markdown lines; printed as it goes. `machine`
    describes where it ran."""
    release, generator = build(release=True)
    debug, _ = build(release=False)
    work = Path(tempfile.mkdtemp(prefix="sni-guard-bench-cli-"))
    try:
        return _run(release, debug, generator, work, rounds, machine)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def replace_section(results: Path, section: list[str]) -> None:
    """`results` with this part's section replaced (or added at the end), the rest kept."""
    text = results.read_text() if results.exists() else ""
    lines = text.splitlines()
    if HEADING in lines:
        start = lines.index(HEADING)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        # The blank line before the heading belongs to the section.
        if start > 0 and lines[start - 1] == "":
            start -= 1
        lines = lines[:start] + section + lines[end:]
    else:
        lines += section
    results.write_text("\n".join(lines) + "\n")


def _fleet(generator: Path, work: Path, servers: int, certificates: str) -> Path:
    path = work / f"fleet-{servers}-{certificates}.yaml"
    with path.open("w") as out:
        subprocess.run([str(generator), str(servers), certificates], stdout=out, check=True)
    return path


def _measure_fleet(sni_guard: Path, fleet: Path, work: Path, rounds: int, names: tuple[str, ...]) -> dict[str, Run]:
    out: dict[str, Run] = {}
    plugin = work / "wasmplugin.yaml"
    for name in names:
        command, expect = commands(sni_guard, fleet, work)[name]
        # config's output is what check reads.
        out[name] = measure(command, plugin if name == "config" else work / f"{name}.out", rounds, expect)
    return out


def _run(release: Path, debug: Path, generator: Path, work: Path, rounds: int, machine: str) -> list[str]:
    names = ("audit", "merge", "config", "check")
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = ["", HEADING, "",
             f"Measured {now:%Y-%m-%d %H:%M} UTC on {machine}; load average {os.getloadavg()[0]:.2f} at the start.", "",
             "Generated fleets (`cli/tests/support/fleet.rs`, as `kubectl get ... -A -o yaml` prints them, "
             "managedFields and status included): two Istio ingress deployments and a Gateway API Gateway, the app "
             "servers ten to a Gateway under one wildcard certificate, a passthrough server. Wall time (median of "
             f"{rounds} runs) and peak resident memory (GNU time's %M) of each command alone, release build; "
             "`config` writes the public gateway's WasmPlugin, `check` reads it.", "",
             "| servers | input | audit | merge | config | check |", "|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    wildcard: dict[int, Path] = {}
    for servers in SIZES:
        fleet = _fleet(generator, work, servers, "wildcard")
        wildcard[servers] = fleet
        figures = _measure_fleet(release, fleet, work, rounds, names)
        size = fleet.stat().st_size / 1e6
        row = f"| {servers:,} | {size:.1f} MB | " + " | ".join(str(figures[n]) for n in names) + " |"
        lines.append(row)
        print(row, flush=True)
    san = _fleet(generator, work, SAN_SERVERS, "san")
    targets = [(f"{10_000:,} servers under one wildcard certificate", wildcard[10_000]),
               (f"{SAN_SERVERS:,} servers on one certificate naming all {SAN_SERVERS:,} hosts", san)]
    lines.append("")
    print("", flush=True)
    head = [f"Targets (issue #19): release build under {GOAL_SECONDS:.0f} s and {GOAL_MIB:.0f} MiB; the debug build "
            f"(`make cli`) within {DEBUG_FACTOR}x.", "",
            "| input | command | release | debug | met |", "|---|---|---:|---:|---|"]
    lines += head
    print("\n".join(head), flush=True)
    for label, fleet in targets:
        fast = _measure_fleet(release, fleet, work, rounds, ("audit", "merge"))
        slow = _measure_fleet(debug, fleet, work, rounds, ("audit", "merge"))
        for name in ("audit", "merge"):
            met = (fast[name].seconds < GOAL_SECONDS and fast[name].peak_mib < GOAL_MIB
                   and slow[name].seconds < GOAL_SECONDS * DEBUG_FACTOR
                   and slow[name].peak_mib < GOAL_MIB * DEBUG_FACTOR)
            row = f"| {label} | {name} | {fast[name]} | {slow[name]} | {'yes' if met else 'NO'} |"
            lines.append(row)
            print(row, flush=True)
    return lines
