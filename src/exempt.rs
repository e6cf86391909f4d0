//! `exempt_paths`: path prefixes a misdirected request may still reach (ACME HTTP-01
//! challenges, health checks), without a way to walk out of them.
//!
//! The filter sees `:path` after the connection manager's normalisation, whatever that was
//! configured to be, and the backend behind the wrong route table may decode what Envoy kept
//! (`%2F`, `%5C`, `;`). So the part after the prefix must be plain: path segments of RFC 3986
//! unreserved characters, none of them `.` or `..`. Anything else (a percent sign, `;`, `\`,
//! an empty or dot segment) makes the request not exempt, and it is answered as misdirected.

/// The configured prefixes, each validated.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExemptPaths {
    prefixes: Vec<Vec<u8>>,
}

impl ExemptPaths {
    /// Checks one configured prefix: `/`, then plain segments, optionally ending in `/`.
    pub fn check_prefix(prefix: &str) -> Result<(), String> {
        let Some(rest) = prefix.strip_prefix('/') else {
            return Err("a path prefix starts with '/'".into());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return if prefix == "/" {
                Err("\"/\" would exempt every path".into())
            } else {
                Err("an empty segment (\"//\")".into())
            };
        }
        match plain_segments(rest.as_bytes()) {
            true => Ok(()),
            false => Err("use plain segments only: letters, digits, '-', '.', '_', '~'; no '.' or '..' segment, \
                 no empty segment, no '%', ';', '\\\\', '?' or '#'"
                .into()),
        }
    }

    /// Builds the set; every prefix must have passed `check_prefix`.
    pub fn new(prefixes: impl IntoIterator<Item = String>) -> ExemptPaths {
        ExemptPaths { prefixes: prefixes.into_iter().map(String::into_bytes).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// Whether `path` (`:path`, with any query) is under a prefix with a plain remainder.
    pub fn contains(&self, path: &[u8]) -> bool {
        let path = match path.iter().position(|&b| b == b'?') {
            Some(query) => &path[..query],
            None => path,
        };
        self.prefixes.iter().any(|prefix| {
            let Some(rest) = path.strip_prefix(prefix.as_slice()) else { return false };
            // A prefix without its trailing '/' ends at a segment boundary: "/healthz" covers
            // "/healthz/x", not "/healthzX".
            let rest = match prefix.ends_with(b"/") {
                true => rest,
                false if rest.is_empty() => return true,
                false => match rest.strip_prefix(b"/") {
                    Some(rest) => rest,
                    None => return false,
                },
            };
            let rest = rest.strip_suffix(b"/").unwrap_or(rest);
            rest.is_empty() || plain_segments(rest)
        })
    }
}

/// Non-empty `/`-separated segments of unreserved characters, none `.` or `..`.
fn plain_segments(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').all(|segment| {
        !segment.is_empty()
            && segment != b"."
            && segment != b".."
            && segment.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(prefixes: &[&str]) -> ExemptPaths {
        for p in prefixes {
            ExemptPaths::check_prefix(p).unwrap();
        }
        ExemptPaths::new(prefixes.iter().map(|p| p.to_string()))
    }

    #[test]
    fn a_plain_token_under_the_prefix_is_exempt() {
        let acme = paths(&["/.well-known/acme-challenge/"]);
        for path in [
            "/.well-known/acme-challenge/",
            "/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
            "/.well-known/acme-challenge/token?x=../y",
            "/.well-known/acme-challenge/a/b/",
        ] {
            assert!(acme.contains(path.as_bytes()), "{path}");
        }
    }

    #[test]
    fn no_way_out_of_the_prefix() {
        let acme = paths(&["/.well-known/acme-challenge/"]);
        for path in [
            "/.well-known/acme-challenge/..%2fadmin",
            "/.well-known/acme-challenge/..%5cadmin",
            "/.well-known/acme-challenge/%2e%2e/admin",
            "/.well-known/acme-challenge/../admin",
            "/.well-known/acme-challenge/./x",
            "/.well-known/acme-challenge/..",
            "/.well-known/acme-challenge/x;y=z",
            "/.well-known/acme-challenge/x\\..\\admin",
            "/.well-known/acme-challenge//admin",
            "/.well-known/acme-challengeX",
            "/.well-known/other",
            "/",
            "",
        ] {
            assert!(!acme.contains(path.as_bytes()), "{path}");
        }
    }

    #[test]
    fn a_prefix_without_a_slash_ends_at_a_segment() {
        let health = paths(&["/healthz"]);
        assert!(health.contains(b"/healthz"));
        assert!(health.contains(b"/healthz/live"));
        assert!(health.contains(b"/healthz?full=1"));
        assert!(!health.contains(b"/healthzX"));
        assert!(!health.contains(b"/healthz/../admin"));
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(ExemptPaths::check_prefix("/.well-known/acme-challenge/").is_ok());
        assert!(ExemptPaths::check_prefix("/healthz").is_ok());
        for bad in ["well-known", "/", "//x", "/a/../b", "/a/%2e", "/a;b", "/a?b", "/a\\b", "/./a", "/a//b"] {
            assert!(ExemptPaths::check_prefix(bad).is_err(), "{bad}");
        }
    }
}
