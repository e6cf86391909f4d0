"""HTTP/1.1 has no streams: after a 421 the client must open a new connection, and the server
closing the old one makes sure of it. What Envoy 1.40 does:

- sni-guard alone: the 421 arrives without `connection: close` (sni-guard sets none; Envoy would
  strip it) and the connection stays open. No proxy-wasm call closes it without losing the
  421 (docs/design.md, "HTTP/1.1 and closing the connection"); curl still gets the 421, and a client
  retrying on the same connection gets the 421 again, never a wrong 200/404.
- with the Lua companion filter (e2e/support/envoy.py, HTTP1_CLOSE_ON_421_LUA): the 421
  carries `connection: close` and Envoy closes the connection; HTTP/2 connections are kept.
"""

import subprocess

import pytest

from e2e.support import envoy as envoy_support
from e2e.support.h2client import CoalescingClient


@pytest.fixture(scope="module")
def envoy_with_lua_companion(certs, workdir):
    config = envoy_support.add_http1_close_on_421(envoy_support.prepare(certs))
    with envoy_support.Envoy(config, workdir, name="lua-companion") as envoy:
        yield envoy


def misdirected_then_same_host(curl, certs, envoy):
    """curl: SNI a with Host b, then (`--next`) SNI a with Host a, reusing the connection if it
    is still open. Returns [(status, new connections made), ...] for the two transfers (curl's
    `%{num_connects}`, not its verbose wording, which changes between versions) and the
    response headers of both."""
    common = ["--http1.1", "--cacert", str(certs.ca), "--resolve", f"a.example.com:{envoy.port}:127.0.0.1",
              "-o", "/dev/null", "-D", "-", "-w", "result=%{http_code} %{num_connects}\n", "--max-time", "10"]
    url = f"https://a.example.com:{envoy.port}/"
    out = subprocess.run([curl, "-s", *common, "-H", "Host: b.example.com", url, "--next", *common, url],
                         capture_output=True, text=True, check=True).stdout
    results = [tuple(int(x) for x in line.split("=", 1)[1].split()) for line in out.splitlines()
               if line.startswith("result=")]
    return results, out.lower()


def test_sni_guard_alone_leaves_the_http1_connection_open(curl, certs, envoy_with_filter):
    results, headers = misdirected_then_same_host(curl, certs, envoy_with_filter)
    assert results == [(421, 1), (200, 0)], "421, then 200 on the same connection"
    assert "connection: close" not in headers


def test_lua_companion_closes_the_http1_connection_after_421(curl, certs, envoy_with_lua_companion):
    results, headers = misdirected_then_same_host(curl, certs, envoy_with_lua_companion)
    assert results == [(421, 1), (200, 1)], "421, then 200 on a new connection"
    assert "connection: close" in headers


def test_lua_companion_keeps_http2_connections(certs, envoy_with_lua_companion):
    with CoalescingClient(envoy_with_lua_companion.port, str(certs.ca), honour_421=False) as client:
        responses = client.get("a.example.com") + client.get("b.example.com") + client.get("a.example.com")
        assert [(r.status, r.connection) for r in responses] == [(200, 0), (421, 0), (200, 0)]
