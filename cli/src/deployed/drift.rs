//! `sni-guard audit --deployed FILE`: a deployed configuration against the Gateways as they are
//! now. Drift is a host of a Gateway server that no deployed server lists (the filter does not
//! guard it: a request for it on another server's connection goes on to a 404), or a deployed
//! server whose hosts are no longer one Gateway server's (hosts since merged get a needless 421,
//! hosts since split or removed are judged by an old grouping).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use sni_guard::server_table::HostPattern;

use crate::audit::advice::Advisor;
use crate::audit::conflicts::{Reason, Report};
use crate::audit::passthrough::is_passthrough;
use crate::cluster::model::{Api, Server, Workload};
use crate::deployed::read::{examine, given_twice, twice_message, Applies, Deployed, Reading};
use crate::generate::plugin::passthrough_listed;
use crate::text::wrap;
use crate::tls::credentials::ServerCertificates;

/// A Gateway server's host that no deployed server lists.
#[derive(Debug, Serialize)]
pub struct Unguarded {
    pub host: String,
    pub server: String,
}

/// A deployed server that is no Gateway server now.
#[derive(Debug, Serialize)]
pub struct Stale {
    /// Its index in the deployed `servers`.
    pub index: usize,
    pub hosts: Vec<String>,
    /// Where its hosts are now: each Gateway server holding one of them, with all its hosts,
    /// and (server `None`) those no Gateway server holds.
    pub now: Vec<Now>,
}

#[derive(Debug, Serialize)]
pub struct Now {
    pub server: Option<String>,
    pub hosts: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub deployed: String,
    pub applies_to: String,
    pub gateway_servers: usize,
    pub deployed_servers: usize,
    pub drift: bool,
    pub unguarded: Vec<Unguarded>,
    pub stale: Vec<Stale>,
}

/// A host as the filter keys it (case folded, namespace dropped, wildcard kept), so that
/// `team-a/A.example.com` and `a.example.com` are one host.
fn key(host: &str) -> String {
    HostPattern::parse(host).map(|p| p.to_string()).unwrap_or_else(|_| host.to_ascii_lowercase())
}

/// Compares one deployed configuration (accepted by the filter) with the Gateway servers of the
/// workload it applies to. Err: the configuration is refused, or nothing says which workload.
/// `at_risk`: the passthrough servers a known certificate on their port covers
/// (`audit::passthrough`): unguarded when not deployed. Other passthrough servers `config` lists
/// are optional.
pub fn compare(
    deployed: &Deployed,
    servers: &[Server],
    applies: &Applies,
    at_risk: &BTreeSet<usize>,
) -> Result<Comparison, String> {
    let examined = examine(deployed);
    // The servers are compared whatever the module's digest (`check` reports a placeholder).
    if !examined.configuration_accepted() {
        return Err(format!("{deployed}: refused: {} (`sni-guard check` reports it)", examined.problems.join("; ")));
    }
    let on_workload: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].workload.runs_on(&applies.labels, applies.namespace.as_deref()))
        .collect();
    let routing: Vec<usize> = on_workload.iter().copied().filter(|&i| servers[i].risk().is_ok()).collect();
    // Passthrough servers `config` lists beside them: those a certificate is known to cover must
    // be deployed; for the others, a deployed server is no drift, and none is no drift either
    // (--no-passthrough).
    let (covered, optional): (Vec<usize>, Vec<usize>) = on_workload
        .iter()
        .copied()
        .filter(|&i| {
            servers[i].api == Api::Istio
                && is_passthrough(&servers[i])
                && passthrough_listed(servers, &routing, i).is_ok()
        })
        .partition(|i| at_risk.contains(i));
    let required = routing.len() + covered.len();
    let current: Vec<&Server> = routing.iter().chain(&covered).chain(&optional).map(|&i| &servers[i]).collect();
    let deployed_servers = crate::deployed::read::servers(deployed);
    let mut deployed_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, hosts) in deployed_servers.iter().enumerate() {
        for host in hosts {
            deployed_of.insert(key(host), i);
        }
    }
    let mut current_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, server) in current.iter().enumerate() {
        for host in &server.hosts {
            current_of.insert(key(host), i);
        }
    }
    let mut unguarded = Vec::new();
    for server in &current[..required] {
        for host in &server.hosts {
            if !deployed_of.contains_key(&key(host)) {
                unguarded.push(Unguarded { host: host.clone(), server: server.label() });
            }
        }
    }
    let keys = |hosts: &[String]| {
        let mut keys: Vec<String> = hosts.iter().map(|h| key(h)).collect();
        keys.sort();
        keys.dedup();
        keys
    };
    // Each Gateway server's hosts as one key set, looked up once per deployed server.
    let groupings: HashSet<Vec<String>> = current.iter().map(|s| keys(&s.hosts)).collect();
    let mut stale = Vec::new();
    for (index, hosts) in deployed_servers.iter().enumerate() {
        if !groupings.contains(&keys(hosts)) {
            let mut holders: Vec<usize> = hosts.iter().filter_map(|h| current_of.get(&key(h)).copied()).collect();
            holders.dedup();
            let mut now: Vec<Now> = Vec::new();
            for i in holders {
                if !now.iter().any(|n| n.server.as_deref() == Some(&current[i].label())) {
                    now.push(Now { server: Some(current[i].label()), hosts: current[i].hosts.clone() });
                }
            }
            let orphans: Vec<String> = hosts.iter().filter(|h| !current_of.contains_key(&key(h))).cloned().collect();
            if !orphans.is_empty() {
                now.push(Now { server: None, hosts: orphans });
            }
            stale.push(Stale { index, hosts: hosts.clone(), now });
        }
    }
    Ok(Comparison {
        deployed: deployed.to_string(),
        applies_to: applies.describe.clone(),
        gateway_servers: required,
        deployed_servers: deployed_servers.len(),
        drift: !unguarded.is_empty() || !stale.is_empty(),
        unguarded,
        stale,
    })
}

/// Two deployed objects with one identity.
#[derive(Debug, Serialize)]
pub struct GivenTwice {
    pub object: String,
    pub first: String,
    pub other: String,
    pub message: String,
}

pub fn twice(reading: &Reading) -> Vec<GivenTwice> {
    given_twice(reading)
        .into_iter()
        .map(|(first, other)| GivenTwice {
            object: first.identity(),
            first: first.at.clone(),
            other: other.at.clone(),
            message: twice_message(first, other),
        })
        .collect()
}

/// Servers at risk together on a gateway workload that no deployed configuration applies to.
#[derive(Debug, Serialize)]
pub struct Unprotected {
    /// `istio=internal-gateway`, `gateway edge/edge`.
    pub workload: String,
    pub port: u32,
    /// The conflict's reason, or `None` for a passthrough server at risk.
    pub reason: Option<Reason>,
    /// Every server of the conflict, or the passthrough server.
    pub servers: Vec<String>,
    /// The `sni-guard config` command for the workload.
    pub config_command: String,
}

/// Each conflict of `report`, and each passthrough server at risk, on a workload none of
/// `applied` applies to: a gateway the deployed configurations leave without sni-guard,
/// although its servers can get a 404.
pub fn unprotected(
    servers: &[Server],
    certificates: &[ServerCertificates],
    report: &Report,
    applied: &[Applies],
) -> Vec<Unprotected> {
    let advisor = Advisor::new(servers, certificates);
    let bare = |workload: &Workload| !applied.iter().any(|a| workload.runs_on(&a.labels, a.namespace.as_deref()));
    let conflicts = report.conflicts.iter().filter(|c| bare(&c.workload)).map(|c| Unprotected {
        workload: c.workload.to_string(),
        port: c.port,
        reason: Some(c.reason),
        servers: c.servers.iter().map(|&i| servers[i].label()).collect(),
        config_command: advisor.advise(c).config_command,
    });
    // A Gateway API passthrough listener is not listed by `config`: no plugin would guard it.
    let passthrough =
        report.passthrough.iter().map(|p| &servers[p.server]).filter(|s| s.api == Api::Istio && bare(&s.workload)).map(
            |s| Unprotected {
                workload: s.workload.to_string(),
                port: s.port.number,
                reason: None,
                servers: vec![format!("{} ({})", s.label(), s.hosts.join(", "))],
                config_command: advisor.config_command(&s.workload, s.port.number),
            },
        );
    conflicts.chain(passthrough).collect()
}

/// What `audit --deployed` found.
#[derive(Debug, Serialize)]
pub struct Findings {
    /// Each deployed configuration against the Gateways of its workload.
    pub deployed: Vec<Comparison>,
    /// Deployed objects given twice.
    pub given_twice: Vec<GivenTwice>,
    /// Conflicts on workloads without a deployed configuration.
    pub unprotected: Vec<Unprotected>,
}

impl Findings {
    /// Drift, an object given twice, or a conflict left without sni-guard: exit 1.
    pub fn found(&self) -> bool {
        self.deployed.iter().any(|c| c.drift) || !self.given_twice.is_empty() || !self.unprotected.is_empty()
    }
}

/// At most this many servers of a conflict are named in a line, then how many more.
const SERVERS_NAMED: usize = 10;

/// The findings as text within 100 columns.
pub fn text(findings: &Findings) -> String {
    let mut out = String::new();
    for twice in &findings.given_twice {
        out.push_str(&wrap("", "  ", &format!("Given twice: {}", twice.message)));
    }
    for c in &findings.deployed {
        if !c.drift {
            out.push_str(&wrap(
                "",
                "  ",
                &format!(
                    "No drift: {} ({}): its {} servers are the Gateways' {}.",
                    c.deployed, c.applies_to, c.deployed_servers, c.gateway_servers
                ),
            ));
            continue;
        }
        out.push_str(&wrap("", "  ", &format!("Drift: {} ({}):", c.deployed, c.applies_to)));
        for u in &c.unguarded {
            out.push_str(&wrap(
                "  ",
                "    ",
                &format!(
                    "{} ({}) is in no deployed server: a request for it on another server's connection is not \
                     answered 421",
                    u.host, u.server
                ),
            ));
        }
        for s in &c.stale {
            let now: Vec<String> = s
                .now
                .iter()
                .map(|now| match &now.server {
                    Some(server) => format!("{server} has {}", now.hosts.join(", ")),
                    None => format!("no Gateway server has {}", now.hosts.join(", ")),
                })
                .collect();
            out.push_str(&wrap(
                "  ",
                "    ",
                &format!(
                    "deployed servers[{}] ({}) is no Gateway server now: {}",
                    s.index,
                    s.hosts.join(", "),
                    now.join("; ")
                ),
            ));
        }
        out.push_str(&wrap(
            "  Fix: ",
            "    ",
            "write the configuration again from the Gateways (`sni-guard config`, with the --kind, --selector and \
             --image it was written with) and apply it.",
        ));
    }
    for u in &findings.unprotected {
        let mut named: Vec<String> = u.servers.iter().take(SERVERS_NAMED).cloned().collect();
        if u.servers.len() > named.len() {
            named.push(format!("and {} more", u.servers.len() - named.len()));
        }
        let what = match u.reason {
            Some(reason) => {
                format!("{} servers at risk together ({}: {})", u.servers.len(), reason.as_str(), named.join(", "))
            }
            None => {
                format!("passthrough server {} at risk (a certificate on the port covers its hosts)", named.join(", "))
            }
        };
        out.push_str(&wrap(
            "",
            "  ",
            &format!(
                "Not protected: {} port {}: {what}, and no deployed sni-guard configuration applies to these \
                 gateway pods.",
                u.workload, u.port
            ),
        ));
        out.push_str(&wrap(
            "  Fix: ",
            "    ",
            &format!(
                "deploy sni-guard for them (`{}`), or remove the risk (`sni-guard audit` says how).",
                u.config_command
            ),
        ));
    }
    let compared = findings.deployed.len();
    let drifted = findings.deployed.iter().filter(|c| c.drift).count();
    let mut summary = format!(
        "{compared} deployed {} compared with the Gateways: {}",
        if compared == 1 { "configuration" } else { "configurations" },
        match drifted {
            0 => "no drift".to_owned(),
            n => format!("drift in {n}"),
        }
    );
    match findings.unprotected.len() {
        0 => {}
        1 => summary.push_str("; 1 risk on a gateway without sni-guard"),
        n => summary.push_str(&format!("; {n} risks on gateways without sni-guard")),
    }
    match findings.given_twice.len() {
        0 => {}
        1 => summary.push_str("; 1 object given twice"),
        n => summary.push_str(&format!("; {n} objects given twice")),
    }
    out.push_str(&wrap("", "  ", &format!("{summary}.")));
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    findings: &'a Findings,
    drifted: usize,
}

pub fn json(findings: &Findings) -> String {
    let doc = JsonReport { findings, drifted: findings.deployed.iter().filter(|c| c.drift).count() };
    // Serialising into memory cannot fail; an error would show as such rather than panic.
    crate::text::json_pretty(&doc)
        .unwrap_or_else(|e| format!("{{\"error\": {}}}", crate::text::json_string(&e.to_string())))
        + "\n"
}
