//! sni-guard's compiled module (`dist/sni-guard.wasm`, or the module `$SNI_GUARD_WASM` names)
//! driven through the proxy-wasm ABI by wasm-test-harness. `make test-wasm` runs these.

mod bad_configurations;
mod bad_requests;
mod cel_check;
mod decision_table;
mod memory;
mod roots;
mod streams;

use std::path::PathBuf;

use wasm_test_harness::{LogLevel, Plugin};

/// The module under test.
pub fn module() -> PathBuf {
    wasm_test_harness::module_path("SNI_GUARD_WASM", concat!(env!("CARGO_MANIFEST_DIR"), "/dist/sni-guard.wasm"))
}

/// Loads the module with a configuration that must be accepted.
pub fn load(configuration: &str) -> Plugin {
    load_at(configuration, LogLevel::Info)
}

pub fn load_at(configuration: &str, level: LogLevel) -> Plugin {
    Plugin::builder(module())
        .configuration(configuration)
        .log_level(level)
        .load()
        .unwrap_or_else(|e| panic!("loading {} with {configuration:?}: {e}", module().display()))
}

/// A missing module fails the suite: it is never skipped.
#[test]
fn the_module_under_test_exists() {
    let path = module();
    assert!(
        path.is_file(),
        "{} does not exist: run `make build` (or set SNI_GUARD_WASM to a built module)",
        path.display()
    );
}

/// The exports Envoy needs are there, and nothing the module does at start-up is a host call
/// the harness lacks (that would have failed `load`).
#[test]
fn starts_and_asks_for_a_tick() {
    let mut plugin = load("");
    assert!(plugin.exports_function("proxy_on_request_headers"));
    assert_eq!(plugin.tick_period(), Some(std::time::Duration::from_secs(1)));
    assert!(plugin.logs().iter().all(|l| (l.level as u32) < LogLevel::Warn as u32), "{:?}", plugin.logs());
}
