"""The example gateway over HTTP/3 (envoyfilter/envoy.yaml's QUIC listener): an HTTP/3 client
that coalesces (e2e/support/h3client.py) opens one QUIC connection for a.example.com and sends
the request for b on it, as a browser pools HTTP/3 connections across the names a certificate
covers. Without sni-guard b gets a's route table's 404; with it 421, and a client honouring it
gets 200 on a new connection opened for b, while a's connection keeps serving a."""

import re

import pytest

from e2e.support import exact_client, h3client
from e2e.support.h3client import CoalescingClient

A, B = "a.example.com", "b.example.com"
ALT_SVC = 'h3=":8443"; ma=86400'


def statuses(responses):
    return [(r.host, r.status, r.connection) for r in responses]


def test_without_filter_b_is_404_on_as_quic_connection(certs, envoy_without_filter):
    with CoalescingClient(envoy_without_filter.quic_port, str(certs.ca)) as client:
        responses = client.get(A) + client.get(B)
        assert statuses(responses) == [(A, 200, 0), (B, 404, 0)]
        assert len(client.connections) == 1


def test_with_filter_b_is_421_on_as_quic_connection(certs, envoy_with_filter):
    with CoalescingClient(envoy_with_filter.quic_port, str(certs.ca), honour_421=False) as client:
        responses = client.get(A) + client.get(B)
        assert statuses(responses) == [(A, 200, 0), (B, 421, 0)]
        assert [c.sni for c in client.connections] == [A]


def test_client_honouring_421_gets_200_on_a_new_quic_connection(certs, envoy_with_filter):
    path = "/h3-coalescing-retry"
    with CoalescingClient(envoy_with_filter.quic_port, str(certs.ca)) as client:
        responses = client.get(A, path) + client.get(B, path) + client.get(A, path)
        # The 421 leaves a's connection usable: a's next request is served on it.
        assert statuses(responses) == [(A, 200, 0), (B, 421, 0), (B, 200, 1), (A, 200, 0)]
        assert [c.sni for c in client.connections] == [A, B]
        assert responses[2].body == b"hello from b\n"

    # Envoy's view: the 421 on the QUIC connection opened for a, the 200 on another opened for b.
    lines = envoy_with_filter.wait_for_access_log(lambda line: f" {path} " in line, count=4)
    seen = [re.search(r"conn=(\d+) sni=(\S+) authority=(\S+) .* (HTTP/\S+) (\d{3}) ", line).groups()
            for line in lines]
    # Envoy writes each connection's lines as its streams end: sorted, not in the order sent.
    assert sorted((sni, authority.split(":")[0], protocol, status) for _, sni, authority, protocol, status in seen) == [
        (A, A, "HTTP/3", "200"), (A, A, "HTTP/3", "200"), (A, B, "HTTP/3", "421"), (B, B, "HTTP/3", "200")]
    connections = {(sni, status): conn for conn, sni, _, _, status in seen}
    assert connections[(A, "200")] == connections[(A, "421")] != connections[(B, "200")]


@pytest.mark.parametrize("host", ["a.example.com", "A.EXAMPLE.COM", "a.example.com:{port}"])
def test_same_host_passes_over_http3(certs, envoy_with_filter, host):
    host = host.format(port=envoy_with_filter.quic_port)
    assert h3client.get(envoy_with_filter.quic_port, A, host, ca=certs.ca).status == 200


def test_hosts_of_one_server_share_a_quic_connection(certs, envoy_with_filter):
    with h3client.Connection(envoy_with_filter.quic_port, "c.example.com", ca=certs.ca) as connection:
        replies = [connection.get(host, "/") for host in ("c.example.com", "d.example.com", "b.example.com")]
    assert [(r.status, r.text) for r in replies] == [
        (200, "hello from c\n"), (200, "hello from d\n"), (421, replies[2].text)]


def test_http3_is_advertised_on_both_listeners(certs, envoy_with_filter):
    """alt-svc names the QUIC port on every route, as istiod adds it to a server served over QUIC
    too: on the TLS listener's responses (how a browser discovers HTTP/3) and on HTTP/3's. The
    tests bind the two listeners on ports of the kernel's choosing, so the header keeps the
    example's port; sni-guard's 421 is a local reply, without it."""
    over_h2 = exact_client.get(envoy_with_filter.port, A, A, "/alt-svc", ca=certs.ca)
    over_h3 = h3client.get(envoy_with_filter.quic_port, A, A, "/alt-svc", ca=certs.ca)
    misdirected = h3client.get(envoy_with_filter.quic_port, A, B, ca=certs.ca)
    assert (over_h2.headers.get("alt-svc"), over_h3.headers.get("alt-svc"), misdirected.headers.get("alt-svc")) == (
        ALT_SVC, ALT_SVC, None)
