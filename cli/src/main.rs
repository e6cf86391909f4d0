//! The `sni-guard` command: parse arguments, read the Gateways, run one subcommand, print,
//! and exit 0 (no conflict), 1 (conflicts, drift, a configuration the filter refuses) or 2 (bad
//! input or usage).

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use sni_guard_cli::args::{AuditArgs, CertificateArgs, Cli, Command, ConfigArgs, Output};
use sni_guard_cli::audit::report::{self, Style};
use sni_guard_cli::audit::{conflicts, merge};
use sni_guard_cli::cluster::inventory::{self, Inventory};
use sni_guard_cli::cluster::model::join_labels;
use sni_guard_cli::deployed::read::{self as deployed, Applies};
use sni_guard_cli::deployed::{check, drift};
use sni_guard_cli::generate::manifest::{self, Kind, Manifest};
use sni_guard_cli::generate::plugin::{self, ConfigFailure};
use sni_guard_cli::generate::{client_apply, image, overlay};
use sni_guard_cli::text::{escape, wrap};
use sni_guard_cli::tls::credentials::{self, Namespaces, Resolution};

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
        Command::Audit(args) if !args.deployed.is_empty() => deployed_audit(&args),
        Command::Audit(args) => {
            let Some(inventory) = load(&args.inputs.paths) else { return BAD_INPUT };
            let Some(resolution) = resolve(&inventory, &args.certificates, true) else { return BAD_INPUT };
            let report = conflicts::audit(&inventory.servers, &resolution.servers);
            let findings = report::Findings {
                servers: &inventory.servers,
                gateways: inventory.gateways,
                secrets: inventory.secrets.len(),
                resolution: &resolution,
                report: &report,
            };
            let text = match args.output {
                Output::Json => report::json(&findings),
                Output::Text => report::text(&findings, Style { colour: colour() }),
            };
            let at_risk = !report.conflicts.is_empty() || !report.passthrough.is_empty();
            emit(&text, if at_risk { CONFLICT } else { NO_CONFLICT })
        }
        Command::Config(args) => config(&args),
        Command::Check(args) => {
            if args.paths.is_empty() && std::io::stdin().is_terminal() {
                eprintln!("sni-guard: check: no input: give the files you apply (WasmPlugin, TrafficExtension, EnvoyFilter, JSON), or pipe them in");
                return BAD_INPUT;
            }
            let reading = match deployed::read(&args.paths) {
                Ok(reading) => reading,
                Err(e) => {
                    eprintln!("sni-guard: bad input: {}", escape(&e.to_string()));
                    return BAD_INPUT;
                }
            };
            let checked = check::check(&reading);
            if checked.accepted + checked.refused == 0 {
                eprint!("{}", checked.report);
                eprintln!("sni-guard: bad input: no sni-guard configuration in it");
                return BAD_INPUT;
            }
            emit(&checked.report, if checked.refused + checked.twice == 0 { NO_CONFLICT } else { CONFLICT })
        }
        Command::Merge(args) => {
            let Some(inventory) = load(&args.inputs.paths) else { return BAD_INPUT };
            let Some(resolution) = resolve(&inventory, &args.certificates, true) else { return BAD_INPUT };
            let report = conflicts::audit(&inventory.servers, &resolution.servers);
            match merge::advice(&inventory.servers, &resolution.servers, &inventory.gateway_api_objects, &report) {
                Ok(text) => emit(&text, NO_CONFLICT),
                Err(e) => {
                    eprintln!("sni-guard: merge: {}", escape(&e));
                    BAD_INPUT
                }
            }
        }
    }
}

fn config(args: &ConfigArgs) -> u8 {
    let kind = args.kind();
    let digest = args.digest_source();
    let usage = |message: &str| {
        eprintln!("sni-guard: config: {}", escape(message));
        BAD_INPUT
    };
    match kind {
        Kind::Json | Kind::EnvoyFilter if args.image.is_some() || digest.is_some() => {
            return usage(
                "--image and its digest (--oci-layout, --wasm, --sha256, --example) are for --kind wasmplugin and \
                 trafficextension; an EnvoyFilter reads the module from a file in the pod (--module-path)",
            )
        }
        _ if args.overlay.is_some() && kind != Kind::WasmPlugin => {
            return usage("--overlay writes an overlay on the base's WasmPlugin: give --kind wasmplugin")
        }
        Kind::Json if !args.match_ports.is_empty() => {
            return usage("--match-port is for --kind wasmplugin, trafficextension and envoyfilter")
        }
        Kind::WasmPlugin | Kind::TrafficExtension if args.image.is_none() => {
            return usage(
                "this kind needs the module's location: --image oci://REGISTRY/REPO:TAG with --oci-layout dist/oci \
                 (the image `make image` built) or --sha256 DIGEST, or --image https://HOST/sni-guard.wasm with --wasm \
                 FILE",
            )
        }
        _ => {}
    }
    let Some(inventory) = load(&args.inputs.paths) else { return BAD_INPUT };
    let request = args.request();
    let image = match &args.image {
        Some(url) => match image::resolve(url, digest.as_ref()) {
            Ok(image) => Some(image),
            Err(e) => return usage(&e.to_string()),
        },
        None => None,
    };
    let generated = plugin::generate(&inventory.servers, &request).and_then(|g| {
        let text = if kind == Kind::Json {
            plugin::to_json(&g.config)? + "\n"
        } else {
            let placement = manifest::placement(&g, &request, &inventory.services)?;
            let ports =
                manifest::match_ports(&inventory.servers, &g, &placement, &inventory.services, &args.match_ports);
            let mut gateways: Vec<String> = g
                .included
                .iter()
                .map(|&i| format!("{}/{}", inventory.servers[i].namespace, inventory.servers[i].gateway))
                .collect();
            gateways.sort();
            gateways.dedup();
            let servers = g.config.servers.len();
            let summary = format!(
                "{servers} {} from {} {} ({})",
                if servers == 1 { "server" } else { "servers" },
                gateways.len(),
                if gateways.len() == 1 { "Gateway" } else { "Gateways" },
                gateways.join(", ")
            );
            manifest::yaml(&Manifest {
                kind,
                generated: &g,
                placement: &placement,
                image: image.as_ref(),
                module_path: &args.module_path,
                ports: &ports,
                summary,
                passthrough: g
                    .passthrough
                    .iter()
                    .map(|&i| format!("{} ({})", inventory.servers[i].label(), inventory.servers[i].hosts.join(", ")))
                    .collect(),
            })?
        };
        Ok((g, text))
    });
    match generated {
        Ok((g, text)) => {
            for note in &g.notes {
                eprint!("{}", wrap("sni-guard: note: ", "    ", note));
            }
            if kind == Kind::Json && g.config.mode == sni_guard::config::Mode::DryRun {
                eprint!(
                    "{}",
                    wrap(
                        "sni-guard: note: ",
                        "    ",
                        "mode dry_run, the default for a first rollout: misdirected requests are counted and \
                         logged, not answered 421; --mode enforce once the dry run shows what you expect"
                    )
                );
            }
            if kind != Kind::Json {
                if let Some(advice) = client_apply::advice(&text) {
                    eprint!("{}", wrap("sni-guard: warning: ", "    ", &advice));
                }
            }
            match (&args.overlay, &args.base) {
                (Some(directory), Some(base)) => write_overlay(directory, &text, base),
                _ => emit(&text, NO_CONFLICT),
            }
        }
        Err(ConfigFailure::Unusable(m)) => {
            eprintln!("sni-guard: config: {}", escape(&m));
            BAD_INPUT
        }
        Err(ConfigFailure::Conflict(m)) => {
            eprintln!("sni-guard: config: {}", escape(&m));
            CONFLICT
        }
    }
}

/// `config --overlay DIR`: the overlay's two files into DIR, each whole or not at all.
fn write_overlay(directory: &Path, wasmplugin: &str, base: &str) -> u8 {
    let overlay = match overlay::overlay(wasmplugin, base, "`sni-guard config --overlay`") {
        Ok(overlay) => overlay,
        Err(e) => {
            eprintln!("sni-guard: config: {e}");
            return BAD_INPUT;
        }
    };
    let files = [("kustomization.yaml", &overlay.kustomization), (overlay::PATCH_FILE, &overlay.patch)];
    let written = std::fs::create_dir_all(directory).and_then(|()| {
        files.iter().try_for_each(|(name, text)| {
            let path = directory.join(name);
            let partial = directory.join(format!(".{name}.partial"));
            std::fs::write(&partial, text).and_then(|()| std::fs::rename(&partial, &path))
        })
    });
    match written {
        Ok(()) => {
            let names: Vec<String> = files.iter().map(|(name, _)| directory.join(name).display().to_string()).collect();
            eprintln!("sni-guard: wrote {}", names.join(" and "));
            NO_CONFLICT
        }
        Err(e) => {
            eprintln!("sni-guard: config: cannot write the overlay into {}: {e}", directory.display());
            BAD_INPUT
        }
    }
}

/// `audit --deployed`: each deployed configuration against the Gateways of its workload.
fn deployed_audit(args: &AuditArgs) -> u8 {
    let Some(inventory) = load(&args.inputs.paths) else { return BAD_INPUT };
    let reading = match deployed::read(&args.deployed) {
        Ok(reading) => reading,
        Err(e) => {
            eprintln!("sni-guard: bad input: --deployed {}", escape(&e.to_string()));
            return BAD_INPUT;
        }
    };
    if reading.found.is_empty() {
        eprintln!("sni-guard: bad input: --deployed: no sni-guard configuration in it");
        return BAD_INPUT;
    }
    let selector: Option<Applies> = (!args.selector.is_empty()).then(|| {
        let labels = args.selector.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
        let describe = format!("the gateway pods labelled {}", join_labels(&labels));
        Applies { labels, namespace: None, describe }
    });
    // The gateways of the input at risk: each needs a deployed configuration too. The audit's
    // warnings about certificates are its own business, not this comparison's.
    let Some(resolution) = resolve(&inventory, &args.certificates, false) else { return BAD_INPUT };
    let report = conflicts::audit(&inventory.servers, &resolution.servers);
    let passthrough_at_risk: BTreeSet<usize> = report.passthrough.iter().map(|p| p.server).collect();
    let mut seen = Vec::new();
    let mut comparisons = Vec::new();
    for found in &reading.found {
        // An EnvoyFilter carries one configuration per port: compare it once.
        let identity = (found.source.clone(), found.json.clone());
        if seen.contains(&identity) {
            continue;
        }
        seen.push(identity);
        let Some(applies) = selector.clone().or_else(|| found.applies.clone()) else {
            eprintln!(
                "sni-guard: bad input: {}: it does not say which gateway it is for: give --selector",
                escape(&found.to_string())
            );
            return BAD_INPUT;
        };
        match drift::compare(found, &inventory.servers, &applies, &passthrough_at_risk) {
            Ok(comparison) => comparisons.push(comparison),
            Err(e) => {
                eprint!("{}", wrap("sni-guard: bad input: ", "    ", &e));
                return BAD_INPUT;
            }
        }
    }
    let applied: Vec<Applies> =
        reading.found.iter().filter_map(|found| selector.clone().or_else(|| found.applies.clone())).collect();
    let findings = drift::Findings {
        given_twice: drift::twice(&reading),
        unprotected: drift::unprotected(&inventory.servers, &resolution.servers, &report, &applied),
        deployed: comparisons,
    };
    let text = match args.output {
        Output::Json => drift::json(&findings),
        Output::Text => drift::text(&findings),
    };
    emit(&text, if findings.found() { CONFLICT } else { NO_CONFLICT })
}

/// Reads the Gateways, or says why not on stderr.
fn load(paths: &[PathBuf]) -> Option<Inventory> {
    let from_stdin = paths.is_empty() || paths.iter().any(|p| p.as_os_str() == "-");
    if from_stdin && std::io::stdin().is_terminal() {
        eprintln!(
            "sni-guard: no input: give files or directories, or pipe into it\n    \
             kubectl get gateways.networking.istio.io,gateways.gateway.networking.k8s.io,services,secrets -A -o yaml"
        );
        return None;
    }
    match inventory::load(paths) {
        Ok(inventory) => Some(inventory),
        Err(e) => {
            eprintln!("sni-guard: bad input: {}", escape(&e.to_string()));
            None
        }
    }
}

/// Each server's certificates, with warnings on stderr (when `warn`); or why not, as bad input.
fn resolve(inventory: &Inventory, args: &CertificateArgs, warn: bool) -> Option<Resolution> {
    let namespaces = Namespaces::new(&args.gateway_namespaces, &inventory.services);
    match credentials::resolve(&inventory.servers, &inventory.secrets, &args.server_certificates, &namespaces) {
        Ok(resolution) => {
            for warning in resolution.warnings.iter().filter(|_| warn) {
                eprint!("{}", wrap("sni-guard: warning: ", "    ", warning));
            }
            Some(resolution)
        }
        Err(e) => {
            eprintln!("sni-guard: bad input: {}", escape(&e.to_string()));
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
