"""Shared fixtures: test certificates, and the example Envoy with and without sni-guard."""

import shutil
from pathlib import Path

import pytest

from e2e.support import chromium as chromium_support
from e2e.support import envoy as envoy_support


def pytest_sessionstart(session):
    # A missing module or Envoy is a failure, never a skip: the suite must mean something.
    if not envoy_support.WASM.exists():
        raise pytest.UsageError(f"{envoy_support.WASM} is missing: run `make build`")
    if not Path(envoy_support.ENVOY_BIN).exists():
        raise pytest.UsageError(f"{envoy_support.ENVOY_BIN} is missing: run `make deps`")
    for tool in ("curl", "openssl"):
        if shutil.which(tool) is None:
            raise pytest.UsageError(f"{tool} is missing: run `make deps`")
    if chromium_support.CHROMIUM is None:
        raise pytest.UsageError("chromium is missing: run `make deps`")


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def certs(workdir):
    return envoy_support.make_certs(workdir / "certs")


# The session's two gateways also carry the browser test's page and script (on their own paths,
# in front of the example's catch-all routes), so one pair of Envoys serves every test that
# needs no exact counts.
@pytest.fixture(scope="session")
def envoy_with_filter(certs, workdir):
    config = envoy_support.add_browser_routes(envoy_support.prepare(certs))
    with envoy_support.Envoy(config, workdir, name="with-filter") as envoy:
        yield envoy


@pytest.fixture(scope="session")
def envoy_without_filter(certs, workdir):
    config = envoy_support.add_browser_routes(envoy_support.prepare(certs, with_filter=False))
    with envoy_support.Envoy(config, workdir, name="without-filter") as envoy:
        yield envoy


@pytest.fixture(scope="session")
def curl():
    path = shutil.which("curl")
    if path is None:
        raise pytest.UsageError("curl is missing: run `make deps`")
    return path
