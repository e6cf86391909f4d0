//! What the audit reasons about: gateway servers, reduced to the facts that decide whether two
//! of them can end up sharing one HTTP/2 connection.
//!
//! Both APIs map onto the same `Server`: an Istio Gateway's `spec.servers[i]` and a Gateway API
//! Gateway's `spec.listeners[i]` each become one Envoy filter chain with its own route table.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use sni_guard::server_table::HostPattern;

use crate::text::Shown;

/// The gateway deployment a server runs on. Only servers on the same workload (the same Envoy,
/// the same IP address) can be reached over one connection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// An Istio Gateway's `spec.selector`: the gateway pods whose labels include all of these.
    Selector(BTreeMap<String, String>),
    /// A Gateway API Gateway: Istio deploys one workload per Gateway.
    Gateway { namespace: String, name: String },
}

/// The pod label Istio puts on the deployment it creates for a Gateway API Gateway.
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

impl Workload {
    /// Whether a gateway pod with `labels` (in `namespace`, when known) runs this workload.
    pub fn runs_on(&self, labels: &BTreeMap<String, String>, namespace: Option<&str>) -> bool {
        match self {
            // Istio selects gateway pods in any namespace by default, so the namespace plays
            // no part; an empty selector is a subset of every label set, as in Istio.
            Workload::Selector(selector) => selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
            Workload::Gateway { namespace: ns, name } => {
                labels.get(GATEWAY_NAME_LABEL) == Some(name) && namespace.is_none_or(|want| want == ns)
            }
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::Selector(labels) if labels.is_empty() => f.write_str("(every gateway)"),
            Workload::Selector(labels) => f.write_str(&join_labels(labels)),
            Workload::Gateway { namespace, name } => write!(f, "gateway {}/{}", Shown(namespace), Shown(name)),
        }
    }
}

/// `k=v,k2=v2`, the form `--selector` takes, escaped for showing.
pub fn join_labels(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{}={}", Shown(k), Shown(v))).collect::<Vec<_>>().join(",")
}

/// Which API a server came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `networking.istio.io` Gateway.
    Istio,
    /// `gateway.networking.k8s.io` Gateway.
    GatewayApi,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    pub number: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub protocol: String,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number)
    }
}

/// TLS modes of both APIs, in their own spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TlsMode {
    #[serde(rename = "SIMPLE")]
    Simple,
    #[serde(rename = "MUTUAL")]
    Mutual,
    #[serde(rename = "OPTIONAL_MUTUAL")]
    OptionalMutual,
    #[serde(rename = "ISTIO_MUTUAL")]
    IstioMutual,
    #[serde(rename = "PASSTHROUGH")]
    Passthrough,
    #[serde(rename = "AUTO_PASSTHROUGH")]
    AutoPassthrough,
    /// Gateway API `Terminate`.
    Terminate,
    /// Gateway API `Passthrough`.
    #[serde(rename = "Passthrough")]
    GatewayPassthrough,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Simple => "SIMPLE",
            TlsMode::Mutual => "MUTUAL",
            TlsMode::OptionalMutual => "OPTIONAL_MUTUAL",
            TlsMode::IstioMutual => "ISTIO_MUTUAL",
            TlsMode::Passthrough => "PASSTHROUGH",
            TlsMode::AutoPassthrough => "AUTO_PASSTHROUGH",
            TlsMode::Terminate => "Terminate",
            TlsMode::GatewayPassthrough => "Passthrough",
        }
    }

    /// Istio's `tls.mode` values.
    pub fn parse_istio(mode: &str) -> Option<TlsMode> {
        Some(match mode {
            "SIMPLE" => TlsMode::Simple,
            "MUTUAL" => TlsMode::Mutual,
            "OPTIONAL_MUTUAL" => TlsMode::OptionalMutual,
            "ISTIO_MUTUAL" => TlsMode::IstioMutual,
            "PASSTHROUGH" => TlsMode::Passthrough,
            "AUTO_PASSTHROUGH" => TlsMode::AutoPassthrough,
            _ => return None,
        })
    }
}

/// What identifies a certificate without reading it. Two servers naming the same one present
/// the same certificate, which is what lets a client reuse a connection across them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// Istio `tls.credentialName`: a Secret that Istio looks up in the gateway workload's own
    /// namespace, so the name alone (on one workload) identifies it.
    CredentialName(String),
    /// Istio `tls.serverCertificate` and `tls.privateKey`: files mounted in the gateway pod.
    Files { server_certificate: String, private_key: String },
    /// A Gateway API `tls.certificateRefs[]` entry, its namespace defaulted to the Gateway's.
    CertificateRef { kind: String, namespace: String, name: String },
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::CredentialName(name) => write!(f, "credentialName {}", Shown(name)),
            Credential::Files { server_certificate, private_key } => {
                write!(f, "files {} + {}", Shown(server_certificate), Shown(private_key))
            }
            Credential::CertificateRef { kind, namespace, name } => {
                write!(f, "{} {}/{}", Shown(kind), Shown(namespace), Shown(name))
            }
        }
    }
}

/// One Istio Gateway server or one Gateway API listener.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub api: Api,
    /// The Gateway object's namespace and name.
    pub namespace: String,
    pub gateway: String,
    /// Where in the Gateway: `spec.servers[0]` or `spec.listeners[0]`.
    pub field: String,
    /// Gateway API listener `name`, or the Istio server's optional `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<String>,
    pub workload: Workload,
    pub port: Port,
    /// As written (Istio's `namespace/host` form kept); a Gateway API listener without a
    /// `hostname` has `*`.
    pub hosts: Vec<String>,
    /// `hosts`, parsed by the filter's own parser: the same folding and wildcard rules.
    #[serde(skip)]
    pub patterns: Vec<HostPattern>,
    /// `None`: no TLS on this server.
    pub tls_mode: Option<TlsMode>,
    pub credentials: Vec<Credential>,
    /// The server's `tls` block as written, for the merge advice to carry over.
    #[serde(skip)]
    pub tls: Option<serde_json::Value>,
    /// Gateway API `allowedRoutes` as written, for the merge advice.
    #[serde(skip)]
    pub allowed_routes: Option<serde_json::Value>,
}

/// Why a server cannot get a 404 from a coalesced connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SafeReason {
    /// No TLS: no certificate for a client to reuse a connection by.
    PlainText,
    /// TLS passthrough: Envoy forwards the encrypted stream by SNI (a TCP proxy), so no HTTP
    /// route table is ever consulted; the backend terminates TLS itself.
    Passthrough,
    /// Mesh-internal mTLS with the workload's mesh identity: clients are sidecars, which
    /// neither coalesce connections nor trust that certificate for public host names.
    IstioMutual,
    /// TLS terminated and forwarded as TCP (`protocol: TLS`/`TCP`): no HTTP routing.
    NotHttp,
}

impl SafeReason {
    pub fn explain(self) -> &'static str {
        match self {
            SafeReason::PlainText => "no TLS: no certificate to reuse a connection by",
            SafeReason::Passthrough => "TLS passthrough: forwarded by SNI as TCP, no HTTP route table",
            SafeReason::IstioMutual => "ISTIO_MUTUAL: mesh-internal, clients are sidecars",
            SafeReason::NotHttp => "TLS terminated, then forwarded as TCP: no HTTP routing",
        }
    }
}

/// The one protocol that both APIs route with HTTP route tables after terminating TLS; `TLS`
/// (and anything else) is forwarded as TCP. HTTP-family protocols carry no TLS at all (see
/// `cluster::gateways`).
fn is_http(protocol: &str) -> bool {
    protocol.eq_ignore_ascii_case("HTTPS")
}

impl Server {
    /// `Ok` for a server that terminates TLS and routes HTTP: the kind that answers 404 to a
    /// request that arrived over another server's connection.
    pub fn risk(&self) -> Result<(), SafeReason> {
        match self.tls_mode {
            None => Err(SafeReason::PlainText),
            Some(TlsMode::Passthrough | TlsMode::AutoPassthrough | TlsMode::GatewayPassthrough) => {
                Err(SafeReason::Passthrough)
            }
            Some(TlsMode::IstioMutual) => Err(SafeReason::IstioMutual),
            Some(TlsMode::Simple | TlsMode::Mutual | TlsMode::OptionalMutual | TlsMode::Terminate) => {
                if is_http(&self.port.protocol) {
                    Ok(())
                } else {
                    Err(SafeReason::NotHttp)
                }
            }
        }
    }

    /// `team-a/gw-a spec.servers[0]`, how messages name a server.
    pub fn label(&self) -> String {
        format!("{}/{} {}", Shown(&self.namespace), Shown(&self.gateway), self.field)
    }
}

/// Whether host pattern `wide` matches every name `narrow` matches, and more: the servers'
/// hosts overlap. Host wildcards as Istio, Gateway API and the filter match them
/// (`HostPattern::matches`): `*.s` takes names strictly below `s` at any depth, unlike a
/// certificate wildcard (`certificate::CertName`), which covers one label.
pub fn covers(wide: &HostPattern, narrow: &HostPattern) -> bool {
    match (wide, narrow) {
        (HostPattern::Exact(_), _) | (_, HostPattern::Any) => false,
        (_, HostPattern::Exact(name)) | (_, HostPattern::Wildcard(name)) => wide.matches(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sni_guard::server_table::ServerTable;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn covers_matches_the_filters_server_table() {
        assert!(covers(&p("*.example.com"), &p("a.example.com")));
        assert!(covers(&p("*.example.com"), &p("x.a.example.com")));
        assert!(covers(&p("*.example.com"), &p("*.a.example.com")));
        assert!(covers(&p("*"), &p("a.example.com")));
        assert!(covers(&p("*"), &p("*.example.com")));
        assert!(!covers(&p("*.example.com"), &p("example.com")));
        assert!(!covers(&p("*.example.com"), &p("*.example.com")));
        assert!(!covers(&p("*.example.com"), &p("a.example.org")));
        assert!(!covers(&p("*.example.com"), &p("aexample.com")));
        assert!(!covers(&p("a.example.com"), &p("a.example.com")));
        assert!(!covers(&p("*"), &p("*")));
        // Wherever `covers` says an exact name is covered, the filter's table agrees.
        for (wide, name) in [("*.example.com", "a.example.com"), ("*.example.com", "example.com"), ("*", "x.org")] {
            let table = ServerTable::new([(p(wide), 0)]).unwrap();
            assert_eq!(covers(&p(wide), &p(name)), table.server_of(name.as_bytes()) == Some(0), "{wide} {name}");
        }
    }

    #[test]
    fn workloads_match_pod_labels() {
        let labels: BTreeMap<String, String> =
            [("istio", "ingressgateway"), ("app", "gw")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        let sel = |pairs: &[(&str, &str)]| {
            Workload::Selector(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        assert!(sel(&[("istio", "ingressgateway")]).runs_on(&labels, None));
        assert!(sel(&[]).runs_on(&labels, None));
        assert!(!sel(&[("istio", "eastwestgateway")]).runs_on(&labels, None));
        let gw = Workload::Gateway { namespace: "web".into(), name: "edge".into() };
        let gw_labels: BTreeMap<String, String> = [(GATEWAY_NAME_LABEL.to_owned(), "edge".to_owned())].into();
        assert!(gw.runs_on(&gw_labels, None));
        assert!(gw.runs_on(&gw_labels, Some("web")));
        assert!(!gw.runs_on(&gw_labels, Some("other")));
        assert!(!gw.runs_on(&labels, None));
    }
}
