//! The certificate a Secret holds: its bytes (`cluster::secrets`) read as a PEM chain, asked
//! only of a Secret a server uses (or, for a warning, of a TLS Secret none uses).

use crate::cluster::secrets::{CertificateBytes, Secret};
use crate::tls::certificate::{self, Certificate};

/// The leaf certificate of `secret`, or why it has none, naming the field.
pub fn certificate(secret: &Secret) -> Result<Certificate, String> {
    match &secret.certificate {
        CertificateBytes::Found { field, pem } if pem.iter().all(u8::is_ascii_whitespace) => {
            Err(format!("{field}: empty"))
        }
        CertificateBytes::Found { field, pem } => certificate::parse_pem(pem).map_err(|e| format!("{field}: {e}")),
        CertificateBytes::Missing if secret.is_tls() => {
            Err("data.tls.crt: missing (a kubernetes.io/tls Secret holds its certificate there)".into())
        }
        CertificateBytes::Missing => Err(format!("holds no tls.crt (type {})", secret.kind)),
        CertificateBytes::Unreadable(problem) => Err(problem.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::{json, Map, Value};

    fn secret(kind: &str, data: Value) -> Secret {
        let mut object = Map::new();
        object.insert("type".into(), kind.into());
        if let Value::Object(data) = data {
            object.extend(data);
        }
        crate::cluster::secrets::read(&object, "ns".into(), "s".into())
    }

    #[test]
    fn a_tls_secret_holds_a_certificate() {
        let pem = crate::test_certs::certificate("shop.acme.test", &["shop.acme.test", "*.shop.acme.test"]);
        let data = base64::engine::general_purpose::STANDARD.encode(&pem);
        let read = certificate(&secret("kubernetes.io/tls", json!({"data": {"tls.crt": data, "tls.key": "bm90"}})));
        let read = read.unwrap();
        assert_eq!(read.names, ["shop.acme.test", "*.shop.acme.test"]);
        assert_eq!(read.sha256.len(), 32 * 3 - 1);
    }

    #[test]
    fn why_a_secret_holds_none() {
        let why = |kind: &str, data: Value| certificate(&secret(kind, data)).unwrap_err();
        let tls = "kubernetes.io/tls";
        assert_eq!(why(tls, json!({"data": {"tls.crt": ""}})), "data.tls.crt: empty");
        assert!(why(tls, json!({"data": {"tls.crt": "aGVsbG8="}})).starts_with("data.tls.crt: no PEM certificate"));
        assert_eq!(
            why(tls, json!({"data": {"tls.key": "eA=="}})),
            "data.tls.crt: missing (a kubernetes.io/tls Secret holds its certificate there)"
        );
        assert!(why(tls, json!({"data": {"tls.crt": "not*base64"}})).starts_with("data.tls.crt: not base64"));
        assert_eq!(
            why("helm.sh/release.v1", json!({"data": {"release": "H4sI"}})),
            "holds no tls.crt (type helm.sh/release.v1)"
        );
    }
}
