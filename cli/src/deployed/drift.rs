//! `sni-guard audit --deployed FILE`: a deployed configuration against the Gateways as they are
//! now. Drift is a host of a Gateway server that no deployed server lists (the filter does not
//! guard it: a request for it on another server's connection goes on to a 404), or a deployed
//! server whose hosts are no longer one Gateway server's (hosts since merged get a needless 421,
//! hosts since split or removed are judged by an old grouping).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use sni_guard::server_table::HostPattern;

use crate::cluster::model::Server;
use crate::deployed::read::{examine, Applies, Deployed};
use crate::text::wrap;

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
pub fn compare(deployed: &Deployed, servers: &[Server], applies: &Applies) -> Result<Comparison, String> {
    let examined = examine(deployed);
    if !examined.accepted() {
        return Err(format!("{deployed}: refused: {} (`sni-guard check` reports it)", examined.problems.join("; ")));
    }
    let current: Vec<&Server> = servers
        .iter()
        .filter(|s| s.workload.runs_on(&applies.labels, applies.namespace.as_deref()) && s.risk().is_ok())
        .collect();
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
    for server in &current {
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
        gateway_servers: current.len(),
        deployed_servers: deployed_servers.len(),
        drift: !unguarded.is_empty() || !stale.is_empty(),
        unguarded,
        stale,
    })
}

/// The comparisons as text within 100 columns.
pub fn text(comparisons: &[Comparison]) -> String {
    let mut out = String::new();
    for c in comparisons {
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
    let drifted = comparisons.iter().filter(|c| c.drift).count();
    out.push_str(&format!(
        "{} deployed {} compared with the Gateways: {}.\n",
        comparisons.len(),
        if comparisons.len() == 1 { "configuration" } else { "configurations" },
        match drifted {
            0 => "no drift".to_owned(),
            n => format!("drift in {n}"),
        }
    ));
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    deployed: &'a [Comparison],
    drifted: usize,
}

pub fn json(comparisons: &[Comparison]) -> String {
    let doc = JsonReport { deployed: comparisons, drifted: comparisons.iter().filter(|c| c.drift).count() };
    serde_json::to_string_pretty(&doc).expect("the report serialises") + "\n"
}
