//! The `sni-guard` command: parse arguments, read the Gateways, run one subcommand, print,
//! and exit 0 (no conflict), 1 (conflicts) or 2 (bad input or usage).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use sni_guard_cli::args::{CertificateArgs, Cli, Command, Output};
use sni_guard_cli::credentials::{self, Namespaces, Resolution};
use sni_guard_cli::input::{self, Inventory};
use sni_guard_cli::plugin::{self, ConfigFailure};
use sni_guard_cli::render::{self, Style};
use sni_guard_cli::{audit, merge};

const NO_CONFLICT: u8 = 0;
const CONFLICT: u8 = 1;
const BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    // Arguments as OS strings: a file name that is not UTF-8 is a file name like any other.
    // Help and version exit 0, usage errors 2 (clap's own codes, matching ours).
    let cli = Cli::try_parse().unwrap_or_else(|e| e.exit());
    ExitCode::from(run(cli.command))
}

fn run(command: Command) -> u8 {
    match command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sni-guard", &mut script);
            emit(&String::from_utf8_lossy(&script), NO_CONFLICT)
        }
        Command::Audit(args) => {
            let Some(inventory) = load(&args.inputs.paths) else { return BAD_INPUT };
            let Some(resolution) = resolve(&inventory, &args.certificates) else { return BAD_INPUT };
            let report = audit::audit(&inventory.servers, &resolution.servers);
            let findings = render::Findings {
                servers: &inventory.servers,
                gateways: inventory.gateways,
                secrets: inventory.secrets.len(),
                resolution: &resolution,
                report: &report,
            };
            let text = match args.output {
                Output::Json => render::json(&findings),
                Output::Text => render::text(&findings, Style { colour: colour() }),
            };
            emit(&text, if report.conflicts.is_empty() { NO_CONFLICT } else { CONFLICT })
        }
        Command::Config(args) => {
            let Some(inventory) = load(&args.inputs.paths) else { return BAD_INPUT };
            let (request, wasmplugin, url) = (args.request(), args.wasmplugin, &args.url);
            let generated = plugin::generate(&inventory.servers, &request).and_then(|g| {
                let text = if wasmplugin {
                    // Checked like the JSON: the manifest embeds the same validated value.
                    plugin::to_json(&g.config)?;
                    plugin::wasm_plugin_yaml(&g, &request, url)
                } else {
                    plugin::to_json(&g.config)? + "\n"
                };
                Ok((g, text))
            });
            match generated {
                Ok((g, text)) => {
                    for note in &g.notes {
                        eprint!("{}", render::wrap("sni-guard: note: ", "    ", note));
                    }
                    emit(&text, NO_CONFLICT)
                }
                Err(ConfigFailure::Unusable(m)) => {
                    eprintln!("sni-guard: config: {m}");
                    BAD_INPUT
                }
                Err(ConfigFailure::Conflict(m)) => {
                    eprintln!("sni-guard: config: {m}");
                    CONFLICT
                }
            }
        }
        Command::Merge(args) => {
            let Some(inventory) = load(&args.inputs.paths) else { return BAD_INPUT };
            let Some(resolution) = resolve(&inventory, &args.certificates) else { return BAD_INPUT };
            let report = audit::audit(&inventory.servers, &resolution.servers);
            let text = merge::advice(&inventory.servers, &resolution.servers, &inventory.gateway_api_objects, &report);
            emit(&text, NO_CONFLICT)
        }
    }
}

/// Reads the Gateways, or says why not on stderr.
fn load(paths: &[PathBuf]) -> Option<Inventory> {
    let from_stdin = paths.is_empty() || paths.iter().any(|p| p.as_os_str() == "-");
    if from_stdin && std::io::stdin().is_terminal() {
        eprintln!(
            "sni-guard: no input: give files or directories, or pipe into it\n    \
             kubectl get gateways.networking.istio.io,gateways.gateway.networking.k8s.io,secrets -A -o yaml"
        );
        return None;
    }
    match input::load(paths) {
        Ok(inventory) => Some(inventory),
        Err(e) => {
            eprintln!("sni-guard: bad input: {e}");
            None
        }
    }
}

/// Each server's certificates, with warnings on stderr; or why not, as bad input.
fn resolve(inventory: &Inventory, args: &CertificateArgs) -> Option<Resolution> {
    let namespaces = Namespaces::new(&args.gateway_namespaces);
    match credentials::resolve(&inventory.servers, &inventory.secrets, &args.server_certificates, &namespaces) {
        Ok(resolution) => {
            for warning in &resolution.warnings {
                eprint!("{}", render::wrap("sni-guard: warning: ", "    ", warning));
            }
            Some(resolution)
        }
        Err(e) => {
            eprintln!("sni-guard: bad input: {e}");
            None
        }
    }
}

/// Colour only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes `text` and returns `code`; a reader that went away (`| head`) is not an error.
fn emit(text: &str, code: u8) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            eprintln!("sni-guard: cannot write output: {e}");
            BAD_INPUT
        }
    }
}
