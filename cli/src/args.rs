//! The command line, declared with clap: `--help` for each subcommand, `help SUBCOMMAND`,
//! `--version`, `--`, shell completions, and file names taken as OS strings (a name that is
//! not UTF-8 is read like any other). Usage errors exit 2, as clap does by default.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use sni_guard::config::Mode;

use crate::generate::image::DigestSource;
use crate::generate::manifest::{valid_object_name, Kind, DEFAULT_MODULE_PATH};
use crate::generate::plugin::Request;
use crate::tls::credentials::{GatewayNamespace, ServerCertificateFile};

const ABOUT: &str = "Find gateway servers a browser can coalesce onto one TLS connection (a 404 \
                     risk), and write sni-guard's configuration for them";

const LONG_ABOUT: &str = "\
sni-guard: find gateway servers a browser can coalesce onto one connection (a 404 risk with
HTTP/2 connection coalescing), and write sni-guard's configuration for them. Offline: reads
Istio and Gateway API Gateways, the Services in front of the gateway pods, and
kubernetes.io/tls Secrets, as

  kubectl get gateways.networking.istio.io,gateways.gateway.networking.k8s.io,services,secrets -A -o yaml

prints them, or a directory of manifests, from FILE|DIR arguments or standard input.";

const EXIT_STATUS: &str = "\
Exit status: 0 no conflict (or output written), 1 conflicts found (audit), drift
(audit --deployed), a configuration the filter would refuse (config, check), 2 bad
input or usage.";

#[derive(Debug, Parser)]
#[command(
    name = "sni-guard",
    version = crate::release::version(),
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
    /// sni-guard's configuration for the gateway pods with these labels: JSON, or a whole
    /// WasmPlugin, TrafficExtension or EnvoyFilter
    #[command(
        long_about = "sni-guard's configuration for the gateway pods with these labels, from their \
                      Gateways: the JSON alone (--kind json, the default), or a whole WasmPlugin, \
                      TrafficExtension or EnvoyFilter ready to apply (YAML, with comments saying what \
                      was decided). For Istio Gateways the object selects the pods by label, in \
                      their namespace (--namespace, else that of the Service in front of them in the \
                      input, else istio-system); for a Gateway API Gateway (select \
                      gateway.networking.k8s.io/gateway-name=NAME) it targets the Gateway itself, in \
                      the Gateway's namespace. It is named after the workload (sni-guard-ingressgateway, \
                      sni-guard-NAME; --name sets another), so that two workloads get two objects. The \
                      mode is dry_run unless --mode enforce is given.",
        after_help = EXIT_STATUS
    )]
    Config(ConfigArgs),
    /// Read the sni-guard configuration in what you apply with the filter's own parser
    #[command(
        long_about = "Reads every sni-guard configuration in WasmPlugins, TrafficExtensions, \
                      EnvoyFilters, plain Envoy configurations or raw JSON with the filter's own \
                      parser and validator (what Envoy runs when it loads the filter), and checks that \
                      same_name_matcher is set exactly where Envoy's same-name matcher is in front of \
                      the filter, naming the test that matcher's parsed expression is. One line per \
                      configuration.",
        after_help = "Exit status: 0 every configuration accepted, 1 one refused, 2 bad input (or \
                      no sni-guard configuration in it) or usage."
    )]
    Check(CheckArgs),
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
    /// (default: that of the Service in front of them in the input, else istio-system); LABELS:
    /// limits it to the pods with those labels, e.g. istio=ingressgateway:istio-ingress
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
    /// Instead of the audit: compare the sni-guard configuration deployed in FILE (a
    /// WasmPlugin, TrafficExtension, EnvoyFilter, or JSON) with the Gateways; exit 1 on drift
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf))]
    pub deployed: Vec<PathBuf>,
    /// With --deployed: the gateway pods' labels, for a configuration that does not name its
    /// gateway (JSON); overrides what the deployed object selects
    #[arg(short = 'l', long, requires = "deployed", value_name = "KEY=VALUE[,KEY=VALUE]", value_parser = parse_labels)]
    pub selector: Vec<BTreeMap<String, String>>,
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
pub struct CheckArgs {
    /// Files holding sni-guard configurations (YAML or JSON), directories, or - for standard input
    #[arg(value_name = "FILE|DIR|-", value_parser = clap::value_parser!(PathBuf))]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// The configuration alone (JSON)
    Json,
    /// An Istio WasmPlugin (needs --image)
    Wasmplugin,
    /// An Istio TrafficExtension, Istio 1.31 and later (needs --image)
    Trafficextension,
    /// An Istio EnvoyFilter: the filter behind Envoy's same-name matcher, the module a file in the pod
    Envoyfilter,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The gateway pods' labels, as kubectl -l takes them (e.g. istio=ingressgateway); for a
    /// Gateway API Gateway, gateway.networking.k8s.io/gateway-name=NAME
    #[arg(short = 'l', long, required = true, value_name = "KEY=VALUE[,KEY=VALUE]", value_parser = parse_labels)]
    pub selector: Vec<BTreeMap<String, String>>,
    /// The gateway pods' namespace: picks Gateway API Gateways, and is where the object goes
    /// (default: that of the Service in front of the pods, else istio-system)
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Only the servers on this port
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub port: Option<u32>,
    /// The object's name (wasmplugin, trafficextension, envoyfilter), instead of sni-guard-
    /// and the workload's label values (or Gateway name)
    #[arg(long, value_name = "NAME", value_parser = parse_object_name)]
    pub name: Option<String>,
    /// Leave out the Istio PASSTHROUGH servers on a port where other servers terminate TLS
    /// (listed by default: a certificate those present may cover their hosts, and a browser
    /// would carry them there, to a 404)
    #[arg(long)]
    pub no_passthrough: bool,
    /// What the filter does with a misdirected request: dry_run (count and log) for a first
    /// rollout, enforce (421) once the dry run shows what you expect
    #[arg(long, value_enum, default_value_t = ModeArg::DryRun)]
    pub mode: ModeArg,
    /// What to print
    #[arg(long, value_enum, default_value_t = KindArg::Json)]
    pub kind: KindArg,
    /// Where Istio fetches the module (wasmplugin, trafficextension): oci://REGISTRY/REPO:TAG,
    /// https://HOST/PATH.wasm or file:///PATH.wasm
    #[arg(long, value_name = "URL")]
    pub image: Option<String>,
    /// For an oci:// image: the OCI image layout `make image` wrote (dist/oci), whose manifest
    /// digest becomes sha256
    #[arg(long, value_name = "DIR", value_parser = clap::value_parser!(PathBuf), group = "digest")]
    pub oci_layout: Option<PathBuf>,
    /// For an https:// (or file://) module: the .wasm file, whose sha256 is written
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(PathBuf), group = "digest")]
    pub wasm: Option<PathBuf>,
    /// The digest itself (sha256:HEX or HEX): an oci:// image's manifest digest, as `make push`
    /// prints it, or an https:// module's sha256
    #[arg(long, value_name = "DIGEST", group = "digest")]
    pub sha256: Option<String>,
    /// Write the placeholder digest (64 zeros, which no module matches) instead: only for the
    /// examples checked in under envoyfilter/
    #[arg(long, group = "digest")]
    pub example: bool,
    /// The ports the plugin is matched on, instead of those derived from the Gateways and their
    /// Service (repeat for several)
    #[arg(long = "match-port", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub match_ports: Vec<u32>,
    /// Where the EnvoyFilter's Envoy reads the module in the gateway pod
    #[arg(long, value_name = "PATH", default_value = DEFAULT_MODULE_PATH)]
    pub module_path: String,
    /// Write a Kustomize overlay into DIR instead of printing (wasmplugin): kustomization.yaml,
    /// naming --base, and the patch sni-guard.yaml; `kubectl kustomize DIR` renders the WasmPlugin
    #[arg(long, value_name = "DIR", value_parser = clap::value_parser!(PathBuf), requires = "base")]
    pub overlay: Option<PathBuf>,
    /// The overlay's base as Kustomize reads it from DIR: a path, or a tag of the repository
    /// (https://github.com/ORG/sni-guard//envoyfilter/kustomize/base?ref=v0.1.0)
    #[arg(long, value_name = "PATH|URL", requires = "overlay")]
    pub base: Option<String>,
    #[command(flatten)]
    pub inputs: Inputs,
}

impl ConfigArgs {
    pub fn kind(&self) -> Kind {
        match self.kind {
            KindArg::Json => Kind::Json,
            KindArg::Wasmplugin => Kind::WasmPlugin,
            KindArg::Trafficextension => Kind::TrafficExtension,
            KindArg::Envoyfilter => Kind::EnvoyFilter,
        }
    }

    /// Where the digest comes from, if an option says.
    pub fn digest_source(&self) -> Option<DigestSource> {
        if self.example {
            return Some(DigestSource::Example);
        }
        if let Some(layout) = &self.oci_layout {
            return Some(DigestSource::OciLayout(layout.clone()));
        }
        if let Some(wasm) = &self.wasm {
            return Some(DigestSource::Wasm(wasm.clone()));
        }
        self.sha256.clone().map(DigestSource::Given)
    }

    pub fn request(&self) -> Request {
        Request {
            labels: self.selector.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
            namespace: self.namespace.clone(),
            port: self.port,
            name: self.name.clone(),
            no_passthrough: self.no_passthrough,
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

/// A Kubernetes object name (a DNS-1123 subdomain).
pub fn parse_object_name(text: &str) -> Result<String, String> {
    if valid_object_name(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a Kubernetes object name: lower case letters, digits, '-' and '.', starting and ending \
             with a letter or digit, at most 253 characters"
        ))
    }
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
            "config --selector istio=ingressgateway,app=gw -l x=y --port 443 --mode enforce --kind wasmplugin --image oci://x/y:1 --oci-layout dist/oci --match-port 8443 dir",
        )
        .unwrap()
        .command
        {
            Command::Config(c) => {
                let request = c.request();
                assert_eq!(request.labels.len(), 3);
                assert_eq!(request.port, Some(443));
                assert_eq!(request.mode, Mode::Enforce);
                assert_eq!(c.kind(), Kind::WasmPlugin);
                assert_eq!(c.image.as_deref(), Some("oci://x/y:1"));
                assert_eq!(c.digest_source(), Some(DigestSource::OciLayout("dist/oci".into())));
                assert_eq!(c.match_ports, [8443]);
                assert_eq!(c.module_path, DEFAULT_MODULE_PATH);
                assert_eq!(c.inputs.paths.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        match parse("config -l a=b gw.yaml").unwrap().command {
            Command::Config(c) => {
                assert_eq!(c.request().mode, Mode::DryRun, "a first rollout is a dry run");
                assert_eq!(c.kind(), Kind::Json);
            }
            other => panic!("{other:?}"),
        }
        match parse("audit --deployed wp.yaml -l istio=ingressgateway gw.yaml").unwrap().command {
            Command::Audit(a) => {
                assert_eq!(a.deployed, [PathBuf::from("wp.yaml")]);
                assert_eq!(a.selector.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        match parse("check a.yaml -").unwrap().command {
            Command::Check(c) => assert_eq!(c.paths, [PathBuf::from("a.yaml"), "-".into()]),
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
            "config",
            "config --selector nope",
            "config --selector a=b --port x",
            "config --selector a=b --port 70000",
            "config --selector a=b --kind yaml",
            "config --selector a=b --oci-layout d --sha256 ab",
            "config --selector a=b --example --wasm w",
            "config --selector a=b --match-port 0",
            "audit --selector a=b",
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
