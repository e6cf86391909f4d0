//! The decision table run natively, through `sni_guard::stream::on_request_headers` with a fake
//! host. `tests/wasm/decision_table.rs` runs the same table through the compiled module.

#[path = "common/cases.rs"]
mod cases;

use sni_guard::config::Settings;
use sni_guard::stream::{on_request_headers, Action};
use sni_guard::testing::FakeHost;

use cases::{Case, Observed};

/// `with_cel`: the host applies the same-name test this configuration requires, as Envoy
/// evaluates the module's CEL expression; without, it has no CEL (every request takes the full
/// check).
fn run(settings: &Settings, case: &Case, with_cel: bool) -> Observed {
    let mut host = FakeHost {
        sni: case.sni.clone().map(String::into_bytes),
        protocol: case.protocol.clone(),
        same_name_test: with_cel.then_some(settings.same_name),
        ..FakeHost::default()
    };
    for (name, value) in [(":authority", &case.authority), (":path", &case.path)] {
        if let Some(value) = value {
            host.headers.insert(name.into(), value.clone().into_bytes());
        }
    }
    let action = on_request_headers(settings, &mut host);
    let (status, headers, body) = match host.reply {
        Some((status, headers, body)) => (Some(status), headers, body),
        None => (None, Vec::new(), Vec::new()),
    };
    Observed {
        passed: action == Action::Continue && status.is_none(),
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        counter_deltas: host.counters,
    }
}

fn follows_the_decision_table(with_cel: bool) {
    let (configs, table) = cases::load();
    let mut problems = Vec::new();
    for case in &table {
        let json = configs.get(&case.config).unwrap_or_else(|| panic!("{}: no config {:?}", case.name, case.config));
        let settings = Settings::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        problems.extend(case.check(&run(&settings, case, with_cel)));
    }
    cases::assert_no_problems(if with_cel { "native, host with CEL" } else { "native" }, problems, table.len());
}

#[test]
fn native_logic_follows_the_decision_table() {
    follows_the_decision_table(false);
}

#[test]
fn native_logic_with_envoys_cel_check_follows_the_decision_table() {
    follows_the_decision_table(true);
}
