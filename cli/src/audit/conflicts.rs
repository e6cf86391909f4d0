//! Finding the servers a browser can reach over one another's connections.
//!
//! A browser reuses a connection for another host when the address and port are the same and
//! the certificate it was shown covers that host (RFC 9113 §9.1.1); which Secret the
//! certificate came from does not matter. Envoy then routes the request with the route table
//! of the server the connection's SNI picked, and a host that table does not know gets 404.
//! Two servers are at risk together when both run on the same gateway workload and port, both
//! terminate TLS and route HTTP (passthrough and mesh-internal servers cannot 404), and, in
//! Gateway API's words (listener condition `OverlappingTLSConfig`):
//! - `OverlappingCertificates`: a certificate one presents covers a host Envoy gives to the
//!   other (certificate wildcards cover one label), or both present the same certificate (or
//!   name the same credential, when its certificate is not in the input);
//! - `OverlappingHostnames`: their hosts overlap (the same host, or a host wildcard, which
//!   matches any depth, matching the other's host).
//!
//! Servers at risk together, directly or through others, are one conflict: one fix covers them
//! all, so a wildcard over twenty servers is one finding, not twenty.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use crate::audit::index::HostIndex;
use crate::audit::passthrough::{self, AtRisk};
use crate::cluster::model::{Api, Credential, SafeReason, Server, Workload};
use crate::tls::certificate::{CertName, Certificate};
use crate::tls::credentials::{ServerCertificates, Source};

/// Gateway API's reasons for the `OverlappingTLSConfig` listener condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Reason {
    OverlappingCertificates,
    OverlappingHostnames,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OverlappingCertificates => "OverlappingCertificates",
            Reason::OverlappingHostnames => "OverlappingHostnames",
        }
    }
}

/// A name a certificate covers, and the server Envoy gives it to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Covered {
    /// The server the name belongs to.
    pub server: usize,
    /// The covered name; `*.x` stands for the names one label below `x`.
    pub name: String,
    /// The server's host that takes `name` (the same as `name` for an exact host).
    pub host: String,
}

/// One name of a certificate, and the hosts of other servers it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCovers {
    /// In lower case.
    pub name: String,
    pub covered: Vec<Covered>,
}

/// Why servers are at risk together; servers are indexes into the audited slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// The certificate `sha256` that `presenters` present has `names` covering hosts of other
    /// servers than the one presenting it. One piece of evidence per certificate, however many
    /// names it has: a certificate with 2,000 names presented by 2,000 servers is said once.
    CertificateCovers { sha256: String, presenters: Vec<usize>, names: Vec<NameCovers> },
    /// `servers` present one certificate, read from `sources`.
    SameCertificate { sha256: String, sources: Vec<Source>, servers: Vec<usize> },
    /// `servers` name one credential whose certificate is not in the input: whatever it
    /// covers, they share it.
    SameCredential { credential: Credential, servers: Vec<usize> },
    /// `host` (folded: case, trailing dot and Istio's `namespace/` aside) is in each of
    /// `servers`.
    SameHost { host: String, servers: Vec<usize> },
    /// The host wildcard `wildcard` of `server` also matches hosts of other servers.
    HostWildcard { wildcard: String, server: usize, covered: Vec<Covered> },
}

impl Evidence {
    pub fn reason(&self) -> Reason {
        match self {
            Evidence::CertificateCovers { .. } | Evidence::SameCertificate { .. } | Evidence::SameCredential { .. } => {
                Reason::OverlappingCertificates
            }
            Evidence::SameHost { .. } | Evidence::HostWildcard { .. } => Reason::OverlappingHostnames,
        }
    }

    /// Every server this involves, in order, once.
    pub fn servers(&self) -> Vec<usize> {
        let mut all: Vec<usize> = match self {
            Evidence::CertificateCovers { presenters, names, .. } => presenters
                .iter()
                .copied()
                .chain(names.iter().flat_map(|n| n.covered.iter().map(|c| c.server)))
                .collect(),
            Evidence::SameCertificate { servers, .. }
            | Evidence::SameCredential { servers, .. }
            | Evidence::SameHost { servers, .. } => servers.clone(),
            Evidence::HostWildcard { server, covered, .. } => {
                std::iter::once(*server).chain(covered.iter().map(|c| c.server)).collect()
            }
        };
        all.sort();
        all.dedup();
        all
    }
}

/// Servers at risk together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub workload: Workload,
    pub port: u32,
    /// `OverlappingCertificates` when any evidence is about certificates: Gateway API prefers
    /// it when both apply.
    pub reason: Reason,
    /// In input order.
    pub servers: Vec<usize>,
    /// Certificate evidence first.
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NotAtRisk {
    pub server: usize,
    pub reason: SafeReason,
}

#[derive(Debug, Default)]
pub struct Report {
    pub conflicts: Vec<Conflict>,
    pub not_at_risk: Vec<NotAtRisk>,
    /// Servers that terminate TLS and route HTTP but are in no conflict.
    pub clear: Vec<usize>,
    /// Passthrough servers whose hosts a certificate on their port covers: a browser carries
    /// them on that certificate's connections, to a route table that answers 404.
    pub passthrough: Vec<AtRisk>,
    /// Each server's place in a conflict, if it is in one.
    places: Vec<Option<Place>>,
}

/// Where a server is in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    conflict: usize,
    /// The first evidence that involves it (the most telling: certificates come first).
    evidence: usize,
    /// `OverlappingCertificates` if any certificate evidence involves it.
    reason: Reason,
}

impl Report {
    /// The conflict `server` is in.
    pub fn conflict_of(&self, server: usize) -> Option<usize> {
        self.place(server).map(|p| p.conflict)
    }

    /// The reason for one server: `OverlappingCertificates` if any certificate evidence
    /// involves it.
    pub fn reason_for(&self, server: usize) -> Option<Reason> {
        self.place(server).map(|p| p.reason)
    }

    /// The first evidence of its conflict that involves `server`.
    pub fn evidence_of(&self, server: usize) -> Option<&Evidence> {
        self.place(server).map(|p| &self.conflicts[p.conflict].evidence[p.evidence])
    }

    fn place(&self, server: usize) -> Option<Place> {
        self.places.get(server).copied().flatten()
    }
}

/// `certificates[i]` are what `servers[i]` presents (`credentials::resolve`).
pub fn audit(servers: &[Server], certificates: &[ServerCertificates]) -> Report {
    let mut report = Report::default();
    // (workload, port) -> servers that terminate TLS and route HTTP there.
    let mut buckets: BTreeMap<(&Workload, u32), Vec<usize>> = BTreeMap::new();
    for (i, server) in servers.iter().enumerate() {
        match server.risk() {
            Ok(()) => buckets.entry((&server.workload, server.port.number)).or_default().push(i),
            Err(reason) => report.not_at_risk.push(NotAtRisk { server: i, reason }),
        }
    }
    report.passthrough = passthrough::at_risk(servers, certificates, &buckets);
    let passing: BTreeSet<usize> = report.passthrough.iter().map(|p| p.server).collect();
    report.not_at_risk.retain(|n| !passing.contains(&n.server));
    for ((workload, port), members) in &buckets {
        let index = HostIndex::new(servers, members);
        let mut evidence = Vec::new();
        same_certificates(certificates, members, &mut evidence);
        same_credentials(certificates, members, &mut evidence);
        certificate_coverage(certificates, members, &index, &mut evidence);
        host_overlaps(servers, members, &index, &mut evidence);
        for (group, evidence) in group(members, evidence) {
            let reason = evidence.iter().map(Evidence::reason).min().unwrap_or(Reason::OverlappingHostnames);
            let (workload, port) = ((*workload).clone(), *port);
            report.conflicts.push(Conflict { workload, port, reason, servers: group, evidence });
        }
    }
    report.conflicts.sort_by_key(|c| c.servers[0]);
    report.places = vec![None; servers.len()];
    for (n, conflict) in report.conflicts.iter().enumerate() {
        for (e, evidence) in conflict.evidence.iter().enumerate() {
            for server in evidence.servers() {
                let place =
                    report.places[server].get_or_insert(Place { conflict: n, evidence: e, reason: evidence.reason() });
                place.reason = place.reason.min(evidence.reason());
            }
        }
    }
    report.clear = (0..servers.len()).filter(|&i| servers[i].risk().is_ok() && report.places[i].is_none()).collect();
    report
}

fn same_certificates(certificates: &[ServerCertificates], members: &[usize], out: &mut Vec<Evidence>) {
    let mut by_sha: BTreeMap<&str, (BTreeSet<usize>, BTreeSet<&Source>)> = BTreeMap::new();
    for &i in members {
        for presented in &certificates[i].presented {
            let (servers, sources) = by_sha.entry(&presented.certificate.sha256).or_default();
            servers.insert(i);
            sources.insert(&presented.source);
        }
    }
    for (sha256, (servers, sources)) in by_sha {
        if servers.len() > 1 {
            out.push(Evidence::SameCertificate {
                sha256: sha256.to_owned(),
                sources: sources.into_iter().cloned().collect(),
                servers: servers.into_iter().collect(),
            });
        }
    }
}

fn same_credentials(certificates: &[ServerCertificates], members: &[usize], out: &mut Vec<Evidence>) {
    let mut by_credential: BTreeMap<&Credential, BTreeSet<usize>> = BTreeMap::new();
    for &i in members {
        for credential in certificates[i].unknown.iter().filter_map(|u| u.credential.as_ref()) {
            by_credential.entry(credential).or_default().insert(i);
        }
    }
    for (credential, servers) in by_credential {
        if servers.len() > 1 {
            out.push(Evidence::SameCredential {
                credential: credential.clone(),
                servers: servers.into_iter().collect(),
            });
        }
    }
}

/// For each certificate presented on this port, the names of it that cover a host Envoy gives
/// to another server than the one presenting it. Worked out once per certificate, whoever
/// presents it: the cost follows the names and the hosts they cover, not presenters × names
/// × hosts.
fn certificate_coverage(
    certificates: &[ServerCertificates],
    members: &[usize],
    index: &HostIndex,
    out: &mut Vec<Evidence>,
) {
    let mut presented: BTreeMap<&str, (&Arc<Certificate>, BTreeSet<usize>)> = BTreeMap::new();
    for &i in members {
        for p in &certificates[i].presented {
            presented.entry(&p.certificate.sha256).or_insert_with(|| (&p.certificate, BTreeSet::new())).1.insert(i);
        }
    }
    for (sha256, (certificate, presenters)) in presented {
        let mut names: BTreeMap<String, BTreeSet<Covered>> = BTreeMap::new();
        for (written, name) in certificate.dns_names() {
            // A wildcard name is checked against each exact host one label below, and as
            // `*.suffix`, standing for every other label: as a name, exactly the host wildcards
            // and `*` that take any fresh label there take it.
            let candidates: Vec<Vec<u8>> = match name {
                CertName::Exact(exact) => vec![exact.clone()],
                CertName::Wildcard(suffix) => index
                    .one_label_below(suffix)
                    .iter()
                    .map(|h| h.to_vec())
                    .chain(std::iter::once([b"*.".as_slice(), suffix].concat()))
                    .collect(),
                CertName::Unusable => Vec::new(),
            };
            for candidate in candidates {
                for &(owner, pattern) in index.owners(&candidate) {
                    // A server presenting this very certificate is covered by it as by its own:
                    // that is `SameCertificate`'s evidence, not another fact.
                    if presenters.contains(&owner) {
                        continue;
                    }
                    names.entry(written.to_ascii_lowercase()).or_default().insert(Covered {
                        server: owner,
                        name: String::from_utf8_lossy(&candidate).into_owned(),
                        host: pattern.to_string(),
                    });
                }
            }
        }
        if names.is_empty() {
            continue;
        }
        // Every presenter's certificate covers a host of another server.
        let presenters: Vec<usize> = presenters.into_iter().collect();
        out.push(Evidence::CertificateCovers {
            sha256: sha256.to_owned(),
            presenters,
            names: names
                .into_iter()
                .map(|(name, covered)| NameCovers { name, covered: covered.into_iter().collect() })
                .collect(),
        });
    }
}

/// The same host in several servers, and host wildcards matching other servers' hosts, found
/// through the index: the cost follows the hosts and what overlaps, not pairs of servers.
fn host_overlaps(servers: &[Server], members: &[usize], index: &HostIndex, out: &mut Vec<Evidence>) {
    for (host, servers) in index.listed_twice() {
        out.push(Evidence::SameHost { host: host.clone(), servers: servers.clone() });
    }
    let mut wild: BTreeMap<(usize, String), BTreeSet<Covered>> = BTreeMap::new();
    for &narrow in members {
        for pattern in &servers[narrow].patterns {
            for (wide, wildcard) in index.wider(pattern) {
                if wide != narrow {
                    let host = pattern.to_string();
                    wild.entry((wide, wildcard.to_string())).or_default().insert(Covered {
                        server: narrow,
                        name: host.clone(),
                        host,
                    });
                }
            }
        }
    }
    for ((server, wildcard), covered) in wild {
        out.push(Evidence::HostWildcard { wildcard, server, covered: covered.into_iter().collect() });
    }
}

/// Splits `members` into the groups `evidence` connects; members without evidence are in no
/// group. Each group's evidence keeps its order (certificates first).
fn group(members: &[usize], evidence: Vec<Evidence>) -> Vec<(Vec<usize>, Vec<Evidence>)> {
    let mut parent: BTreeMap<usize, usize> = members.iter().map(|&m| (m, m)).collect();
    fn root(parent: &mut BTreeMap<usize, usize>, mut x: usize) -> usize {
        while parent[&x] != x {
            let up = parent[&parent[&x]];
            parent.insert(x, up);
            x = up;
        }
        x
    }
    let involved: Vec<Vec<usize>> = evidence.iter().map(Evidence::servers).collect();
    for servers in &involved {
        for pair in servers.windows(2) {
            let (a, b) = (root(&mut parent, pair[0]), root(&mut parent, pair[1]));
            parent.insert(a.max(b), a.min(b));
        }
    }
    let mut groups: BTreeMap<usize, (Vec<usize>, Vec<Evidence>)> = BTreeMap::new();
    for (e, servers) in evidence.into_iter().zip(&involved) {
        let r = root(&mut parent, servers[0]);
        groups.entry(r).or_default().1.push(e);
    }
    for &m in members {
        let r = root(&mut parent, m);
        if let Some(group) = groups.get_mut(&r) {
            group.0.push(m);
        }
    }
    groups.into_values().collect()
}

/// The `OverlappingTLSConfig` condition a Gateway API listener should carry. It is a
/// negative-polarity condition: set only when true, absent otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerCondition {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: &'static str,
    pub reason: Reason,
    pub message: String,
}

/// At most this many listeners or hosts are named in a condition's message, then how many more:
/// a Kubernetes condition message holds at most 32,768 characters, and a listener under a
/// wildcard shared by thousands says enough with ten.
const NAMED_IN_A_CONDITION: usize = 10;

/// `a, b, c` of `items` (there are `total` of them), the first `NAMED_IN_A_CONDITION`, then `and
/// N more`.
fn some_of(items: impl Iterator<Item = String>, total: usize) -> String {
    let mut shown: Vec<String> = items.take(NAMED_IN_A_CONDITION).collect();
    if total > shown.len() {
        shown.push(format!("and {} more", total - shown.len()));
    }
    shown.join(", ")
}

/// How many of `covered` (sorted by server) are not `server`'s.
fn others_count(covered: &[Covered], server: usize) -> usize {
    let from = covered.partition_point(|c| c.server < server);
    let to = covered.partition_point(|c| c.server <= server);
    covered.len() - (to - from)
}

/// The condition for server `i`, a Gateway API listener, or `None` when it should carry none.
pub fn listener_condition(servers: &[Server], report: &Report, i: usize) -> Option<ListenerCondition> {
    if servers[i].api != Api::GatewayApi {
        return None;
    }
    // The most telling evidence about this listener: certificates before hosts.
    let evidence = report.evidence_of(i)?;
    let name = |s: usize| format!("listener {}", servers[s].listener.as_deref().unwrap_or(&servers[s].field));
    // `list` is sorted.
    let others = |list: &[usize]| {
        let total = list.len() - usize::from(list.binary_search(&i).is_ok());
        some_of(list.iter().filter(|&&s| s != i).map(|&s| name(s)), total)
    };
    let message = match evidence {
        Evidence::CertificateCovers { presenters, names, .. } => {
            if presenters.binary_search(&i).is_ok() {
                let covering: Vec<&NameCovers> = names.iter().filter(|n| others_count(&n.covered, i) > 0).collect();
                let total = covering.iter().map(|n| others_count(&n.covered, i)).sum();
                let hosts = covering
                    .iter()
                    .flat_map(|n| n.covered.iter().filter(|c| c.server != i))
                    .map(|c| format!("{} of {}", c.name, name(c.server)));
                match covering.as_slice() {
                    [one] => format!("its certificate's name {} covers {}", one.name, some_of(hosts, total)),
                    many => format!(
                        "its certificate's names {} cover {}",
                        some_of(many.iter().map(|n| n.name.clone()), many.len()),
                        some_of(hosts, total)
                    ),
                }
            } else {
                let cert_name = names
                    .iter()
                    .find(|n| n.covered.binary_search_by(|c| c.server.cmp(&i)).is_ok())
                    .map_or("", |n| n.name.as_str());
                format!(
                    "the certificate of {} has the name {cert_name}, which covers this listener's hostname",
                    others(presenters)
                )
            }
        }
        Evidence::SameCertificate { servers, .. } => format!("it presents the same certificate as {}", others(servers)),
        Evidence::SameCredential { credential, servers } => {
            format!("it uses {credential}, as {} does", others(servers))
        }
        Evidence::SameHost { host, servers } => format!("hostname {host} is also on {}", others(servers)),
        Evidence::HostWildcard { wildcard, server, covered } => {
            if *server == i {
                let hosts = covered.iter().map(|c| format!("{} of {}", c.host, name(c.server)));
                format!("hostname {wildcard} overlaps {}", some_of(hosts, covered.len()))
            } else {
                format!("hostname {wildcard} of {} overlaps this listener's hostname", name(*server))
            }
        }
    };
    Some(ListenerCondition {
        kind: "OverlappingTLSConfig",
        status: "True",
        reason: report.reason_for(i)?,
        message: format!("{message} (sni-guard audit)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::credentials::{Presented, Unknown};

    fn servers(yaml: &str) -> Vec<Server> {
        crate::cluster::inventory::test_servers(yaml)
    }

    fn gateway(ns: &str, name: &str, selector: &str, servers: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec:\n  selector: {{istio: {selector}}}\n  servers:\n{servers}---\n"
        )
    }

    fn https(hosts: &str, credential: &str) -> String {
        format!("  - port: {{number: 443, name: https, protocol: HTTPS}}\n    hosts: [{hosts}]\n    tls: {{mode: SIMPLE, credentialName: {credential}}}\n")
    }

    /// A certificate with these names; `id` stands for its fingerprint.
    fn cert(id: &str, names: &[&str]) -> ServerCertificates {
        ServerCertificates {
            presented: vec![Presented {
                source: Source::Secret { namespace: "istio-system".into(), name: id.into() },
                certificate: Arc::new(Certificate::new(
                    names.iter().map(|n| n.to_string()).collect(),
                    false,
                    String::new(),
                    id.into(),
                )),
            }],
            unknown: Vec::new(),
        }
    }

    fn unknown(servers: &[Server]) -> Vec<ServerCertificates> {
        servers
            .iter()
            .map(|s| ServerCertificates {
                presented: Vec::new(),
                unknown: s
                    .credentials
                    .iter()
                    .map(|c| Unknown { credential: Some(c.clone()), looked_for: "not in the input".into() })
                    .collect(),
            })
            .collect()
    }

    fn kinds(report: &Report) -> Vec<Vec<String>> {
        report
            .conflicts
            .iter()
            .map(|c| {
                c.evidence
                    .iter()
                    .map(|e| match e {
                        Evidence::CertificateCovers { presenters, names, .. } => {
                            let names: Vec<String> = names
                                .iter()
                                .map(|n| {
                                    let covered: Vec<String> = n
                                        .covered
                                        .iter()
                                        .map(|c| format!("{}@{}={}", c.name, c.server, c.host))
                                        .collect();
                                    format!("{} {}", n.name, covered.join(" "))
                                })
                                .collect();
                            format!("covers {presenters:?} {}", names.join("; "))
                        }
                        Evidence::SameCertificate { servers, .. } => format!("same-cert {servers:?}"),
                        Evidence::SameCredential { credential, servers } => {
                            format!("same-credential {credential} {servers:?}")
                        }
                        Evidence::SameHost { host, servers } => format!("same-host {host} {servers:?}"),
                        Evidence::HostWildcard { wildcard, server, covered } => {
                            let covered: Vec<String> =
                                covered.iter().map(|c| format!("{}@{}", c.host, c.server)).collect();
                            format!("host-wildcard {wildcard}@{server} {}", covered.join(" "))
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_wildcard_certificate_covering_another_gateways_host() {
        // istio/istio#13589: different Secrets, no host overlap; the certificate decides.
        let s = servers(
            &(gateway("shop", "shop", "ingress", &https("shop.acme.test", "wild"))
                + &gateway("api", "api", "ingress", &https("api.acme.test", "api"))),
        );
        let report = audit(&s, &[cert("W", &["*.acme.test"]), cert("A", &["api.acme.test"])]);
        assert_eq!(kinds(&report), [["covers [0] *.acme.test api.acme.test@1=api.acme.test"]]);
        assert_eq!(report.conflicts[0].reason, Reason::OverlappingCertificates);
        // Without the certificates: nothing to go by but names and hosts, which differ.
        assert!(audit(&s, &unknown(&s)).conflicts.is_empty());
    }

    #[test]
    fn a_certificate_wildcard_covers_one_label_only() {
        let s = servers(
            &(gateway("a", "a", "ingress", &https("acme.test", "apex"))
                + &gateway("b", "b", "ingress", &https("a.b.acme.test", "deep"))
                + &gateway("w", "w", "ingress", &https("www.acme.test", "wild"))),
        );
        let report =
            audit(&s, &[cert("P", &["acme.test"]), cert("D", &["a.b.acme.test"]), cert("W", &["*.acme.test"])]);
        assert!(report.conflicts.is_empty(), "{:?}", kinds(&report));
        assert_eq!(report.clear, [0, 1, 2]);
    }

    #[test]
    fn one_certificate_in_two_secrets() {
        let s = servers(
            &(gateway("a", "a", "ingress", &https("a.acme.test", "copy-1"))
                + &gateway("b", "b", "ingress", &https("b.acme.test", "copy-2"))),
        );
        let mut certs = vec![cert("X", &["a.acme.test", "b.acme.test"]), cert("X", &["a.acme.test", "b.acme.test"])];
        certs[1].presented[0].source = Source::Secret { namespace: "istio-system".into(), name: "copy-2".into() };
        let report = audit(&s, &certs);
        // Each name covering the other's host is the one certificate again: one fact, one line.
        assert_eq!(kinds(&report), [["same-cert [0, 1]"]]);
        match &report.conflicts[0].evidence[0] {
            Evidence::SameCertificate { sources, .. } => assert_eq!(sources.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_name_belongs_to_the_server_envoy_gives_it_to() {
        // [0]'s certificate names x.acme.test, which [0] serves itself (an exact host beats
        // [1]'s wildcard): no certificate evidence that way. [1]'s *.acme.test covers it.
        let s = servers(
            &(gateway("a", "a", "ingress", &https("x.acme.test", "x"))
                + &gateway("b", "b", "ingress", &https("\"*.acme.test\"", "wild"))),
        );
        let report = audit(&s, &[cert("X", &["x.acme.test"]), cert("W", &["*.acme.test"])]);
        assert_eq!(
            kinds(&report),
            [["covers [1] *.acme.test x.acme.test@0=x.acme.test", "host-wildcard *.acme.test@1 x.acme.test@0"]]
        );
    }

    #[test]
    fn twenty_servers_under_one_wildcard_are_one_conflict() {
        let mut yaml = gateway("edge", "wild", "ingress", &https("\"*.example.com\"", "wild"));
        let mut certs = vec![cert("W", &["*.example.com"])];
        for n in 1..=20 {
            yaml +=
                &gateway(&format!("app{n}"), "gw", "ingress", &https(&format!("app{n}.example.com"), &format!("c{n}")));
            certs.push(cert(&format!("C{n}"), &[&format!("app{n}.example.com")]));
        }
        let s = servers(&yaml);
        let report = audit(&s, &certs);
        assert_eq!(report.conflicts.len(), 1);
        assert_eq!(report.conflicts[0].servers.len(), 21);
        let evidence = &report.conflicts[0].evidence;
        assert_eq!(evidence.len(), 2, "{:?}", kinds(&report));
        assert!(
            matches!(&evidence[0], Evidence::CertificateCovers { names, .. } if names.len() == 1 && names[0].covered.len() == 20)
        );
        assert!(matches!(&evidence[1], Evidence::HostWildcard { covered, .. } if covered.len() == 20));
    }

    #[test]
    fn shared_credentials_without_their_certificates() {
        let s = servers(
            &(gateway("a", "gw-a", "ingress", &https("a.example.com", "shared"))
                + &gateway("b", "gw-b", "ingress", &https("b.example.com", "shared"))
                + &gateway("c", "gw-c", "other", &https("c.example.com", "shared"))),
        );
        let report = audit(&s, &unknown(&s));
        assert_eq!(kinds(&report), [["same-credential credentialName shared [0, 1]"]]);
        assert_eq!(report.conflicts[0].port, 443);
        assert_eq!(report.clear, [2]);
    }

    #[test]
    fn hosts_of_one_server_never_conflict() {
        let s = servers(&gateway("a", "gw", "ingress", &https("a.example.com, \"*.example.com\"", "shared")));
        assert!(audit(&s, &[cert("W", &["*.example.com"])]).conflicts.is_empty());
    }

    #[test]
    fn different_ports_do_not_conflict() {
        let other_port = https("b.example.com", "shared").replace("443", "8443");
        let s = servers(&gateway("a", "gw", "ingress", &(https("a.example.com", "shared") + &other_port)));
        assert!(audit(&s, &unknown(&s)).conflicts.is_empty());
    }

    #[test]
    fn passthrough_and_mesh_servers_are_not_at_risk() {
        let pass = "  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: [db.example.com]\n    tls: {mode: PASSTHROUGH}\n";
        let mesh = "  - port: {number: 15443, name: tls, protocol: TLS}\n    hosts: [\"*.local\"]\n    tls: {mode: AUTO_PASSTHROUGH}\n";
        let imtls = "  - port: {number: 443, name: m, protocol: HTTPS}\n    hosts: [x.example.com]\n    tls: {mode: ISTIO_MUTUAL}\n";
        let s = servers(&gateway("a", "gw", "ingress", &(https("a.example.com", "c") + pass + mesh + imtls)));
        let report = audit(&s, &unknown(&s));
        assert!(report.conflicts.is_empty());
        let reasons: Vec<_> = report.not_at_risk.iter().map(|n| (n.server, n.reason)).collect();
        assert_eq!(reasons, [(1, SafeReason::Passthrough), (2, SafeReason::Passthrough), (3, SafeReason::IstioMutual)]);
    }

    #[test]
    fn a_passthrough_host_a_certificate_on_its_port_covers_is_at_risk() {
        let pass = |host: &str| {
            format!("  - port: {{number: 443, name: tls, protocol: TLS}}\n    hosts: [{host}]\n    tls: {{mode: PASSTHROUGH}}\n")
        };
        let s = servers(
            &(gateway("web", "portal", "ingress", &https("portal.corp.test", "wild"))
                + &gateway("legacy", "legacy", "ingress", &(pass("legacy.corp.test") + &pass("db.other.test")))
                + &gateway("elsewhere", "gw", "egress", &pass("legacy.corp.test"))),
        );
        let mut certs = vec![cert("W", &["*.corp.test"])];
        certs.extend(unknown(&s[1..]));
        let report = audit(&s, &certs);
        assert!(report.conflicts.is_empty());
        let at_risk: Vec<String> = report
            .passthrough
            .iter()
            .flat_map(|p| {
                p.covered
                    .iter()
                    .map(|c| format!("{} {} by {} of {:?}", p.server, c.host, c.certificate_name, c.presenters))
            })
            .collect();
        // Not db.other.test (no certificate covers it), not the one on another workload.
        assert_eq!(at_risk, ["1 legacy.corp.test by *.corp.test of [0]"]);
        let safe: Vec<usize> = report.not_at_risk.iter().map(|n| n.server).collect();
        assert_eq!(safe, [2, 3]);
        // Without the certificate: nothing known covers it.
        assert!(audit(&s, &unknown(&s)).passthrough.is_empty());
    }

    #[test]
    fn host_overlaps_and_duplicates() {
        let s = servers(&gateway(
            "a",
            "gw",
            "ingress",
            &(https("\"*.example.com\"", "wild")
                + &https("api.example.com", "api")
                + &https("\"ns/API.example.com\"", "api2")),
        ));
        let report = audit(&s, &unknown(&s));
        assert_eq!(
            kinds(&report),
            [["same-host api.example.com [1, 2]", "host-wildcard *.example.com@0 api.example.com@1 api.example.com@2"]]
        );
        assert_eq!(report.conflicts[0].reason, Reason::OverlappingHostnames);
    }

    #[test]
    fn gateway_api_listener_conditions() {
        let s = servers(
            r#"{"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{"name":"edge","namespace":"web"},
               "spec":{"gatewayClassName":"istio","listeners":[
                 {"name":"www","hostname":"www.corp.test","port":443,"protocol":"HTTPS","tls":{"certificateRefs":[{"name":"wild"}]}},
                 {"name":"pay","hostname":"pay.corp.test","port":443,"protocol":"HTTPS","tls":{"certificateRefs":[{"name":"pay"}]}},
                 {"name":"own","hostname":"own.example.org","port":443,"protocol":"HTTPS","tls":{"certificateRefs":[{"name":"own"}]}}]}}"#,
        );
        let report =
            audit(&s, &[cert("W", &["*.corp.test"]), cert("P", &["pay.corp.test"]), cert("O", &["own.example.org"])]);
        let www = listener_condition(&s, &report, 0).unwrap();
        assert_eq!(
            (www.kind, www.status, www.reason),
            ("OverlappingTLSConfig", "True", Reason::OverlappingCertificates)
        );
        assert_eq!(
            www.message,
            "its certificate's name *.corp.test covers pay.corp.test of listener pay (sni-guard audit)"
        );
        let pay = listener_condition(&s, &report, 1).unwrap();
        assert!(pay.message.starts_with("the certificate of listener www has the name *.corp.test"), "{}", pay.message);
        assert_eq!(listener_condition(&s, &report, 2), None);
    }
}
