//! The command line. Three subcommands with a handful of options: a small parser here costs
//! less build time than an argument-parsing crate.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sni_guard::config::Mode;

use crate::plugin::{Request, DEFAULT_URL};

pub const USAGE: &str = "\
sni-guard: find gateway servers that share a TLS certificate (a 404 risk with HTTP/2
connection coalescing), and write sni-guard's configuration for them. Offline: reads
`kubectl get gateways.networking.istio.io -A -o json|yaml` output, Gateway API Gateways,
or a directory of manifests, from FILE|DIR or standard input.

Usage:
  sni-guard audit  [--output text|json] [FILE|DIR|-]
  sni-guard config --selector KEY=VALUE[,KEY=VALUE] [--namespace NS] [--port N]
                   [--mode enforce|dry_run] [--wasmplugin [--url URL]] [FILE|DIR|-]
  sni-guard merge  [FILE|DIR|-]

audit    Servers on one gateway workload and port that share a credential, or whose hosts
         collide (the same host, or a wildcard covering another server's host); servers
         that cannot 404 (TLS passthrough, ISTIO_MUTUAL, plain text) listed as not at risk.
config   sni-guard's plugin configuration (JSON) for the gateway pods with these labels;
         --wasmplugin prints a whole WasmPlugin (YAML) in --namespace (default istio-system).
         For a Gateway API Gateway, select gateway.networking.k8s.io/gateway-name=NAME.
merge    For each conflict, the merged Gateway (one server, all the hosts, one credential).

Exit status: 0 no conflict (or output written), 1 conflicts found (audit) or a
configuration the filter would refuse (config), 2 bad input or usage.
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug)]
pub enum Command {
    Audit { output: Output, input: Option<PathBuf> },
    Config { request: Request, wasmplugin: bool, url: String, input: Option<PathBuf> },
    Merge { input: Option<PathBuf> },
    Help,
    Version,
}

/// `KEY=VALUE[,KEY=VALUE]`, as `kubectl -l` takes equality selectors.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for pair in text.split(',') {
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                labels.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            _ => return Err(format!("--selector: {pair:?} is not KEY=VALUE")),
        }
    }
    Ok(labels)
}

/// `args` without the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err("a subcommand is needed: audit, config or merge".into());
    };
    match sub.as_str() {
        "-h" | "--help" | "help" => return Ok(Command::Help),
        "-V" | "--version" => return Ok(Command::Version),
        "audit" | "config" | "merge" => {}
        other => return Err(format!("unknown subcommand {other:?}: expected audit, config or merge")),
    }

    let mut input: Option<PathBuf> = None;
    let mut output = Output::Text;
    let mut request = Request::default();
    let mut selector_given = false;
    let mut wasmplugin = false;
    let mut url: Option<String> = None;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        // `--name=value` and `--name value` both work.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().cloned().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        let allowed = match (sub.as_str(), name) {
            (_, "-h" | "--help") => return Ok(Command::Help),
            ("audit", "--output" | "-o") => {
                output = match value(name)?.as_str() {
                    "text" | "table" => Output::Text,
                    "json" => Output::Json,
                    other => return Err(format!("--output: {other:?}: expected text or json")),
                };
                true
            }
            ("config", "--selector" | "-l") => {
                request.labels.extend(parse_labels(&value(name)?)?);
                selector_given = true;
                true
            }
            ("config", "--namespace" | "-n") => {
                request.namespace = Some(value(name)?);
                true
            }
            ("config", "--port") => {
                let v = value(name)?;
                request.port = Some(v.parse().map_err(|_| format!("--port: {v:?} is not a port number"))?);
                true
            }
            ("config", "--mode") => {
                request.mode = match value(name)?.as_str() {
                    "enforce" => Mode::Enforce,
                    "dry_run" | "dry-run" => Mode::DryRun,
                    other => return Err(format!("--mode: {other:?}: expected enforce or dry_run")),
                };
                true
            }
            ("config", "--wasmplugin") if inline.is_none() => {
                wasmplugin = true;
                true
            }
            ("config", "--url") => {
                url = Some(value(name)?);
                true
            }
            (_, "-") => false,
            (_, flag) if flag.starts_with('-') => return Err(format!("{sub}: unknown option {flag}")),
            _ => false,
        };
        if allowed {
            continue;
        }
        if input.is_some() {
            return Err(format!("{sub}: one input only, got another: {arg}"));
        }
        input = Some(PathBuf::from(arg));
    }
    // `-` is standard input, the same as no argument.
    let input = input.filter(|p| p.as_os_str() != "-");
    match sub.as_str() {
        "audit" => Ok(Command::Audit { output, input }),
        "merge" => Ok(Command::Merge { input }),
        _ => {
            if !selector_given {
                return Err(
                    "config: --selector KEY=VALUE is required (the gateway pods' labels, e.g. istio=ingressgateway)"
                        .into(),
                );
            }
            if url.is_some() && !wasmplugin {
                return Err("config: --url goes with --wasmplugin".into());
            }
            Ok(Command::Config { request, wasmplugin, url: url.unwrap_or_else(|| DEFAULT_URL.to_owned()), input })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_each_subcommand() {
        assert!(matches!(parse(&args("audit")), Ok(Command::Audit { output: Output::Text, input: None })));
        assert!(matches!(parse(&args("audit -")), Ok(Command::Audit { input: None, .. })));
        match parse(&args("audit --output=json gw.yaml")).unwrap() {
            Command::Audit { output, input } => {
                assert_eq!(output, Output::Json);
                assert_eq!(input.unwrap().to_str(), Some("gw.yaml"));
            }
            other => panic!("{other:?}"),
        }
        match parse(&args(
            "config --selector istio=ingressgateway,app=gw --port 443 --mode dry_run --wasmplugin --url oci://x dir",
        ))
        .unwrap()
        {
            Command::Config { request, wasmplugin, url, input } => {
                assert_eq!(request.labels.len(), 2);
                assert_eq!(request.port, Some(443));
                assert_eq!(request.mode, Mode::DryRun);
                assert!(wasmplugin);
                assert_eq!(url, "oci://x");
                assert!(input.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(&args("merge x.json")), Ok(Command::Merge { input: Some(_) })));
        assert!(matches!(parse(&args("audit --help")), Ok(Command::Help)));
    }

    #[test]
    fn refuses_bad_usage() {
        for bad in [
            "",
            "lint",
            "audit --output yaml",
            "audit a b",
            "audit --selector a=b",
            "config",
            "config --selector nope",
            "config --selector a=b --port x",
            "config --selector a=b --url u",
            "merge --bogus",
            "audit --output",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
