//! wasm-test-harness: runs a compiled proxy-wasm filter in wasmtime and plays Envoy's side of
//! the proxy-wasm ABI v0.2.1, so tests drive the real `.wasm` artifact.
//!
//! ```no_run
//! use wasm_test_harness::Plugin;
//! let mut plugin = Plugin::load("dist/sni-guard.wasm", "{}")?;
//! let outcome = plugin.request().sni("a.example.com").authority("b.example.com").send()?;
//! assert_eq!(outcome.status(), Some(421));
//! # Ok::<(), wasm_test_harness::HarnessError>(())
//! ```
//!
//! - `abi`: the ABI's constants and encodings; `host`: the host calls; `guest`: checked access
//!   to the module's memory; `state`: what the host knows; `plugin`: the lifecycle Envoy drives;
//!   `request` and `outcome`: what tests write and read.

pub mod abi;
mod error;
mod foreign;
mod guest;
mod host;
mod outcome;
mod plugin;
mod request;
mod state;

pub use abi::{Action, LogLevel};
pub use error::HarnessError;
pub use foreign::{ForeignCall, ForeignFunction};
pub use host::IMPLEMENTED as IMPLEMENTED_HOST_CALLS;
pub use outcome::{LocalResponse, LogLine, Outcome};
pub use plugin::{Plugin, PluginBuilder, StreamId};
pub use request::{Request, RequestBuilder, PROTOCOL, SNI};

/// The module a test suite runs: the path in the environment variable `env_var` (for
/// sni-guard, `SNI_GUARD_WASM`) if set and non-empty, else `default`. Named here so every test
/// file resolves it the same way.
pub fn module_path(env_var: &str, default: impl AsRef<std::path::Path>) -> std::path::PathBuf {
    match std::env::var_os(env_var) {
        Some(path) if !path.is_empty() => path.into(),
        _ => default.as_ref().to_path_buf(),
    }
}
