//! Envoy's CEL through the compiled module (`sni_guard::cel`). The harness plays Envoy's
//! `expr_create` and `expr_evaluate` as Envoy does them: expressions kept per root context and
//! numbered per root, a stream's evaluation looking in its own root's, answers as
//! `cel::evaluate` states. Real Envoy runs them in e2e/envoy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use sni_guard::cel::{self, Answer, SameNameTest};
use wasm_test_harness::abi::Status;
use wasm_test_harness::{LogLevel, Plugin, PluginBuilder};

/// The first token each root hands out: Envoy starts at 0; starting elsewhere catches a module
/// that assumes it.
const FIRST_TOKEN: u32 = 7;

/// What the emulated Envoy saw.
#[derive(Default)]
pub struct Seen {
    /// Expressions created, per root context, in token order.
    pub created: Mutex<HashMap<u32, Vec<String>>>,
    /// Evaluations of a request expression (not of a root's identity expression).
    pub evaluations: AtomicU32,
}

impl Seen {
    pub fn created_by(&self, root: u32) -> Vec<String> {
        self.created.lock().unwrap().get(&root).cloned().unwrap_or_default()
    }
}

/// `builder` with Envoy's two CEL foreign functions.
pub fn with_envoy_cel(builder: PluginBuilder) -> (PluginBuilder, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let (on_create, on_evaluate) = (seen.clone(), seen.clone());
    let builder = builder
        .foreign_function("expr_create", move |host, text| {
            let text = std::str::from_utf8(text).map_err(|_| Status::BadArgument)?;
            // Envoy compiles any CEL; this host knows the meaning of sni-guard's texts only.
            cel::evaluate(text, None, None).ok_or(Status::BadArgument)?;
            let mut created = on_create.created.lock().unwrap();
            let root = created.entry(host.root_context()).or_default();
            root.push(text.to_string());
            Ok((FIRST_TOKEN + root.len() as u32 - 1).to_le_bytes().to_vec())
        })
        .foreign_function("expr_evaluate", move |host, token| {
            let token = u32::from_le_bytes(token.try_into().map_err(|_| Status::BadArgument)?);
            let created = on_evaluate.created.lock().unwrap();
            let text = token
                .checked_sub(FIRST_TOKEN)
                .and_then(|i| created.get(&host.root_context())?.get(i as usize))
                .ok_or(Status::NotFound)?;
            // CEL: no SNI reads as "".
            let sni = host.property(&["connection", "requested_server_name"]);
            let answer = cel::evaluate(text, sni, host.request_header(":authority")).ok_or(Status::InternalFailure)?;
            if text.contains("request.host") {
                on_evaluate.evaluations.fetch_add(1, Ordering::Relaxed);
            }
            match answer {
                Answer::SameName => Err(Status::SerializationFailure),
                Answer::Names(value) => Ok(value),
                Answer::Error => Err(Status::InternalFailure),
            }
        });
    (builder, seen)
}

pub fn load_with_envoy_cel(configuration: &str) -> (Plugin, Arc<Seen>) {
    load_with_envoy_cel_at(configuration, LogLevel::Info)
}

pub fn load_with_envoy_cel_at(configuration: &str, level: LogLevel) -> (Plugin, Arc<Seen>) {
    let (builder, seen) =
        with_envoy_cel(Plugin::builder(super::module()).configuration(configuration).log_level(level));
    let plugin = builder.load().unwrap_or_else(|e| panic!("loading with {configuration:?}: {e}"));
    (plugin, seen)
}

fn root_logged(plugin: &Plugin, text: &str) -> bool {
    plugin.logs().iter().any(|l| l.message.contains(text))
}

fn status(plugin: &mut Plugin, root: u32, sni: &str, authority: &str) -> Option<u32> {
    plugin.request().root(root).sni(sni).authority(authority).send().unwrap().status()
}

#[test]
fn the_same_name_is_settled_by_one_evaluation() {
    let (mut plugin, seen) = load_with_envoy_cel("");
    assert!(root_logged(&plugin, "first check: Envoy's CEL same-name test"), "{:?}", plugin.logs());
    let root = plugin.roots()[0];
    assert_eq!(
        seen.created_by(root),
        [cel::request_expression(root, Some(SameNameTest::Plain)), cel::identity_expression(root)]
    );
    for _ in 0..3 {
        assert!(plugin.request().sni("a.example.com").authority("a.example.com").send().unwrap().passed());
    }
    assert_eq!(seen.evaluations.load(Ordering::Relaxed), 3);
    assert_eq!(plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap().status(), Some(421));
    assert_eq!(seen.evaluations.load(Ordering::Relaxed), 4, "a mismatch too is one evaluation");
    plugin.tick().unwrap();
    assert_eq!(plugin.metric("sni_guard.checked"), Some(4), "still counted");
}

/// Each configuration asks for the same-name test its answers need, or none behind a matcher.
#[test]
fn each_configuration_creates_the_expression_it_needs() {
    for (config, test) in [
        (r#"{}"#, Some(SameNameTest::Plain)),
        (r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*"]}]}"#, Some(SameNameTest::HostName)),
        (r#"{"servers":[{"hosts":["*.example.com"]},{"hosts":["a.example.com"]}]}"#, Some(SameNameTest::HostName)),
        (r#"{"servers":[{"hosts":["*.example.com"]},{"hosts":["a.example.org"]}]}"#, Some(SameNameTest::Plain)),
        (r#"{"on_missing_sni":"reject"}"#, Some(SameNameTest::WithSni)),
        (r#"{"same_name_matcher":"request.host == connection.requested_server_name"}"#, None),
    ] {
        let (plugin, seen) = load_with_envoy_cel(config);
        let root = plugin.roots()[0];
        assert_eq!(seen.created_by(root)[0], cel::request_expression(root, test), "{config}");
    }
    let (mut plugin, _) = load_with_envoy_cel(r#"{"on_missing_sni":"reject"}"#);
    let no_sni =
        plugin.request().without_property(&["connection", "requested_server_name"]).authority("").send().unwrap();
    assert_eq!(no_sni.status(), Some(421));
}

/// With a catch-all server Envoy's CEL tests only that the names are equal and hands the SNI
/// over; the module passes a host name and puts any other SNI to the full check.
#[test]
fn with_a_catch_all_the_module_checks_the_name_envoy_hands_over() {
    let (mut plugin, seen) = load_with_envoy_cel(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*"]}]}"#);
    assert!(root_logged(&plugin, "then the module's test that the SNI is a host name"), "{:?}", plugin.logs());
    let root = plugin.roots()[0];
    for name in ["a.example.com", "other.example.org"] {
        assert_eq!(status(&mut plugin, root, name, name), None, "{name}");
    }
    for name in ["a.example.com:443", "a.example.com:", "a.example.com.:443", "a.example.com.", "x@a.example.com"] {
        assert_eq!(status(&mut plugin, root, name, name), Some(421), "{name}");
    }
    assert_eq!(seen.evaluations.load(Ordering::Relaxed), 7, "one evaluation each");
    plugin.tick().unwrap();
    let pair = "sni_guard.connection_server=.=*;.;host_server=.=a.example.com;.;rejected_by_server";
    assert_eq!(plugin.metric(pair), Some(4), "{:?}", plugin.metrics());
}

/// Two root contexts in one VM, as Envoy runs two filter chains (or a configuration and its
/// update) with the same `vm_config`: each stream answers by its own root's configuration.
#[test]
fn each_root_answers_by_its_own_configuration() {
    let (mut plugin, _) = load_with_envoy_cel(r#"{"mode":"dry_run"}"#);
    let dry_run = plugin.roots()[0];
    let enforce = plugin.add_root(r#"{"mode":"enforce"}"#).unwrap();
    for _ in 0..2 {
        assert_eq!(status(&mut plugin, dry_run, "a.example.com", "b.example.com"), None);
        assert_eq!(status(&mut plugin, enforce, "a.example.com", "b.example.com"), Some(421));
    }
    let merged = plugin.add_root(r#"{"servers":[{"hosts":["a.example.com","b.example.com"]}]}"#).unwrap();
    let split = plugin.add_root(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]}]}"#).unwrap();
    assert_eq!(status(&mut plugin, merged, "a.example.com", "b.example.com"), None);
    assert_eq!(status(&mut plugin, split, "a.example.com", "b.example.com"), Some(421));
    plugin.tick().unwrap();
    assert_eq!(plugin.metric("sni_guard.rejected"), Some(3));
    assert_eq!(plugin.metric("sni_guard.dry_run_mismatch"), Some(2));
}

/// Envoy's rollback: `dry_run` → `enforce` → `dry_run` where the first root still drains, so
/// Envoy hands the rollback's streams to it without configuring it again.
#[test]
fn a_rollback_to_a_draining_root_takes_effect() {
    let (mut plugin, _) = load_with_envoy_cel(r#"{"mode":"dry_run"}"#);
    let first = plugin.roots()[0];
    assert_eq!(status(&mut plugin, first, "a.example.com", "b.example.com"), None);
    let update = plugin.add_root(r#"{"mode":"enforce"}"#).unwrap();
    assert_eq!(status(&mut plugin, update, "a.example.com", "b.example.com"), Some(421));
    // The rollback: streams of the first root again, with no proxy_on_configure.
    assert_eq!(status(&mut plugin, first, "a.example.com", "b.example.com"), None);
    // And the other way round.
    let (mut plugin, _) = load_with_envoy_cel(r#"{"mode":"enforce"}"#);
    let first = plugin.roots()[0];
    let update = plugin.add_root(r#"{"mode":"dry_run"}"#).unwrap();
    assert_eq!(status(&mut plugin, update, "a.example.com", "b.example.com"), None);
    assert_eq!(status(&mut plugin, first, "a.example.com", "b.example.com"), Some(421));
}

/// A request without `:authority`, where the request expression is an error: the root's second
/// expression still names the root.
#[test]
fn a_request_without_authority_still_finds_its_root() {
    let (mut plugin, _) = load_with_envoy_cel(r#"{"mode":"dry_run"}"#);
    let dry_run = plugin.roots()[0];
    let enforce = plugin.add_root("").unwrap();
    let send = |plugin: &mut Plugin, root| plugin.request().root(root).sni("a.example.com").send().unwrap().status();
    assert_eq!(send(&mut plugin, dry_run), None);
    assert_eq!(send(&mut plugin, enforce), Some(421));
}

/// Any other failure (NotFound for a token, an internal error) means the module reads the
/// names itself and answers by the VM's configuration.
#[test]
fn failure_falls_back_to_the_full_check() {
    for status in [Status::InternalFailure, Status::NotFound, Status::BadArgument] {
        let mut plugin = Plugin::builder(super::module())
            .foreign_function("expr_create", |_, _| Ok(FIRST_TOKEN.to_le_bytes().to_vec()))
            .foreign_function("expr_evaluate", move |_, _| Err(status))
            .load()
            .unwrap();
        let mut send =
            |sni: &str, authority: &str| plugin.request().sni(sni).authority(authority).send().unwrap().status();
        assert_eq!(send("a.example.com", "a.example.com"), None, "{status:?}");
        assert_eq!(send("a.example.com", "A.example.com:443"), None, "{status:?}");
        assert_eq!(send("a.example.com", "b.example.com"), Some(421), "{status:?}");
    }
}

#[test]
fn without_cel_every_request_gets_the_full_check() {
    let mut plugin = super::load("");
    assert!(root_logged(&plugin, "no usable CEL in this host (expr_create status 1)"), "{:?}", plugin.logs());
    assert!(root_logged(&plugin, "first check: none"));
    assert!(plugin.request().sni("a.example.com").authority("a.example.com").send().unwrap().passed());
    assert_eq!(plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap().status(), Some(421));
}

/// Without CEL a stream cannot tell its root, so a VM takes one configuration: another is
/// refused, loudly, rather than applied to the wrong filter's requests.
#[test]
fn without_cel_a_vm_holds_one_configuration() {
    let mut plugin = super::load(r#"{"mode":"dry_run"}"#);
    let second = plugin.add_root(r#"{"mode":"dry_run"}"#).unwrap();
    assert_eq!(status(&mut plugin, second, "a.example.com", "b.example.com"), None);
    let refused = plugin.add_root(r#"{"mode":"enforce"}"#).unwrap_err().to_string();
    assert!(refused.contains("another sni-guard configuration") && refused.contains("vm_id"), "{refused}");
    assert_eq!(status(&mut plugin, second, "a.example.com", "b.example.com"), None, "nothing half-applied");
}

#[test]
fn an_expression_the_host_cannot_compile_is_not_used() {
    let evaluations = Arc::new(AtomicU32::new(0));
    let counted = evaluations.clone();
    let mut plugin = Plugin::builder(super::module())
        .foreign_function("expr_create", |_, _| Err(Status::BadArgument))
        .foreign_function("expr_evaluate", move |_, _| {
            counted.fetch_add(1, Ordering::Relaxed);
            Ok(vec![1])
        })
        .load()
        .unwrap();
    assert!(root_logged(&plugin, "expr_create status 2"), "{:?}", plugin.logs());
    assert_eq!(plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap().status(), Some(421));
    assert_eq!(evaluations.load(Ordering::Relaxed), 0);
}

/// A dry run logs a would-be 421 at warn (seen at istio-proxy's default level), a few per
/// window, then one line with the count held back; the counter has them all.
#[test]
fn the_dry_run_log_is_bounded_and_the_counter_exact() {
    let (mut plugin, _) = load_with_envoy_cel_at(r#"{"mode":"dry_run"}"#, LogLevel::Warn);
    let mut lines = Vec::new();
    for _ in 0..40 {
        let outcome = plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap();
        assert!(outcome.passed());
        lines.extend(outcome.logs.into_iter().map(|l| (l.level, l.message)));
    }
    let would = lines.iter().filter(|(level, m)| *level == LogLevel::Warn && m.contains("would answer 421")).count();
    assert_eq!(would, sni_guard::log_limit::MAX_LINES as usize, "{lines:?}");
    plugin.advance_clock(std::time::Duration::from_nanos(sni_guard::log_limit::WINDOW_NS));
    plugin.tick().unwrap();
    let held_back = 40 - sni_guard::log_limit::MAX_LINES;
    assert!(root_logged(&plugin, &format!("{held_back} more would-be 421s not logged")), "{:?}", plugin.logs());
    assert_eq!(plugin.metric("sni_guard.dry_run_mismatch"), Some(40));
}

/// A root context configured again (Envoy never does; a test host can) keeps the expression it
/// created, so a configuration that needs another same-name test is refused, not half-applied.
#[test]
fn a_root_reconfigured_keeps_its_expression_or_refuses() {
    let (mut plugin, seen) = load_with_envoy_cel(r#"{"servers":[{"hosts":["a.example.com"]}]}"#);
    let root = plugin.roots()[0];
    plugin
        .reconfigure(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]}],"mode":"dry_run"}"#)
        .unwrap();
    assert_eq!(seen.created_by(root).len(), 2, "no new expressions");
    assert_eq!(plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap().status(), None);
    let refused = plugin.reconfigure(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*"]}]}"#).unwrap_err();
    assert!(refused.to_string().contains("another same-name test"), "{refused}");
    // Still the dry-run configuration, and the trailing-dot request is not settled early.
    assert_eq!(plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap().status(), None);
}
