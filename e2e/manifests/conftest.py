"""Shared fixtures for the manifest tests: the Istio CRD schemas (a missing bundle fails the
session, it is never skipped), the module, Envoy."""

from pathlib import Path

import pytest

from e2e.support import crd_schema
from e2e.support import envoy as envoy_support


@pytest.fixture(scope="session")
def schemas():
    try:
        return crd_schema.bundle()
    except crd_schema.MissingCrds as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def wasm():
    if not envoy_support.WASM.exists():
        pytest.fail(f"{envoy_support.WASM} is missing: run `make build`", pytrace=False)
    return envoy_support.WASM


@pytest.fixture(scope="session")
def envoy_bin():
    if not Path(envoy_support.ENVOY_BIN).exists():
        pytest.fail(f"{envoy_support.ENVOY_BIN} is missing: run `make deps`", pytrace=False)
    return envoy_support.ENVOY_BIN
