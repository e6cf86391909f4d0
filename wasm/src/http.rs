//! The HTTP stream: one export, `proxy_on_request_headers`, with no per-stream state.

use sni_guard::cel::{self, Reading};
use sni_guard::log_limit::LogLimiter;
use sni_guard::metrics::{Counter, ServerPair};
use sni_guard::stream::{on_request_headers, Action, Names, StreamHost};

use crate::abi::{action, status};
use crate::hostcalls::{self, HostBytes};
use crate::root::{dry_run_summary, with_vm, Cel, Counters};

/// A value the host returned, whole or a part of one (the SNI and `:authority` come back in
/// one CEL value).
pub enum Value {
    Whole(HostBytes),
    /// Bytes inside `EnvoyStream::answer`, which outlives every `Value` made from it: the
    /// stream is dropped only after `on_request_headers` returns, and `answer` is set once.
    Part(*const u8, usize),
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        match self {
            Value::Whole(bytes) => bytes.as_ref(),
            // SAFETY: see `Value::Part`: the bytes are alive and not written while it exists.
            Value::Part(data, size) => unsafe { std::slice::from_raw_parts(*data, *size) },
        }
    }
}

struct EnvoyStream<'a> {
    cel: Cel,
    counters: &'a mut Counters,
    dry_run_log: &'a mut LogLimiter,
    /// The CEL value `names` parts point into.
    answer: Option<HostBytes>,
}

impl EnvoyStream<'_> {
    /// The names from one evaluation of the root's expression; `None` when Envoy could not
    /// give them (no `:authority`, no CEL) or handed over an SNI that is no host name.
    fn names_from_cel(&mut self, request: u32) -> Option<Names<Value>> {
        let value = match hostcalls::evaluate_expression(request) {
            Ok(value) => value,
            Err(status::SERIALIZATION_FAILURE) => return Some(Names::Same),
            Err(_) => return None,
        };
        let (root, sni, authority) = match cel::read_value(value.as_ref()) {
            Reading::SameName => return Some(Names::Same),
            Reading::Names { root, sni, authority } => (root, sni, authority),
            Reading::Unread => return None,
        };
        let part = |bytes: &[u8]| Value::Part(bytes.as_ptr(), bytes.len());
        let names = Names::Read {
            root: Some(root),
            sni: (!sni.is_empty()).then(|| part(sni)),
            authority: Some(part(authority)),
        };
        // Moving the handle does not move the bytes the parts point into.
        self.answer = Some(value);
        Some(names)
    }

    /// The names read one by one, and the root if Envoy's CEL can say.
    fn names_read(&self) -> Names<Value> {
        let root = match self.cel {
            Cel::Tokens { identity, .. } => hostcalls::evaluate_expression(identity)
                .ok()
                .and_then(|v| std::str::from_utf8(v.as_ref()).ok().and_then(|s| s.parse().ok())),
            _ => None,
        };
        let sni = hostcalls::property(b"connection\0requested_server_name\0").filter(|v| !v.as_ref().is_empty());
        let authority = hostcalls::request_header(":authority");
        Names::Read { root, sni: sni.map(Value::Whole), authority: authority.map(Value::Whole) }
    }
}

impl StreamHost for EnvoyStream<'_> {
    type Bytes = Value;

    fn names(&mut self) -> Names<Value> {
        if let Cel::Tokens { request, .. } = self.cel {
            if let Some(names) = self.names_from_cel(request) {
                return names;
            }
        }
        self.names_read()
    }

    fn request_header(&mut self, name: &str) -> Option<Value> {
        hostcalls::request_header(name).map(Value::Whole)
    }

    fn send_local_response(&mut self, status: u32, details: &str, headers: &[(&str, &str)], body: &[u8]) {
        hostcalls::send_local_response(status, details, headers, body);
    }

    fn count(&mut self, counter: Counter) {
        self.counters.count(counter);
    }

    fn count_pair(&mut self, pair: &ServerPair<'_>) {
        self.counters.count_pair(pair);
    }

    fn mark(&mut self, decision: &str) {
        hostcalls::set_property("sni_guard", decision.as_bytes());
    }

    fn log_dry_run(&mut self, line: &str) {
        if !log::log_enabled!(log::Level::Warn) {
            return;
        }
        let now = hostcalls::current_time_nanos();
        if let Some(suppressed) = self.dry_run_log.summary(now) {
            log::warn!("{}", dry_run_summary(suppressed));
        }
        if self.dry_run_log.admit(now) {
            log::warn!("{line}");
        }
    }
}

#[no_mangle]
// `end_of_stream` is an i32 in the ABI: taken as u32, since any value but 0 or 1 would be
// undefined behaviour as a Rust bool.
pub extern "C" fn proxy_on_request_headers(_context_id: u32, _num_headers: usize, _end_of_stream: u32) -> u32 {
    let action = with_vm(|vm| {
        let mut stream =
            EnvoyStream { cel: vm.cel, counters: &mut vm.counters, dry_run_log: &mut vm.dry_run_log, answer: None };
        // The names land in the scratch area: no heap allocation on the fast path.
        crate::allocator::scratch::during(|| on_request_headers(&vm.roots, &mut stream))
    });
    match action {
        Some(Action::Pause) => action::PAUSE,
        // Not configured: Envoy does not run a plugin whose configuration failed, so this is
        // only reachable by a host that skips proxy_on_configure; pass rather than guess.
        Some(Action::Continue) | None => action::CONTINUE,
    }
}
