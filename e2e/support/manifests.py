"""The Kubernetes manifests under envoyfilter/ (`sni-guard config`'s output for
envoyfilter/example-gateways.yaml, `make examples`), or those `make manifests` writes: loading
them and reading the sni-guard plugin configuration each one carries."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from e2e.support import envoy as envoy_support

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIR = ROOT / "envoyfilter"
# The manifests `sni-guard config` writes (envoyfilter/ also holds the plain Envoy bootstrap, the
# example Gateways and the Kustomize base, which are not such manifests).
MANIFESTS = ("envoyfilter.yaml", "trafficextension.yaml", "wasmplugin-http.yaml", "wasmplugin.yaml")
EXAMPLE_GATEWAYS = MANIFEST_DIR / "example-gateways.yaml"
# What the checked-in manifests carry where a module digest goes (`sni-guard config --example`);
# `make manifests` writes real ones.
PLACEHOLDER_SHA256 = "0" * 64


def manifest_files(directory: Path = MANIFEST_DIR) -> list[Path]:
    """The manifests in `directory`: all four in envoyfilter/, those `make manifests` was asked
    for elsewhere."""
    return [directory / name for name in MANIFESTS if (directory / name).exists()]


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_documents(directory: Path = MANIFEST_DIR) -> list[tuple[str, dict]]:
    """(`file#index`, document) for every document of every manifest."""
    return [(f"{p.name}#{i}", d) for p in manifest_files(directory) for i, d in enumerate(documents(p))]


def wasm_spec(document: dict) -> dict:
    """The part of a WasmPlugin or TrafficExtension that describes the module: url, sha256,
    pluginConfig."""
    if document["kind"] == "TrafficExtension":
        return document["spec"]["wasm"]
    if document["kind"] == "WasmPlugin":
        return document["spec"]
    raise ValueError(f"{document['kind']} has no wasm spec")


def envoy_filter_wasm(document: dict) -> dict:
    """The HTTP filter (name and typed_config) an EnvoyFilter inserts: sni-guard's Wasm filter,
    behind Envoy's same-name matcher; the same in each port's patch."""
    patches = [p for p in document["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER"]
    values = [p["patch"]["value"] for p in patches]
    if not values or any(v != values[0] for v in values):
        raise ValueError("expected one sni-guard filter, the same in every patch")
    return values[0]


def envoy_filter_ports(document: dict) -> list[int]:
    """The listener ports an EnvoyFilter's patches are for."""
    return [p["match"]["listener"]["portNumber"] for p in document["spec"]["configPatches"]]


def plugin_config_json(document: dict) -> str:
    """The configuration string Envoy will hand sni-guard for this manifest: Istio serialises
    a WasmPlugin's pluginConfig to JSON; an EnvoyFilter carries the string itself."""
    if document["kind"] == "EnvoyFilter":
        return envoy_support.wasm_filter(envoy_filter_wasm(document))["config"]["configuration"]["value"]
    return json.dumps(wasm_spec(document)["pluginConfig"])
