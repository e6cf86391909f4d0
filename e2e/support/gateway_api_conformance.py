"""Gateway API's conformance test HTTPRouteHTTPSListenerDetectMisdirectedRequests, played
against Envoy on loopback: its Gateway and HTTPRoutes (e2e/envoy/fixtures/
gateway-api-conformance.yaml), its 15 cases, the sni-guard configuration the CLI writes for the
Gateway, and one request per case with exactly the case's SNI and `:authority` over HTTP/2.

Shared by e2e/envoy/test_gateway_api_conformance.py and scripts/conformance_table.py (the
README's table).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from e2e.support import envoy as envoy_support
from e2e.support import exact_client, h3client, istio_gateway

ROOT = envoy_support.ROOT
FIXTURE = ROOT / "e2e" / "envoy" / "fixtures" / "gateway-api-conformance.yaml"
GATEWAY = "same-namespace-with-https-listener"
CATCH_ALL_LISTENER = "https"
SELECTOR = f"gateway.networking.k8s.io/gateway-name={GATEWAY}"
PATH = "/detect-misdirected-requests"
# Every name the cases use, on the one certificate every chain serves (no test checks the name
# against it; the client checks the chain against the test CA).
CERTIFICATE_NAMES = ["example.org", "second-example.org", "*.wildcard.org", "unknown-example.org",
                     "a.example.com", "b.example.com"]


@dataclass(frozen=True)
class Case:
    server_name: str | None
    host: str
    status: int
    backend: str | None = None

    @property
    def id(self) -> str:
        return f"{self.server_name}->{self.host}"


# The 15 cases of conformance/tests/httproute-https-listener-detect-misdirected-requests.go
# (gateway-api, commit in the fixture's header), in its order and spelling ("fith").
CASES = [
    Case("example.org", "example.org", 200, "infra-backend-v1"),
    Case("example.org", "second-example.org", 421),
    Case("example.org", "unknown-example.org", 404),
    Case("second-example.org", "second-example.org", 200, "infra-backend-v2"),
    Case("second-example.org", "example.org", 421),
    Case("second-example.org", "unknown-example.org", 421),
    Case("third-example.wildcard.org", "third-example.wildcard.org", 200, "infra-backend-v3"),
    Case("third-example.wildcard.org", "fith-example.wildcard.org", 200, "infra-backend-v3"),
    Case("third-example.wildcard.org", "fourth-example.wildcard.org", 421),
    Case("third-example.wildcard.org", "second-example.org", 421),
    Case("third-example.wildcard.org", "unknown-example.org", 421),
    Case("fourth-example.wildcard.org", "fourth-example.wildcard.org", 200, "infra-backend-v1"),
    Case("fourth-example.wildcard.org", "fith-example.wildcard.org", 421),
    Case("unknown-example.org", "example.org", 200, "infra-backend-v1"),
    Case("unknown-example.org", "unknown-example.org", 404),
]


# The same Gateway without its catch-all listener (`without_catch_all`).
# (SNI, :authority, with sni-guard, without). No listener serves example.org or
# unknown-example.org any more: GEP-3567 says such a Host MUST get the route table's 404, on any
# connection. SNIs no listener serves have no filter chain: the handshake fails.
NO_CATCH_ALL = [
    ("second-example.org", "second-example.org", "200 infra-backend-v2", "200 infra-backend-v2"),
    ("second-example.org", "unknown-example.org", "404", "404"),
    ("second-example.org", "example.org", "404", "404"),
    ("third-example.wildcard.org", "fith-example.wildcard.org", "200 infra-backend-v3", "200 infra-backend-v3"),
    ("third-example.wildcard.org", "unknown-example.org", "404", "404"),
    ("third-example.wildcard.org", "second-example.org", "421", "404"),
    ("third-example.wildcard.org", "fourth-example.wildcard.org", "421", "200 infra-backend-v3"),
    ("fourth-example.wildcard.org", "fith-example.wildcard.org", "421", "404"),
    ("fourth-example.wildcard.org", "example.org", "404", "404"),
    ("example.org", "example.org", "handshake fails", "handshake fails"),
    ("unknown-example.org", "second-example.org", "handshake fails", "handshake fails"),
]


def documents(path: Path = FIXTURE) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def without_catch_all(docs: list[dict]) -> list[dict]:
    """The Gateway without its listener that has no hostname (the catch-all server), and
    without the HTTPRoute attached to it."""
    out = []
    for doc in docs:
        doc = json.loads(json.dumps(doc))
        if doc["kind"] == "Gateway" and doc["metadata"]["name"] == GATEWAY:
            doc["spec"]["listeners"] = [listener for listener in doc["spec"]["listeners"]
                                        if listener["name"] != CATCH_ALL_LISTENER]
        if doc["kind"] == "HTTPRoute" and any(p.get("sectionName") == CATCH_ALL_LISTENER
                                              for p in doc["spec"]["parentRefs"]):
            continue
        out.append(doc)
    return out


def cli_config(manifest: Path) -> dict:
    """sni-guard's configuration for the Gateway, as the CLI prints it (`sni-guard config`), in
    enforce mode (the CLI's default is dry_run, for a first rollout)."""
    command = os.environ.get("SNI_GUARD_CLI")
    argv = [command] if command else ["cargo", "run", "-q", "-p", "sni-guard-cli", "--"]
    out = subprocess.run([*argv, "config", "--selector", SELECTOR, "--mode", "enforce", str(manifest)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"sni-guard config exited {out.returncode}:\n{out.stderr}")
    return json.loads(out.stdout)


def servers(docs: list[dict]) -> list[istio_gateway.Server]:
    return istio_gateway.gateway_api_servers(docs, GATEWAY)


@dataclass
class Outcome:
    """What one request got: a status and the backend named by the body, or no connection."""
    status: int | None
    backend: str | None
    handshake_failed: bool = False

    def shown(self) -> str:
        if self.handshake_failed:
            return "handshake fails"
        return f"{self.status} {self.backend}" if self.backend else str(self.status)

    @staticmethod
    def parse(text: str) -> "Outcome":
        """`"421"`, `"404"`, `"200 infra-backend-v1"` or `"handshake fails"` (as `shown` writes)."""
        if text == "handshake fails":
            return Outcome(None, None, handshake_failed=True)
        status, _, backend = text.partition(" ")
        return Outcome(int(status), backend or None)


HTTP1, HTTP2, HTTP3 = "http/1.1", "h2", "h3"


def request(envoy: envoy_support.Envoy, certs: envoy_support.Certs, sni: str | None, host: str,
            path: str = PATH, case: str = "-", client_cert: tuple[Path, Path] | None = None,
            transport: str = HTTP2) -> Outcome:
    """One GET on a new connection opened with exactly `sni`, `:authority` (Host) exactly `host`:
    HTTP/2 over TLS, HTTP/1.1 over TLS (`transport` HTTP1), or HTTP/3 over QUIC to the gateway's
    QUIC listener (`transport` HTTP3). The backend is the body of a 200 (the routes answer with
    their backend's name). A QUIC handshake fails only when Envoy closed the connection itself
    (`h3client`): a handshake that merely gets no answer raises."""
    try:
        if transport == HTTP3:
            if client_cert is not None:
                raise ValueError("the HTTP/3 client sends no client certificate")
            closed_before = envoy.quic_closed_by_envoy()
            reply = h3client.get(envoy.quic_port, sni, host, path, ca=certs.ca, extra_headers=[("x-case", case)],
                                 refused=lambda: envoy.quic_closed_by_envoy() > closed_before)
        else:
            get = exact_client.http1_get if transport == HTTP1 else exact_client.get
            reply = get(envoy.port, sni, host, path, ca=certs.ca, client_cert=client_cert,
                        extra_headers=[("x-case", case)])
    except (h3client.HandshakeRefused if transport == HTTP3 else exact_client.HandshakeFailed):
        return Outcome(None, None, handshake_failed=True)
    backend = reply.text.strip() if reply.status == 200 else None
    return Outcome(reply.status, backend)


# What `%RESPONSE_CODE_DETAILS%` says for each status these gateways answer.
DETAILS = {200: "direct_response", 404: "route_not_found", 421: "sni_guard_misdirected_request"}
# What `%PROTOCOL%` says for each transport.
PROTOCOLS = {HTTP1: "HTTP/1.1", HTTP2: "HTTP/2", HTTP3: "HTTP/3"}
_case_numbers = itertools.count(1)


def check(envoy: envoy_support.Envoy, certs: envoy_support.Certs, sni: str | None, host: str, want: str, *,
          path: str = PATH, chain: str | None = None, client_cert: tuple[Path, Path] | None = None,
          transport: str = HTTP2) -> None:
    """One request (`request`); its outcome must be `want` (`Outcome.parse`). Unless the
    handshake fails, Envoy's access log must show who answered (the router or sni-guard), the
    protocol, and, if given, the filter chain Envoy picked for the SNI."""
    case = f"c{next(_case_numbers)}"
    served_before = chain_requests(envoy, chain) if chain is not None and transport == HTTP3 else 0
    got = request(envoy, certs, sni, host, path, case, client_cert=client_cert, transport=transport)
    assert got == Outcome.parse(want), \
        f"{transport}: SNI {sni!r}, :authority {host!r}, path {path!r}: got {got.shown()}, want {want}"
    if got.handshake_failed:
        return
    line = access_log_line(envoy, case)
    assert f"details={DETAILS[got.status]}" in line, line
    assert f"protocol={PROTOCOLS[transport]} " in line, line
    if chain is not None and transport != HTTP3:
        assert f"chain={chain} " in line, line
    elif chain is not None:
        # Envoy 1.40 leaves %FILTER_CHAIN_NAME% empty on QUIC connections: the chain's connection
        # manager counted the request instead.
        assert "chain=- " in line, line
        assert chain_requests(envoy, chain) == served_before + 1, f"chain {chain} did not serve it: {line}"


def chain_requests(envoy: envoy_support.Envoy, chain: str) -> int:
    """Requests the connection manager of the chain named `chain` (its server's) has seen, over
    TCP and QUIC (istiod gives both chains of a server one stat prefix)."""
    total = 0
    for name, value in envoy.stats("http.").items():
        port = name.removeprefix("http.https.").split(".", 1)[0]
        if port.isdigit() and name == f"http.{istio_gateway.stat_prefix(chain, int(port))}.downstream_rq_total":
            total += value
    return total


def access_log_line(envoy: envoy_support.Envoy, case: str) -> str:
    """The access log line of the request sent with `x-case: case`."""
    lines = envoy.wait_for_access_log(lambda line: f" case={case} " in line)
    if len(lines) != 1:
        raise AssertionError(f"expected one access log line for case {case}, got {lines}")
    return lines[0]
