"""`make image`'s OCI image: the layout Istio's WasmPlugin pulls (Wasm image spec, compat
variant), reproducible, and the digests `make manifests` writes are the ones Istio checks."""

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile

import pytest

from tests.support import manifests as m

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
    """A literal digest in git would stop being true at the next filter change: the templates
    carry the placeholder, `make manifests` fills it in."""
    for name, document in m.all_documents():
        if document["kind"] in ("WasmPlugin", "TrafficExtension"):
            assert m.wasm_spec(document)["sha256"] == m.PLACEHOLDER_SHA256, name


def test_rendered_manifests_carry_the_digests_istio_checks(image, wasm, schemas, tmp_path):
    directory, digest = image
    out = tmp_path / "manifests"
    subprocess.run([sys.executable, SCRIPTS / "render_manifests.py", "--wasm", wasm, "--layout", directory / "oci",
                    "--out", out, "--image", "oci://registry.test/sni-guard:0.1.0",
                    "--wasm-url", "https://files.test/sni-guard.wasm"], check=True, capture_output=True)
    rendered = m.all_documents(out)
    assert sorted(n for n, _ in rendered) == sorted(n for n, _ in m.all_documents())
    seen = set()
    for name, document in rendered:
        assert schemas.errors(document) == [], name
        if document["kind"] == "EnvoyFilter":
            continue
        spec = m.wasm_spec(document)
        if spec["url"].startswith("oci://"):
            # Istio compares sha256 with the digest of the image manifest it pulls.
            assert (spec["url"], spec["sha256"]) == ("oci://registry.test/sni-guard:0.1.0", digest), name
        else:
            # For http(s) it compares sha256 with the downloaded .wasm bytes.
            expected = ("https://files.test/sni-guard.wasm", sha256(wasm.read_bytes()))
            assert (spec["url"], spec["sha256"]) == expected, name
        seen.add(spec["url"].split(":")[0])
    assert seen == {"oci", "https"}


def test_render_refuses_an_image_of_another_module(wasm, tmp_path):
    other = tmp_path / "other.wasm"
    other.write_bytes(b"\0asm\x01\0\0\0")
    build_image(other, tmp_path)
    result = subprocess.run([sys.executable, SCRIPTS / "render_manifests.py", "--wasm", wasm,
                             "--layout", tmp_path / "oci", "--out", tmp_path / "out"], capture_output=True, text=True)
    assert result.returncode == 1 and "make image" in result.stderr
