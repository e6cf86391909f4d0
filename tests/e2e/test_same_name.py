"""The two ways a request for the very name its connection was opened with (nearly every
request) is settled without sni-guard reading anything, in real Envoy:

- Envoy's matcher in front of the module (envoyfilter/envoy.yaml, envoyfilter.yaml) skips the
  module for it: the module never sees it, so `sni_guard.checked` does not count it.
- Without the matcher (as a WasmPlugin installs sni-guard), the module creates Envoy's CEL
  same-name check at configuration (src/cel.rs) and puts every request to it first. Envoy logs
  each failed evaluation at debug level on its `wasm` logger ("expr_evaluate value error"), so
  the log shows which requests the check settled (none logged) and which went on to the full
  check (one line each)."""

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
    # As a WasmPlugin installs it: no matcher in front, every request reaches the module.
    envoy = envoy_support.Envoy(envoy_support.without_matcher(envoy_support.prepare(certs)), workdir, name="cel-check")
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


def test_envoys_matcher_keeps_same_name_requests_from_the_module(curl, certs, workdir):
    with envoy_support.Envoy(envoy_support.prepare(certs), workdir, name="matcher") as envoy:
        for http in ("--http1.1", "--http2", "--http2"):
            assert curl_support.status(certs, envoy.port, "a.example.com", "a.example.com", http) == 200
        # Requests the module sees: another name of the same server passes, another server's
        # is answered 421 (which flushes the pending `checked` count at once).
        assert curl_support.status(certs, envoy.port, "c.example.com", "d.example.com", "--http2") == 200
        assert curl_support.status(certs, envoy.port, "a.example.com", "b.example.com", "--http2") == 421
        # Had the module seen the same-name requests, the 421 would have flushed them too.
        stats = envoy.stats()
        assert (stats["wasmcustom.sni_guard.checked"], stats["wasmcustom.sni_guard.rejected"]) == (2, 1), stats
