"""`make demo`: the 404 a coalesced request gets, and the 421 sni-guard answers instead.

Starts the shipped example Envoy (envoyfilter/envoy.yaml) twice on loopback, without and with
sni-guard, sends the same requests to both from curl, an HTTP/2 client that coalesces, and
headless Chromium, prints one table, and stops everything (also on Ctrl-C or a failure).
"""

from __future__ import annotations

import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from e2e.support import chromium, curl
from e2e.support import envoy as envoy_support
from e2e.support.h2client import CoalescingClient

A, B = "a.example.com", "b.example.com"


def curl_row(certs, envoy, http, sni, host):
    return str(curl.status(certs, envoy.port, sni, host, http))


def h2_row(certs, envoy):
    """a, then b on a's connection; a 421 is retried on a new connection with SNI b."""
    with CoalescingClient(envoy.port, str(certs.ca)) as client:
        responses = client.get(A) + client.get(B)
    shown = []
    for r in responses:
        shown.append(f"{r.host[0]} {r.status}" + (" (new conn)" if r.connection else ""))
    return ", ".join(shown)


def browser_row(certs, envoy):
    dom = chromium.dump_dom(f"https://{A}:{envoy.port}/", certs, envoy_support.HOSTS)
    ran = envoy_support.BROWSER_SCRIPT_RAN in dom
    lines = envoy.wait_for_access_log(lambda line: " /app.js " in line, count=2 if ran else 1, timeout=2)
    statuses = " then ".join(re.search(r" (\d{3}) ", line).group(1) for line in lines)
    return f"{'yes' if ran else 'no'} (app.js: {statuses})"


ROWS = [
    ("curl HTTP/1.1", "SNI a, Host b", lambda c, e: curl_row(c, e, "--http1.1", A, B)),
    ("curl HTTP/2", "SNI a, Host b", lambda c, e: curl_row(c, e, "--http2", A, B)),
    ("curl HTTP/2", "SNI a, Host A.EXAMPLE.COM", lambda c, e: curl_row(c, e, "--http2", A, "A.EXAMPLE.COM")),
    ("curl HTTP/2", "SNI c, Host d (one server)",
     lambda c, e: curl_row(c, e, "--http2", "c.example.com", "d.example.com")),
    ("h2 client", "a, then b on a's connection", h2_row),
    ("Chromium", "page on a, script from b: ran?", browser_row),
]


def table(rows):
    header = ("client", "request", "without sni-guard", "with sni-guard")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]

    def line(r):
        return " | ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()

    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *map(line, rows)])


def main() -> int:
    # Ctrl-C and SIGTERM unwind through the `with` blocks that stop Envoy (Envoy and Chromium
    # run in sessions of their own, so the terminal's Ctrl-C does not reach them directly).
    # SIGINT is set explicitly because a shell starting us in the background ignores it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="sni-guard-demo-"))
    try:
        certs = envoy_support.make_certs(workdir / "certs")
        without = envoy_support.add_browser_routes(envoy_support.prepare(certs, with_filter=False))
        with_filter = envoy_support.add_browser_routes(envoy_support.prepare(certs))
        with envoy_support.Envoy(without, workdir, name="without") as plain, \
                envoy_support.Envoy(with_filter, workdir, name="with") as guarded:
            print(f"Envoy without sni-guard on 127.0.0.1:{plain.port}, with it on 127.0.0.1:{guarded.port}; "
                  "a, b, c+d: three gateway servers sharing one certificate\n")
            rows = [(client, request, run(certs, plain), run(certs, guarded)) for client, request, run in ROWS]
        print(table(rows))
        print(f"\n421 makes the client retry on a new connection with the right SNI. "
              f"All stopped ({time.monotonic() - started:.1f} s).")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: Envoy and Chromium stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
