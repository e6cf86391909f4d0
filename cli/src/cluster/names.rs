//! Kubernetes names: what a namespace, an object's name and an Istio `credentialName` may be.
//! The API server refuses other names, so one in the input came from a file no cluster holds,
//! or is meant to break what reads it (a newline in a name ends a YAML comment): refused.
//!
//! Istio types `credentialName` as a plain string and reads it as its credentials package does
//! (istio/istio pilot/pkg/model/credentials/resource.go): `kubernetes://` or nothing before a
//! Secret's name, which may be `namespace/name`; `kubernetes-gateway://namespace/name`, Gateway
//! API's form; `builtin://`, the gateway's own mesh certificate; `invalid://` and
//! `configmap://`, which serve no gateway certificate.

/// The longest object name (a DNS-1123 subdomain).
const MAX_NAME: usize = 253;
/// The longest namespace (a DNS-1123 label).
const MAX_NAMESPACE: usize = 63;

/// What a refusal says a name must be.
pub const NAME_RULE: &str =
    "lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters";
pub const NAMESPACE_RULE: &str =
    "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";

/// An object's name, as the API server takes it (a DNS-1123 subdomain).
pub fn is_name(text: &str) -> bool {
    text.len() <= MAX_NAME && text.split('.').all(is_label_of(MAX_NAME))
}

/// A namespace, as the API server takes it (a DNS-1123 label).
pub fn is_namespace(text: &str) -> bool {
    is_label_of(MAX_NAMESPACE)(text)
}

fn is_label_of(max: usize) -> impl Fn(&str) -> bool {
    move |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= max
            && bytes.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    }
}

/// What a refusal says a label must be.
pub const LABEL_RULE: &str = "a label key is NAME or PREFIX/NAME and a value NAME or empty, NAME being at most 63 \
                              letters, digits, '-', '_' and '.', starting and ending with a letter or digit, PREFIX \
                              a DNS name";

/// A label key, as a pod's labels may have it (`app`, `gateway.networking.k8s.io/gateway-name`).
pub fn is_label_key(text: &str) -> bool {
    match text.split_once('/') {
        Some((prefix, name)) => prefix.len() <= MAX_NAME && is_name(prefix) && is_label_value(name) && !name.is_empty(),
        None => !text.is_empty() && is_label_value(text),
    }
}

/// A label value: empty, or at most 63 letters, digits, '-', '_' and '.', starting and ending
/// with a letter or digit. Such a value is also safe to show in a shell command.
pub fn is_label_value(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.is_empty()
        || (bytes.len() <= 63
            && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric())
}

/// What an Istio `credentialName` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IstioCredential<'a> {
    /// A Secret: in `namespace` when it says one, else in the gateway pods' namespace.
    Secret { namespace: Option<&'a str>, name: &'a str },
    /// No Secret Istio serves to a gateway from this form: why.
    NotASecret(&'static str),
}

/// Reads a `credentialName` as Istio does, or says why it is not one.
pub fn istio_credential(text: &str) -> Result<IstioCredential<'_>, String> {
    let forms: [(&str, &'static str); 3] = [
        ("builtin://", "builtin://: the gateway's own mesh certificate, which is no Secret"),
        ("invalid://", "invalid://: a certificate that is never valid"),
        ("configmap://", "configmap://: a ConfigMap holds CA certificates, not the gateway's own"),
    ];
    for (prefix, why) in forms {
        if text.starts_with(prefix) {
            return Ok(IstioCredential::NotASecret(why));
        }
    }
    let (gateway_form, reference) = match text.strip_prefix("kubernetes-gateway://") {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix("kubernetes://").unwrap_or(text)),
    };
    let (namespace, name) = match reference.split_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, reference),
    };
    if let Some(namespace) = namespace {
        if !is_namespace(namespace) {
            return Err(format!("not a Kubernetes Secret name: before '/' is no namespace ({NAMESPACE_RULE})"));
        }
    }
    if !is_name(name) {
        return Err(format!(
            "not a Kubernetes Secret name ({NAME_RULE}), with `kubernetes://` or `namespace/` before it"
        ));
    }
    if gateway_form {
        return match namespace {
            None => Err("kubernetes-gateway:// needs namespace/name".into()),
            Some(_) => Ok(IstioCredential::NotASecret(
                "kubernetes-gateway:// is Gateway API's form: Istio serves it only for a reference its Gateway API \
                 controller verified, never from an Istio Gateway",
            )),
        };
    }
    Ok(IstioCredential::Secret { namespace, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_namespaces() {
        for good in ["a", "shop", "wildcard-example-com", "a.b-c.d", "0abc", &"a".repeat(253)] {
            assert!(is_name(good), "{good}");
        }
        for bad in ["", "A", "a_b", "-a", "a-", "a..b", ".a", "a.", "a/b", "a b", "shared\n---", "é", &"a".repeat(254)]
        {
            assert!(!is_name(bad), "{bad:?}");
        }
        assert!(is_namespace("istio-system") && is_namespace(&"a".repeat(63)));
        for bad in ["", "a.b", "Istio", &"a".repeat(64), "a\u{1b}"] {
            assert!(!is_namespace(bad), "{bad:?}");
        }
    }

    #[test]
    fn labels() {
        assert!(
            is_label_key("istio") && is_label_key("gateway.networking.k8s.io/gateway-name") && is_label_key("A_b.c")
        );
        assert!(is_label_value("ingressgateway") && is_label_value("") && is_label_value("v1.2_x"));
        for bad in ["", "/a", "a/", "-a", "a b", "a;b", "x\n", "A/b"] {
            assert!(!is_label_key(bad), "{bad:?}");
        }
        for bad in ["-a", "a-", "a b", "ingress; curl x|sh", "a$(id)", &"a".repeat(64)] {
            assert!(!is_label_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn credential_names_as_istio_reads_them() {
        let secret = |namespace, name| Ok(IstioCredential::Secret { namespace, name });
        assert_eq!(istio_credential("shop-cert"), secret(None, "shop-cert"));
        assert_eq!(istio_credential("kubernetes://shop-cert"), secret(None, "shop-cert"));
        assert_eq!(istio_credential("kubernetes://web/shop-cert"), secret(Some("web"), "shop-cert"));
        assert_eq!(istio_credential("web/shop-cert"), secret(Some("web"), "shop-cert"));
        assert!(matches!(istio_credential("kubernetes-gateway://web/c"), Ok(IstioCredential::NotASecret(_))));
        assert!(matches!(istio_credential("builtin://"), Ok(IstioCredential::NotASecret(_))));
        for bad in [
            "",
            "shared\n---\napiVersion: v1",
            "a/b/c",
            "Web/c",
            "kubernetes://",
            "kubernetes-gateway://c",
            "https://x",
            "a\u{1b}[2J",
            "a\u{202e}b",
        ] {
            assert!(istio_credential(bad).is_err(), "{bad:?}");
        }
    }
}
