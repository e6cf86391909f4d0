//! Reading and writing the module's linear memory from a host call. Every pointer and size
//! comes from the module, so every access is bounds-checked and a bad one is an error naming
//! the host call, never a panic of the harness.

use wasmtime::{Caller, Memory};

use crate::error::misbehaved;
use crate::state::HostState;

pub(crate) type HostResult<T> = wasmtime::Result<T>;

fn memory(caller: &Caller<'_, HostState>, call: &'static str) -> HostResult<Memory> {
    caller.data().memory.ok_or_else(|| misbehaved(call, "the module has no exported memory"))
}

fn range(call: &'static str, ptr: i32, len: usize, memory_size: usize) -> HostResult<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    match start.checked_add(len) {
        Some(end) if end <= memory_size => Ok(start..end),
        _ => {
            Err(misbehaved(call, format!("{len} bytes at 0x{start:x} are outside linear memory ({memory_size} bytes)")))
        }
    }
}

/// Copies `len` bytes at `ptr` out of the module.
pub(crate) fn read(caller: &mut Caller<'_, HostState>, call: &'static str, ptr: i32, len: i32) -> HostResult<Vec<u8>> {
    let memory = memory(caller, call)?;
    let data = memory.data(&*caller);
    let range = range(call, ptr, len as u32 as usize, data.len())?;
    Ok(data[range].to_vec())
}

pub(crate) fn write(caller: &mut Caller<'_, HostState>, call: &'static str, ptr: i32, bytes: &[u8]) -> HostResult<()> {
    let memory = memory(caller, call)?;
    let data = memory.data_mut(&mut *caller);
    let range = range(call, ptr, bytes.len(), data.len())?;
    data[range].copy_from_slice(bytes);
    Ok(())
}

pub(crate) fn write_u32(
    caller: &mut Caller<'_, HostState>,
    call: &'static str,
    ptr: i32,
    value: u32,
) -> HostResult<()> {
    write(caller, call, ptr, &value.to_le_bytes())
}

pub(crate) fn write_u64(
    caller: &mut Caller<'_, HostState>,
    call: &'static str,
    ptr: i32,
    value: u64,
) -> HostResult<()> {
    write(caller, call, ptr, &value.to_le_bytes())
}

/// Hands bytes to the module the way Envoy does: allocate them in the module's memory with its
/// allocator (`proxy_on_memory_allocate` or `malloc`), copy them there, and store the pointer
/// and size at the two out-pointers. The module owns (and frees) the allocation.
pub(crate) fn return_bytes(
    caller: &mut Caller<'_, HostState>,
    call: &'static str,
    bytes: &[u8],
    ptr_out: i32,
    size_out: i32,
) -> HostResult<()> {
    let allocator = caller.data().allocator.clone().ok_or_else(|| misbehaved(call, "the module has no allocator"))?;
    let size = i32::try_from(bytes.len()).map_err(|_| misbehaved(call, "value larger than 2 GiB"))?;
    let ptr = allocator.call(&mut *caller, size)?;
    if ptr == 0 && !bytes.is_empty() {
        return Err(misbehaved(call, format!("the module's allocator returned null for {size} bytes")));
    }
    write(caller, call, ptr, bytes)?;
    write_u32(caller, call, ptr_out, ptr as u32)?;
    write_u32(caller, call, size_out, size as u32)
}
