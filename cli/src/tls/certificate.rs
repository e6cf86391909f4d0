//! X.509 certificates as a browser judges them for connection reuse: the DNS names a
//! certificate is valid for, and which host names those cover.
//!
//! A certificate wildcard covers exactly one label (RFC 6125 §6.4.3): `*.acme.test` is valid
//! for `api.acme.test`, not for `acme.test` nor `a.b.acme.test`. That differs from the host
//! wildcards of Istio and Gateway API servers, which match any depth (`HostPattern`); both
//! rules are used, each where it applies.

use std::collections::HashSet;

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sni_guard::server_table::HostPattern;
use x509_parser::extensions::GeneralName;

/// The leaf certificate of a PEM chain, reduced to what coalescing depends on. Nothing else of
/// the input (least of all a private key) is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// The DNS names it is valid for, as written: its DNS subject alternative names, or, when
    /// it has none, its subject common name (the fallback RFC 6125 allows).
    pub names: Vec<String>,
    /// `names` is the common name: the certificate has no DNS subject alternative name.
    pub from_common_name: bool,
    /// The subject, as `openssl x509 -subject` prints it (RFC 4514).
    pub subject: String,
    /// SHA-256 of the DER, as `openssl x509 -fingerprint -sha256` prints it: the identity of
    /// the certificate, whichever Secret or file holds it.
    pub sha256: String,
    /// `names` read once as clients match them, and indexed: whether the certificate covers a
    /// host costs the same for 2 names as for 2,000.
    #[serde(skip)]
    dns: DnsNames,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DnsNames {
    parsed: Vec<CertName>,
    exact: HashSet<Vec<u8>>,
    /// The suffixes of the wildcard names: `acme.test` for `*.acme.test`.
    wildcard: HashSet<Vec<u8>>,
}

impl Certificate {
    pub fn new(names: Vec<String>, from_common_name: bool, subject: String, sha256: String) -> Certificate {
        let mut dns = DnsNames::default();
        for name in &names {
            let parsed = CertName::parse(name);
            match &parsed {
                CertName::Exact(exact) => dns.exact.insert(exact.clone()),
                CertName::Wildcard(suffix) => dns.wildcard.insert(suffix.clone()),
                CertName::Unusable => false,
            };
            dns.parsed.push(parsed);
        }
        Certificate { names, from_common_name, subject, sha256, dns }
    }

    /// Each name as written, and as TLS clients match it.
    pub fn dns_names(&self) -> impl Iterator<Item = (&str, &CertName)> {
        self.names.iter().map(String::as_str).zip(&self.dns.parsed)
    }

    /// Whether a client accepts this certificate for host `name` (lower case, no trailing dot).
    pub fn covers(&self, name: &[u8]) -> bool {
        self.dns.exact.contains(name) || one_label_below(name).is_some_and(|parent| self.dns.wildcard.contains(parent))
    }

    /// Whether this certificate is valid for every name `host` takes (for a host wildcard, the
    /// names one label below it: a certificate cannot cover deeper ones with one name).
    pub fn serves(&self, host: &HostPattern) -> bool {
        match host {
            HostPattern::Exact(name) => self.covers(name),
            HostPattern::Wildcard(suffix) => self.dns.wildcard.contains(suffix),
            HostPattern::Any => false,
        }
    }
}

/// What `name` is one label below (`acme.test` for `api.acme.test`): the suffix of the one
/// certificate wildcard that covers it, if any does.
pub fn one_label_below(name: &[u8]) -> Option<&[u8]> {
    match name.iter().position(|&b| b == b'.') {
        Some(dot) if dot > 0 && dot + 1 < name.len() => Some(&name[dot + 1..]),
        _ => None,
    }
}

/// A DNS name in a certificate, lower case, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertName {
    /// `api.acme.test`
    Exact(Vec<u8>),
    /// `*.acme.test`, stored as `acme.test`: valid for one label in place of the `*`.
    Wildcard(Vec<u8>),
    /// A `*` anywhere else (`f*.acme.test`): browsers do not accept such a name for any host.
    Unusable,
}

impl CertName {
    pub fn parse(name: &str) -> CertName {
        let folded = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase().into_bytes();
        match folded.strip_prefix(b"*.") {
            Some(suffix) if !suffix.contains(&b'*') && !suffix.is_empty() => CertName::Wildcard(suffix.to_vec()),
            _ if folded.contains(&b'*') || folded.is_empty() => CertName::Unusable,
            _ => CertName::Exact(folded),
        }
    }

    /// Whether a client accepts this name for host `name` (lower case, no trailing dot).
    pub fn covers(&self, name: &[u8]) -> bool {
        match self {
            CertName::Exact(exact) => exact == name,
            CertName::Wildcard(suffix) => one_label_below(name) == Some(suffix.as_slice()),
            CertName::Unusable => false,
        }
    }
}

/// Reads the leaf certificate of `pem` (the first `CERTIFICATE` block; the rest of a chain is
/// checked to parse too). Blocks of other kinds, a private key included, are skipped unread.
pub fn parse_pem(pem: &[u8]) -> Result<Certificate, String> {
    let blocks = certificate_blocks(pem)?;
    let Some(first) = blocks.first() else {
        return Err("no PEM certificate (no -----BEGIN CERTIFICATE----- line)".into());
    };
    for (i, der) in blocks.iter().enumerate().skip(1) {
        x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("certificate {} of the chain: not an X.509 certificate: {e}", i + 1))?;
    }
    parse_der(first).map_err(|e| format!("certificate 1 of the chain: {e}"))
}

/// The DER of every `CERTIFICATE` block, in order.
fn certificate_blocks(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = String::from_utf8_lossy(pem);
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((at, line)) = lines.next() {
        let line = line.trim();
        let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for (_, line) in lines.by_ref() {
            if line.trim() == end {
                closed = true;
                break;
            }
            body.push_str(line.trim());
        }
        if !closed {
            return Err(format!("line {}: {line} has no {end}", at + 1));
        }
        // Other blocks (a key pasted beside the certificate) are neither decoded nor kept.
        if label == "CERTIFICATE" {
            let der = base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|e| format!("line {}: the certificate block is not base64: {e}", at + 1))?;
            blocks.push(der);
        }
    }
    Ok(blocks)
}

fn parse_der(der: &[u8]) -> Result<Certificate, String> {
    let (rest, x509) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("not an X.509 certificate: {} bytes after its end", rest.len()));
    }
    let san = x509.subject_alternative_name().map_err(|e| format!("subject alternative names: {e}"))?;
    let mut names: Vec<String> = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(name) => Some(name.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let from_common_name = names.is_empty();
    if from_common_name {
        names = x509.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_owned).collect();
    }
    let digest = Sha256::digest(der);
    let sha256 = digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
    Ok(Certificate::new(names, from_common_name, x509.subject().to_string(), sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(name: &str) -> CertName {
        CertName::parse(name)
    }

    #[test]
    fn a_certificate_wildcard_covers_one_label() {
        let wild = n("*.acme.test");
        assert!(wild.covers(b"api.acme.test"));
        assert!(!wild.covers(b"acme.test"));
        assert!(!wild.covers(b"a.b.acme.test"));
        assert!(!wild.covers(b".acme.test"));
        assert!(!wild.covers(b"apiacme.test"));
        assert!(n("*.ACME.test.").covers(b"x.acme.test"));
        assert!(n("API.acme.test").covers(b"api.acme.test"));
        assert!(!n("api.acme.test").covers(b"www.acme.test"));
        assert_eq!(n("f*.acme.test"), CertName::Unusable);
        assert_eq!(n("*.*.acme.test"), CertName::Unusable);
        assert_eq!(n("*"), CertName::Unusable);
        // A host wildcard (any depth) is a different rule.
        let host = sni_guard::server_table::HostPattern::parse("*.acme.test").unwrap();
        assert!(host.matches(b"a.b.acme.test"));
    }

    #[test]
    fn serving_a_host() {
        let cert =
            Certificate::new(vec!["*.acme.test".into(), "acme.test".into()], false, String::new(), String::new());
        let p = |h: &str| sni_guard::server_table::HostPattern::parse(h).unwrap();
        assert!(cert.serves(&p("api.acme.test")));
        assert!(cert.serves(&p("acme.test")));
        assert!(cert.serves(&p("*.acme.test")));
        assert!(!cert.serves(&p("a.b.acme.test")));
        assert!(!cert.serves(&p("*.b.acme.test")));
        assert!(!cert.serves(&p("*")));
    }

    #[test]
    fn reads_a_real_certificate() {
        let pem = crate::test_certs::certificate("api.acme.test", &["api.acme.test", "*.API.acme.test"]);
        let cert = parse_pem(pem.as_bytes()).unwrap();
        assert_eq!(cert.names, ["api.acme.test", "*.API.acme.test"]);
        assert!(!cert.from_common_name);
        assert_eq!(cert.subject, "CN=api.acme.test");
        // The fingerprint is openssl's.
        let mut openssl = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut openssl.stdin.take().unwrap(), pem.as_bytes()).unwrap();
        let printed = String::from_utf8(openssl.wait_with_output().unwrap().stdout).unwrap();
        assert_eq!(printed.trim().rsplit('=').next(), Some(cert.sha256.as_str()));

        // No subject alternative name: the common name stands in.
        let legacy = parse_pem(crate::test_certs::certificate("legacy.acme.test", &[]).as_bytes()).unwrap();
        assert_eq!((legacy.names.as_slice(), legacy.from_common_name), (&["legacy.acme.test".to_owned()][..], true));

        // A chain: the first certificate is the leaf; a key block in the file is skipped.
        let chain = format!(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{pem}{}",
            crate::test_certs::certificate("ca", &[])
        );
        assert_eq!(parse_pem(chain.as_bytes()).unwrap(), cert);
        let broken_chain = format!("{pem}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        assert!(parse_pem(broken_chain.as_bytes())
            .unwrap_err()
            .starts_with("certificate 2 of the chain: not an X.509"));
    }

    #[test]
    fn pem_that_is_not_a_certificate() {
        assert!(parse_pem(b"hello").unwrap_err().contains("no PEM certificate"));
        let open = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(parse_pem(open).unwrap_err().contains("has no -----END CERTIFICATE-----"));
        let not_base64 = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(parse_pem(not_base64).unwrap_err().contains("not base64"));
        let not_der = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(parse_pem(not_der).unwrap_err().contains("certificate 1 of the chain: not an X.509 certificate"));
        // A key block alone is skipped: still no certificate.
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(parse_pem(key_only).unwrap_err().contains("no PEM certificate"));
    }
}
