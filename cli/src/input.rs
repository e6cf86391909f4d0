//! Reading the input: `kubectl get gateways...,secrets -A -o json|yaml` output (a `List`),
//! single objects, multi-document YAML, or a directory of manifests; Istio and Gateway API
//! Gateways alike, Secrets (read by `secrets`) and Services (which port a gateway listens on).
//! Other kinds are skipped.
//!
//! Every refusal names where it happened (file, object, field), because the person reading it
//! has to find that spot in a cluster dump of hundreds of objects.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use sni_guard::server_table::HostPattern;

use crate::model::{Api, Credential, Port, Server, TlsMode, Workload};
use crate::secrets::{self, Secret};

/// Bad input: not JSON or YAML, not Gateways, or a Gateway that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Everything read from the input.
#[derive(Debug, Default)]
pub struct Inventory {
    pub gateways: usize,
    pub servers: Vec<Server>,
    /// Every Secret, in input order; what each holds is read by `secrets`.
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
    let stdin = Path::new("-");
    let paths: Vec<&Path> = if paths.is_empty() { vec![stdin] } else { paths.iter().map(PathBuf::as_path).collect() };
    if paths.iter().filter(|p| **p == stdin).count() > 1 {
        return Err(InputError("standard input (-) given twice".into()));
    }
    for &path in &paths {
        if path == stdin {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .map_err(|e| InputError(format!("stdin: cannot read: {e}")))?;
            let text = String::from_utf8(bytes).map_err(|_| InputError("stdin: not UTF-8 text".into()))?;
            documents += read_text(&text, "stdin", &mut inventory)?;
        } else if path.is_dir() {
            let mut files = Vec::new();
            manifest_files(path, &mut files)?;
            if files.is_empty() {
                return Err(InputError(format!("{}: no .yaml, .yml or .json file in this directory", shown(path))));
            }
            for file in files {
                documents += read_file(&file, &mut inventory)?;
            }
        } else {
            documents += read_file(path, &mut inventory)?;
        }
    }
    let source = paths.iter().map(|p| if *p == stdin { "stdin".to_owned() } else { shown(p) });
    let source = source.collect::<Vec<_>>().join(", ");
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

/// `*.yaml`, `*.yml` and `*.json` under `dir`, in name order so that output is reproducible.
pub(crate) fn manifest_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let entries = fs::read_dir(dir).map_err(|e| InputError(format!("{}: cannot read directory: {e}", shown(dir))))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            manifest_files(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json") {
            out.push(path);
        }
    }
    Ok(())
}

fn read_file(path: &Path, inventory: &mut Inventory) -> Result<usize, InputError> {
    let bytes = fs::read(path).map_err(|e| InputError(format!("{}: cannot read: {e}", shown(path))))?;
    let text = String::from_utf8(bytes).map_err(|_| InputError(format!("{}: not UTF-8 text", shown(path))))?;
    read_text(&text, &shown(path), inventory)
}

/// A path as messages show it: as is when it is UTF-8, quoted with escapes otherwise (a
/// replacement character would hide which bytes the name has).
pub fn shown(path: &Path) -> String {
    match path.to_str() {
        Some(text) => text.to_owned(),
        None => format!("{path:?}"),
    }
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

pub(crate) fn parse_documents(text: &str, source: &str) -> Result<Vec<Value>, InputError> {
    // JSON first when it looks like JSON, for serde_json's clearer messages; YAML is a
    // superset, so everything else goes to the YAML parser.
    if text.trim_start().starts_with(['{', '[']) {
        let value: Value =
            serde_json::from_str(text).map_err(|e| InputError(format!("{source}: not valid JSON: {e}")))?;
        return Ok(vec![value]);
    }
    let mut documents = Vec::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document)
            .map_err(|e| InputError(format!("{source}: document {}: not valid YAML: {e}", i + 1)))?;
        // `---` followed by nothing, or a comment-only document.
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
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
                return Err(InputError(format!("{at}: {kind}: items: expected a list, found {}", type_name(other))))
            }
        };
        for (i, item) in items.iter().enumerate() {
            collect(item, &format!("{at}: items[{i}]"), inventory)?;
        }
        return Ok(());
    }
    let (namespace, name) = identity(object);
    if (kind, api_version) == ("Secret", "v1") {
        let secret =
            secrets::read(object, &format!("{at}: Secret {namespace}/{name}"), namespace, name).map_err(InputError)?;
        inventory.secrets.push(secret);
        return Ok(());
    }
    if (kind, api_version) == ("Service", "v1") {
        let service = read_service(object, &format!("{at}: Service {namespace}/{name}"), namespace, name)?;
        inventory.services.push(service);
        return Ok(());
    }
    let api = match (kind, api_version.split('/').next().unwrap_or("")) {
        ("Gateway", "networking.istio.io") => Api::Istio,
        ("Gateway", "gateway.networking.k8s.io") => Api::GatewayApi,
        _ => {
            inventory.skipped.push(format!("{kind} {namespace}/{name} ({api_version})"));
            return Ok(());
        }
    };
    let gateway = GatewayReader { at: format!("{at}: Gateway {namespace}/{name}"), namespace, name };
    if gateway.name.is_empty() {
        return Err(gateway.refuse("metadata.name", "missing"));
    }
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

/// A Kubernetes Service, as far as `config` cares: which pods it sends to, and which port of
/// theirs each of its ports goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// `spec.selector`; empty for a Service without one (its endpoints are managed by hand).
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub port: u32,
    pub target: TargetPort,
}

/// `spec.ports[].targetPort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    /// A number, or absent (Kubernetes then uses `port`).
    Number(u32),
    /// A container port's name: which number it is, only the pod spec says.
    Named(String),
}

fn read_service(object: &Map<String, Value>, at: &str, namespace: String, name: String) -> Result<Service, InputError> {
    let refuse = |field: &str, problem: String| InputError(format!("{at}: {field}: {problem}"));
    let spec = match object.get("spec") {
        None | Some(Value::Null) => {
            return Ok(Service { namespace, name, selector: BTreeMap::new(), ports: Vec::new() })
        }
        Some(Value::Object(spec)) => spec,
        Some(other) => return Err(refuse("spec", format!("expected a mapping, found {}", type_name(other)))),
    };
    let mut selector = BTreeMap::new();
    match spec.get("selector") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            for (key, value) in labels {
                let Value::String(value) = value else {
                    return Err(refuse(
                        &format!("spec.selector.{key}"),
                        format!("expected a string, found {}", type_name(value)),
                    ));
                };
                selector.insert(key.clone(), value.clone());
            }
        }
        Some(other) => return Err(refuse("spec.selector", format!("expected a mapping, found {}", type_name(other)))),
    }
    let mut ports = Vec::new();
    let items = match spec.get("ports") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(other) => return Err(refuse("spec.ports", format!("expected a list, found {}", type_name(other)))),
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("spec.ports[{i}]");
        let number = |value: &Value, field: &str| match value.as_u64() {
            Some(n @ 1..=65535) => Ok(n as u32),
            _ => Err(refuse(field, format!("{value} is not a port number (1 to 65535)"))),
        };
        let Some(item) = item.as_object() else {
            return Err(refuse(&field, format!("expected a mapping, found {}", type_name(item))));
        };
        let port_field = format!("{field}.port");
        let port = number(item.get("port").ok_or_else(|| refuse(&port_field, "missing".into()))?, &port_field)?;
        let target = match item.get("targetPort") {
            None | Some(Value::Null) => TargetPort::Number(port),
            Some(Value::String(name)) => match name.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => TargetPort::Number(n),
                _ => TargetPort::Named(name.clone()),
            },
            Some(value) => TargetPort::Number(number(value, &format!("{field}.targetPort"))?),
        };
        ports.push(ServicePort { port, target });
    }
    Ok(Service { namespace, name, selector, ports })
}

/// Istio's HTTP-family protocols: served without TLS even when the server has a `tls` block.
fn is_plain_http(protocol: &str) -> bool {
    ["HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"].iter().any(|p| protocol.eq_ignore_ascii_case(p))
}

/// `metadata.namespace` (manifests often leave it out: `default`, as kubectl would apply them
/// without `-n`) and `metadata.name`.
fn identity(object: &Map<String, Value>) -> (String, String) {
    let metadata = object.get("metadata");
    let field = |f: &str| metadata.and_then(|m| m.get(f)).and_then(Value::as_str).map(str::to_owned);
    (field("namespace").unwrap_or_else(|| "default".to_owned()), field("name").unwrap_or_default())
}

struct GatewayReader {
    /// `file: Gateway ns/name`, the prefix of every message.
    at: String,
    namespace: String,
    name: String,
}

impl GatewayReader {
    fn refuse(&self, field: &str, problem: impl fmt::Display) -> InputError {
        InputError(format!("{}: {field}: {problem}", self.at))
    }

    fn string<'v>(
        &self,
        object: &'v Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<Option<&'v str>, InputError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.refuse(field, format!("expected a string, found {}", type_name(other)))),
        }
    }

    fn mapping<'v>(
        &self,
        object: &'v Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<Option<&'v Map<String, Value>>, InputError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(self.refuse(field, format!("expected a mapping, found {}", type_name(other)))),
        }
    }

    fn list<'v>(&self, object: &'v Map<String, Value>, key: &str, field: &str) -> Result<&'v [Value], InputError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.refuse(field, format!("expected a list, found {}", type_name(other)))),
        }
    }

    fn port_number(&self, value: Option<&Value>, field: &str) -> Result<u32, InputError> {
        match value {
            None | Some(Value::Null) => Err(self.refuse(field, "missing")),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(port @ 1..=65535) => Ok(port as u32),
                _ => Err(self.refuse(field, format!("{n} is not a port number (1 to 65535)"))),
            },
            Some(other) => Err(self.refuse(field, format!("expected a port number, found {}", type_name(other)))),
        }
    }

    /// Checks a host with the filter's own parser, so whatever the audit accepts the filter's
    /// configuration accepts too.
    fn host(&self, host: &str, field: &str) -> Result<HostPattern, InputError> {
        HostPattern::parse(host).map_err(|problem| self.refuse(field, format!("{host:?}: {problem}")))
    }

    fn istio_servers(&self, spec: &Map<String, Value>) -> Result<Vec<Server>, InputError> {
        let mut selector = BTreeMap::new();
        if let Some(labels) = self.mapping(spec, "selector", "spec.selector")? {
            for (key, value) in labels {
                let field = format!("spec.selector.{key}");
                match value {
                    Value::String(v) => selector.insert(key.clone(), v.clone()),
                    other => return Err(self.refuse(&field, format!("expected a string, found {}", type_name(other)))),
                };
            }
        }
        let workload = Workload::Selector(selector);
        let servers = self.list(spec, "servers", "spec.servers")?;
        if servers.is_empty() {
            return Err(self.refuse("spec.servers", "a Gateway needs at least one server"));
        }
        let mut out = Vec::with_capacity(servers.len());
        for (i, server) in servers.iter().enumerate() {
            let field = format!("spec.servers[{i}]");
            let Some(server) = server.as_object() else {
                return Err(self.refuse(&field, format!("expected a mapping, found {}", type_name(server))));
            };
            let port = self
                .mapping(server, "port", &format!("{field}.port"))?
                .ok_or_else(|| self.refuse(&format!("{field}.port"), "missing"))?;
            let number = self.port_number(port.get("number"), &format!("{field}.port.number"))?;
            let protocol = self
                .string(port, "protocol", &format!("{field}.port.protocol"))?
                .ok_or_else(|| self.refuse(&format!("{field}.port.protocol"), "missing"))?;
            let port_name = self.string(port, "name", &format!("{field}.port.name"))?;

            let host_values = self.list(server, "hosts", &format!("{field}.hosts"))?;
            if host_values.is_empty() {
                return Err(self.refuse(&format!("{field}.hosts"), "a server needs at least one host"));
            }
            let mut hosts = Vec::with_capacity(host_values.len());
            let mut patterns = Vec::with_capacity(host_values.len());
            for (h, host) in host_values.iter().enumerate() {
                let host_field = format!("{field}.hosts[{h}]");
                let Value::String(host) = host else {
                    return Err(self.refuse(&host_field, format!("expected a string, found {}", type_name(host))));
                };
                patterns.push(self.host(host, &host_field)?);
                hosts.push(host.clone());
            }

            let tls_block = self.mapping(server, "tls", &format!("{field}.tls"))?;
            let (tls_mode, credentials, tls) = match tls_block {
                None => (None, Vec::new(), None),
                // Istio treats a server with an HTTP-family protocol as plain HTTP whatever its
                // `tls` says: that is where `tls.httpsRedirect` lives.
                Some(tls) if is_plain_http(protocol) => (None, Vec::new(), Some(Value::Object(tls.clone()))),
                Some(tls) => {
                    let mode_field = format!("{field}.tls.mode");
                    // The API's default mode is PASSTHROUGH (enum value 0), whatever else is set.
                    let mode = match self.string(tls, "mode", &mode_field)? {
                        None => TlsMode::Passthrough,
                        Some(mode) => TlsMode::parse_istio(mode).ok_or_else(|| {
                            self.refuse(&mode_field, format!(
                                "{mode:?} is not a TLS mode (SIMPLE, MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL, PASSTHROUGH, AUTO_PASSTHROUGH)"
                            ))
                        })?,
                    };
                    let credentials = self.istio_credentials(tls, &format!("{field}.tls"))?;
                    (Some(mode), credentials, Some(Value::Object(tls.clone())))
                }
            };
            let server_name = self.string(server, "name", &format!("{field}.name"))?.map(str::to_owned);
            out.push(Server {
                api: Api::Istio,
                namespace: self.namespace.clone(),
                gateway: self.name.clone(),
                field,
                listener: server_name,
                workload: workload.clone(),
                port: Port { number, name: port_name.map(str::to_owned), protocol: protocol.to_owned() },
                hosts,
                patterns,
                tls_mode,
                credentials,
                tls,
                allowed_routes: None,
            });
        }
        Ok(out)
    }

    /// `credentialName`, `credentialNames`, `serverCertificate` (with `privateKey`), and
    /// `tlsCertificates`: Istio allows one of these forms per server.
    fn istio_credentials(&self, tls: &Map<String, Value>, field: &str) -> Result<Vec<Credential>, InputError> {
        let mut credentials = Vec::new();
        if let Some(name) = self.string(tls, "credentialName", &format!("{field}.credentialName"))? {
            credentials.push(Credential::CredentialName(name.to_owned()));
        }
        for (i, name) in self.list(tls, "credentialNames", &format!("{field}.credentialNames"))?.iter().enumerate() {
            let Value::String(name) = name else {
                return Err(self.refuse(&format!("{field}.credentialNames[{i}]"), "expected a string"));
            };
            credentials.push(Credential::CredentialName(name.clone()));
        }
        let mut file_pairs = vec![(tls, field.to_owned())];
        for (i, pair) in self.list(tls, "tlsCertificates", &format!("{field}.tlsCertificates"))?.iter().enumerate() {
            let at = format!("{field}.tlsCertificates[{i}]");
            let Some(pair) = pair.as_object() else {
                return Err(self.refuse(&at, format!("expected a mapping, found {}", type_name(pair))));
            };
            file_pairs.push((pair, at));
        }
        for (pair, at) in file_pairs {
            let cert = self.string(pair, "serverCertificate", &format!("{at}.serverCertificate"))?;
            let key = self.string(pair, "privateKey", &format!("{at}.privateKey"))?;
            if cert.is_some() || key.is_some() {
                credentials.push(Credential::Files {
                    server_certificate: cert.unwrap_or("").to_owned(),
                    private_key: key.unwrap_or("").to_owned(),
                });
            }
        }
        Ok(credentials)
    }

    fn listeners(&self, spec: &Map<String, Value>) -> Result<Vec<Server>, InputError> {
        let workload = Workload::Gateway { namespace: self.namespace.clone(), name: self.name.clone() };
        let listeners = self.list(spec, "listeners", "spec.listeners")?;
        if listeners.is_empty() {
            return Err(self.refuse("spec.listeners", "a Gateway needs at least one listener"));
        }
        let mut out = Vec::with_capacity(listeners.len());
        for (i, listener) in listeners.iter().enumerate() {
            let field = format!("spec.listeners[{i}]");
            let Some(listener) = listener.as_object() else {
                return Err(self.refuse(&field, format!("expected a mapping, found {}", type_name(listener))));
            };
            let name = self.string(listener, "name", &format!("{field}.name"))?;
            let number = self.port_number(listener.get("port"), &format!("{field}.port"))?;
            let protocol = self
                .string(listener, "protocol", &format!("{field}.protocol"))?
                .ok_or_else(|| self.refuse(&format!("{field}.protocol"), "missing"))?;
            // No hostname: the listener takes every host.
            let host = self.string(listener, "hostname", &format!("{field}.hostname"))?.unwrap_or("*");
            let pattern = self.host(host, &format!("{field}.hostname"))?;

            let tls = self.mapping(listener, "tls", &format!("{field}.tls"))?;
            let (tls_mode, credentials) = match tls {
                // HTTP and TCP listeners have no TLS; an HTTPS or TLS listener without a `tls`
                // block is invalid in Gateway API but cannot coalesce either.
                None => (None, Vec::new()),
                Some(tls) => {
                    let mode_field = format!("{field}.tls.mode");
                    let mode = match self.string(tls, "mode", &mode_field)? {
                        None | Some("Terminate") => TlsMode::Terminate,
                        Some("Passthrough") => TlsMode::GatewayPassthrough,
                        Some(other) => {
                            return Err(self
                                .refuse(&mode_field, format!("{other:?} is not a TLS mode (Terminate, Passthrough)")))
                        }
                    };
                    let mut credentials = Vec::new();
                    for (r, reference) in
                        self.list(tls, "certificateRefs", &format!("{field}.tls.certificateRefs"))?.iter().enumerate()
                    {
                        let ref_field = format!("{field}.tls.certificateRefs[{r}]");
                        let Some(reference) = reference.as_object() else {
                            return Err(
                                self.refuse(&ref_field, format!("expected a mapping, found {}", type_name(reference)))
                            );
                        };
                        let name = self
                            .string(reference, "name", &format!("{ref_field}.name"))?
                            .ok_or_else(|| self.refuse(&format!("{ref_field}.name"), "missing"))?;
                        let kind = self.string(reference, "kind", &format!("{ref_field}.kind"))?.unwrap_or("Secret");
                        // The core group is "" (the default); another group is a different kind.
                        let kind = match self.string(reference, "group", &format!("{ref_field}.group"))? {
                            None | Some("" | "core") => kind.to_owned(),
                            Some(group) => format!("{kind}.{group}"),
                        };
                        let namespace = self
                            .string(reference, "namespace", &format!("{ref_field}.namespace"))?
                            .unwrap_or(&self.namespace);
                        credentials.push(Credential::CertificateRef {
                            kind,
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                        });
                    }
                    (Some(mode), credentials)
                }
            };
            out.push(Server {
                api: Api::GatewayApi,
                namespace: self.namespace.clone(),
                gateway: self.name.clone(),
                field,
                listener: name.map(str::to_owned),
                workload: workload.clone(),
                port: Port { number, name: name.map(str::to_owned), protocol: protocol.to_owned() },
                hosts: vec![host.to_owned()],
                patterns: vec![pattern],
                tls_mode,
                credentials,
                tls: tls.map(|t| Value::Object(t.clone())),
                allowed_routes: listener.get("allowedRoutes").cloned(),
            });
        }
        Ok(out)
    }
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
}
