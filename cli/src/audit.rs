//! Finding the servers a client can reach over one another's HTTP/2 connections.
//!
//! A client reuses a connection for another host when the address and port are the same and
//! the certificate it got is valid for that host (RFC 9113 §9.1.1). Envoy then routes the
//! request with the route table of the server the connection's SNI picked, and a host that
//! table does not know gets 404. So a risk needs two different servers that:
//! - run on the same gateway workload (same Envoy, same address) and the same port number (an
//!   origin includes the port), and
//! - both terminate TLS and route HTTP (passthrough and mesh-internal servers cannot 404), and
//! - present a certificate valid for each other's hosts: the same credential, or a wildcard
//!   (or `*`) in one server covering the other's host (that server's certificate is then
//!   presumably a wildcard certificate valid for it).
//!
//! The same host listed by two such servers is reported too: Envoy can only pick one of them
//! by SNI, and the filter's configuration refuses it.

use std::collections::BTreeMap;

use serde::Serialize;
use sni_guard::server_table::HostPattern;

use crate::model::{covers, Credential, SafeReason, Server, Workload};

/// One finding; `servers` are indexes into the audited slice, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Different servers present the same credential.
    SharedCredential { workload: Workload, port: u32, credential: Credential, servers: Vec<usize> },
    /// The same host (after folding case, dropping a trailing dot and Istio's `namespace/`)
    /// is listed by two or more servers.
    DuplicateHost { workload: Workload, port: u32, host: String, servers: Vec<usize> },
    /// `wildcard` in one server covers `host` in another.
    WildcardOverlap {
        workload: Workload,
        port: u32,
        wildcard: String,
        host: String,
        wildcard_server: usize,
        host_server: usize,
    },
}

impl Conflict {
    pub fn workload(&self) -> &Workload {
        match self {
            Conflict::SharedCredential { workload, .. }
            | Conflict::DuplicateHost { workload, .. }
            | Conflict::WildcardOverlap { workload, .. } => workload,
        }
    }

    pub fn port(&self) -> u32 {
        match self {
            Conflict::SharedCredential { port, .. }
            | Conflict::DuplicateHost { port, .. }
            | Conflict::WildcardOverlap { port, .. } => *port,
        }
    }

    /// The servers involved, in input order.
    pub fn servers(&self) -> Vec<usize> {
        match self {
            Conflict::SharedCredential { servers, .. } | Conflict::DuplicateHost { servers, .. } => servers.clone(),
            Conflict::WildcardOverlap { wildcard_server, host_server, .. } => {
                let mut s = vec![*wildcard_server, *host_server];
                s.sort();
                s
            }
        }
    }
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
}

pub fn audit(servers: &[Server]) -> Report {
    let mut report = Report::default();
    // (workload, port) -> servers that terminate TLS and route HTTP there.
    let mut listeners: BTreeMap<(&Workload, u32), Vec<usize>> = BTreeMap::new();
    for (i, server) in servers.iter().enumerate() {
        match server.risk() {
            Ok(()) => listeners.entry((&server.workload, server.port.number)).or_default().push(i),
            Err(reason) => report.not_at_risk.push(NotAtRisk { server: i, reason }),
        }
    }
    for ((workload, port), members) in listeners {
        shared_credentials(servers, workload, port, &members, &mut report.conflicts);
        duplicate_hosts(servers, workload, port, &members, &mut report.conflicts);
        wildcard_overlaps(servers, workload, port, &members, &mut report.conflicts);
    }
    report
}

fn shared_credentials(servers: &[Server], workload: &Workload, port: u32, members: &[usize], out: &mut Vec<Conflict>) {
    let mut by_credential: BTreeMap<&Credential, Vec<usize>> = BTreeMap::new();
    for &i in members {
        for credential in &servers[i].credentials {
            let users = by_credential.entry(credential).or_default();
            // A server naming one credential twice is still one server.
            if users.last() != Some(&i) {
                users.push(i);
            }
        }
    }
    for (credential, users) in by_credential {
        if users.len() > 1 {
            out.push(Conflict::SharedCredential {
                workload: workload.clone(),
                port,
                credential: credential.clone(),
                servers: users,
            });
        }
    }
}

/// A pattern's key for comparing hosts: the filter's folded form, with `*.` kept apart.
fn key(pattern: &HostPattern) -> String {
    pattern.to_string()
}

fn duplicate_hosts(servers: &[Server], workload: &Workload, port: u32, members: &[usize], out: &mut Vec<Conflict>) {
    let mut by_host: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &i in members {
        for pattern in &servers[i].patterns {
            let users = by_host.entry(key(pattern)).or_default();
            if users.last() != Some(&i) {
                users.push(i);
            }
        }
    }
    for (host, users) in by_host {
        if users.len() > 1 {
            out.push(Conflict::DuplicateHost { workload: workload.clone(), port, host, servers: users });
        }
    }
}

fn wildcard_overlaps(servers: &[Server], workload: &Workload, port: u32, members: &[usize], out: &mut Vec<Conflict>) {
    let mut found = Vec::new();
    for &a in members {
        for &b in members {
            if a == b {
                continue;
            }
            for wide in &servers[a].patterns {
                for narrow in &servers[b].patterns {
                    if covers(wide, narrow) {
                        found.push((key(wide), key(narrow), a, b));
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup();
    for (wildcard, host, wildcard_server, host_server) in found {
        out.push(Conflict::WildcardOverlap {
            workload: workload.clone(),
            port,
            wildcard,
            host,
            wildcard_server,
            host_server,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(yaml: &str) -> Vec<Server> {
        crate::input::test_servers(yaml)
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

    #[test]
    fn two_gateways_sharing_a_credential() {
        let s = servers(
            &(gateway("a", "gw-a", "ingress", &https("a.example.com", "shared"))
                + &gateway("b", "gw-b", "ingress", &https("b.example.com", "shared"))),
        );
        let report = audit(&s);
        assert_eq!(report.conflicts.len(), 1);
        match &report.conflicts[0] {
            Conflict::SharedCredential { credential, servers, port, .. } => {
                assert_eq!(credential, &Credential::CredentialName("shared".into()));
                assert_eq!(servers, &[0, 1]);
                assert_eq!(*port, 443);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_server_with_many_hosts_is_fine() {
        let s = servers(&gateway("a", "gw", "ingress", &https("a.example.com, b.example.com", "shared")));
        assert!(audit(&s).conflicts.is_empty());
    }

    #[test]
    fn within_one_gateway() {
        let both = https("a.example.com", "shared") + &https("b.example.com", "shared");
        let report = audit(&servers(&gateway("a", "gw", "ingress", &both)));
        assert_eq!(report.conflicts.len(), 1);
        assert_eq!(report.conflicts[0].servers(), [0, 1]);
    }

    #[test]
    fn different_selectors_or_ports_do_not_conflict() {
        let s = servers(
            &(gateway("a", "gw-a", "ingress", &https("a.example.com", "shared"))
                + &gateway("b", "gw-b", "other", &https("b.example.com", "shared"))),
        );
        assert!(audit(&s).conflicts.is_empty());
        let other_port = https("b.example.com", "shared").replace("443", "8443");
        let s = servers(&gateway("a", "gw", "ingress", &(https("a.example.com", "shared") + &other_port)));
        assert!(audit(&s).conflicts.is_empty());
    }

    #[test]
    fn passthrough_and_mesh_servers_are_not_at_risk() {
        let pass = "  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: [db.example.com]\n    tls: {mode: PASSTHROUGH}\n";
        let mesh = "  - port: {number: 15443, name: tls, protocol: TLS}\n    hosts: [\"*.local\"]\n    tls: {mode: AUTO_PASSTHROUGH}\n";
        let imtls = "  - port: {number: 443, name: m, protocol: HTTPS}\n    hosts: [x.example.com]\n    tls: {mode: ISTIO_MUTUAL}\n";
        let report =
            audit(&servers(&gateway("a", "gw", "ingress", &(https("a.example.com", "c") + pass + mesh + imtls))));
        assert!(report.conflicts.is_empty());
        let reasons: Vec<_> = report.not_at_risk.iter().map(|n| (n.server, n.reason)).collect();
        assert_eq!(reasons, [(1, SafeReason::Passthrough), (2, SafeReason::Passthrough), (3, SafeReason::IstioMutual)]);
    }

    #[test]
    fn wildcards_overlap_and_duplicates() {
        let s = servers(&gateway(
            "a",
            "gw",
            "ingress",
            &(https("\"*.example.com\"", "wild")
                + &https("api.example.com", "api")
                + &https("\"ns/API.example.com\"", "api2")),
        ));
        let report = audit(&s);
        let kinds: Vec<String> = report
            .conflicts
            .iter()
            .map(|c| match c {
                Conflict::SharedCredential { .. } => "shared".to_owned(),
                Conflict::DuplicateHost { host, servers, .. } => format!("dup {host} {servers:?}"),
                Conflict::WildcardOverlap { wildcard, host, wildcard_server, host_server, .. } => {
                    format!("overlap {wildcard} {host} {wildcard_server}->{host_server}")
                }
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "dup api.example.com [1, 2]",
                "overlap *.example.com api.example.com 0->1",
                "overlap *.example.com api.example.com 0->2"
            ]
        );
    }
}
