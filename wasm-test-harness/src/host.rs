//! The host calls: the proxy-wasm ABI v0.2.1 functions a filter commonly imports, and the few
//! WASI functions Envoy provides, defined on a wasmtime `Linker`. Any other function a module
//! imports is linked to a stub that traps with "unimplemented host call: NAME" (see
//! `plugin.rs`), so a test can never pass on a call the harness silently ignored.

use wasmtime::{Caller, Linker};

use crate::abi::{self, unsigned, BufferType, Pairs, Status, StreamMap};
use crate::error::{misbehaved, HostCallError};
use crate::foreign::ForeignCall;
use crate::guest::{read, return_bytes, write, write_u32, write_u64, HostResult};
use crate::outcome::LocalResponse;
use crate::state::HostState;

type C<'a> = Caller<'a, HostState>;

const ENV: &str = "env";
const WASI: &str = "wasi_snapshot_preview1";

/// Every host call the harness implements, as (module, name).
pub const IMPLEMENTED: &[(&str, &str)] = &[
    (ENV, "proxy_log"),
    (ENV, "proxy_get_log_level"),
    (ENV, "proxy_get_current_time_nanoseconds"),
    (ENV, "proxy_set_tick_period_milliseconds"),
    (ENV, "proxy_get_buffer_bytes"),
    (ENV, "proxy_get_buffer_status"),
    (ENV, "proxy_get_header_map_pairs"),
    (ENV, "proxy_set_header_map_pairs"),
    (ENV, "proxy_get_header_map_size"),
    (ENV, "proxy_get_header_map_value"),
    (ENV, "proxy_replace_header_map_value"),
    (ENV, "proxy_add_header_map_value"),
    (ENV, "proxy_remove_header_map_value"),
    (ENV, "proxy_get_property"),
    (ENV, "proxy_set_property"),
    (ENV, "proxy_send_local_response"),
    (ENV, "proxy_set_effective_context"),
    (ENV, "proxy_define_metric"),
    (ENV, "proxy_increment_metric"),
    (ENV, "proxy_record_metric"),
    (ENV, "proxy_get_metric"),
    (ENV, "proxy_call_foreign_function"),
    (WASI, "fd_write"),
    (WASI, "environ_sizes_get"),
    (WASI, "environ_get"),
    (WASI, "args_sizes_get"),
    (WASI, "args_get"),
    (WASI, "clock_time_get"),
    (WASI, "random_get"),
    (WASI, "sched_yield"),
    (WASI, "proc_exit"),
];

const OK: i32 = Status::Ok as i32;
const NOT_FOUND: i32 = Status::NotFound as i32;
const BAD_ARGUMENT: i32 = Status::BadArgument as i32;

/// WASI errno values used here.
const WASI_SUCCESS: i32 = 0;
const WASI_BADF: i32 = 8;

pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    link_logging_and_time(linker)?;
    link_buffers_and_properties(linker)?;
    link_header_maps(linker)?;
    link_stream_control(linker)?;
    link_metrics(linker)?;
    link_foreign_functions(linker)?;
    link_wasi(linker)?;
    Ok(())
}

fn link_logging_and_time(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(ENV, "proxy_log", |mut c: C, level: i32, ptr: i32, size: i32| -> HostResult<i32> {
        let message = read(&mut c, "proxy_log", ptr, size)?;
        let Some(level) = abi::log_level(unsigned(level)) else { return Ok(BAD_ARGUMENT) };
        c.data_mut().log(level, String::from_utf8_lossy(&message).into_owned());
        Ok(OK)
    })?;
    linker.func_wrap(ENV, "proxy_get_log_level", |mut c: C, out: i32| -> HostResult<i32> {
        let level = c.data().log_level as u32;
        write_u32(&mut c, "proxy_get_log_level", out, level)?;
        Ok(OK)
    })?;
    linker.func_wrap(ENV, "proxy_get_current_time_nanoseconds", |mut c: C, out: i32| -> HostResult<i32> {
        let now = c.data().clock_nanos;
        write_u64(&mut c, "proxy_get_current_time_nanoseconds", out, now)?;
        Ok(OK)
    })?;
    linker.func_wrap(ENV, "proxy_set_tick_period_milliseconds", |mut c: C, period: i32| -> HostResult<i32> {
        let state = c.data_mut();
        let root = state.active_root;
        state.roots.entry(root).or_default().tick_period_ms = unsigned(period);
        Ok(OK)
    })?;
    Ok(())
}

/// The configuration buffers (bodies are not modelled: the harness drives headers only).
fn buffer(state: &HostState, buffer_type: i32) -> Option<&[u8]> {
    match abi::buffer_type(unsigned(buffer_type))? {
        BufferType::PluginConfiguration => Some(&state.plugin_configuration),
        BufferType::VmConfiguration => Some(&state.vm_configuration),
        _ => None,
    }
}

fn link_buffers_and_properties(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_get_buffer_bytes",
        |mut c: C, buffer_type: i32, start: i32, max_size: i32, data_out: i32, size_out: i32| -> HostResult<i32> {
            const CALL: &str = "proxy_get_buffer_bytes";
            let Some(buffer) = buffer(c.data(), buffer_type) else { return Ok(NOT_FOUND) };
            let (start, max) = (unsigned(start) as usize, unsigned(max_size) as usize);
            if start > buffer.len() {
                return Ok(BAD_ARGUMENT);
            }
            let bytes = buffer[start..start + max.min(buffer.len() - start)].to_vec();
            if bytes.is_empty() {
                // The ABI: "filled with nullptr if no data is available".
                write_u32(&mut c, CALL, data_out, 0)?;
                write_u32(&mut c, CALL, size_out, 0)?;
            } else {
                return_bytes(&mut c, CALL, &bytes, data_out, size_out)?;
            }
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_buffer_status",
        |mut c: C, buffer_type: i32, length_out: i32, flags_out: i32| -> HostResult<i32> {
            let Some(len) = buffer(c.data(), buffer_type).map(<[u8]>::len) else { return Ok(NOT_FOUND) };
            write_u32(&mut c, "proxy_get_buffer_status", length_out, len as u32)?;
            write_u32(&mut c, "proxy_get_buffer_status", flags_out, 0)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_property",
        |mut c: C, path_ptr: i32, path_size: i32, data_out: i32, size_out: i32| -> HostResult<i32> {
            let path = read(&mut c, "proxy_get_property", path_ptr, path_size)?;
            let Some(value) = c.data().property(&path).map(<[u8]>::to_vec) else { return Ok(NOT_FOUND) };
            return_bytes(&mut c, "proxy_get_property", &value, data_out, size_out)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_property",
        |mut c: C, path_ptr: i32, path_size: i32, value_ptr: i32, value_size: i32| -> HostResult<i32> {
            let path = read(&mut c, "proxy_set_property", path_ptr, path_size)?;
            let value = read(&mut c, "proxy_set_property", value_ptr, value_size)?;
            let state = c.data_mut();
            match state.current_stream() {
                Some(stream) => stream.properties.insert(path, value),
                None => state.plugin_properties.insert(path, value),
            };
            Ok(OK)
        },
    )?;
    Ok(())
}

/// The current stream's map of that type; `None` (NotFound) outside a stream or for maps a
/// stream does not have.
fn stream_map(state: &mut HostState, map_type: i32) -> Option<&mut Pairs> {
    let map = StreamMap::from_abi(unsigned(map_type))?;
    Some(state.current_stream()?.map(map))
}

pub(crate) fn first_value<'a>(pairs: &'a Pairs, key: &[u8]) -> Option<&'a [u8]> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_slice())
}

fn link_header_maps(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_get_header_map_pairs",
        |mut c: C, map_type: i32, data_out: i32, size_out: i32| -> HostResult<i32> {
            let Some(pairs) = stream_map(c.data_mut(), map_type) else { return Ok(NOT_FOUND) };
            let bytes = abi::serialize_pairs(pairs);
            return_bytes(&mut c, "proxy_get_header_map_pairs", &bytes, data_out, size_out)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_header_map_pairs",
        |mut c: C, map_type: i32, ptr: i32, size: i32| -> HostResult<i32> {
            let bytes = read(&mut c, "proxy_set_header_map_pairs", ptr, size)?;
            let pairs = abi::deserialize_pairs(&bytes).map_err(|e| misbehaved("proxy_set_header_map_pairs", e))?;
            let Some(map) = stream_map(c.data_mut(), map_type) else { return Ok(NOT_FOUND) };
            *map = pairs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_header_map_size",
        |mut c: C, map_type: i32, size_out: i32| -> HostResult<i32> {
            let Some(pairs) = stream_map(c.data_mut(), map_type) else { return Ok(NOT_FOUND) };
            let size = abi::serialize_pairs(pairs).len() as u32;
            write_u32(&mut c, "proxy_get_header_map_size", size_out, size)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_header_map_value",
        |mut c: C, map_type: i32, key_ptr: i32, key_size: i32, data_out: i32, size_out: i32| -> HostResult<i32> {
            const CALL: &str = "proxy_get_header_map_value";
            let key = read(&mut c, CALL, key_ptr, key_size)?;
            let Some(pairs) = stream_map(c.data_mut(), map_type) else { return Ok(NOT_FOUND) };
            // Envoy answers the first value of a repeated header.
            let Some(value) = first_value(pairs, &key).map(<[u8]>::to_vec) else { return Ok(NOT_FOUND) };
            return_bytes(&mut c, CALL, &value, data_out, size_out)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_replace_header_map_value",
        |mut c: C, map_type: i32, key_ptr: i32, key_size: i32, value_ptr: i32, value_size: i32| -> HostResult<i32> {
            let key = read(&mut c, "proxy_replace_header_map_value", key_ptr, key_size)?.to_ascii_lowercase();
            let value = read(&mut c, "proxy_replace_header_map_value", value_ptr, value_size)?;
            let Some(pairs) = stream_map(c.data_mut(), map_type) else { return Ok(NOT_FOUND) };
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_add_header_map_value",
        |mut c: C, map_type: i32, key_ptr: i32, key_size: i32, value_ptr: i32, value_size: i32| -> HostResult<i32> {
            let key = read(&mut c, "proxy_add_header_map_value", key_ptr, key_size)?.to_ascii_lowercase();
            let value = read(&mut c, "proxy_add_header_map_value", value_ptr, value_size)?;
            let Some(pairs) = stream_map(c.data_mut(), map_type) else { return Ok(NOT_FOUND) };
            pairs.push((key, value));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_remove_header_map_value",
        |mut c: C, map_type: i32, key_ptr: i32, key_size: i32| -> HostResult<i32> {
            let key = read(&mut c, "proxy_remove_header_map_value", key_ptr, key_size)?.to_ascii_lowercase();
            let Some(pairs) = stream_map(c.data_mut(), map_type) else { return Ok(NOT_FOUND) };
            pairs.retain(|(k, _)| *k != key);
            Ok(OK)
        },
    )?;
    Ok(())
}

fn link_stream_control(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_send_local_response",
        |mut c: C,
         status: i32,
         details_ptr: i32,
         details_size: i32,
         body_ptr: i32,
         body_size: i32,
         headers_ptr: i32,
         headers_size: i32,
         grpc_status: i32|
         -> HostResult<i32> {
            const CALL: &str = "proxy_send_local_response";
            let details = read(&mut c, CALL, details_ptr, details_size)?;
            let body = read(&mut c, CALL, body_ptr, body_size)?;
            let headers = read(&mut c, CALL, headers_ptr, headers_size)?;
            let headers = abi::deserialize_pairs(&headers).map_err(|e| misbehaved(CALL, format!("headers: {e}")))?;
            let Some(stream) = c.data_mut().current_stream() else {
                return Err(misbehaved(CALL, "called outside a stream callback"));
            };
            if stream.local_response.is_some() {
                return Ok(BAD_ARGUMENT);
            }
            let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            stream.local_response = Some(LocalResponse {
                status: unsigned(status),
                details: lossy(&details),
                headers: headers.iter().map(|(k, v)| (lossy(k), lossy(v))).collect(),
                body,
                grpc_status,
            });
            Ok(OK)
        },
    )?;
    linker.func_wrap(ENV, "proxy_set_effective_context", |mut c: C, context_id: i32| -> HostResult<i32> {
        let id = unsigned(context_id);
        let state = c.data_mut();
        if state.roots.contains_key(&id) {
            state.current = None;
            state.active_root = id;
        } else if let Some(stream) = state.streams.get(&id) {
            state.active_root = stream.root;
            state.current = Some(id);
        } else {
            return Ok(BAD_ARGUMENT);
        }
        Ok(OK)
    })?;
    Ok(())
}

fn link_metrics(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_define_metric",
        |mut c: C, metric_type: i32, name_ptr: i32, name_size: i32, id_out: i32| -> HostResult<i32> {
            let name = read(&mut c, "proxy_define_metric", name_ptr, name_size)?;
            let Some(kind) = abi::metric_type(unsigned(metric_type)) else { return Ok(BAD_ARGUMENT) };
            let id = c.data_mut().metrics.define(kind, String::from_utf8_lossy(&name).into_owned());
            write_u32(&mut c, "proxy_define_metric", id_out, id)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(ENV, "proxy_increment_metric", |mut c: C, id: i32, offset: i64| -> HostResult<i32> {
        Ok(status_of(c.data_mut().metrics.increment(unsigned(id), offset)))
    })?;
    linker.func_wrap(ENV, "proxy_record_metric", |mut c: C, id: i32, value: i64| -> HostResult<i32> {
        Ok(status_of(c.data_mut().metrics.record(unsigned(id), value as u64)))
    })?;
    linker.func_wrap(ENV, "proxy_get_metric", |mut c: C, id: i32, value_out: i32| -> HostResult<i32> {
        let Some(value) = c.data_mut().metrics.get(unsigned(id)) else { return Ok(NOT_FOUND) };
        write_u64(&mut c, "proxy_get_metric", value_out, value)?;
        Ok(OK)
    })?;
    Ok(())
}

fn status_of(result: Option<Result<(), ()>>) -> i32 {
    match result {
        None => NOT_FOUND,
        Some(Ok(())) => OK,
        Some(Err(())) => BAD_ARGUMENT,
    }
}

/// The WASI functions Envoy gives a proxy-wasm module: output goes to the log, the
/// environment and arguments are empty, the clock is the plugin's clock.
fn link_wasi(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut c: C, fd: i32, iovs: i32, iovs_len: i32, written_out: i32| -> HostResult<i32> {
            const CALL: &str = "fd_write";
            if fd != 1 && fd != 2 {
                return Ok(WASI_BADF);
            }
            let count = unsigned(iovs_len);
            let table =
                read(&mut c, CALL, iovs, count.checked_mul(8).ok_or_else(|| misbehaved(CALL, "iovec count"))? as i32)?;
            let mut total = 0u32;
            for iov in table.chunks_exact(8) {
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                let bytes = read(&mut c, CALL, ptr, len)?;
                c.data_mut().output(fd == 2, &bytes);
                total = total.wrapping_add(bytes.len() as u32);
            }
            write_u32(&mut c, CALL, written_out, total)?;
            Ok(WASI_SUCCESS)
        },
    )?;
    for (sizes, values) in [("environ_sizes_get", "environ_get"), ("args_sizes_get", "args_get")] {
        linker.func_wrap(WASI, sizes, move |mut c: C, count_out: i32, size_out: i32| -> HostResult<i32> {
            write_u32(&mut c, "environ_sizes_get/args_sizes_get", count_out, 0)?;
            write_u32(&mut c, "environ_sizes_get/args_sizes_get", size_out, 0)?;
            Ok(WASI_SUCCESS)
        })?;
        linker.func_wrap(WASI, values, |_: C, _: i32, _: i32| -> HostResult<i32> { Ok(WASI_SUCCESS) })?;
    }
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut c: C, _clock: i32, _precision: i64, out: i32| -> HostResult<i32> {
            let now = c.data().clock_nanos;
            write_u64(&mut c, "clock_time_get", out, now)?;
            Ok(WASI_SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "random_get", |mut c: C, ptr: i32, len: i32| -> HostResult<i32> {
        // Deterministic (xorshift), so a test run can be repeated exactly.
        // Reading first checks the range, so a bogus length never allocates more than memory.
        let mut bytes = read(&mut c, "random_get", ptr, len)?;
        let state = &mut c.data_mut().random_state;
        for b in &mut bytes {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *b = *state as u8;
        }
        write(&mut c, "random_get", ptr, &bytes)?;
        Ok(WASI_SUCCESS)
    })?;
    linker.func_wrap(WASI, "sched_yield", |_: C| -> HostResult<i32> { Ok(WASI_SUCCESS) })?;
    linker.func_wrap(WASI, "proc_exit", |_: C, code: i32| -> HostResult<()> {
        Err(wasmtime::Error::new(HostCallError::ProcExit { code }))
    })?;
    Ok(())
}

/// The error a stub for `module.name` returns when the module calls it.
/// As Envoy: an unregistered name is NotFound; with results pointer 0 the caller wants only
/// the status, and nothing is allocated in the module.
fn link_foreign_functions(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_call_foreign_function",
        |mut c: C,
         name_ptr: i32,
         name_size: i32,
         args_ptr: i32,
         args_size: i32,
         data_out: i32,
         size_out: i32|
         -> HostResult<i32> {
            const CALL: &str = "proxy_call_foreign_function";
            let name = read(&mut c, CALL, name_ptr, name_size)?;
            let arguments = read(&mut c, CALL, args_ptr, args_size)?;
            let Some(function) = c.data().foreign_functions.get(name.as_slice()).cloned() else { return Ok(NOT_FOUND) };
            match function(&ForeignCall { state: c.data() }, &arguments) {
                Err(status) => Ok(status as i32),
                Ok(result) => {
                    if data_out != 0 {
                        return_bytes(&mut c, CALL, &result, data_out, size_out)?;
                    }
                    Ok(OK)
                }
            }
        },
    )?;
    Ok(())
}

pub(crate) fn unimplemented(module: &str, name: &str) -> wasmtime::Error {
    let name = if module == ENV { name.to_string() } else { format!("{module}.{name}") };
    wasmtime::Error::new(HostCallError::Unimplemented { name })
}
