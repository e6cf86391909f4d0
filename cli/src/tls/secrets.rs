//! Kubernetes Secrets in the input: the certificate each TLS Secret holds.
//!
//! Only the certificate (`tls.crt`, or Istio's generic `cert`) is read; the private key
//! (`tls.key`, `key`) is never decoded, printed or kept.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value};

use crate::tls::certificate::{self, Certificate};

/// The Secret type whose certificate the audit reads up front.
pub const TLS_TYPE: &str = "kubernetes.io/tls";

/// One Secret, as far as the audit cares.
#[derive(Debug, Clone)]
pub struct Secret {
    pub namespace: String,
    pub name: String,
    /// `type`, `Opaque` when absent, as the API server defaults it.
    pub kind: String,
    pub content: SecretContent,
}

#[derive(Debug, Clone)]
pub enum SecretContent {
    /// Shared with every server that presents it: a fleet's wildcard certificate is read and
    /// kept once, however many servers name it.
    Certificate(Arc<Certificate>),
    /// A Secret of another type whose certificate key does not hold a certificate: an error
    /// only if a server names this Secret, since such Secrets need not be TLS material.
    Unreadable(String),
    /// No certificate key at all.
    NoCertificate,
}

/// Reads a `Secret` object; `at` names it in messages (`file: items[3]: Secret ns/name`).
/// A `kubernetes.io/tls` Secret whose certificate cannot be read is an error; a Secret of any
/// other type is read only as far as it can be.
pub fn read(object: &Map<String, Value>, at: &str, namespace: String, name: String) -> Result<Secret, String> {
    let kind = match object.get("type") {
        None | Some(Value::Null) => "Opaque",
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(format!("{at}: type: expected a string")),
    };
    let is_tls = kind == TLS_TYPE;
    // Istio reads `tls.crt`, or `cert` in its generic form; a TLS Secret has `tls.crt`.
    let keys: &[&str] = if is_tls { &["tls.crt"] } else { &["tls.crt", "cert"] };
    let content = match find_pem(object, keys) {
        Err(problem) if is_tls => return Err(format!("{at}: {problem}")),
        Err(problem) => SecretContent::Unreadable(format!("{at}: {problem}")),
        Ok(None) if is_tls => {
            return Err(format!("{at}: data.tls.crt: missing (a {TLS_TYPE} Secret holds its certificate there)"))
        }
        Ok(None) => SecretContent::NoCertificate,
        Ok(Some((field, pem))) => match certificate::parse_pem(&pem) {
            Ok(certificate) => SecretContent::Certificate(Arc::new(certificate)),
            Err(problem) if is_tls => return Err(format!("{at}: {field}: {problem}")),
            Err(problem) => SecretContent::Unreadable(format!("{at}: {field}: {problem}")),
        },
    };
    Ok(Secret { namespace, name, kind: kind.to_owned(), content })
}

/// The PEM text under the first of `keys`: `stringData` as written, or `data` in base64.
/// `stringData` wins, as the API server merges it over `data` on write.
fn find_pem(object: &Map<String, Value>, keys: &[&str]) -> Result<Option<(String, Vec<u8>)>, String> {
    for key in keys {
        if let Some(value) = member(object, "stringData", key)? {
            return Ok(Some((format!("stringData.{key}"), value.as_bytes().to_vec())));
        }
        if let Some(value) = member(object, "data", key)? {
            let field = format!("data.{key}");
            // kubectl prints one unbroken line; a manifest may wrap it.
            let compact: Vec<u8> = value.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            let pem = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| format!("{field}: not base64: {e}"))?;
            return Ok(Some((field, pem)));
        }
    }
    Ok(None)
}

fn member<'v>(object: &'v Map<String, Value>, map: &str, key: &str) -> Result<Option<&'v str>, String> {
    match object.get(map) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(members)) => match members.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value)),
            Some(_) => Err(format!("{map}.{key}: expected a string")),
        },
        Some(_) => Err(format!("{map}: expected a mapping")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(kind: Option<&str>, data: Value) -> Result<Secret, String> {
        let mut object = Map::new();
        if let Some(kind) = kind {
            object.insert("type".into(), kind.into());
        }
        if let Value::Object(data) = data {
            object.extend(data);
        }
        read(&object, "f: Secret ns/s", "ns".into(), "s".into())
    }

    #[test]
    fn tls_secrets_must_hold_a_certificate() {
        let pem = crate::test_certs::certificate("shop.acme.test", &["shop.acme.test", "*.shop.acme.test"]);
        let data = base64::engine::general_purpose::STANDARD.encode(&pem);
        let read = secret(Some(TLS_TYPE), serde_json::json!({"data": {"tls.crt": data, "tls.key": "bm90IGEga2V5"}}));
        match read.unwrap().content {
            SecretContent::Certificate(c) => {
                assert_eq!(c.names, ["shop.acme.test", "*.shop.acme.test"]);
                assert!(!c.from_common_name);
                assert_eq!(c.sha256.len(), 32 * 3 - 1);
            }
            other => panic!("{other:?}"),
        }
        let plain = secret(Some(TLS_TYPE), serde_json::json!({"stringData": {"tls.crt": pem}})).unwrap();
        assert!(matches!(plain.content, SecretContent::Certificate(_)));

        let err = |data: Value| secret(Some(TLS_TYPE), data).unwrap_err();
        assert_eq!(
            err(serde_json::json!({"data": {"tls.key": "eA=="}})),
            "f: Secret ns/s: data.tls.crt: missing (a kubernetes.io/tls Secret holds its certificate there)"
        );
        assert!(err(serde_json::json!({"data": {"tls.crt": "not*base64"}}))
            .starts_with("f: Secret ns/s: data.tls.crt: not base64: "));
        assert!(err(serde_json::json!({"data": {"tls.crt": "aGVsbG8="}}))
            .starts_with("f: Secret ns/s: data.tls.crt: no PEM certificate"));
        assert_eq!(err(serde_json::json!({"data": ["x"]})), "f: Secret ns/s: data: expected a mapping");
    }

    #[test]
    fn other_secrets_are_read_as_far_as_they_go() {
        let helm = secret(Some("helm.sh/release.v1"), serde_json::json!({"data": {"release": "H4sI"}})).unwrap();
        assert!(matches!(helm.content, SecretContent::NoCertificate));
        let generic = secret(None, serde_json::json!({"data": {"cert": "aGVsbG8="}})).unwrap();
        assert_eq!(generic.kind, "Opaque");
        match generic.content {
            SecretContent::Unreadable(m) => assert!(m.starts_with("f: Secret ns/s: data.cert: no PEM"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
