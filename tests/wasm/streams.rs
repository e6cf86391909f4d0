//! Many streams on one plugin, in sequence and interleaved as on one Envoy worker; the
//! counters, the log lines and the reply details Envoy would see.

use wasm_test_harness::{Action, LogLevel};

#[test]
fn interleaved_streams_keep_their_own_answers() {
    let mut plugin = super::load("");
    let a = plugin.request().sni("a.example.com").authority("b.example.com").protocol("HTTP/1.1").open().unwrap();
    let b = plugin.request().sni("b.example.com").authority("b.example.com").open().unwrap();
    let c = plugin.request().sni("c.example.com").authority("a.example.com").open().unwrap();
    assert_eq!(plugin.request_headers(b).unwrap(), Action::Continue);
    assert_eq!(plugin.request_headers(a).unwrap(), Action::Pause);
    assert_eq!(plugin.request_headers(c).unwrap(), Action::Pause);
    assert_eq!(plugin.open_streams(), 3);
    let c = plugin.finish(c).unwrap();
    let a = plugin.finish(a).unwrap();
    let b = plugin.finish(b).unwrap();
    assert_eq!(plugin.open_streams(), 0);
    assert!(b.passed());
    assert_eq!(a.status(), Some(421));
    assert_eq!(c.status(), Some(421));
    assert_eq!(a.local_response.as_ref().unwrap().header("connection"), None, "Envoy would strip it anyway");
    assert_eq!(a.local_response.unwrap().details, "sni_guard_misdirected_request");
    assert_eq!(plugin.metric("sni_guard.rejected"), Some(2));
}

#[test]
fn checked_is_batched_until_the_tick() {
    let mut plugin = super::load("");
    for _ in 0..10 {
        assert!(plugin.request().sni("a.example.com").authority("a.example.com").send().unwrap().passed());
    }
    assert_eq!(plugin.metric("sni_guard.checked"), Some(0), "no host call per matching request");
    plugin.tick().unwrap();
    assert_eq!(plugin.metric("sni_guard.checked"), Some(10));
    // A mismatch's own counters move at once; checked waits for the tick (one host call
    // fewer on the 421 path).
    plugin.request().sni("a.example.com").authority("a.example.com").send().unwrap();
    let outcome = plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap();
    assert_eq!(outcome.metric("sni_guard.checked"), 10);
    assert_eq!(outcome.metric("sni_guard.rejected"), 1);
    plugin.tick().unwrap();
    assert_eq!(plugin.metric("sni_guard.checked"), Some(12));
}

#[test]
fn misdirected_requests_are_counted_per_pair_and_marked() {
    let config = r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]}]}"#;
    let mut plugin = super::load(config);
    for _ in 0..3 {
        let outcome = plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap();
        assert_eq!(outcome.status(), Some(421));
    }
    let pair = "sni_guard.connection_server=.=a.example.com;.;host_server=.=b.example.com;.;rejected_by_server";
    assert_eq!(plugin.metric(pair), Some(3), "{:?}", plugin.metrics());
    // However many pairs there are, the series stop growing at the bound; the rest are one.
    let servers: Vec<String> = (0..150).map(|i| format!(r#"{{"hosts":["h{i}.example.com"]}}"#)).collect();
    let mut plugin = super::load(&format!(r#"{{"servers":[{{"hosts":["a.example.com"]}},{}]}}"#, servers.join(",")));
    for i in 0..150 {
        let authority = format!("h{i}.example.com");
        assert_eq!(plugin.request().sni("a.example.com").authority(&authority).send().unwrap().status(), Some(421));
    }
    let series = plugin.metrics().into_keys().filter(|k| k.ends_with("rejected_by_server")).count();
    assert_eq!(series, sni_guard::metrics::MAX_SERVER_PAIRS + 1);
    let other = "sni_guard.connection_server=.=other;.;host_server=.=other;.;rejected_by_server";
    assert_eq!(plugin.metric(other), Some(150 - sni_guard::metrics::MAX_SERVER_PAIRS as u64));
    assert_eq!(plugin.metric("sni_guard.rejected"), Some(150));
}

#[test]
fn many_streams_in_sequence() {
    let mut plugin = super::load(r#"{"mode":"dry_run"}"#);
    for i in 0..2000 {
        let authority = if i % 2 == 0 { "a.example.com" } else { "b.example.com" };
        assert!(plugin.request().sni("a.example.com").authority(authority).send().unwrap().passed());
    }
    plugin.tick().unwrap();
    assert_eq!(plugin.metric("sni_guard.checked"), Some(2000));
    assert_eq!(plugin.metric("sni_guard.dry_run_mismatch"), Some(1000));
    assert_eq!(plugin.metric("sni_guard.rejected"), Some(0));
}

#[test]
fn mismatches_are_logged_at_the_documented_levels() {
    // enforce: debug, so invisible at Envoy's default level.
    let mut plugin = super::load("");
    let outcome = plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap();
    assert!(outcome.logs.is_empty(), "{:?}", outcome.logs);
    let mut plugin = super::load_at("", LogLevel::Debug);
    let outcome = plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap();
    let line = &outcome.logs[0];
    assert_eq!(line.level, LogLevel::Debug);
    assert!(line.message.contains(r#"sni="a.example.com" authority="b.example.com""#), "{line}");
    assert!(line.message.contains("another server"), "{line}");
    // dry_run: warn, so that istio-proxy's default level (warning) shows it (bounded: see
    // cel_check.rs); not at error.
    let mut plugin = super::load_at(r#"{"mode":"dry_run"}"#, LogLevel::Warn);
    let outcome = plugin.request().sni("a.example.com").send().unwrap();
    assert_eq!(outcome.logs.len(), 1, "{:?}", outcome.logs);
    assert_eq!(outcome.logs[0].level, LogLevel::Warn);
    let mut plugin = super::load_at(r#"{"mode":"dry_run"}"#, LogLevel::Error);
    assert!(plugin.request().sni("a.example.com").send().unwrap().logs.is_empty());
    assert!(outcome.logs[0].message.contains("would answer 421") && outcome.logs[0].message.contains("no :authority"));
}
