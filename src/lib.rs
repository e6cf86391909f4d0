//! sni-guard: a proxy-wasm HTTP filter that answers `421 Misdirected Request` when a request's
//! `:authority` belongs to another gateway server than the TLS SNI of its connection.
//!
//! This crate is the decision logic (host names, server matching, configuration, the
//! per-request handler): plain Rust, tested natively and shared with the `sni-guard`
//! command-line tool. The proxy-wasm module is the `sni-guard-wasm` crate (`wasm/`), the ABI
//! glue around it; nothing here knows of the ABI (ARCHITECTURE.md).
//!
//! Features, both off in the module: `serde` derives `Serialize` and `Deserialize` for the
//! configuration types (the CLI writes configurations, tests compare readers); `testing` adds
//! the test doubles (`testing::FakeHost`, `cel::evaluate`).

// A panic in the module aborts the VM for every request on that worker: the filter's own code
// has no unwrap, expect or panic (tests may).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cel;
pub mod config;
pub mod config_json;
pub mod exempt;
pub mod host_name;
pub mod json;
pub mod liveness;
pub mod log_limit;
pub mod metrics;
mod name_index;
pub mod server_table;
pub mod stream;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod verdict;
