//! `sni-guard config`: the filter configuration for one gateway workload, built with the
//! filter's own types and checked with its own parser before anything is printed.

use std::collections::{BTreeMap, HashSet};

use sni_guard::config::{Mode, PluginConfig, ServerConfig, Settings};
use sni_guard::server_table::HostPattern;

use crate::audit::passthrough::is_passthrough;
use crate::cluster::model::{join_labels, Api, SafeReason, Server, Workload};

/// What `config` was asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The gateway pods' labels (`--selector`).
    pub labels: BTreeMap<String, String>,
    /// The gateway workload's namespace (`--namespace`): picks Gateway API Gateways, which
    /// live beside their deployment, and is where the WasmPlugin goes.
    pub namespace: Option<String>,
    /// Only servers on this port (`--port`).
    pub port: Option<u32>,
    /// The object's name (`--name`), instead of one derived from the workload.
    pub name: Option<String>,
    /// Leave out the Istio passthrough servers otherwise listed (`--no-passthrough`).
    pub no_passthrough: bool,
    pub mode: Mode,
}

/// Why no configuration can be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFailure {
    /// Nothing on that workload to configure, or the request itself is ambiguous: exit 2.
    Unusable(String),
    /// The servers conflict in a way the filter refuses (a host in two servers): exit 1.
    Conflict(String),
}

/// The configuration and notes for the person running it (what was left out and why).
#[derive(Debug)]
pub struct Generated {
    pub config: PluginConfig,
    /// The servers that went into `config.servers`, in order.
    pub included: Vec<usize>,
    /// Those of them that are passthrough servers (`passthrough_listed`).
    pub passthrough: Vec<usize>,
    pub notes: Vec<String>,
    /// What a WasmPlugin carrying the configuration applies to.
    pub target: Target,
}

/// How a WasmPlugin picks its proxies. Istio refuses `selector` and `targetRefs` together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The gateway pods with these labels (`spec.selector.matchLabels`).
    Pods(BTreeMap<String, String>),
    /// A Gateway API Gateway (`spec.targetRefs`): Istio's way for the Gateway's own
    /// deployment. A WasmPlugin can target only a Gateway in its own namespace.
    Gateway { namespace: String, name: String },
}

pub fn generate(servers: &[Server], request: &Request) -> Result<Generated, ConfigFailure> {
    let selected: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].workload.runs_on(&request.labels, request.namespace.as_deref()))
        .collect();
    let wanted = join_labels(&request.labels);
    if selected.is_empty() {
        let mut known: Vec<String> = servers.iter().map(|s| s.workload.to_string()).collect();
        known.sort();
        known.dedup();
        return Err(ConfigFailure::Unusable(format!(
            "no Gateway selects a workload labelled {wanted}; workloads in the input: {}",
            known.join("; ")
        )));
    }
    // Gateway API Gateways of the same name in two namespaces both match the name label.
    let mut gateway_namespaces: Vec<&str> = selected
        .iter()
        .filter(|&&i| matches!(servers[i].workload, Workload::Gateway { .. }))
        .map(|&i| servers[i].namespace.as_str())
        .collect();
    gateway_namespaces.sort();
    gateway_namespaces.dedup();
    if gateway_namespaces.len() > 1 {
        return Err(ConfigFailure::Unusable(format!(
            "Gateway API Gateways in several namespaces ({}) match {wanted}; pick one with --namespace",
            gateway_namespaces.join(", ")
        )));
    }

    let mut notes = Vec::new();
    let mut included = Vec::new();
    let mut passthrough = Vec::new();
    for &i in &selected {
        let server = &servers[i];
        if request.port.is_some_and(|p| p != server.port.number) {
            continue;
        }
        match server.risk() {
            Ok(()) => included.push(i),
            Err(SafeReason::Passthrough) if server.api == Api::Istio && is_passthrough(server) => passthrough.push(i),
            Err(SafeReason::IstioMutual) => notes.push(format!(
                "left out {} ({}): ISTIO_MUTUAL; the filter still runs on its requests, so mesh clients whose SNI \
                 differs from :authority would get 421: give that workload no sni-guard, or check it in dry_run mode",
                server.label(),
                server.hosts.join(", ")
            )),
            Err(reason) => {
                notes.push(format!("left out {} ({}): {}", server.label(), server.hosts.join(", "), reason.explain()))
            }
        }
    }
    let mut listed = Vec::new();
    for i in passthrough {
        let server = &servers[i];
        let (label, hosts) = (server.label(), server.hosts.join(", "));
        match passthrough_listed(servers, &included, i) {
            Ok(()) if request.no_passthrough => {
                notes.push(format!("left out {label} ({hosts}): TLS passthrough, by --no-passthrough"))
            }
            Ok(()) => {
                notes.push(format!(
                    "listed {label} ({hosts}): TLS passthrough on port {}, beside servers that terminate TLS there: a \
                     browser carries its hosts on their connections when a certificate they present covers them \
                     (`sni-guard audit` says), to a route table that answers 404; listed, such a request gets 421 \
                     and is retried on a connection of its own, which Envoy forwards to the passthrough backend \
                     (--no-passthrough leaves it out)",
                    server.port
                ));
                listed.push(i);
            }
            Err(why) => notes.push(format!("left out {label} ({hosts}): TLS passthrough, {why}")),
        }
    }
    if included.is_empty() {
        return Err(ConfigFailure::Unusable(format!(
            "the workload labelled {wanted} has no server that terminates TLS and routes HTTP{}; nothing for sni-guard to guard",
            request.port.map_or(String::new(), |p| format!(" on port {p}"))
        )));
    }

    // Only when every selected server is the one Gateway API Gateway's; an Istio Gateway
    // among them needs the pods' labels.
    let target = match selected.iter().map(|&i| &servers[i].workload).collect::<Vec<_>>().as_slice() {
        [Workload::Gateway { namespace, name }, rest @ ..]
            if rest.iter().all(|w| matches!(w, Workload::Gateway { name: n, .. } if n == name)) =>
        {
            Target::Gateway { namespace: namespace.clone(), name: name.clone() }
        }
        _ => Target::Pods(request.labels.clone()),
    };
    included.extend(&listed);
    let config = PluginConfig {
        servers: included.iter().map(|&i| ServerConfig { hosts: servers[i].hosts.clone() }).collect(),
        mode: request.mode,
        ..PluginConfig::default()
    };
    // The filter's own validation: a configuration it would refuse is never printed.
    if let Err(e) = config.validate() {
        let labels: Vec<String> = included.iter().map(|&i| servers[i].label()).collect();
        let mut message = e.naming_servers(|n| labels.get(n).cloned());
        let mut ports: Vec<u32> = included.iter().map(|&i| servers[i].port.number).collect();
        ports.sort();
        ports.dedup();
        if ports.len() > 1 {
            message.push_str(&format!("; the servers are on ports {ports:?}: pick one with --port"));
        } else {
            message.push_str("; run `sni-guard audit` and give each host one server");
        }
        return Err(ConfigFailure::Conflict(message));
    }
    Ok(Generated { config, included, passthrough: listed, notes, target })
}

/// Whether the Istio passthrough server `candidate` is listed beside `routing`, the servers of
/// its workload that terminate TLS and route HTTP: when one of them is on its port (a
/// certificate it presents may cover the passthrough hosts: `audit::passthrough`), and it
/// lists neither `*` (it would become the filter's catch-all) nor a host of theirs (the filter
/// takes a host in one server only). Listing one no certificate covers costs nothing: no
/// browser carries its hosts elsewhere, and its own connections never reach the filter.
pub fn passthrough_listed(servers: &[Server], routing: &[usize], candidate: usize) -> Result<(), String> {
    let server = &servers[candidate];
    let port = server.port.number;
    let beside: Vec<usize> = routing.iter().copied().filter(|&r| servers[r].port.number == port).collect();
    if beside.is_empty() {
        return Err(format!(
            "and no server on port {port} terminates TLS: no connection of another server carries its hosts"
        ));
    }
    if server.patterns.iter().any(|p| matches!(p, HostPattern::Any)) {
        return Err("with host *, which would make it the catch-all server".into());
    }
    let taken: HashSet<String> = beside.iter().flat_map(|&r| &servers[r].patterns).map(|p| p.to_string()).collect();
    if let Some(host) = server.patterns.iter().map(|p| p.to_string()).find(|h| taken.contains(h)) {
        return Err(format!("with host {host}, which a server terminating TLS on port {port} lists too"));
    }
    Ok(())
}

/// The configuration as pretty JSON; re-read by `Settings::from_json`, the filter's entry
/// point, so what is printed is proven to load.
pub fn to_json(config: &PluginConfig) -> Result<String, ConfigFailure> {
    let json = crate::text::json_pretty(config)
        .map_err(|e| ConfigFailure::Unusable(format!("cannot write the configuration: {e}")))?;
    Settings::from_json(json.as_bytes())
        .map_err(|e| ConfigFailure::Unusable(format!("the written configuration does not load: {e}")))?;
    Ok(json)
}

/// The root namespace: a plugin there applies to matching workloads in every namespace.
pub const DEFAULT_PLUGIN_NAMESPACE: &str = "istio-system";

#[cfg(test)]
mod tests {
    use super::*;
    use sni_guard::verdict::check;

    const TWO: &str = "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: a}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com, b.example.com]
    tls: {mode: SIMPLE, credentialName: shared}
  - port: {number: 443, name: https-c, protocol: HTTPS}
    hosts: [c.example.com]
    tls: {mode: SIMPLE, credentialName: shared}
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [db.example.com]
    tls: {mode: PASSTHROUGH}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [a.example.com]
";

    fn servers(text: &str) -> Vec<Server> {
        crate::cluster::inventory::test_servers(text)
    }

    fn request(labels: &str) -> Request {
        Request { labels: crate::args::parse_labels(labels).unwrap(), ..Request::default() }
    }

    #[test]
    fn generates_what_the_filter_loads() {
        let generated = generate(&servers(TWO), &request("istio=ingressgateway,app=gw")).unwrap();
        // The passthrough server on 443, beside the two that terminate TLS there, is listed
        // (last); the plain HTTP one is left out.
        assert_eq!((generated.included.as_slice(), generated.passthrough.as_slice()), (&[0, 1, 2][..], &[2][..]));
        assert_eq!(generated.notes.len(), 2, "{:?}", generated.notes);
        assert!(generated.notes[1].starts_with("listed a/gw spec.servers[2] (db.example.com): TLS passthrough"));
        let json = to_json(&generated.config).unwrap();
        let settings = Settings::from_json(json.as_bytes()).unwrap();
        assert_eq!(check(&settings, Some(b"a.example.com"), Some(b"b.example.com")), Ok(()));
        assert!(check(&settings, Some(b"a.example.com"), Some(b"c.example.com")).is_err());
        // A request for the passthrough host on a terminating server's connection: misdirected.
        assert!(check(&settings, Some(b"a.example.com"), Some(b"db.example.com")).is_err());

        let without = Request { no_passthrough: true, ..request("istio=ingressgateway") };
        let generated = generate(&servers(TWO), &without).unwrap();
        assert_eq!((generated.included.as_slice(), generated.passthrough.len()), (&[0, 1][..], 0));
        assert!(
            generated.notes.iter().any(|n| n.ends_with("TLS passthrough, by --no-passthrough")),
            "{:?}",
            generated.notes
        );
    }

    #[test]
    fn passthrough_servers_listed_only_where_they_can_be() {
        let pass = |port: u32, hosts: &str| {
            format!("  - port: {{number: {port}, name: tls-{port}, protocol: TLS}}\n    hosts: [{hosts}]\n    tls: {{mode: PASSTHROUGH}}\n")
        };
        let yaml =
            TWO.to_owned() + &pass(8443, "alone.example.com") + &pass(443, "\"*\"") + &pass(443, "C.example.com");
        let s = servers(&yaml);
        let generated = generate(&s, &request("istio=ingressgateway")).unwrap();
        assert_eq!(generated.passthrough, [2]);
        let said: Vec<&str> =
            generated.notes.iter().map(String::as_str).filter(|n| n.contains("TLS passthrough,")).collect();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[0]
            .ends_with("and no server on port 8443 terminates TLS: no connection of another server carries its hosts"));
        assert!(said[1].ends_with("with host *, which would make it the catch-all server"));
        assert!(said[2].ends_with("with host c.example.com, which a server terminating TLS on port 443 lists too"));
    }

    #[test]
    fn refuses_what_it_cannot_configure() {
        assert!(
            matches!(generate(&servers(TWO), &request("istio=other")), Err(ConfigFailure::Unusable(m)) if m.contains("istio=ingressgateway"))
        );
        let dup = TWO.replace("hosts: [c.example.com]", "hosts: [c.example.com, A.example.com]");
        match generate(&servers(&dup), &request("istio=ingressgateway")) {
            Err(ConfigFailure::Conflict(m)) => assert!(m.contains("servers[0] (a/gw spec.servers[0])"), "{m}"),
            other => panic!("{other:?}"),
        }
        let only_passthrough = Request { port: Some(8443), ..request("istio=ingressgateway") };
        assert!(matches!(generate(&servers(TWO), &only_passthrough), Err(ConfigFailure::Unusable(_))));
    }
}
