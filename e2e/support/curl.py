"""curl against the example gateway, opening the connection with one SNI and sending another
Host/`:authority`: a coalesced request made by hand."""

from __future__ import annotations

import shutil
import subprocess

from e2e.support.envoy import Certs

CURL = shutil.which("curl")


def status(certs: Certs, port: int, sni: str, host: str, http: str = "--http2") -> int:
    """Status of one request on a connection opened with `sni`, carrying Host/`:authority`
    `host`; `http` is curl's `--http1.1` or `--http2`."""
    if CURL is None:
        raise RuntimeError("curl is missing: run `make deps`")
    out = subprocess.run(
        [CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", http, "--cacert", str(certs.ca),
         "--resolve", f"{sni}:{port}:127.0.0.1", "-H", f"Host: {host}",
         "--max-time", "10", f"https://{sni}:{port}/"],
        capture_output=True, text=True, check=True)
    return int(out.stdout)
