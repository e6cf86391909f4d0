//! The audit report for people (aligned text, colour only on a terminal) and for machines
//! (JSON). Every text row is self-contained (conflict number, workload, port repeated), so
//! `grep` on piped output keeps its meaning.

use serde::Serialize;

use crate::audit::{Conflict, Report};
use crate::model::{Credential, SafeReason, Server, Workload};

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

/// Columns padded to their widest cell; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>], style: Style) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                s.push_str(&cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                s.push_str(&cell);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = style.paint("1", line(header.iter().map(|h| h.to_string()).collect()).trim_end());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn text(servers: &[Server], gateways: usize, report: &Report, style: Style) -> String {
    let mut out = String::new();
    let shared: Vec<(usize, &Conflict)> =
        report.conflicts.iter().enumerate().filter(|(_, c)| matches!(c, Conflict::SharedCredential { .. })).collect();
    let hosts: Vec<(usize, &Conflict)> =
        report.conflicts.iter().enumerate().filter(|(_, c)| !matches!(c, Conflict::SharedCredential { .. })).collect();

    out.push_str(&style.paint("1", &format!("Shared credentials: {}", plural(shared.len(), "conflict", "conflicts"))));
    out.push('\n');
    if !shared.is_empty() {
        out.push_str("(servers presenting one certificate: a connection opened for one can be reused for the other's hosts, which get 404)\n");
        let mut rows = Vec::new();
        for (n, conflict) in &shared {
            if let Conflict::SharedCredential { workload, port, credential, servers: members } = conflict {
                for &i in members {
                    let s = &servers[i];
                    rows.push(vec![
                        (n + 1).to_string(),
                        workload.to_string(),
                        port.to_string(),
                        credential.to_string(),
                        format!("{}/{}", s.namespace, s.gateway),
                        s.field.clone(),
                        s.hosts.join(","),
                    ]);
                }
            }
        }
        out.push_str(&table(&["#", "WORKLOAD", "PORT", "CREDENTIAL", "GATEWAY", "SERVER", "HOSTS"], &rows, style));
    }
    out.push('\n');

    out.push_str(
        &style.paint("1", &format!("Hosts claimed by two servers: {}", plural(hosts.len(), "conflict", "conflicts"))),
    );
    out.push('\n');
    if !hosts.is_empty() {
        let mut rows = Vec::new();
        for (n, conflict) in &hosts {
            let (what, host) = match conflict {
                Conflict::DuplicateHost { host, .. } => ("duplicate".to_owned(), host.clone()),
                Conflict::WildcardOverlap { wildcard, host, .. } => (format!("{wildcard} covers"), host.clone()),
                Conflict::SharedCredential { .. } => continue,
            };
            for i in conflict.servers() {
                let s = &servers[i];
                rows.push(vec![
                    (n + 1).to_string(),
                    conflict.workload().to_string(),
                    conflict.port().to_string(),
                    format!("{what} {host}"),
                    format!("{}/{}", s.namespace, s.gateway),
                    s.field.clone(),
                    s.hosts.join(","),
                ]);
            }
        }
        out.push_str(&table(&["#", "WORKLOAD", "PORT", "HOST", "GATEWAY", "SERVER", "HOSTS"], &rows, style));
    }
    out.push('\n');

    out.push_str(&style.paint("1", &format!("Not at risk: {}", plural(report.not_at_risk.len(), "server", "servers"))));
    out.push('\n');
    if !report.not_at_risk.is_empty() {
        let rows: Vec<Vec<String>> = report
            .not_at_risk
            .iter()
            .map(|n| {
                let s = &servers[n.server];
                vec![
                    s.workload.to_string(),
                    s.port.number.to_string(),
                    format!("{}/{}", s.namespace, s.gateway),
                    s.field.clone(),
                    s.tls_mode.map_or("none", |m| m.as_str()).to_owned(),
                    s.hosts.join(","),
                    n.reason.explain().to_owned(),
                ]
            })
            .collect();
        out.push_str(&table(&["WORKLOAD", "PORT", "GATEWAY", "SERVER", "TLS", "HOSTS", "WHY"], &rows, style));
    }
    out.push('\n');

    let summary = format!(
        "{} in {}, {}.",
        plural(servers.len(), "server", "servers"),
        plural(gateways, "Gateway", "Gateways"),
        if report.conflicts.is_empty() {
            "no conflict".to_owned()
        } else {
            plural(report.conflicts.len(), "conflict", "conflicts")
        }
    );
    if report.conflicts.is_empty() {
        out.push_str(&style.paint("32", &summary));
    } else {
        out.push_str(&style.paint("31", &summary));
        out.push_str("\nFix: `sni-guard merge` prints merged Gateways; `sni-guard config --selector ...` writes sni-guard's configuration.");
    }
    out.push('\n');
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    conflicts: Vec<JsonConflict<'a>>,
    not_at_risk: Vec<JsonSafe<'a>>,
    summary: JsonSummary,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum JsonConflict<'a> {
    SharedCredential { workload: &'a Workload, port: u32, credential: &'a Credential, servers: Vec<&'a Server> },
    DuplicateHost { workload: &'a Workload, port: u32, host: &'a str, servers: Vec<&'a Server> },
    WildcardOverlap { workload: &'a Workload, port: u32, wildcard: &'a str, host: &'a str, servers: Vec<&'a Server> },
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
    conflicts: usize,
}

pub fn json(servers: &[Server], gateways: usize, report: &Report) -> String {
    let pick = |ids: &[usize]| ids.iter().map(|&i| &servers[i]).collect::<Vec<_>>();
    let conflicts = report
        .conflicts
        .iter()
        .map(|c| match c {
            Conflict::SharedCredential { workload, port, credential, servers: ids } => {
                JsonConflict::SharedCredential { workload, port: *port, credential, servers: pick(ids) }
            }
            Conflict::DuplicateHost { workload, port, host, servers: ids } => {
                JsonConflict::DuplicateHost { workload, port: *port, host, servers: pick(ids) }
            }
            Conflict::WildcardOverlap { workload, port, wildcard, host, wildcard_server, host_server } => {
                // Wildcard server first, then the server whose host it covers.
                JsonConflict::WildcardOverlap {
                    workload,
                    port: *port,
                    wildcard,
                    host,
                    servers: pick(&[*wildcard_server, *host_server]),
                }
            }
        })
        .collect();
    let not_at_risk = report
        .not_at_risk
        .iter()
        .map(|n| JsonSafe { reason: n.reason, explanation: n.reason.explain(), server: &servers[n.server] })
        .collect();
    let doc = JsonReport {
        conflicts,
        not_at_risk,
        summary: JsonSummary { gateways, servers: servers.len(), conflicts: report.conflicts.len() },
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_colour_only_when_asked() {
        let rows = vec![vec!["1".into(), "long cell".into(), "x".into()], vec!["22".into(), "s".into(), "y".into()]];
        let plain = table(&["#", "B", "C"], &rows, Style { colour: false });
        assert_eq!(plain, "#   B          C\n1   long cell  x\n22  s          y\n");
        assert!(!plain.contains('\x1b'));
        let coloured = table(&["#", "B", "C"], &rows, Style { colour: true });
        assert!(coloured.starts_with("\x1b[1m#"));
    }
}
