//! Reading the cluster: `kubectl get gateways...,services,secrets -A -o json|yaml` output (a
//! `List`), single objects, multi-document YAML, or a directory of manifests, into an
//! `Inventory`: Istio and Gateway API Gateways (`gateways`), Services (`services`) and Secrets
//! (`secrets`). Other kinds are skipped. The objects read must have Kubernetes names (`names`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::documents::{parse_documents, read_inputs, type_name, InputError};
use super::gateways::GatewayReader;
use super::model::{Api, Server};
use super::names::{is_name, is_namespace, NAMESPACE_RULE, NAME_RULE};
use super::secrets::{self, Secret};
use super::services::{read_service, Service};
use crate::text::{escape, shown, Shown};

/// Everything read from the input.
#[derive(Debug, Default)]
pub struct Inventory {
    pub gateways: usize,
    pub servers: Vec<Server>,
    /// Every Secret, in input order; whether each holds a certificate is `tls::secrets`' question.
    pub secrets: Vec<Secret>,
    /// Every Service, in input order: `config` reads the port a gateway listens on from the
    /// Service in front of it.
    pub services: Vec<Service>,
    /// Gateway API Gateways as written, by namespace and name: `merge` prints them whole.
    pub gateway_api_objects: BTreeMap<(String, String), Value>,
    /// Objects of other kinds, skipped (a directory of manifests holds more than Gateways).
    pub skipped: Vec<String>,
}

/// Reads every path in turn (files or directories; `-` is standard input), or standard input
/// alone when there is none.
pub fn load(paths: &[PathBuf]) -> Result<Inventory, InputError> {
    let mut inventory = Inventory::default();
    let mut documents = 0;
    read_inputs(paths, |source, text| {
        documents += read_text(text, source, &mut inventory)?;
        Ok(())
    })?;
    let source: Vec<String> =
        paths.iter().map(|p| if p.as_os_str() == "-" { "stdin".to_owned() } else { shown(p) }).collect();
    let source = if source.is_empty() { "stdin".to_owned() } else { source.join(", ") };
    if inventory.gateways == 0 {
        if let Some(first) = inventory.skipped.first() {
            return Err(InputError(format!(
                "{source}: no Gateway found (first object: {first}); expected the output of \
                 `kubectl get gateways.networking.istio.io -A -o yaml` or Gateway manifests"
            )));
        }
        if documents == 0 {
            return Err(InputError(format!("{source}: empty input: no Kubernetes object")));
        }
    }
    Ok(inventory)
}

/// Parses one file's text, JSON or (multi-document) YAML, into the inventory; returns how
/// many non-empty documents it held.
pub fn read_text(text: &str, source: &str, inventory: &mut Inventory) -> Result<usize, InputError> {
    let documents = parse_documents(text, source)?;
    let many = documents.len() > 1;
    for (i, document) in documents.iter().enumerate() {
        let at = if many { format!("{source}: document {}", i + 1) } else { source.to_owned() };
        collect(document, &at, inventory)?;
    }
    Ok(documents.len())
}

fn collect(value: &Value, at: &str, inventory: &mut Inventory) -> Result<(), InputError> {
    let Some(object) = value.as_object() else {
        return Err(InputError(format!(
            "{at}: not a Kubernetes object (found {}); expected JSON or YAML from `kubectl get gateways -o json|yaml`",
            type_name(value)
        )));
    };
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        return Err(InputError(format!("{at}: not a Kubernetes object: no `kind` field")));
    }
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    // `List` from kubectl, or a typed list such as `GatewayList` from the API server.
    if kind.ends_with("List") {
        let items = match object.get("items") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => return Ok(()),
            Some(other) => {
                return Err(InputError(format!(
                    "{at}: {}: items: expected a list, found {}",
                    Shown(kind),
                    type_name(other)
                )))
            }
        };
        for (i, item) in items.iter().enumerate() {
            collect(item, &format!("{at}: items[{i}]"), inventory)?;
        }
        return Ok(());
    }
    let api = match (kind, api_version.split('/').next().unwrap_or("")) {
        ("Secret", "v1") => {
            let (namespace, name) = identity(object, &format!("{at}: Secret"))?;
            inventory.secrets.push(secrets::read(object, namespace, name));
            return Ok(());
        }
        ("Service", "v1") => {
            let (namespace, name) = identity(object, &format!("{at}: Service"))?;
            let service = read_service(object, &format!("{at}: Service {namespace}/{name}"), namespace, name)?;
            inventory.services.push(service);
            return Ok(());
        }
        ("Gateway", "networking.istio.io") => Api::Istio,
        ("Gateway", "gateway.networking.k8s.io") => Api::GatewayApi,
        _ => {
            let metadata = |f: &str| object.get("metadata").and_then(|m| m.get(f)).and_then(Value::as_str);
            inventory.skipped.push(format!(
                "{} {}/{} ({})",
                Shown(kind),
                Shown(metadata("namespace").unwrap_or("default")),
                Shown(metadata("name").unwrap_or("")),
                Shown(api_version)
            ));
            return Ok(());
        }
    };
    let (namespace, name) = identity(object, &format!("{at}: Gateway"))?;
    let gateway = GatewayReader { at: format!("{at}: Gateway {namespace}/{name}"), namespace, name };
    let spec = match object.get("spec") {
        Some(Value::Object(spec)) => spec,
        _ => return Err(gateway.refuse("spec", "missing or not a mapping")),
    };
    let servers = match api {
        Api::Istio => gateway.istio_servers(spec)?,
        Api::GatewayApi => gateway.listeners(spec)?,
    };
    inventory.gateways += 1;
    inventory.servers.extend(servers);
    if api == Api::GatewayApi {
        inventory.gateway_api_objects.insert((gateway.namespace, gateway.name), value.clone());
    }
    Ok(())
}

/// `metadata.namespace` (manifests often leave it out: `default`, as kubectl would apply them
/// without `-n`) and `metadata.name`, which must be Kubernetes names; `at` names the object's
/// place and kind in messages.
fn identity(object: &Map<String, Value>, at: &str) -> Result<(String, String), InputError> {
    let metadata = object.get("metadata").and_then(Value::as_object);
    let field = |f: &str, valid: fn(&str) -> bool, rule: &str| -> Result<Option<String>, InputError> {
        match metadata.and_then(|m| m.get(f)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if valid(text) => Ok(Some(text.clone())),
            Some(Value::String(text)) => Err(InputError(format!(
                "{at}: metadata.{f}: \"{}\" is not a Kubernetes {} ({rule})",
                escape(text),
                if f == "name" { "name" } else { "namespace" }
            ))),
            Some(other) => {
                Err(InputError(format!("{at}: metadata.{f}: expected a string, found {}", type_name(other))))
            }
        }
    };
    let namespace = field("namespace", is_namespace, NAMESPACE_RULE)?.unwrap_or_else(|| "default".to_owned());
    let name = field("name", is_name, NAME_RULE)?
        .ok_or_else(|| InputError(format!("{at} in namespace {namespace}: metadata.name: missing")))?;
    Ok((namespace, name))
}

/// The servers of a test document: the one reading helper the modules' tests share.
#[cfg(test)]
pub(crate) fn test_servers(text: &str) -> Vec<Server> {
    let mut inventory = Inventory::default();
    read_text(text, "t", &mut inventory).expect("a valid test document");
    inventory.servers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::model::{Credential, TlsMode, Workload};
    use crate::cluster::services::TargetPort;

    fn read(text: &str) -> Result<Inventory, InputError> {
        let mut inventory = Inventory::default();
        read_text(text, "t", &mut inventory)?;
        Ok(inventory)
    }

    const ISTIO: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw-a, namespace: team-a}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com, "team-a/A.example.com"]
    tls: {mode: SIMPLE, credentialName: shared-cert}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
    tls: {httpsRedirect: true}
"#;

    #[test]
    fn reads_an_istio_gateway() {
        let inv = read(ISTIO).unwrap();
        assert_eq!(inv.gateways, 1);
        let s = &inv.servers[0];
        assert_eq!((s.namespace.as_str(), s.gateway.as_str(), s.field.as_str()), ("team-a", "gw-a", "spec.servers[0]"));
        assert_eq!(s.workload.to_string(), "istio=ingressgateway");
        assert_eq!(s.port.number, 443);
        assert_eq!(s.hosts, ["a.example.com", "team-a/A.example.com"]);
        assert_eq!(s.patterns[0], s.patterns[1]);
        assert_eq!(s.tls_mode, Some(TlsMode::Simple));
        assert_eq!(s.credentials, [Credential::CredentialName("shared-cert".into())]);
        assert_eq!(inv.servers[1].tls_mode, None);
    }

    #[test]
    fn reads_a_gateway_api_gateway() {
        let inv = read(
            r#"{"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{"name":"edge","namespace":"web"},
               "spec":{"gatewayClassName":"istio","listeners":[
                 {"name":"a","hostname":"a.example.com","port":443,"protocol":"HTTPS","tls":{"certificateRefs":[{"name":"cert"}]}},
                 {"name":"any","port":8443,"protocol":"TLS","tls":{"mode":"Passthrough"}}]}}"#,
        )
        .unwrap();
        let a = &inv.servers[0];
        assert_eq!(a.workload, Workload::Gateway { namespace: "web".into(), name: "edge".into() });
        assert_eq!(a.tls_mode, Some(TlsMode::Terminate));
        assert_eq!(
            a.credentials,
            [Credential::CertificateRef { kind: "Secret".into(), namespace: "web".into(), name: "cert".into() }]
        );
        assert_eq!(inv.servers[1].hosts, ["*"]);
        assert_eq!(inv.servers[1].tls_mode, Some(TlsMode::GatewayPassthrough));
    }

    #[test]
    fn reads_every_istio_credential_form_and_secrets() {
        let inv = read(
            r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: a}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialNames: [rsa, ecdsa]}
  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: [b.example.com]
    tls:
      mode: SIMPLE
      tlsCertificates: [{serverCertificate: /c/rsa.pem, privateKey: /c/rsa.key}]
---
apiVersion: v1
kind: Secret
metadata: {name: helm-release, namespace: a}
type: helm.sh/release.v1
data: {release: H4sI}
"#,
        )
        .unwrap();
        assert_eq!(
            inv.servers[0].credentials,
            [Credential::CredentialName("rsa".into()), Credential::CredentialName("ecdsa".into())]
        );
        assert_eq!(
            inv.servers[1].credentials,
            [Credential::Files { server_certificate: "/c/rsa.pem".into(), private_key: "/c/rsa.key".into() }]
        );
        // A Secret is read (here: one without a certificate), not skipped as another kind.
        assert_eq!((inv.secrets.len(), inv.skipped.len()), (1, 0));
        assert_eq!(inv.secrets[0].kind, "helm.sh/release.v1");
    }

    #[test]
    fn a_certificate_ref_of_another_group_is_another_kind() {
        let inv = read(
            r#"{"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{"name":"edge","namespace":"web"},
               "spec":{"listeners":[{"name":"a","hostname":"a.example.com","port":443,"protocol":"HTTPS",
                 "tls":{"certificateRefs":[{"name":"c","group":"cert-manager.io","kind":"Certificate"},{"name":"s","group":""}]}}]}}"#,
        )
        .unwrap();
        let kinds: Vec<String> = inv.servers[0]
            .credentials
            .iter()
            .map(|c| match c {
                Credential::CertificateRef { kind, .. } => kind.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["Certificate.cert-manager.io", "Secret"]);
        assert!(inv.gateway_api_objects.contains_key(&("web".to_owned(), "edge".to_owned())));
    }

    #[test]
    fn lists_and_multi_documents_and_other_kinds() {
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n",
            serde_json::to_string(&serde_yaml_ng::from_str::<Value>(ISTIO).unwrap()).unwrap()
        );
        assert_eq!(read(&list).unwrap().servers.len(), 2);
        let multi = format!("{ISTIO}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: s}}\n---\n");
        let inv = read(&multi).unwrap();
        assert_eq!(inv.gateways, 1);
        assert_eq!(inv.skipped, ["ConfigMap default/s (v1)"]);
        assert_eq!(read(r#"{"apiVersion":"v1","kind":"List","items":[]}"#).unwrap().gateways, 0);
    }

    #[test]
    fn reads_services() {
        let inv = read(
            r#"
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {app: istio-ingressgateway, istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: "8443"}
  - {name: named, port: 444, targetPort: https}
  - {name: same, port: 15443}
"#,
        )
        .unwrap();
        let service = &inv.services[0];
        assert_eq!((service.namespace.as_str(), service.name.as_str()), ("istio-system", "istio-ingressgateway"));
        assert_eq!(service.selector.len(), 2);
        let targets: Vec<(u32, TargetPort)> = service.ports.iter().map(|p| (p.port, p.target.clone())).collect();
        assert_eq!(
            targets,
            [
                (80, TargetPort::Number(8080)),
                (443, TargetPort::Number(8443)),
                (444, TargetPort::Named("https".into())),
                (15443, TargetPort::Number(15443))
            ]
        );
        let bad = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 0}]}\n";
        assert!(read(bad).unwrap_err().0.contains("Service default/s: spec.ports[0].port: 0 is not a port number"));
    }

    #[test]
    fn bad_input_names_object_and_field() {
        let err = |text: &str| read(text).unwrap_err().0;
        assert!(err("{ not json").contains("not valid JSON"));
        assert!(err("just some words").contains("not a Kubernetes object (found a string)"));
        assert!(err("a: [unclosed").contains("not valid YAML"));
        assert!(err("{\"apiVersion\":\"v1\"}").contains("no `kind`"));
        let no_hosts = ISTIO.replace("hosts: [\"*\"]", "hosts: []");
        assert_eq!(err(&no_hosts), "t: Gateway team-a/gw-a: spec.servers[1].hosts: a server needs at least one host");
        let bad_host = ISTIO.replace("a.example.com,", "\"a b.example.com\",");
        assert!(
            err(&bad_host).starts_with("t: Gateway team-a/gw-a: spec.servers[0].hosts[0]: \"a b.example.com\""),
            "{}",
            err(&bad_host)
        );
        let bad_mode = ISTIO.replace("SIMPLE", "SIMPEL");
        assert!(err(&bad_mode).contains("spec.servers[0].tls.mode: \"SIMPEL\" is not a TLS mode"));
        let bad_port = ISTIO.replace("number: 443", "number: https");
        assert!(err(&bad_port).contains("spec.servers[0].port.number: expected a port number, found a string"));
        let big_port = ISTIO.replace("number: 443", "number: 70000");
        assert!(err(&big_port).contains("70000 is not a port number"));
        let no_protocol = ISTIO.replace(", protocol: HTTPS", "");
        assert!(err(&no_protocol).contains("spec.servers[0].port.protocol: missing"));
        let no_spec = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: x}\n";
        assert!(err(no_spec).contains("Gateway default/x: spec: missing"));
        let in_list = r#"{"kind":"List","items":[{"kind":"Gateway","apiVersion":"networking.istio.io/v1","metadata":{"name":"x","namespace":"n"},"spec":{"servers":[{"port":{"number":443,"protocol":"HTTPS"}}]}}]}"#;
        assert_eq!(err(in_list), "t: items[0]: Gateway n/x: spec.servers[0].hosts: a server needs at least one host");
        let no_ref_name = r#"{"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{"name":"e"},
            "spec":{"listeners":[{"name":"a","port":443,"protocol":"HTTPS","tls":{"certificateRefs":[{"kind":"Secret"}]}}]}}"#;
        assert!(err(no_ref_name).contains("spec.listeners[0].tls.certificateRefs[0].name: missing"));
    }

    #[test]
    fn what_is_not_a_kubernetes_name_is_refused() {
        let err = |text: &str| read(text).unwrap_err().0;
        let injected = ISTIO.replace("credentialName: shared-cert", "credentialName: \"shared\\n---\\nkind: X\\n#\"");
        assert_eq!(
            err(&injected),
            "t: Gateway team-a/gw-a: spec.servers[0].tls.credentialName: \"shared\\n---\\nkind: X\\n#\": not a \
             Kubernetes Secret name (lower-case letters, digits, '-' and '.', starting and ending with a letter or \
             digit, at most 253 characters), with `kubernetes://` or `namespace/` before it"
        );
        let names = ISTIO.replace("credentialName: shared-cert", "credentialNames: [ok, \"a\\u001b[2J\"]");
        assert!(err(&names)
            .starts_with("t: Gateway team-a/gw-a: spec.servers[0].tls.credentialNames[1]: \"a\\u{1b}[2J\": not"));
        let name = ISTIO.replace("name: gw-a", "name: \"gw\\r\\u202ea\"");
        assert!(
            err(&name).starts_with("t: Gateway: metadata.name: \"gw\\r\\u{202e}a\" is not a Kubernetes name ("),
            "{}",
            err(&name)
        );
        let namespace = ISTIO.replace("namespace: team-a", "namespace: Team.A");
        assert!(err(&namespace).starts_with("t: Gateway: metadata.namespace: \"Team.A\" is not a Kubernetes namespace"));
        let host_namespace = ISTIO.replace("team-a/A.example.com", "evil\\n/A.example.com");
        assert!(err(&host_namespace)
            .contains("spec.servers[0].hosts[1]: \"evil\\n/A.example.com\": before '/' is not a namespace"));
        let secret =
            "apiVersion: v1\nkind: Secret\nmetadata: {name: \"x\\u0007\", namespace: a}\ntype: kubernetes.io/tls\n";
        assert_eq!(err(secret), "t: Secret: metadata.name: \"x\\u{7}\" is not a Kubernetes name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)");
        assert!(err("apiVersion: v1\nkind: Service\nmetadata: {namespace: a}\n")
            .starts_with("t: Service in namespace a: metadata.name: missing"));
        let reference = |field: &str| {
            format!(
                r#"{{"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{{"name":"e","namespace":"w"}},
                "spec":{{"listeners":[{{"name":"a","port":443,"protocol":"HTTPS","tls":{{"certificateRefs":[{field}]}}}}]}}}}"#
            )
        };
        assert!(err(&reference(r#"{"name":"a\nb"}"#))
            .contains("certificateRefs[0].name: \"a\\nb\" is not a Kubernetes name"));
        assert!(err(&reference(r#"{"name":"a","namespace":"x/y"}"#))
            .contains("certificateRefs[0].namespace: \"x/y\" is not a Kubernetes namespace"));
        // Istio's own forms are read as Istio reads them.
        for form in ["kubernetes://shared-cert", "istio-system/shared-cert", "kubernetes-gateway://a/b", "builtin://"] {
            assert!(read(&ISTIO.replace("shared-cert", form)).is_ok(), "{form}");
        }
        // Kinds that are skipped are named, escaped.
        let other = "apiVersion: v1\nkind: \"Config\\u001bMap\"\nmetadata: {name: \"a\\nb\"}\n";
        assert_eq!(read(other).unwrap().skipped, ["Config\\u{1b}Map default/a\\nb (v1)"]);
    }
}
