//! `sni-guard audit`, `config` and `merge`: the logic behind the `sni-guard` command, kept
//! out of `main.rs` so it is tested without running a process.
//!
//! - `input`: Kubernetes objects (JSON or YAML, files, directories, stdin): Gateways (Istio and
//!   Gateway API) into the `model`'s servers, Secrets through `secrets`.
//! - `certificate`: X.509 certificates, and which host names they cover.
//! - `credentials`: which certificate each server presents (Secrets, PEM files).
//! - `audit`: which servers a browser can coalesce onto one connection, grouped in conflicts.
//! - `advice`: what fixes a conflict.
//! - `render`: the audit report as text or JSON.
//! - `plugin`: the filter configuration for one workload, made with the filter's own types.
//! - `merge`: merged Gateways for each conflict.
//! - `args`: the command line.

pub mod advice;
pub mod args;
pub mod audit;
pub mod certificate;
pub mod credentials;
pub mod input;
pub mod merge;
pub mod model;
pub mod plugin;
pub mod render;
pub mod secrets;

/// Certificates made with openssl at test time, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/support/certs.rs"]
pub(crate) mod test_certs;
