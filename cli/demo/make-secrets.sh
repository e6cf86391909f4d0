#!/usr/bin/env bash
# Prints, as `kubectl get secrets -o yaml` would, the kubernetes.io/tls Secrets that
# gateways.yaml names (all but status-org), with certificates made by openssl now. The keys go
# to /dev/null: each tls.key is a placeholder, not a key.
set -euo pipefail

certificate() { # CN [DNS names...]
  local cn=$1; shift
  local san=()
  if [ $# -gt 0 ]; then
    local names; names=$(printf 'DNS:%s,' "$@")
    san=(-addext "subjectAltName=${names%,}")
  fi
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null \
    -days 30 -subj "/CN=$cn" "${san[@]}" 2>/dev/null
}

secret() { # NAMESPACE NAME PEM
  printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: %s}\ntype: kubernetes.io/tls\n' "$2" "$1"
  printf 'data:\n  tls.crt: %s\n  tls.key: %s\n---\n' "$(printf '%s\n' "$3" | base64 -w0)" "$(printf 'placeholder' | base64 -w0)"
}

acme=$(certificate acme.test '*.acme.test')
secret istio-system wildcard-acme "$acme"
secret istio-system blog-acme "$acme"
secret istio-system api-acme "$(certificate api.acme.test api.acme.test)"
secret istio-system wildcard-media "$(certificate media.test '*.media.test')"
secret istio-system cdn-media "$(certificate img.eu.media.test img.eu.media.test)"
secret istio-system docs-org "$(certificate docs.example.org docs.example.org)"
secret web corp-wild "$(certificate corp.test '*.corp.test')"
secret web pay-corp "$(certificate pay.corp.test pay.corp.test)"
