"""`make demo`: the 404 a coalesced request gets, and the 421 sni-guard answers instead.

Starts the shipped example Envoy (envoyfilter/envoy.yaml) twice on loopback, without and with
sni-guard, sends the same requests to both from curl, an HTTP/2 and an HTTP/3 client that
coalesce, and headless Chromium (over HTTP/2, and over HTTP/3 with QUIC forced), prints one
table, and stops everything (also on Ctrl-C or a failure).
"""

from __future__ import annotations

import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from e2e.support import chromium, curl, h3client
from e2e.support import envoy as envoy_support
from e2e.support.h2client import CoalescingClient

A, B = "a.example.com", "b.example.com"


def curl_row(certs, envoy, http, sni, host):
    return str(curl.status(certs, envoy.port, sni, host, http))


def h2_row(certs, envoy, client_type=CoalescingClient, port_of=lambda envoy: envoy.port):
    """a, then b on a's connection; a 421 is retried on a new connection with SNI b."""
    with client_type(port_of(envoy), str(certs.ca)) as client:
        responses = client.get(A) + client.get(B)
    shown = []
    for r in responses:
        shown.append(f"{r.host[0]} {r.status}" + (" (new conn)" if r.connection else ""))
    return ", ".join(shown)


def h3_row(certs, envoy):
    """The same over HTTP/3: one QUIC connection for a carries b."""
    return h2_row(certs, envoy, h3client.CoalescingClient, lambda envoy: envoy.quic_port)


def browser_row(certs, envoy, quic=False):
    """Did b's script run, and what its requests got (over HTTP/3 with QUIC forced)."""
    port = envoy.quic_port if quic else envoy.port
    dom = chromium.dump_dom(f"https://{A}:{port}/", certs, envoy_support.HOSTS, quic_port=port if quic else None)
    ran = envoy_support.BROWSER_SCRIPT_RAN in dom
    # Up to two requests (a 421 and its retry); wait briefly for a second one.
    protocol = "HTTP/3" if quic else "HTTP/2"
    lines = envoy.wait_for_access_log(lambda line: f" /app.js {protocol} " in line, count=2, timeout=1)
    statuses = " then ".join(re.search(r" (\d{3}) ", line).group(1) for line in lines)
    return f"{'yes' if ran else 'no'} (app.js: {statuses})"


ROWS = [
    ("curl HTTP/1.1", "SNI a, Host b", lambda c, e: curl_row(c, e, "--http1.1", A, B)),
    ("curl HTTP/2", "SNI a, Host b", lambda c, e: curl_row(c, e, "--http2", A, B)),
    ("curl HTTP/2", "SNI a, Host A.EXAMPLE.COM", lambda c, e: curl_row(c, e, "--http2", A, "A.EXAMPLE.COM")),
    ("curl HTTP/2", "SNI c, Host d (one server)",
     lambda c, e: curl_row(c, e, "--http2", "c.example.com", "d.example.com")),
    ("h2 client", "a, then b on a's connection", h2_row),
    ("h3 client", "a, then b on a's QUIC connection", h3_row),
    ("Chromium", "page on a, script from b: ran?", browser_row),
    ("Chromium, QUIC", "page on a, script from b: ran?", lambda c, e: browser_row(c, e, quic=True)),
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
            print(f"Envoy without sni-guard on 127.0.0.1:{plain.port} (QUIC: UDP {plain.quic_port}), with it on "
                  f"127.0.0.1:{guarded.port} (QUIC: UDP {guarded.quic_port}); a, b, c+d: three gateway servers "
                  "sharing one certificate\n")
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
