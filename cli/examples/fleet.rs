//! Prints a generated fleet (`cli/tests/support/fleet.rs`) as `kubectl get ... -A -o yaml`
//! would: the benchmark's and the Envoy tests' input.
//!
//! `cargo run --release -p sni-guard-cli --example fleet -- SERVERS [wildcard|san]`

#[path = "../tests/support/certs.rs"]
mod certs;
#[path = "../tests/support/fleet.rs"]
mod fleet;

use std::io::Write;
use std::process::ExitCode;

use fleet::{Certificates, Fleet, OTHER_SERVERS};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let servers = args.first().and_then(|n| n.parse::<usize>().ok()).filter(|&n| n >= OTHER_SERVERS);
    let certificates = match args.get(1).map(String::as_str) {
        None | Some("wildcard") => Some(Certificates::Wildcard),
        Some("san") => Some(Certificates::San),
        Some(_) => None,
    };
    let (Some(servers), Some(certificates), true) = (servers, certificates, args.len() <= 2) else {
        eprintln!("usage: fleet SERVERS [wildcard|san] (SERVERS: {OTHER_SERVERS} or more)");
        return ExitCode::from(2);
    };
    let yaml = Fleet { servers, certificates }.yaml();
    match std::io::stdout().lock().write_all(yaml.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet: cannot write: {e}");
            ExitCode::FAILURE
        }
    }
}
