//! Host names as sni-guard compares them.
//!
//! Both the TLS SNI and the `:authority` host are folded to ASCII lower case and lose one
//! trailing dot; `:authority` also loses its port, including after an IPv6 literal
//! (`[::1]:8443` is host `::1`). Everything works on bytes: header and property values are
//! not guaranteed to be UTF-8, and nothing here may panic on any input.

use std::fmt;

/// The longest `:authority` value read as a host; anything longer is malformed.
pub const MAX_AUTHORITY_LEN: usize = 255;
/// The longest host name (DNS: 253 characters without the trailing dot).
pub const MAX_NAME_LEN: usize = 253;
/// The longest DNS label.
pub const MAX_LABEL_LEN: usize = 63;

/// Why an `:authority` value (or a configured host) is not a host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    Empty,
    /// The whole `:authority` is over 255 bytes.
    AuthorityTooLong,
    TooLong,
    BadPort,
    UnclosedBracket,
    BadIpLiteral,
    BadCharacter,
    EmptyLabel,
    LabelTooLong,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostError::Empty => "the host is empty",
            HostError::AuthorityTooLong => "the authority is longer than 255 bytes",
            HostError::TooLong => "the host is longer than 253 characters",
            HostError::BadPort => "the port is not a number from 0 to 65535",
            HostError::UnclosedBracket => "an IPv6 literal lacks its closing ']'",
            HostError::BadIpLiteral => "the bracketed part is not an IPv6 address",
            HostError::BadCharacter => "the host has a character other than letters, digits, '-', '_' and '.'",
            HostError::EmptyLabel => "the host has an empty label (\"..\" or a leading '.')",
            HostError::LabelTooLong => "a label of the host is longer than 63 characters",
        })
    }
}

/// A host name folded to lower case without its trailing dot, held inline so that looking a
/// name up never allocates.
#[derive(Clone, Copy)]
pub struct HostKey {
    bytes: [u8; MAX_NAME_LEN],
    len: u8,
}

impl HostKey {
    /// Folds an already validated or an arbitrary name; `None` when it cannot be a host name
    /// (empty, too long, or not made of host name characters).
    pub fn fold(name: &[u8]) -> Option<HostKey> {
        let name = strip_trailing_dot(name);
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return None;
        }
        let mut key = HostKey { bytes: [0; MAX_NAME_LEN], len: name.len() as u8 };
        for (slot, &b) in key.bytes.iter_mut().zip(name) {
            if !is_name_byte(b) && b != b':' {
                return None;
            }
            *slot = b.to_ascii_lowercase();
        }
        Some(key)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl PartialEq for HostKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for HostKey {}

/// The host of an `:authority` value, port removed, brackets of an IPv6 literal removed,
/// case not yet folded. Borrowed: no allocation.
pub fn authority_host(authority: &[u8]) -> Result<&[u8], HostError> {
    if authority.is_empty() {
        return Err(HostError::Empty);
    }
    if authority.len() > MAX_AUTHORITY_LEN {
        return Err(HostError::AuthorityTooLong);
    }
    if authority[0] == b'[' {
        let close = authority.iter().position(|&b| b == b']').ok_or(HostError::UnclosedBracket)?;
        let literal = &authority[1..close];
        check_port(&authority[close + 1..])?;
        check_ipv6(literal)?;
        return Ok(literal);
    }
    let host = match authority.iter().rposition(|&b| b == b':') {
        Some(colon) => {
            check_port(&authority[colon..])?;
            &authority[..colon]
        }
        None => authority,
    };
    check_host_name(host)?;
    Ok(host)
}

/// Whether two names are the same host: ASCII case-insensitive, one trailing dot ignored.
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    strip_trailing_dot(a).eq_ignore_ascii_case(strip_trailing_dot(b))
}

/// Validates a DNS-style host name (an IPv4 address passes as one). One trailing dot is
/// allowed.
pub fn check_host_name(name: &[u8]) -> Result<(), HostError> {
    let name = strip_trailing_dot(name);
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(HostError::TooLong);
    }
    for label in name.split(|&b| b == b'.') {
        if label.is_empty() {
            return Err(HostError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(HostError::LabelTooLong);
        }
        if !label.iter().all(|&b| is_name_byte(b) && b != b'.') {
            return Err(HostError::BadCharacter);
        }
    }
    Ok(())
}

/// Whether `name` is labels of letters, digits, '-' and '_' joined by single dots: what a
/// configured host (`HostPattern::parse`) is made of, with no port, userinfo, empty label or
/// trailing dot. Any length: for such a name Envoy's filter chain and the host's server are
/// found by the same lookups (`server_table`), whatever its length.
pub fn is_dotted_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.split(|&b| b == b'.').all(|label| !label.is_empty() && label.iter().all(|&b| is_label_byte(b)))
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn strip_trailing_dot(name: &[u8]) -> &[u8] {
    name.strip_suffix(b".").unwrap_or(name)
}

fn is_name_byte(b: u8) -> bool {
    is_label_byte(b) || b == b'.'
}

/// `rest` is what follows the host: empty, or ':' and an optional decimal port.
fn check_port(rest: &[u8]) -> Result<(), HostError> {
    let Some(digits) = rest.strip_prefix(b":") else {
        return if rest.is_empty() { Ok(()) } else { Err(HostError::BadPort) };
    };
    // RFC 3986 allows an empty port ("host:").
    if digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HostError::BadPort);
    }
    let port = digits.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    if port > 65535 {
        return Err(HostError::BadPort);
    }
    Ok(())
}

fn check_ipv6(literal: &[u8]) -> Result<(), HostError> {
    let text = std::str::from_utf8(literal).map_err(|_| HostError::BadIpLiteral)?;
    text.parse::<std::net::Ipv6Addr>().map(|_| ()).map_err(|_| HostError::BadIpLiteral)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(a: &str) -> Result<&str, HostError> {
        authority_host(a.as_bytes()).map(|h| std::str::from_utf8(h).unwrap())
    }

    #[test]
    fn strips_ports_and_brackets() {
        assert_eq!(host("a.example.com"), Ok("a.example.com"));
        assert_eq!(host("a.example.com:8443"), Ok("a.example.com"));
        assert_eq!(host("a.example.com:"), Ok("a.example.com"));
        assert_eq!(host("A.Example.COM."), Ok("A.Example.COM."));
        assert_eq!(host("[::1]:8443"), Ok("::1"));
        assert_eq!(host("[2001:DB8::1]"), Ok("2001:DB8::1"));
        assert_eq!(host("127.0.0.1:80"), Ok("127.0.0.1"));
    }

    #[test]
    fn rejects_malformed_authorities() {
        assert_eq!(host(""), Err(HostError::Empty));
        assert_eq!(host(":443"), Err(HostError::Empty));
        assert_eq!(host("[::1"), Err(HostError::UnclosedBracket));
        assert_eq!(host("[::1]x"), Err(HostError::BadPort));
        assert_eq!(host("[not-ip]"), Err(HostError::BadIpLiteral));
        assert_eq!(host("a b.example.com"), Err(HostError::BadCharacter));
        assert_eq!(host("a.example.com:http"), Err(HostError::BadPort));
        assert_eq!(host("a.example.com:65536"), Err(HostError::BadPort));
        assert_eq!(host("a..example.com"), Err(HostError::EmptyLabel));
        assert_eq!(host(".a.example.com"), Err(HostError::EmptyLabel));
        assert_eq!(host("::1"), Err(HostError::BadCharacter));
        let long_label = format!("{}.example.com", "x".repeat(64));
        assert_eq!(host(&long_label), Err(HostError::LabelTooLong));
        let long_name = format!("{}.abcd", ["abcdefghi"; 25].join(".")); // 254 characters
        assert_eq!(host(&long_name), Err(HostError::TooLong));
        assert_eq!(host(&"a".repeat(300)), Err(HostError::AuthorityTooLong));
        assert!(authority_host(b"a\xffb.example.com").is_err());
    }

    #[test]
    fn names_compare_folded() {
        assert!(same_name(b"a.example.com", b"A.EXAMPLE.COM"));
        assert!(same_name(b"a.example.com.", b"a.example.com"));
        assert!(!same_name(b"a.example.com..", b"a.example.com"));
        assert!(!same_name(b"a.example.com", b"b.example.com"));
        assert_eq!(HostKey::fold(b"A.Example.com.").unwrap().as_bytes(), b"a.example.com");
        assert!(HostKey::fold(b"").is_none());
        assert!(HostKey::fold(b".").is_none());
        assert!(HostKey::fold(b"a b").is_none());
        assert!(HostKey::fold(&[b'a'; 254]).is_none());
    }

    #[test]
    fn dotted_names_are_labels_and_dots_only() {
        for name in ["a", "A.Example.com", "x_y-1.example.com", "127.0.0.1", &"x".repeat(300)] {
            assert!(is_dotted_name(name.as_bytes()), "{name:?}");
        }
        for name in [
            "",
            ".",
            "a.example.com.",
            ".a.example.com",
            "a..example.com",
            "a.example.com:443",
            "a.example.com:",
            "a.example.com.:443",
            "x@a.example.com",
            "a b.example.com",
            "a%2e.example.com",
            "[::1]",
            "\u{e9}.example",
        ] {
            assert!(!is_dotted_name(name.as_bytes()), "{name:?}");
        }
    }
}
