//! The command line, declared with clap: `--help` for each subcommand, `help SUBCOMMAND`,
//! `--version`, `--`, shell completions, and file names taken as OS strings (a name that is
//! not UTF-8 is read like any other). Usage errors exit 2, as clap does by default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sni_guard::config::Mode;

use crate::plugin::{Request, DEFAULT_URL};

const ABOUT: &str = "Find gateway servers a browser can coalesce onto one TLS connection (a 404 \
                     risk), and write sni-guard's configuration for them";

const LONG_ABOUT: &str = "\
sni-guard: find gateway servers a browser can coalesce onto one connection (a 404 risk with
HTTP/2 connection coalescing), and write sni-guard's configuration for them. Offline: reads
Istio and Gateway API Gateways, as

  kubectl get gateways.networking.istio.io,gateways.gateway.networking.k8s.io -A -o yaml

prints them, or a directory of manifests, from FILE|DIR arguments or standard input.";

const EXIT_STATUS: &str = "\
Exit status: 0 no conflict (or output written), 1 conflicts found (audit) or a
configuration the filter would refuse (config), 2 bad input or usage.";

#[derive(Debug, Parser)]
#[command(
    name = "sni-guard",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXIT_STATUS,
    arg_required_else_help = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Servers on one gateway workload and port that a browser can reach over one connection
    #[command(
        long_about = "Servers on one gateway workload and port that share a credential, or whose \
                      hosts collide (the same host, or a wildcard covering another server's host); \
                      servers that cannot 404 (TLS passthrough, ISTIO_MUTUAL, plain text) listed \
                      as not at risk.",
        after_help = EXIT_STATUS
    )]
    Audit(AuditArgs),
    /// sni-guard's plugin configuration (JSON) for the gateway pods with these labels
    #[command(
        long_about = "sni-guard's plugin configuration (JSON) for the gateway pods with these \
                      labels; --wasmplugin prints a whole WasmPlugin (YAML) in --namespace \
                      (default istio-system). For a Gateway API Gateway, select \
                      gateway.networking.k8s.io/gateway-name=NAME.",
        after_help = EXIT_STATUS
    )]
    Config(ConfigArgs),
    /// For each conflict, the merged Gateway: one server, all the hosts, one certificate
    #[command(after_help = EXIT_STATUS)]
    Merge(MergeArgs),
    /// A completion script for SHELL, on standard output
    #[command(long_about = "A completion script for SHELL, on standard output. For bash: \
                      `sni-guard completions bash > ~/.local/share/bash-completion/completions/sni-guard`.")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where the Kubernetes objects come from.
#[derive(Debug, Clone, Args)]
pub struct Inputs {
    /// Gateways in JSON or YAML: files, directories (their .yaml, .yml and .json
    /// files), or - for standard input, the default
    #[arg(value_name = "FILE|DIR|-", value_parser = clap::value_parser!(PathBuf))]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Readable text, in 100 columns
    #[value(alias = "table")]
    Text,
    /// One JSON document, for tools
    Json,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub inputs: Inputs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Answer 421
    Enforce,
    /// Count and log, let the request through
    #[value(name = "dry_run", alias = "dry-run")]
    DryRun,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The gateway pods' labels, as kubectl -l takes them (e.g. istio=ingressgateway); for a
    /// Gateway API Gateway, gateway.networking.k8s.io/gateway-name=NAME
    #[arg(short = 'l', long, required = true, value_name = "KEY=VALUE[,KEY=VALUE]", value_parser = parse_labels)]
    pub selector: Vec<BTreeMap<String, String>>,
    /// The gateway workload's namespace: picks Gateway API Gateways, and is where the
    /// WasmPlugin goes
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Only the servers on this port
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub port: Option<u32>,
    /// What the filter does with a misdirected request
    #[arg(long, value_enum, default_value_t = ModeArg::Enforce)]
    pub mode: ModeArg,
    /// Print a whole WasmPlugin (YAML) instead of the configuration alone
    #[arg(long)]
    pub wasmplugin: bool,
    /// The module's URL in the WasmPlugin
    #[arg(long, value_name = "URL", requires = "wasmplugin", default_value = DEFAULT_URL)]
    pub url: String,
    #[command(flatten)]
    pub inputs: Inputs,
}

impl ConfigArgs {
    pub fn request(&self) -> Request {
        Request {
            labels: self.selector.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
            namespace: self.namespace.clone(),
            port: self.port,
            mode: match self.mode {
                ModeArg::Enforce => Mode::Enforce,
                ModeArg::DryRun => Mode::DryRun,
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    #[command(flatten)]
    pub inputs: Inputs,
}

/// `KEY=VALUE[,KEY=VALUE]`, as `kubectl -l` takes equality selectors.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for pair in text.split(',') {
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                labels.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            _ => return Err(format!("{pair:?} is not KEY=VALUE")),
        }
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sni-guard").chain(line.split_whitespace()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_each_subcommand() {
        match parse("audit").unwrap().command {
            Command::Audit(a) => {
                assert_eq!(a.output, Output::Text);
                assert!(a.inputs.paths.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match parse("audit --output=json gw.yaml secrets/ -- -odd.yaml").unwrap().command {
            Command::Audit(a) => {
                assert_eq!(a.output, Output::Json);
                assert_eq!(a.inputs.paths, [PathBuf::from("gw.yaml"), "secrets/".into(), "-odd.yaml".into()]);
            }
            other => panic!("{other:?}"),
        }
        match parse(
            "config --selector istio=ingressgateway,app=gw -l x=y --port 443 --mode dry_run --wasmplugin --url oci://x dir",
        )
        .unwrap()
        .command
        {
            Command::Config(c) => {
                let request = c.request();
                assert_eq!(request.labels.len(), 3);
                assert_eq!(request.port, Some(443));
                assert_eq!(request.mode, Mode::DryRun);
                assert!(c.wasmplugin);
                assert_eq!(c.url, "oci://x");
                assert_eq!(c.inputs.paths.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_bad_usage() {
        for bad in [
            "",
            "lint",
            "audit --output yaml",
            "audit --selector a=b",
            "config",
            "config --selector nope",
            "config --selector a=b --port x",
            "config --selector a=b --port 70000",
            "config --selector a=b --url u",
            "merge --bogus",
            "audit --output",
        ] {
            let err = parse(bad).expect_err(bad);
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }
}
