"""The Kustomize base (envoyfilter/kustomize/base: the WasmPlugin) and the example overlay that
patches servers, mode and image into it, rendered by `kubectl kustomize` and checked against
Istio's CRD schema and with `sni-guard check` (the filter's own parser)."""

import os

import pytest
import yaml

from e2e.support import cli, kustomize
from e2e.support import manifests as m


@pytest.fixture(scope="module")
def kubectl():
    try:
        return kustomize.kubectl()
    except kustomize.MissingKubectl as e:
        pytest.fail(str(e), pytrace=False)


def test_the_base_is_the_example_wasmplugin(kubectl, schemas):
    (document,) = kustomize.render(kustomize.BASE)
    (example,) = m.documents(m.MANIFEST_DIR / "wasmplugin.yaml")
    assert document == example
    assert schemas.errors(document) == []


def test_the_example_overlay_patches_servers_mode_and_image(kubectl, schemas):
    (document,) = kustomize.render(kustomize.EXAMPLE_OVERLAY)
    assert schemas.errors(document) == []
    spec = document["spec"]
    assert document["metadata"] == {"name": "sni-guard-ingressgateway", "namespace": "istio-ingress"}
    assert spec["url"] == "oci://registry.example.com/platform/sni-guard:0.1.0"
    assert spec["pluginConfig"]["servers"] == [{"hosts": ["shop.example.com", "www.shop.example.com"]},
                                               {"hosts": ["blog.example.com"]}, {"hosts": ["*.apps.example.com"]}]
    assert spec["pluginConfig"]["mode"] == "enforce"
    assert spec["match"] == [{"mode": "CLIENT", "ports": [{"number": 8443}]}]
    assert spec["selector"]["matchLabels"] == {"istio": "ingressgateway", "app": "istio-ingressgateway"}
    # What the overlay leaves alone stays the base's.
    (base,) = m.documents(m.MANIFEST_DIR / "wasmplugin.yaml")
    for field in ("phase", "failStrategy", "imagePullPolicy", "pluginName", "type"):
        assert spec[field] == base["spec"][field], field
    assert spec["pluginConfig"]["on_missing_sni"] == "allow"


def test_the_rendered_overlay_passes_sni_guard_check(kubectl):
    rendered = kustomize.render_text(kustomize.EXAMPLE_OVERLAY)
    # The example overlay keeps the placeholder digest, which check refuses: an overlay must set
    # the image's real digest.
    result = cli.run("check", "-", stdin=rendered)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "spec.sha256 is the examples' placeholder" in " ".join(result.stdout.split()), result.stdout
    result = cli.run("check", "-", stdin=rendered.replace("0" * 64, "7d" * 32))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 3 servers, mode enforce" in " ".join(result.stdout.split()), result.stdout


def test_a_broken_overlay_is_caught(kubectl, schemas, tmp_path):
    """The checks above are real: an overlay that misspells a field fails the schema, one that
    breaks the configuration fails sni-guard check."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(kustomize.BASE, overlay)], "patches": [{"path": "patch.yaml"}]}))
    (overlay / "patch.yaml").write_text(yaml.safe_dump({
        "apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
        "metadata": {"name": "sni-guard-ingressgateway", "namespace": "istio-system"},
        "spec": {"failStrategey": "FAIL_OPEN", "pluginConfig": {"mode": "block"}}}))
    (document,) = kustomize.render(overlay)
    assert "spec.failStrategey: unknown field" in schemas.errors(document), schemas.errors(document)
    result = cli.run("check", "-", stdin=yaml.safe_dump(document))
    assert result.returncode == 1 and "unknown variant `block`" in " ".join(result.stdout.split()), result.stdout
