"""A real OCI registry on loopback for tests: Debian's `docker-registry` (the CNCF distribution
registry, /usr/bin/docker-registry from `make deps`) run directly with a generated configuration,
its storage in a temporary directory, listening on 127.0.0.1 at a port the kernel picks.

    with Registry(tmp_path) as registry:
        registry.address          # "127.0.0.1:PORT"
        registry.manifest("sni-guard", "0.1.0")   # (bytes, Docker-Content-Digest) as a client pulls them

Every wait is bounded; the process is stopped (SIGTERM, then SIGKILL) when the block ends. A
missing binary raises FileNotFoundError naming `make deps`: a test never skips for it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REGISTRY_BIN = "docker-registry"
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
# The registry logs the address it bound, port 0 resolved: `msg="listening on 127.0.0.1:41535"`.
_LISTENING = re.compile(r'listening on (127\.0\.0\.1:\d+)')


def registry_binary() -> str:
    found = shutil.which(REGISTRY_BIN)
    if found is None:
        raise FileNotFoundError(f"{REGISTRY_BIN} is missing: run `make deps` (Debian package docker-registry)")
    return found


class Registry:
    def __init__(self, workdir: Path, timeout: float = 20.0):
        self.workdir = workdir
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.address: str | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def config(self) -> dict:
        return {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "storage")},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            # Port 0: the kernel picks a free one, and the registry logs it.
            "http": {"addr": "127.0.0.1:0", "secret": "sni-guard-tests"},
        }

    def __enter__(self) -> "Registry":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        binary = registry_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(json.dumps(self.config(), indent=2))  # JSON is YAML
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        try:
            self._wait_ready(time.monotonic() + self.timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, deadline: float) -> None:
        while self.address is None:
            self._check_alive()
            found = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if found:
                self.address = found.group(1)
            elif time.monotonic() > deadline:
                raise TimeoutError(f"registry did not say where it listens in {self.timeout}s:\n{self.log_tail()}")
            else:
                time.sleep(0.05)
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"registry at {self.address} not answering /v2/ in {self.timeout}s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"registry exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        """The manifest as the registry serves it to a client (Istio's agent, say): its bytes and
        the Docker-Content-Digest header."""
        request = urllib.request.Request(f"http://{self.address}/v2/{repository}/manifests/{reference}",
                                         headers={"Accept": MANIFEST_TYPES})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read(), response.headers["Docker-Content-Digest"]

    def blob(self, repository: str, digest: str) -> bytes:
        with urllib.request.urlopen(f"http://{self.address}/v2/{repository}/blobs/{digest}", timeout=10) as response:
            return response.read()
