//! The module's side of memory the host fills: `proxy_on_memory_allocate`, and the scratch
//! area that serves it during a request.

/// The host allocates here the values it returns (header values, properties, configuration).
/// During a request, small values come from a per-request scratch area (no heap allocation on
/// the fast path); anything else from the heap, freed by `hostcalls::HostBytes`.
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
