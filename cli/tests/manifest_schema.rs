//! `sni-guard config --kind wasmplugin|trafficextension|envoyfilter` output against Istio's CRDs:
//! their OpenAPI v3 schemas through the repository's validator (e2e/support/crd_schema.py,
//! which e2e/manifests uses for the shipped manifests), and the CEL rules that validator does
//! not evaluate, by hand, for both targets (an Istio Gateway's pods, a Gateway API Gateway).
//!
//! The CRD bundle is found as that validator finds it: $ISTIO_CRDS, or the copy in the
//! repository (e2e/manifests/istio/crd-all.gen.yaml). A missing bundle or Python venv
//! fails the test (never a skip): a schema check that did not run is not a pass.

#[path = "support/run.rs"]
mod run;
use run::repo_root;

use std::process::Command;

use serde_json::Value;

/// Runs the CLI's `config` on a fixture; exit 0 expected.
fn config_ok(args: &[&str], fixture: &str) -> String {
    let (code, out, err) = run::config(args, fixture);
    assert_eq!(code, 0, "{err}");
    out
}

const VALIDATE: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
import yaml
from e2e.support import crd_schema
schemas = crd_schema.load_crds()
document = yaml.safe_load(open(sys.argv[2]))
print(json.dumps({"crds": str(schemas.path), "errors": schemas.errors(document)}))
"#;

/// The schema errors of `yaml` (one document), as `path: message`.
fn schema_errors(yaml: &str, name: &str) -> Vec<String> {
    let root = repo_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make deps` (the schema check needs its jsonschema and PyYAML)",
        python.display()
    );
    // A file of this call's own: tests run in parallel threads of one process.
    let file = tempfile::Builder::new().prefix(&format!("sni-guard-{name}-")).suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    let out = Command::new(python).arg("-c").arg(VALIDATE).arg(&root).arg(file.path()).output().unwrap();
    assert!(
        out.status.success(),
        "the CRD schema check did not run (set ISTIO_CRDS to Istio's crd-all.gen.yaml):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_owned()).collect()
}

/// The CEL rules (`x-kubernetes-validations`) of the three kinds, for the fields `config` writes.
fn cel_errors(doc: &Value) -> Vec<&'static str> {
    let spec = &doc["spec"];
    let mut errors = Vec::new();
    let pickers =
        ["selector", "workloadSelector", "targetRef", "targetRefs"].iter().filter(|k| spec.get(**k).is_some()).count();
    if pickers > 1 {
        errors.push("only one of targetRefs or selector can be set");
    }
    if doc["kind"] == "TrafficExtension" && (spec.get("wasm").is_some() == spec.get("lua").is_some()) {
        errors.push("exactly one of wasm or lua must be set");
    }
    if doc["kind"] != "EnvoyFilter" {
        let url = spec["url"].as_str().or(spec["wasm"]["url"].as_str()).unwrap_or("");
        if !["http://", "https://", "file://", "oci://"].iter().any(|s| url.starts_with(s)) {
            errors.push("url must have schema one of [http, https, file, oci]");
        }
    }
    for patch in spec["configPatches"].as_array().into_iter().flatten() {
        if patch["match"].get("waypoint").is_some() && patch["match"]["context"] != "WAYPOINT" {
            errors.push("only support waypointMatch when context is WAYPOINT");
        }
    }
    for target in spec["targetRefs"].as_array().into_iter().flatten() {
        if target.get("namespace").is_some_and(|n| n.as_str() != Some("")) {
            errors.push("cross namespace referencing is not currently supported");
        }
    }
    let labels = spec["selector"]["matchLabels"].as_object().or(spec["workloadSelector"]["labels"].as_object());
    for (key, value) in labels.into_iter().flatten() {
        if key.is_empty() || key.contains('*') || value.as_str().is_some_and(|v| v.contains('*')) {
            errors.push("label keys and values: non-empty, no wildcard");
        }
    }
    errors
}

fn parse(yaml: &str) -> Value {
    serde_yaml_ng::from_str(yaml).unwrap()
}

const DIGEST: &str = "sha256:7d4ffc8a52ba4a6a73e8d4b4c81a86fd6e0f7ab8b6c1d1c26cf2b5a5e4d9e1f0";

/// `config --kind KIND` with the module options that kind takes.
fn manifest(kind: &str, selector: &str, extra: &[&str], fixture: &str) -> String {
    let mut args = vec!["--kind", kind, "--selector", selector];
    if kind != "envoyfilter" {
        args.extend(["--image", "oci://registry.example.com/sni-guard:0.1.0", "--sha256", DIGEST]);
    }
    args.extend(extra);
    config_ok(&args, fixture)
}

const KINDS: [&str; 3] = ["wasmplugin", "trafficextension", "envoyfilter"];

#[test]
fn the_istio_forms_select_pods_and_match_the_crds() {
    for kind in KINDS {
        let yaml = manifest(kind, "istio=ingressgateway", &["--namespace", "istio-ingress"], "merged.yaml");
        assert_eq!(schema_errors(&yaml, kind), Vec::<String>::new(), "{yaml}");
        let doc = parse(&yaml);
        assert_eq!(cel_errors(&doc), Vec::<&str>::new());
        let labels = if kind == "envoyfilter" {
            &doc["spec"]["workloadSelector"]["labels"]
        } else {
            &doc["spec"]["selector"]["matchLabels"]
        };
        assert_eq!(*labels, serde_json::json!({"istio": "ingressgateway"}), "{kind}");
        assert!(doc["spec"].get("targetRefs").is_none(), "{yaml}");
        assert_eq!(doc["metadata"]["namespace"], "istio-ingress");
    }
}

#[test]
fn the_gateway_api_forms_target_the_gateway_and_match_the_crds() {
    for kind in KINDS {
        let yaml = manifest(kind, "gateway.networking.k8s.io/gateway-name=edge", &[], "gateway-api.yaml");
        assert!(yaml.starts_with("# sni-guard for Gateway web/edge: "), "{yaml}");
        assert_eq!(schema_errors(&yaml, kind), Vec::<String>::new(), "{yaml}");
        let doc = parse(&yaml);
        assert_eq!(cel_errors(&doc), Vec::<&str>::new());
        // Istio refuses a selector beside targetRefs; a target is in the object's own namespace.
        assert!(doc["spec"].get("selector").is_none() && doc["spec"].get("workloadSelector").is_none(), "{yaml}");
        assert_eq!(
            doc["spec"]["targetRefs"],
            serde_json::json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}])
        );
        assert_eq!(doc["metadata"], serde_json::json!({"name": "sni-guard-edge", "namespace": "web"}));
        // The configuration is the filter's, for that Gateway's listeners only.
        let json = match kind {
            "wasmplugin" => serde_json::to_vec(&doc["spec"]["pluginConfig"]).unwrap(),
            "trafficextension" => serde_json::to_vec(&doc["spec"]["wasm"]["pluginConfig"]).unwrap(),
            _ => {
                let value = &doc["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["extension_config"]
                    ["typed_config"]["config"]["configuration"]["value"];
                value.as_str().unwrap().as_bytes().to_vec()
            }
        };
        let settings = sni_guard::config::Settings::from_json(&json).unwrap();
        assert_eq!(settings.servers.server_of(b"blog.example.com"), Some(1));
        assert_eq!(settings.servers.server_of(b"solo.example.com"), None);
    }
}

#[test]
fn the_checks_reject_what_istio_rejects() {
    // The same output, broken: the schema check and the CEL rules must notice.
    let yaml = manifest("wasmplugin", "gateway.networking.k8s.io/gateway-name=edge", &[], "gateway-api.yaml");
    let mut doc = parse(&yaml);
    doc["spec"]["targetRefs"][0]["kind"] = Value::String("".into());
    doc["spec"]["phase"] = Value::String("EARLY".into());
    let errors = schema_errors(&serde_yaml_ng::to_string(&doc).unwrap(), "broken");
    assert!(errors.iter().any(|e| e.starts_with("spec.targetRefs[0].kind")), "{errors:?}");
    assert!(errors.iter().any(|e| e.starts_with("spec.phase")), "{errors:?}");
    doc["spec"]["selector"] = serde_json::json!({"matchLabels": {"istio": "ingressgateway"}});
    doc["spec"]["targetRefs"][0]["namespace"] = Value::String("other".into());
    assert_eq!(
        cel_errors(&doc),
        ["only one of targetRefs or selector can be set", "cross namespace referencing is not currently supported"]
    );
    let mut filter = parse(&manifest("envoyfilter", "istio=ingressgateway", &[], "merged.yaml"));
    filter["spec"]["configPatches"][0]["match"]["listener"]["portNumber"] = Value::String("443".into());
    let errors = schema_errors(&serde_yaml_ng::to_string(&filter).unwrap(), "broken-filter");
    assert!(errors.iter().any(|e| e.starts_with("spec.configPatches[0].match.listener.portNumber")), "{errors:?}");
}
