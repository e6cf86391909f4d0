//! sni-guard's proxy-wasm module: the ABI (v0.2.1) glue around the decision logic of the
//! `sni-guard` crate, built as a `cdylib` for `wasm32-wasip1` (`make build` writes it to
//! `dist/sni-guard.wasm`). Natively this crate is empty: the glue imports Envoy's host
//! functions, which only a proxy-wasm host provides.
//!
//! sni-guard exports its own entry points instead of linking the proxy-wasm SDK's dispatcher:
//! Envoy calls every `proxy_on_*` callback a module exports on every stream, and each call is
//! a crossing between Envoy and the module. The SDK exports all of them (context create,
//! request and response headers, body, trailers, log, done, delete); this module exports
//! `proxy_on_request_headers` and nothing else per stream, and keeps no per-stream state, so
//! it needs neither `proxy_on_context_create` nor `proxy_on_delete`.

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

/// The host allocates here the values it returns (header values, properties, configuration).
/// During a request, small values come from a per-request scratch area (no heap allocation on
/// the fast path); anything else from the heap, freed by `hostcalls::HostBytes`.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    if let Some(p) = scratch::alloc(size) {
        return p;
    }
    // Null, not an abort, when memory runs out: the host reports a failed call instead of the
    // VM trapping.
    let mut buffer = Vec::<u8>::new();
    if buffer.try_reserve_exact(size).is_err() {
        return std::ptr::null_mut();
    }
    std::mem::ManuallyDrop::new(buffer).as_mut_ptr()
}

/// A bump area for the values the host returns during one `proxy_on_request_headers`: the SNI
/// and `:authority` (at most 255 bytes each as sni-guard reads them) fit, and are handed out
/// without touching the allocator. Open only while a request is handled; reset after it.
#[cfg(target_arch = "wasm32")]
pub(crate) mod scratch {
    use std::cell::{Cell, UnsafeCell};

    const SIZE: usize = 1024;

    struct Area {
        bytes: UnsafeCell<[u8; SIZE]>,
        used: Cell<usize>,
        open: Cell<bool>,
    }

    // SAFETY: a proxy-wasm module runs on one thread.
    unsafe impl Sync for Area {}

    static AREA: Area = Area { bytes: UnsafeCell::new([0; SIZE]), used: Cell::new(0), open: Cell::new(false) };

    /// Runs `f` with the area open to the host's allocations, and empties it afterwards (the
    /// values handed out must not outlive `f`).
    pub fn during<T>(f: impl FnOnce() -> T) -> T {
        AREA.used.set(0);
        AREA.open.set(true);
        let result = f();
        AREA.open.set(false);
        AREA.used.set(0);
        result
    }

    pub fn alloc(size: usize) -> Option<*mut u8> {
        let used = AREA.used.get();
        if !AREA.open.get() || size > SIZE - used {
            return None;
        }
        AREA.used.set(used + size);
        // SAFETY: `used + size <= SIZE`: in bounds of the area.
        Some(unsafe { (AREA.bytes.get() as *mut u8).add(used) })
    }

    /// Whether `p` points into the area (and so must not be freed).
    pub fn contains(p: *const u8) -> bool {
        let start = AREA.bytes.get() as *const u8;
        p >= start && p < start.wrapping_add(SIZE)
    }
}
