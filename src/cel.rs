//! What sni-guard asks Envoy's CEL, and what Envoy answers: the contract the module, the fake
//! hosts of the tests and the shipped matcher configurations hold to.
//!
//! Each root context (one per filter configuration) creates its expressions with Envoy's
//! `expr_create` when it is configured; a stream evaluates one with `expr_evaluate`. Envoy keeps
//! expressions per root context and numbers them from 0 in each, and a stream's evaluation
//! looks in its own root's: so the same token, evaluated by any stream, runs the expression of
//! that stream's root (the module checks every root got the same tokens). The expression names its root, which is how a stream learns which
//! configuration it belongs to (the module exports no per-stream callback but
//! `proxy_on_request_headers`, to keep Envoy's calls into it at one per request).
//!
//! In one evaluation it answers either "same name" or what the full check needs:
//!
//! ```text
//! <same-name test> ? null : '<root id>:' + connection.requested_server_name + '\x00' + request.host
//! ```
//!
//! - the same-name test holds: `null`, which Envoy cannot serialise, so the status is
//!   SerializationFailure and nothing is allocated in the module: the cheapest answer, for the
//!   usual request;
//! - otherwise the root id, the SNI and the `:authority`, in one value (one allocation);
//! - no `:authority` (`request.host` is then an error): InternalFailure; the module then
//!   evaluates the root's second expression (`identity_expression`, its id alone) and reads the
//!   SNI itself.
//!
//! Where the configuration needs `SameNameTest::HostName`, whose regular expression Envoy's
//! Wasm CEL would compile again on every evaluation (about 96,000 Envoy instructions per
//! request, against 2,500 for another condition), the expression tests the names' equality
//! only and then answers the SNI alone (`connection.requested_server_name`, with no NUL): the
//! module checks the name's characters itself (`read_value`), and reads the names one by one
//! for the rare SNI that is no host name. Envoy's matcher compiles the expression once, so
//! there the whole test is CEL.
//!
//! Behind Envoy's same-name matcher (`same_name_matcher` in the configuration) the module sees
//! only requests that failed the test, so its expression is just the names.
//!
//! The separator is NUL: BoringSSL refuses an SNI containing one, and Envoy's codecs refuse it
//! in a header value, so neither name can hold it.

use crate::host_name::is_dotted_name;

/// The CEL regular expression `host_name::is_dotted_name` states (RE2 syntax, whole value).
pub const DOTTED_NAME_REGEX: &str = "^[-0-9A-Z_a-z]+([.][-0-9A-Z_a-z]+)*$";

/// Envoy's test "this request is for the name its connection was opened with", in the four
/// strengths sni-guard knows, weakest first; each succeeds only where the full check (`verdict::check`) passes
/// the request for the configurations it is `required` for (`SameNameTest::required`, in
/// `config`: which test a configuration needs is read off the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SameNameTest {
    /// `:authority` is the SNI, byte for byte.
    Plain,
    /// ... and does not end with '.': with a catch-all chain, Envoy puts a connection whose SNI
    /// ends with '.' there, whatever server the name belongs to.
    NoTrailingDot,
    /// ... and the connection has an SNI: for `on_missing_sni: reject` without a catch-all
    /// server, where a connection without SNI is refused even with an empty `:authority`.
    WithSni,
    /// ... and the name is a dotted name (`host_name::is_dotted_name`): labels of letters,
    /// digits, '-' and '_', no port, userinfo, empty label or trailing dot. For a catch-all
    /// server, whose chain takes every SNI Envoy matched to no `server_names` (`b.example.com:443`,
    /// `x@b.example.com`), or a server below another's wildcard, whose hosts that wildcard's
    /// route table may serve (SNI `b.w.example.com:x.w.example.com` is in `*.w.example.com`'s
    /// chain). For a dotted name, Envoy's chain is the server of the host (`server_table`).
    HostName,
}

impl SameNameTest {
    pub const ALL: [SameNameTest; 4] =
        [SameNameTest::Plain, SameNameTest::NoTrailingDot, SameNameTest::WithSni, SameNameTest::HostName];

    /// The CEL text, as in the `description` of the shipped matchers.
    pub fn text(self) -> &'static str {
        match self {
            SameNameTest::Plain => "request.host == connection.requested_server_name",
            SameNameTest::NoTrailingDot => {
                "request.host == connection.requested_server_name && !request.host.endsWith('.')"
            }
            SameNameTest::WithSni => {
                "connection.requested_server_name != '' && request.host == connection.requested_server_name \
                 && !request.host.endsWith('.')"
            }
            SameNameTest::HostName => {
                "request.host == connection.requested_server_name \
                 && request.host.matches('^[-0-9A-Z_a-z]+([.][-0-9A-Z_a-z]+)*$')"
            }
        }
    }

    pub fn from_text(text: &str) -> Option<SameNameTest> {
        SameNameTest::ALL.into_iter().find(|t| t.text() == text)
    }

    /// Whether Envoy's evaluation succeeds for this request. `request.host` is the `:authority`
    /// (an error when absent: the test fails); `connection.requested_server_name` is "" without
    /// SNI.
    pub fn holds(self, sni: Option<&[u8]>, authority: Option<&[u8]>) -> bool {
        let sni = sni.unwrap_or_default();
        let Some(authority) = authority else { return false };
        let same = authority == sni;
        match self {
            SameNameTest::Plain => same,
            SameNameTest::NoTrailingDot => same && !authority.ends_with(b"."),
            SameNameTest::WithSni => same && !authority.ends_with(b".") && !sni.is_empty(),
            SameNameTest::HostName => same && is_dotted_name(sni),
        }
    }
}

/// The expression root context `root` creates: with the module's own same-name test, or
/// without one behind Envoy's matcher. For `HostName`, Envoy tests the equality and the module
/// the name (see the module comment).
pub fn request_expression(root: u32, same_name: Option<SameNameTest>) -> String {
    let names = format!("'{root}:' + connection.requested_server_name + '\\x00' + request.host");
    match same_name {
        Some(SameNameTest::HostName) => {
            format!("{} ? connection.requested_server_name : {names}", SameNameTest::Plain.text())
        }
        Some(test) => format!("{} ? null : {names}", test.text()),
        None => names,
    }
}

/// The second expression each root creates: its id alone, as a string, for a request whose
/// `:authority` is missing (where the request expression is an error).
pub fn identity_expression(root: u32) -> String {
    format!("'{root}'")
}

/// What Envoy's `expr_evaluate` answers for one request (feature `testing`).
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The same-name test held (status SerializationFailure, nothing returned).
    SameName,
    /// The value: root id, SNI and `:authority` (status Ok).
    Names(Vec<u8>),
    /// An evaluation error, e.g. no `:authority` (status InternalFailure).
    Error,
}

/// How Envoy evaluates an expression from `request_expression`; `None` for any other text.
/// The fake hosts of the tests answer with this (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub fn evaluate(expression: &str, sni: Option<&[u8]>, authority: Option<&[u8]>) -> Option<Answer> {
    if let Some(root) = expression.strip_prefix('\'').and_then(|e| e.strip_suffix('\'')) {
        let root: u32 = root.parse().ok()?;
        return (identity_expression(root) == expression).then(|| Answer::Names(root.to_string().into_bytes()));
    }
    let (same_name, names) = match expression.split_once(" ? null : ") {
        Some((test, names)) => (Some(SameNameTest::from_text(test)?), names),
        None => match expression.split_once(" ? connection.requested_server_name : ") {
            Some((_, names)) => (Some(SameNameTest::HostName), names),
            None => (None, expression),
        },
    };
    let root: u32 = names.strip_prefix('\'')?.split_once(":'")?.0.parse().ok()?;
    if request_expression(root, same_name) != expression {
        return None;
    }
    match same_name {
        // Without `:authority` the `==` is an error: Plain does not hold.
        Some(SameNameTest::HostName) if SameNameTest::Plain.holds(sni, authority) => {
            return Some(Answer::Names(sni.unwrap_or_default().to_vec()))
        }
        Some(test) if test != SameNameTest::HostName && test.holds(sni, authority) => return Some(Answer::SameName),
        _ => {}
    }
    let Some(authority) = authority else { return Some(Answer::Error) };
    let mut value = format!("{root}:").into_bytes();
    value.extend_from_slice(sni.unwrap_or_default());
    value.push(0);
    value.extend_from_slice(authority);
    Some(Answer::Names(value))
}

/// What the module makes of the value Envoy returned for a request expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading<'a> {
    /// `HostName`'s answer, an SNI equal to `:authority` and a dotted name: the request passes.
    SameName,
    /// The root id, the SNI (empty: none) and the `:authority`.
    Names { root: u32, sni: &'a [u8], authority: &'a [u8] },
    /// Not in the expression's form, or `HostName`'s answer for an SNI that is no host name:
    /// the module reads the names itself.
    Unread,
}

/// Reads a request expression's value: with a NUL, the names (`parse_names`); without,
/// `HostName`'s answer, the SNI alone.
pub fn read_value(value: &[u8]) -> Reading<'_> {
    if !value.contains(&0) {
        return if is_dotted_name(value) { Reading::SameName } else { Reading::Unread };
    }
    match parse_names(value) {
        Some((root, sni, authority)) => Reading::Names { root, sni, authority },
        None => Reading::Unread,
    }
}

/// The names Envoy returned: `(root id, SNI, :authority)`; `None` if the value is not in the
/// expression's form. An empty SNI is a connection without one.
pub fn parse_names(value: &[u8]) -> Option<(u32, &[u8], &[u8])> {
    let colon = value.iter().position(|&b| b == b':')?;
    let digits = &value[..colon];
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let root = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let rest = &value[colon + 1..];
    let nul = rest.iter().position(|&b| b == 0)?;
    Some((root, &rest[..nul], &rest[nul + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_answers_same_name_or_the_names_of_the_root() {
        let a = Some(&b"a.example.com"[..]);
        let e = request_expression(7, Some(SameNameTest::Plain));
        assert_eq!(
            e,
            "request.host == connection.requested_server_name ? null : \
             '7:' + connection.requested_server_name + '\\x00' + request.host"
        );
        assert_eq!(evaluate(&e, a, a), Some(Answer::SameName));
        let answer = evaluate(&e, a, Some(b"b.example.com:443")).unwrap();
        assert_eq!(answer, Answer::Names(b"7:a.example.com\0b.example.com:443".to_vec()));
        let Answer::Names(value) = answer else { unreachable!() };
        assert_eq!(parse_names(&value), Some((7, &b"a.example.com"[..], &b"b.example.com:443"[..])));
        assert_eq!(evaluate(&e, a, None), Some(Answer::Error));
        let behind_matcher = request_expression(12, None);
        assert_eq!(evaluate(&behind_matcher, a, a), Some(Answer::Names(b"12:a.example.com\0a.example.com".to_vec())));
        assert_eq!(evaluate(&behind_matcher, None, Some(b"x")), Some(Answer::Names(b"12:\0x".to_vec())));
        assert_eq!(evaluate("true", a, a), None);
        assert_eq!(evaluate(&identity_expression(12), None, None), Some(Answer::Names(b"12".to_vec())));
        assert_eq!(evaluate(&e.replace("'7:'", "'x:'"), a, a), None);
        for t in SameNameTest::ALL {
            assert_eq!(SameNameTest::from_text(t.text()), Some(t));
        }
    }

    #[test]
    fn the_host_name_test_hands_the_module_the_sni() {
        let e = request_expression(3, Some(SameNameTest::HostName));
        assert_eq!(
            e,
            "request.host == connection.requested_server_name ? connection.requested_server_name : \
             '3:' + connection.requested_server_name + '\\x00' + request.host"
        );
        let port = Some(&b"b.example.com:443"[..]);
        assert_eq!(evaluate(&e, port, port), Some(Answer::Names(b"b.example.com:443".to_vec())));
        assert_eq!(read_value(b"b.example.com:443"), Reading::Unread, "read one by one, then the full check");
        assert_eq!(read_value(b"B.example.com"), Reading::SameName);
        assert_eq!(read_value(b""), Reading::Unread, "no SNI, empty :authority");
        let names = evaluate(&e, port, Some(b"b")).unwrap();
        assert_eq!(names, Answer::Names(b"3:b.example.com:443\0b".to_vec()));
        let Answer::Names(names) = names else { unreachable!() };
        let read = Reading::Names { root: 3, sni: &b"b.example.com:443"[..], authority: &b"b"[..] };
        assert_eq!(read_value(&names), read);
        assert_eq!(read_value(b"3:x"), Reading::Unread);
        assert_eq!(evaluate(&e, port, None), Some(Answer::Error));
        assert!(SameNameTest::HostName.text().contains(&format!("matches('{DOTTED_NAME_REGEX}')")));
        let dotted = Some(&b"B.example.com"[..]);
        assert!(SameNameTest::HostName.holds(dotted, dotted));
        for name in
            ["b.example.com:443", "b.example.com:", "b.example.com.:443", "x@b.example.com", "b.example.com.", ""]
        {
            let name = Some(name.as_bytes());
            assert!(!SameNameTest::HostName.holds(name, name), "{name:?}");
            assert!(SameNameTest::Plain.holds(name, name), "{name:?}");
        }
        assert!(SameNameTest::ALL.windows(2).all(|w| w[0] < w[1]), "weakest first");
    }

    #[test]
    fn names_parse_strictly() {
        assert_eq!(parse_names(b"0:\0"), Some((0, &b""[..], &b""[..])));
        for bad in [&b""[..], b":a\0b", b"x:a\0b", b"1:ab", b"99999999999:a\0b", b"4294967296:a\0b"] {
            assert_eq!(parse_names(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_names(b"3:a\0b\0c"), Some((3, &b"a"[..], &b"b\0c"[..])), "only the first NUL separates");
    }
}
