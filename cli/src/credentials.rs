//! Which certificate each server presents: its credentials resolved the way Istio and Gateway
//! API resolve them, against the Secrets in the input and the PEM files given on the command
//! line.
//!
//! - Istio `credentialName`: the Secret of that name in the gateway workload's namespace. A
//!   Gateway's selector does not say where its pods run, so that namespace is assumed
//!   (istio-system, where Istio installs its gateway) unless `--gateway-namespace` sets it.
//! - Istio `serverCertificate`: a file in the gateway pod, read from the copy that
//!   `--server-certificate PATH=FILE` names.
//! - Gateway API `certificateRefs`: a Secret, its namespace defaulting to the Gateway's.
//!
//! A credential that cannot be resolved leaves the server's certificate unknown: said, never
//! taken as safe.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::args::{GatewayNamespace, ServerCertificateFile};
use crate::certificate::{self, Certificate};
use crate::input::{shown, InputError};
use crate::model::{Credential, Server, Workload};
use crate::secrets::{Secret, SecretContent};

/// Where Istio installs its ingress gateway, and so where its Secrets usually are.
pub const DEFAULT_GATEWAY_NAMESPACE: &str = "istio-system";

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
            Source::File { path, .. } => write!(f, "file {path}"),
        }
    }
}

/// A certificate a server presents, and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Presented {
    pub source: Source,
    pub certificate: Certificate,
}

/// A credential whose certificate is not known.
#[derive(Debug, Clone, Serialize)]
pub struct Unknown {
    pub credential: Credential,
    /// What was looked for, and why it was not found.
    pub looked_for: String,
}

/// The certificates one server presents (a client gets one of them).
#[derive(Debug, Clone, Default, Serialize)]
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
}

/// Where the Istio gateway pods run: `--gateway-namespace` values, most specific first.
#[derive(Debug, Clone, Default)]
pub struct Namespaces {
    given: Vec<GatewayNamespace>,
}

impl Namespaces {
    pub fn new(given: &[GatewayNamespace]) -> Namespaces {
        let mut given = given.to_vec();
        // Label-scoped values before the general one; among equals, the later one wins.
        given.reverse();
        given.sort_by_key(|g| g.labels.is_empty());
        Namespaces { given }
    }

    /// The namespace of `workload`'s pods, and whether it was assumed rather than given.
    pub fn of(&self, workload: &Workload) -> (String, bool) {
        for given in &self.given {
            if given.labels.is_empty() || workload.runs_on(&given.labels, None) {
                return (given.namespace.clone(), false);
            }
        }
        (DEFAULT_GATEWAY_NAMESPACE.to_owned(), true)
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
    let files = read_files(files)?;
    let mut by_name: BTreeMap<(&str, &str), &Secret> = BTreeMap::new();
    for secret in secrets {
        by_name.insert((&secret.namespace, &secret.name), secret);
    }
    let mut resolution = Resolution::default();
    let mut missing_with_no_secrets = 0;
    for server in servers {
        let mut found = ServerCertificates::default();
        let at_risk = server.risk().is_ok();
        for credential in &server.credentials {
            let (secret_namespace, secret_name, assumed) = match credential {
                Credential::Files { server_certificate, .. } => {
                    match files.get(server_certificate.as_str()) {
                        Some((file, certificate)) => found.presented.push(Presented {
                            source: Source::File { path: server_certificate.clone(), file: file.clone() },
                            certificate: certificate.clone(),
                        }),
                        None => {
                            let looked_for = format!(
                                "file {server_certificate} is in the gateway pod: give a copy with \
                                 --server-certificate {server_certificate}=FILE"
                            );
                            if at_risk {
                                resolution.warnings.push(format!("{}: {looked_for}", server.label()));
                            }
                            found.unknown.push(Unknown { credential: credential.clone(), looked_for });
                        }
                    }
                    continue;
                }
                Credential::CertificateRef { kind, namespace, name } if kind == "Secret" => {
                    (namespace.clone(), name.clone(), None)
                }
                Credential::CertificateRef { kind, .. } => {
                    let looked_for = format!("{credential}: only Secrets are read, not {kind}");
                    if at_risk {
                        resolution.warnings.push(format!("{}: {looked_for}", server.label()));
                    }
                    found.unknown.push(Unknown { credential: credential.clone(), looked_for });
                    continue;
                }
                Credential::CredentialName(name) => {
                    let (namespace, assumed) = namespaces.of(&server.workload);
                    if assumed {
                        resolution.assumed.entry(namespace.clone()).or_default().insert(server.workload.to_string());
                    }
                    (namespace, name.clone(), Some(assumed))
                }
            };
            let secret = by_name.get(&(secret_namespace.as_str(), secret_name.as_str()));
            let problem = match secret.map(|s| &s.content) {
                Some(SecretContent::Certificate(certificate)) => {
                    found.presented.push(Presented {
                        source: Source::Secret { namespace: secret_namespace, name: secret_name },
                        certificate: certificate.clone(),
                    });
                    continue;
                }
                Some(SecretContent::Unreadable(problem)) => {
                    // The server uses it, so it has to be a certificate.
                    return Err(InputError(format!("{problem} (the certificate of {})", server.label())));
                }
                Some(SecretContent::NoCertificate) => {
                    let kind = secret.map_or("", |s| s.kind.as_str());
                    format!("Secret {secret_namespace}/{secret_name} (type {kind}) holds no tls.crt")
                }
                None => {
                    let mut problem = format!("Secret {secret_namespace}/{secret_name} is not in the input");
                    if assumed == Some(true) {
                        problem.push_str(" (namespace assumed)");
                    }
                    let elsewhere: Vec<&str> = secrets
                        .iter()
                        .filter(|s| s.name == secret_name && s.namespace != secret_namespace)
                        .map(|s| s.namespace.as_str())
                        .collect();
                    if !elsewhere.is_empty() {
                        problem.push_str(&format!(
                            "; a Secret of that name is in {}, where it is not looked for",
                            elsewhere.join(", ")
                        ));
                    }
                    problem
                }
            };
            // Standing alone on stderr, a warning says what the assumption was.
            let warning = match assumed {
                Some(true) => format!(
                    "{}; {secret_namespace} is assumed to be the namespace of the gateway pods ({}): \
                     --gateway-namespace sets it",
                    problem.replacen(" (namespace assumed)", "", 1),
                    server.workload
                ),
                _ => problem.clone(),
            };
            if at_risk {
                if secrets.is_empty() {
                    missing_with_no_secrets += 1;
                } else {
                    resolution.warnings.push(format!(
                        "{} ({}): {warning}",
                        server.label(),
                        credential_field(credential)
                    ));
                }
            }
            found.unknown.push(Unknown { credential: credential.clone(), looked_for: problem });
        }
        if server.credentials.is_empty() && at_risk {
            let looked_for = "no credential in its tls block".to_owned();
            resolution.warnings.push(format!("{}: {looked_for}", server.label()));
            found.unknown.push(Unknown { credential: Credential::CredentialName(String::new()), looked_for });
        }
        resolution.servers.push(found);
    }
    if missing_with_no_secrets > 0 {
        resolution.warnings.push(format!(
            "the input holds no Secret, so {missing_with_no_secrets} certificate(s) are unknown: add secrets to \
             `kubectl get` (see README) to check what the certificates cover"
        ));
    }
    for path in files.keys() {
        if !servers
            .iter()
            .flat_map(|s| &s.credentials)
            .any(|c| matches!(c, Credential::Files { server_certificate, .. } if server_certificate == path))
        {
            resolution.warnings.push(format!("--server-certificate {path}: no server names this file"));
        }
    }
    Ok(resolution)
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
fn read_files(files: &[ServerCertificateFile]) -> Result<BTreeMap<String, (String, Certificate)>, InputError> {
    let mut out = BTreeMap::new();
    for file in files {
        let name = shown(&file.file);
        let pem = std::fs::read(&file.file)
            .map_err(|e| InputError(format!("--server-certificate {}: {name}: cannot read: {e}", file.path)))?;
        let certificate = certificate::parse_pem(&pem)
            .map_err(|e| InputError(format!("--server-certificate {}: {name}: {e}", file.path)))?;
        out.insert(file.path.clone(), (name, certificate));
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
        assert_eq!(Namespaces::new(&[]).of(&ingress), ("istio-system".to_owned(), true));
        let given: Vec<GatewayNamespace> =
            ["gateways", "istio=ingressgateway:ingress"].iter().map(|g| parse_gateway_namespace(g).unwrap()).collect();
        let namespaces = Namespaces::new(&given);
        assert_eq!(namespaces.of(&ingress), ("ingress".to_owned(), false));
        assert_eq!(namespaces.of(&egress), ("gateways".to_owned(), false));
    }
}
