"""Prints the README's "Gateway API conformance" tables from a real run: the 15 cases of
HTTPRouteHTTPSListenerDetectMisdirectedRequests, and the same Gateway without its catch-all
listener, each against Envoy without sni-guard and with sni-guard in both installed forms
(e2e/support/gateway_api_conformance.py; the tests asserting the same are
e2e/envoy/test_gateway_api_conformance.py).

    .venv/bin/python scripts/conformance_table.py

An Envoy that does not start (e.g. a module refusing the configuration) is reported in its
column header and its cells, not hidden.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from e2e.support import envoy as envoy_support
from e2e.support import gateway_api_conformance as conformance
from e2e.support import istio_gateway

FORMS = [None, istio_gateway.WASM_FORM, istio_gateway.MATCHER_FORM]
HEADERS = {None: "without sni-guard", istio_gateway.WASM_FORM: "sni-guard, form a (Wasm filter)",
           istio_gateway.MATCHER_FORM: "sni-guard, form b (behind Envoy's matcher)"}
NOT_STARTED: dict[str, str] = {}


def run(servers, certs, plugin_config, workdir, name, requests):
    """{form: [outcome text per request]}, or the reason Envoy did not start."""
    results = {}
    for form in FORMS:
        config = istio_gateway.bootstrap(servers, certs, plugin_config=plugin_config, form=form)
        try:
            with envoy_support.Envoy(config, workdir, name=f"{name}-{form or 'none'}") as envoy:
                results[form] = [conformance.request(envoy, certs, sni, host).shown() for sni, host in requests]
        except RuntimeError as e:
            NOT_STARTED[f"{name}, {HEADERS[form]}"] = next(
                (line.split("sni-guard: ", 2)[-1] for line in str(e).splitlines() if "invalid configuration" in line),
                str(e).splitlines()[0])
            results[form] = ["(Envoy did not start)"] * len(requests)
    return results


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="sni-guard-conformance-"))
    try:
        certs = envoy_support.make_certs(workdir / "certs", conformance.CERTIFICATE_NAMES)
        docs = conformance.documents()
        requests = [(c.server_name, c.host) for c in conformance.CASES]
        results = run(conformance.servers(docs), certs, conformance.cli_config(conformance.FIXTURE), workdir,
                      "conformance", requests)
        rows = []
        for i, case in enumerate(conformance.CASES):
            spec = conformance.Outcome(case.status, case.backend).shown()
            rows.append([str(i + 1), case.server_name, case.host, spec, *(results[f][i] for f in FORMS)])
        print(table(["#", "SNI", "Host", "spec expects", *(HEADERS[f] for f in FORMS)], rows))
        print()

        docs = conformance.without_catch_all(docs)
        manifest = workdir / "without-catch-all.yaml"
        manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        requests = [(sni, host) for sni, host, _, _ in conformance.NO_CATCH_ALL]
        results = run(conformance.servers(docs), certs, conformance.cli_config(manifest), workdir, "no-catch-all",
                      requests)
        rows = [[sni, host, spec, *(results[f][i] for f in FORMS)]
                for i, (sni, host, spec, _) in enumerate(conformance.NO_CATCH_ALL)]
        print(table(["SNI", "Host", "spec expects", *(HEADERS[f] for f in FORMS)], rows))
        for where, reason in NOT_STARTED.items():
            print(f"\nEnvoy did not start ({where}): {reason}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
