"""HTTP/1.1 has no streams: after a 421 the client must open a new connection, and the server
closing the old one makes sure of it. What Envoy 1.40 does:

- sni-guard alone: the 421 arrives without `connection: close` (Envoy strips the header the
  module sets) and the connection stays open. No proxy-wasm call closes it without losing the
  421 (README, "HTTP/1.1 and closing the connection"); curl still gets the 421, and a client
  retrying on the same connection gets the 421 again, never a wrong 200/404.
- with the Lua companion filter (tests/support/envoy.py, HTTP1_CLOSE_ON_421_LUA): the 421
  carries `connection: close` and Envoy closes the connection; HTTP/2 connections are kept.
"""

import subprocess

import pytest

from tests.support import envoy as envoy_support
from tests.support.h2client import CoalescingClient


@pytest.fixture(scope="module")
def envoy_with_lua_companion(certs, workdir):
    config = envoy_support.add_http1_close_on_421(envoy_support.prepare(certs))
    with envoy_support.Envoy(config, workdir, name="lua-companion") as envoy:
        yield envoy


def misdirected_then_same_host(curl, certs, envoy):
    """curl -v: SNI a with Host b, then (`--next`) SNI a with Host a, reusing the connection if
    it is still open. Returns curl's verbose output."""
    common = ["--http1.1", "--cacert", str(certs.ca), "--resolve", f"a.example.com:{envoy.port}:127.0.0.1",
              "-o", "/dev/null", "--max-time", "10"]
    url = f"https://a.example.com:{envoy.port}/"
    out = subprocess.run([curl, "-sv", *common, "-H", "Host: b.example.com", url, "--next", *common, url],
                         capture_output=True, text=True, check=True)
    return out.stderr


def test_sni_guard_alone_leaves_the_http1_connection_open(curl, certs, envoy_with_filter):
    verbose = misdirected_then_same_host(curl, certs, envoy_with_filter)
    assert "< HTTP/1.1 421 Misdirected Request" in verbose
    assert "< connection: close" not in verbose.lower()
    assert verbose.count("Connected to a.example.com") == 1, "the second request reused the connection"
    assert "Re-using existing connection" in verbose
    assert "< HTTP/1.1 200 OK" in verbose


def test_lua_companion_closes_the_http1_connection_after_421(curl, certs, envoy_with_lua_companion):
    verbose = misdirected_then_same_host(curl, certs, envoy_with_lua_companion)
    assert "< HTTP/1.1 421 Misdirected Request" in verbose
    assert "< connection: close" in verbose.lower()
    assert verbose.count("Connected to a.example.com") == 2, "the second request needed a new connection"
    assert "Re-using existing connection" not in verbose
    assert "< HTTP/1.1 200 OK" in verbose


def test_lua_companion_keeps_http2_connections(certs, envoy_with_lua_companion):
    with CoalescingClient(envoy_with_lua_companion.port, str(certs.ca), honour_421=False) as client:
        responses = client.get("a.example.com") + client.get("b.example.com") + client.get("a.example.com")
        assert [(r.status, r.connection) for r in responses] == [(200, 0), (421, 0), (200, 0)]
