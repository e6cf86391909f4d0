"""Headless Chromium (Debian's package) loading a page from the example gateway and dumping the
DOM it ended with: the browser's own connection coalescing, observed from the outside."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile

from e2e.support.envoy import Certs

CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str, certs: Certs, hosts: list[str], timeout: float = 30.0, quic_port: int | None = None) -> str:
    """The DOM of `url` once its scripts ran (or failed to load). `hosts` resolve to loopback;
    the test certificate is trusted by its key, so no CA is installed anywhere. Chromium runs in
    its own process group with a fresh profile, and the group is killed if it outlives
    `timeout`. Without `quic_port` Chromium does not speak QUIC; with it, every host on that port
    is an origin it must reach over QUIC (`--origin-to-force-quic-on`: no TCP first, no alt-svc
    needed), so `url` names that port."""
    if CHROMIUM is None:
        raise RuntimeError("chromium is missing: run `make deps`")
    profile = tempfile.mkdtemp(prefix="sni-guard-chromium-")
    if quic_port is None:
        quic = ["--disable-quic"]
    else:
        quic = ["--enable-quic", "--origin-to-force-quic-on=" + ",".join(f"{h}:{quic_port}" for h in hosts)]
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", *quic,
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=" + ", ".join(f"MAP {h} 127.0.0.1" for h in hosts),
        f"--ignore-certificate-errors-spki-list={certs.spki_sha256_b64}",
        # Virtual time runs ahead only while nothing is loading, so this waits for the script
        # fetch (and a retry after 421) however slow the machine, then stops.
        "--virtual-time-budget=5000",
        "--dump-dom", url,
    ]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise TimeoutError(f"chromium did not finish loading {url} in {timeout}s")
    finally:
        # Chromium leaves helper processes (zygote, utility) in its group: end them all.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(profile, ignore_errors=True)
    if process.returncode != 0:
        raise RuntimeError(f"chromium exited with {process.returncode}:\n{err.decode(errors='replace')[-2000:]}")
    return out.decode(errors="replace")
