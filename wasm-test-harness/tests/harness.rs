//! The harness's own tests: tiny modules written in WAT at test time show that the harness
//! calls Envoy's exports in Envoy's order, that the host calls round-trip, and that a trap, a
//! missing export, an unimplemented host call and a bad pointer are each reported. A green run
//! of the filter's tests means something only if these pass.

use wasm_test_harness::abi::deserialize_pairs;
use wasm_test_harness::{Action, HarnessError, LogLevel, Plugin};

/// A module in WAT: the imports, then memory, a bump allocator and the ABI marker (each can
/// be left out to test its absence), then the body.
struct Wat {
    imports: String,
    allocator: bool,
    abi: bool,
    body: String,
    data: Vec<(u32, String)>,
}

impl Wat {
    fn new() -> Wat {
        Wat {
            imports: r#"(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))"#.into(),
            allocator: true,
            abi: true,
            body: String::new(),
            data: Vec::new(),
        }
    }

    fn import(mut self, import: &str) -> Wat {
        self.imports.push_str(import);
        self
    }

    fn body(mut self, body: &str) -> Wat {
        self.body.push_str(body);
        self
    }

    /// Puts a string in memory; returns (offset, length) for the body to use.
    fn string(&mut self, text: &str) -> (u32, usize) {
        let at = 0x100 + self.data.iter().map(|(_, s)| s.len() as u32 + 1).sum::<u32>();
        self.data.push((at, text.into()));
        (at, text.len())
    }

    /// A call that logs `text` at info.
    fn log(&mut self, text: &str) -> String {
        let (at, len) = self.string(text);
        format!("(drop (call $log (i32.const 2) (i32.const {at}) (i32.const {len})))")
    }

    fn build(&self) -> String {
        let allocator = if self.allocator {
            r#"(global $next (mut i32) (i32.const 0x8000))
               (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
                 (local $at i32)
                 (local.set $at (global.get $next))
                 (global.set $next (i32.add (global.get $next) (local.get $size)))
                 (local.get $at))"#
        } else {
            ""
        };
        let abi = if self.abi { r#"(func (export "proxy_abi_version_0_2_1"))"# } else { "" };
        let data: String =
            self.data.iter().map(|(at, s)| format!("(data (i32.const {at}) \"{}\")", escape(s))).collect();
        format!("(module {} (memory (export \"memory\") 1) {allocator} {abi} {} {data})", self.imports, self.body)
    }

    fn load(&self) -> Result<Plugin, HarnessError> {
        Plugin::from_bytes(self.build()).load()
    }
}

/// A WAT string literal's contents: printable ASCII as is, every other byte as `\hh`.
fn escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b' '..=b'~' if b != b'"' && b != b'\\' => (b as char).to_string(),
            _ => format!("\\{b:02x}"),
        })
        .collect()
}

/// One callback of each kind Envoy calls, each logging its name.
fn logging_module() -> Wat {
    let mut wat = Wat::new();
    let callbacks = [
        ("_initialize", "", ""),
        ("proxy_on_context_create", "(param i32 i32)", ""),
        ("proxy_on_vm_start", "(param i32 i32) (result i32)", "(i32.const 1)"),
        ("proxy_on_configure", "(param i32 i32) (result i32)", "(i32.const 1)"),
        ("proxy_on_request_headers", "(param i32 i32 i32) (result i32)", "(i32.const 0)"),
        ("proxy_on_response_headers", "(param i32 i32 i32) (result i32)", "(i32.const 0)"),
        ("proxy_on_log", "(param i32)", ""),
        ("proxy_on_done", "(param i32) (result i32)", "(i32.const 1)"),
        ("proxy_on_delete", "(param i32)", ""),
    ];
    for (name, signature, result) in callbacks {
        let log = wat.log(name);
        wat = wat.body(&format!("(func (export {name:?}) {signature} {log} {result})"));
    }
    wat
}

fn messages(lines: &[wasm_test_harness::LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.message.as_str()).collect()
}

#[test]
fn exports_are_called_in_envoys_order() {
    let mut plugin = logging_module().load().unwrap();
    assert_eq!(
        messages(plugin.logs()),
        ["_initialize", "proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure"]
    );
    let outcome = plugin.request().authority("a").send().unwrap();
    assert_eq!(
        messages(&outcome.logs),
        [
            "proxy_on_context_create",
            "proxy_on_request_headers",
            "proxy_on_response_headers",
            "proxy_on_log",
            "proxy_on_done",
            "proxy_on_delete"
        ]
    );
    assert_eq!(outcome.action, Action::Continue);
}

#[test]
fn only_exported_callbacks_are_called() {
    // No callbacks at all: a module Envoy would load and never bother.
    let mut plugin = Wat::new().load().unwrap();
    let outcome = plugin.request().send().unwrap();
    assert!(outcome.passed() && outcome.logs.is_empty());
    assert!(matches!(plugin.tick(), Err(HarnessError::TickNotScheduled)));
}

#[test]
fn a_trap_is_reported_with_the_export_and_the_panic_message() {
    let mut wat = Wat::new().import(
        r#"(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#,
    );
    let (at, len) = wat.string("panicked at src/lib.rs:1:1:\nboom\n");
    let wat = wat.body(&format!(
        r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
             (i32.store (i32.const 0x40) (i32.const {at}))
             (i32.store (i32.const 0x44) (i32.const {len}))
             (drop (call $fd_write (i32.const 2) (i32.const 0x40) (i32.const 1) (i32.const 0x48)))
             unreachable)"#
    ));
    let mut plugin = wat.load().unwrap();
    let error = plugin.request().send().unwrap_err();
    let HarnessError::Trap { export, trap, stderr, .. } = &error else { panic!("{error}") };
    assert_eq!(export, "proxy_on_request_headers");
    assert!(trap.contains("unreachable"), "{trap}");
    assert!(stderr.contains("boom"), "{stderr}");
    assert!(error.to_string().contains("boom"), "the message shows the panic: {error}");
    // Like Envoy, a crashed VM is not called again.
    assert!(matches!(plugin.request().send(), Err(HarnessError::Crashed { .. })));
}

#[test]
fn a_trap_at_start_up_fails_the_load() {
    let error =
        Wat::new().body(r#"(func (export "proxy_on_configure") (param i32 i32) (result i32) unreachable)"#).load();
    assert!(
        matches!(&error, Err(HarnessError::Trap { export, .. }) if export == "proxy_on_configure"),
        "{:?}",
        error.err()
    );
}

#[test]
fn missing_required_exports_are_reported() {
    let mut no_allocator = Wat::new();
    no_allocator.allocator = false;
    let error = no_allocator.load().err().expect("refused");
    assert!(error.to_string().contains("does not export proxy_on_memory_allocate"), "{error}");

    let mut no_abi = Wat::new();
    no_abi.abi = false;
    let error = no_abi.body(r#"(func (export "proxy_abi_version_0_1_0"))"#).load().err().expect("refused");
    assert!(
        error.to_string().contains("proxy_abi_version_0_2_1 (ABI versions exported: proxy_abi_version_0_1_0)"),
        "{error}"
    );

    let no_memory = "(module (func (export \"proxy_abi_version_0_2_1\")))";
    let error = Plugin::from_bytes(no_memory).load().err().expect("refused");
    assert!(error.to_string().contains("does not export memory"), "{error}");
}

#[test]
fn an_export_with_the_wrong_signature_is_reported() {
    let error =
        Wat::new().body(r#"(func (export "proxy_on_request_headers") (param i32) (result i32) (i32.const 0))"#).load();
    let error = error.err().expect("refused");
    assert!(
        matches!(&error, HarnessError::ExportSignature { name, .. } if name == "proxy_on_request_headers"),
        "{error}"
    );
}

#[test]
fn an_unimplemented_host_call_fails_loudly_with_its_name() {
    // Importing it is fine (Envoy links lazily too); calling it is not.
    let wat = Wat::new()
        .import(r#"(import "env" "proxy_get_shared_data" (func $shared (param i32 i32 i32 i32 i32) (result i32)))"#)
        .import(r#"(import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#)
        .body(
            r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
                 (call $shared (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
               (func (export "proxy_on_tick") (param i32)
                 (drop (call $open (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))))
               (func (export "proxy_on_configure") (param i32 i32) (result i32)
                 (drop (call $set_tick (i32.const 10))) (i32.const 1))"#,
        )
        .import(r#"(import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))"#);
    // Imports must come first in WAT; `build` puts them there whatever the call order above.
    let mut plugin = wat.load().unwrap();
    let error = plugin.request().send().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unimplemented host call: proxy_get_shared_data (called during proxy_on_request_headers)"
    );
    let mut plugin = wat.load().unwrap();
    let error = plugin.tick().unwrap_err();
    assert!(error.to_string().starts_with("unimplemented host call: wasi_snapshot_preview1.path_open"), "{error}");
}

#[test]
fn a_bad_pointer_is_an_error_not_a_harness_panic() {
    for (call, args) in [
        ("proxy_log", "(call $log (i32.const 2) (i32.const 0xfffffff0) (i32.const 32))"),
        ("proxy_log", "(call $log (i32.const 2) (i32.const 16) (i32.const -1))"),
        ("proxy_get_property", "(call $prop (i32.const 0x100) (i32.const 4) (i32.const 0x7fffffff) (i32.const 0))"),
        ("proxy_send_local_response", "(call $send (i32.const 421) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0x100) (i32.const 8) (i32.const -1))"),
    ] {
        let mut wat = Wat::new()
            .import(r#"(import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))"#)
            .import(r#"(import "env" "proxy_send_local_response" (func $send (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))"#)
            .body(&format!(r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (drop {args}) (i32.const 0))"#));
        wat.string("abc\0"); // a property path that exists, so the out-pointer is reached
        let mut plugin = Plugin::from_bytes(wat.build()).load().unwrap();
        let error = plugin.request().property(&["abc"], "value").send().unwrap_err();
        let HarnessError::GuestMisbehaved { call: reported, export, .. } = &error else { panic!("{call}: {error}") };
        assert_eq!((reported.as_str(), export.as_str()), (call, "proxy_on_request_headers"), "{error}");
    }
}

#[test]
fn proc_exit_and_a_refused_configuration_are_reported() {
    let error = Wat::new()
        .import(r#"(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))"#)
        .body(r#"(func (export "proxy_on_vm_start") (param i32 i32) (result i32) (call $exit (i32.const 3)) (i32.const 1))"#)
        .load()
        .err()
        .expect("refused");
    assert_eq!(error.to_string(), "the module called proc_exit(3) during proxy_on_vm_start");

    let mut wat = Wat::new();
    let log = wat.log("bad configuration");
    let error = wat
        .body(&format!(r#"(func (export "proxy_on_configure") (param i32 i32) (result i32) {log} (i32.const 0))"#))
        .load();
    let error = error.err().expect("refused");
    assert_eq!(error.logs()[0].message, "bad configuration");
    assert!(error.to_string().contains("proxy_on_configure returned false\n  [Info] bad configuration"), "{error}");
}

#[test]
fn a_missing_module_file_says_to_build_it() {
    let error = Plugin::load("/nonexistent/sni-guard.wasm", "").err().expect("missing");
    assert!(error.to_string().contains("not found: build it first (make build)"), "{error}");
    let error = Plugin::from_bytes("(module").load().err().expect("not wasm");
    assert!(matches!(error, HarnessError::Compile { .. }), "{error}");
    let error = Plugin::from_bytes(r#"(module (import "env" "m" (memory 1)))"#).load().err().expect("refused");
    assert!(matches!(error, HarnessError::Link { .. }), "{error}");
}

/// Header maps: replace, add, remove, then all pairs back through the allocator, sent as the
/// body of a local response so the test can read them.
#[test]
fn header_maps_round_trip() {
    let mut wat = Wat::new()
        .import(r#"(import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))"#)
        .import(r#"(import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))"#)
        .import(r#"(import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))"#)
        .import(r#"(import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))"#)
        .import(r#"(import "env" "proxy_get_header_map_value" (func $value (param i32 i32 i32 i32 i32) (result i32)))"#)
        .import(r#"(import "env" "proxy_send_local_response" (func $send (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))"#);
    let (x_a, _) = wat.string("X-A");
    let (x_b, _) = wat.string("x-b");
    let (path, _) = wat.string(":path");
    let (one, _) = wat.string("1");
    let (missing, _) = wat.string("x-missing");
    let wat = wat.body(&format!(
        r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
             (drop (call $replace (i32.const 0) (i32.const {x_a}) (i32.const 3) (i32.const {one}) (i32.const 1)))
             (drop (call $add (i32.const 0) (i32.const {x_b}) (i32.const 3) (i32.const {one}) (i32.const 1)))
             (drop (call $add (i32.const 0) (i32.const {x_b}) (i32.const 3) (i32.const {x_a}) (i32.const 3)))
             (drop (call $remove (i32.const 0) (i32.const {path}) (i32.const 5)))
             ;; NotFound (1) for a missing header goes into the status code of the reply.
             (i32.store (i32.const 0x60)
               (call $value (i32.const 0) (i32.const {missing}) (i32.const 9) (i32.const 0x68) (i32.const 0x6c)))
             (drop (call $pairs (i32.const 0) (i32.const 0x50) (i32.const 0x54)))
             (drop (call $send (i32.add (i32.const 500) (i32.load (i32.const 0x60))) (i32.const 0) (i32.const 0)
               (i32.load (i32.const 0x50)) (i32.load (i32.const 0x54)) (i32.const 0) (i32.const 0) (i32.const -1)))
             (i32.const 1))"#
    ));
    let mut plugin = wat.load().unwrap();
    let outcome = plugin.request().header("x-a", "old").authority("a.example.com").send().unwrap();
    let reply = outcome.local_response.expect("a reply");
    assert_eq!(reply.status, 501, "proxy_get_header_map_value answers NotFound (1)");
    let pairs = deserialize_pairs(&reply.body).unwrap();
    let pairs: Vec<(String, String)> =
        pairs.into_iter().map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())).collect();
    let expected = [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "a.example.com"),
        ("x-a", "1"),
        ("x-b", "1"),
        ("x-b", "X-A"),
    ];
    assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    assert_eq!(outcome.action, Action::Pause);
}

/// Time, metrics of each kind, and the tick: results land in gauges the test reads.
#[test]
fn time_metrics_and_ticks() {
    let mut wat = Wat::new()
        .import(r#"(import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))"#)
        .import(r#"(import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))"#)
        .import(r#"(import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))"#)
        .import(r#"(import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))"#)
        .import(r#"(import "env" "proxy_get_metric" (func $get (param i32 i32) (result i32)))"#)
        .import(r#"(import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))"#)
        .import(r#"(import "env" "proxy_get_log_level" (func $level (param i32) (result i32)))"#);
    let (now, _) = wat.string("now");
    let (hits, _) = wat.string("hits");
    let (copy, _) = wat.string("hits_copy");
    let (level, _) = wat.string("level");
    let wat = wat.body(&format!(
        r#"(func $record_now
             (drop (call $now (i32.const 0x48)))
             (drop (call $record (i32.load (i32.const 0x40)) (i64.load (i32.const 0x48)))))
           (func (export "proxy_on_configure") (param i32 i32) (result i32)
             (drop (call $define (i32.const 1) (i32.const {now}) (i32.const 3) (i32.const 0x40)))
             (drop (call $define (i32.const 0) (i32.const {hits}) (i32.const 4) (i32.const 0x50)))
             (drop (call $define (i32.const 1) (i32.const {copy}) (i32.const 9) (i32.const 0x54)))
             (drop (call $define (i32.const 1) (i32.const {level}) (i32.const 5) (i32.const 0x58)))
             (drop (call $inc (i32.load (i32.const 0x50)) (i64.const 3)))
             (drop (call $get (i32.load (i32.const 0x50)) (i32.const 0x60)))
             (drop (call $record (i32.load (i32.const 0x54)) (i64.load (i32.const 0x60))))
             (drop (call $level (i32.const 0x68)))
             (drop (call $record (i32.load (i32.const 0x58)) (i64.extend_i32_u (i32.load (i32.const 0x68)))))
             (call $record_now)
             (drop (call $set_tick (i32.const 250)))
             (i32.const 1))
           (func (export "proxy_on_tick") (param i32)
             (drop (call $inc (i32.load (i32.const 0x50)) (i64.const 1)))
             (call $record_now))"#
    ));
    let mut plugin = Plugin::from_bytes(wat.build()).log_level(LogLevel::Warn).load().unwrap();
    let start = plugin.metric("now").unwrap();
    assert_eq!(start, 1_700_000_000_000_000_000);
    assert_eq!(plugin.metric("hits_copy"), Some(3), "proxy_get_metric reads what proxy_increment_metric added");
    assert_eq!(plugin.metric("level"), Some(LogLevel::Warn as u64));
    plugin.tick().unwrap();
    plugin.tick().unwrap();
    assert_eq!(plugin.metric("hits"), Some(5));
    assert_eq!(plugin.metric("now"), Some(start + 500_000_000), "each tick advances the clock by the period");
    plugin.tick_root_now(plugin.roots()[0]).unwrap();
    assert_eq!(plugin.metric("now"), Some(start + 500_000_000), "tick_root_now leaves the clock alone");
    plugin.set_clock(start - 7);
    assert_eq!(plugin.clock(), start - 7);
    plugin.tick_root_now(plugin.roots()[0]).unwrap();
    assert_eq!(plugin.metric("now"), Some(start - 7), "the clock goes back when set back");
    // A removed root: its proxy_on_done and proxy_on_delete ran (none exported here), then no
    // more ticks or streams.
    let root = plugin.roots()[0];
    plugin.remove_root(root).unwrap();
    assert!(plugin.roots().is_empty());
    assert!(matches!(plugin.tick_root(root), Err(HarnessError::UnknownRoot { id }) if id == root));
    assert!(matches!(plugin.remove_root(root), Err(HarnessError::UnknownRoot { .. })));
    assert_eq!(plugin.metric("hits"), Some(7), "3, then four ticks");
}

/// A registered foreign function sees the calling stream and returns bytes the module can read;
/// an unregistered name is NotFound; a failure's status reaches the module; results pointer 0
/// still runs the function but allocates nothing in the module.
#[test]
fn foreign_functions_round_trip() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use wasm_test_harness::abi::Status;

    let mut wat = Wat::new().import(
        r#"(import "env" "proxy_call_foreign_function" (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))"#,
    );
    let (echo, echo_len) = wat.string("echo");
    let (missing, missing_len) = wat.string("missing");
    let (fail, fail_len) = wat.string("fail");
    let (args, args_len) = wat.string("args");
    let not_found = wat.log("missing: NotFound");
    let failed = wat.log("fail: InternalFailure");
    let status_only = wat.log("echo, status only: Ok");
    let call = |name: u32, len: usize, out: (u32, u32)| {
        format!("(call $foreign (i32.const {name}) (i32.const {len}) (i32.const {args}) (i32.const {args_len}) (i32.const {}) (i32.const {}))", out.0, out.1)
    };
    let wat = wat.body(&format!(
        r#"(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
             (if (i32.eqz {echo_call}) (then (drop (call $log (i32.const 2) (i32.load (i32.const 0x40)) (i32.load (i32.const 0x44))))))
             (if (i32.eq {missing_call} (i32.const 1)) (then {not_found}))
             (if (i32.eq {fail_call} (i32.const {internal})) (then {failed}))
             (i32.store (i32.const 0x50) (global.get $next))
             (if (i32.eqz {status_only_call}) (then (if (i32.eq (global.get $next) (i32.load (i32.const 0x50))) (then {status_only}))))
             (i32.const 0))"#,
        echo_call = call(echo, echo_len, (0x40, 0x44)),
        missing_call = call(missing, missing_len, (0x40, 0x44)),
        fail_call = call(fail, fail_len, (0, 0)),
        status_only_call = call(echo, echo_len, (0, 0)),
        internal = Status::InternalFailure as i32,
    ));
    let echoes = Arc::new(AtomicU32::new(0));
    let counted = echoes.clone();
    let mut plugin = Plugin::from_bytes(wat.build())
        .foreign_function("echo", move |host, args| {
            counted.fetch_add(1, Ordering::Relaxed);
            assert!(host.in_stream());
            let authority = host.request_header(":authority").unwrap_or_default();
            let sni = host.property(&["connection", "requested_server_name"]).unwrap_or_default();
            Ok([args, b" ", authority, b" ", sni].concat())
        })
        .foreign_function("fail", |_, _| Err(Status::InternalFailure))
        .load()
        .unwrap();
    let outcome = plugin.request().sni("a.example.com").authority("b.example.com").send().unwrap();
    let lines: Vec<&str> = outcome.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        lines,
        ["args b.example.com a.example.com", "missing: NotFound", "fail: InternalFailure", "echo, status only: Ok"]
    );
    assert_eq!(echoes.load(Ordering::Relaxed), 2);
}
