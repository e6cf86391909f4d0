//! The shared decision table (`tests/cases/requests.json`): loaded and checked the same way by
//! the native test (`tests/decision_table.rs`) and the wasm test (`tests/wasm/decision_table.rs`),
//! so the Rust logic and the compiled module cannot drift apart unnoticed.

use std::collections::BTreeMap;

use serde::Deserialize;

pub const COUNTERS: [&str; 3] = ["sni_guard.checked", "sni_guard.rejected", "sni_guard.dry_run_mismatch"];

#[derive(Debug, Deserialize)]
struct Table {
    configs: BTreeMap<String, Option<serde_json::Value>>,
    cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub config: String,
    pub sni: Option<String>,
    pub authority: Option<String>,
    pub path: Option<String>,
    pub protocol: String,
    /// "pass" or 421.
    pub expect: serde_json::Value,
    /// The counter that moves besides `checked`, without its `sni_guard.` prefix.
    pub counter: Option<String>,
    /// The expected 421 body.
    #[serde(default)]
    pub body: Option<String>,
    /// Whether the 421 must carry `connection: close`.
    #[serde(default)]
    pub connection_close: Option<bool>,
}

/// What a runner saw for one case.
#[derive(Debug, Default)]
pub struct Observed {
    /// The request went on (action Continue and no local response).
    pub passed: bool,
    pub status: Option<u32>,
    pub headers: Vec<(String, String)>,
    /// The reply body, non-UTF-8 bytes replaced (readable in a failure).
    pub body: String,
    /// How much each counter moved, with `checked` flushed (a tick, natively a flush).
    pub counter_deltas: BTreeMap<String, u64>,
}

/// The configurations by name, as the JSON text the plugin receives ("" for null), and the cases.
pub fn load() -> (BTreeMap<String, String>, Vec<Case>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases/requests.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let table: Table = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let configs =
        table.configs.into_iter().map(|(name, json)| (name, json.map_or(String::new(), |j| j.to_string()))).collect();
    (configs, table.cases)
}

impl Case {
    pub fn expects_421(&self) -> bool {
        match &self.expect {
            serde_json::Value::String(s) if s == "pass" => false,
            serde_json::Value::Number(n) if n.as_u64() == Some(421) => true,
            other => panic!("case {:?}: expect must be \"pass\" or 421, not {other}", self.name),
        }
    }

    /// Every difference between what the case expects and what was observed.
    pub fn check(&self, seen: &Observed) -> Vec<String> {
        let mut problems = Vec::new();
        let mut expect = |ok: bool, what: String| {
            if !ok {
                problems.push(format!("{}: {what}", self.name));
            }
        };
        if self.expects_421() {
            expect(!seen.passed && seen.status == Some(421), format!("expected 421, got {seen:?}"));
            let header = |name: &str| seen.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            expect(
                header("content-type") == Some("text/plain; charset=utf-8"),
                format!("content-type: {:?}", header("content-type")),
            );
            if let Some(close) = self.connection_close {
                expect(
                    (header("connection") == Some("close")) == close,
                    format!("connection header: {:?}", header("connection")),
                );
            }
            if let Some(body) = &self.body {
                expect(seen.body == *body, format!("body {:?}", seen.body));
            }
        } else {
            expect(seen.passed && seen.status.is_none(), format!("expected pass, got {seen:?}"));
        }
        for name in COUNTERS {
            let moved = seen.counter_deltas.get(name).copied().unwrap_or(0);
            let wanted = match &self.counter {
                _ if name == "sni_guard.checked" => 1,
                Some(c) if format!("sni_guard.{c}") == name => 1,
                _ => 0,
            };
            expect(moved == wanted, format!("{name} moved by {moved}, expected {wanted}"));
        }
        problems
    }
}

/// Fails with every problem of every case at once, so one run shows the whole picture.
pub fn assert_no_problems(runner: &str, problems: Vec<String>, cases: usize) {
    assert!(problems.is_empty(), "{runner}: {} problem(s) in {cases} cases:\n{}", problems.len(), problems.join("\n"));
    println!("{runner}: {cases} cases agree with tests/cases/requests.json");
}
