//! The decision itself: does this request belong on this connection?

use crate::config::{OnMissingSni, Settings};
use crate::host_name::{authority_host, same_name, HostError, HostKey};

/// Why a request is misdirected; shown in the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misdirection {
    /// The connection carried no SNI and `on_missing_sni` is `reject`.
    MissingSni,
    /// The request has no `:authority`.
    MissingAuthority,
    /// `:authority` is not a host (and port).
    MalformedAuthority(HostError),
    /// The SNI is not a host name, so no server can be matched.
    MalformedSni,
    /// The two names pick different servers, or, outside every server, differ.
    OtherServer,
}

impl Misdirection {
    pub fn describe(&self) -> String {
        match self {
            Misdirection::MissingSni => "the connection has no SNI".into(),
            Misdirection::MissingAuthority => "the request has no :authority".into(),
            Misdirection::MalformedAuthority(e) => format!("malformed :authority: {e}"),
            Misdirection::MalformedSni => "the SNI is not a host name".into(),
            Misdirection::OtherServer => "the host belongs to another server".into(),
        }
    }
}

/// `Ok` when the request may be served on this connection.
///
/// `sni` is `connection.requested_server_name` (`None` or empty when the client sent none);
/// `authority` is the `:authority` header.
pub fn check(settings: &Settings, sni: Option<&[u8]>, authority: Option<&[u8]>) -> Result<(), Misdirection> {
    let sni = match sni {
        Some(sni) if !sni.is_empty() => sni,
        _ => {
            return match settings.on_missing_sni {
                OnMissingSni::Allow => Ok(()),
                OnMissingSni::Reject => Err(Misdirection::MissingSni),
            }
        }
    };
    let authority = authority.ok_or(Misdirection::MissingAuthority)?;
    // The very name the connection was opened for is never misdirected, whatever its form;
    // Envoy's own check (`cel`) passes exactly these requests without the module looking.
    if authority == sni {
        return Ok(());
    }
    let host = authority_host(authority).map_err(Misdirection::MalformedAuthority)?;
    // The common case, and the only one without a server table: the same name.
    if same_name(sni, host) {
        return Ok(());
    }
    if settings.servers.is_empty() {
        return Err(Misdirection::OtherServer);
    }
    let sni_key = HostKey::fold(sni).ok_or(Misdirection::MalformedSni)?;
    let host_key = HostKey::fold(host).ok_or(Misdirection::MalformedAuthority(HostError::BadCharacter))?;
    match (settings.servers.server_of(sni_key.as_bytes()), settings.servers.server_of(host_key.as_bytes())) {
        (Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(Misdirection::OtherServer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Settings {
        Settings::from_json(json.as_bytes()).unwrap()
    }

    fn verdict(s: &Settings, sni: Option<&str>, authority: Option<&str>) -> Result<(), Misdirection> {
        check(s, sni.map(str::as_bytes), authority.map(str::as_bytes))
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
    }

    #[test]
    fn different_names_are_misdirected_by_default() {
        let s = Settings::default();
        assert_eq!(verdict(&s, Some("a.example.com"), Some("b.example.com")), Err(Misdirection::OtherServer));
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
    fn an_authority_identical_to_the_sni_passes_whatever_its_form() {
        let s = settings(r#"{"servers":[{"hosts":["a.example.com"]}]}"#);
        for name in ["a.example.com", "::1", "a b", "x.example.com:8443", "[::1"] {
            assert_eq!(verdict(&s, Some(name), Some(name)), Ok(()), "{name:?}");
        }
        let reject = settings(r#"{"on_missing_sni":"reject"}"#);
        assert_eq!(verdict(&reject, Some(""), Some("")), Err(Misdirection::MissingSni), "no SNI is not a name");
    }

    #[test]
    fn missing_sni_follows_configuration() {
        let allow = Settings::default();
        assert_eq!(verdict(&allow, None, Some("b.example.com")), Ok(()));
        assert_eq!(verdict(&allow, Some(""), Some("b.example.com")), Ok(()));
        let reject = settings(r#"{"on_missing_sni":"reject"}"#);
        assert_eq!(verdict(&reject, None, Some("b.example.com")), Err(Misdirection::MissingSni));
        assert_eq!(verdict(&reject, Some(""), None), Err(Misdirection::MissingSni));
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
        // Outside every server: only the same name passes.
        assert_eq!(verdict(&s, Some("x.org"), Some("X.ORG")), Ok(()));
        assert_eq!(verdict(&s, Some("x.org"), Some("y.org")), Err(Misdirection::OtherServer));
        assert_eq!(verdict(&s, Some("a.example.com"), Some("y.org")), Err(Misdirection::OtherServer));
        assert_eq!(verdict(&s, Some("bad sni"), Some("a.example.com")), Err(Misdirection::MalformedSni));
    }
}
