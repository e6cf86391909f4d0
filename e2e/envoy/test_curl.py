"""curl against the example gateway: the connection is opened for SNI a.example.com, the
Host header names another host, as on a coalesced connection."""

import pytest

from e2e.support import curl as curl_support


def request(curl, certs, envoy, sni, host, http="--http2"):
    """Status of one request on a connection opened with `sni`, carrying Host/`:authority`
    `host`. (`curl`: the fixture that checks curl is installed.)"""
    return curl_support.status(certs, envoy.port, sni, host, http)


@pytest.mark.parametrize("http", ["--http1.1", "--http2"])
def test_other_server_is_421_with_filter_and_404_without(curl, certs, envoy_with_filter, envoy_without_filter, http):
    assert request(curl, certs, envoy_without_filter, "a.example.com", "b.example.com", http) == 404
    assert request(curl, certs, envoy_with_filter, "a.example.com", "b.example.com", http) == 421


@pytest.mark.parametrize("http", ["--http1.1", "--http2"])
@pytest.mark.parametrize("host", ["a.example.com", "A.EXAMPLE.COM", "a.example.com:{port}"])
def test_same_host_passes(curl, certs, envoy_with_filter, http, host):
    host = host.format(port=envoy_with_filter.port)
    assert request(curl, certs, envoy_with_filter, "a.example.com", host, http) == 200


@pytest.mark.parametrize("http", ["--http1.1", "--http2"])
def test_hosts_of_one_server_share_a_connection(curl, certs, envoy_with_filter, http):
    assert request(curl, certs, envoy_with_filter, "c.example.com", "d.example.com", http) == 200
