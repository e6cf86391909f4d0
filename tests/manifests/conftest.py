"""Shared fixtures for the manifest tests: the Istio CRD schemas (a missing bundle fails the
session, it is never skipped), the module, Envoy."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support import crd_schema  # noqa: E402
from tests.support import envoy as envoy_support  # noqa: E402


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
