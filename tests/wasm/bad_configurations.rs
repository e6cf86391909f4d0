//! Every bad configuration is refused with one clear log line naming the field, and the plugin
//! does not start (nor, on a reconfiguration, half-apply).

use wasm_test_harness::{HarnessError, LogLevel, Plugin};

use super::module;

/// (configuration, text the refusal must contain)
const REFUSED: &[(&str, &str)] = &[
    (r#"{"servers":[{"hosts":["a.*.com"]}]}"#, "servers[0].hosts[0]: \"a.*.com\": a wildcard is allowed only"),
    (r#"{"servers":[{"hosts":["*example.com"]}]}"#, "servers[0].hosts[0]: \"*example.com\""),
    (r#"{"servers":[{"hosts":["not a host"]}]}"#, "servers[0].hosts[0]: \"not a host\": not a host name"),
    (r#"{"servers":[{"hosts":["a/b/c.example.com"]}]}"#, "servers[0].hosts[0]: \"a/b/c.example.com\""),
    (
        r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com","A.example.com"]}]}"#,
        "servers[1].hosts: host \"a.example.com\" is already listed by servers[0]",
    ),
    (r#"{"servers":[{"hosts":[]}]}"#, "servers[0].hosts: a server needs at least one host"),
    (r#"{"servers":[{"hosts":["a.example.com"],"port":443}]}"#, "unknown field `port`"),
    (r#"{"sever":[]}"#, "unknown field `sever`"),
    (r#"{"mode":"enforcing"}"#, "enforcing"),
    (r#"{"on_missing_sni":"deny"}"#, "deny"),
    (r#"{"exempt_paths":["well-known"]}"#, "exempt_paths[0]: \"well-known\": a path prefix starts with '/'"),
    (r#"{"servers":[{"hosts":["a.example.com."]}]}"#, "servers[0].hosts[0]: \"a.example.com.\": a trailing dot"),
    (
        r#"{"exempt_paths":["/.well-known/../admin/"]}"#,
        "exempt_paths[0]: \"/.well-known/../admin/\": use plain segments",
    ),
    (r#"{"same_name_matcher":"true"}"#, "same_name_matcher: \"true\" is not a matcher sni-guard knows"),
    (
        r#"{"servers":[{"hosts":["*"]}],"same_name_matcher":"request.host == connection.requested_server_name"}"#,
        "same_name_matcher: \"request.host == connection.requested_server_name\" is too weak",
    ),
    (r#"{"exempt_paths":"/x"}"#, "invalid configuration: exempt_paths: invalid type"),
    (r#"{"response_body":42}"#, "invalid configuration: response_body: invalid type"),
    (r#"{"servers":[{"hosts":["a.example.com",7]}]}"#, "invalid configuration: servers[0].hosts[1]: invalid type"),
    ("not json", "invalid configuration: configuration:"),
    ("null", "invalid configuration: configuration: expected a JSON object"),
    ("[]", "invalid configuration: configuration: expected a JSON object"),
    ("{\"mode\":\"dry_run\"", "EOF"),
];

fn refusal(configuration: &[u8]) -> String {
    match Plugin::builder(module()).configuration(configuration).load() {
        Ok(_) => panic!("{:?} was accepted", String::from_utf8_lossy(configuration)),
        Err(e @ HarnessError::ConfigurationRefused { .. }) => {
            let errors: Vec<_> = e.logs().iter().filter(|l| l.level == LogLevel::Error).collect();
            assert_eq!(errors.len(), 1, "one error line, got {:?}", e.logs());
            let line = errors[0].message.clone();
            assert!(line.starts_with("sni-guard: invalid configuration: "), "{line}");
            assert!(line.ends_with("; the plugin is not started"), "{line}");
            line
        }
        Err(other) => panic!("{:?}: expected a refusal, got {other}", String::from_utf8_lossy(configuration)),
    }
}

#[test]
fn each_bad_configuration_is_refused_naming_the_problem() {
    for (configuration, expected) in REFUSED {
        let line = refusal(configuration.as_bytes());
        assert!(line.contains(expected), "{configuration}: {line:?} lacks {expected:?}");
    }
}

#[test]
fn an_oversized_body_or_non_utf8_bytes_are_refused() {
    let body = format!(r#"{{"response_body":"{}"}}"#, "x".repeat(64 * 1024 + 1));
    assert!(refusal(body.as_bytes()).contains("response_body: 65537 bytes; at most 65536"));
    assert!(refusal(b"{\"mode\":\"\xff\"}").contains("configuration"));
}

#[test]
fn a_refused_reconfiguration_changes_nothing() {
    let mut plugin = super::load(r#"{"servers":[{"hosts":["a.example.com","b.example.com"]}]}"#);
    let error = plugin.reconfigure(r#"{"servers":[{"hosts":["a.*.com"]}]}"#).expect_err("refused");
    assert!(error.to_string().contains("servers[0].hosts[0]"), "{error}");
    // The previous configuration still holds: a and b share a server.
    let outcome = plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap();
    assert!(outcome.passed(), "{outcome:?}");
    // An accepted one takes over.
    plugin.reconfigure("").unwrap();
    let outcome = plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap();
    assert_eq!(outcome.status(), Some(421));
}

#[test]
fn the_empty_configuration_is_accepted() {
    for configuration in ["", "  \n", "{}"] {
        let plugin = super::load(configuration);
        assert!(plugin.logs().iter().any(|l| l.message.contains("configured; first check")), "{:?}", plugin.logs());
    }
}
