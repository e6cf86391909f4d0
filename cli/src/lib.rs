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
//! - `manifest`: that configuration in a WasmPlugin, TrafficExtension or EnvoyFilter, with the
//!   module pinned (`image`) and Envoy's same-name matcher in front (`matcher`).
//! - `deployed`: the configurations inside what a user applies, read back; `check` reports
//!   the filter's verdict on each, `drift` compares them with the Gateways.
//! - `merge`: merged Gateways for each conflict.
//! - `args`: the command line.

pub mod advice;
pub mod args;
pub mod audit;
pub mod certificate;
pub mod check;
pub mod credentials;
pub mod deployed;
pub mod drift;
pub mod image;
pub mod input;
pub mod manifest;
pub mod matcher;
pub mod merge;
pub mod model;
pub mod plugin;
pub mod render;
pub mod secrets;

/// Certificates made with openssl at test time, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/support/certs.rs"]
pub(crate) mod test_certs;
