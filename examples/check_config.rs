//! Checks one sni-guard configuration with the filter's own parser, the one
//! `proxy_on_configure` runs: `cargo run -q --example check_config [FILE]` (stdin without FILE).
//! Prints `ok` and exits 0, or prints the refusal and exits 1; exit 2 when the file is unreadable.
//! The smallest use of the parser from outside the module; for what users apply (WasmPlugin,
//! TrafficExtension, EnvoyFilter, Envoy configuration or JSON) use `sni-guard check FILE`, which
//! the manifest tests run on everything shipped under envoyfilter/.

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut json = Vec::new();
    let read = match std::env::args_os().nth(1) {
        Some(path) => std::fs::read(&path).map(|bytes| json = bytes),
        None => std::io::stdin().read_to_end(&mut json).map(drop),
    };
    if let Err(e) = read {
        eprintln!("check_config: cannot read the configuration: {e}");
        return ExitCode::from(2);
    }
    match sni_guard::config::Settings::from_json(&json) {
        Ok(_) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}");
            ExitCode::FAILURE
        }
    }
}
