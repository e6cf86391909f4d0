//! `sni-guard audit`, `config`, `merge`, `check`: the logic behind the `sni-guard` command, kept
//! out of `main.rs` so it is tested without running a process. One folder a job, in the order
//! the data flows (ARCHITECTURE.md has the map, held by `tests/architecture.rs`):
//!
//! - `cluster`: reading the cluster: manifests into documents, Gateways into the `model`'s
//!   servers, Services.
//! - `tls`: X.509 certificates and which host names they cover, Secrets, and which certificate
//!   each server presents (`credentials`).
//! - `audit`: which servers a browser can coalesce onto one connection (`conflicts`), what fixes
//!   a conflict (`advice`), the report as text or JSON (`report`), merged Gateways (`merge`).
//! - `generate`: the filter configuration for one workload (`plugin`), in a WasmPlugin,
//!   TrafficExtension or EnvoyFilter (`manifest`) with the module pinned (`image`) and Envoy's
//!   same-name matcher in front (`matcher`).
//! - `deployed`: what a user applies, read back (`read`); `check` reports the filter's verdict on
//!   each configuration, `drift` compares them with the Gateways.
//! - `text`: wrapping, showing and escaping text; `yaml`: the YAML the CLI writes; `args`: the
//!   command line; `release`: the digests a release build names.

pub mod args;
pub mod audit;
pub mod cluster;
pub mod deployed;
pub mod generate;
pub mod release;
pub mod text;
pub mod tls;
pub mod yaml;

/// Certificates made with openssl at test time, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/support/certs.rs"]
pub(crate) mod test_certs;

/// Hostile strings and values for the property tests, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/support/hostile.rs"]
pub(crate) mod test_hostile;
