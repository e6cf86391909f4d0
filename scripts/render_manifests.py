#!/usr/bin/env python3
"""Fill the checked-in Istio manifests (envoyfilter/*.yaml) with the digests of the module just
built, and optionally the user's URLs, into an output directory (dist/manifests/).

The checked-in files carry a placeholder sha256 (64 zeros) because the module changes with every
filter change: a literal hash in git would soon be a lie. Which digest goes where follows what
Istio checks:

- `url: oci://...`: the image manifest digest (from the OCI layout's index.json), which Istio's
  agent compares with the digest of the manifest it pulled;
- `url: http(s)://...`: the sha256 of the .wasm bytes, which the agent compares with the download.

Comments and layout are kept: only the `url:` and placeholder `sha256:` values change.

    scripts/render_manifests.py --wasm dist/sni-guard.wasm --layout dist/oci --out dist/manifests \
        [--image oci://REGISTRY/sni-guard:TAG] [--wasm-url https://HOST/sni-guard.wasm]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "envoyfilter"
PLACEHOLDER = "0" * 64
SKIP = {"envoy.yaml"}  # the plain Envoy bootstrap: no registry, nothing to fill
URL_LINE = re.compile(r"^(?P<indent>\s*)url: (?P<url>\S+)\s*$", re.M)


def render(text: str, *, image_digest: str, module_sha256: str, image: str | None, wasm_url: str | None) -> str:
    urls = URL_LINE.findall(text)
    if not urls:
        return text  # nothing fetched by Istio (e.g. the EnvoyFilter reads a local file)
    if len(urls) != 1:
        raise ValueError("expected one `url:` per manifest")
    url = urls[0][1]
    if url.startswith("oci://"):
        digest, new_url = image_digest, image
    elif url.startswith(("http://", "https://")):
        digest, new_url = module_sha256, wasm_url
    else:
        raise ValueError(f"no digest rule for url {url}")
    if new_url:
        text = URL_LINE.sub(lambda m: f"{m['indent']}url: {new_url}", text)
    if PLACEHOLDER not in text:
        raise ValueError("the template lost its placeholder sha256")
    return text.replace(PLACEHOLDER, digest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm", type=Path, required=True)
    parser.add_argument("--layout", type=Path, required=True, help="the OCI layout `make image` wrote")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--templates", type=Path, default=TEMPLATES)
    parser.add_argument("--image", help="oci:// URL the image was pushed to")
    parser.add_argument("--wasm-url", help="http(s):// URL the .wasm is served from")
    args = parser.parse_args(argv)

    module_sha256 = hashlib.sha256(args.wasm.read_bytes()).hexdigest()
    index = json.loads((args.layout / "index.json").read_text())
    image_digest = index["manifests"][0]["digest"].removeprefix("sha256:")
    layer_wasm = _image_module_sha256(args.layout, index)
    if layer_wasm != module_sha256:
        print(f"{args.layout} holds another module than {args.wasm}: run `make image`", file=sys.stderr)
        return 1

    args.out.mkdir(parents=True, exist_ok=True)
    for template in sorted(args.templates.glob("*.yaml")):
        if template.name in SKIP:
            continue
        text = render(template.read_text(), image_digest=image_digest, module_sha256=module_sha256,
                      image=args.image, wasm_url=args.wasm_url)
        (args.out / template.name).write_text(text)
        print(f"wrote {args.out / template.name}")
    return 0


def _image_module_sha256(layout: Path, index: dict) -> str:
    """sha256 of the plugin.wasm inside the image, so a stale image is not paired with a new module."""
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].removeprefix("sha256:")).read_bytes())
    layer = (blobs / manifest["layers"][0]["digest"].removeprefix("sha256:")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        data = tar.extractfile("plugin.wasm").read()
    return hashlib.sha256(data).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
