"""The Kubernetes manifests under envoyfilter/: loading them and reading the sni-guard plugin
configuration each one carries."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.support import envoy as envoy_support

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIR = ROOT / "envoyfilter"
# The plain Envoy bootstrap lives there too, but it is not a Kubernetes object.
ENVOY_BOOTSTRAP = "envoy.yaml"
# What the checked-in manifests carry where a module digest goes; `make manifests` fills it in.
PLACEHOLDER_SHA256 = "0" * 64


def manifest_files(directory: Path = MANIFEST_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.name != ENVOY_BOOTSTRAP)


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
    behind Envoy's same-name matcher."""
    (patch,) = [p for p in document["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER"]
    return patch["patch"]["value"]


def plugin_config_json(document: dict) -> str:
    """The configuration string Envoy will hand sni-guard for this manifest: Istio serialises
    a WasmPlugin's pluginConfig to JSON; an EnvoyFilter carries the string itself."""
    if document["kind"] == "EnvoyFilter":
        return envoy_support.wasm_filter(envoy_filter_wasm(document))["config"]["configuration"]["value"]
    return json.dumps(wasm_spec(document)["pluginConfig"])
