//! Which gateway server a name belongs to. Two lookups, because Envoy and the spec use two
//! rules:
//!
//! - `server_for_sni`: the server whose filter chain Envoy picks for a TLS SNI, exactly as
//!   Envoy 1.40 does (checked in Envoy, see README "How it decides"): the SNI lower-cased and
//!   matched literally against `server_names`, an exact name first, then each wildcard suffix
//!   from the longest, then the chain without `server_names` (a server listing `*`). So a
//!   trailing dot is not ignored: `a.example.com.` matches no listed name.
//! - `server_of`: the server a request's host belongs to (Gateway API's "a listener matches the
//!   Host"): the same precedence on the host already folded to lower case without its trailing
//!   dot, since `A.Example.com.` is the same DNS name as `a.example.com`.

use std::fmt;

use crate::host_name::{check_host_name, HostKey};
use crate::name_index::NameIndex;

/// Index of a server in the plugin configuration's `servers` list.
pub type ServerId = usize;

/// A host pattern from the configuration, already validated and folded to lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `a.example.com`
    Exact(Vec<u8>),
    /// `*.example.com`, stored as `example.com`: matches names below it at any depth.
    Wildcard(Vec<u8>),
    /// `*`: every name.
    Any,
}

impl HostPattern {
    /// Reads one entry of a server's hosts: `a.example.com`, `*.example.com`, `*`, each
    /// optionally behind Istio's `namespace/` (the namespace is ignored). Folded to lower case,
    /// as Envoy folds `server_names`. A trailing dot is refused: Envoy would match it only
    /// against an SNI with the dot, which clients do not send (RFC 6066), so such a server is
    /// never what is meant.
    pub fn parse(host: &str) -> Result<HostPattern, String> {
        let name = match host.split_once('/') {
            Some((namespace, name)) => {
                if namespace.is_empty() || name.contains('/') {
                    return Err("expected \"namespace/host\" with one '/'".into());
                }
                name
            }
            None => host,
        };
        if name == "*" {
            return Ok(HostPattern::Any);
        }
        let (wildcard, rest) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        if rest.contains('*') {
            return Err("a wildcard is allowed only as the whole first label, as in \"*.example.com\"".into());
        }
        if rest.ends_with('.') {
            return Err(format!(
                "a trailing dot: Envoy matches {name:?} only against an SNI ending in '.', which clients do not send; \
                 write {:?}",
                &name[..name.len() - 1]
            ));
        }
        check_host_name(rest.as_bytes()).map_err(|e| format!("not a host name: {e}"))?;
        let folded = HostKey::fold(rest.as_bytes()).ok_or("not a host name")?.as_bytes().to_vec();
        Ok(if wildcard { HostPattern::Wildcard(folded) } else { HostPattern::Exact(folded) })
    }

    /// Whether this pattern alone matches `name` (lower case, no trailing dot): equal to an
    /// exact name, strictly below a wildcard's suffix, or anything for `*`.
    pub fn matches(&self, name: &[u8]) -> bool {
        match self {
            HostPattern::Exact(exact) => exact.as_slice() == name,
            HostPattern::Wildcard(suffix) => is_below(name, suffix),
            HostPattern::Any => true,
        }
    }
}

/// `name` is `suffix` with one or more non-empty labels in front.
fn is_below(name: &[u8], suffix: &[u8]) -> bool {
    name.len() > suffix.len() + 1 && name.ends_with(suffix) && name[name.len() - suffix.len() - 1] == b'.'
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(&String::from_utf8_lossy(name)),
            HostPattern::Wildcard(suffix) => write!(f, "*.{}", String::from_utf8_lossy(suffix)),
            HostPattern::Any => f.write_str("*"),
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ServerTable {
    exact: NameIndex,
    /// Wildcards by their suffix: `*.example.com` as `example.com`.
    wildcard: NameIndex,
    any: Option<ServerId>,
    /// Some server's host is below another server's wildcard (see `has_nested_servers`).
    nested: bool,
}

/// The same pattern listed twice, by `first` and `second` (indexes into `servers`).
#[derive(Debug, PartialEq, Eq)]
pub struct DuplicateHost {
    pub pattern: HostPattern,
    pub first: ServerId,
    pub second: ServerId,
}

impl ServerTable {
    /// Builds the table; a pattern claimed by two different servers is refused, since Envoy
    /// could not tell which filter chain serves it. A pattern repeated within one server is
    /// harmless and kept once.
    pub fn new(patterns: impl IntoIterator<Item = (HostPattern, ServerId)>) -> Result<ServerTable, DuplicateHost> {
        let mut table = ServerTable::default();
        for (pattern, server) in patterns {
            let inserted = match &pattern {
                HostPattern::Exact(name) => table.exact.insert(name, server),
                HostPattern::Wildcard(suffix) => table.wildcard.insert(suffix, server),
                HostPattern::Any => match table.any {
                    Some(first) if first != server => Err(first),
                    _ => {
                        table.any = Some(server);
                        Ok(())
                    }
                },
            };
            if let Err(first) = inserted {
                return Err(DuplicateHost { pattern, first, second: server });
            }
        }
        table.nested = table.exact.iter().chain(table.wildcard.iter()).any(|(name, server)| {
            let mut rest = name;
            while let Some(dot) = rest.iter().position(|&b| b == b'.') {
                rest = &rest[dot + 1..];
                if table.wildcard.get(rest).is_some_and(|other| other != server) {
                    return true;
                }
            }
            false
        });
        Ok(table)
    }

    /// Whether a host of one server (`a.w.example.com`, `*.a.w.example.com`) is below another
    /// server's wildcard (`*.w.example.com`). Gateways serve routes by the hosts they match, so
    /// the wildcard's route table may then hold the other server's hosts too, and a connection
    /// whose SNI Envoy matched to the wildcard can reach them.
    pub fn has_nested_servers(&self) -> bool {
        self.nested
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.any.is_none()
    }

    /// The server that lists `*`: its filter chain has no `server_names`, so Envoy hands it
    /// every connection no other chain takes, those without SNI included.
    pub fn catch_all(&self) -> Option<ServerId> {
        self.any
    }

    /// The server whose filter chain Envoy picks for a connection with this SNI (see the module
    /// comment). Any bytes: no allocation, no validation, as Envoy matches whatever it got.
    pub fn server_for_sni(&self, sni: &[u8]) -> Option<ServerId> {
        if let Some(server) = self.exact.get(sni) {
            return Some(server);
        }
        // Envoy's wildcard loop: each '.' from index 1 on with something after it starts a
        // suffix (".example.com", then ".com") looked up among `*.` names.
        let mut from = 1;
        while let Some(dot) = sni.get(from..).and_then(|rest| rest.iter().position(|&b| b == b'.')).map(|i| from + i) {
            if dot + 1 >= sni.len() {
                break;
            }
            if let Some(server) = self.wildcard.get(&sni[dot + 1..]) {
                return Some(server);
            }
            from = dot + 1;
        }
        self.any
    }

    /// The server serving the host `name` (any case, no trailing dot), if any.
    pub fn server_of(&self, name: &[u8]) -> Option<ServerId> {
        if let Some(server) = self.exact.get(name) {
            return Some(server);
        }
        // Suffixes after each dot, longest first: `x.a.example.com` tries `a.example.com`,
        // then `example.com`, then `com`. The label before the dot must be non-empty, so
        // `*.example.com` does not match `example.com` itself, as in Envoy.
        let mut rest = name;
        while let Some(dot) = rest.iter().position(|&b| b == b'.') {
            let suffix = &rest[dot + 1..];
            if dot > 0 {
                if let Some(server) = self.wildcard.get(suffix) {
                    return Some(server);
                }
            }
            rest = suffix;
        }
        self.any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(s: &str) -> HostPattern {
        HostPattern::Exact(s.as_bytes().to_vec())
    }
    fn wild(s: &str) -> HostPattern {
        HostPattern::Wildcard(s.as_bytes().to_vec())
    }

    #[test]
    fn exact_beats_wildcard_and_longest_suffix_wins() {
        let table = ServerTable::new([
            (wild("example.com"), 0),
            (wild("a.example.com"), 1),
            (exact("x.a.example.com"), 2),
            (HostPattern::Any, 3),
        ])
        .unwrap();
        assert_eq!(table.server_of(b"x.a.example.com"), Some(2));
        assert_eq!(table.server_of(b"y.a.example.com"), Some(1));
        assert_eq!(table.server_of(b"deep.y.a.example.com"), Some(1));
        assert_eq!(table.server_of(b"b.example.com"), Some(0));
        assert_eq!(table.server_of(b"example.com"), Some(3));
        assert_eq!(table.server_of(b"other.org"), Some(3));
    }

    #[test]
    fn no_match_without_catch_all() {
        let table = ServerTable::new([(wild("example.com"), 0)]).unwrap();
        assert_eq!(table.server_of(b"example.com"), None);
        assert_eq!(table.server_of(b".example.com"), None);
        assert_eq!(table.server_of(b"example.org"), None);
    }

    #[test]
    fn a_pattern_alone_matches_as_the_table_does() {
        for (pattern, name) in [
            ("example.com", "a.example.com"),
            ("example.com", "x.a.example.com"),
            ("example.com", "example.com"),
            ("example.com", "aexample.com"),
            ("example.com", ".example.com"),
        ] {
            let table = ServerTable::new([(wild(pattern), 0)]).unwrap();
            assert_eq!(
                wild(pattern).matches(name.as_bytes()),
                table.server_of(name.as_bytes()) == Some(0),
                "{pattern} {name}"
            );
        }
        assert!(exact("a.example.com").matches(b"a.example.com"));
        assert!(!exact("a.example.com").matches(b"b.example.com"));
        assert!(HostPattern::Any.matches(b"anything"));
        assert_eq!(wild("example.com").to_string(), "*.example.com");
        assert_eq!(HostPattern::Any.to_string(), "*");
    }

    /// What Envoy 1.40 did with these SNIs, seen with a listener whose chains list
    /// `a.example.com`, `*.wild.example.com` and (the catch-all) nothing.
    #[test]
    fn sni_picks_the_chain_envoy_picks() {
        let table =
            ServerTable::new([(exact("a.example.com"), 0), (wild("wild.example.com"), 1), (HostPattern::Any, 2)])
                .unwrap();
        for (sni, server) in [
            ("a.example.com", 0),
            ("A.EXAMPLE.COM", 0),
            ("a.example.com.", 2),
            ("x.wild.example.com", 1),
            ("y.x.wild.example.com", 1),
            ("X.WILD.example.com", 1),
            ("wild.example.com", 2),
            ("x.wild.example.com.", 2),
            ("other.org", 2),
            // Envoy's loop starts at index 1 and skips nothing else: ".." still reaches a suffix.
            ("a..wild.example.com", 1),
            (".wild.example.com", 2),
            ("wild.example.com.x", 2),
            ("a b.wild.example.com", 1),
            ("", 2),
        ] {
            assert_eq!(table.server_for_sni(sni.as_bytes()), Some(server), "{sni:?}");
        }
        let no_catch_all = ServerTable::new([(exact("a.example.com"), 0)]).unwrap();
        assert_eq!(no_catch_all.server_for_sni(b"a.example.com."), None, "Envoy fails the handshake");
        assert_eq!(no_catch_all.catch_all(), None);
        assert_eq!(table.catch_all(), Some(2));
    }

    #[test]
    fn patterns_parse_as_gateways_write_them() {
        assert_eq!(HostPattern::parse("A.Example.com"), Ok(exact("a.example.com")));
        assert_eq!(HostPattern::parse("ns/*.example.com"), Ok(wild("example.com")));
        assert_eq!(HostPattern::parse("*/*"), Ok(HostPattern::Any));
        for bad in ["a.example.com.", "*.example.com.", "a.*.com", "*example.com", "a/b/c", "/a.com", "a b", ""] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert!(HostPattern::parse("a.example.com.").unwrap_err().contains("trailing dot"));
    }

    #[test]
    fn nesting_is_another_server_below_a_wildcard() {
        let table = |patterns: &[(&str, ServerId)]| {
            ServerTable::new(patterns.iter().map(|(p, s)| (HostPattern::parse(p).unwrap(), *s))).unwrap()
        };
        for (patterns, nested) in [
            (&[("*.example.com", 0), ("a.example.com", 1)][..], true),
            (&[("*.example.com", 0), ("x.a.example.com", 1)][..], true),
            (&[("*.example.com", 0), ("*.a.example.com", 1)][..], true),
            (&[("*.a.example.com", 1), ("*.example.com", 0)][..], true),
            (&[("*.example.com", 0), ("a.example.com", 0)][..], false),
            (&[("*.a.example.com", 0), ("a.example.com", 1)][..], false),
            (&[("*.example.com", 0), ("example.com", 1), ("a.example.org", 2)][..], false),
            (&[("a.example.com", 0), ("b.example.com", 1), ("*", 2)][..], false),
        ] {
            assert_eq!(table(patterns).has_nested_servers(), nested, "{patterns:?}");
        }
    }

    #[test]
    fn duplicates_across_servers_are_refused() {
        let err = ServerTable::new([(exact("a.example.com"), 0), (exact("a.example.com"), 2)]).unwrap_err();
        assert_eq!((err.first, err.second), (0, 2));
        assert!(ServerTable::new([(HostPattern::Any, 0), (HostPattern::Any, 1)]).is_err());
        assert!(ServerTable::new([(exact("a.example.com"), 0), (exact("a.example.com"), 0)]).is_ok());
    }
}
