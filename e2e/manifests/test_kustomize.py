"""The Kustomize base (envoyfilter/kustomize/base: the WasmPlugin) and overlays on it that
`sni-guard config --overlay` writes (the example one, envoyfilter/kustomize/overlays/example,
is `make examples`'), rendered by `kubectl kustomize` and checked against Istio's CRD schema,
against what `sni-guard config` prints, and with `sni-guard check` (the filter's own parser)."""

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


def overlay_flags() -> list[str]:
    """`make examples`' flags for the example overlay."""
    makefile = (m.ROOT / "Makefile").read_text()
    text = makefile.split("EXAMPLE_OVERLAY_FLAGS := ", 1)[1].split("\n\n", 1)[0]
    return text.replace("\\\n", " ").split()


def test_the_example_overlay_renders_what_config_writes(kubectl, schemas):
    """The example overlay is `sni-guard config --overlay`'s: rendered on the base, it is the
    WasmPlugin `sni-guard config` prints for the same flags, field for field."""
    (document,) = kustomize.render(kustomize.EXAMPLE_OVERLAY)
    assert schemas.errors(document) == []
    (printed,) = yaml.safe_load_all(cli.config(*overlay_flags(), m.EXAMPLE_GATEWAYS))
    assert document == printed
    assert document["metadata"] == {"name": "sni-guard-istio-ingressgateway-ingressgateway",
                                    "namespace": "istio-ingress"}
    assert document["spec"]["pluginConfig"]["mode"] == "enforce"
    assert document["spec"]["match"] == [{"mode": "CLIENT", "ports": [{"number": 8443}]}]


@pytest.mark.parametrize("target", ["istio", "gateway-api"])
def test_config_writes_an_overlay_that_renders_the_wasmplugin(kubectl, schemas, tmp_path, target):
    """For an Istio gateway's pods and for a Gateway API Gateway (another name and namespace,
    targetRefs instead of the base's selector, no sha256 for a file:// module)."""
    args = {"istio": ["-l", "istio=ingressgateway", "--image", "oci://registry.example.com/sni-guard:9.9.9",
                      "--sha256", "ab" * 32, m.EXAMPLE_GATEWAYS],
            "gateway-api": ["-l", "gateway.networking.k8s.io/gateway-name=edge", "--image",
                            "file:///var/local/lib/wasm/sni-guard.wasm", m.ROOT / "cli" / "demo" / "gateways.yaml"]}
    overlay = tmp_path / "overlay"
    written = cli.run("config", "--kind", "wasmplugin", "--overlay", overlay, "--base",
                      os.path.relpath(kustomize.BASE, overlay), *args[target])
    assert written.returncode == 0 and written.stdout == "", written.stderr
    (document,) = kustomize.render(overlay)
    (printed,) = yaml.safe_load_all(cli.config("--kind", "wasmplugin", *args[target]))
    assert document == printed
    assert schemas.errors(document) == []
    assert cli.run("check", "-", stdin=yaml.safe_dump(document)).returncode == 0


def test_an_overlay_is_for_a_wasmplugin_only(tmp_path):
    result = cli.run("config", "--kind", "envoyfilter", "-l", "istio=ingressgateway", "--overlay", tmp_path / "o",
                     "--base", "../base", m.EXAMPLE_GATEWAYS)
    assert result.returncode == 2 and "give --kind wasmplugin" in result.stderr
    assert not (tmp_path / "o").exists()


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
