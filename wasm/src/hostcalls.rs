//! The host functions sni-guard imports, and safe wrappers around them.

use std::ptr::null_mut;

use crate::abi::status::OK;
use crate::abi::{buffer_type, map_type, metric_type, NO_GRPC_STATUS};

extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        additional_headers_map_data: *const u8,
        additional_headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_metric_id: *mut u32)
        -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_property(path_data: *const u8, path_size: usize, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        return_results_data: *mut *mut u8,
        return_results_size: *mut usize,
    ) -> u32;
}

/// Bytes the host wrote into memory it allocated through `proxy_on_memory_allocate`; freed on
/// drop unless they live in the per-request scratch area.
pub struct HostBytes {
    data: *mut u8,
    size: usize,
}

impl AsRef<[u8]> for HostBytes {
    fn as_ref(&self) -> &[u8] {
        if self.data.is_null() {
            return &[];
        }
        // SAFETY: the host wrote `size` bytes at `data`, allocated for us with that size.
        unsafe { std::slice::from_raw_parts(self.data, self.size) }
    }
}

impl Drop for HostBytes {
    fn drop(&mut self) {
        if !self.data.is_null() && !crate::allocator::scratch::contains(self.data) {
            // SAFETY: allocated by `proxy_on_memory_allocate` as a Vec<u8> of capacity `size`.
            drop(unsafe { Vec::from_raw_parts(self.data, self.size, self.size) });
        }
    }
}

/// Runs a host call that returns bytes: its status, and the bytes (empty unless Ok).
fn call_returning_bytes(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> (u32, HostBytes) {
    let mut data = null_mut();
    let mut size = 0;
    let status = call(&mut data, &mut size);
    (status, HostBytes { data, size })
}

/// As `call_returning_bytes`; `None` for any status but Ok (NotFound above all).
fn returned_bytes(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Option<HostBytes> {
    let (status, bytes) = call_returning_bytes(call);
    (status == OK).then_some(bytes)
}

/// Calls one of the host's foreign functions; null result pointers ask for the status only.
fn call_foreign_function(name: &str, arguments: &[u8], results: *mut *mut u8, results_size: *mut usize) -> u32 {
    // SAFETY: pointers and lengths of live buffers; the result pointers are null or outlive
    // the call (the callers' locals).
    unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            arguments.as_ptr(),
            arguments.len(),
            results,
            results_size,
        )
    }
}

pub fn log(level: u32, message: &str) {
    // SAFETY: pointer and length of a live str.
    unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

pub fn log_level() -> Option<u32> {
    let mut level = 0;
    // SAFETY: `level` outlives the call.
    (unsafe { proxy_get_log_level(&mut level) } == OK).then_some(level)
}

pub fn plugin_configuration(size: usize) -> Option<HostBytes> {
    // SAFETY: the out-pointers outlive the call.
    returned_bytes(|data, len| unsafe { proxy_get_buffer_bytes(buffer_type::PLUGIN_CONFIGURATION, 0, size, data, len) })
}

/// `path` in the ABI's form: each segment followed by a NUL, e.g. `b"request\0protocol\0"`.
pub fn property(path: &[u8]) -> Option<HostBytes> {
    // SAFETY: pointer and length of a live slice; out-pointers outlive the call.
    returned_bytes(|data, len| unsafe { proxy_get_property(path.as_ptr(), path.len(), data, len) })
}

pub fn request_header(name: &str) -> Option<HostBytes> {
    // SAFETY: as above.
    returned_bytes(|data, len| unsafe {
        proxy_get_header_map_value(map_type::HTTP_REQUEST_HEADERS, name.as_ptr(), name.len(), data, len)
    })
}

pub fn send_local_response(status: u32, details: &str, headers: &[(&str, &str)], body: &[u8]) {
    let headers = serialize_map(headers);
    // SAFETY: pointers and lengths of live buffers.
    unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            NO_GRPC_STATUS,
        )
    };
}

pub fn define_counter(name: &str) -> Option<u32> {
    let mut id = 0;
    // SAFETY: pointer and length of a live str; `id` outlives the call.
    (unsafe { proxy_define_metric(metric_type::COUNTER, name.as_ptr(), name.len(), &mut id) } == OK).then_some(id)
}

pub fn increment_metric(id: u32, by: u64) {
    // SAFETY: plain values.
    unsafe { proxy_increment_metric(id, by.min(i64::MAX as u64) as i64) };
}

pub fn set_tick_period_milliseconds(period: u32) {
    // SAFETY: plain value.
    unsafe { proxy_set_tick_period_milliseconds(period) };
}

/// Compiles a CEL expression with Envoy's `expr_create`; its token, or the status Envoy
/// answered (NotFound: a host without CEL; BadArgument: an expression it cannot compile).
pub fn create_expression(text: &str) -> Result<u32, u32> {
    let (status, token) =
        call_returning_bytes(|data, len| call_foreign_function("expr_create", text.as_bytes(), data, len));
    match (status, <[u8; 4]>::try_from(token.as_ref())) {
        (OK, Ok(token)) => Ok(u32::from_le_bytes(token)),
        (OK, Err(_)) => Err(OK),
        (status, _) => Err(status),
    }
}

/// Evaluates a created CEL expression with Envoy's `expr_evaluate`: its value, or the status
/// Envoy answered (SerializationFailure for `null`: nothing was allocated in the module).
pub fn evaluate_expression(token: u32) -> Result<HostBytes, u32> {
    let (status, value) =
        call_returning_bytes(|data, len| call_foreign_function("expr_evaluate", &token.to_le_bytes(), data, len));
    if status == OK {
        Ok(value)
    } else {
        Err(status)
    }
}

/// Sets a property of the current stream: in Envoy, filter state `wasm.<path>`.
pub fn set_property(path: &str, value: &[u8]) {
    // SAFETY: pointers and lengths of live buffers.
    unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) };
}

/// The host's clock, in nanoseconds since the epoch (0 if it has none).
pub fn current_time_nanos() -> u64 {
    let mut now = 0;
    // SAFETY: `now` outlives the call.
    unsafe { proxy_get_current_time_nanoseconds(&mut now) };
    now
}

/// The ABI's header map: pair count, then each key and value size (u32, little endian), then
/// each key and value followed by a NUL.
fn serialize_map(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}
