//! The command line, declared with clap: `--help` for each subcommand, `help SUBCOMMAND`,
//! `--version`, `--`, shell completions, and file names taken as OS strings (a name that is
//! not UTF-8 is read like any other). Usage errors exit 2, as clap does by default.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use sni_guard::config::Mode;

use crate::plugin::{Request, DEFAULT_URL};

const ABOUT: &str = "Find gateway servers a browser can coalesce onto one TLS connection (a 404 \
                     risk), and write sni-guard's configuration for them";

const LONG_ABOUT: &str = "\
sni-guard: find gateway servers a browser can coalesce onto one connection (a 404 risk with
HTTP/2 connection coalescing), and write sni-guard's configuration for them. Offline: reads
Istio and Gateway API Gateways and kubernetes.io/tls Secrets, as

  kubectl get gateways.networking.istio.io,gateways.gateway.networking.k8s.io,secrets -A -o yaml

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
        long_about = "Servers on one gateway workload and port that a browser can reach over one \
                      connection: a certificate one presents covers a host of the other \
                      (OverlappingCertificates), or their hosts overlap (OverlappingHostnames). \
                      Servers at risk together are one conflict. A certificate wildcard \
                      (*.acme.test) covers exactly one label (api.acme.test, not a.b.acme.test); \
                      a server's host wildcard matches any depth. Servers that cannot answer 404 \
                      (TLS passthrough, ISTIO_MUTUAL, plain text) are listed as not at risk.",
        after_help = EXIT_STATUS
    )]
    Audit(AuditArgs),
    /// sni-guard's plugin configuration (JSON) for the gateway pods with these labels
    #[command(
        long_about = "sni-guard's plugin configuration (JSON) for the gateway pods with these \
                      labels. --wasmplugin prints a whole WasmPlugin (YAML): for Istio Gateways it \
                      selects the pods by label, in --namespace (default istio-system); for a \
                      Gateway API Gateway (select gateway.networking.k8s.io/gateway-name=NAME) it \
                      targets the Gateway itself, in the Gateway's namespace.",
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
    /// Gateways and Secrets in JSON or YAML: files, directories (their .yaml, .yml and .json
    /// files), or - for standard input, the default
    #[arg(value_name = "FILE|DIR|-", value_parser = clap::value_parser!(PathBuf))]
    pub paths: Vec<PathBuf>,
}

/// Where certificates come from besides the Secrets in the input.
#[derive(Debug, Clone, Default, Args)]
pub struct CertificateArgs {
    /// The certificate an Istio server's tls.serverCertificate PATH names, read from FILE (a
    /// PEM copy of the file mounted in the gateway pod); PATH alone reads PATH itself
    #[arg(
        long = "server-certificate",
        value_name = "PATH[=FILE]",
        value_parser = OsStringValueParser::new().try_map(parse_server_certificate)
    )]
    pub server_certificates: Vec<ServerCertificateFile>,
    /// The namespace of the Istio gateway pods, where Istio reads credentialName Secrets
    /// (default istio-system); LABELS: limits it to the pods with those labels, e.g.
    /// istio=ingressgateway:istio-ingress
    #[arg(long = "gateway-namespace", value_name = "[LABELS:]NAMESPACE", value_parser = parse_gateway_namespace)]
    pub gateway_namespaces: Vec<GatewayNamespace>,
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
    pub certificates: CertificateArgs,
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
    pub certificates: CertificateArgs,
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

/// `--gateway-namespace`: where the Istio gateway pods (all, or those with `labels`) run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayNamespace {
    /// Empty: every Istio gateway workload.
    pub labels: BTreeMap<String, String>,
    pub namespace: String,
}

/// `NAMESPACE` or `KEY=VALUE[,KEY=VALUE]:NAMESPACE`; a label never holds `:`, so the last one
/// separates.
pub fn parse_gateway_namespace(text: &str) -> Result<GatewayNamespace, String> {
    let (labels, namespace) = match text.rsplit_once(':') {
        Some((labels, namespace)) => (parse_labels(labels)?, namespace),
        None => (BTreeMap::new(), text),
    };
    if namespace.is_empty() || !namespace.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(format!("{namespace:?} is not a namespace name"));
    }
    Ok(GatewayNamespace { labels, namespace: namespace.to_owned() })
}

/// `--server-certificate`: the path an Istio server names in `tls.serverCertificate`, and the
/// local file holding that certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertificateFile {
    pub path: String,
    pub file: PathBuf,
}

/// `PATH=FILE` or `PATH`. PATH is compared with the Gateway's text, so it must be UTF-8;
/// FILE is a local file name and may be any OS string.
pub fn parse_server_certificate(arg: OsString) -> Result<ServerCertificateFile, String> {
    let (path, file) = split_at_equals(arg)?;
    if path.is_empty() {
        return Err("PATH is empty: expected PATH[=FILE], PATH as in tls.serverCertificate".into());
    }
    let file = file.map_or_else(|| PathBuf::from(&path), PathBuf::from);
    Ok(ServerCertificateFile { path, file })
}

#[cfg(unix)]
fn split_at_equals(arg: OsString) -> Result<(String, Option<OsString>), String> {
    use std::os::unix::ffi::OsStringExt;
    let mut bytes = arg.into_vec();
    let file = bytes.iter().position(|&b| b == b'=').map(|eq| {
        let file = bytes.split_off(eq + 1);
        bytes.pop();
        OsString::from_vec(file)
    });
    let path = String::from_utf8(bytes).map_err(|_| "PATH is not UTF-8, so no Gateway can name it".to_owned())?;
    Ok((path, file))
}

#[cfg(not(unix))]
fn split_at_equals(arg: OsString) -> Result<(String, Option<OsString>), String> {
    let text = arg.into_string().map_err(|_| "not UTF-8".to_owned())?;
    Ok(match text.split_once('=') {
        Some((path, file)) => (path.to_owned(), Some(file.into())),
        None => (text, None),
    })
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
        match parse("merge x.json --gateway-namespace istio=ingressgateway:istio-ingress --server-certificate /a=b")
            .unwrap()
            .command
        {
            Command::Merge(m) => {
                assert_eq!(m.certificates.gateway_namespaces[0].namespace, "istio-ingress");
                let file = &m.certificates.server_certificates[0];
                assert_eq!((file.path.as_str(), file.file.to_str()), ("/a", Some("b")));
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
            "audit --gateway-namespace Bad_NS",
        ] {
            let err = parse(bad).expect_err(bad);
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn server_certificate_files_may_have_any_name() {
        use std::os::unix::ffi::OsStringExt;
        let arg = OsString::from_vec(b"/etc/istio/certs/org.pem=\xff.pem".to_vec());
        let parsed = parse_server_certificate(arg).unwrap();
        assert_eq!(parsed.path, "/etc/istio/certs/org.pem");
        assert_eq!(parsed.file.as_os_str().len(), 5);
        let alone = parse_server_certificate("/certs/a.pem".into()).unwrap();
        assert_eq!(alone.file, PathBuf::from("/certs/a.pem"));
        assert!(parse_server_certificate(OsString::from_vec(b"\xff=a".to_vec())).is_err());
        assert!(parse_server_certificate("=a".into()).is_err());
    }

    #[test]
    fn gateway_namespaces() {
        assert_eq!(parse_gateway_namespace("istio-ingress").unwrap().labels, BTreeMap::new());
        let scoped = parse_gateway_namespace("istio=ingressgateway,app=gw:ingress").unwrap();
        assert_eq!(scoped.labels.len(), 2);
        assert_eq!(scoped.namespace, "ingress");
        assert!(parse_gateway_namespace("istio:").is_err());
    }
}
