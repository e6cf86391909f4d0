//! Passthrough servers a certificate on their port covers.
//!
//! A PASSTHROUGH server forwards the TLS stream by SNI, so its own connections never meet a
//! route table. But in Istio its filter chain is one of the port's listener, beside the chains
//! that terminate TLS (istio/istio pilot/pkg/networking/core/gateway.go: a passthrough server's
//! chain matches the SNI hosts of its TLS routes and holds a TCP proxy; a terminating server's
//! holds the HTTP connection manager). When a certificate one of those presents covers the
//! passthrough host, a browser holding a connection to that server reuses it for the host, and
//! the request lands in that server's route table: a 404, never the passthrough backend. Listed
//! as a server in sni-guard's configuration, the host gets a 421 there instead, and the
//! browser's retry opens a connection of its own, which Envoy forwards to the backend.
//!
//! Gateway API scopes its 421 rule to listeners of the same port and protocol; Istio builds
//! both kinds of listener as chains of one Envoy listener, so the 404 is the same.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sni_guard::server_table::HostPattern;

use crate::cluster::model::{Server, TlsMode, Workload};
use crate::tls::certificate::{one_label_below, CertName, Certificate};
use crate::tls::credentials::ServerCertificates;

/// A passthrough server, and the certificates on its port that cover its hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtRisk {
    pub server: usize,
    pub covered: Vec<Cover>,
}

/// One host of a passthrough server, and a certificate covering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    /// The passthrough server's host (as the filter writes it).
    pub host: String,
    /// The certificate's name that covers it, as written.
    pub certificate_name: String,
    pub sha256: String,
    /// The servers on the port presenting that certificate, in input order: shared by every
    /// host it covers.
    pub presenters: Arc<Vec<usize>>,
}

/// Whether `server` forwards TLS by SNI to a backend of its own choosing. AUTO_PASSTHROUGH is
/// left aside: its hosts are the mesh's own (`*.local`), reached by sidecars, not browsers.
pub fn is_passthrough(server: &Server) -> bool {
    matches!(server.tls_mode, Some(TlsMode::Passthrough | TlsMode::GatewayPassthrough))
}

/// The passthrough servers whose hosts a certificate presented on their workload and port
/// covers. `routing[(workload, port)]` are the servers there that terminate TLS and route
/// HTTP. The cost follows the certificates' names and the passthrough hosts.
pub fn at_risk(
    servers: &[Server],
    certificates: &[ServerCertificates],
    routing: &BTreeMap<(&Workload, u32), Vec<usize>>,
) -> Vec<AtRisk> {
    let mut passthrough: BTreeMap<(&Workload, u32), Vec<usize>> = BTreeMap::new();
    for (i, server) in servers.iter().enumerate().filter(|(_, s)| is_passthrough(s)) {
        passthrough.entry((&server.workload, server.port.number)).or_default().push(i);
    }
    let mut found = Vec::new();
    for (place, passing) in passthrough {
        let Some(members) = routing.get(&place) else { continue };
        let index = PortCertificates::new(certificates, members);
        for i in passing {
            let mut covered = Vec::new();
            for pattern in &servers[i].patterns {
                for (certificate, name) in index.covering(pattern) {
                    covered.push(Cover {
                        host: pattern.to_string(),
                        certificate_name: name.to_owned(),
                        sha256: certificate.sha256.clone(),
                        presenters: index.presenters[&certificate.sha256].clone(),
                    });
                }
            }
            if !covered.is_empty() {
                found.push(AtRisk { server: i, covered });
            }
        }
    }
    found.sort_by_key(|a| a.server);
    found
}

/// The certificates presented on one workload and port, their names indexed.
struct PortCertificates<'a> {
    /// Each certificate, once.
    certificates: Vec<&'a Arc<Certificate>>,
    presenters: HashMap<String, Arc<Vec<usize>>>,
    /// Exact name -> (certificate, the name as written).
    exact: HashMap<&'a [u8], Vec<(usize, &'a str)>>,
    /// Wildcard suffix -> (certificate, the name as written).
    wildcard: HashMap<&'a [u8], Vec<(usize, &'a str)>>,
}

impl<'a> PortCertificates<'a> {
    fn new(certificates: &'a [ServerCertificates], members: &[usize]) -> PortCertificates<'a> {
        let mut index = PortCertificates {
            certificates: Vec::new(),
            presenters: HashMap::new(),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        };
        let mut presenters: HashMap<&str, Vec<usize>> = HashMap::new();
        for &m in members {
            for presented in &certificates[m].presented {
                let certificate = &presented.certificate;
                let of = presenters.entry(&certificate.sha256).or_default();
                if of.is_empty() {
                    let c = index.certificates.len();
                    index.certificates.push(certificate);
                    for (written, name) in certificate.dns_names() {
                        match name {
                            CertName::Exact(exact) => index.exact.entry(exact).or_default().push((c, written)),
                            CertName::Wildcard(suffix) => index.wildcard.entry(suffix).or_default().push((c, written)),
                            CertName::Unusable => {}
                        }
                    }
                }
                if of.last() != Some(&m) {
                    of.push(m);
                }
            }
        }
        index.presenters = presenters.into_iter().map(|(sha, servers)| (sha.to_owned(), Arc::new(servers))).collect();
        index
    }

    /// The certificates (and their name) valid for a name `host` takes: for an exact host, a
    /// name equal to it or a wildcard one label above; for a host wildcard `*.s`, the
    /// certificate wildcard `*.s`, valid for every name one label below.
    fn covering(&self, host: &HostPattern) -> Vec<(&'a Certificate, &'a str)> {
        let hits: Vec<&(usize, &str)> = match host {
            HostPattern::Exact(name) => self
                .exact
                .get(name.as_slice())
                .into_iter()
                .flatten()
                .chain(one_label_below(name).and_then(|parent| self.wildcard.get(parent)).into_iter().flatten())
                .collect(),
            HostPattern::Wildcard(suffix) => self.wildcard.get(suffix.as_slice()).into_iter().flatten().collect(),
            HostPattern::Any => Vec::new(),
        };
        let mut out: Vec<(&Certificate, &str)> = Vec::new();
        for &(c, written) in hits {
            // One name per certificate is enough to say it covers the host.
            if !out.iter().any(|(seen, _)| seen.sha256 == self.certificates[c].sha256) {
                out.push((self.certificates[c], written));
            }
        }
        out
    }
}
