"""Envoy's CEL same-name check (src/cel.rs) in real Envoy: the module creates the expression at
configuration, and every request is put to it first. Envoy logs each failed evaluation at debug
level on its `wasm` logger ("expr_evaluate value error"), so the log shows which requests the
check settled (none logged) and which went on to the module's full check (one line each)."""

import time

from tests.support import curl as curl_support
from tests.support import envoy as envoy_support

FAILED_EVALUATION = "expr_evaluate value error"


def failed_evaluations(envoy) -> int:
    return envoy.stderr_path.read_text(errors="replace").count(FAILED_EVALUATION)


def wait_for_failed_evaluations(envoy, count: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while (seen := failed_evaluations(envoy)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


def test_envoy_settles_the_same_name_and_sends_the_rest_to_the_full_check(curl, certs, workdir):
    envoy = envoy_support.Envoy(envoy_support.prepare(certs), workdir, name="cel-check")
    envoy.extra_args = ["--component-log-level", "wasm:debug"]
    with envoy:
        log = envoy.stderr_path.read_text(errors="replace")
        assert "first check: Envoy's CEL same-name check" in log, envoy.log_tail()
        assert failed_evaluations(envoy) == 0

        for http in ("--http1.1", "--http2"):
            assert curl_support.status(certs, envoy.port, "a.example.com", "a.example.com", http) == 200
        # Settled by the check: had it failed, Envoy would have logged it by the time the
        # requests that follow are logged.
        cases = [("A.EXAMPLE.COM", 200), (f"a.example.com:{envoy.port}", 200), ("b.example.com", 421)]
        for i, (host, expected) in enumerate(cases, start=1):
            assert curl_support.status(certs, envoy.port, "a.example.com", host, "--http2") == expected, host
            assert wait_for_failed_evaluations(envoy, i) == i, f"{host}: {envoy.log_tail()}"
        time.sleep(0.3)
        assert failed_evaluations(envoy) == len(cases), "one failed evaluation per other name, none for the same"
