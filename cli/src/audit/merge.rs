//! `sni-guard merge`: the fix usually recommended instead of (or before) sni-guard. The servers
//! of a conflict become one server with all their hosts and one certificate valid for every
//! one of them, so one filter chain and one route table serve every host a browser may
//! coalesce onto the connection.
//!
//! Istio: a new Gateway with that one server (the replaced servers are then deleted from their
//! Gateways). Gateway API: the whole Gateway again, the conflict's listeners replaced by one,
//! everything else (gatewayClassName, other listeners, addresses) as it was: ready to apply.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::{json, Map, Value};

use crate::audit::advice::{Advice, Advisor};
use crate::audit::conflicts::{Conflict, Report};
use crate::cluster::model::{covers, Credential, Server, Workload};
use crate::text::{first_of, Shown, NAMES_SHOWN};
use crate::tls::credentials::ServerCertificates;
use crate::yaml;

/// A conflict with its number in the report and its advice.
type Numbered<'a> = (usize, &'a Conflict, Advice);

/// One part of what `merge` prints: comments (sentences), then the document they explain, if
/// any; each part ends with `---`.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub comments: Vec<String>,
    pub document: Option<Value>,
}

/// YAML documents, each preceded by `#` comments saying what it replaces and what else to
/// change; a conflict no merge can fix gets comments only.
pub fn advice(
    servers: &[Server],
    certificates: &[ServerCertificates],
    gateway_api_objects: &BTreeMap<(String, String), Value>,
    report: &Report,
) -> Result<String, String> {
    if report.conflicts.is_empty() {
        return Ok(yaml::comment("No conflicts: nothing to merge."));
    }
    render(&sections(servers, certificates, gateway_api_objects, report))
}

/// The sections, in order: Istio conflicts one each, then each Gateway API Gateway with
/// conflicts, merged.
pub fn sections(
    servers: &[Server],
    certificates: &[ServerCertificates],
    gateway_api_objects: &BTreeMap<(String, String), Value>,
    report: &Report,
) -> Vec<Section> {
    let mut out = Vec::new();
    // Gateway API conflicts of one Gateway become one document: the Gateway, merged.
    let mut per_gateway: BTreeMap<(String, String), Vec<Numbered>> = BTreeMap::new();
    let advisor = Advisor::new(servers, certificates);
    for (n, conflict) in report.conflicts.iter().enumerate() {
        let advice = advisor.advise(conflict);
        match &conflict.workload {
            Workload::Gateway { namespace, name } => {
                per_gateway.entry((namespace.clone(), name.clone())).or_default().push((n, conflict, advice));
            }
            Workload::Selector(_) => out.push(istio(servers, certificates, n, conflict, &advice)),
        }
    }
    // Each Gateway API Gateway's listeners (at most 64 each), found once.
    let mut listeners_of: BTreeMap<&Workload, Vec<usize>> = BTreeMap::new();
    for (i, server) in servers.iter().enumerate() {
        if matches!(server.workload, Workload::Gateway { .. }) {
            listeners_of.entry(&server.workload).or_default().push(i);
        }
    }
    for ((namespace, name), conflicts) in per_gateway {
        let workload = Workload::Gateway { namespace: namespace.clone(), name: name.clone() };
        let listeners = listeners_of.get(&workload).map_or(&[][..], Vec::as_slice);
        let object = gateway_api_objects.get(&(namespace, name));
        out.push(gateway_api(servers, certificates, object, listeners, &conflicts));
    }
    out
}

/// The sections as YAML: comments wrapped and escaped, documents written by `yaml`, each
/// section ended by `---`.
pub fn render(sections: &[Section]) -> Result<String, String> {
    let mut out = String::new();
    for section in sections {
        for sentence in &section.comments {
            out.push_str(&yaml::comment(sentence));
        }
        if let Some(document) = &section.document {
            out.push_str(&yaml::document(document, &[])?);
        }
        out.push_str("---\n");
    }
    Ok(out)
}

fn heading(n: usize, conflict: &Conflict) -> String {
    format!("Conflict {}: {}, {} port {}.", n + 1, conflict.reason.as_str(), conflict.workload, conflict.port)
}

fn hosts_of(server: &Server) -> String {
    server.hosts.iter().map(|h| Shown(h).to_string()).collect::<Vec<_>>().join(", ")
}

fn describe(servers: &[Server], members: &[usize]) -> String {
    members
        .iter()
        .map(|&i| format!("{} ({})", servers[i].label(), hosts_of(&servers[i])))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a server presents, in words: `*.acme.test (Secret istio-system/wildcard-acme)`; a
/// certificate's names as the report lists them (said once per member of a conflict, so a
/// certificate of 2,000 names must not be 2,000 names each time).
fn presents(certificates: &ServerCertificates) -> String {
    let what: Vec<String> = certificates
        .presented
        .iter()
        .map(|p| format!("{} ({})", first_of(&p.certificate.names, NAMES_SHOWN, "names"), p.source))
        .collect();
    what.join("; ")
}

/// The server whose `tls` the merged server takes, and what its certificate is.
fn certificate_of(
    servers: &[Server],
    certificates: &[ServerCertificates],
    members: &[usize],
    advice: &Advice,
) -> Option<(usize, String)> {
    if let Some(k) = advice.merge_onto {
        return Some((k, format!("the certificate of {}: {}", servers[k].label(), presents(&certificates[k]))));
    }
    let credential = advice.shared_credential.as_ref()?;
    // Every server of the conflict names it; the first one's tls is kept.
    let k = *members.first()?;
    Some((k, format!("{credential}, which they all use")))
}

/// For each member that presents another certificate today than the merged server will (that of
/// `k`): a sentence saying so, since its hosts move off that certificate.
fn certificate_changes(
    servers: &[Server],
    certificates: &[ServerCertificates],
    members: &[usize],
    k: usize,
) -> Vec<String> {
    let fingerprints = |i: usize| {
        let mut all: Vec<&str> = certificates[i].presented.iter().map(|p| p.certificate.sha256.as_str()).collect();
        all.sort();
        all
    };
    let merged = fingerprints(k);
    let mut out = Vec::new();
    for &m in members.iter().filter(|&&m| m != k) {
        if servers[m].credentials == servers[k].credentials
            || (certificates[m].known() && certificates[k].known() && fingerprints(m) == merged)
        {
            continue;
        }
        let today = if certificates[m].known() {
            format!("presents {} today", presents(&certificates[m]))
        } else if certificates[m].presented.is_empty() {
            let unknown: Vec<&str> = certificates[m].unknown.iter().map(|u| u.looked_for.as_str()).collect();
            format!("presents a certificate not in the input today ({})", unknown.join("; "))
        } else {
            format!("presents {} today, and a certificate not in the input", presents(&certificates[m]))
        };
        out.push(format!(
            "Certificate change: {} ({}) {today}; merged, it presents the certificate of {} instead. Check that this \
             is meant (a dedicated certificate, its own key or issuer, may have been chosen on purpose).",
            servers[m].label(),
            hosts_of(&servers[m]),
            servers[k].label()
        ));
    }
    out
}

fn no_merge(servers: &[Server], conflict: &Conflict, advice: &Advice) -> String {
    let hosts: Vec<String> =
        conflict.servers.iter().flat_map(|&i| &servers[i].hosts).map(|h| Shown(h).to_string()).collect();
    format!(
        "No merge printed for {}: no certificate {} valid for all of {}. With one that is, merge them into \
         one server; meanwhile, deploy sni-guard: `{}`.",
        describe(servers, &conflict.servers),
        if advice.certificates_unknown { "in the input is known to be" } else { "here is" },
        hosts.join(", "),
        advice.config_command
    )
}

/// Hosts of all members, each once, in order.
fn all_hosts(servers: &[Server], members: &[usize]) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    members.iter().flat_map(|&i| &servers[i].hosts).filter(|h| seen.insert(h.as_str())).cloned().collect()
}

/// One new Istio Gateway with one server: every member's hosts, the port and `tls` of the
/// member whose certificate is valid for all of them.
fn istio(
    servers: &[Server],
    certificates: &[ServerCertificates],
    n: usize,
    conflict: &Conflict,
    advice: &Advice,
) -> Section {
    let mut comments = vec![heading(n, conflict)];
    let Some((k, certificate)) = certificate_of(servers, certificates, &conflict.servers, advice) else {
        comments.push(no_merge(servers, conflict, advice));
        return Section { comments, document: None };
    };
    let base = &servers[k];
    let name = format!("merged-{}-{}", slug(&base.credentials), conflict.port);
    comments.push(format!("Replaces: {}.", describe(servers, &conflict.servers)));
    comments.push(format!("One server for all their hosts, with {certificate}."));
    comments.extend(certificate_changes(servers, certificates, &conflict.servers, k));
    comments.push(format!(
        "Then: delete the replaced servers from their Gateways (a host in two servers on one port is a \
         conflict again), and in the VirtualServices bound to those Gateways use {}/{name} in spec.gateways.",
        Shown(&base.namespace)
    ));
    if conflict.servers.iter().any(|&i| tls_settings(&servers[i].tls) != tls_settings(&base.tls)) {
        let modes: Vec<&str> =
            conflict.servers.iter().map(|&i| servers[i].tls_mode.map_or("none", |m| m.as_str())).collect();
        comments.push(format!(
            "The servers' tls settings differ (modes {}); this keeps those of {}: review before applying.",
            modes.join(", "),
            base.label()
        ));
    }
    let selector = match &base.workload {
        Workload::Selector(labels) => json!(labels),
        Workload::Gateway { .. } => json!({}),
    };
    let mut port = Map::new();
    port.insert("number".into(), json!(conflict.port));
    port.insert("name".into(), json!(base.port.name.clone().unwrap_or_else(|| "https".to_owned())));
    port.insert("protocol".into(), json!(base.port.protocol));
    let document = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": base.namespace},
        "spec": {
            "selector": selector,
            "servers": [{"port": port, "hosts": all_hosts(servers, &conflict.servers), "tls": base.tls.clone().unwrap_or(Value::Null)}],
        },
    });
    Section { comments, document: Some(document) }
}

/// A `tls` block without its credential: the settings that merging must not lose silently.
fn tls_settings(tls: &Option<Value>) -> Option<Value> {
    let mut tls = tls.clone()?;
    if let Value::Object(fields) = &mut tls {
        for key in ["credentialName", "credentialNames", "serverCertificate", "privateKey", "tlsCertificates"] {
            fields.remove(key);
        }
    }
    Some(tls)
}

/// A DNS-1123 label naming a credential, for the merged Gateway's name: the Secret's name,
/// or the certificate file's name without directories and extension.
fn slug(credentials: &[Credential]) -> String {
    let name = match credentials.first() {
        Some(Credential::CredentialName(name) | Credential::CertificateRef { name, .. }) => name.as_str(),
        Some(Credential::Files { server_certificate, .. }) => {
            let file = server_certificate.rsplit('/').next().unwrap_or(server_certificate);
            file.split('.').next().unwrap_or(file)
        }
        None => "",
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

/// The listener index in `spec.listeners[N]`.
fn listener_index(server: &Server) -> Option<usize> {
    server.field.strip_prefix("spec.listeners[")?.strip_suffix(']')?.parse().ok()
}

/// The Gateway as written, each mergeable conflict's listeners replaced by one listener at
/// the place of the first; what a merge cannot fix is said in comments.
fn gateway_api(
    servers: &[Server],
    certificates: &[ServerCertificates],
    object: Option<&Value>,
    listeners_of_gateway: &[usize],
    conflicts: &[Numbered],
) -> Section {
    let mut comments = Vec::new();
    let Some(object) = object else {
        comments.push("The Gateway itself is missing from the input.".to_owned());
        return Section { comments, document: None };
    };
    let mut listeners: Vec<Option<Value>> =
        object["spec"]["listeners"].as_array().cloned().unwrap_or_default().into_iter().map(Some).collect();
    let names: Vec<String> = listeners.iter().flatten().filter_map(|l| l["name"].as_str().map(str::to_owned)).collect();
    let mut merged_any = false;
    for (n, conflict, advice) in conflicts {
        comments.push(heading(*n, conflict));
        let Some((k, certificate)) = certificate_of(servers, certificates, &conflict.servers, advice) else {
            comments.push(no_merge(servers, conflict, advice));
            continue;
        };
        let indexes: Vec<usize> = conflict.servers.iter().filter_map(|&i| listener_index(&servers[i])).collect();
        if indexes.len() != conflict.servers.len() || indexes.iter().any(|&i| i >= listeners.len()) {
            comments.push("The listeners do not match the Gateway in the input: no merge printed.".to_owned());
            continue;
        }
        let base = &servers[k];
        let hosts = all_hosts(servers, &conflict.servers);
        let shown_hosts: Vec<String> = hosts.iter().map(|h| Shown(h).to_string()).collect();
        let hostname = common_wildcard(&hosts);
        let mut name = format!("merged-{}", conflict.port);
        let mut suffix = 2;
        while names.contains(&name) {
            name = format!("merged-{}-{suffix}", conflict.port);
            suffix += 1;
        }
        let replaced: Vec<String> =
            conflict.servers.iter().map(|&i| Shown(servers[i].listener.as_deref().unwrap_or("")).to_string()).collect();
        comments.push(format!(
            "Listeners {} become listener {name}: hostname {}, with {certificate}, valid for every one of \
             {}. HTTPRoutes keep their hostnames; those whose parentRefs name a replaced listener by \
             sectionName must name {name} instead.",
            replaced.join(", "),
            hostname.as_deref().unwrap_or("none (every host)"),
            shown_hosts.join(", ")
        ));
        // The one listener takes more than the hosts it replaces: say how much more.
        match hostname.as_deref() {
            Some(wide) if !hosts.iter().any(|h| h == wide) => comments.push(format!(
                "The listener widens: the listeners had {}; with hostname {wide} it takes every host under {} at \
                 any depth, also those no listener had, and an HTTPRoute attached to it answers for every such \
                 host its own hostnames allow.",
                shown_hosts.join(", "),
                wide.trim_start_matches("*."),
            )),
            None => comments.push(format!(
                "The listener widens: the listeners had {}; with no hostname it takes every host, also those no \
                 listener had, and an HTTPRoute attached to it answers for every host its own hostnames allow.",
                shown_hosts.join(", ")
            )),
            Some(_) => {}
        }
        comments.extend(certificate_changes(servers, certificates, &conflict.servers, k));
        if let Some(wide) = hostname.as_deref().and_then(|h| sni_guard::server_table::HostPattern::parse(h).ok()) {
            // Other listeners on the port whose hostnames the new wildcard also matches: they
            // keep them (a more specific hostname wins), but the person applying should know.
            let members: BTreeSet<usize> = conflict.servers.iter().copied().collect();
            let others: Vec<String> = listeners_of_gateway
                .iter()
                .filter(|i| !members.contains(i))
                .map(|&i| &servers[i])
                .filter(|s| s.port.number == conflict.port)
                .filter(|s| s.patterns.iter().any(|p| covers(&wide, p)))
                .map(|s| format!("{} of listener {}", hosts_of(s), Shown(s.listener.as_deref().unwrap_or("?"))))
                .collect();
            if !others.is_empty() {
                comments.push(format!(
                    "{} also matches {}, which keep their listeners (a more specific hostname wins).",
                    hostname.as_deref().unwrap_or(""),
                    others.join("; ")
                ));
            }
        }
        let routes: Vec<&Option<Value>> = conflict.servers.iter().map(|&i| &servers[i].allowed_routes).collect();
        if routes.iter().any(|r| *r != routes[0]) {
            comments.push(format!(
                "Their allowedRoutes differ; this keeps those of listener {}: review before applying.",
                Shown(servers[conflict.servers[0]].listener.as_deref().unwrap_or("?"))
            ));
        }
        let mut listener = Map::new();
        listener.insert("name".into(), json!(name));
        if let Some(h) = &hostname {
            listener.insert("hostname".into(), json!(h));
        }
        listener.insert("port".into(), json!(conflict.port));
        listener.insert("protocol".into(), json!(base.port.protocol));
        listener.insert("tls".into(), base.tls.clone().unwrap_or(Value::Null));
        if let Some(routes) = &servers[conflict.servers[0]].allowed_routes {
            listener.insert("allowedRoutes".into(), routes.clone());
        }
        let first = *indexes.iter().min().unwrap_or(&0);
        for &i in &indexes {
            listeners[i] = None;
        }
        listeners[first] = Some(Value::Object(listener));
        merged_any = true;
    }
    if !merged_any {
        return Section { comments, document: None };
    }
    let gateway = namespace_name(object);
    comments.push(format!(
        "The whole Gateway {gateway}, merged: apply it in place of the one in the cluster (`kubectl apply -f`); \
         its other fields and listeners are as they were."
    ));
    let mut document = clean(object);
    document["spec"]["listeners"] = Value::Array(listeners.into_iter().flatten().collect());
    Section { comments, document: Some(document) }
}

fn namespace_name(object: &Value) -> String {
    let metadata = &object["metadata"];
    format!(
        "{}/{}",
        Shown(metadata["namespace"].as_str().unwrap_or("default")),
        Shown(metadata["name"].as_str().unwrap_or(""))
    )
}

/// The object as a person would apply it: no status, and only the metadata one writes.
fn clean(object: &Value) -> Value {
    let mut metadata = Map::new();
    for key in ["name", "namespace", "labels", "annotations"] {
        if let Some(value) = object["metadata"].get(key) {
            metadata.insert(key.into(), value.clone());
        }
    }
    if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
    json!({
        "apiVersion": object["apiVersion"],
        "kind": object["kind"],
        "metadata": metadata,
        "spec": object["spec"],
    })
}

/// The narrowest Gateway API hostname wildcard (`*.suffix`, any depth) matching every host (at
/// least two labels in the suffix, never `*.com`), or `None`.
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
    // A host's last label cannot be in the suffix: `*.example.com` does not match
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

    #[test]
    fn slugs_are_dns_labels() {
        assert_eq!(slug(&[Credential::CredentialName("Wild_Cert..x".into())]), "wild-cert-x");
        let files = Credential::Files { server_certificate: "/etc/certs/org.pem".into(), private_key: "/k".into() };
        assert_eq!(slug(&[files]), "org");
        assert_eq!(slug(&[Credential::CredentialName("--".into())]), "shared");
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
}
