//! `sni-guard audit`, `config` and `merge`: the logic behind the `sni-guard` command, kept
//! out of `main.rs` so it is tested without running a process.
//!
//! - `input`: Gateways (Istio and Gateway API, JSON or YAML, files, directories, stdin) into
//!   the `model`'s servers.
//! - `audit`: which servers a client can coalesce onto one connection.
//! - `render`: the audit report as a table or JSON.
//! - `plugin`: the filter configuration for one workload, made with the filter's own types.
//! - `merge`: merged Gateways for each conflict.
//! - `args`: the command line.

pub mod args;
pub mod audit;
pub mod input;
pub mod merge;
pub mod model;
pub mod plugin;
pub mod render;
