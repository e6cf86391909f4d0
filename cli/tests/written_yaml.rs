//! Whatever strings the Gateways (and the command line) hold, the YAML `merge` and `config`
//! write parses to exactly the documents the CLI built: no document injected, no key created or
//! hidden by a comment. Strings are drawn from all of Unicode, with YAML's own pieces (`---`,
//! `#`, quotes, line breaks) mixed in; the documents are read back by serde_yaml_ng, and by
//! PyYAML (a YAML 1.1 reader, as kubectl's and Istio's Go readers are).

#[path = "support/run.rs"]
mod run;

use std::collections::BTreeMap;
use std::process::Command;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use sni_guard::config::Mode;
use sni_guard_cli::audit::{conflicts, merge};
use sni_guard_cli::cluster::inventory::{read_text, Inventory};
use sni_guard_cli::generate::image::{self, DigestSource};
use sni_guard_cli::generate::manifest::{self, Kind, Manifest, Placement, Ports};
use sni_guard_cli::generate::plugin::{self, Request};
use sni_guard_cli::text::is_unsafe;
use sni_guard_cli::tls::credentials::{self, Namespaces};

#[path = "support/hostile.rs"]
mod hostile_input;

fn hostile() -> impl Strategy<Value = String> {
    hostile_input::string(8)
}

/// A Gateway API Gateway whose two listeners share a Secret (a conflict `merge` merges), and an
/// Istio pair doing the same; every field a tenant may fill freely holds `s[..]`.
fn gateways(s: &[String]) -> String {
    let api = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "web", "labels": {s[0].clone(): s[1].clone()},
                     "annotations": {s[2].clone(): s[3].clone(), "x": s[4].clone()}},
        "spec": {
            "gatewayClassName": s[5].clone(),
            "addresses": [{"type": "Hostname", "value": s[6].clone()}],
            "listeners": [
                {"name": s[7].clone(), "hostname": "www.corp.test", "port": 443, "protocol": "HTTPS",
                 "tls": {"certificateRefs": [{"name": "shared"}], "options": {s[8].clone(): s[9].clone()}},
                 "allowedRoutes": {"namespaces": {"from": s[10].clone()}}},
                {"name": "pay", "hostname": "pay.corp.test", "port": 443, "protocol": "HTTPS",
                 "tls": {"certificateRefs": [{"name": "shared"}]}},
                {"name": s[11].clone(), "port": 80, "protocol": "HTTP"},
            ],
        },
    });
    let istio = |name: &str, host: &str| {
        json!({
            "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
                "name": s[12].clone(),
                "port": {"number": 443, "name": s[13].clone(), "protocol": "HTTPS"},
                "hosts": [host],
                "tls": {"mode": "SIMPLE", "credentialName": "shared", "cipherSuites": [s[14].clone()],
                        "subjectAltNames": [s[15].clone()]},
            }]},
        })
    };
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [api, istio("a", "a.shop.test"), istio("b", "b.shop.test")]});
    serde_json::to_string(&list).unwrap()
}

/// `merge` on the Gateways: its output and the documents it built.
fn merged(input: &str) -> (String, Vec<Value>) {
    let mut inventory = Inventory::default();
    read_text(input, "input", &mut inventory).unwrap_or_else(|e| panic!("{e}"));
    let resolution = credentials::resolve(&inventory.servers, &[], &[], &Namespaces::new(&[], &[])).unwrap();
    let report = conflicts::audit(&inventory.servers, &resolution.servers);
    let sections = merge::sections(&inventory.servers, &resolution.servers, &inventory.gateway_api_objects, &report);
    let text = merge::render(&sections).unwrap();
    (text, sections.into_iter().filter_map(|s| s.document).collect())
}

/// The documents of a YAML stream, empty ones left out.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{e}:\n{text}")))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn check_text(text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!text.chars().any(|c| is_unsafe(c) && c != '\n'), "an unsafe character:\n{text:?}");
    for line in text.lines() {
        // Every line is a comment, a separator, or YAML the writer made (indented, a key, an item).
        let content = line.trim_start();
        prop_assert!(!line.starts_with("---") || line == "---", "{line:?}");
        prop_assert!(!content.starts_with("kind: ClusterRoleBinding"), "{text}");
    }
    Ok(())
}

proptest! {
    // Failures are printed, never written into the source tree.
    #![proptest_config(Config { cases: 200, failure_persistence: None, ..Config::default() })]

    #[test]
    fn merge_writes_exactly_its_documents(s in proptest::collection::vec(hostile(), 16)) {
        let (text, built) = merged(&gateways(&s));
        // Both conflicts are merged: an Istio Gateway and the whole Gateway API Gateway.
        prop_assert_eq!(built.len(), 2, "{}", text);
        prop_assert_eq!(documents(&text), built, "{}", text);
        prop_assert_eq!(text.matches("\n---\n").count() + usize::from(text.starts_with("---\n")), 2, "{}", text);
        check_text(&text)?;
    }

    #[test]
    fn config_writes_exactly_its_object(
        namespace in hostile(), module_path in hostile(), url in hostile(), summary in hostile(), how in hostile(),
        placed in hostile(), passthrough in hostile(),
        kind in proptest::sample::select(vec![Kind::WasmPlugin, Kind::TrafficExtension, Kind::EnvoyFilter]),
    ) {
        let mut inventory = Inventory::default();
        read_text(&gateways(&vec![String::from("x"); 16]), "input", &mut inventory).unwrap();
        let labels = BTreeMap::from([("istio".to_owned(), "ingressgateway".to_owned())]);
        let request =
            Request { labels, namespace: None, port: None, name: None, no_passthrough: false, mode: Mode::DryRun };
        let generated = plugin::generate(&inventory.servers, &request).unwrap();
        let image = image::resolve(&format!("oci://{url}x"), Some(&DigestSource::Given("ab".repeat(32)))).unwrap();
        let ports = Ports { numbers: vec![443, 8443], how };
        let placement = Placement { name: "sni-guard-ingressgateway".into(), namespace, pods_namespace: None, how: placed };
        let manifest = Manifest {
            kind, generated: &generated, placement: &placement, image: Some(&image), module_path: &module_path,
            ports: &ports, summary, passthrough: vec![passthrough],
        };
        let text = manifest::yaml(&manifest).unwrap();
        let parts = manifest::parts(&manifest).unwrap();
        let back: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        prop_assert_eq!(back, vec![parts.object], "{}", text);
        check_text(&text)?;
    }
}

/// The same documents through a YAML 1.1 reader: PyYAML's `safe_load_all`, in the venv `make
/// deps` makes (a missing venv fails the test).
#[test]
fn a_yaml_1_1_reader_reads_the_same_documents() {
    let python = run::repo_root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps` (PyYAML is in its venv)", python.display());
    let dir = tempfile::Builder::new().prefix("sni-guard-yaml11-").tempdir().unwrap();
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(hostile(), 16);
    let mut expected = Vec::new();
    for n in 0..100 {
        let s = strategy.new_tree(&mut runner).unwrap().current();
        let (text, built) = merged(&gateways(&s));
        std::fs::write(dir.path().join(format!("{n:03}.yaml")), &text).unwrap();
        expected.push(Value::Array(built));
    }
    let script = r#"
import json, pathlib, sys, yaml
files = sorted(pathlib.Path(sys.argv[1]).glob("*.yaml"))
print(json.dumps([[d for d in yaml.safe_load_all(f.read_text(encoding="utf-8")) if d is not None] for f in files]))
"#;
    let out = Command::new(python).arg("-c").arg(script).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "PyYAML: {}", String::from_utf8_lossy(&out.stderr));
    let read: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read.len(), expected.len());
    for (n, (read, expected)) in read.iter().zip(&expected).enumerate() {
        assert_eq!(read, expected, "case {n:03}");
    }
}
