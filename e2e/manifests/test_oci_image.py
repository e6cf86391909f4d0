"""`make image`'s OCI image: the layout Istio's WasmPlugin pulls (Wasm image spec, compat
variant), reproducible, and the digests `sni-guard config` (what `make manifests` runs) writes
are the ones Istio checks."""

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile

import pytest
import yaml

from e2e.support import cli
from e2e.support import manifests as m

SCRIPTS = m.ROOT / "scripts"
TAG = "0.1.0"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_image(wasm, directory):
    result = subprocess.run([sys.executable, SCRIPTS / "oci_image.py", wasm, "--layout", directory / "oci",
                             "--tar", directory / "image.tar", "--tag", TAG],
                            capture_output=True, text=True, check=True)
    (printed,) = [line for line in result.stdout.splitlines() if line.startswith("manifest digest sha256:")]
    return printed.removeprefix("manifest digest sha256:")


def blob(layout, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


@pytest.fixture(scope="module")
def image(wasm, tmp_path_factory):
    directory = tmp_path_factory.mktemp("image")
    return directory, build_image(wasm, directory)


def test_layout_files_and_blob_digests(image):
    directory, _ = image
    layout = directory / "oci"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    for path in (layout / "blobs" / "sha256").iterdir():
        assert sha256(path.read_bytes()) == path.name, f"blob {path.name} does not match its content"
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    (entry,) = index["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == TAG
    assert entry["size"] == len(blob(layout, entry["digest"]))


def test_manifest_is_the_compat_variant_holding_the_module(image, wasm):
    directory, digest = image
    layout = directory / "oci"
    manifest = json.loads(blob(layout, digest))
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    for descriptor in (manifest["config"], layer):
        assert descriptor["size"] == len(blob(layout, descriptor["digest"]))
    layer_tar = gzip.decompress(blob(layout, layer["digest"]))
    with tarfile.open(fileobj=io.BytesIO(layer_tar)) as tar:
        assert tar.getnames() == ["plugin.wasm"]
        assert tar.extractfile("plugin.wasm").read() == wasm.read_bytes()
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{sha256(layer_tar)}"]}


def test_tarball_is_the_layout(image):
    directory, _ = image
    with tarfile.open(directory / "image.tar") as tar:
        names = sorted(tar.getnames())
        assert names == sorted(p.relative_to(directory / "oci").as_posix()
                               for p in (directory / "oci").rglob("*") if p.is_file())
        for name in names:
            assert tar.extractfile(name).read() == (directory / "oci" / name).read_bytes()


def test_image_is_reproducible(image, wasm, tmp_path):
    directory, digest = image
    assert build_image(wasm, tmp_path) == digest
    assert (tmp_path / "image.tar").read_bytes() == (directory / "image.tar").read_bytes()


def test_checked_in_manifests_pin_no_stale_digest():
    """A literal digest in git would stop being true at the next filter change: the examples
    carry the placeholder (`sni-guard config --example`), `make manifests` writes real ones."""
    for name, document in m.all_documents():
        if document["kind"] in ("WasmPlugin", "TrafficExtension"):
            assert m.wasm_spec(document)["sha256"] == m.PLACEHOLDER_SHA256, name


def test_config_writes_the_digests_istio_checks(image, wasm, schemas):
    """`sni-guard config` (what `make manifests` runs) pins an oci:// image by the manifest digest
    `make image`'s script printed, an https:// module by the .wasm's sha256."""
    directory, digest = image
    common = ["--selector", "istio=ingressgateway", m.EXAMPLE_GATEWAYS]
    written = {
        "oci-wasmplugin": cli.config("--kind", "wasmplugin", "--image", "oci://registry.test/sni-guard:0.1.0",
                                     "--oci-layout", directory / "oci", *common),
        "oci-trafficextension": cli.config("--kind", "trafficextension", "--image",
                                           "oci://registry.test/sni-guard:0.1.0", "--oci-layout", directory / "oci",
                                           *common),
        "https-wasmplugin": cli.config("--kind", "wasmplugin", "--image", "https://files.test/sni-guard.wasm",
                                       "--wasm", wasm, *common),
    }
    for name, text in written.items():
        (document,) = [d for d in yaml.safe_load_all(text) if d]
        assert schemas.errors(document) == [], name
        spec = m.wasm_spec(document)
        if name.startswith("oci"):
            # Istio compares sha256 with the digest of the image manifest it pulls.
            assert (spec["url"], spec["sha256"]) == ("oci://registry.test/sni-guard:0.1.0", digest), name
            assert spec["imagePullPolicy"] == "IfNotPresent"
        else:
            # For http(s) it compares sha256 with the downloaded .wasm bytes.
            assert (spec["url"], spec["sha256"]) == ("https://files.test/sni-guard.wasm", sha256(wasm.read_bytes()))


def test_config_refuses_an_oci_image_without_its_digest(image):
    directory, _ = image
    result = cli.run("config", "--kind", "wasmplugin", "--image", "oci://registry.test/sni-guard:0.1.0",
                     "--selector", "istio=ingressgateway", m.EXAMPLE_GATEWAYS)
    assert result.returncode == 2 and "--oci-layout DIR" in result.stderr, result.stderr
    result = cli.run("config", "--kind", "wasmplugin", "--image", "oci://registry.test/sni-guard:0.1.0",
                     "--oci-layout", directory / "nowhere", "--selector", "istio=ingressgateway", m.EXAMPLE_GATEWAYS)
    assert result.returncode == 2 and "run `make image`" in result.stderr, result.stderr
