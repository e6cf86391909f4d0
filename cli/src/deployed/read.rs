//! What a user applies, read back: the sni-guard configuration inside a WasmPlugin, a
//! TrafficExtension, an EnvoyFilter, a plain Envoy configuration, or raw JSON, with where it sits
//! (behind Envoy's same-name matcher or not) and which gateway it applies to. `sni-guard check`
//! runs the filter's own parser on each; `sni-guard audit --deployed` compares each with the
//! Gateways.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{Map, Value};
use sni_guard::cel::SameNameTest;
use sni_guard::config::{Mode, OnMissingSni, Settings};

use crate::cluster::documents::{parse_documents, read_inputs, InputError};
use crate::cluster::model::{join_labels, GATEWAY_NAME_LABEL};
use crate::generate::image::PLACEHOLDER_SHA256;
use crate::generate::manifest::{NAME, WASM_TYPE};
use crate::generate::matcher::{self, EXTENSION_WITH_MATCHER};
use crate::text::Shown;

/// The kind of object a configuration was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    WasmPlugin,
    TrafficExtension,
    EnvoyFilter,
    /// A Wasm filter anywhere in another document: a plain Envoy configuration.
    Envoy,
    /// The configuration alone.
    Json,
}

impl Form {
    fn as_str(self) -> &'static str {
        match self {
            Form::WasmPlugin => "a WasmPlugin",
            Form::TrafficExtension => "a TrafficExtension",
            Form::EnvoyFilter => "an EnvoyFilter",
            Form::Envoy => "an Envoy configuration",
            Form::Json => "raw JSON",
        }
    }
}

/// Where the filter sits.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    /// A Wasm filter of its own: every request reaches the module (WasmPlugin, TrafficExtension).
    Alone,
    /// Inside Envoy's `ExtensionWithMatcher`, with this `xds_matcher`.
    BehindMatcher(Value),
    /// Raw JSON: the file does not say.
    Unknown,
}

/// The gateway a configuration applies to, as its object names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applies {
    pub labels: BTreeMap<String, String>,
    /// For a Gateway API Gateway (targetRefs), the Gateway's namespace.
    pub namespace: Option<String>,
    pub describe: String,
}

/// The Kubernetes object a configuration was found in: what `kubectl apply` identifies it by,
/// and where in the input it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `FILE: document 2`, `FILE: items[3]`.
    pub at: String,
}

impl Object {
    /// `WasmPlugin istio-system/sni-guard`.
    pub fn identity(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One sni-guard configuration found in the input.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// `FILE: document 2: WasmPlugin istio-system/sni-guard`.
    pub source: String,
    pub form: Form,
    /// Where in the document: `spec.pluginConfig`, `spec.configPatches[0].patch.value.typed_config`.
    pub field: String,
    /// The bytes Envoy hands the filter, or why there are none.
    pub json: Result<Vec<u8>, String>,
    pub position: Position,
    pub applies: Option<Applies>,
    /// A WasmPlugin's or TrafficExtension's `sha256` (`None`: not given), with its field.
    pub sha256: Option<(String, Value)>,
    /// The object holding it; `None` for raw JSON and plain Envoy configurations.
    pub object: Option<Object>,
}

/// Everything read.
#[derive(Debug, Default)]
pub struct Reading {
    pub found: Vec<Deployed>,
    /// Documents holding no sni-guard configuration, and why they were passed over.
    pub skipped: Vec<String>,
}

/// Reads files, directories (their .yaml, .yml and .json files) or `-` (standard input).
pub fn read(paths: &[PathBuf]) -> Result<Reading, InputError> {
    let mut reading = Reading::default();
    read_inputs(paths, |source, text| read_text(text, source, &mut reading))?;
    Ok(reading)
}

/// One file's text: JSON or (multi-document) YAML.
pub fn read_text(text: &str, source: &str, reading: &mut Reading) -> Result<(), InputError> {
    let documents = parse_documents(text, source)?;
    if documents.is_empty() {
        return Err(InputError(format!("{source}: empty: no configuration and no Kubernetes object")));
    }
    let many = documents.len() > 1;
    // A JSON file is handed to the filter as it is, byte for byte.
    let is_json = text.trim_start().starts_with('{');
    for (i, document) in documents.iter().enumerate() {
        let at = if many { format!("{source}: document {}", i + 1) } else { source.to_owned() };
        let raw = is_json.then(|| text.as_bytes().to_vec());
        collect(document, &at, raw, reading);
    }
    Ok(())
}

fn collect(document: &Value, at: &str, raw: Option<Vec<u8>>, reading: &mut Reading) {
    let Some(object) = document.as_object() else {
        reading.skipped.push(format!("{at}: not a mapping, so neither a configuration nor a Kubernetes object"));
        return;
    };
    let kind = object.get("kind").and_then(Value::as_str);
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.split('/').next().unwrap_or("");
    let metadata = |field: &str| object.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str);
    let (namespace, name) = (metadata("namespace").unwrap_or("default"), metadata("name").unwrap_or(""));
    let spec = object.get("spec").and_then(Value::as_object);
    match (kind, group) {
        (Some(kind), _) if kind.ends_with("List") => {
            for (i, item) in object.get("items").and_then(Value::as_array).into_iter().flatten().enumerate() {
                collect(item, &format!("{at}: items[{i}]"), None, reading);
            }
        }
        (Some(kind @ ("WasmPlugin" | "TrafficExtension")), "extensions.istio.io") => {
            let source = format!("{at}: {kind} {}/{}", Shown(namespace), Shown(name));
            let Some(spec) = spec else {
                reading.skipped.push(format!("{source}: no spec"));
                return;
            };
            let (form, module, field) = if kind == "WasmPlugin" {
                (Form::WasmPlugin, Some(spec), "spec.pluginConfig")
            } else {
                (Form::TrafficExtension, spec.get("wasm").and_then(Value::as_object), "spec.wasm.pluginConfig")
            };
            let Some(module) = module else {
                reading.skipped.push(format!("{source}: no wasm block (a Lua TrafficExtension is not sni-guard)"));
                return;
            };
            let says = |field: &str| module.get(field).and_then(Value::as_str).is_some_and(|v| v.contains(NAME));
            if !(says("pluginName") || says("url") || name.starts_with(NAME)) {
                reading.skipped.push(format!("{source}: not sni-guard's (its name, pluginName and url do not say so)"));
                return;
            }
            // Istio hands Envoy the pluginConfig as JSON; none at all is an empty configuration.
            let json = match module.get("pluginConfig") {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(config) => Ok(serde_json::to_vec(config).expect("JSON serialises")),
            };
            let applies = applies(spec, "selector", namespace);
            let sha256_field = if kind == "WasmPlugin" { "spec.sha256" } else { "spec.wasm.sha256" };
            let sha256 = module.get("sha256").filter(|v| !v.is_null()).map(|v| (sha256_field.to_owned(), v.clone()));
            reading.found.push(Deployed {
                source,
                form,
                field: field.to_owned(),
                json,
                position: Position::Alone,
                applies,
                sha256,
                object: Some(Object {
                    kind: kind.to_owned(),
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    at: at.to_owned(),
                }),
            });
        }
        (Some("EnvoyFilter"), "networking.istio.io") => {
            let source = format!("{at}: EnvoyFilter {}/{}", Shown(namespace), Shown(name));
            let applies = spec.and_then(|spec| applies(spec, "workloadSelector", namespace));
            let before = reading.found.len();
            walk(document, "", &source, Form::EnvoyFilter, &applies, reading);
            let object = Object {
                kind: "EnvoyFilter".into(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                at: at.to_owned(),
            };
            for found in &mut reading.found[before..] {
                found.object = Some(object.clone());
            }
            if reading.found.len() == before {
                reading.skipped.push(format!("{source}: holds no sni-guard filter"));
            }
        }
        (Some(kind), _) => {
            let shown_name =
                if name.is_empty() { String::new() } else { format!(" {}/{}", Shown(namespace), Shown(name)) };
            reading.skipped.push(format!("{at}: {}{shown_name}: holds no sni-guard configuration", Shown(kind)));
        }
        (None, _) => {
            let before = reading.found.len();
            walk(document, "", at, Form::Envoy, &None, reading);
            if reading.found.len() > before {
                return;
            }
            const ENVOY_KEYS: [&str; 5] = ["static_resources", "dynamic_resources", "admin", "node", "layered_runtime"];
            if ENVOY_KEYS.iter().any(|k| object.contains_key(*k)) {
                reading.skipped.push(format!("{at}: an Envoy configuration without a sni-guard filter"));
                return;
            }
            let json = raw.unwrap_or_else(|| serde_json::to_vec(document).expect("JSON serialises"));
            reading.found.push(Deployed {
                source: at.to_owned(),
                form: Form::Json,
                field: "the configuration".into(),
                json: Ok(json),
                position: Position::Unknown,
                applies: None,
                sha256: None,
                object: None,
            });
        }
    }
}

/// The gateway a plugin or EnvoyFilter applies to: `selector.matchLabels` (`workloadSelector.labels`)
/// or a Gateway in `targetRefs` (`targetRef`).
fn applies(spec: &Map<String, Value>, selector: &str, namespace: &str) -> Option<Applies> {
    let labels_at = if selector == "selector" { "/selector/matchLabels" } else { "/workloadSelector/labels" };
    let spec = Value::Object(spec.clone());
    if let Some(labels) = spec.pointer(labels_at).and_then(Value::as_object) {
        let labels: BTreeMap<String, String> =
            labels.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect();
        let describe = format!("the gateway pods labelled {}", join_labels(&labels));
        return Some(Applies { labels, namespace: None, describe });
    }
    let refs = spec.get("targetRefs").and_then(Value::as_array).cloned().unwrap_or_default();
    let single = spec.get("targetRef").cloned();
    refs.into_iter().chain(single).find_map(|r| {
        let name = r.get("name").and_then(Value::as_str)?;
        (r.get("kind").and_then(Value::as_str) == Some("Gateway")).then(|| Applies {
            labels: BTreeMap::from([(GATEWAY_NAME_LABEL.to_owned(), name.to_owned())]),
            namespace: Some(namespace.to_owned()),
            describe: format!("Gateway {namespace}/{name}"),
        })
    })
}

/// Finds sni-guard's Wasm filters anywhere under `value`: alone, or inside an
/// `ExtensionWithMatcher`. A Wasm filter of another plugin is passed over.
fn walk(value: &Value, path: &str, source: &str, form: Form, applies: &Option<Applies>, reading: &mut Reading) {
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        Value::Object(object) => {
            let type_url = object.get("@type").and_then(Value::as_str);
            let wrapped = object.get("extension_config").and_then(|e| e.get("typed_config"));
            let (wasm, position) = match type_url {
                Some(EXTENSION_WITH_MATCHER)
                    if wrapped.and_then(|w| w.get("@type")).and_then(Value::as_str) == Some(WASM_TYPE) =>
                {
                    (wrapped, Position::BehindMatcher(object.get("xds_matcher").cloned().unwrap_or(Value::Null)))
                }
                Some(WASM_TYPE) => (Some(value), Position::Alone),
                _ => (None, Position::Alone),
            };
            if let Some(wasm) = wasm {
                let config = wasm.get("config");
                let named = |f: &str| config.and_then(|c| c.get(f)).and_then(Value::as_str) == Some(NAME);
                if named("root_id") || named("name") {
                    reading.found.push(Deployed {
                        source: source.to_owned(),
                        form,
                        field: path.to_owned(),
                        json: configuration(config),
                        position,
                        applies: applies.clone(),
                        sha256: None,
                        object: None,
                    });
                } else {
                    reading.skipped.push(format!(
                        "{source}: {path}: a Wasm filter of another plugin (its name and root_id are not {NAME})"
                    ));
                }
                return;
            }
            for (key, child) in object {
                walk(child, &join(key), source, form, applies, reading);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), source, form, applies, reading);
            }
        }
        _ => {}
    }
}

/// `config.configuration` of a Wasm filter: the bytes of a StringValue or BytesValue.
fn configuration(config: Option<&Value>) -> Result<Vec<u8>, String> {
    let Some(any) = config.and_then(|c| c.get("configuration")) else { return Ok(Vec::new()) };
    let type_url = any.get("@type").and_then(Value::as_str).unwrap_or("");
    let value = any.get("value").and_then(Value::as_str);
    match (type_url, value) {
        ("type.googleapis.com/google.protobuf.StringValue", value) => Ok(value.unwrap_or("").as_bytes().to_vec()),
        ("type.googleapis.com/google.protobuf.BytesValue", value) => base64::engine::general_purpose::STANDARD
            .decode(value.unwrap_or(""))
            .map_err(|e| format!("configuration: a BytesValue whose value is not base64: {e}")),
        (other, _) => {
            Err(format!("configuration is {other:?}: sni-guard reads its JSON from a google.protobuf.StringValue"))
        }
    }
}

/// The filter's verdict on one found configuration, and what else is wrong with where it sits.
#[derive(Debug)]
pub struct Examined {
    pub settings: Option<Settings>,
    /// What Envoy or the filter would refuse in the configuration, or where it sits.
    pub problems: Vec<String>,
    /// What keeps the module from loading at all (a placeholder `sha256`): no sni-guard.
    pub module_problems: Vec<String>,
    pub notes: Vec<String>,
}

impl Examined {
    /// The filter takes the configuration where it sits.
    pub fn configuration_accepted(&self) -> bool {
        self.settings.is_some() && self.problems.is_empty()
    }

    /// And the module it is for loads.
    pub fn accepted(&self) -> bool {
        self.configuration_accepted() && self.module_problems.is_empty()
    }

    /// Every problem, the module's first.
    pub fn all_problems(&self) -> Vec<String> {
        self.module_problems.iter().chain(&self.problems).cloned().collect()
    }
}

pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::DryRun => "dry_run",
    }
}

fn on_missing_sni_name(value: OnMissingSni) -> &'static str {
    match value {
        OnMissingSni::Allow => "allow",
        OnMissingSni::Reject => "reject",
    }
}

/// Parses and validates with the filter's own entry point (`Settings::from_json`, what
/// `proxy_on_configure` runs), then checks `same_name_matcher` against where the filter sits.
pub fn examine(deployed: &Deployed) -> Examined {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let module_problems: Vec<String> =
        deployed.sha256.iter().filter_map(|(field, sha256)| sha256_problem(field, sha256)).collect();
    let json = match &deployed.json {
        Ok(json) => json,
        Err(problem) => return Examined { settings: None, problems: vec![problem.clone()], module_problems, notes },
    };
    let settings = match Settings::from_json(json) {
        Ok(settings) => settings,
        Err(e) => {
            problems.push(format!("the filter refuses it: {e}"));
            return Examined { settings: None, problems, module_problems, notes };
        }
    };
    match (&deployed.position, settings.same_name_matcher) {
        (Position::Alone, Some(test)) => problems.push(format!(
            "same_name_matcher says Envoy's matcher ({:?}) is in front of the filter, but {} puts none there: \
             leave it out, and the filter asks the same-name question itself",
            test.text(),
            deployed.form.as_str()
        )),
        (Position::Alone, None) => {}
        (Position::BehindMatcher(xds), None) => {
            let named = SameNameTest::ALL.into_iter().find(|t| {
                xds.pointer("/matcher_list/matchers/0/predicate/single_predicate/custom_match/typed_config/expr_match/cel_expr_parsed")
                    == Some(&matcher::parsed_value(*t))
            });
            problems.push(format!(
                "the filter sits behind Envoy's same-name matcher, so the configuration must name its test in \
                 same_name_matcher{}",
                named.map_or(String::new(), |t| format!(": {:?}", t.text()))
            ));
        }
        (Position::BehindMatcher(xds), Some(test)) => problems.extend(matcher::problems(xds, test)),
        (Position::Unknown, Some(test)) => notes.push(format!(
            "same_name_matcher {:?}: right only where the filter sits behind that matcher (an EnvoyFilter, plain \
             Envoy); a WasmPlugin or TrafficExtension must leave it out",
            test.text()
        )),
        (Position::Unknown, None) => {}
    }
    Examined { settings: Some(settings), problems, module_problems, notes }
}

/// What is wrong with a WasmPlugin's or TrafficExtension's `sha256`: the examples' placeholder,
/// which no module matches (istio-agent refuses the module, and the gateway runs without
/// sni-guard), or not the 64 lower-case hex digits Istio's schema takes.
fn sha256_problem(field: &str, sha256: &Value) -> Option<String> {
    const HOW: &str = "write the real digest: `make image` prints the image's, and `sni-guard config --image \
                       oci://... --oci-layout dist/oci` writes it (`--wasm FILE` for an https:// module)";
    let text = match sha256 {
        Value::String(text) => text,
        other => return Some(format!("{field}: expected a string, found {other}; {HOW}")),
    };
    if text.is_empty() {
        return None;
    }
    if text == PLACEHOLDER_SHA256 {
        return Some(format!(
            "{field} is the examples' placeholder (64 zeros), which no module matches: Istio's agent would refuse \
             the module and the gateway would run without sni-guard; {HOW}"
        ));
    }
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Some(format!(
            "{field} \"{}\" is not 64 lower-case hex digits, which Istio requires (no sha256: before them); {HOW}",
            Shown(text)
        ));
    }
    None
}

/// `3 servers, mode dry_run, on_missing_sni allow[, behind Envoy's same-name matcher]`.
pub fn summary(settings: &Settings, servers: usize) -> String {
    let mut text = format!(
        "{servers} {}, mode {}, on_missing_sni {}",
        if servers == 1 { "server" } else { "servers" },
        mode_name(settings.mode),
        on_missing_sni_name(settings.on_missing_sni)
    );
    if let Some(test) = settings.same_name_matcher {
        text.push_str(&format!(", behind Envoy's same-name matcher {:?}", test.text()));
    }
    text
}

/// The configuration's `servers`, each a list of hosts, as the filter would read them (the JSON
/// was accepted by the filter's parser before this is called).
pub fn servers(deployed: &Deployed) -> Vec<Vec<String>> {
    let json = deployed.json.as_deref().unwrap_or_default();
    sni_guard::config::PluginConfig::parse(json)
        .map(|c| c.servers.into_iter().map(|s| s.hosts).collect())
        .unwrap_or_default()
}

/// Objects given twice: the same kind, namespace and name in two places of the input. Applied
/// together, the later one replaces the earlier (`kubectl apply` merges them into one object),
/// so a workload whose plugin was the earlier loses it. Each pair once: (first, other).
pub fn given_twice(reading: &Reading) -> Vec<(&Object, &Object)> {
    let mut first: BTreeMap<(&str, &str, &str), &Object> = BTreeMap::new();
    let mut twice = Vec::new();
    for object in reading.found.iter().filter_map(|d| d.object.as_ref()) {
        let seen = first.entry((&object.kind, &object.namespace, &object.name)).or_insert(object);
        // An EnvoyFilter holds one configuration per port: one object, found once per port.
        if seen.at != object.at && !twice.iter().any(|(_, o): &(&Object, &Object)| o.at == object.at) {
            twice.push((*seen, object));
        }
    }
    twice
}

/// The message for an object given twice.
pub fn twice_message(first: &Object, other: &Object) -> String {
    format!(
        "{} and {} are one object, {}: applied together, the later replaces the earlier, so one of them is \
         not deployed. Two gateway workloads need two objects (`sni-guard config` names each after its \
         workload; --name sets a name).",
        first.at,
        other.at,
        first.identity()
    )
}

impl fmt::Display for Deployed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Reading {
        let mut reading = Reading::default();
        read_text(text, "t", &mut reading).unwrap();
        reading
    }

    #[test]
    fn finds_the_configuration_in_each_form() {
        let plugin = read(
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: sni-guard, namespace: gw}\n\
             spec:\n  selector: {matchLabels: {istio: ingressgateway}}\n  url: oci://r/sni-guard:1\n  \
             pluginConfig: {servers: [{hosts: [a.example.com]}]}\n",
        );
        let found = &plugin.found[0];
        assert_eq!((found.form, found.source.as_str()), (Form::WasmPlugin, "t: WasmPlugin gw/sni-guard"));
        assert_eq!(found.json.as_deref().unwrap(), br#"{"servers":[{"hosts":["a.example.com"]}]}"#);
        assert_eq!(found.applies.as_ref().unwrap().describe, "the gateway pods labelled istio=ingressgateway");
        assert!(examine(found).accepted());

        let raw = read("{\"servers\": [{\"hosts\": [\"a.example.com\"]}], \"mode\": \"dry_run\"}\n");
        assert_eq!(raw.found[0].form, Form::Json);
        assert_eq!(
            raw.found[0].json.as_deref().unwrap(),
            b"{\"servers\": [{\"hosts\": [\"a.example.com\"]}], \"mode\": \"dry_run\"}\n"
        );

        let other = read("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: basic-auth}\nspec: {url: oci://r/auth:1}\n---\nkind: Gateway\napiVersion: networking.istio.io/v1\nmetadata: {name: g}\n");
        assert!(other.found.is_empty());
        assert_eq!(other.skipped.len(), 2, "{:?}", other.skipped);
    }

    #[test]
    fn a_matcher_must_be_named_exactly_where_it_is() {
        let wasm = |config: &str| {
            serde_json::json!({"@type": WASM_TYPE, "config": {"name": "sni-guard", "root_id": "sni-guard",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config}}})
        };
        let plain = SameNameTest::Plain.text();
        let with_matcher = |config: &str| {
            serde_json::json!({"name": "sni-guard", "typed_config": {"@type": EXTENSION_WITH_MATCHER,
                "xds_matcher": serde_json::to_value(matcher::xds_matcher(SameNameTest::Plain)).unwrap(),
                "extension_config": {"name": "sni-guard", "typed_config": wasm(config)}}})
        };
        let named = format!(r#"{{"same_name_matcher": "{plain}"}}"#);
        let reading = |filter: Value| read(&serde_json::json!({"static_resources": {"filters": [filter]}}).to_string());
        assert!(examine(&reading(with_matcher(&named)).found[0]).accepted());
        let missing = examine(&reading(with_matcher("{}")).found[0]);
        assert!(missing.problems[0].contains("must name its test in same_name_matcher: \"request.host"), "{missing:?}");
        let alone = examine(&reading(serde_json::json!({"name": "sni-guard", "typed_config": wasm(&named)})).found[0]);
        assert!(alone.problems[0].contains("puts none there"), "{alone:?}");
        let weaker_than_named = format!(r#"{{"same_name_matcher": "{}"}}"#, SameNameTest::NoTrailingDot.text());
        let mismatch = examine(&reading(with_matcher(&weaker_than_named)).found[0]);
        assert!(mismatch.problems.iter().any(|p| p.contains("not \"request.host == connection.requested_server_name && !request.host.endsWith('.')\" as same_name_matcher says")), "{mismatch:?}");
    }
}
