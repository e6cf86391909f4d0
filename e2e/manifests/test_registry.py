"""The image through a real registry and back: `make push` into Debian's docker-registry (the CNCF
distribution registry) on loopback, then pulls by tag and by digest with skopeo. What comes back
is the module `make build` wrote, under the manifest digest `make manifests` pins in the
WasmPlugin and TrafficExtension `sha256` (the digest Istio's agent checks for oci:// URLs).

docker-registry and skopeo come from `make deps`; without them these tests fail, never skip.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from e2e.support import manifests as m
from e2e.support.registry import Registry, registry_binary

REPOSITORY = "sni-guard"
TAG = "roundtrip"  # the pushed tag; the layout's own tag is the crate version
WASM = m.ROOT / "dist" / "sni-guard.wasm"  # what `make push` packs (make's $(WASM))
LAYOUT = m.ROOT / "dist" / "oci"
MAKE_TIMEOUT = 600  # `make push` builds the module first if it is stale


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def skopeo() -> str:
    found = shutil.which("skopeo")
    if found is None:
        pytest.fail("skopeo is missing: run `make deps` (Debian package skopeo)", pytrace=False)
    return found


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`make ARGS` in the repository as a user runs it (not as a sub-make of `make test`)."""
    env = {k: v for k, v in (env or os.environ).items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run([shutil.which("make") or "make", "--no-print-directory", "-C", str(m.ROOT), *args],
                          capture_output=True, text=True, timeout=MAKE_TIMEOUT, env=env, stdin=subprocess.DEVNULL)


def layout_tag(layout) -> str:
    """The one tag of the image `make image` wrote (the crate version)."""
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    return entry["annotations"]["org.opencontainers.image.ref.name"]


def layout_image(layout, reference: str) -> tuple[str, dict[str, bytes]]:
    """The manifest digest tagged `reference` in an OCI layout, and its blobs (manifest, config,
    layer) by digest."""
    index = json.loads((layout / "index.json").read_text())
    (digest,) = [d["digest"] for d in index["manifests"]
                 if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == reference]

    def blob(d: str) -> bytes:
        return (layout / "blobs" / "sha256" / d.removeprefix("sha256:")).read_bytes()

    manifest = json.loads(blob(digest))
    digests = [digest, manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    return digest, {d: blob(d) for d in digests}


def plugin_wasm(manifest: bytes, blobs: dict[str, bytes]) -> bytes:
    (layer,) = json.loads(manifest)["layers"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blobs[layer["digest"]]))) as tar:
        assert tar.getnames() == ["plugin.wasm"]
        return tar.extractfile("plugin.wasm").read()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    skopeo()
    try:
        registry_binary()
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    with Registry(tmp_path_factory.mktemp("registry")) as registry:
        yield registry


@pytest.fixture(scope="module")
def pushed(registry):
    """`make push` to the loopback registry: (image reference, the digest it printed)."""
    image = f"{registry.address}/{REPOSITORY}:{TAG}"
    result = make("push", f"IMAGE={image}")
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("digest sha256:")]
    return image, line.removeprefix("digest ")


def test_push_prints_the_built_digest(pushed):
    _, digest = pushed
    built, _ = layout_image(LAYOUT, layout_tag(LAYOUT))
    assert digest == built


def test_the_registry_serves_the_built_image_unchanged(registry, pushed):
    _, digest = pushed
    built, blobs = layout_image(LAYOUT, layout_tag(LAYOUT))
    for reference in (TAG, digest):
        manifest, served_digest = registry.manifest(REPOSITORY, reference)
        assert manifest == blobs[built], reference
        assert served_digest == f"sha256:{sha256(manifest)}" == digest, reference
    for blob_digest, data in blobs.items():
        if blob_digest != built:  # the manifest is served at /manifests/, above
            assert registry.blob(REPOSITORY, blob_digest) == data, blob_digest


def test_pulled_back_by_tag_and_by_digest_it_is_the_module(registry, pushed, tmp_path):
    _, digest = pushed
    sources = {"by-tag": f"{REPOSITORY}:{TAG}", "by-digest": f"{REPOSITORY}@{digest}"}
    for name, source in sources.items():
        result = subprocess.run([skopeo(), "copy", "--preserve-digests", "--src-tls-verify=false",
                                 f"docker://{registry.address}/{source}", f"oci:{tmp_path / 'pulled'}:{name}"],
                                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout + result.stderr
        pulled_digest, blobs = layout_image(tmp_path / "pulled", name)
        assert pulled_digest == digest, name
        assert sha256(blobs[digest]) == digest.removeprefix("sha256:"), name
        assert plugin_wasm(blobs[digest], blobs) == WASM.read_bytes(), name


def test_make_manifests_pins_what_the_registry_serves(registry, pushed, tmp_path):
    """What Istio's agent does with a rendered WasmPlugin: pull url's manifest, compare its digest
    with sha256, then run the layer's plugin.wasm."""
    image, digest = pushed
    result = make("manifests", f"IMAGE=oci://{image}", f"MANIFESTS_OUT={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    pinned = [m.wasm_spec(d) for _, d in m.all_documents(tmp_path) if d["kind"] in ("WasmPlugin", "TrafficExtension")]
    oci = [spec for spec in pinned if spec["url"].startswith("oci://")]
    assert len(oci) == 2, pinned  # wasmplugin.yaml and trafficextension.yaml
    for spec in oci:
        assert spec["url"] == f"oci://{image}"
        manifest, served_digest = registry.manifest(REPOSITORY, spec["url"].rsplit(":", 1)[1])
        assert sha256(manifest) == spec["sha256"] == served_digest.removeprefix("sha256:") == \
            digest.removeprefix("sha256:")


def test_push_fails_when_the_registry_gets_another_digest(registry, tmp_path):
    """A copy tool or registry that rewrote the manifest (another digest) must fail `make push`:
    a WasmPlugin pinned to the built digest would refuse that image. A stand-in skopeo reports
    another digest."""
    fake = tmp_path / "bin" / "skopeo"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nwhile [ "$1" != --digestfile ]; do shift; done\n'
                    f'echo sha256:{"1" * 64} > "$2"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    result = make("push", f"IMAGE={registry.address}/{REPOSITORY}:changed", env=env)
    assert result.returncode != 0
    assert f"sha256:{'1' * 64}, not the built sha256:" in result.stderr, result.stderr


def test_push_without_image_says_how(tmp_path):
    result = make("push")
    assert result.returncode != 0 and "usage: make push IMAGE=REGISTRY/REPO:TAG" in result.stderr, result.stderr
