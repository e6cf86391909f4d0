//! One request, handled against a `StreamHost`: the small seam between the decision logic and
//! the proxy-wasm ABI, so this module is tested natively with a fake host.

use crate::config::{Mode, Settings};
use crate::metrics::{Counter, ServerPair, UNKNOWN_SERVER};
use crate::verdict::decide;

/// `status_code_details` of the local reply, shown in Envoy's access log as
/// `%RESPONSE_CODE_DETAILS%`.
pub const RESPONSE_DETAILS: &str = "sni_guard_misdirected_request";

/// A root context: one filter configuration.
pub type RootId = u32;

/// What the host says of a request's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names<B> {
    /// The host's same-name test held (`cel::SameNameTest`): `:authority` is the SNI, and the
    /// request passes without either being read.
    Same,
    /// The names, and the root context the stream belongs to if the host said.
    Read { root: Option<RootId>, sni: Option<B>, authority: Option<B> },
}

/// What the host (Envoy) offers one stream.
pub trait StreamHost {
    type Bytes: AsRef<[u8]>;
    /// The request's names, as cheaply as the host can give them.
    fn names(&mut self) -> Names<Self::Bytes>;
    /// A request header (`:path`).
    fn request_header(&mut self, name: &str) -> Option<Self::Bytes>;
    fn send_local_response(&mut self, status: u32, details: &str, headers: &[(&str, &str)], body: &[u8]);
    /// Counts one event. The host may batch (`checked` happens on every request).
    fn count(&mut self, counter: Counter);
    /// Counts a misdirected request for its pair of servers; the host bounds the series.
    fn count_pair(&mut self, pair: &ServerPair<'_>);
    /// Marks the stream for the access log: `421`, or `dry_run_421` for a would-be 421
    /// (Envoy: filter state `wasm.sni_guard`, printed by `%FILTER_STATE(wasm.sni_guard:PLAIN)%`).
    fn mark(&mut self, decision: &str);
    /// Logs a dry run's would-be 421; the host bounds how many such lines reach its log.
    fn log_dry_run(&mut self, line: &str);
}

/// The configurations a stream may belong to.
pub trait Configurations {
    /// The settings of root context `root`, or, when the host could not say which, the only
    /// configuration there is. `None`: not configured.
    fn settings(&self, root: Option<RootId>) -> Option<&Settings>;
}

/// One configuration for every stream: the native tests, and hosts with one root context.
impl Configurations for Settings {
    fn settings(&self, _root: Option<RootId>) -> Option<&Settings> {
        Some(self)
    }
}

/// What `proxy_on_request_headers` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

pub fn on_request_headers(configurations: &impl Configurations, host: &mut impl StreamHost) -> Action {
    host.count(Counter::Checked);
    let (root, sni, authority) = match host.names() {
        Names::Same => return Action::Continue,
        Names::Read { root, sni, authority } => (root, sni, authority),
    };
    // Not configured: Envoy does not run a plugin whose configuration failed, so this is only
    // reachable by a host that skips proxy_on_configure; pass rather than guess.
    let Some(settings) = configurations.settings(root) else { return Action::Continue };
    let sni = sni.as_ref().map(AsRef::as_ref);
    let authority = authority.as_ref().map(AsRef::as_ref);
    let decision = decide(settings, sni, authority);
    let Err(why) = decision.verdict else {
        return Action::Continue;
    };
    if is_exempt(settings, host) {
        return Action::Continue;
    }
    let name = |server: Option<usize>| server.and_then(|s| settings.server_name(s)).unwrap_or(UNKNOWN_SERVER);
    let (connection_server, host_server) = (name(decision.connection_server), name(decision.host_server));
    let counter = match settings.mode {
        Mode::DryRun => Counter::DryRunMismatch,
        Mode::Enforce => Counter::Rejected,
    };
    host.count(counter);
    host.count_pair(&ServerPair { counter, root, connection_server, host_server });
    match settings.mode {
        Mode::DryRun => {
            host.mark("dry_run_421");
            host.log_dry_run(&format!(
                "sni-guard dry run: would answer 421: sni={} authority={}: {}",
                shown(sni),
                shown(authority),
                why.describe()
            ));
            Action::Continue
        }
        Mode::Enforce => {
            host.mark("421");
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
    host.request_header(":path").is_some_and(|path| settings.exempt_paths.contains(path.as_ref()))
}

/// The 421. No `connection: close` on HTTP/1.x: Envoy (1.40) removes that header from every
/// response and keeps the connection open, so asking costs a host call (the protocol, about
/// 11,000 instructions per 421) for nothing; docs/design.md, "HTTP/1.1 and closing the connection".
fn send_misdirected(settings: &Settings, host: &mut impl StreamHost) {
    host.send_local_response(
        421,
        RESPONSE_DETAILS,
        &[("content-type", "text/plain; charset=utf-8")],
        &settings.response_body,
    );
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
    use crate::cel::SameNameTest;
    use crate::testing::FakeHost;

    fn run(json: &str, host: &mut FakeHost) -> Action {
        let settings = Settings::from_json(json.as_bytes()).unwrap();
        on_request_headers(&settings, host)
    }

    #[test]
    fn matching_request_continues_without_host_writes() {
        let mut host = FakeHost::request("a.example.com", "a.example.com", "/");
        assert_eq!(run("", &mut host), Action::Continue);
        assert!(host.reply.is_none());
        assert_eq!(host.counters.len(), 1, "only checked: {:?}", host.counters);
        assert_eq!(host.counters["sni_guard.checked"], 1);
    }

    #[test]
    fn a_host_that_confirms_the_same_name_spares_the_reads() {
        let mut host = FakeHost::request("a.example.com", "a.example.com", "/");
        host.same_name_test = Some(SameNameTest::Plain);
        assert_eq!(run("", &mut host), Action::Continue);
        assert_eq!(host.calls.names, 1);
        assert_eq!(host.calls.request_header, 0, "nothing read");
        assert_eq!(host.counters["sni_guard.checked"], 1, "still counted as checked");
    }

    #[test]
    fn an_unconfirmed_request_gets_the_full_check() {
        for (authority, expect) in [("A.EXAMPLE.COM:443", Action::Continue), ("b.example.com", Action::Pause)] {
            let mut host = FakeHost::request("a.example.com", authority, "/");
            host.same_name_test = Some(SameNameTest::Plain);
            assert_eq!(run("", &mut host), expect, "{authority}");
        }
    }

    #[test]
    fn each_root_answers_by_its_own_configuration() {
        struct Two(Settings, Settings);
        impl Configurations for Two {
            fn settings(&self, root: Option<RootId>) -> Option<&Settings> {
                match root {
                    Some(1) => Some(&self.0),
                    Some(2) => Some(&self.1),
                    _ => None,
                }
            }
        }
        let two = Two(Settings::from_json(br#"{"mode":"dry_run"}"#).unwrap(), Settings::default());
        for (root, expect) in [(1, Action::Continue), (2, Action::Pause)] {
            let mut host = FakeHost::request("a.example.com", "b.example.com", "/");
            host.root = Some(root);
            assert_eq!(on_request_headers(&two, &mut host), expect, "root {root}");
        }
        let mut host = FakeHost::request("a.example.com", "b.example.com", "/");
        host.root = Some(3);
        assert_eq!(on_request_headers(&two, &mut host), Action::Continue, "an unknown root: not configured");
    }

    #[test]
    fn mismatch_is_answered_421_and_counted() {
        for protocol in ["HTTP/1.1", "HTTP/2"] {
            let mut host = FakeHost::request("a.example.com", "b.example.com", "/");
            host.protocol = protocol.into();
            assert_eq!(run("", &mut host), Action::Pause);
            let (status, headers, body) = host.reply.unwrap();
            assert_eq!(status, 421);
            assert_eq!(headers, [("content-type".to_string(), "text/plain; charset=utf-8".to_string())], "{protocol}");
            assert_eq!(body, crate::config::DEFAULT_RESPONSE_BODY.as_bytes());
            assert_eq!(host.counters["sni_guard.rejected"], 1);
            assert_eq!(host.counters["sni_guard.checked"], 1);
        }
    }

    #[test]
    fn dry_run_counts_logs_and_continues() {
        let mut host = FakeHost::request("a.example.com", "b.example.com", "/");
        assert_eq!(run(r#"{"mode":"dry_run"}"#, &mut host), Action::Continue);
        assert!(host.reply.is_none());
        assert_eq!(host.counters["sni_guard.dry_run_mismatch"], 1);
        assert!(!host.counters.contains_key("sni_guard.rejected"));
        assert_eq!(host.dry_run_lines.len(), 1);
        assert!(host.dry_run_lines[0].contains("would answer 421"), "{:?}", host.dry_run_lines);
        assert_eq!(host.mark.as_deref(), Some("dry_run_421"));
    }

    #[test]
    fn misdirected_requests_are_counted_per_pair_of_servers() {
        let json = r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["ns/b.example.com","c.example.com"]}]}"#;
        let mut host = FakeHost::request("a.example.com", "c.example.com", "/");
        assert_eq!(run(json, &mut host), Action::Pause);
        assert_eq!(host.mark.as_deref(), Some("421"));
        let pair = "sni_guard.connection_server=.=a.example.com;.;host_server=.=b.example.com;.;rejected_by_server";
        assert_eq!(host.counters[pair], 1, "{:?}", host.counters);
        let mut host = FakeHost::request("x.example.org", "a.example.com", "/");
        run(json, &mut host);
        let pair = "sni_guard.connection_server=.=unknown;.;host_server=.=a.example.com;.;rejected_by_server";
        assert_eq!(host.counters[pair], 1, "{:?}", host.counters);
    }

    #[test]
    fn exempt_paths_pass() {
        let json = r#"{"exempt_paths":["/.well-known/acme-challenge/"],"response_body":"nope"}"#;
        let mut host = FakeHost::request("a.example.com", "b.example.com", "/.well-known/acme-challenge/token");
        assert_eq!(run(json, &mut host), Action::Continue);
        let mut host = FakeHost::request("a.example.com", "b.example.com", "/.well-known/acme-challenge/..%2fadmin");
        assert_eq!(run(json, &mut host), Action::Pause);
        let mut host = FakeHost::request("a.example.com", "b.example.com", "/.well-known/other");
        assert_eq!(run(json, &mut host), Action::Pause);
        assert_eq!(host.reply.unwrap().2, b"nope");
    }

    #[test]
    fn missing_values_get_defined_answers() {
        let mut host = FakeHost::default();
        assert_eq!(run("", &mut host), Action::Continue, "no SNI, no authority: allowed by default");
        let mut host = FakeHost { sni: Some(b"a.example.com".to_vec()), ..FakeHost::default() };
        assert_eq!(run("", &mut host), Action::Pause, "SNI but no authority");
        let mut host = FakeHost::request("a.example.com", "b", "/");
        host.sni = None;
        assert_eq!(run(r#"{"on_missing_sni":"reject"}"#, &mut host), Action::Pause);
    }
}
