"""dry_run's log is bounded (issue #12): a client controls how many misdirected requests arrive,
so logging each one is a log flood it can trigger. Each dry-run mismatch is logged at warn (seen
by an Envoy at `-l warning`, as istio-proxy runs), at most a few per time window, then one
summary line gives how many were not logged; `sni_guard.dry_run_mismatch` still counts every
one. The lines are matched loosely (e2e/support/sni_guard_log.py)."""

from __future__ import annotations

import subprocess
import time

import pytest

from e2e.support import curl as curl_support
from e2e.support import envoy as envoy_support
from e2e.support.sni_guard_log import dry_run_log

BURST = 200
# "A few per window": however the window is cut, a burst of 200 must not give more lines than this.
MAX_LOGGED = 20
# How long the summary may take to appear after the burst (it may wait for the window to end,
# and for the next mismatch or tick after that); one more misdirected request is sent every
# NUDGE_SECONDS meanwhile, in case the summary is written when the next mismatch comes.
SUMMARY_WAIT_SECONDS = 20
NUDGE_SECONDS = 3
FIRST_LINE_SECONDS = 3


@pytest.fixture(scope="module")
def quiet_dry_run_envoy(certs, workdir):
    plugin = dict(envoy_support.plugin_configuration(envoy_support.load_example()), mode="dry_run")
    config = envoy_support.prepare(certs, plugin_config=plugin)
    with envoy_support.Envoy(config, workdir, name="dry-run-log", log_level="warning") as envoy:
        yield envoy


def misdirected_burst(certs, port: int, count: int) -> list[int]:
    """`count` requests for b.example.com on one HTTP/2 connection opened for a.example.com,
    back to back (one curl, one URL per request)."""
    url = f"https://a.example.com:{port}/"
    args = [curl_support.CURL, "-s", "--http2", "--cacert", str(certs.ca),
            "--resolve", f"a.example.com:{port}:127.0.0.1", "-H", "Host: b.example.com",
            "-w", "%{http_code}\n", "--max-time", "30"]
    for _ in range(count):
        args += ["-o", "/dev/null", url]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    return [int(code) for code in out.stdout.split()]


def test_dry_run_log_is_bounded_and_the_counter_exact(certs, quiet_dry_run_envoy):
    envoy = quiet_dry_run_envoy
    statuses = misdirected_burst(certs, envoy.port, BURST)
    assert statuses == [404] * BURST, "dry_run lets every misdirected request through to a's route table"
    sent = BURST

    def log():
        return dry_run_log(envoy.stderr_path.read_text(errors="replace"))

    # Envoy writes its log asynchronously: give the first line a moment.
    first_deadline = time.monotonic() + FIRST_LINE_SECONDS
    lines, suppressed = log()
    while not (lines or suppressed) and time.monotonic() < first_deadline:
        time.sleep(0.1)
        lines, suppressed = log()
    assert lines or suppressed, (
        "no dry-run line at all in Envoy's log at -l warning: dry-run mismatches must be logged at warn\n"
        + envoy.log_tail(10))

    deadline = time.monotonic() + SUMMARY_WAIT_SECONDS
    next_nudge = time.monotonic() + NUDGE_SECONDS
    while len(lines) + sum(suppressed) != sent and time.monotonic() < deadline:
        if time.monotonic() >= next_nudge:
            assert curl_support.status(certs, envoy.port, "a.example.com", "b.example.com") == 404
            sent += 1
            next_nudge = time.monotonic() + NUDGE_SECONDS
        time.sleep(0.2)
        lines, suppressed = log()

    expected = {"wasmcustom.sni_guard.dry_run_mismatch": sent, "wasmcustom.sni_guard.rejected": 0}
    stats = envoy.wait_for_stats(expected)
    assert {k: stats.get(k) for k in expected} == expected, "the counter counts every mismatch"
    assert 1 <= len(lines) <= MAX_LOGGED, f"{len(lines)} dry-run lines for {sent} mismatches:\n" + "\n".join(lines[:5])
    assert all("[warning]" in line for line in lines), lines[:3]
    assert suppressed, f"no summary line with a suppressed count after {SUMMARY_WAIT_SECONDS}s:\n{envoy.log_tail(10)}"
    assert len(lines) + sum(suppressed) == sent, (
        f"{len(lines)} logged + {sum(suppressed)} reported suppressed ({suppressed}) != {sent} mismatches")
