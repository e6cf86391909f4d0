//! The audit report for people (text within 100 columns, colour only on a terminal) and for
//! tools (one JSON document).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::audit::advice::Advisor;
use crate::audit::conflicts::{
    listener_condition, Conflict, Covered, Evidence, ListenerCondition, NameCovers, Reason, Report,
};
use crate::audit::passthrough::AtRisk;
use crate::cluster::model::{Api, Credential, SafeReason, Server, Workload};
use crate::text::{first_of, json_pretty, json_string, wrap, Shown, KEEP, NAMES_SHOWN};
use crate::tls::certificate::Certificate;
use crate::tls::credentials::{Decided, Resolution, ServerCertificates, Source, Unknown};

/// Everything the report is made from.
pub struct Findings<'a> {
    pub servers: &'a [Server],
    pub gateways: usize,
    pub secrets: usize,
    pub resolution: &'a Resolution,
    pub report: &'a Report,
}

impl Findings<'_> {
    fn certificates(&self, server: usize) -> &ServerCertificates {
        &self.resolution.servers[server]
    }

    fn advisor(&self) -> Advisor<'_> {
        Advisor::new(self.servers, &self.resolution.servers)
    }
}

/// How the text report may be dressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `web/edge spec.listeners[0] (shop)`: how the report names a server.
fn server_name(server: &Server) -> String {
    match (&server.listener, server.api) {
        (Some(listener), Api::GatewayApi) => format!("{} ({})", server.label(), Shown(listener)),
        _ => server.label(),
    }
}

fn hosts(server: &Server) -> String {
    server.hosts.iter().map(|h| Shown(h).to_string()).collect::<Vec<_>>().join(", ")
}

/// Lines saying what a server presents: one per certificate, and what is unknown.
fn certificate_lines(certificates: &ServerCertificates, indent: &str) -> String {
    let mut out = String::new();
    for presented in &certificates.presented {
        let all = &presented.certificate.names;
        let names = match all.len() {
            0 => "(no DNS name)".to_owned(),
            n if n <= NAMES_SHOWN => first_of(all, NAMES_SHOWN, "names"),
            // Shortened: say where the rest is.
            _ => format!("{} (`--output json` lists them)", first_of(all, NAMES_SHOWN, "names")),
        };
        let cn = if presented.certificate.from_common_name { " (its common name: no DNS SAN)" } else { "" };
        out.push_str(&wrap(
            indent,
            &format!("{indent}  "),
            &format!("certificate {names}{cn}, from {}", presented.source),
        ));
    }
    for unknown in &certificates.unknown {
        out.push_str(&wrap(indent, &format!("{indent}  "), &format!("certificate unknown: {}", unknown.looked_for)));
    }
    out
}

pub fn text(findings: &Findings, style: Style) -> String {
    let Findings { servers, report, .. } = findings;
    let advisor = findings.advisor();
    let mut out = String::new();
    if report.conflicts.is_empty() {
        out.push_str(&style.paint("1;32", "No conflict."));
        out.push_str("\n\n");
    }
    for (n, conflict) in report.conflicts.iter().enumerate() {
        out.push_str(&conflict_text(findings, &advisor, n, conflict, style));
        out.push('\n');
    }

    if !report.passthrough.is_empty() {
        let heading = format!(
            "Passthrough at risk: {} (a certificate on the same port covers the host: a reused connection gets a \
             404)",
            plural(report.passthrough.len(), "server", "servers")
        );
        out.push_str(&style.paint("1;31", wrap("", "  ", &heading).trim_end()));
        out.push('\n');
        for at_risk in &report.passthrough {
            out.push_str(&passthrough_text(findings, &advisor, at_risk));
        }
        out.push('\n');
    }

    if !report.clear.is_empty() {
        out.push_str(
            &style.paint("1", &format!("Not in a conflict: {}", plural(report.clear.len(), "server", "servers"))),
        );
        out.push('\n');
        for &i in &report.clear {
            let server = &servers[i];
            out.push_str(&wrap("  ", "      ", &format!("{}: {}", server_name(server), hosts(server))));
            out.push_str(&certificate_lines(findings.certificates(i), "    "));
            if !findings.certificates(i).unknown.is_empty() {
                out.push_str(&wrap(
                    "    ",
                    "      ",
                    &format!(
                        "checked instead: no other server on {} port {} names the same credential, and \
                         no host overlaps",
                        server.workload, server.port
                    ),
                ));
            }
        }
        out.push('\n');
    }

    if !report.not_at_risk.is_empty() {
        out.push_str(&style.paint(
            "1",
            &format!(
                "Not at risk: {} (no 404 from a reused connection)",
                plural(report.not_at_risk.len(), "server", "servers")
            ),
        ));
        out.push('\n');
        for n in &report.not_at_risk {
            let server = &servers[n.server];
            out.push_str(&wrap(
                "  ",
                "      ",
                &format!("{}: {}, port {}: {}", server_name(server), hosts(server), server.port, n.reason.explain()),
            ));
        }
        out.push('\n');
    }

    for (workload, (namespace, decided)) in &findings.resolution.namespaces {
        let pods = format!("the gateway pods labelled {workload}");
        let said = match decided {
            Decided::Service(services) => format!(
                "Istio credentialName Secrets of {pods} were looked up in {namespace}, where they run: {services} \
                 in front of them is there."
            ),
            Decided::SeveralServices(services) => format!(
                "Istio credentialName Secrets of {pods} were looked up in {namespace}: {services} in front of pods \
                 with these labels are in several namespaces, and the first one's was taken; --gateway-namespace \
                 {workload}:NAMESPACE sets it."
            ),
            Decided::Given | Decided::Assumed => continue,
        };
        out.push_str(&wrap("", "", &said));
    }
    for (namespace, workloads) in &findings.resolution.assumed {
        let workloads: Vec<&str> = workloads.iter().map(String::as_str).collect();
        out.push_str(&wrap(
            "",
            "",
            &format!(
                "Istio credentialName Secrets were looked up in {namespace}, assumed to be the namespace of \
                 the gateway pods ({}); --gateway-namespace sets it.",
                workloads.join("; ")
            ),
        ));
    }
    let unknown =
        (0..servers.len()).filter(|&i| servers[i].risk().is_ok() && !findings.certificates(i).known()).count();
    let in_conflict: usize = report.conflicts.iter().map(|c| c.servers.len()).sum();
    let mut summary = format!(
        "{} in {}, {} read; ",
        plural(servers.len(), "server", "servers"),
        plural(findings.gateways, "Gateway", "Gateways"),
        plural(findings.secrets, "Secret", "Secrets"),
    );
    summary.push_str(&match report.conflicts.len() {
        0 => "no conflict".to_owned(),
        n => format!("{} ({})", plural(n, "conflict", "conflicts"), plural(in_conflict, "server", "servers")),
    });
    if !report.passthrough.is_empty() {
        summary.push_str(&format!(
            "; {} at risk",
            plural(report.passthrough.len(), "passthrough server", "passthrough servers")
        ));
    }
    if unknown > 0 {
        summary.push_str(&format!("; {} unknown", plural(unknown, "server's certificate", "servers' certificates")));
    }
    summary.push('.');
    let colour = if report.conflicts.is_empty() && report.passthrough.is_empty() { "32" } else { "31" };
    let summary = wrap("", "", &summary);
    out.push_str(&style.paint(colour, summary.trim_end()));
    out.push('\n');
    out
}

/// At most this many servers presenting one certificate are named, then how many more.
const PRESENTERS_NAMED: usize = 3;
/// ... and listed in JSON, with their count.
const PRESENTERS_LISTED: usize = 100;

/// `a, b and 990 more servers`.
fn some_servers(servers: &[Server], list: &[usize]) -> String {
    let mut named: Vec<String> = list.iter().take(PRESENTERS_NAMED).map(|&i| servers[i].label()).collect();
    if list.len() > named.len() {
        named.push(format!("{} more", list.len() - named.len()));
    }
    match named.as_slice() {
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        [] => String::new(),
    }
}

/// One passthrough server at risk: what covers it, and the fix.
fn passthrough_text(findings: &Findings, advisor: &Advisor, at_risk: &AtRisk) -> String {
    let servers = findings.servers;
    let server = &servers[at_risk.server];
    let mut out = wrap("  ", "      ", &format!("{}: {}, port {}", server_name(server), hosts(server), server.port));
    let mut names: Vec<&str> = Vec::new();
    for cover in &at_risk.covered {
        let source = cover
            .presenters
            .first()
            .and_then(|&p| findings.certificates(p).presented.iter().find(|c| c.certificate.sha256 == cover.sha256))
            .map_or(String::new(), |p| format!(" (from {})", p.source));
        out.push_str(&wrap(
            "    ",
            "      ",
            &format!(
                "{} is covered by {}, a name of the certificate {} {}{source}: a browser reuses such a \
                 connection for it, and the route table there answers 404; Envoy forwards to the passthrough \
                 backend only a connection opened with its SNI.",
                cover.host,
                cover.certificate_name,
                some_servers(servers, &cover.presenters),
                if cover.presenters.len() == 1 { "presents" } else { "present" },
            ),
        ));
        if !names.contains(&cover.certificate_name.as_str()) {
            names.push(&cover.certificate_name);
        }
    }
    let fix = match server.api {
        Api::Istio => format!(
            "deploy sni-guard, whose configuration lists this server's hosts (`{}`): the request gets 421 and is \
             retried on a connection of its own. Or present certificates without {} on port {}.",
            advisor.config_command(&server.workload, server.port.number),
            names.join(", "),
            server.port
        ),
        // Gateway API scopes its 421 to listeners of the same port and protocol: config leaves
        // passthrough listeners out.
        Api::GatewayApi => format!(
            "present certificates without {} on port {}, or give the passthrough listener a port of its own \
             (sni-guard's configuration leaves Gateway API passthrough listeners out: Gateway API scopes the 421 \
             to listeners of the same port and protocol).",
            names.join(", "),
            server.port
        ),
    };
    out.push_str(&wrap("    Fix: ", "      ", &fix));
    out
}

/// Each server of `conflict` by its place in it, from 0.
fn places(conflict: &Conflict) -> HashMap<usize, usize> {
    conflict.servers.iter().enumerate().map(|(place, &server)| (server, place)).collect()
}

fn conflict_text(findings: &Findings, advisor: &Advisor, n: usize, conflict: &Conflict, style: Style) -> String {
    let servers = findings.servers;
    let places = places(conflict);
    let tag = |i: usize| format!("[{}]", places.get(&i).map_or(0, |p| p + 1));
    let mut out = String::new();
    let title = format!(
        "Conflict {}: {}, {} port {}, {}",
        n + 1,
        conflict.reason.as_str(),
        conflict.workload,
        conflict.port,
        plural(conflict.servers.len(), "server", "servers")
    );
    out.push_str(&style.paint("1;31", wrap("", "  ", &title).trim_end()));
    out.push('\n');
    for &i in &conflict.servers {
        let server = &servers[i];
        let first = format!("  {} ", tag(i));
        out.push_str(&wrap(&first, "      ", &format!("{}: {}", server_name(server), hosts(server))));
        out.push_str(&certificate_lines(findings.certificates(i), "      "));
    }
    for evidence in &conflict.evidence {
        let line = format!("{}: {}", evidence.reason().as_str(), explain(evidence, &tag));
        out.push_str(&wrap("  ", "    ", &line));
    }
    let mut by_reason: BTreeMap<Reason, Vec<String>> = BTreeMap::new();
    for &i in &conflict.servers {
        if let Some(condition) = listener_condition(servers, findings.report, i) {
            let name = servers[i].listener.clone().unwrap_or_else(|| servers[i].field.clone());
            by_reason.entry(condition.reason).or_default().push(format!("{name}{KEEP}{}", tag(i)));
        }
    }
    for (reason, listeners) in by_reason {
        out.push_str(&wrap(
            "  ",
            "    ",
            &format!(
                "Gateway API: {} {} should carry the condition OverlappingTLSConfig, status True, reason {}.",
                if listeners.len() == 1 { "listener" } else { "listeners" },
                listeners.join(", "),
                reason.as_str()
            ),
        ));
    }
    let sentences = advisor.advise(conflict).sentences(&tag);
    out.push_str(&wrap("  Fix: ", "    ", &sentences.join(" ")));
    out
}

/// One piece of evidence in a sentence, naming servers with `tag`.
fn explain(evidence: &Evidence, tag: &dyn Fn(usize) -> String) -> String {
    let list = |servers: &[usize]| servers.iter().map(|&s| tag(s)).collect::<Vec<_>>().join(" ");
    let covered = |covered: &[Covered]| {
        covered
            .iter()
            .map(|c| {
                if c.name == c.host {
                    format!("{}{KEEP}{}", Shown(&c.name), tag(c.server))
                } else {
                    format!("{} ({}'s{KEEP}{})", Shown(&c.name), tag(c.server), Shown(&c.host))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    // A name covering just the host of its own name reads `api.acme.test [2]`.
    let name_covers = |n: &NameCovers| match n.covered.as_slice() {
        [only] if only.name == n.name => covered(&n.covered),
        _ => format!("{}, which covers {}", Shown(&n.name), covered(&n.covered)),
    };
    match evidence {
        Evidence::CertificateCovers { presenters, names, .. } => {
            // Said once, and only when a wildcard name is among them.
            let one_label = if names.iter().any(|n| n.name.starts_with("*.")) {
                " (a certificate wildcard covers one label)"
            } else {
                ""
            };
            match names.as_slice() {
                [one] => format!(
                    "the certificate of {} has the name {}, which covers {}{one_label}",
                    list(presenters),
                    Shown(&one.name),
                    covered(&one.covered)
                ),
                many => {
                    let simple = many.iter().all(|n| matches!(n.covered.as_slice(), [only] if only.name == n.name));
                    let names: Vec<String> = many.iter().map(name_covers).collect();
                    format!(
                        "the certificate of {} has the names {}{one_label}",
                        list(presenters),
                        names.join(if simple { ", " } else { "; " })
                    )
                }
            }
        }
        Evidence::SameCertificate { sha256, sources, servers } => {
            let sources: Vec<String> = sources.iter().map(Source::to_string).collect();
            format!(
                "{} present one certificate (SHA-256 {}), from {}",
                list(servers),
                short_sha256(sha256),
                sources.join(" and ")
            )
        }
        Evidence::SameCredential { credential, servers } => {
            format!("{} use {credential}: one certificate, whatever it covers (it is not in the input)", list(servers))
        }
        Evidence::SameHost { host, servers } => format!("host {} is in {}", Shown(host), list(servers)),
        Evidence::HostWildcard { wildcard, server, covered: hosts } => format!(
            "host {} of {} also matches {} (a host wildcard matches any depth)",
            Shown(wildcard),
            tag(*server),
            covered(hosts)
        ),
    }
}

/// The first 8 bytes of a fingerprint: enough to tell certificates apart in text.
fn short_sha256(sha256: &str) -> String {
    sha256.chars().take(23).collect::<String>() + "…"
}

#[derive(Serialize)]
struct JsonReport<'a> {
    /// One entry per conflict: every server at risk with the others in it.
    conflicts: Vec<JsonConflict<'a>>,
    /// Every Gateway API listener, and the `OverlappingTLSConfig` condition it should carry
    /// (`null`: none; the condition is never set to False).
    listener_conditions: Vec<JsonListener<'a>>,
    not_in_conflict: Vec<JsonServer<'a>>,
    not_at_risk: Vec<JsonSafe<'a>>,
    /// Passthrough servers whose hosts a certificate on their port covers.
    passthrough_at_risk: Vec<JsonPassthrough<'a>>,
    /// Every certificate a server presents, once, by its SHA-256: the servers name them by it.
    certificates: BTreeMap<&'a str, &'a Certificate>,
    /// Where each Istio gateway workload's credentialName Secrets were looked up, and how that
    /// namespace was decided (given, from the Services in front of its pods, or assumed).
    gateway_namespaces: BTreeMap<&'a str, JsonNamespace<'a>>,
    /// Namespaces assumed for Istio gateway pods (where credentialName Secrets were looked up).
    assumed_gateway_namespaces: &'a BTreeMap<String, std::collections::BTreeSet<String>>,
    warnings: &'a [String],
    summary: JsonSummary,
}

#[derive(Serialize)]
struct JsonPassthrough<'a> {
    server: &'a Server,
    covered_by: Vec<JsonPassthroughCover<'a>>,
    /// The `sni-guard config` command whose configuration lists this server's hosts (Istio).
    config_command: Option<String>,
}

#[derive(Serialize)]
struct JsonPassthroughCover<'a> {
    host: &'a str,
    certificate_name: &'a str,
    sha256: &'a str,
    /// The first of the servers presenting the certificate on the port (`presented_by_count`).
    presented_by: Vec<String>,
    presented_by_count: usize,
}

#[derive(Serialize)]
struct JsonNamespace<'a> {
    namespace: &'a str,
    decided: &'a Decided,
}

#[derive(Serialize)]
struct JsonServer<'a> {
    #[serde(flatten)]
    server: &'a Server,
    certificate_known: bool,
    certificates: JsonCertificates<'a>,
}

/// What a server presents: each certificate by its SHA-256 (the report's `certificates` has
/// it) and where it was read, and what is unknown.
#[derive(Serialize)]
struct JsonCertificates<'a> {
    presented: Vec<JsonPresented<'a>>,
    unknown: &'a [Unknown],
}

#[derive(Serialize)]
struct JsonPresented<'a> {
    source: &'a Source,
    sha256: &'a str,
}

#[derive(Serialize)]
struct JsonConflict<'a> {
    reason: Reason,
    workload: &'a Workload,
    port: u32,
    servers: Vec<JsonServer<'a>>,
    /// Why; servers are indexes into this conflict's `servers`.
    evidence: Vec<JsonEvidence<'a>>,
    fix: Vec<String>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum JsonEvidence<'a> {
    CertificateCoversHost {
        reason: Reason,
        sha256: &'a str,
        presented_by: Vec<usize>,
        /// Each name of the certificate that covers a host of another server.
        names: Vec<JsonNameCovers<'a>>,
    },
    SameCertificate {
        reason: Reason,
        sha256: &'a str,
        sources: &'a [Source],
        servers: Vec<usize>,
    },
    SameCredential {
        reason: Reason,
        credential: &'a Credential,
        servers: Vec<usize>,
    },
    SameHost {
        reason: Reason,
        host: &'a str,
        servers: Vec<usize>,
    },
    HostWildcard {
        reason: Reason,
        wildcard: &'a str,
        server: usize,
        matches: Vec<JsonCovered<'a>>,
    },
}

#[derive(Serialize)]
struct JsonNameCovers<'a> {
    certificate_name: &'a str,
    covers: Vec<JsonCovered<'a>>,
}

#[derive(Serialize)]
struct JsonCovered<'a> {
    server: usize,
    name: &'a str,
    host: &'a str,
}

#[derive(Serialize)]
struct JsonListener<'a> {
    gateway: String,
    listener: Option<&'a str>,
    field: &'a str,
    condition: Option<ListenerCondition>,
}

#[derive(Serialize)]
struct JsonSafe<'a> {
    reason: SafeReason,
    explanation: &'static str,
    server: &'a Server,
}

#[derive(Serialize)]
struct JsonSummary {
    gateways: usize,
    servers: usize,
    secrets: usize,
    conflicts: usize,
    passthrough_at_risk: usize,
    certificate_unknown: usize,
}

fn covered_json<'a>(list: &'a [Covered], at: &dyn Fn(usize) -> usize) -> Vec<JsonCovered<'a>> {
    list.iter().map(|c| JsonCovered { server: at(c.server), name: &c.name, host: &c.host }).collect()
}

pub fn json(findings: &Findings) -> String {
    let Findings { servers, report, .. } = findings;
    let advisor = findings.advisor();
    let server = |i: usize| JsonServer {
        server: &servers[i],
        certificate_known: findings.certificates(i).known(),
        certificates: JsonCertificates {
            presented: findings
                .certificates(i)
                .presented
                .iter()
                .map(|p| JsonPresented { source: &p.source, sha256: &p.certificate.sha256 })
                .collect(),
            unknown: &findings.certificates(i).unknown,
        },
    };
    let conflicts = report
        .conflicts
        .iter()
        .map(|conflict| {
            let places = places(conflict);
            let at = |i: usize| places.get(&i).copied().unwrap_or(usize::MAX);
            let all = |list: &[usize]| list.iter().map(|&s| at(s)).collect::<Vec<_>>();
            let evidence = conflict
                .evidence
                .iter()
                .map(|e| {
                    let reason = e.reason();
                    match e {
                        Evidence::CertificateCovers { sha256, presenters, names } => {
                            JsonEvidence::CertificateCoversHost {
                                reason,
                                sha256,
                                presented_by: all(presenters),
                                names: names
                                    .iter()
                                    .map(|n| JsonNameCovers {
                                        certificate_name: &n.name,
                                        covers: covered_json(&n.covered, &at),
                                    })
                                    .collect(),
                            }
                        }
                        Evidence::SameCertificate { sha256, sources, servers } => {
                            JsonEvidence::SameCertificate { reason, sha256, sources, servers: all(servers) }
                        }
                        Evidence::SameCredential { credential, servers } => {
                            JsonEvidence::SameCredential { reason, credential, servers: all(servers) }
                        }
                        Evidence::SameHost { host, servers } => {
                            JsonEvidence::SameHost { reason, host, servers: all(servers) }
                        }
                        Evidence::HostWildcard { wildcard, server, covered: list } => JsonEvidence::HostWildcard {
                            reason,
                            wildcard,
                            server: at(*server),
                            matches: covered_json(list, &at),
                        },
                    }
                })
                .collect();
            let label = |i: usize| servers[i].label();
            JsonConflict {
                reason: conflict.reason,
                workload: &conflict.workload,
                port: conflict.port,
                servers: conflict.servers.iter().map(|&i| server(i)).collect(),
                evidence,
                fix: advisor.advise(conflict).sentences(&label),
            }
        })
        .collect();
    let listener_conditions = (0..servers.len())
        .filter(|&i| servers[i].api == Api::GatewayApi)
        .map(|i| JsonListener {
            gateway: format!("{}/{}", servers[i].namespace, servers[i].gateway),
            listener: servers[i].listener.as_deref(),
            field: &servers[i].field,
            condition: listener_condition(servers, report, i),
        })
        .collect();
    let unknown =
        (0..servers.len()).filter(|&i| servers[i].risk().is_ok() && !findings.certificates(i).known()).count();
    let doc = JsonReport {
        conflicts,
        listener_conditions,
        not_in_conflict: report.clear.iter().map(|&i| server(i)).collect(),
        not_at_risk: report
            .not_at_risk
            .iter()
            .map(|n| JsonSafe { reason: n.reason, explanation: n.reason.explain(), server: &servers[n.server] })
            .collect(),
        passthrough_at_risk: report
            .passthrough
            .iter()
            .map(|p| {
                let server = &servers[p.server];
                JsonPassthrough {
                    server,
                    covered_by: p
                        .covered
                        .iter()
                        .map(|c| JsonPassthroughCover {
                            host: &c.host,
                            certificate_name: &c.certificate_name,
                            sha256: &c.sha256,
                            presented_by: c
                                .presenters
                                .iter()
                                .take(PRESENTERS_LISTED)
                                .map(|&i| servers[i].label())
                                .collect(),
                            presented_by_count: c.presenters.len(),
                        })
                        .collect(),
                    config_command: (server.api == Api::Istio)
                        .then(|| advisor.config_command(&server.workload, server.port.number)),
                }
            })
            .collect(),
        certificates: findings
            .resolution
            .servers
            .iter()
            .flat_map(|c| &c.presented)
            .map(|p| (p.certificate.sha256.as_str(), &*p.certificate))
            .collect(),
        gateway_namespaces: findings
            .resolution
            .namespaces
            .iter()
            .map(|(workload, (namespace, decided))| (workload.as_str(), JsonNamespace { namespace, decided }))
            .collect(),
        assumed_gateway_namespaces: &findings.resolution.assumed,
        warnings: &findings.resolution.warnings,
        summary: JsonSummary {
            gateways: findings.gateways,
            servers: servers.len(),
            secrets: findings.secrets,
            conflicts: report.conflicts.len(),
            passthrough_at_risk: report.passthrough.len(),
            certificate_unknown: unknown,
        },
    };
    let mut text = json_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": {}}}", json_string(&e.to_string())));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::WIDTH;

    #[test]
    fn wrapping_keeps_lines_within_the_width() {
        let words = vec!["host.example.com"; 30].join(" ");
        let text = wrap("  Fix: ", "    ", &words);
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
        assert!(text.starts_with("  Fix: host.example.com host"));
        assert!(text.lines().skip(1).all(|l| l.starts_with("    host")));
        // A word wider than a line is not split, and a kept space is a space.
        let long = "x".repeat(120);
        assert_eq!(wrap("", "", &format!("a {long} b")), format!("a\n{long}\nb\n"));
        assert_eq!(wrap("", "", &format!("a{KEEP}[1]")), "a [1]\n");
        let command = format!("{} `sni-guard config --selector istio=ingressgateway`.", "x".repeat(60));
        assert_eq!(
            wrap("", "", &command),
            format!("{}\n`sni-guard config --selector istio=ingressgateway`.\n", "x".repeat(60))
        );
    }
}
