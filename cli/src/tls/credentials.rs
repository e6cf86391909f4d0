//! Which certificate each server presents: its credentials resolved the way Istio and Gateway
//! API resolve them, against the Secrets in the input and the PEM files given on the command
//! line.
//!
//! - Istio `credentialName`: the Secret of that name in the gateway workload's namespace. A
//!   Gateway's selector does not say where its pods run: `--gateway-namespace` says, else the
//!   Service in front of them in the input, else it is assumed (istio-system, where Istio
//!   installs its gateway).
//! - Istio `serverCertificate`: a file in the gateway pod, read from the copy that
//!   `--server-certificate PATH=FILE` names.
//! - Gateway API `certificateRefs`: a Secret, its namespace defaulting to the Gateway's.
//!
//! A credential that cannot be resolved leaves the server's certificate unknown: said, never
//! taken as safe.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::cluster::documents::InputError;
use crate::cluster::model::{Credential, Server, Workload};
use crate::cluster::names::{istio_credential, IstioCredential};
use crate::cluster::secrets::Secret;
use crate::cluster::services::{pods_namespace, PodsNamespace, Service};
use crate::text::{shown, Shown};
use crate::tls::certificate::{self, Certificate};
use crate::tls::secrets;

/// Where Istio installs its ingress gateway, and so where its Secrets usually are.
pub const DEFAULT_GATEWAY_NAMESPACE: &str = "istio-system";

/// `--gateway-namespace`: where the Istio gateway pods (all, or those with `labels`) run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayNamespace {
    /// Empty: every Istio gateway workload.
    pub labels: BTreeMap<String, String>,
    pub namespace: String,
}

/// `--server-certificate`: the path an Istio server names in `tls.serverCertificate`, and the
/// local file holding that certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertificateFile {
    pub path: String,
    pub file: PathBuf,
}

/// Where a certificate was read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Secret {
        namespace: String,
        name: String,
    },
    /// `path` as the server names it, read from the local `file`.
    File {
        path: String,
        file: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Secret { namespace, name } => write!(f, "Secret {namespace}/{name}"),
            Source::File { path, .. } => write!(f, "file {}", Shown(path)),
        }
    }
}

/// A certificate a server presents, and where it came from.
#[derive(Debug, Clone)]
pub struct Presented {
    pub source: Source,
    /// Shared: servers presenting one certificate hold it once.
    pub certificate: Arc<Certificate>,
}

/// A credential whose certificate is not known.
#[derive(Debug, Clone, Serialize)]
pub struct Unknown {
    /// `None`: the server names no credential at all.
    pub credential: Option<Credential>,
    /// What was looked for, and why it was not found.
    pub looked_for: String,
}

/// The certificates one server presents (a client gets one of them).
#[derive(Debug, Clone, Default)]
pub struct ServerCertificates {
    pub presented: Vec<Presented>,
    pub unknown: Vec<Unknown>,
}

impl ServerCertificates {
    /// Every certificate the server may present is known.
    pub fn known(&self) -> bool {
        self.unknown.is_empty() && !self.presented.is_empty()
    }
}

/// The certificates of every server, in the servers' order, and what the person running the
/// audit should know about how they were found.
#[derive(Debug, Default)]
pub struct Resolution {
    pub servers: Vec<ServerCertificates>,
    pub warnings: Vec<String>,
    /// Namespaces assumed (not given) for Istio gateway workloads, with the workloads.
    pub assumed: BTreeMap<String, BTreeSet<String>>,
    /// Where each Istio gateway workload whose credentialName Secrets were looked up runs, and
    /// how that was decided.
    pub namespaces: BTreeMap<String, (String, Decided)>,
}

/// How the namespace of a workload's pods was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decided {
    /// `--gateway-namespace`.
    Given,
    /// The Services in front of the pods (`Service a/b`) are there.
    Service(String),
    /// Services in front of pods with these labels are in several namespaces (as many
    /// deployments); the first one's was taken.
    SeveralServices(String),
    /// Nothing says: `DEFAULT_GATEWAY_NAMESPACE`.
    Assumed,
}

/// Where the Istio gateway pods run: `--gateway-namespace` values, most specific first, else
/// the Services in front of them.
#[derive(Debug, Clone, Default)]
pub struct Namespaces<'a> {
    given: Vec<GatewayNamespace>,
    services: &'a [Service],
    /// Each workload's answer, found once: a cluster dump may hold thousands of Services.
    found: RefCell<BTreeMap<Workload, (String, Decided)>>,
}

impl<'a> Namespaces<'a> {
    pub fn new(given: &[GatewayNamespace], services: &'a [Service]) -> Namespaces<'a> {
        let mut given = given.to_vec();
        // Label-scoped values before the general one; among equals, the later one wins.
        given.reverse();
        given.sort_by_key(|g| g.labels.is_empty());
        Namespaces { given, services, found: RefCell::new(BTreeMap::new()) }
    }

    /// The namespace of `workload`'s pods, and how it was decided.
    pub fn of(&self, workload: &Workload) -> (String, Decided) {
        if let Some(found) = self.found.borrow().get(workload) {
            return found.clone();
        }
        let found = self.decide(workload);
        self.found.borrow_mut().insert(workload.clone(), found.clone());
        found
    }

    fn decide(&self, workload: &Workload) -> (String, Decided) {
        for given in &self.given {
            if given.labels.is_empty() || workload.runs_on(&given.labels, None) {
                return (given.namespace.clone(), Decided::Given);
            }
        }
        let found = match workload {
            Workload::Selector(labels) => pods_namespace(self.services, labels),
            Workload::Gateway { .. } => PodsNamespace::Unknown,
        };
        match &found {
            PodsNamespace::Found { namespace, .. } => (namespace.to_string(), Decided::Service(found.services())),
            PodsNamespace::Several(services) => {
                (services[0].namespace.clone(), Decided::SeveralServices(found.services()))
            }
            PodsNamespace::Unknown => (DEFAULT_GATEWAY_NAMESPACE.to_owned(), Decided::Assumed),
        }
    }
}

/// Resolves every server's credentials. Only servers that terminate TLS and route HTTP get
/// warnings about what is missing: the others cannot coalesce anyway.
pub fn resolve(
    servers: &[Server],
    secrets: &[Secret],
    files: &[ServerCertificateFile],
    namespaces: &Namespaces,
) -> Result<Resolution, InputError> {
    let mut namespaces_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for secret in secrets {
        namespaces_of.entry(&secret.name).or_default().push(&secret.namespace);
    }
    let resolver = Resolver {
        namespaces_of,
        by_name: secrets.iter().map(|s| ((s.namespace.as_str(), s.name.as_str()), s)).collect(),
        read: RefCell::new(BTreeMap::new()),
        files: read_files(files)?,
        namespaces,
    };
    let mut resolution = Resolution::default();
    let mut missing_with_no_secrets = 0;
    for server in servers {
        let mut found = ServerCertificates::default();
        let at_risk = server.risk().is_ok();
        for credential in &server.credentials {
            match resolver.lookup(server, credential, &mut resolution)? {
                Lookup::Found(presented) => found.presented.push(presented),
                Lookup::Missing { looked_for, warning, secret } => {
                    // With no Secret in the input at all, one warning says it for all of them.
                    if at_risk && secret && secrets.is_empty() {
                        missing_with_no_secrets += 1;
                    } else if at_risk {
                        let field = credential_field(credential);
                        resolution.warnings.push(format!("{} ({field}): {warning}", server.label()));
                    }
                    found.unknown.push(Unknown { credential: Some(credential.clone()), looked_for });
                }
            }
        }
        if server.credentials.is_empty() && at_risk {
            let looked_for = "no credential in its tls block".to_owned();
            resolution.warnings.push(format!("{} (tls): {looked_for}", server.label()));
            found.unknown.push(Unknown { credential: None, looked_for });
        }
        resolution.servers.push(found);
    }
    if missing_with_no_secrets > 0 {
        resolution.warnings.push(format!(
            "the input holds no Secret, so {missing_with_no_secrets} certificate(s) are unknown: add secrets to \
             `kubectl get` (see README) to check what the certificates cover"
        ));
    }
    // A TLS Secret no server uses need not hold a certificate (a placeholder, one half issued):
    // said, and skipped.
    for secret in secrets.iter().filter(|s| s.is_tls()) {
        let key = (secret.namespace.as_str(), secret.name.as_str());
        if !resolver.read.borrow().contains_key(&key) {
            if let Err(problem) = secrets::certificate(secret) {
                resolution.warnings.push(format!(
                    "Secret {}/{} ({}): {problem}; no server uses it, so it is skipped",
                    secret.namespace, secret.name, secret.kind
                ));
            }
        }
    }
    for path in resolver.files.keys() {
        let named = servers
            .iter()
            .flat_map(|s| &s.credentials)
            .any(|c| matches!(c, Credential::Files { server_certificate, .. } if server_certificate == path));
        if !named {
            resolution.warnings.push(format!("--server-certificate {}: no server names this file", Shown(path)));
        }
    }
    Ok(resolution)
}

/// What looking one credential up gave.
enum Lookup {
    Found(Presented),
    /// Not found: what was looked for (the report's words), the warning for stderr (which,
    /// standing alone, says more), and whether a Secret was looked for.
    Missing {
        looked_for: String,
        warning: String,
        secret: bool,
    },
}

impl Lookup {
    fn missing(looked_for: String) -> Lookup {
        Lookup::Missing { warning: looked_for.clone(), looked_for, secret: false }
    }
}

/// A Secret's certificate, or why it holds none.
type CertificateOrWhyNot = Result<Arc<Certificate>, String>;

/// The certificates in the input, found as Istio and Gateway API find them.
struct Resolver<'a> {
    /// Secret name -> the namespaces holding a Secret of that name, in input order.
    namespaces_of: BTreeMap<&'a str, Vec<&'a str>>,
    by_name: BTreeMap<(&'a str, &'a str), &'a Secret>,
    /// The certificate of each Secret a server uses, read once however many use it.
    read: RefCell<BTreeMap<(&'a str, &'a str), CertificateOrWhyNot>>,
    /// `tls.serverCertificate` path -> (the local file, as shown; its certificate)
    files: BTreeMap<String, (String, Arc<Certificate>)>,
    namespaces: &'a Namespaces<'a>,
}

impl<'a> Resolver<'a> {
    /// Records in `assumed` the namespace assumed for an Istio workload.
    fn lookup(
        &self,
        server: &Server,
        credential: &Credential,
        resolution: &mut Resolution,
    ) -> Result<Lookup, InputError> {
        match credential {
            Credential::Files { server_certificate, .. } => Ok(match self.files.get(server_certificate) {
                Some((file, certificate)) => Lookup::Found(Presented {
                    source: Source::File { path: server_certificate.clone(), file: file.clone() },
                    certificate: certificate.clone(),
                }),
                None => Lookup::missing(format!(
                    "file {path} is in the gateway pod: give a copy with --server-certificate {path}=FILE",
                    path = Shown(server_certificate)
                )),
            }),
            Credential::CertificateRef { kind, namespace, name } if kind == "Secret" => {
                self.secret(server, namespace, name, None)
            }
            Credential::CertificateRef { kind, .. } => {
                Ok(Lookup::missing(format!("{credential}: only Secrets are read, not {}", Shown(kind))))
            }
            Credential::CredentialName(written) => {
                let (namespace, decided) = self.namespaces.of(&server.workload);
                let was_assumed = decided == Decided::Assumed;
                if was_assumed {
                    resolution.assumed.entry(namespace.clone()).or_default().insert(server.workload.to_string());
                }
                resolution.namespaces.insert(server.workload.to_string(), (namespace.clone(), decided));
                // As Istio reads it (checked when the Gateway was read).
                match istio_credential(written) {
                    Ok(IstioCredential::Secret { namespace: Some(other), .. }) if other != namespace => {
                        Ok(Lookup::missing(format!(
                            "credentialName {} names a Secret in {other}, and Istio serves a gateway only the Secrets \
                             of its pods' namespace, {namespace}{}",
                            Shown(written),
                            if was_assumed { " (assumed: --gateway-namespace sets it)" } else { "" }
                        )))
                    }
                    Ok(IstioCredential::Secret { name, .. }) => {
                        self.secret(server, &namespace, name, Some(was_assumed))
                    }
                    Ok(IstioCredential::NotASecret(why)) => Ok(Lookup::missing(format!("credentialName {why}"))),
                    Err(problem) => Ok(Lookup::missing(format!("credentialName {}: {problem}", Shown(written)))),
                }
            }
        }
    }

    /// The certificate `secret` holds, read the first time it is asked for.
    fn certificate(&self, secret: &'a Secret) -> CertificateOrWhyNot {
        let key = (secret.namespace.as_str(), secret.name.as_str());
        self.read.borrow_mut().entry(key).or_insert_with(|| secrets::certificate(secret).map(Arc::new)).clone()
    }

    /// The Secret `namespace/name`; `assumed` says, for Istio, whether the namespace was.
    fn secret(
        &self,
        server: &Server,
        namespace: &str,
        name: &str,
        assumed: Option<bool>,
    ) -> Result<Lookup, InputError> {
        let looked_for = match self.by_name.get(&(namespace, name)) {
            Some(secret) => {
                return Ok(match self.certificate(secret) {
                    Ok(certificate) => Lookup::Found(Presented {
                        source: Source::Secret { namespace: namespace.to_owned(), name: name.to_owned() },
                        certificate,
                    }),
                    // Unknown, with the reason, as a Secret not in the input is.
                    Err(problem) => Lookup::missing(format!("Secret {namespace}/{name}: {problem}")),
                });
            }
            None => format!("Secret {namespace}/{name} is not in the input"),
        };
        let elsewhere: Vec<&str> =
            self.namespaces_of.get(name).into_iter().flatten().copied().filter(|ns| *ns != namespace).collect();
        let elsewhere = match elsewhere.as_slice() {
            [] => String::new(),
            found => format!("; a Secret of that name is in {}, where it is not looked for", found.join(", ")),
        };
        Ok(match assumed {
            Some(true) => Lookup::Missing {
                looked_for: format!("{looked_for} (namespace assumed){elsewhere}"),
                warning: format!(
                    "{looked_for}{elsewhere}; {namespace} is assumed to be the namespace of the gateway pods \
                     ({}): --gateway-namespace sets it",
                    server.workload
                ),
                secret: true,
            },
            _ => Lookup::Missing {
                looked_for: format!("{looked_for}{elsewhere}"),
                warning: format!("{looked_for}{elsewhere}"),
                secret: true,
            },
        })
    }
}

fn credential_field(credential: &Credential) -> &'static str {
    match credential {
        Credential::CredentialName(_) => "tls.credentialName",
        Credential::Files { .. } => "tls.serverCertificate",
        Credential::CertificateRef { .. } => "tls.certificateRefs",
    }
}

/// Reads each `--server-certificate` file: a file that cannot be read or holds no
/// certificate is bad input.
fn read_files(files: &[ServerCertificateFile]) -> Result<BTreeMap<String, (String, Arc<Certificate>)>, InputError> {
    let mut out = BTreeMap::new();
    for file in files {
        let name = shown(&file.file);
        let pem = std::fs::read(&file.file)
            .map_err(|e| InputError(format!("--server-certificate {}: {name}: cannot read: {e}", file.path)))?;
        let certificate = certificate::parse_pem(&pem)
            .map_err(|e| InputError(format!("--server-certificate {}: {name}: {e}", file.path)))?;
        out.insert(file.path.clone(), (name, Arc::new(certificate)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse_gateway_namespace;

    fn selector(pairs: &[(&str, &str)]) -> Workload {
        Workload::Selector(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn gateway_namespaces_most_specific_first() {
        let ingress = selector(&[("istio", "ingressgateway")]);
        let egress = selector(&[("istio", "egressgateway")]);
        assert_eq!(Namespaces::new(&[], &[]).of(&ingress), ("istio-system".to_owned(), Decided::Assumed));
        let given: Vec<GatewayNamespace> =
            ["gateways", "istio=ingressgateway:ingress"].iter().map(|g| parse_gateway_namespace(g).unwrap()).collect();
        let namespaces = Namespaces::new(&given, &[]);
        assert_eq!(namespaces.of(&ingress), ("ingress".to_owned(), Decided::Given));
        assert_eq!(namespaces.of(&egress), ("gateways".to_owned(), Decided::Given));
        // Without --gateway-namespace, the Service in front of the pods says.
        let services = [Service {
            namespace: "istio-ingress".into(),
            name: "istio-ingressgateway".into(),
            selector: [("istio".to_owned(), "ingressgateway".to_owned())].into(),
            ports: Vec::new(),
        }];
        let from_services = Namespaces::new(&[], &services);
        assert_eq!(
            from_services.of(&ingress),
            ("istio-ingress".to_owned(), Decided::Service("Service istio-ingress/istio-ingressgateway".into()))
        );
        assert_eq!(from_services.of(&egress), ("istio-system".to_owned(), Decided::Assumed));
    }
}
