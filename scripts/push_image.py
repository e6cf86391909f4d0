#!/usr/bin/env python3
"""Push `make image`'s OCI image (dist/oci) to a registry with skopeo, unchanged, and fail unless
the registry got the manifest digest that was built: the digest `make manifests` pins in a
WasmPlugin's `sha256` for an oci:// URL, which Istio's agent compares with what it pulls.

    scripts/push_image.py --layout dist/oci --tag 0.1.0 REGISTRY/REPO:TAG [-- SKOPEO_COPY_ARGS...]

REGISTRY/REPO:TAG may carry an `oci://` prefix (the WasmPlugin URL form). skopeo runs with
`--preserve-digests`, so it refuses any change to the manifest rather than pushing another digest;
`--digestfile` then reports what was pushed, and it is compared with the layout's. A registry on
loopback (localhost, 127.0.0.0/8, ::1) is spoken to without TLS verification, as container tools
treat local registries; anything else is verified. Extra arguments after `--` go to `skopeo copy`,
e.g. `--dest-creds USER:TOKEN` or `--dest-authfile FILE` (or log in first: `skopeo login REGISTRY`).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


def destination(image: str) -> str:
    """REGISTRY/REPO[:TAG|@DIGEST], without an oci:// or docker:// prefix."""
    for prefix in ("oci://", "docker://"):
        image = image.removeprefix(prefix)
    if "/" not in image:
        raise ValueError(f"{image!r} names no registry: give REGISTRY/REPO:TAG")
    return image


def is_loopback(registry: str) -> bool:
    """registry is REGISTRY as in REGISTRY/REPO: a host, with an optional port."""
    host = registry[1:registry.index("]")] if registry.startswith("[") else registry.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def built_digest(layout: Path, tag: str) -> str:
    """The manifest digest index.json records for `tag` (sha256:HEX)."""
    index = json.loads((layout / "index.json").read_text())
    digests = [m["digest"] for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME_ANNOTATION) == tag]
    if len(digests) != 1:
        raise ValueError(f"{layout}/index.json has no single image tagged {tag!r}: run `make image`")
    return digests[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", type=Path, default=Path("dist/oci"), help="the OCI layout `make image` wrote")
    parser.add_argument("--tag", required=True, help="the image's tag in the layout (make image: the crate version)")
    parser.add_argument("image", help="where to push: REGISTRY/REPO:TAG (an oci:// prefix is dropped)")
    parser.add_argument("skopeo_args", nargs="*", help="after --: more arguments for skopeo copy")
    args = parser.parse_args(argv)

    try:
        expected = built_digest(args.layout, args.tag)
        dest = destination(args.image)
    except (OSError, ValueError) as e:
        print(f"push: {e}", file=sys.stderr)
        return 2
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        print("push: skopeo is missing: run `make deps` (Debian package skopeo)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        digestfile = Path(tmp) / "digest"
        command = [skopeo, "copy", "--preserve-digests", "--digestfile", str(digestfile)]
        if is_loopback(dest.split("/", 1)[0]):
            command.append("--dest-tls-verify=false")
        command += [*args.skopeo_args, f"oci:{args.layout}:{args.tag}", f"docker://{dest}"]
        print("+ skopeo " + " ".join(command[1:]), flush=True)
        if subprocess.run(command).returncode != 0:
            print(f"push: skopeo could not push {dest}", file=sys.stderr)
            return 1
        pushed = digestfile.read_text().strip() if digestfile.exists() else "(none reported)"

    if pushed != expected:
        print(f"push: {dest} has manifest digest {pushed}, not the built {expected}: "
              "the registry or the copy changed the image, and a WasmPlugin pinned to the built digest "
              "would refuse it", file=sys.stderr)
        return 1
    print(f"pushed {dest}")
    print(f"digest {pushed}")
    print(f"pin it: url oci://{dest}, sha256 {pushed.removeprefix('sha256:')} "
          f"(make manifests IMAGE=oci://{dest} writes both)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
