//! One request, handled against a `StreamHost`: the small seam between the decision logic and
//! the proxy-wasm ABI, so this module is tested natively with a fake host.

use crate::config::{Mode, Settings};
use crate::metrics::{Counter, Counts};
use crate::verdict::check;

/// `status_code_details` of the local reply, shown in Envoy's access log as
/// `%RESPONSE_CODE_DETAILS%`.
pub const RESPONSE_DETAILS: &str = "sni_guard_misdirected_request";

/// What the host (Envoy) offers one stream.
pub trait StreamHost {
    type Bytes: AsRef<[u8]>;
    /// Whether the host itself confirmed, in one call, that the request's `:authority` is the
    /// connection's SNI byte for byte (Envoy evaluating `cel::same_name_expression`); `false`
    /// when it did not or cannot tell. `true` lets the request pass without reading either.
    fn confirms_same_name(&mut self) -> bool;
    /// `connection.requested_server_name`; `None` when the connection has none.
    fn requested_server_name(&mut self) -> Option<Self::Bytes>;
    /// A request header (`:authority`, `:path`).
    fn request_header(&mut self, name: &str) -> Option<Self::Bytes>;
    /// Whether the downstream protocol is HTTP/1.x, where a connection is not multiplexed, so
    /// the 421 asks for it to be closed (`connection: close`). Envoy (1.40) removes that header
    /// from every response and keeps the connection open, and no proxy-wasm call closes it
    /// without losing the 421: see README, "HTTP/1.1 and closing the connection".
    fn is_http1(&mut self) -> bool;
    fn send_local_response(&mut self, status: u32, details: &str, headers: &[(&str, &str)], body: &[u8]);
    /// Adds to an Envoy counter.
    fn increment(&mut self, counter: Counter, by: u64);
}

/// What `proxy_on_request_headers` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

pub fn on_request_headers(settings: &Settings, counts: &mut Counts, host: &mut impl StreamHost) -> Action {
    counts.pending_checked += 1;
    // The usual request, settled by one host call; `verdict::check` passes it too.
    if host.confirms_same_name() {
        return Action::Continue;
    }
    let sni = host.requested_server_name();
    let authority = host.request_header(":authority");
    let sni = sni.as_ref().map(AsRef::as_ref);
    let authority = authority.as_ref().map(AsRef::as_ref);
    let Err(why) = check(settings, sni, authority) else {
        return Action::Continue;
    };
    if is_exempt(settings, host) {
        return Action::Continue;
    }
    // A mismatch crosses into the host anyway: bring the checked counter up to date too.
    counts.flush(|counter, by| host.increment(counter, by));
    match settings.mode {
        Mode::DryRun => {
            host.increment(Counter::DryRunMismatch, 1);
            log::info!(
                "sni-guard dry run: would answer 421: sni={} authority={}: {}",
                shown(sni),
                shown(authority),
                why.describe()
            );
            Action::Continue
        }
        Mode::Enforce => {
            host.increment(Counter::Rejected, 1);
            log::debug!(
                "sni-guard: answering 421: sni={} authority={}: {}",
                shown(sni),
                shown(authority),
                why.describe()
            );
            send_misdirected(settings, host);
            Action::Pause
        }
    }
}

fn is_exempt(settings: &Settings, host: &mut impl StreamHost) -> bool {
    if settings.exempt_paths.is_empty() {
        return false;
    }
    let Some(path) = host.request_header(":path") else { return false };
    let path = path.as_ref();
    settings.exempt_paths.iter().any(|prefix| path.starts_with(prefix))
}

fn send_misdirected(settings: &Settings, host: &mut impl StreamHost) {
    let mut headers = vec![("content-type", "text/plain; charset=utf-8")];
    if host.is_http1() {
        headers.push(("connection", "close"));
    }
    host.send_local_response(421, RESPONSE_DETAILS, &headers, &settings.response_body);
}

/// A value for a log line: quoted, non-UTF-8 bytes escaped, long values cut.
fn shown(value: Option<&[u8]>) -> String {
    match value {
        None => "(none)".into(),
        Some(v) => {
            let cut = &v[..v.len().min(256)];
            format!("{:?}{}", String::from_utf8_lossy(cut), if v.len() > cut.len() { "..." } else { "" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    fn run(json: &str, host: &mut FakeHost) -> (Action, Counts) {
        let settings = Settings::from_json(json.as_bytes()).unwrap();
        let mut counts = Counts::default();
        let action = on_request_headers(&settings, &mut counts, host);
        (action, counts)
    }

    #[test]
    fn matching_request_continues_without_host_writes() {
        let mut host = FakeHost::request("a.example.com", "a.example.com", "/");
        let (action, counts) = run("", &mut host);
        assert_eq!(action, Action::Continue);
        assert!(host.reply.is_none());
        assert!(host.counters.is_empty(), "no metric call on the fast path");
        assert_eq!(counts.pending_checked, 1);
    }

    #[test]
    fn a_host_that_confirms_the_same_name_spares_both_reads() {
        let mut host = FakeHost::request("a.example.com", "a.example.com", "/");
        host.same_name_expression = Some(crate::cel::SAME_NAME);
        let (action, counts) = run("", &mut host);
        assert_eq!(action, Action::Continue);
        assert_eq!(host.calls.confirms_same_name, 1);
        assert_eq!((host.calls.requested_server_name, host.calls.request_header), (0, 0), "nothing read");
        assert_eq!(counts.pending_checked, 1, "still counted as checked");
    }

    #[test]
    fn an_unconfirmed_request_gets_the_full_check() {
        for (authority, expect) in [("A.EXAMPLE.COM:443", Action::Continue), ("b.example.com", Action::Pause)] {
            let mut host = FakeHost::request("a.example.com", authority, "/");
            host.same_name_expression = Some(crate::cel::SAME_NAME);
            assert_eq!(run("", &mut host).0, expect, "{authority}");
            assert_eq!((host.calls.requested_server_name, host.calls.request_header.min(1)), (1, 1), "{authority}");
        }
    }

    #[test]
    fn mismatch_is_answered_421_and_counted() {
        let mut host = FakeHost::request("a.example.com", "b.example.com", "/");
        host.protocol = "HTTP/1.1".into();
        let (action, counts) = run("", &mut host);
        assert_eq!(action, Action::Pause);
        let (status, headers, body) = host.reply.unwrap();
        assert_eq!(status, 421);
        assert!(headers.contains(&("connection".into(), "close".into())));
        assert!(headers.contains(&("content-type".into(), "text/plain; charset=utf-8".into())));
        assert_eq!(body, crate::config::DEFAULT_RESPONSE_BODY.as_bytes());
        assert_eq!(host.counters["sni_guard.rejected"], 1);
        assert_eq!(host.counters["sni_guard.checked"], 1);
        assert_eq!(counts.pending_checked, 0);
    }

    #[test]
    fn http2_reply_has_no_connection_header() {
        let mut host = FakeHost::request("a.example.com", "b.example.com", "/");
        run("", &mut host);
        let (_, headers, _) = host.reply.unwrap();
        assert!(headers.iter().all(|(k, _)| k != "connection"));
    }

    #[test]
    fn dry_run_counts_and_continues() {
        let mut host = FakeHost::request("a.example.com", "b.example.com", "/");
        let (action, _) = run(r#"{"mode":"dry_run"}"#, &mut host);
        assert_eq!(action, Action::Continue);
        assert!(host.reply.is_none());
        assert_eq!(host.counters["sni_guard.dry_run_mismatch"], 1);
        assert!(!host.counters.contains_key("sni_guard.rejected"));
    }

    #[test]
    fn exempt_paths_pass() {
        let json = r#"{"exempt_paths":["/.well-known/acme-challenge/"],"response_body":"nope"}"#;
        let mut host = FakeHost::request("a.example.com", "b.example.com", "/.well-known/acme-challenge/token");
        assert_eq!(run(json, &mut host).0, Action::Continue);
        let mut host = FakeHost::request("a.example.com", "b.example.com", "/.well-known/other");
        assert_eq!(run(json, &mut host).0, Action::Pause);
        assert_eq!(host.reply.unwrap().2, b"nope");
    }

    #[test]
    fn missing_values_get_defined_answers() {
        let mut host = FakeHost::default();
        assert_eq!(run("", &mut host).0, Action::Continue, "no SNI, no authority: allowed by default");
        let mut host = FakeHost { sni: Some(b"a.example.com".to_vec()), ..FakeHost::default() };
        assert_eq!(run("", &mut host).0, Action::Pause, "SNI but no authority");
        let mut host = FakeHost::request("a.example.com", "b", "/");
        host.sni = None;
        assert_eq!(run(r#"{"on_missing_sni":"reject"}"#, &mut host).0, Action::Pause);
    }
}
