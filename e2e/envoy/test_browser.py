"""The user's real symptom, in a real browser: headless Chromium loads a page from a.example.com
whose script comes from b.example.com. Chromium sends the script request on a's HTTP/2
connection (same address, a certificate valid for both)."""

import re

from e2e.support import chromium
from e2e.support.envoy import BROWSER_SCRIPT_RAN, HOSTS


def load_page(envoy, certs):
    return chromium.dump_dom(f"https://a.example.com:{envoy.port}/", certs, HOSTS)


def script_requests(envoy, count):
    lines = envoy.wait_for_access_log(lambda line: " /app.js " in line, count=count)
    return [re.search(r"conn=(\d+) sni=(\S+) .* (\d{3}) ", line).groups() for line in lines]


def test_without_filter_the_script_is_404_and_does_not_run(certs, envoy_without_filter):
    dom = load_page(envoy_without_filter, certs)
    assert 'id="result"' in dom, dom
    assert BROWSER_SCRIPT_RAN not in dom
    # The request for b's script arrived on the connection Chromium opened for a.
    requests = script_requests(envoy_without_filter, 1)
    assert [(sni, status) for _, sni, status in requests] == [("a.example.com", "404")]


def test_with_filter_chromium_retries_after_421_and_the_script_runs(certs, envoy_with_filter):
    dom = load_page(envoy_with_filter, certs)
    assert BROWSER_SCRIPT_RAN in dom, dom
    requests = script_requests(envoy_with_filter, 2)
    assert [(sni, status) for _, sni, status in requests] == [("a.example.com", "421"), ("b.example.com", "200")]
    assert requests[0][0] != requests[1][0], "the retry went out on a new connection"
