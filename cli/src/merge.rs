//! `sni-guard merge`: the fix usually recommended instead of (or before) sni-guard: servers
//! that share a certificate become one server with all their hosts, so one filter chain and
//! one route table serve every host a client may coalesce onto the connection.

use serde_json::{json, Map, Value};

use crate::audit::{Conflict, Report};
use crate::model::{Api, Credential, Server, Workload};

/// YAML documents, each preceded by `#` comments saying what it replaces and what else to
/// change; conflicts that a merge does not fix get comments only.
pub fn advice(servers: &[Server], report: &Report) -> String {
    let mut out = String::new();
    if report.conflicts.is_empty() {
        out.push_str("# No conflicts: nothing to merge.\n");
        return out;
    }
    for (n, conflict) in report.conflicts.iter().enumerate() {
        let number = n + 1;
        match conflict {
            Conflict::SharedCredential { workload, port, credential, servers: members } => {
                let members: Vec<&Server> = members.iter().map(|&i| &servers[i]).collect();
                out.push_str(&format!("# Conflict {number}: {credential} shared on {workload}, port {port}.\n"));
                out.push_str(&format!("# Replaces: {}.\n", describe(&members)));
                let document = match members[0].api {
                    Api::Istio => istio_gateway(&members, *port, &credential_slug(credential), &mut out),
                    Api::GatewayApi => gateway_api_gateway(&members, &mut out),
                };
                // Serialising a `Value` cannot fail; an empty document is the harmless fallback.
                out.push_str(&serde_yaml_ng::to_string(&document).unwrap_or_default());
                out.push_str("---\n");
            }
            Conflict::DuplicateHost { workload, port, host, servers: members } => {
                let members: Vec<&Server> = members.iter().map(|&i| &servers[i]).collect();
                out.push_str(&format!(
                    "# Conflict {number}: host {host} is listed by {} servers on {workload}, port {port}: {}.\n\
                     # No merge printed: keep the host in one server only (or merge these servers, if one\n\
                     # certificate is valid for all their hosts).\n---\n",
                    members.len(),
                    describe(&members)
                ));
            }
            Conflict::WildcardOverlap { workload, port, wildcard, host, wildcard_server, host_server } => {
                out.push_str(&format!(
                    "# Conflict {number}: {wildcard} in {} covers {host} in {} (on {workload}, port {port}).\n\
                     # No merge printed: a certificate for {wildcard} is valid for {host}, so clients may reuse\n\
                     # the wildcard server's connections for it. Serve {host} from the wildcard server, or\n\
                     # deploy sni-guard (`sni-guard config`) to answer 421 instead of 404.\n---\n",
                    servers[*wildcard_server].label(),
                    servers[*host_server].label()
                ));
            }
        }
    }
    out
}

fn describe(members: &[&Server]) -> String {
    members.iter().map(|s| format!("{} ({})", s.label(), s.hosts.join(", "))).collect::<Vec<_>>().join(", ")
}

/// A DNS-1123 label naming a credential, for the merged Gateway's name: the Secret's name,
/// or the certificate file's name without directories and extension.
fn credential_slug(credential: &Credential) -> String {
    let name = match credential {
        Credential::CredentialName(name) | Credential::CertificateRef { name, .. } => name.as_str(),
        Credential::Files { server_certificate, .. } => {
            let file = server_certificate.rsplit('/').next().unwrap_or(server_certificate);
            file.split('.').next().unwrap_or(file)
        }
    };
    let mut slug = String::new();
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' };
        if !(c == '-' && (slug.is_empty() || slug.ends_with('-'))) {
            slug.push(c);
        }
    }
    slug.truncate(40);
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "shared".to_owned()
    } else {
        slug.to_owned()
    }
}

/// Hosts of all members, each once, in order.
fn all_hosts(members: &[&Server]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for host in members.iter().flat_map(|s| &s.hosts) {
        if !hosts.contains(host) {
            hosts.push(host.clone());
        }
    }
    hosts
}

/// One new Istio Gateway with one server: every member's hosts and the first member's port
/// and `tls` block (they share the credential already).
fn istio_gateway(members: &[&Server], port: u32, slug: &str, out: &mut String) -> Value {
    let first = members[0];
    let name = format!("merged-{slug}-{port}");
    out.push_str(&format!(
        "# Then: in the VirtualServices bound to the replaced Gateways, use {}/{name} in spec.gateways,\n\
         # and delete the replaced servers (a host in two servers on one port is a conflict).\n",
        first.namespace
    ));
    if members.iter().any(|s| s.tls != first.tls) {
        let modes: Vec<&str> = members.iter().map(|s| s.tls_mode.map_or("none", |m| m.as_str())).collect();
        out.push_str(&format!(
            "# The servers' tls settings differ (modes {}); this keeps those of {}: review before applying.\n",
            modes.join(", "),
            first.label()
        ));
    }
    let selector = match &first.workload {
        Workload::Selector(labels) => json!(labels),
        Workload::Gateway { .. } => json!({}),
    };
    let mut port_value = Map::new();
    port_value.insert("number".into(), json!(port));
    port_value.insert("name".into(), json!(first.port.name.clone().unwrap_or_else(|| "https".to_owned())));
    port_value.insert("protocol".into(), json!(first.port.protocol));
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": first.namespace},
        "spec": {
            "selector": selector,
            "servers": [{"port": port_value, "hosts": all_hosts(members), "tls": first.tls.clone().unwrap_or(Value::Null)}],
        },
    })
}

/// Gateway API listeners carry one `hostname` each, so "one server, all the hosts" is one
/// listener whose hostname is a wildcard covering them all (or none, covering everything);
/// HTTPRoutes keep their own `hostnames` and attach to it.
fn gateway_api_gateway(members: &[&Server], out: &mut String) -> Value {
    let first = members[0];
    let hosts = all_hosts(members);
    let hostname = common_wildcard(&hosts);
    out.push_str(&format!(
        "# In Gateway {}/{}, replace these listeners with the one below and keep the others;\n\
         # HTTPRoutes keep their hostnames and attach to it (spec.parentRefs[].sectionName: merged).\n",
        first.namespace, first.gateway
    ));
    match &hostname {
        Some(h) => out.push_str(&format!(
            "# {h} covers {}; make sure no other listener needs the names it takes.\n",
            hosts.join(", ")
        )),
        None => out.push_str(&format!(
            "# No wildcard covers {}: the merged listener has no hostname (every host).\n",
            hosts.join(", ")
        )),
    }
    let mut listener = Map::new();
    listener.insert("name".into(), json!("merged"));
    if let Some(h) = hostname {
        listener.insert("hostname".into(), json!(h));
    }
    listener.insert("port".into(), json!(first.port.number));
    listener.insert("protocol".into(), json!(first.port.protocol));
    listener.insert("tls".into(), first.tls.clone().unwrap_or(Value::Null));
    if let Some(routes) = &first.allowed_routes {
        listener.insert("allowedRoutes".into(), routes.clone());
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": first.gateway, "namespace": first.namespace},
        "spec": {"listeners": [Value::Object(listener)]},
    })
}

/// The narrowest `*.suffix` covering every host (at least two labels in the suffix, never
/// `*.com`), or `None`.
fn common_wildcard(hosts: &[String]) -> Option<String> {
    let names: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let h = h.rsplit_once('/').map_or(h.as_str(), |(_, name)| name);
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            h.split('.').rev().map(str::to_owned).collect()
        })
        .collect();
    let first = names.first()?;
    let mut common = 0;
    // A host's last label cannot be in the suffix: `*.example.com` does not cover
    // `example.com`, and a wildcard host `*.x` has `*` as its last (reversed) label.
    while names.iter().all(|n| common + 1 < n.len() && n[common] == first[common] && n[common] != "*") {
        common += 1;
    }
    (common >= 2).then(|| {
        let suffix: Vec<&str> = first[..common].iter().rev().map(String::as_str).collect();
        format!("*.{}", suffix.join("."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::audit;

    fn servers(text: &str) -> Vec<Server> {
        crate::input::test_servers(text)
    }

    #[test]
    fn slugs_are_dns_labels() {
        assert_eq!(credential_slug(&Credential::CredentialName("Wild_Cert..x".into())), "wild-cert-x");
        let files = Credential::Files { server_certificate: "/etc/certs/org.pem".into(), private_key: "/k".into() };
        assert_eq!(credential_slug(&files), "org");
        assert_eq!(credential_slug(&Credential::CredentialName("--".into())), "shared");
    }

    #[test]
    fn common_wildcards() {
        let w = |hosts: &[&str]| common_wildcard(&hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>());
        assert_eq!(w(&["a.example.com", "b.example.com"]).as_deref(), Some("*.example.com"));
        assert_eq!(w(&["x.a.example.com", "ns/y.a.example.com"]).as_deref(), Some("*.a.example.com"));
        assert_eq!(w(&["a.example.com", "*.b.example.com"]).as_deref(), Some("*.example.com"));
        assert_eq!(w(&["a.example.com", "example.com"]), None);
        assert_eq!(w(&["a.example.com", "b.example.org"]), None);
        assert_eq!(w(&["*.example.com", "*.example.com"]).as_deref(), Some("*.example.com"));
    }

    #[test]
    fn merges_two_istio_gateways() {
        let gw = |ns: &str, host: &str| {
            format!(
                "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: {ns}}}\nspec:\n  \
                 selector: {{istio: ingressgateway}}\n  servers:\n  - port: {{number: 443, name: https, protocol: HTTPS}}\n    \
                 hosts: [{host}]\n    tls: {{mode: SIMPLE, credentialName: Wild_Cert}}\n---\n"
            )
        };
        let s = servers(&(gw("a", "a.example.com") + &gw("b", "b.example.com")));
        let text = advice(&s, &audit(&s));
        assert!(
            text.contains("# Replaces: a/gw spec.servers[0] (a.example.com), b/gw spec.servers[0] (b.example.com)."),
            "{text}"
        );
        let doc: Value = serde_yaml_ng::from_str(text.split("---\n").next().unwrap()).unwrap();
        assert_eq!(doc["metadata"]["name"], "merged-wild-cert-443");
        assert_eq!(doc["spec"]["servers"][0]["hosts"], json!(["a.example.com", "b.example.com"]));
        assert_eq!(doc["spec"]["servers"][0]["tls"]["credentialName"], "Wild_Cert");
        assert_eq!(doc["spec"]["selector"]["istio"], "ingressgateway");
    }
}
