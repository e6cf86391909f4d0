//! The shared decision table through the compiled module: one plugin per configuration, many
//! streams on it, counters compared before and after each stream (with a tick, which flushes
//! `checked`).

#[path = "../common/cases.rs"]
mod cases;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use wasm_test_harness::{Outcome, Plugin};

use cases::{Case, Observed};

fn run(plugin: &mut Plugin, case: &Case) -> Result<Observed, String> {
    let before = plugin.metrics();
    let mut request = plugin.request().protocol(&case.protocol).without_header(":path");
    if let Some(sni) = &case.sni {
        request = request.sni(sni);
    }
    if let Some(authority) = &case.authority {
        request = request.authority(authority);
    }
    if let Some(path) = &case.path {
        request = request.path(path);
    }
    let outcome: Outcome = request.send().map_err(|e| format!("{}: {e}", case.name))?;
    plugin.tick().map_err(|e| format!("{}: tick: {e}", case.name))?;
    let after = plugin.metrics();
    let counter_deltas: BTreeMap<String, u64> = cases::COUNTERS
        .iter()
        .map(|&name| {
            let delta = after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
            (name.to_string(), delta)
        })
        .collect();
    let reply = outcome.local_response.clone();
    Ok(Observed {
        passed: outcome.passed(),
        status: outcome.status(),
        headers: reply.as_ref().map(|r| r.headers.clone()).unwrap_or_default(),
        body: reply.map(|r| r.body_text()).unwrap_or_default(),
        counter_deltas,
    })
}

/// `with_cel`: the harness plays Envoy's CEL foreign functions, so every request is put to the
/// root's CEL expression once; without, it is a host with no CEL.
fn follows_the_decision_table(with_cel: bool) {
    let (configs, table) = cases::load();
    let mut plugins: BTreeMap<&str, Plugin> = BTreeMap::new();
    let mut cel_hosts = Vec::new();
    let mut problems = Vec::new();
    for case in &table {
        let json = configs.get(&case.config).unwrap_or_else(|| panic!("{}: no config {:?}", case.name, case.config));
        let plugin = plugins.entry(case.config.as_str()).or_insert_with(|| {
            if !with_cel {
                return super::load(json);
            }
            let (plugin, seen) = super::cel_check::load_with_envoy_cel(json);
            cel_hosts.push(seen);
            plugin
        });
        match run(plugin, case) {
            Ok(seen) => problems.extend(case.check(&seen)),
            Err(e) => problems.push(e),
        }
    }
    if with_cel {
        let evaluations: u32 = cel_hosts.iter().map(|s| s.evaluations.load(Ordering::Relaxed)).sum();
        assert_eq!(evaluations as usize, table.len(), "every request is put to the CEL expression once");
    }
    cases::assert_no_problems(
        if with_cel { "wasm, Envoy's CEL played by the harness" } else { "wasm" },
        problems,
        table.len(),
    );
}

#[test]
fn compiled_module_follows_the_decision_table() {
    follows_the_decision_table(false);
}

#[test]
fn compiled_module_with_envoys_cel_check_follows_the_decision_table() {
    follows_the_decision_table(true);
}
