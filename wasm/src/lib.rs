//! sni-guard's proxy-wasm module: the ABI (v0.2.1) glue around the decision logic of the
//! `sni-guard` crate, built as a `cdylib` for `wasm32-wasip1` (`make build` writes it to
//! `dist/sni-guard.wasm`). Natively only `abi` is compiled (a test checks its numbers against
//! the proxy-wasm crate): the rest imports Envoy's host functions, which only a proxy-wasm host
//! provides.
//!
//! sni-guard exports its own entry points instead of linking the proxy-wasm SDK's dispatcher:
//! Envoy calls every `proxy_on_*` callback a module exports on every stream, and each call is
//! a crossing between Envoy and the module. The SDK exports all of them (context create,
//! request and response headers, body, trailers, log, done, delete); this module exports
//! `proxy_on_request_headers` and nothing else per stream, and keeps no per-stream state, so
//! it needs neither `proxy_on_context_create` nor `proxy_on_delete`.

// A panic in the module aborts the VM for every request on that worker: the filter's own code
// has no unwrap, expect or panic (tests may).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod abi;
#[cfg(target_arch = "wasm32")]
mod allocator;
#[cfg(target_arch = "wasm32")]
mod hostcalls;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod logger;
#[cfg(target_arch = "wasm32")]
mod root;

/// Tells the host which ABI this module speaks.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}
