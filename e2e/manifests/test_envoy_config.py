"""The Envoy configuration the manifests stand for, loaded by the real Envoy
(`envoy --mode validate`): the plain Envoy example, and the EnvoyFilter's wasm filter spliced
into it in place of the example's own sni-guard filter. Also: every manifest carries the servers
of the canonical scenario configuration, the one the e2e tests run, in dry_run mode (what
`sni-guard config` writes for a first rollout)."""

import copy
import json
import subprocess

import pytest
import yaml

from e2e.support import cli
from e2e.support import envoy as envoy_support
from e2e.support import manifests as m
from e2e.support import matcher as matcher_support

DOCUMENTS = m.all_documents()
CANONICAL = envoy_support.plugin_configuration(envoy_support.load_example())
ENVOY_FILTERS = [d for _, d in DOCUMENTS if d["kind"] == "EnvoyFilter"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return envoy_support.make_certs(tmp_path_factory.mktemp("certs"))


def envoy_validate(envoy_bin, config: dict, path) -> subprocess.CompletedProcess:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return subprocess.run([envoy_bin, "--mode", "validate", "-c", str(path), "-l", "warning"],
                          capture_output=True, text=True, timeout=120)


def with_filter(example: dict, http_filter: dict) -> dict:
    """The example with `http_filter` in place of its sni-guard filter, in every chain."""
    spliced = copy.deepcopy(example)
    for hcm in envoy_support.connection_managers(spliced):
        hcm["http_filters"] = [copy.deepcopy(http_filter) if f["name"] == envoy_support.SNI_GUARD_FILTER else f
                               for f in hcm["http_filters"]]
    return spliced


def test_plain_envoy_example_is_valid(envoy_bin, wasm, certs, tmp_path):
    result = envoy_validate(envoy_bin, envoy_support.prepare(certs, wasm=wasm), tmp_path / "envoy.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("document", ENVOY_FILTERS, ids=[d["metadata"]["name"] for d in ENVOY_FILTERS])
def test_envoyfilter_wasm_filter_is_valid_envoy_config(envoy_bin, wasm, certs, tmp_path, document):
    http_filter = m.envoy_filter_wasm(document)
    # The splice relies on the filter's name; prepare() then points vm_config at the test module.
    assert http_filter["name"] == envoy_support.SNI_GUARD_FILTER
    assert http_filter["typed_config"]["@type"] == envoy_support.EXTENSION_WITH_MATCHER
    # The same matcher as the plain Envoy example, which the e2e tests run.
    (example_filter,) = [f for f in envoy_support.connection_managers(envoy_support.load_example())[0]["http_filters"]
                         if f["name"] == envoy_support.SNI_GUARD_FILTER]
    assert http_filter["typed_config"]["xds_matcher"] == example_filter["typed_config"]["xds_matcher"]
    # One patch per port the example Gateways' pods listen on (443, and 8443 without a Service).
    assert m.envoy_filter_ports(document) == [443, 8443]
    wasm_typed_config = envoy_support.wasm_filter(http_filter)
    assert wasm_typed_config["@type"] == "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    assert wasm_typed_config["config"]["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"
    example = with_filter(envoy_support.load_example(), http_filter)
    result = envoy_validate(envoy_bin, envoy_support.prepare(certs, wasm=wasm, example=example), tmp_path / "ef.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    # A deprecated field works today and breaks on a later Envoy: ship none.
    assert "Deprecated field" not in result.stderr, result.stderr


def test_envoy_validate_rejects_a_broken_wasm_filter(envoy_bin, wasm, certs, tmp_path):
    """Shows the check above is real: a misspelt field in the same filter fails validation."""
    example = with_filter(envoy_support.load_example(), m.envoy_filter_wasm(ENVOY_FILTERS[0]))
    config = envoy_support.prepare(certs, wasm=wasm, example=example)
    for hcm in envoy_support.connection_managers(config):
        wasm_config = envoy_support.wasm_filter(hcm["http_filters"][0])["config"]
        wasm_config["vm_confg"] = wasm_config.pop("vm_config")
    result = envoy_validate(envoy_bin, config, tmp_path / "broken.yaml")
    assert result.returncode != 0
    assert "vm_confg" in result.stdout + result.stderr


def without_matcher_knob(plugin: dict) -> dict:
    return {k: v for k, v in plugin.items() if k != "same_name_matcher"}


@pytest.mark.parametrize("name,document", DOCUMENTS, ids=[n for n, _ in DOCUMENTS])
def test_manifest_runs_the_e2e_scenario_configuration(name, document):
    plugin = json.loads(m.plugin_config_json(document))
    # The example's configuration, every field written out, with the first rollout's mode.
    expected = {"on_missing_sni": "allow", **without_matcher_knob(CANONICAL), "mode": "dry_run"}
    assert without_matcher_knob(plugin) == expected, name
    # `same_name_matcher` is there exactly where Envoy's matcher is, and names its test.
    if document["kind"] == "EnvoyFilter":
        assert plugin["same_name_matcher"] == matcher_support.text_of(m.envoy_filter_wasm(document)["typed_config"])
    else:
        assert "same_name_matcher" not in plugin, name


def test_the_example_names_its_matcher():
    (example_filter,) = [f for f in envoy_support.connection_managers(envoy_support.load_example())[0]["http_filters"]
                         if f["name"] == envoy_support.SNI_GUARD_FILTER]
    assert CANONICAL["same_name_matcher"] == matcher_support.text_of(example_filter["typed_config"])
    assert CANONICAL["same_name_matcher"] == matcher_support.required(CANONICAL)


def test_config_writes_the_stronger_matcher_for_a_catch_all_server(envoy_bin, wasm, certs, tmp_path):
    """A Gateway with a catch-all listener (Gateway API's conformance Gateway): the EnvoyFilter
    `sni-guard config` writes carries the test that also requires a host-name SNI, names it in
    same_name_matcher, and loads in the real Envoy."""
    fixture = m.ROOT / "e2e" / "envoy" / "fixtures" / "gateway-api-conformance.yaml"
    text = cli.config("--kind", "envoyfilter", "--selector",
                      "gateway.networking.k8s.io/gateway-name=same-namespace-with-https-listener", fixture)
    (document,) = [d for d in yaml.safe_load_all(text) if d]
    http_filter = m.envoy_filter_wasm(document)
    assert matcher_support.text_of(http_filter["typed_config"]) == matcher_support.HOST_NAME
    assert json.loads(m.plugin_config_json(document))["same_name_matcher"] == matcher_support.HOST_NAME
    example = with_filter(envoy_support.load_example(), http_filter)
    result = envoy_validate(envoy_bin, envoy_support.prepare(certs, wasm=wasm, example=example), tmp_path / "ca.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
