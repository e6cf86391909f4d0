#!/usr/bin/env bash
# make release VERSION=X.Y.Z [RELEASE_IMAGE=REGISTRY/REPO]: a release from the commit checked out,
# built from `git archive HEAD` in a temporary directory (nothing of the working tree but the
# commit, no path of this machine in what is built), into dist/release/X.Y.Z/:
#   sni-guard-X.Y.Z-<target>     the CLI for Linux x86_64 (glibc and static musl) and aarch64,
#                                each for which this machine has the Rust target and a linker;
#                                `--version` names the module's sha256 and the image's digest
#   sni-guard.wasm               the module
#   sni-guard-X.Y.Z-oci.tar      the Wasm OCI image (an OCI layout as a tarball), image-digest.txt
#   manifests/                   the example manifests, pinned to that image (RELEASE_IMAGE:X.Y.Z)
#   monitoring/                  the gateway's settings, the PrometheusRule and its rules file
#   CHANGELOG-X.Y.Z.md           the CHANGELOG's entry for X.Y.Z
#   SHA256SUMS                   of every file above
# The tree must be clean and X.Y.Z the workspace's version (Cargo.toml). CHANGELOG.md needs a
# "## [X.Y.Z]" section, or "## Unreleased", whose text becomes the entry; then CHANGELOG.md is
# edited here (Unreleased renamed, a new empty one above it) for you to commit with the tag.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'release: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

version=${1:-}
image=${RELEASE_IMAGE:-registry.example.com/sni-guard}
image=${image#oci://}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || fail "usage: make release VERSION=X.Y.Z (got '${version}')"
crate_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
[ "$version" = "$crate_version" ] || fail "VERSION=$version but Cargo.toml says $crate_version: bump the workspace's version first"
git rev-parse --git-dir >/dev/null 2>&1 || fail "not a git checkout: a release is built from a commit"
[ -z "$(git status --porcelain)" ] || fail "the tree is not clean (git status): commit or stash first"
if ! grep -q "^## \[$version\]" CHANGELOG.md && ! grep -q '^## Unreleased' CHANGELOG.md; then
  fail "CHANGELOG.md has neither a '## [$version]' nor a '## Unreleased' section"
fi

commit=$(git rev-parse HEAD)
date=$(git show -s --format=%cs HEAD)
out="$PWD/dist/release/$version"
build=$(mktemp -d "${TMPDIR:-/tmp}/sni-guard-release.XXXXXX")
trap 'rm -rf "$build"' EXIT
say "version $version, commit $commit ($date), building in a temporary directory"
rm -rf "$out"
mkdir -p "$out/manifests" "$out/monitoring"
git archive --format=tar HEAD | tar -x -C "$build"

# Paths of this machine (the build directory, cargo's and rustup's homes) left out of the binaries.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
export RUSTFLAGS="--remap-path-prefix=$build=/sni-guard-$version --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$rustup_home=/rustup"
export CARGO_TARGET_DIR="$build/target"
export SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH=$(git show -s --format=%ct HEAD)

# The module and its image.
make -s -C "$build" build >&2
cp "$build/dist/sni-guard.wasm" "$out/sni-guard.wasm"
python3 "$build/scripts/oci_image.py" "$out/sni-guard.wasm" --layout "$build/oci" \
  --tar "$out/sni-guard-$version-oci.tar" --tag "$version" >&2
module_sha256=$(sha256sum "$out/sni-guard.wasm" | cut -d' ' -f1)
image_digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].removeprefix("sha256:"))' "$build/oci/index.json")
printf 'sha256:%s\n' "$image_digest" > "$out/image-digest.txt"

# The CLI, naming them.
export SNI_GUARD_RELEASE_MODULE_SHA256=$module_sha256 SNI_GUARD_RELEASE_IMAGE_DIGEST=$image_digest
targets=(x86_64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-gnu)
built=()
for target in "${targets[@]}"; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target" && ! rustup target add "$target" >/dev/null 2>&1; then
    say "skipped $target: rustup has no such target here"
    continue
  fi
  if [ "$target" = aarch64-unknown-linux-gnu ]; then
    command -v aarch64-linux-gnu-gcc >/dev/null || { say "skipped $target: no aarch64-linux-gnu-gcc (Debian gcc-aarch64-linux-gnu)"; continue; }
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  fi
  say "building the CLI for $target"
  cargo build -q --release --locked --manifest-path "$build/Cargo.toml" -p sni-guard-cli --target "$target" >&2
  cp "$CARGO_TARGET_DIR/$target/release/sni-guard" "$out/sni-guard-$version-$target"
  built+=("$target")
done
[[ " ${built[*]} " == *" x86_64-unknown-linux-gnu "* ]] || fail "the CLI for x86_64-unknown-linux-gnu did not build"
cli="$out/sni-guard-$version-x86_64-unknown-linux-gnu"
expected="sni-guard $version (module sha256:$module_sha256, image sha256:$image_digest)"
[ "$("$cli" --version)" = "$expected" ] || fail "the CLI says '$("$cli" --version)', not '$expected'"

# The example manifests, pinned to the image, as `make examples` writes them but for the real digest.
gateways="$build/envoyfilter/example-gateways.yaml"
pinned=(--image "oci://$image:$version" --sha256 "$image_digest" --selector istio=ingressgateway)
(cd "$build" && "$cli" config --kind wasmplugin "${pinned[@]}" "$gateways") > "$out/manifests/wasmplugin.yaml"
(cd "$build" && "$cli" config --kind trafficextension "${pinned[@]}" "$gateways") > "$out/manifests/trafficextension.yaml"
(cd "$build" && "$cli" config --kind envoyfilter --selector istio=ingressgateway "$gateways") > "$out/manifests/envoyfilter.yaml"
cp "$build/envoyfilter/example-gateways.yaml" "$out/manifests/"
"$cli" check "$out/manifests/wasmplugin.yaml" "$out/manifests/trafficextension.yaml" "$out/manifests/envoyfilter.yaml" >&2

# Monitoring: the files as they are, and the PrometheusRule's spec as a plain rules file.
cp "$build"/monitoring/{gateway-values.yaml,istiod-values.yaml,telemetry.yaml,prometheusrule.yaml,prometheusrule.test.yaml,clients_without_retry.py} "$out/monitoring/"
python3 - "$out/monitoring/prometheusrule.yaml" "$out/monitoring/sni-guard.rules.yaml" <<'EOF'
import sys

# PyYAML is not needed: the PrometheusRule's spec is the block under `spec:`, one level in.
lines = open(sys.argv[1]).read().splitlines()
start = lines.index("spec:") + 1
body = [line[2:] if line.startswith("  ") else line for line in lines[start:]]
open(sys.argv[2], "w").write("# The rules of prometheusrule.yaml (its spec), for a Prometheus without the operator.\n"
                             + "\n".join(body) + "\n")
EOF
if command -v promtool >/dev/null; then
  promtool check rules "$out/monitoring/sni-guard.rules.yaml" >&2
fi

# The CHANGELOG entry: the version's section, or Unreleased's, which CHANGELOG.md then names.
python3 - "$version" "$date" CHANGELOG.md "$out/CHANGELOG-$version.md" <<'EOF'
import re
import sys

version, date, changelog, entry_path = sys.argv[1:]
text = open(changelog).read()
sections = re.split(r"(?m)^(?=## )", text)
released = [s for s in sections if s.startswith(f"## [{version}]")]
if released:
    entry = released[0]
else:
    (unreleased,) = [s for s in sections if s.startswith("## Unreleased")]
    entry = f"## [{version}] - {date}\n" + unreleased.split("\n", 1)[1]
    text = text.replace(unreleased, "## Unreleased\n\n" + entry, 1)
    text = text.replace("Nothing has been released yet: everything is under \"Unreleased\".",
                        f"Released versions are tagged v<version> ({version} first).")
    open(changelog, "w").write(text)
open(entry_path, "w").write(entry.rstrip() + "\n")
EOF

(cd "$out" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
# (With the separator: the module's own `wasm/src/root.rs` contains "/root".)
machine_paths=(-e "$build/" -e "$HOME/" -e "$PWD/" -e "$cargo_home/" -e "$rustup_home/")
if grep -rlF "${machine_paths[@]}" "$out" >/dev/null 2>&1; then
  fail "a release file names a path of this machine: $(grep -rlF "${machine_paths[@]}" "$out" | head -3)"
fi

say "wrote $out (CLI for ${built[*]}):"
(cd "$out" && find . -type f | LC_ALL=C sort | while read -r f; do printf '  %10d  %s\n' "$(stat -c %s "$f")" "${f#./}"; done) >&2
say "module sha256 $module_sha256; image $image:$version, digest sha256:$image_digest"
if ! git diff --quiet -- CHANGELOG.md; then
  say "CHANGELOG.md now names $version: commit it, then tag that commit:"
else
  say "tag this commit:"
fi
say "  git commit -am 'Release $version' (if CHANGELOG.md changed); git tag -a v$version -m 'sni-guard $version'; git push origin v$version"
say "  skopeo copy --preserve-digests oci-archive:dist/release/$version/sni-guard-$version-oci.tar docker://$image:$version"
