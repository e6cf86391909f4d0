//! `sni-guard config`: the filter configuration for one gateway workload, built with the
//! filter's own types and checked with its own parser before anything is printed.

use std::collections::BTreeMap;

use sni_guard::config::{Mode, PluginConfig, ServerConfig, Settings};

use crate::cluster::model::{join_labels, SafeReason, Server, Workload};

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
    for &i in &selected {
        let server = &servers[i];
        if request.port.is_some_and(|p| p != server.port.number) {
            continue;
        }
        match server.risk() {
            Ok(()) => included.push(i),
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
    Ok(Generated { config, included, notes, target })
}

/// The configuration as pretty JSON; re-read by `Settings::from_json`, the filter's entry
/// point, so what is printed is proven to load.
pub fn to_json(config: &PluginConfig) -> Result<String, ConfigFailure> {
    let json = serde_json::to_string_pretty(config)
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
        assert_eq!(generated.included, [0, 1]);
        assert_eq!(generated.notes.len(), 2, "{:?}", generated.notes);
        let json = to_json(&generated.config).unwrap();
        let settings = Settings::from_json(json.as_bytes()).unwrap();
        assert_eq!(check(&settings, Some(b"a.example.com"), Some(b"b.example.com")), Ok(()));
        assert!(check(&settings, Some(b"a.example.com"), Some(b"c.example.com")).is_err());
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
