//! What can go wrong, from the harness's side (`HarnessError`, returned to tests) and from
//! inside a host call (`HostCallError`, which stops the module's call and becomes a
//! `HarnessError` once wasmtime hands it back).

use std::fmt;
use std::path::PathBuf;

use crate::outcome::LogLine;

/// Everything a test can be told went wrong. Each variant's message is meant to be read in a
/// failed test's output, so it names the export, host call or file involved.
#[derive(Debug)]
pub enum HarnessError {
    /// The module file does not exist: usually the build did not run.
    ModuleNotFound { path: PathBuf, hint: &'static str },
    /// The bytes are not a WebAssembly module (or WAT) wasmtime accepts.
    Compile { detail: String },
    /// The module imports something the harness cannot link (a memory, a global, a function
    /// under a known name with another signature).
    Link { detail: String },
    /// An export Envoy requires is missing: the memory, the allocator, the ABI version marker.
    MissingExport { name: String },
    /// An export has another signature than the ABI's.
    ExportSignature { name: String, detail: String },
    /// The module trapped (a Rust panic ends in a trap): which export, the trap, what the
    /// module wrote to stderr just before (a panic message), and the wasm backtrace.
    Trap { export: String, trap: String, stderr: String, backtrace: String },
    /// The module called a host function the harness does not implement.
    UnimplementedHostCall { name: String, export: String },
    /// The module passed the host something invalid: an out-of-bounds pointer, a malformed
    /// map. Envoy answers these with an error status; the harness stops, so the bug shows.
    GuestMisbehaved { export: String, call: String, detail: String },
    /// The module called WASI `proc_exit`.
    ProcExit { export: String, code: i32 },
    /// `proxy_on_vm_start` returned false.
    VmStartRefused { logs: Vec<LogLine> },
    /// `proxy_on_configure` returned false: the plugin does not start. `logs` has what the
    /// module logged while refusing.
    ConfigurationRefused { logs: Vec<LogLine> },
    /// A callback returned a value the ABI does not define (or the harness does not model).
    BadReturn { export: String, value: i32 },
    /// The VM trapped earlier; like Envoy, the harness does not call into a crashed VM again.
    Crashed { first: String },
    /// `tick()` was called but the module never set a tick period.
    TickNotScheduled,
    /// A stream id that is not open on this plugin.
    UnknownStream { id: u32 },
    /// A root context id the VM has not started (`Plugin::add_root` makes one).
    UnknownRoot { id: u32 },
    /// Anything else wasmtime reported.
    Engine { detail: String },
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HarnessError::*;
        match self {
            ModuleNotFound { path, hint } => write!(f, "wasm module {} not found: {hint}", path.display()),
            Compile { detail } => write!(f, "the module does not compile: {detail}"),
            Link { detail } => write!(f, "the module's imports cannot be linked: {detail}"),
            MissingExport { name } => write!(f, "the module does not export {name}, which Envoy requires"),
            ExportSignature { name, detail } => write!(f, "export {name} has the wrong signature: {detail}"),
            Trap { export, trap, stderr, backtrace } => {
                write!(f, "the module trapped in {export}: {trap}")?;
                if !stderr.is_empty() {
                    write!(f, "\nmodule stderr: {}", stderr.trim_end())?;
                }
                if !backtrace.is_empty() {
                    write!(f, "\n{}", backtrace.trim_end())?;
                }
                Ok(())
            }
            UnimplementedHostCall { name, export } => {
                write!(f, "unimplemented host call: {name} (called during {export})")
            }
            GuestMisbehaved { export, call, detail } => {
                write!(f, "the module passed {call} bad arguments during {export}: {detail}")
            }
            ProcExit { export, code } => write!(f, "the module called proc_exit({code}) during {export}"),
            VmStartRefused { logs } => write!(f, "proxy_on_vm_start returned false{}", show_logs(logs)),
            ConfigurationRefused { logs } => write!(f, "proxy_on_configure returned false{}", show_logs(logs)),
            BadReturn { export, value } => write!(f, "{export} returned {value}, which the ABI does not define here"),
            Crashed { first } => write!(f, "the VM crashed earlier and is not called again: {first}"),
            TickNotScheduled => f.write_str("tick(): the module never called proxy_set_tick_period_milliseconds"),
            UnknownStream { id } => write!(f, "stream {id} is not open"),
            UnknownRoot { id } => write!(f, "root context {id} was not started (Plugin::add_root)"),
            Engine { detail } => write!(f, "wasmtime: {detail}"),
        }
    }
}

fn show_logs(logs: &[LogLine]) -> String {
    logs.iter().map(|l| format!("\n  {l}")).collect()
}

impl HarnessError {
    /// The lines the module logged while refusing to start, if this is such a refusal.
    pub fn logs(&self) -> &[LogLine] {
        match self {
            HarnessError::ConfigurationRefused { logs } | HarnessError::VmStartRefused { logs } => logs,
            _ => &[],
        }
    }
}

impl std::error::Error for HarnessError {}

/// Why a host call stopped the module's call: returned from the host function as an error, so
/// wasmtime unwinds the module and hands it back to `Plugin`, which turns it into a
/// `HarnessError`.
#[derive(Debug)]
pub(crate) enum HostCallError {
    Unimplemented { name: String },
    GuestMisbehaved { call: &'static str, detail: String },
    ProcExit { code: i32 },
}

impl fmt::Display for HostCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostCallError::Unimplemented { name } => write!(f, "unimplemented host call: {name}"),
            HostCallError::GuestMisbehaved { call, detail } => write!(f, "{call}: {detail}"),
            HostCallError::ProcExit { code } => write!(f, "proc_exit({code})"),
        }
    }
}

impl std::error::Error for HostCallError {}

/// Shorthand for a host call's complaint about the module's arguments.
pub(crate) fn misbehaved(call: &'static str, detail: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(HostCallError::GuestMisbehaved { call, detail: detail.into() })
}
