//! Kubernetes Secrets as the cluster holds them: name, namespace, type, and the bytes of the
//! certificate (`tls.crt`, or Istio's generic `cert`), base64 undone and nothing more. Whether
//! those bytes are a certificate is asked (`tls::secrets`) only of a Secret a server uses, or
//! to warn about one no server uses: a broken Secret never stops the reading.
//!
//! The private key (`tls.key`, `key`) is never decoded, printed or kept.

use base64::Engine;
use serde_json::{Map, Value};

/// The Secret type that must hold a certificate.
pub const TLS_TYPE: &str = "kubernetes.io/tls";

/// One Secret, as far as the audit cares.
#[derive(Debug, Clone)]
pub struct Secret {
    pub namespace: String,
    pub name: String,
    /// `type`, `Opaque` when absent, as the API server defaults it.
    pub kind: String,
    pub certificate: CertificateBytes,
}

impl Secret {
    pub fn is_tls(&self) -> bool {
        self.kind == TLS_TYPE
    }
}

/// What a Secret holds where a certificate goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateBytes {
    /// The bytes under `field` (`data.tls.crt`, `stringData.cert`).
    Found { field: String, pem: Vec<u8> },
    /// No certificate key at all.
    Missing,
    /// Something there, but not readable as bytes (not base64, not a string): why, naming the
    /// field.
    Unreadable(String),
}

/// Reads a `Secret` object; whatever it holds, it is a Secret.
pub fn read(object: &Map<String, Value>, namespace: String, name: String) -> Secret {
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => "Opaque".to_owned(),
    };
    // Istio reads `tls.crt`, or `cert` in its generic form; a TLS Secret has `tls.crt`.
    let keys: &[&str] = if kind == TLS_TYPE { &["tls.crt"] } else { &["tls.crt", "cert"] };
    let certificate = match find_pem(object, keys) {
        Ok(Some((field, pem))) => CertificateBytes::Found { field, pem },
        Ok(None) => CertificateBytes::Missing,
        Err(problem) => CertificateBytes::Unreadable(problem),
    };
    Secret { namespace, name, kind, certificate }
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

    fn secret(kind: Option<&str>, data: Value) -> Secret {
        let mut object = Map::new();
        if let Some(kind) = kind {
            object.insert("type".into(), kind.into());
        }
        if let Value::Object(data) = data {
            object.extend(data);
        }
        read(&object, "ns".into(), "s".into())
    }

    #[test]
    fn the_certificate_bytes_and_nothing_else() {
        let tls = secret(Some(TLS_TYPE), serde_json::json!({"data": {"tls.crt": "aGVs\nbG8=", "tls.key": "eA=="}}));
        assert!(tls.is_tls());
        assert_eq!(tls.certificate, CertificateBytes::Found { field: "data.tls.crt".into(), pem: b"hello".to_vec() });
        let plain =
            secret(Some(TLS_TYPE), serde_json::json!({"stringData": {"tls.crt": "pem"}, "data": {"tls.crt": "eA=="}}));
        assert_eq!(
            plain.certificate,
            CertificateBytes::Found { field: "stringData.tls.crt".into(), pem: b"pem".to_vec() }
        );
        // A TLS Secret reads only tls.crt; another type Istio's `cert` too.
        assert_eq!(
            secret(Some(TLS_TYPE), serde_json::json!({"data": {"cert": "eA=="}})).certificate,
            CertificateBytes::Missing
        );
        let generic = secret(None, serde_json::json!({"data": {"cert": "eA=="}}));
        assert_eq!(
            (generic.kind.as_str(), generic.certificate),
            ("Opaque", CertificateBytes::Found { field: "data.cert".into(), pem: b"x".to_vec() })
        );
    }

    #[test]
    fn what_cannot_be_read_is_said_not_refused() {
        let unreadable = |data: Value| match secret(Some(TLS_TYPE), data).certificate {
            CertificateBytes::Unreadable(problem) => problem,
            other => panic!("{other:?}"),
        };
        assert!(unreadable(serde_json::json!({"data": {"tls.crt": "not*base64"}}))
            .starts_with("data.tls.crt: not base64: "));
        assert_eq!(unreadable(serde_json::json!({"data": ["x"]})), "data: expected a mapping");
        assert_eq!(unreadable(serde_json::json!({"data": {"tls.crt": 3}})), "data.tls.crt: expected a string");
    }
}
