"""Validate Kubernetes custom resources against their CRD's OpenAPI v3 schema, the way the API
server's schema check treats them, with the `jsonschema` package.

Use, from any test (the repository root on `sys.path`, as the test suites' conftest.py put it):

    from e2e.support import crd_schema

    errors = crd_schema.validate(document)   # a dict, e.g. one of yaml.safe_load_all(...)
    assert errors == [], errors              # each error is "path: message", sorted

`validate` uses Istio's CRD bundle kept in the repository (`e2e/manifests/istio/`, its source,
version and licence in the README there), or the file named by the environment variable
`ISTIO_CRDS`; the bundle is read once per process. A missing bundle raises `MissingCrds`, and a
document whose apiVersion and kind no CRD in the bundle defines raises `KeyError`: neither is
ever an empty error list. `load_crds(path)` gives the `Schemas` of another bundle, with the same
`errors(document)` (`bundle(path)` reads each bundle once); `cel_rules(openapi)` lists the CEL
rules a schema holds.

The CRD's `openAPIV3Schema` is turned into JSON Schema (2020-12):

- unknown fields are rejected, as `kubectl apply` (strict field validation, the default since
  Kubernetes 1.27) does: an object that declares `properties` gets `additionalProperties: false`,
  unless it says `x-kubernetes-preserve-unknown-fields: true` or has its own
  `additionalProperties` (a map);
- `nullable: true` admits null; `x-kubernetes-int-or-string` admits an integer or a string;
  `format: int32`/`int64` become range checks;
- `required`, `enum`, `pattern`, lengths, bounds, `oneOf`/`anyOf`/`not` are JSON Schema already;
- the top level: `apiVersion` and `kind` as the CRD names them, `metadata.name` present and a
  DNS subdomain, and nothing but apiVersion/kind/metadata/spec/status.

Not covered (the API server checks these, this does not):
- CEL rules (`x-kubernetes-validations`): they are collected by `cel_rules` so a test can list
  them, not evaluated;
- `x-kubernetes-list-type: map`/`set` uniqueness of list keys;
- defaulting and pruning, admission webhooks (istiod's validating webhook adds its own checks),
  and `format` checks other than int32/int64.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS_ENV = "ISTIO_CRDS"
# The bundle kept in the repository (e2e/manifests/istio/README.md says where it comes from).
DEFAULT_CRDS = ROOT / "e2e" / "manifests" / "istio" / "crd-all.gen.yaml"

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# RFC 1123 subdomain, as Kubernetes requires of most object names.
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# libyaml's safe loader when PyYAML has it: the 1 MB bundle loads in 0.16 s instead of 1.5 s here.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class MissingCrds(RuntimeError):
    pass


def crds_path() -> Path:
    """The bundle `validate` and `load_crds()` read: $ISTIO_CRDS, else the one in the repository."""
    return Path(os.environ.get(CRDS_ENV) or DEFAULT_CRDS)


def validate(document: dict) -> list[str]:
    """Every way `document` breaks the schema of its apiVersion and kind, as sorted
    `path: message` strings; empty when it is valid. Raises MissingCrds without a bundle and
    KeyError for a kind the bundle does not define."""
    return bundle().errors(document)


def bundle(path: Path | None = None) -> "Schemas":
    """`load_crds(path)`, read once per path and process."""
    return _load_once(Path(path or crds_path()).resolve())


@functools.lru_cache(maxsize=None)
def _load_once(path: Path) -> "Schemas":
    return load_crds(path)


def load_crds(path: Path | None = None) -> "Schemas":
    """The schemas of every CRD version in a bundle (default: `crds_path()`)."""
    path = path or crds_path()
    if not path.is_file():
        where = f"${CRDS_ENV}" if os.environ.get(CRDS_ENV) else "the repository's copy"
        raise MissingCrds(
            f"Istio CRD bundle not found at {path} ({where}): the manifest tests need it. "
            f"The repository keeps it as {DEFAULT_CRDS.relative_to(ROOT)}; set {CRDS_ENV} "
            f"to the path of another crd-all.gen.yaml to use that one.")
    schemas = {}
    for crd in yaml.load_all(path.read_text(), Loader=_YAML_LOADER):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            api_version = f"{group}/{version['name']}"
            openapi = version["schema"]["openAPIV3Schema"]
            schemas[(api_version, kind)] = CrdSchema(api_version, kind, openapi)
    return Schemas(path, schemas)


@dataclass
class CrdSchema:
    api_version: str
    kind: str
    openapi: dict

    def json_schema(self) -> dict:
        schema = to_json_schema(self.openapi)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"const": self.api_version}
        props["kind"] = {"const": self.kind}
        props["metadata"] = {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
                "namespace": {"type": "string", "maxLength": 63, "pattern": _DNS_SUBDOMAIN},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
        schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
        schema["additionalProperties"] = False
        return schema

    @functools.cached_property
    def validator(self) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator(self.json_schema())

    def errors(self, document: dict) -> list[str]:
        """Every violation as `path: message`, sorted; empty when the document is valid."""
        return sorted(_describe(e) for e in self.validator.iter_errors(document))


@dataclass
class Schemas:
    path: Path
    by_kind: dict[tuple[str, str], CrdSchema]

    def for_document(self, document: dict) -> CrdSchema:
        key = (document.get("apiVersion"), document.get("kind"))
        if key not in self.by_kind:
            raise KeyError(f"no CRD in {self.path} for apiVersion {key[0]!r} kind {key[1]!r}")
        return self.by_kind[key]

    def errors(self, document: dict) -> list[str]:
        """The errors of `document` against the schema of its apiVersion and kind."""
        return self.for_document(document).errors(document)


def to_json_schema(node: dict) -> dict:
    """One OpenAPI v3 (structural) schema node as JSON Schema, recursively."""
    node = copy.copy(node)
    for key in ("properties", "patternProperties"):
        if key in node:
            node[key] = {name: to_json_schema(sub) for name, sub in node[key].items()}
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = to_json_schema(node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        node["items"] = to_json_schema(node["items"])
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            node[key] = [to_json_schema(sub) for sub in node[key]]
    if "not" in node:
        node["not"] = to_json_schema(node["not"])

    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("format") in _INT_RANGES and node.get("type") == "integer":
        low, high = _INT_RANGES[node["format"]]
        node.setdefault("minimum", low)
        node.setdefault("maximum", high)
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        node["additionalProperties"] = False
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    return node


def cel_rules(node: dict, path: str = "") -> list[tuple[str, str]]:
    """The CEL rules (`x-kubernetes-validations`) in a schema, as (path, message): what this
    validator does not evaluate."""
    rules = node.get("x-kubernetes-validations", [])
    found = [(path or ".", rule.get("message", rule["rule"])) for rule in rules]
    for name, sub in node.get("properties", {}).items():
        found += cel_rules(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += cel_rules(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += cel_rules(node["additionalProperties"], f"{path}.*")
    return found


def _path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "."


def _describe(error: jsonschema.ValidationError) -> str:
    where = _path(error.absolute_path)
    unknown_fields = error.validator == "additionalProperties" and error.validator_value is False
    if unknown_fields and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in known)
        return "; ".join(f"{_path([*error.absolute_path, k])}: unknown field" for k in unknown)
    return f"{where}: {error.message}"
