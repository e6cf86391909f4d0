"""An HTTP/2 client that coalesces: one TLS connection opened for a.example.com carries the
requests for a and for b as two streams, the way a browser reuses a connection for every host
its certificate covers."""

import re

from e2e.support.h2client import CoalescingClient

A, B = "a.example.com", "b.example.com"


def statuses(responses):
    return [(r.host, r.status, r.connection) for r in responses]


def test_without_filter_b_is_404_on_as_connection(certs, envoy_without_filter):
    with CoalescingClient(envoy_without_filter.port, str(certs.ca)) as client:
        responses = client.get(A) + client.get(B)
        assert statuses(responses) == [(A, 200, 0), (B, 404, 0)]
        assert len(client.connections) == 1


def test_with_filter_b_is_421_on_as_connection(certs, envoy_with_filter):
    with CoalescingClient(envoy_with_filter.port, str(certs.ca), honour_421=False) as client:
        responses = client.get(A) + client.get(B)
        assert statuses(responses) == [(A, 200, 0), (B, 421, 0)]
        assert len(client.connections) == 1
        assert client.connections[0].sni == A


def test_client_honouring_421_gets_200_on_a_new_connection_with_sni_b(certs, envoy_with_filter):
    path = "/h2-coalescing-retry"
    with CoalescingClient(envoy_with_filter.port, str(certs.ca)) as client:
        responses = client.get(A, path) + client.get(B, path) + client.get(A, path)
        assert statuses(responses) == [(A, 200, 0), (B, 421, 0), (B, 200, 1), (A, 200, 0)]
        assert [c.sni for c in client.connections] == [A, B]
        assert responses[2].body == b"hello from b\n"
        assert client.connections[0].local_port != client.connections[1].local_port

    # Envoy's view: the 421 on the connection opened for a, the 200 on another opened for b.
    lines = envoy_with_filter.wait_for_access_log(lambda line: f" {path} " in line and "authority=b." in line, count=2)
    seen = [re.search(r"conn=(\d+) sni=(\S+) .* (\d{3}) ", line).groups() for line in lines]
    assert [(sni, status) for _, sni, status in seen] == [(A, "421"), (B, "200")]
    assert seen[0][0] != seen[1][0]
