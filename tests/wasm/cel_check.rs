//! Envoy's CEL same-name check (`sni_guard::cel`) through the compiled module. The harness
//! plays Envoy's `expr_create` and `expr_evaluate` foreign functions, evaluating the expressions
//! the way `cel::succeeds` states Envoy does; real Envoy runs them in tests/e2e.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use sni_guard::cel;
use wasm_test_harness::abi::Status;
use wasm_test_harness::{Plugin, PluginBuilder};

/// The first token handed out: Envoy starts at 0; starting elsewhere catches a module that
/// assumes it.
const FIRST_TOKEN: u32 = 7;

/// What the emulated Envoy saw.
#[derive(Default)]
pub struct Seen {
    pub created: Mutex<Vec<String>>,
    pub evaluations: AtomicU32,
}

/// `builder` with Envoy's two CEL foreign functions.
pub fn with_envoy_cel(builder: PluginBuilder) -> (PluginBuilder, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let (on_create, on_evaluate) = (seen.clone(), seen.clone());
    let builder = builder
        .foreign_function("expr_create", move |_, text| {
            let text = std::str::from_utf8(text).map_err(|_| Status::BadArgument)?;
            // Envoy compiles any CEL; this host knows the meaning of sni-guard's texts only.
            cel::succeeds(text, None, None).ok_or(Status::BadArgument)?;
            let mut created = on_create.created.lock().unwrap();
            created.push(text.to_string());
            Ok((FIRST_TOKEN + created.len() as u32 - 1).to_le_bytes().to_vec())
        })
        .foreign_function("expr_evaluate", move |host, token| {
            let token = u32::from_le_bytes(token.try_into().map_err(|_| Status::BadArgument)?);
            let created = on_evaluate.created.lock().unwrap();
            let text = token.checked_sub(FIRST_TOKEN).and_then(|i| created.get(i as usize)).ok_or(Status::NotFound)?;
            on_evaluate.evaluations.fetch_add(1, Ordering::Relaxed);
            // CEL: no SNI reads as "".
            let sni = host.property(&["connection", "requested_server_name"]);
            match cel::succeeds(text, sni, host.request_header(":authority")) {
                Some(true) => Ok(vec![1]), // a CEL bool, serialised
                _ => Err(Status::InternalFailure),
            }
        });
    (builder, seen)
}

pub fn load_with_envoy_cel(configuration: &str) -> (Plugin, Arc<Seen>) {
    let (builder, seen) = with_envoy_cel(Plugin::builder(super::module()).configuration(configuration));
    let plugin = builder.load().unwrap_or_else(|e| panic!("loading with {configuration:?}: {e}"));
    (plugin, seen)
}

fn root_logged(plugin: &Plugin, text: &str) -> bool {
    plugin.logs().iter().any(|l| l.message.contains(text))
}

#[test]
fn the_same_name_is_settled_by_one_evaluation() {
    let (mut plugin, seen) = load_with_envoy_cel("");
    assert!(root_logged(&plugin, "first check: Envoy's CEL same-name check"), "{:?}", plugin.logs());
    assert_eq!(*seen.created.lock().unwrap(), [cel::SAME_NAME]);
    for _ in 0..3 {
        assert!(plugin.request().sni("a.example.com").authority("a.example.com").send().unwrap().passed());
    }
    assert_eq!(seen.evaluations.load(Ordering::Relaxed), 3);
    plugin.tick().unwrap();
    assert_eq!(plugin.metric("sni_guard.checked"), Some(3), "still counted");
}

/// A host whose check succeeds whatever the request: the module trusts it and reads nothing,
/// so a request it would refuse passes. (Envoy's check succeeds only for the same name.)
#[test]
fn success_skips_the_full_check() {
    let mut plugin = Plugin::builder(super::module())
        .foreign_function("expr_create", |_, _| Ok(FIRST_TOKEN.to_le_bytes().to_vec()))
        .foreign_function("expr_evaluate", |_, _| Ok(vec![1]))
        .load()
        .unwrap();
    assert!(plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap().passed());
}

/// Any failure (a mismatch, Envoy's NotFound for a token another root created, an internal
/// error) means "not confirmed": the full check answers.
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
    assert!(root_logged(&plugin, "no CEL check in this host (expr_create status 1)"), "{:?}", plugin.logs());
    assert!(root_logged(&plugin, "first check: none"));
    assert!(plugin.request().sni("a.example.com").authority("a.example.com").send().unwrap().passed());
    assert_eq!(plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap().status(), Some(421));
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

#[test]
fn reject_mode_asks_for_the_sni_too() {
    let (mut plugin, seen) = load_with_envoy_cel(r#"{"on_missing_sni":"reject"}"#);
    assert_eq!(*seen.created.lock().unwrap(), [cel::SAME_NAME_AND_SNI]);
    let no_sni =
        plugin.request().without_property(&["connection", "requested_server_name"]).authority("").send().unwrap();
    assert_eq!(no_sni.status(), Some(421));
}
