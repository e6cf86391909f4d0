"""The `sni-guard` command for the Python tests: built once per session with cargo (a missing
cargo fails loudly), then run from the repository root as a user runs it."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=None)
def binary() -> Path:
    cargo = shutil.which("cargo")
    if cargo is None:
        raise RuntimeError("cargo is missing: the sni-guard command is built with it (rustup, `make deps`)")
    subprocess.run([cargo, "build", "-q", "-p", "sni-guard-cli"], cwd=ROOT, check=True, timeout=900)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return (target if target.is_absolute() else ROOT / target) / "debug" / "sni-guard"


def run(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`sni-guard ARGS...`: exit code, stdout and stderr as text."""
    return subprocess.run([str(binary()), *(str(a) for a in args)], cwd=ROOT, capture_output=True, text=True,
                          input=stdin if stdin is not None else "", timeout=120)


def config(*args) -> str:
    """`sni-guard config ARGS...`, which must succeed: its output."""
    result = run("config", *args)
    if result.returncode != 0:
        raise AssertionError(f"sni-guard config {' '.join(map(str, args))}: exit {result.returncode}\n{result.stderr}")
    return result.stdout


@functools.lru_cache(maxsize=None)
def _fleet_binary() -> Path:
    cargo = shutil.which("cargo")
    if cargo is None:
        raise RuntimeError("cargo is missing: the fleet generator is built with it (rustup, `make deps`)")
    subprocess.run([cargo, "build", "-q", "-p", "sni-guard-cli", "--example", "fleet"], cwd=ROOT, check=True,
                   timeout=900)
    return binary().parent / "examples" / "fleet"


def fleet(servers: int, certificates: str = "wildcard") -> str:
    """A generated fleet (cli/tests/support/fleet.rs) as `kubectl get ... -A -o yaml` prints it."""
    result = subprocess.run([str(_fleet_binary()), str(servers), certificates], capture_output=True, text=True,
                            check=True, timeout=300)
    return result.stdout
