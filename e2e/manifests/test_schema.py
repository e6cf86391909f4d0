"""Every manifest under envoyfilter/ against the OpenAPI v3 schema of its kind and version in
Istio's CRD bundle, and proof that the check rejects what the API server rejects."""

import hashlib
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from e2e.support import crd_schema
from e2e.support import manifests as m

BROKEN = sorted((Path(__file__).parent / "broken").glob("*.yaml"))
DOCUMENTS = m.all_documents()


def test_every_kind_the_issue_asks_for_is_shipped():
    kinds = sorted({(d["apiVersion"], d["kind"]) for _, d in DOCUMENTS})
    assert kinds == [
        ("extensions.istio.io/v1alpha1", "TrafficExtension"),
        ("extensions.istio.io/v1alpha1", "WasmPlugin"),
        ("networking.istio.io/v1alpha3", "EnvoyFilter"),
    ]


@pytest.mark.parametrize("name,document", DOCUMENTS, ids=[n for n, _ in DOCUMENTS])
def test_manifest_matches_its_crd_schema(schemas, name, document):
    assert schemas.errors(document) == [], name


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_manifest_is_rejected_at_the_right_path(schemas, path):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    (document,) = m.documents(path)
    errors = schemas.errors(document)
    assert expected in errors, errors


def test_missing_crd_bundle_is_a_clear_failure(tmp_path, monkeypatch):
    monkeypatch.setenv(crd_schema.CRDS_ENV, str(tmp_path / "nowhere.yaml"))
    with pytest.raises(crd_schema.MissingCrds, match="ISTIO_CRDS"):
        crd_schema.load_crds()
    with pytest.raises(crd_schema.MissingCrds, match="nowhere.yaml"):
        crd_schema.validate(DOCUMENTS[0][1])


def test_the_bundle_is_in_the_repository(monkeypatch):
    monkeypatch.delenv(crd_schema.CRDS_ENV, raising=False)
    assert crd_schema.crds_path() == crd_schema.DEFAULT_CRDS
    assert crd_schema.DEFAULT_CRDS.is_relative_to(m.ROOT) and crd_schema.DEFAULT_CRDS.is_file()


def test_the_bundle_is_istios_unchanged():
    """The README beside the bundle names its source and sha256: an edited file is not Istio's."""
    readme = (crd_schema.DEFAULT_CRDS.parent / "README.md").read_text()
    (recorded,) = re.findall(r"\| sha256 \| `([0-9a-f]{64})` \|", readme)
    assert hashlib.sha256(crd_schema.DEFAULT_CRDS.read_bytes()).hexdigest() == recorded
    assert "Apache" in (crd_schema.DEFAULT_CRDS.parent / "LICENSE").read_text()


def test_validate_is_the_schemas_check(schemas):
    """crd_schema.validate, the helper other tests import, gives what the fixture's schemas give."""
    for _, document in DOCUMENTS:
        assert crd_schema.validate(document) == []
    for path in BROKEN:
        (document,) = m.documents(path)
        assert crd_schema.validate(document) == schemas.errors(document) != []


def test_unknown_kind_is_not_silently_accepted(schemas):
    with pytest.raises(KeyError, match="no CRD"):
        schemas.errors({"apiVersion": "extensions.istio.io/v1", "kind": "WasmPlugin", "metadata": {"name": "x"}})


# The CEL rules (x-kubernetes-validations) the schema check does not evaluate, checked by hand
# for the fields these manifests use. test_cel_rules_are_the_reviewed_ones notices a new rule.
REVIEWED_CEL = {
    "WasmPlugin": {"url must have schema one of [http, https, file, oci]",
                   "only one of targetRefs or selector can be set"},
    "TrafficExtension": {"url must have schema one of [http, https, file, oci]",
                         "only one of targetRefs or selector can be set",
                         "exactly one of wasm or lua must be set"},
    "EnvoyFilter": {"only one of targetRefs or workloadSelector can be set",
                    "only support waypointMatch when context is WAYPOINT"},
}
# Rules on fields none of the manifests set (or that they satisfy trivially: no '*' in labels).
UNUSED_CEL = {"wildcard not allowed in label value match", "wildcard not allowed in label key match",
              "key must not be empty", "cross namespace referencing is not currently supported",
              "value may only be set when valueFrom is INLINE", "wildcard is not supported in selector",
              "port must be between 1-65535"}


@pytest.mark.parametrize("kind", sorted(REVIEWED_CEL))
def test_cel_rules_are_the_reviewed_ones(schemas, kind):
    (schema,) = [s for (_, k), s in schemas.by_kind.items() if k == kind]
    messages = {message for _, message in crd_schema.cel_rules(schema.openapi)}
    assert messages - UNUSED_CEL == REVIEWED_CEL[kind], "a CEL rule changed: review it and check it here"


@pytest.mark.parametrize("name,document", DOCUMENTS, ids=[n for n, _ in DOCUMENTS])
def test_cel_rules_hold_by_hand(name, document):
    spec = document["spec"]
    selectors = [k for k in ("selector", "workloadSelector", "targetRef", "targetRefs") if k in spec]
    assert len(selectors) <= 1, selectors
    for labels in (spec.get("selector", {}).get("matchLabels", {}), spec.get("workloadSelector", {}).get("labels", {})):
        assert all("*" not in k and k and "*" not in v for k, v in labels.items())
    if document["kind"] == "TrafficExtension":
        assert ("wasm" in spec) != ("lua" in spec)
    if document["kind"] in ("WasmPlugin", "TrafficExtension"):
        assert urlparse(m.wasm_spec(document)["url"]).scheme in ("http", "https", "file", "oci")
    if document["kind"] == "EnvoyFilter":
        for patch in spec["configPatches"]:
            assert "waypoint" not in patch["match"] or patch["match"].get("context") == "WAYPOINT"
