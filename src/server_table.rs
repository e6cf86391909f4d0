//! Which gateway server a host name belongs to, picked the way Envoy picks a filter chain by
//! `server_names`: an exact name beats a wildcard, the longest wildcard suffix wins, and a
//! server that lists `*` takes whatever nothing else took.

use std::fmt;

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

#[derive(Debug, Default)]
pub struct ServerTable {
    /// Sorted by name for binary search.
    exact: Vec<(Vec<u8>, ServerId)>,
    /// Sorted by suffix for binary search.
    wildcard: Vec<(Vec<u8>, ServerId)>,
    any: Option<ServerId>,
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
            let (list, key) = match &pattern {
                HostPattern::Exact(name) => (&mut table.exact, name),
                HostPattern::Wildcard(suffix) => (&mut table.wildcard, suffix),
                HostPattern::Any => match table.any {
                    Some(first) if first != server => return Err(DuplicateHost { pattern, first, second: server }),
                    _ => {
                        table.any = Some(server);
                        continue;
                    }
                },
            };
            match list.binary_search_by(|(k, _)| k.as_slice().cmp(key)) {
                Ok(at) if list[at].1 != server => {
                    let first = list[at].1;
                    return Err(DuplicateHost { pattern, first, second: server });
                }
                Ok(_) => {}
                Err(at) => list.insert(at, (key.clone(), server)),
            }
        }
        Ok(table)
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.any.is_none()
    }

    /// The server serving `name` (lower case, no trailing dot), if any.
    pub fn server_of(&self, name: &[u8]) -> Option<ServerId> {
        if let Some(server) = find(&self.exact, name) {
            return Some(server);
        }
        // Suffixes after each dot, longest first: `x.a.example.com` tries `a.example.com`,
        // then `example.com`, then `com`. The label before the dot must be non-empty, so
        // `*.example.com` does not match `example.com` itself, as in Envoy.
        let mut rest = name;
        while let Some(dot) = rest.iter().position(|&b| b == b'.') {
            let suffix = &rest[dot + 1..];
            if dot > 0 {
                if let Some(server) = find(&self.wildcard, suffix) {
                    return Some(server);
                }
            }
            rest = suffix;
        }
        self.any
    }
}

fn find(list: &[(Vec<u8>, ServerId)], key: &[u8]) -> Option<ServerId> {
    list.binary_search_by(|(k, _)| k.as_slice().cmp(key)).ok().map(|at| list[at].1)
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

    #[test]
    fn duplicates_across_servers_are_refused() {
        let err = ServerTable::new([(exact("a.example.com"), 0), (exact("a.example.com"), 2)]).unwrap_err();
        assert_eq!((err.first, err.second), (0, 2));
        assert!(ServerTable::new([(HostPattern::Any, 0), (HostPattern::Any, 1)]).is_err());
        assert!(ServerTable::new([(exact("a.example.com"), 0), (exact("a.example.com"), 0)]).is_ok());
    }
}
