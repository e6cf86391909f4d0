//! What fixes a conflict: one server for all its hosts (with a certificate valid for every
//! one), certificates that cover only their own server's hosts, or sni-guard.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sni_guard::server_table::HostPattern;

use crate::audit::conflicts::{Conflict, Evidence, Reason};
use crate::cluster::model::{join_labels, Api, Credential, Server, Workload};
use crate::tls::credentials::ServerCertificates;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    /// A server whose every certificate is valid for every host of the conflict: the one to
    /// merge the others onto.
    pub merge_onto: Option<usize>,
    /// When no certificate is known to do that: the credential all the servers name, whose
    /// certificate is not in the input.
    pub shared_credential: Option<Credential>,
    /// Some server's certificate is unknown, so no certificate could be checked for all hosts.
    pub certificates_unknown: bool,
    /// Certificate names that cover other servers' hosts, with the servers presenting them
    /// (those presenting the same names together); filled only when certificates alone make
    /// the conflict (no host overlaps).
    pub narrow: Vec<(Vec<usize>, Vec<String>)>,
    /// Hosts in two or more servers: Envoy picks one server for them by SNI, and sni-guard's
    /// configuration refuses them.
    pub duplicate_hosts: Vec<String>,
    /// The `sni-guard config` command for the conflict's workload.
    pub config_command: String,
    /// Gateway API listeners, rather than Istio servers.
    pub listeners: bool,
    /// Some host is a wildcard: a certificate name covers one label of it, no more.
    pub wildcard_hosts: bool,
}

/// Advice for the conflicts of one audit, with what it needs from all the servers worked out
/// once: a report of many conflicts costs the same per conflict as a report of one.
pub struct Advisor<'a> {
    servers: &'a [Server],
    certificates: &'a [ServerCertificates],
    /// The ports each workload has servers on that terminate TLS and route HTTP.
    ports: BTreeMap<&'a Workload, BTreeSet<u32>>,
}

impl<'a> Advisor<'a> {
    pub fn new(servers: &'a [Server], certificates: &'a [ServerCertificates]) -> Advisor<'a> {
        let mut ports: BTreeMap<&Workload, BTreeSet<u32>> = BTreeMap::new();
        for server in servers.iter().filter(|s| s.risk().is_ok()) {
            ports.entry(&server.workload).or_default().insert(server.port.number);
        }
        Advisor { servers, certificates, ports }
    }

    pub fn advise(&self, conflict: &Conflict) -> Advice {
        let (servers, certificates) = (self.servers, self.certificates);
        let members = &conflict.servers;
        // Whether a certificate is valid for every host here, asked once per certificate.
        let mut valid_for_all: HashMap<&str, bool> = HashMap::new();
        let merge_onto = members.iter().copied().find(|&k| {
            certificates[k].known()
                && certificates[k].presented.iter().all(|p| {
                    *valid_for_all.entry(&p.certificate.sha256).or_insert_with(|| {
                        members.iter().flat_map(|&m| &servers[m].patterns).all(|host| p.certificate.serves(host))
                    })
                })
        });
        // Only a credential whose certificate is unknown: a known one was checked above.
        let shared_credential = match merge_onto {
            Some(_) => None,
            None => certificates[members[0]]
                .unknown
                .iter()
                .filter_map(|u| u.credential.as_ref())
                .find(|c| members.iter().all(|&m| servers[m].credentials.contains(c)))
                .cloned(),
        };
        let duplicate_hosts = conflict
            .evidence
            .iter()
            .filter_map(|e| match e {
                Evidence::SameHost { host, .. } => Some(host.clone()),
                _ => None,
            })
            .collect();
        let hosts_overlap = conflict.evidence.iter().any(|e| e.reason() == Reason::OverlappingHostnames);
        Advice {
            merge_onto,
            shared_credential,
            certificates_unknown: members.iter().any(|&m| !certificates[m].known()),
            narrow: if hosts_overlap { Vec::new() } else { narrow(&conflict.evidence) },
            duplicate_hosts,
            config_command: self.config_command(&conflict.workload, conflict.port),
            listeners: servers[members[0]].api == Api::GatewayApi,
            wildcard_hosts: members
                .iter()
                .flat_map(|&m| &servers[m].patterns)
                .any(|p| !matches!(p, HostPattern::Exact(_))),
        }
    }

    /// `sni-guard config` for `workload`, with `--port` when it has servers to guard on other
    /// ports than `port` too.
    pub fn config_command(&self, workload: &Workload, port: u32) -> String {
        let mut command = match workload {
            Workload::Selector(labels) if labels.is_empty() => "sni-guard config --selector KEY=VALUE".to_owned(),
            Workload::Selector(labels) => format!("sni-guard config --selector {}", join_labels(labels)),
            Workload::Gateway { namespace, name } => {
                format!(
                    "sni-guard config --selector {}={name} --namespace {namespace}",
                    crate::cluster::model::GATEWAY_NAME_LABEL
                )
            }
        };
        let other_ports = self.ports.get(workload).is_some_and(|ports| ports.iter().any(|&p| p != port));
        if other_ports {
            command.push_str(&format!(" --port {port}"));
        }
        command
    }
}

/// The certificate names each presenter should give up, presenters of the same names together:
/// grouped by the certificates they present first, so that 2,000 servers presenting one
/// certificate of 2,000 names cost 2,000 + 2,000, not 2,000 × 2,000.
fn narrow(evidence: &[Evidence]) -> Vec<(Vec<usize>, Vec<String>)> {
    let mut certificates_of: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (e, evidence) in evidence.iter().enumerate() {
        if let Evidence::CertificateCovers { presenters, .. } = evidence {
            for &p in presenters {
                certificates_of.entry(p).or_default().push(e);
            }
        }
    }
    let mut presenting: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
    for (presenter, certificates) in certificates_of {
        presenting.entry(certificates).or_default().push(presenter);
    }
    let mut by_names: BTreeMap<BTreeSet<&str>, Vec<usize>> = BTreeMap::new();
    for (certificates, presenters) in presenting {
        let names = certificates
            .iter()
            .flat_map(|&e| match &evidence[e] {
                Evidence::CertificateCovers { names, .. } => names.as_slice(),
                _ => &[],
            })
            .map(|n| n.name.as_str())
            .collect();
        by_names.entry(names).or_default().extend(presenters);
    }
    by_names
        .into_iter()
        .map(|(names, mut presenters)| {
            presenters.sort();
            (presenters, names.into_iter().map(str::to_owned).collect())
        })
        .collect()
}

impl Advice {
    /// The advice in sentences, naming servers with `name` (`[2]` in text, labels in JSON).
    pub fn sentences(&self, name: &dyn Fn(usize) -> String) -> Vec<String> {
        let mut out = Vec::new();
        let what = if self.listeners { "listener" } else { "server" };
        // A certificate name covers one label below a host wildcard, never deeper names.
        let here =
            if self.wildcard_hosts { "every host here (one label deep under a wildcard)" } else { "every host here" };
        match (self.merge_onto, &self.shared_credential) {
            (Some(k), _) => out.push(format!(
                "Merge them into one {what} with the certificate of {}, valid for {here} \
                 (`sni-guard merge` prints it).",
                name(k)
            )),
            (None, Some(credential)) => out.push(format!(
                "Merge them into one {what} with {credential}, which they all use (`sni-guard merge` prints it)."
            )),
            (None, None) if self.certificates_unknown => out.push(format!(
                "To merge them into one {what}, use a certificate valid for {here} (not all of \
                 theirs are in the input)."
            )),
            (None, None) => out
                .push(format!("To merge them into one {what}, get a certificate valid for {here}: none of theirs is.")),
        }
        // Servers presenting the same names (one certificate, say) get one sentence.
        for (presenters, names) in &self.narrow {
            let presenters: Vec<String> = presenters.iter().map(|&p| name(p)).collect();
            out.push(format!(
                "Or give {} {} without {}, for {} own hosts only.",
                presenters.join(" and "),
                if presenters.len() == 1 { "a certificate" } else { "certificates" },
                names.join(", "),
                if presenters.len() == 1 { "its" } else { "their" }
            ));
        }
        if self.duplicate_hosts.is_empty() {
            out.push(format!(
                "Or deploy sni-guard, which answers 421 so that the browser retries on a new connection: \
                 `{}`.",
                self.config_command
            ));
        } else {
            out.push(format!(
                "Keep {} in one {what} only: Envoy gives a host to one {what} by SNI, and sni-guard's \
                 configuration refuses a host in two.",
                self.duplicate_hosts.join(", ")
            ));
        }
        out
    }
}
