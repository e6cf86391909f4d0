"""The settings the README's Adopt section applies before sni-guard (monitoring/),
checked against what Istio checks them with: the Telemetry against its CRD schema (Istio's bundle,
e2e/manifests/istio/), the gateway chart's values against the chart's values.schema.json (as
`helm upgrade` does), and istiod's access-log provider against the fields Istio's API defines
(e2e/support/istio_telemetry.py reads it strictly; the e2e tests run all three in Envoy)."""

import copy
import hashlib
import json
import re

import jsonschema
import pytest
import yaml

from e2e.support import crd_schema, istio_telemetry

CHART_SCHEMA = crd_schema.DEFAULT_CRDS.parent / "gateway-values.schema.json"


def telemetry() -> dict:
    (document,) = [d for d in yaml.safe_load_all(istio_telemetry.TELEMETRY.read_text()) if d]
    return document


def chart_errors(values: dict) -> list[str]:
    schema = json.loads(CHART_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                  for e in validator.iter_errors(values))


def test_the_telemetry_matches_its_crd_schema(schemas):
    document = telemetry()
    assert schemas.errors(document) == []
    # The CEL rules the schema check does not evaluate, by hand: a selector and no targetRefs,
    # its labels without wildcards or empty keys.
    spec = document["spec"]
    assert "targetRefs" not in spec and "targetRef" not in spec
    assert all(k and "*" not in k and "*" not in v for k, v in spec["selector"]["matchLabels"].items())


def test_a_broken_telemetry_is_rejected(schemas):
    document = telemetry()
    document["spec"]["accessLogging"][0]["provider"] = document["spec"]["accessLogging"][0].pop("providers")
    assert "spec.accessLogging[0].provider: unknown field" in schemas.errors(document)


def test_the_telemetry_selects_the_gateway_pods_only():
    pods = istio_telemetry.gateway_pods()
    assert istio_telemetry.applicable_providers([telemetry()], pods) == ["sni-guard-access-log"]
    sidecar = istio_telemetry.GatewayPods(namespace="shop", labels={"app": "shop"})
    assert istio_telemetry.applicable_providers([telemetry()], sidecar) == []
    same_namespace = istio_telemetry.GatewayPods(labels={"app": "istiod", "istio": "pilot"})
    assert istio_telemetry.applicable_providers([telemetry()], same_namespace) == []


def test_the_gateway_values_match_the_charts_schema():
    assert chart_errors(yaml.safe_load(istio_telemetry.GATEWAY_VALUES.read_text())) == []
    assert chart_errors({"podAnnotation": {"sidecar.istio.io/extraStatTags": "x"}}) == [
        "(top): Additional properties are not allowed ('podAnnotation' was unexpected)"]


def test_the_charts_schema_is_istios_unchanged():
    readme = (CHART_SCHEMA.parent / "README.md").read_text()
    (recorded,) = re.findall(r"\| schema sha256 \| `([0-9a-f]{64})` \|", readme)
    assert hashlib.sha256(CHART_SCHEMA.read_bytes()).hexdigest() == recorded


def test_the_access_log_provider_is_read_as_istio_reads_it():
    mesh = yaml.safe_load(istio_telemetry.ISTIOD_VALUES.read_text())["meshConfig"]
    log = istio_telemetry.file_access_log(istio_telemetry.extension_provider(mesh, "sni-guard-access-log"))
    text = log["typed_config"]["log_format"]["text_format_source"]["inline_string"]
    assert log["typed_config"]["path"] == "/dev/stdout" and text.endswith('ua="%REQ(USER-AGENT)%"\n')
    for operator in ("%REQUESTED_SERVER_NAME%", "%REQ(:AUTHORITY)%", "%FILTER_STATE(wasm.sni_guard:PLAIN)%",
                     "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "%START_TIME%"):
        assert operator in text


@pytest.mark.parametrize("where,edit", [
    ("provider", lambda p: p.update(envoyFileAcessLog=p.pop("envoyFileAccessLog"))),
    ("envoyFileAccessLog",
     lambda p: p["envoyFileAccessLog"].update(logformat=p["envoyFileAccessLog"].pop("logFormat"))),
    ("logFormat", lambda p: p["envoyFileAccessLog"]["logFormat"].update(txt="x")),
])
def test_a_misspelt_provider_field_is_refused(where, edit):
    mesh = copy.deepcopy(yaml.safe_load(istio_telemetry.ISTIOD_VALUES.read_text())["meshConfig"])
    edit(mesh["extensionProviders"][0])
    with pytest.raises(istio_telemetry.UnknownField):
        istio_telemetry.file_access_log(istio_telemetry.extension_provider(mesh, "sni-guard-access-log"))


def test_the_stats_settings_become_istios_bootstrap():
    config = istio_telemetry.stats_config(istio_telemetry.gateway_pods())
    tags = [t["tag_name"] for t in config["stats_tags"]]
    assert tags[tags.index("mongo_prefix") + 1:][:2] == ["connection_server", "host_server"]
    assert {"tag_name": "host_server", "regex": r"(host_server=\.=(.*?);\.;)"} in config["stats_tags"]
    prefixes = [p["prefix"] for p in config["stats_matcher"]["inclusion_list"]["patterns"] if "prefix" in p]
    assert prefixes == ["reporter=", "extension_config_discovery", *istio_telemetry.REQUIRED_PREFIXES,
                        "component", "istio"]
