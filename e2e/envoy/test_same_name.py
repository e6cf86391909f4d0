"""The two ways a request for the very name its connection was opened with (nearly every
request) is settled without sni-guard reading anything, in real Envoy:

- Envoy's matcher in front of the module (envoyfilter/envoy.yaml, envoyfilter.yaml) skips the
  module for it: the module never sees it, so `sni_guard.checked` does not count it.
- Without the matcher (as a WasmPlugin installs sni-guard), the module creates one CEL
  expression per configuration (src/cel.rs) and evaluates it for every request: `null` for the
  same name (nothing handed to the module), else the root, SNI and :authority in one value.
  Envoy logs a failed evaluation at debug level on its `wasm` logger ("expr_evaluate"), so a
  debug log free of them shows every request got its answer from the one evaluation."""

from e2e.support import curl as curl_support
from e2e.support import envoy as envoy_support

EVALUATION_ERROR = "expr_evaluate"


def test_one_cel_evaluation_answers_every_request(curl, certs, workdir):
    # As a WasmPlugin installs it: no matcher in front, every request reaches the module.
    envoy = envoy_support.Envoy(envoy_support.without_matcher(envoy_support.prepare(certs)), workdir, name="cel-check")
    envoy.extra_args = ["--component-log-level", "wasm:debug"]
    with envoy:
        log = envoy.stderr_path.read_text(errors="replace")
        assert "first check: Envoy's CEL same-name test" in log, envoy.log_tail()
        for http in ("--http1.1", "--http2"):
            assert curl_support.status(certs, envoy.port, "a.example.com", "a.example.com", http) == 200
        cases = [("A.EXAMPLE.COM", 200), (f"a.example.com:{envoy.port}", 200), ("d.example.com", 421),
                 ("b.example.com", 421), ("unknown.example.org", 404)]
        for host, expected in cases:
            assert curl_support.status(certs, envoy.port, "a.example.com", host, "--http2") == expected, host
        stats = envoy.wait_for_stats({"wasmcustom.sni_guard.checked": 7})
        assert (stats["wasmcustom.sni_guard.checked"], stats["wasmcustom.sni_guard.rejected"]) == (7, 2), stats
        log = envoy.stderr_path.read_text(errors="replace")
        assert EVALUATION_ERROR not in log, envoy.log_tail()


def test_envoys_matcher_keeps_same_name_requests_from_the_module(curl, certs, workdir):
    with envoy_support.Envoy(envoy_support.prepare(certs), workdir, name="matcher") as envoy:
        for http in ("--http1.1", "--http2", "--http2"):
            assert curl_support.status(certs, envoy.port, "a.example.com", "a.example.com", http) == 200
        # Requests the module sees: another name of the same server passes, another server's
        # is answered 421 (which flushes the pending `checked` count at once).
        assert curl_support.status(certs, envoy.port, "c.example.com", "d.example.com", "--http2") == 200
        assert curl_support.status(certs, envoy.port, "a.example.com", "b.example.com", "--http2") == 421
        # Had the module seen the same-name requests, `checked` would count them on its tick.
        stats = envoy.wait_for_stats({"wasmcustom.sni_guard.checked": 2, "wasmcustom.sni_guard.rejected": 1})
        assert (stats["wasmcustom.sni_guard.checked"], stats["wasmcustom.sni_guard.rejected"]) == (2, 1), stats
