#!/usr/bin/env python3
"""Package the sni-guard module as an OCI image that Istio's WasmPlugin pulls, without a
container daemon: an OCI image layout directory and the same layout as a tarball.

Format: the "compat" variant of the Wasm image specification (solo-io/wasm, spec-compat.md),
which Istio's image fetcher tries first: one layer of media type
`application/vnd.oci.image.layer.v1.tar+gzip` holding `plugin.wasm`, a standard
`application/vnd.oci.image.config.v1+json` config, and the manifest annotation
`module.wasm.image/variant: compat`. Chosen over the "oci" variant (custom
`application/vnd.module.wasm.content.layer.v1+wasm` layers) because every registry and every
copy tool (skopeo, oras, crane) handles standard media types.

Reproducible: the tar entry has mtime 0, uid/gid 0 and no user names, gzip has mtime 0 and no
file name, JSON is written with sorted keys and no timestamps; the same module (and the same
Python/zlib) gives the same digests.

    scripts/oci_image.py dist/sni-guard.wasm --layout dist/oci --tar dist/sni-guard-oci.tar --tag 0.1.0

prints the manifest digest: the value Istio compares with a WasmPlugin's `sha256` for oci:// URLs.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

OCI_LAYOUT_VERSION = "1.0.0"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
VARIANT_ANNOTATION = "module.wasm.image/variant"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
PLUGIN_FILE = "plugin.wasm"


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tar(entries: list[tuple[str, bytes]]) -> bytes:
    """A tar of regular files with every varying header field fixed."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return out.getvalue()


def build_blobs(wasm: bytes, tag: str) -> tuple[dict[str, bytes], dict]:
    """The image's blobs by sha256 hex, and the index.json that names its manifest."""
    layer_tar = _tar([(PLUGIN_FILE, wasm)])
    layer = _gzip(layer_tar)
    config = canonical_json({
        "architecture": "wasm",
        "os": "wasip1",
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha256(layer_tar)}"]},
        "config": {},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": f"sha256:{sha256(config)}", "size": len(config)},
        "layers": [{
            "mediaType": LAYER_TYPE,
            "digest": f"sha256:{sha256(layer)}",
            "size": len(layer),
            "annotations": {"org.opencontainers.image.title": PLUGIN_FILE},
        }],
        "annotations": {VARIANT_ANNOTATION: "compat"},
    })
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_TYPE,
            "digest": f"sha256:{sha256(manifest)}",
            "size": len(manifest),
            "annotations": {REF_NAME_ANNOTATION: tag},
        }],
    }
    blobs = {sha256(b): b for b in (layer, config, manifest)}
    return blobs, index


def write_layout(directory: Path, blobs: dict[str, bytes], index: dict) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "blobs" / "sha256").mkdir(parents=True)
    (directory / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    (directory / "index.json").write_bytes(canonical_json(index))
    for digest, data in blobs.items():
        (directory / "blobs" / "sha256" / digest).write_bytes(data)


def layout_entries(directory: Path) -> list[tuple[str, bytes]]:
    return [(p.relative_to(directory).as_posix(), p.read_bytes())
            for p in sorted(directory.rglob("*")) if p.is_file()]


def manifest_digest(index: dict) -> str:
    """The image manifest's digest, hex, as index.json records it."""
    return index["manifests"][0]["digest"].removeprefix("sha256:")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wasm", type=Path, help="the module, e.g. dist/sni-guard.wasm")
    parser.add_argument("--layout", type=Path, required=True, help="OCI image layout directory to (re)write")
    parser.add_argument("--tar", type=Path, help="also write the layout as this tarball (oci-archive)")
    parser.add_argument("--tag", default="latest", help="the tag recorded in index.json")
    args = parser.parse_args(argv)

    wasm = args.wasm.read_bytes()
    if wasm[:4] != b"\0asm":
        print(f"{args.wasm} is not a WebAssembly module", file=sys.stderr)
        return 1
    blobs, index = build_blobs(wasm, args.tag)
    write_layout(args.layout, blobs, index)
    if args.tar:
        args.tar.write_bytes(_tar(layout_entries(args.layout)))
    print(f"image {args.layout} (tag {args.tag}{', tarball ' + str(args.tar) if args.tar else ''})")
    print(f"module sha256 {sha256(wasm)}")
    print(f"manifest digest sha256:{manifest_digest(index)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
