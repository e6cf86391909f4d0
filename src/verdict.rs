//! The decision itself: does this request belong on this connection?
//!
//! Gateway API's rule (GEP-3567, `Listener.Hostname` in `apis/v1/gateway_types.go`), with
//! sni-guard's servers as its listeners: the connection belongs to the server whose filter
//! chain Envoy picked by SNI; a request whose host belongs to another server is misdirected
//! (421); a host no server serves is not, and goes on to the route table (404 there).

use crate::config::{OnMissingSni, Settings};
use crate::host_name::{authority_host, same_name, HostError};
use crate::server_table::ServerId;

/// Why a request is misdirected; shown in the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misdirection {
    /// The connection carried no SNI, no server takes such connections, and `on_missing_sni`
    /// is `reject`.
    MissingSni,
    /// The request has no `:authority`.
    MissingAuthority,
    /// `:authority` is not a host (and port).
    MalformedAuthority(HostError),
    /// The host belongs to another server than the connection's (or, with no servers
    /// configured, is another name).
    OtherServer,
}

impl Misdirection {
    pub fn describe(&self) -> String {
        match self {
            Misdirection::MissingSni => "the connection has no SNI".into(),
            Misdirection::MissingAuthority => "the request has no :authority".into(),
            Misdirection::MalformedAuthority(e) => format!("malformed :authority: {e}"),
            Misdirection::OtherServer => "the host belongs to another server".into(),
        }
    }
}

/// A decision and the servers it was made between, for logs and per-server counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Result<(), Misdirection>,
    /// The server whose filter chain the connection is in, when known.
    pub connection_server: Option<ServerId>,
    /// The server the request's host belongs to, when it has one.
    pub host_server: Option<ServerId>,
}

/// `Ok` when the request may be served on this connection.
///
/// `sni` is `connection.requested_server_name` (`None` or empty when the client sent none);
/// `authority` is the `:authority` header.
pub fn check(settings: &Settings, sni: Option<&[u8]>, authority: Option<&[u8]>) -> Result<(), Misdirection> {
    decide(settings, sni, authority).verdict
}

/// `check`, with the servers involved.
pub fn decide(settings: &Settings, sni: Option<&[u8]>, authority: Option<&[u8]>) -> Decision {
    let servers = &settings.servers;
    let sni = sni.unwrap_or_default();
    let connection_server = match sni.is_empty() {
        // Envoy hands a connection without SNI to the chain without server_names, if any.
        true => servers.catch_all(),
        false => servers.server_for_sni(sni),
    };
    let decision = |verdict, host_server| Decision { verdict, connection_server, host_server };
    if sni.is_empty() && connection_server.is_none() {
        return decision(
            match settings.on_missing_sni {
                OnMissingSni::Allow => Ok(()),
                OnMissingSni::Reject => Err(Misdirection::MissingSni),
            },
            None,
        );
    }
    let Some(authority) = authority else { return decision(Err(Misdirection::MissingAuthority), None) };
    // The very name the connection was opened for passes, as Envoy's same-name test (`cel`)
    // passes it without the module looking, by the test these servers need
    // (`SameNameTest::required`): with a catch-all or nested servers only a dotted name, whose
    // chain is its host's server; otherwise any text, since Envoy refuses the handshake of an
    // SNI matching no server.
    if settings.same_name.holds(Some(sni), Some(authority)) {
        return decision(Ok(()), connection_server);
    }
    by_servers(settings, sni, authority, connection_server)
}

/// The check itself, for an SNI and `:authority` the same-name shortcut did not settle.
fn by_servers(settings: &Settings, sni: &[u8], authority: &[u8], connection_server: Option<ServerId>) -> Decision {
    let servers = &settings.servers;
    let decision = |verdict, host_server| Decision { verdict, connection_server, host_server };
    let host = match authority_host(authority) {
        Ok(host) => host,
        Err(e) => return decision(Err(Misdirection::MalformedAuthority(e)), None),
    };
    if servers.is_empty() {
        // No servers: the strict default, only the same name passes.
        let verdict = if same_name(sni, host) { Ok(()) } else { Err(Misdirection::OtherServer) };
        return decision(verdict, None);
    }
    // `host` passed `check_host_name`: only one trailing dot to drop; the lookup folds case.
    let host = host.strip_suffix(b".").unwrap_or(host);
    match servers.server_of(host) {
        // A host no server serves belongs to no other server: the route table answers (404).
        None => decision(Ok(()), None),
        Some(host_server) if Some(host_server) == connection_server => decision(Ok(()), Some(host_server)),
        Some(host_server) => decision(Err(Misdirection::OtherServer), Some(host_server)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::SameNameTest;

    fn settings(json: &str) -> Settings {
        Settings::from_json(json.as_bytes()).unwrap()
    }

    fn verdict(s: &Settings, sni: Option<&str>, authority: Option<&str>) -> Result<(), Misdirection> {
        check(s, sni.map(str::as_bytes), authority.map(str::as_bytes))
    }

    /// The Gateway of Gateway API's conformance test HTTPRouteHTTPSListenerDetectMisdirectedRequests
    /// (`same-namespace-with-https-listener`), as `sni-guard config` writes it.
    const CONFORMANCE: &str = r#"{"servers":[{"hosts":["*"]},{"hosts":["second-example.org"]},
        {"hosts":["*.wildcard.org"]},{"hosts":["fourth-example.wildcard.org"]}]}"#;

    #[test]
    fn gateway_api_conformance_cases() {
        let s = settings(CONFORMANCE);
        // (SNI, Host, 421?) for every case of the conformance test; "pass" is a 200 or a 404
        // from the route table.
        for (sni, host, misdirected) in [
            ("example.org", "example.org", false),
            ("example.org", "second-example.org", true),
            ("example.org", "unknown-example.org", false),
            ("second-example.org", "second-example.org", false),
            ("second-example.org", "example.org", true),
            ("second-example.org", "unknown-example.org", true),
            ("third-example.wildcard.org", "third-example.wildcard.org", false),
            ("third-example.wildcard.org", "fith-example.wildcard.org", false),
            ("third-example.wildcard.org", "fourth-example.wildcard.org", true),
            ("third-example.wildcard.org", "second-example.org", true),
            ("third-example.wildcard.org", "unknown-example.org", true),
            ("fourth-example.wildcard.org", "fourth-example.wildcard.org", false),
            ("fourth-example.wildcard.org", "fith-example.wildcard.org", true),
            ("unknown-example.org", "example.org", false),
            ("unknown-example.org", "unknown-example.org", false),
        ] {
            assert_eq!(verdict(&s, Some(sni), Some(host)).is_err(), misdirected, "SNI {sni}, Host {host}");
        }
    }

    #[test]
    fn a_host_no_server_serves_goes_to_the_route_table() {
        let s = settings(r#"{"servers":[{"hosts":["second-example.org"]},{"hosts":["*.wildcard.org"]}]}"#);
        assert_eq!(verdict(&s, Some("second-example.org"), Some("unknown-example.org")), Ok(()));
        assert_eq!(verdict(&s, Some("second-example.org"), Some("x.wildcard.org")), Err(Misdirection::OtherServer));
        // Without servers, the documented default: another name is misdirected.
        let none = Settings::default();
        assert_eq!(
            verdict(&none, Some("second-example.org"), Some("unknown-example.org")),
            Err(Misdirection::OtherServer)
        );
    }

    #[test]
    fn the_connection_is_in_the_chain_envoy_picked() {
        let s = settings(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*"]}]}"#);
        // Envoy matches `server_names` literally: a trailing dot lands in the catch-all chain.
        assert_eq!(verdict(&s, Some("a.example.com."), Some("a.example.com")), Err(Misdirection::OtherServer));
        assert_eq!(verdict(&s, Some("a.example.com."), Some("a.example.com.")), Err(Misdirection::OtherServer));
        assert_eq!(verdict(&s, Some("b.example.com."), Some("example.org")), Ok(()));
        // Without SNI, too; there the catch-all's own hosts pass whatever on_missing_sni says.
        assert_eq!(verdict(&s, None, Some("example.org")), Ok(()));
        assert_eq!(verdict(&s, None, Some("a.example.com")), Err(Misdirection::OtherServer));
        let reject = settings(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*"]}],"on_missing_sni":"reject"}"#);
        assert_eq!(verdict(&reject, None, Some("example.org")), Ok(()));
        // No name on either side: an empty :authority is no host name, so it is malformed.
        assert_eq!(verdict(&reject, Some(""), Some("")), Err(Misdirection::MalformedAuthority(HostError::Empty)));
        // Upper case reaches the chain Envoy lower-cases it into.
        assert_eq!(verdict(&s, Some("A.EXAMPLE.COM"), Some("a.example.com")), Ok(()));
    }

    /// The issue's bypass: Envoy matches `server_names` literally, so these SNIs are in the
    /// catch-all chain, while the host (port, dot and userinfo aside) is another server's.
    #[test]
    fn with_a_catch_all_only_a_dotted_name_passes_as_the_same_name() {
        let s = settings(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]},{"hosts":["*"]}]}"#);
        for name in ["b.example.com:443", "b.example.com:", "b.example.com.:443", "b.example.com.", "x@b.example.com"] {
            assert_eq!(s.servers.server_for_sni(name.as_bytes()), Some(2), "{name}: the catch-all chain");
            assert!(verdict(&s, Some(name), Some(name)).is_err(), "{name:?}");
        }
        for name in ["b.example.com", "B.Example.COM", "other.org", "x_y.other-name.org"] {
            assert_eq!(verdict(&s, Some(name), Some(name)), Ok(()), "{name:?}");
        }
        // Not a host name, but no other server's either: malformed, as any :authority.
        assert!(matches!(verdict(&s, Some("a b"), Some("a b")), Err(Misdirection::MalformedAuthority(_))));
    }

    #[test]
    fn a_trailing_dot_matters_only_where_a_catch_all_chain_can_take_it() {
        let s = settings(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]}]}"#);
        assert_eq!(verdict(&s, Some("a.example.com."), Some("a.example.com.")), Ok(()));
        assert_eq!(verdict(&s, Some("a.example.com."), Some("b.example.com")), Err(Misdirection::OtherServer));
    }

    #[test]
    fn without_a_catch_all_on_missing_sni_decides() {
        let allow = settings(r#"{"servers":[{"hosts":["a.example.com"]}]}"#);
        assert_eq!(verdict(&allow, None, Some("a.example.com")), Ok(()));
        let reject = settings(r#"{"servers":[{"hosts":["a.example.com"]}],"on_missing_sni":"reject"}"#);
        assert_eq!(verdict(&reject, None, Some("a.example.com")), Err(Misdirection::MissingSni));
        assert_eq!(verdict(&reject, Some(""), Some("")), Err(Misdirection::MissingSni));
    }

    #[test]
    fn lua_snippet_failures_are_fixed() {
        let s = Settings::default();
        // The Lua snippet compares raw strings: each of these was a false 421.
        assert_eq!(verdict(&s, Some("a.example.com"), Some("A.EXAMPLE.COM")), Ok(()));
        assert_eq!(verdict(&s, Some("a.example.com"), Some("a.example.com.")), Ok(()));
        assert_eq!(verdict(&s, Some("a.example.com"), Some("a.example.com:8443")), Ok(()));
        assert_eq!(verdict(&s, Some("A.Example.Com."), Some("a.example.com")), Ok(()));
        // And these it could not parse at all.
        assert_eq!(verdict(&s, Some("a.example.com"), Some("[::1]:8443")), Err(Misdirection::OtherServer));
        assert_eq!(verdict(&s, Some("a.example.com"), None), Err(Misdirection::MissingAuthority));
        let servers = settings(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]}]}"#);
        assert_eq!(verdict(&servers, Some("a.example.com"), Some("A.EXAMPLE.COM.:443")), Ok(()));
    }

    #[test]
    fn malformed_authority_is_misdirected_when_there_is_an_sni() {
        let s = Settings::default();
        for bad in ["", ":443", "[::1", "a b", "a..example.com"] {
            assert!(
                matches!(verdict(&s, Some("a.example.com"), Some(bad)), Err(Misdirection::MalformedAuthority(_))),
                "{bad:?}"
            );
        }
        let long = "x".repeat(256);
        assert!(verdict(&s, Some("a.example.com"), Some(&long)).is_err());
        assert_eq!(verdict(&s, None, Some("a b")), Ok(()));
    }

    #[test]
    fn an_authority_identical_to_the_sni_passes_whatever_its_form_without_a_catch_all() {
        let s = settings(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*.w.example.com"]}]}"#);
        for name in ["a.example.com", "::1", "a b", "x.example.com:8443", "[::1", "x@y.w.example.com"] {
            assert_eq!(verdict(&s, Some(name), Some(name)), Ok(()), "{name:?}");
        }
        let reject = settings(r#"{"on_missing_sni":"reject"}"#);
        assert_eq!(verdict(&reject, Some(""), Some("")), Err(Misdirection::MissingSni), "no SNI is not a name");
    }

    #[test]
    fn hosts_of_one_server_share_a_connection() {
        let s = settings(
            r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]},
            {"hosts":["c.example.com","ns/d.example.com"]},{"hosts":["*.wild.example.com"]}]}"#,
        );
        assert_eq!(verdict(&s, Some("c.example.com"), Some("D.example.com:443")), Ok(()));
        assert_eq!(verdict(&s, Some("x.wild.example.com"), Some("y.z.wild.example.com")), Ok(()));
        assert_eq!(verdict(&s, Some("a.example.com"), Some("b.example.com")), Err(Misdirection::OtherServer));
        assert_eq!(verdict(&s, Some("a.example.com"), Some("c.example.com")), Err(Misdirection::OtherServer));
        // Hosts outside every server go to the route table.
        assert_eq!(verdict(&s, Some("x.org"), Some("X.ORG")), Ok(()));
        assert_eq!(verdict(&s, Some("x.org"), Some("y.org")), Ok(()));
        assert_eq!(verdict(&s, Some("a.example.com"), Some("y.org")), Ok(()));
        // A connection in no server's chain (Envoy would have refused its handshake) asking
        // for a server's host.
        assert_eq!(verdict(&s, Some("bad sni"), Some("a.example.com")), Err(Misdirection::OtherServer));
    }

    #[test]
    fn decisions_name_both_servers() {
        let s = settings(r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]}]}"#);
        let d = decide(&s, Some(b"a.example.com"), Some(b"b.example.com"));
        assert_eq!((d.connection_server, d.host_server), (Some(0), Some(1)));
        let d = decide(&s, Some(b"a.example.com"), Some(b"a.example.com"));
        assert_eq!((d.verdict, d.connection_server, d.host_server), (Ok(()), Some(0), Some(0)));
    }

    const NAMES: [Option<&str>; 17] = [
        None,
        Some(""),
        Some("a.example.com"),
        Some("a.example.com."),
        Some("A.EXAMPLE.COM"),
        Some("b.example.com"),
        Some("b.example.com."),
        Some("example.org"),
        Some("::1"),
        Some("[::1]:8443"),
        Some("a b"),
        Some("a.example.com:443"),
        Some("é.example"),
        Some("."),
        Some("a.example.com.:443"),
        Some("x@b.example.com"),
        Some("a.example.com:x.w.example.com"),
    ];

    /// Whenever the test a configuration requires (or a stronger one) holds, the check without
    /// the shortcut passes the request too, or the request could only be malformed in its own
    /// connection's chain (`Plain`: an SNI matching no server has no connection); with a
    /// catch-all or nested servers (`HostName`), it passes.
    #[test]
    fn the_required_test_implies_the_full_check_passes() {
        for config in [
            r#"{}"#,
            r#"{"on_missing_sni":"reject"}"#,
            r#"{"servers":[{"hosts":["b.example.com"]}]}"#,
            r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]}],"on_missing_sni":"reject"}"#,
            r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*"]}]}"#,
            r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*"]}],"on_missing_sni":"reject"}"#,
            r#"{"servers":[{"hosts":["*.example.com"]},{"hosts":["*"]}]}"#,
            r#"{"servers":[{"hosts":["*.w.example.com"]},{"hosts":["a.example.com"]},{"hosts":["x.w.example.com"]}]}"#,
        ] {
            let settings = Settings::from_json(config.as_bytes()).unwrap();
            let test = SameNameTest::required(&settings.servers, settings.on_missing_sni);
            assert_eq!(settings.same_name, test);
            for stronger in SameNameTest::ALL.into_iter().filter(|t| *t >= test) {
                for sni in NAMES {
                    for authority in NAMES {
                        let (sni, authority) = (sni.map(str::as_bytes), authority.map(str::as_bytes));
                        if stronger.holds(sni, authority) {
                            let what = format!("{config} {stronger:?} {sni:?} {authority:?}");
                            assert_eq!(check(&settings, sni, authority), Ok(()), "{what}");
                            let (sni, authority) = (sni.unwrap_or_default(), authority.unwrap_or_default());
                            let connection = match sni.is_empty() {
                                true => settings.servers.catch_all(),
                                false => settings.servers.server_for_sni(sni),
                            };
                            let full = by_servers(&settings, sni, authority, connection).verdict;
                            match test {
                                SameNameTest::HostName => assert_eq!(full, Ok(()), "{what}"),
                                _ => assert!(
                                    full.is_ok()
                                        || connection.is_none()
                                        || matches!(full, Err(Misdirection::MalformedAuthority(_))),
                                    "{what}: {full:?}"
                                ),
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_weaker_test_would_change_answers() {
        let catch_all = Settings::from_json(br#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*"]}]}"#).unwrap();
        for name in ["a.example.com.", "a.example.com:443", "a.example.com:", "a.example.com.:443", "x@a.example.com"] {
            let name = Some(name.as_bytes());
            assert!(SameNameTest::WithSni.holds(name, name) || name.is_some_and(|n| n.ends_with(b".")));
            assert!(check(&catch_all, name, name).is_err(), "so only HostName is enough with a catch-all: {name:?}");
        }
        let nested = settings(r#"{"servers":[{"hosts":["*.w.example.com"]},{"hosts":["b.w.example.com"]}]}"#);
        let sni = b"b.w.example.com:x.w.example.com";
        assert_eq!(nested.servers.server_for_sni(sni), Some(0), "the wildcard's chain");
        assert!(check(&nested, Some(sni), Some(sni)).is_err(), "so HostName with a server below another's wildcard");
        let reject = Settings::from_json(br#"{"on_missing_sni":"reject"}"#).unwrap();
        assert!(SameNameTest::NoTrailingDot.holds(None, Some(b"")));
        assert!(check(&reject, None, Some(b"")).is_err(), "so NoTrailingDot is not enough for reject");
    }
}
