//! The proxy-wasm ABI (v0.2.1) glue, compiled only for WebAssembly.
//!
//! sni-guard exports its own entry points instead of linking the proxy-wasm SDK's dispatcher:
//! Envoy calls every `proxy_on_*` callback a module exports on every stream, and each call is
//! a crossing between Envoy and the module. The SDK exports all of them (context create,
//! request and response headers, body, trailers, log, done, delete); this module exports
//! `proxy_on_request_headers` and nothing else per stream, and keeps no per-stream state, so
//! it needs neither `proxy_on_context_create` nor `proxy_on_delete`.

mod hostcalls;
mod http;
mod logger;
mod root;

/// Tells the host which ABI this module speaks.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host allocates here the values it returns (header values, properties, configuration);
/// `hostcalls::HostBytes` frees them.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size));
    buffer.as_mut_ptr()
}
