//! sni-guard: a proxy-wasm HTTP filter that answers `421 Misdirected Request` when a request's
//! `:authority` belongs to another gateway server than the TLS SNI of its connection.
//!
//! The decision logic (host names, server matching, configuration, the per-request handler)
//! is plain Rust, tested natively and shared with the `sni-guard` command-line tool. The
//! proxy-wasm ABI glue lives in `wasm/` and is compiled only for WebAssembly.

pub mod cel;
pub mod config;
pub mod config_json;
pub mod exempt;
pub mod host_name;
pub mod json;
pub mod log_limit;
pub mod metrics;
pub mod server_table;
pub mod stream;
#[doc(hidden)]
pub mod testing;
pub mod verdict;

#[cfg(target_arch = "wasm32")]
mod wasm;
