//! A Kustomize overlay on the repository's base (`envoyfilter/kustomize/base`: the WasmPlugin
//! `istio-system/sni-guard-ingressgateway`), written from the WasmPlugin `sni-guard config`
//! generated: a `kustomization.yaml` naming the base, and a patch that gives the base's object
//! the generated one's name and sets every field of the spec to the generated one's (a field the
//! generated WasmPlugin has not is set to null, which removes the base's), so that `kubectl
//! kustomize` renders exactly the generated WasmPlugin whatever the base's name, servers, image or
//! selector.

use serde_json::{json, Map, Value};

use crate::generate::plugin::DEFAULT_PLUGIN_NAMESPACE;

/// The base's WasmPlugin, as `make examples` writes it (for the pods labelled
/// `istio=ingressgateway`, in Istio's root namespace): what the patch targets.
pub const BASE_NAME: &str = "sni-guard-ingressgateway";

/// The patch's file name in the overlay.
pub const PATCH_FILE: &str = "sni-guard.yaml";
/// Every field of the spec a WasmPlugin `sni-guard config` writes may have.
const SPEC_FIELDS: [&str; 11] = [
    "selector",
    "targetRefs",
    "url",
    "sha256",
    "imagePullPolicy",
    "pluginName",
    "type",
    "failStrategy",
    "phase",
    "match",
    "pluginConfig",
];

#[derive(Debug, PartialEq)]
pub struct Overlay {
    pub kustomization: String,
    pub patch: String,
}

/// The overlay that renders `wasmplugin` (a WasmPlugin as YAML) on the base `base`, a path or a
/// remote base as Kustomize reads it from the overlay's directory.
pub fn overlay(wasmplugin: &str, base: &str, command: &str) -> Result<Overlay, String> {
    if base.trim().is_empty() || base.contains(['\n', '\r']) {
        return Err(format!("--base {base:?}: give a path or URL on one line"));
    }
    let object: Value = serde_yaml_ng::from_str(wasmplugin).map_err(|e| format!("the WasmPlugin: {e}"))?;
    if object["kind"] != "WasmPlugin" {
        return Err("an overlay is written for --kind wasmplugin only (the base is a WasmPlugin)".into());
    }
    let name = object["metadata"]["name"].as_str().unwrap_or(BASE_NAME);
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or(DEFAULT_PLUGIN_NAMESPACE);
    let mut spec = Map::new();
    for field in SPEC_FIELDS {
        spec.insert(field.to_owned(), object["spec"].get(field).cloned().unwrap_or(Value::Null));
    }
    if let Some(extra) = object["spec"].as_object().and_then(|s| s.keys().find(|k| !SPEC_FIELDS.contains(&k.as_str())))
    {
        return Err(format!("the WasmPlugin has spec.{extra}, which the overlay does not know"));
    }
    let patch = json!({
        "apiVersion": object["apiVersion"],
        "kind": "WasmPlugin",
        "metadata": {"name": name, "namespace": DEFAULT_PLUGIN_NAMESPACE},
        "spec": spec,
    });
    let mut kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [base],
        // The patch renames the base's object to the generated one's name (Kustomize takes a new
        // name from a patch only with `allowNameChange`).
        "patches": [{
            "path": PATCH_FILE,
            "target": {"kind": "WasmPlugin", "name": BASE_NAME},
            "options": {"allowNameChange": true},
        }],
    });
    if namespace != DEFAULT_PLUGIN_NAMESPACE {
        kustomization["namespace"] = json!(namespace);
    }
    let yaml = |value: &Value| serde_yaml_ng::to_string(value).map_err(|e| e.to_string());
    Ok(Overlay {
        kustomization: format!(
            "# A Kustomize overlay on sni-guard's base, written by {command}: `kubectl kustomize`\n# on this \
             directory renders its WasmPlugin. `resources` names the base: a path, or a release tag\n# \
             (https://github.com/ORG/sni-guard//envoyfilter/kustomize/base?ref=vVERSION). Write it again\n# \
             when the Gateways change.\n{}",
            yaml(&kustomization)?
        ),
        patch: format!(
            "# Every field of the base WasmPlugin's spec, as {command} wrote them (null removes the base's).\n{}",
            yaml(&patch)?
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATEWAY_API: &str = "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: \
                               sni-guard-edge\n  namespace: edge\nspec:\n  targetRefs:\n  - kind: Gateway\n    name: \
                               edge\n  url: file:///m.wasm\n  pluginConfig:\n    mode: dry_run\n";

    #[test]
    fn renames_and_moves_through_the_kustomization_and_clears_what_the_plugin_lacks() {
        let o = overlay(GATEWAY_API, "../base", "sni-guard config").unwrap();
        let k: Value = serde_yaml_ng::from_str(&o.kustomization).unwrap();
        assert_eq!(k["resources"], json!(["../base"]));
        assert_eq!(k["namespace"], json!("edge"));
        assert_eq!(k["patches"][0]["target"], json!({"kind": "WasmPlugin", "name": BASE_NAME}));
        let p: Value = serde_yaml_ng::from_str(&o.patch).unwrap();
        assert_eq!(p["metadata"], json!({"name": "sni-guard-edge", "namespace": "istio-system"}));
        assert_eq!((&p["spec"]["selector"], &p["spec"]["sha256"]), (&Value::Null, &Value::Null));
        assert_eq!(p["spec"]["targetRefs"][0]["name"], "edge");
    }

    #[test]
    fn refuses_other_kinds_and_a_base_on_two_lines() {
        assert!(overlay("kind: EnvoyFilter\n", "../base", "x").unwrap_err().contains("wasmplugin only"));
        assert!(overlay(GATEWAY_API, "a\nb", "x").unwrap_err().contains("one line"));
        let extra = GATEWAY_API.replace("  url:", "  priority: 3\n  url:");
        assert!(overlay(&extra, "../base", "x").unwrap_err().contains("spec.priority"));
    }
}
