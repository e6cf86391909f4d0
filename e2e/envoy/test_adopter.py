"""The adopter's way, end to end (issue #16): Gateways, Istio's and Gateway API's, go through
`sni-guard config --kind wasmplugin --image oci://... --oci-layout dist/oci`; the WasmPlugin
validates against Istio's CRD schema, carries the manifest digest of the image `make image`
built, and its pluginConfig runs in a real Envoy with the answers expected of it: a misdirected
request gets the old 404 in dry_run (the default for a first rollout) and 421 with --mode
enforce, a request for the connection's own server passes. Last, the Kustomize base and its
example overlay render with `kubectl kustomize`."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from e2e.support import cli, crd_schema, kustomize
from e2e.support import curl as curl_support
from e2e.support import envoy as envoy_support
from e2e.support import manifests as m

ROOT = envoy_support.ROOT
IMAGE = "oci://registry.test/platform/sni-guard:0.1.0"
ISTIO = (m.EXAMPLE_GATEWAYS, "istio=ingressgateway")
GATEWAY_API = (ROOT / "e2e" / "envoy" / "fixtures" / "adopter-gateway-api.yaml",
               "gateway.networking.k8s.io/gateway-name=edge")


@pytest.fixture(scope="module")
def built_digest() -> str:
    """`make image` as a user runs it (not as a sub-make): the manifest digest it prints."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run([shutil.which("make") or "make", "--no-print-directory", "-C", str(ROOT), "image"],
                            capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("manifest digest sha256:")]
    return line.removeprefix("manifest digest sha256:")


def wasmplugin(gateways, selector: str, *flags: str) -> tuple[str, dict]:
    text = cli.config("--kind", "wasmplugin", "--image", IMAGE, "--oci-layout", ROOT / "dist" / "oci",
                      "--selector", selector, *flags, gateways)
    (document,) = [d for d in yaml.safe_load_all(text) if d]
    return text, document


@pytest.mark.parametrize("source", [ISTIO, GATEWAY_API], ids=["istio", "gateway-api"])
def test_the_wasmplugin_is_valid_and_pinned_to_the_built_image(source, built_digest):
    text, document = wasmplugin(*source)
    assert crd_schema.validate(document) == []
    spec = document["spec"]
    assert (spec["url"], spec["sha256"]) == (IMAGE, built_digest)
    assert (spec["phase"], spec["failStrategy"]) == ("AUTHN", "FAIL_OPEN")
    # A first rollout is a dry run, and the manifest says so.
    assert spec["pluginConfig"]["mode"] == "dry_run"
    assert "# Mode dry_run, the default for a first rollout" in text
    # The layout was given by its absolute path: no machine's path goes into a file for git.
    assert str(ROOT) not in text and "read from the OCI layout given with --oci-layout" in " ".join(text.split())
    if source is ISTIO:
        assert spec["selector"] == {"matchLabels": {"istio": "ingressgateway"}}
        # No Service in the input: the Gateways' port and istio-ingressgateway's targetPort.
        assert spec["match"] == [{"mode": "CLIENT", "ports": [{"number": 443}, {"number": 8443}]}]
    else:
        assert spec["targetRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}]
        # The Service in the input sends 443 to 443.
        assert spec["match"] == [{"mode": "CLIENT", "ports": [{"number": 443}]}]
        assert "Service web/edge-istio sends the Gateways' port 443 to the same port" in " ".join(text.split())


# (source, a request for its connection's own server, a misdirected one): SNI, :authority. The
# example Envoy's chain for a has no route for b, so without a 421 the misdirected one gets 404.
CASES = [
    (ISTIO, ("c.example.com", "d.example.com"), ("a.example.com", "b.example.com")),
    (GATEWAY_API, ("b.example.com", "b.example.com"), ("a.example.com", "b.example.com")),
]


@pytest.mark.parametrize("source,same_server,misdirected", CASES, ids=["istio", "gateway-api"])
@pytest.mark.parametrize("mode,misdirected_status", [("dry_run", 404), ("enforce", 421)])
def test_the_plugin_config_runs_in_envoy(source, same_server, misdirected, mode, misdirected_status, built_digest,
                                         certs, workdir):
    flags = ("--mode", "enforce") if mode == "enforce" else ()
    _, document = wasmplugin(*source, *flags)
    plugin_config = document["spec"]["pluginConfig"]
    assert plugin_config["mode"] == mode
    config = envoy_support.prepare(certs, plugin_config=plugin_config)
    name = f"adopter-{'istio' if source is ISTIO else 'gateway-api'}-{mode}"
    with envoy_support.Envoy(config, workdir, name=name) as envoy:
        assert curl_support.status(certs, envoy.port, *same_server) == 200
        assert curl_support.status(certs, envoy.port, *misdirected) == misdirected_status


def test_the_kustomize_base_and_overlay_render():
    try:
        kustomize.kubectl()
    except kustomize.MissingKubectl as e:
        pytest.fail(str(e), pytrace=False)
    (base,) = kustomize.render(kustomize.BASE)
    (overlay,) = kustomize.render(kustomize.EXAMPLE_OVERLAY)
    for document in (base, overlay):
        assert crd_schema.validate(document) == []
    assert (base["spec"]["pluginConfig"]["mode"], overlay["spec"]["pluginConfig"]["mode"]) == ("dry_run", "enforce")
