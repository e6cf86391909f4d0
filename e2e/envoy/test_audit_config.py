"""`sni-guard config` output, loaded into the real Envoy: the generated configuration keeps
reuse inside one server (200) and answers 421 across servers."""

import json
import subprocess

import pytest

from e2e.support import curl as curl_support
from e2e.support import envoy as envoy_support

FIXTURE = envoy_support.ROOT / "e2e" / "envoy" / "fixtures" / "gateways.yaml"


@pytest.fixture(scope="module")
def generated_config():
    out = subprocess.run(
        ["cargo", "run", "-q", "-p", "sni-guard-cli", "--", "config", "--selector", "istio=ingressgateway",
         "--mode", "enforce", str(FIXTURE)],
        cwd=envoy_support.ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_audit_finds_the_shared_certificate():
    run = subprocess.run(["cargo", "run", "-q", "-p", "sni-guard-cli", "--", "audit", str(FIXTURE)],
                         cwd=envoy_support.ROOT, capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "a.example.com" in run.stdout and "b.example.com" in run.stdout


def test_generated_config_is_the_examples(generated_config):
    servers = sorted(sorted(h.split("/")[-1] for h in s["hosts"]) for s in generated_config["servers"])
    example_config = envoy_support.plugin_configuration(envoy_support.load_example())
    example = sorted(sorted(s["hosts"]) for s in example_config["servers"])
    assert servers == example


def test_generated_config_in_envoy(generated_config, certs, workdir):
    config = envoy_support.prepare(certs, plugin_config=generated_config)
    with envoy_support.Envoy(config, workdir, name="audit-config") as envoy:
        assert curl_support.status(certs, envoy.port, "c.example.com", "d.example.com") == 200
        assert curl_support.status(certs, envoy.port, "a.example.com", "b.example.com") == 421
        assert curl_support.status(certs, envoy.port, "a.example.com", "a.example.com") == 200
