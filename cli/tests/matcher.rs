//! The parsed CEL expressions the CLI writes into an EnvoyFilter (`sni_guard_cli::generate::matcher`) are
//! the ones e2e/support/matcher.py `parsed(text)` builds, which the e2e tests run in Envoy: the
//! same tree and the same ids, for each of the filter's same-name tests; and the test matcher.py
//! `required` picks for a configuration is the filter's (`Settings::same_name`). The Python side
//! runs in the repository's venv; without it the test fails (never skips).

#[path = "support/run.rs"]
mod run;
use run::repo_root;

use std::process::Command;

use serde_json::Value;
use sni_guard::cel::SameNameTest;
use sni_guard::config::Settings;

/// Configurations for each same-name test, and their edges: the namespace form, upper case,
/// a server below its own wildcard, nesting through a wildcard.
const CONFIGS: &[&str] = &[
    r#"{}"#,
    r#"{"on_missing_sni":"reject"}"#,
    r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*.w.example.com"]}]}"#,
    r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["ns/*"]}]}"#,
    r#"{"servers":[{"hosts":["*.example.com","a.example.com"]},{"hosts":["example.com"]}],"on_missing_sni":"reject"}"#,
    r#"{"servers":[{"hosts":["*.EXAMPLE.com"]},{"hosts":["ns/A.example.com"]}]}"#,
    r#"{"servers":[{"hosts":["*.example.com"]},{"hosts":["*.x.y.example.com"]}],"on_missing_sni":"reject"}"#,
    r#"{"servers":[{"hosts":["*.a.example.com"]},{"hosts":["a.example.com"]}]}"#,
];
use sni_guard_cli::generate::matcher;

const PARSED: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
from e2e.support import matcher
texts = json.loads(sys.argv[2])
configs = json.loads(sys.argv[3])
print(json.dumps({"texts": list(matcher.TEXTS), "parsed": [matcher.parsed(t) for t in texts],
                  "required": [matcher.required(c) for c in configs]}))
"#;

#[test]
fn rust_and_python_build_the_same_parsed_expressions() {
    let root = repo_root();
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps`", python.display());
    let texts: Vec<&str> = SameNameTest::ALL.iter().map(|t| t.text()).collect();
    let out = Command::new(&python)
        .arg("-c")
        .arg(PARSED)
        .arg(&root)
        .arg(serde_json::to_string(&texts).unwrap())
        .arg(format!("[{}]", CONFIGS.join(",")))
        .output()
        .unwrap();
    assert!(out.status.success(), "matcher.py did not run: {}", String::from_utf8_lossy(&out.stderr));
    let python: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The same three texts, in the same order.
    assert_eq!(python["texts"], serde_json::json!(texts));
    for (i, test) in SameNameTest::ALL.into_iter().enumerate() {
        assert_eq!(matcher::parsed_value(test), python["parsed"][i], "{test:?}");
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, config) in CONFIGS.iter().enumerate() {
        let test = Settings::from_json(config.as_bytes()).unwrap().same_name;
        assert_eq!(python["required"][i], test.text(), "{config}");
        seen.insert(test);
    }
    assert_eq!(seen.len(), 3, "the configurations need Plain, WithSni and HostName: {seen:?}");
}
