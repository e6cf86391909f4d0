//! Gateways, Istio's and Gateway API's, into the `model`'s servers. Every refusal names the
//! file, the Gateway and the field, because the person reading it has to find that spot in a
//! cluster dump of hundreds of objects.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};
use sni_guard::server_table::HostPattern;

use super::documents::{type_name, InputError};
use super::model::{Api, Credential, Port, Server, TlsMode, Workload};
use super::names::{
    is_label_key, is_label_value, is_name, is_namespace, istio_credential, LABEL_RULE, NAMESPACE_RULE, NAME_RULE,
};
use crate::text::escape;

/// Istio's HTTP-family protocols: served without TLS even when the server has a `tls` block.
fn is_plain_http(protocol: &str) -> bool {
    ["HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"].iter().any(|p| protocol.eq_ignore_ascii_case(p))
}

pub(super) struct GatewayReader {
    /// `file: Gateway ns/name`, the prefix of every message.
    pub(super) at: String,
    pub(super) namespace: String,
    pub(super) name: String,
}

impl GatewayReader {
    pub(super) fn refuse(&self, field: &str, problem: impl fmt::Display) -> InputError {
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
        let shown = format!("\"{}\"", escape(host));
        // Istio's `namespace/host`: a namespace, `.` (the Gateway's) or `*` (any).
        if let Some((namespace, _)) = host.split_once('/') {
            if !(namespace == "." || namespace == "*" || is_namespace(namespace)) {
                return Err(self
                    .refuse(field, format!("{shown}: before '/' is not a namespace, '.' or '*' ({NAMESPACE_RULE})")));
            }
        }
        HostPattern::parse(host).map_err(|problem| self.refuse(field, format!("{shown}: {problem}")))
    }

    /// A `credentialName` as Istio reads it (`names::istio_credential`), or refused.
    fn credential_name(&self, name: &str, field: &str) -> Result<Credential, InputError> {
        match istio_credential(name) {
            Ok(_) => Ok(Credential::CredentialName(name.to_owned())),
            Err(problem) => Err(self.refuse(field, format!("\"{}\": {problem}", escape(name)))),
        }
    }

    /// A Secret's name or namespace in a `certificateRefs` entry, or refused.
    fn reference_part(&self, value: &str, field: &str, namespace: bool) -> Result<(), InputError> {
        let (fits, rule) = if namespace { (is_namespace(value), NAMESPACE_RULE) } else { (is_name(value), NAME_RULE) };
        if fits {
            return Ok(());
        }
        let what = if namespace { "namespace" } else { "name" };
        Err(self.refuse(field, format!("\"{}\" is not a Kubernetes {what} ({rule})", escape(value))))
    }

    pub(super) fn istio_servers(&self, spec: &Map<String, Value>) -> Result<Vec<Server>, InputError> {
        let mut selector = BTreeMap::new();
        if let Some(labels) = self.mapping(spec, "selector", "spec.selector")? {
            for (key, value) in labels {
                // A selector matches pod labels, which are Kubernetes labels: anything else selects
                // no pod, and would reach the commands the report suggests.
                let field = format!("spec.selector.{}", escape(key));
                if !is_label_key(key) {
                    return Err(self.refuse(&field, format!("\"{}\" is not a label key ({LABEL_RULE})", escape(key))));
                }
                match value {
                    Value::String(v) if is_label_value(v) => selector.insert(key.clone(), v.clone()),
                    Value::String(v) => {
                        return Err(
                            self.refuse(&field, format!("\"{}\" is not a label value ({LABEL_RULE})", escape(v)))
                        )
                    }
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
        let at = format!("{field}.credentialName");
        if let Some(name) = self.string(tls, "credentialName", &at)? {
            credentials.push(self.credential_name(name, &at)?);
        }
        for (i, name) in self.list(tls, "credentialNames", &format!("{field}.credentialNames"))?.iter().enumerate() {
            let at = format!("{field}.credentialNames[{i}]");
            let Value::String(name) = name else {
                return Err(self.refuse(&at, "expected a string"));
            };
            credentials.push(self.credential_name(name, &at)?);
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

    pub(super) fn listeners(&self, spec: &Map<String, Value>) -> Result<Vec<Server>, InputError> {
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
                        self.reference_part(name, &format!("{ref_field}.name"), false)?;
                        let kind = self.string(reference, "kind", &format!("{ref_field}.kind"))?.unwrap_or("Secret");
                        // The core group is "" (the default); another group is a different kind.
                        let kind = match self.string(reference, "group", &format!("{ref_field}.group"))? {
                            None | Some("" | "core") => kind.to_owned(),
                            Some(group) => format!("{kind}.{group}"),
                        };
                        let namespace = self
                            .string(reference, "namespace", &format!("{ref_field}.namespace"))?
                            .unwrap_or(&self.namespace);
                        self.reference_part(namespace, &format!("{ref_field}.namespace"), true)?;
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
