//! `sni-guard config --kind wasmplugin|trafficextension|envoyfilter`: the whole Istio object
//! carrying the configuration `plugin::generate` made, ready to apply: the module pinned by its
//! digest (`image`), the ports derived from the Gateways (and the Service in front of the
//! gateway), `phase: AUTHN`, `FAIL_OPEN`, and comments saying what was decided and why.
//!
//! The objects are serialised from the structs below by `yaml`, so the YAML is what they say,
//! each comment above the key it explains.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sni_guard::cel::SameNameTest;
use sni_guard::config::{Mode, PluginConfig};

use sha2::{Digest, Sha256};

use crate::cluster::model::{join_labels, Server, GATEWAY_NAME_LABEL};
use crate::cluster::services::{pods_namespace, PodsNamespace, Service, TargetPort};
use crate::generate::image::{Image, Scheme};
use crate::generate::matcher::{self, XdsMatcher};
use crate::generate::plugin::{ConfigFailure, Generated, Request, Target, DEFAULT_PLUGIN_NAMESPACE};
use crate::yaml;

/// Where the EnvoyFilter's Envoy reads the module: a file mounted in the gateway pod.
pub const DEFAULT_MODULE_PATH: &str = "/var/local/lib/wasm/sni-guard.wasm";
pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";
/// The name of the filter, its plugin and its VM in every form: `check` recognises sni-guard's
/// Wasm filter by it.
pub const NAME: &str = "sni-guard";
/// The EnvoyFilter's `priority`: Istio applies EnvoyFilters in ascending priority, so one above the
/// default (0) is applied after most others, and its INSERT_FIRST lands ahead of theirs.
const ENVOYFILTER_PRIORITY: i32 = 1000;

/// What `config` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The configuration alone.
    Json,
    WasmPlugin,
    TrafficExtension,
    EnvoyFilter,
}

/// The object's name and namespace, and how they were decided: one object per gateway workload,
/// so that two workloads' objects never replace one another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub name: String,
    pub namespace: String,
    /// The namespace of the gateway pods, when known (given, or from a Service or the Gateway):
    /// the Services there say which ports they listen on.
    pub pods_namespace: Option<String>,
    pub how: String,
}

/// The longest name Kubernetes takes for these objects (a DNS-1123 subdomain).
const MAX_NAME: usize = 253;

/// `sni-guard-PART-PART...` as a Kubernetes object name: lower case letters, digits, `-` and
/// `.`, starting and ending with a letter or digit, at most 253 characters. A longer one keeps
/// its start and ends with 8 hex digits of the whole name's SHA-256, so two long names stay two.
pub fn object_name(parts: &[&str]) -> String {
    let mut name = NAME.to_owned();
    for part in parts {
        let part: String = part
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c.to_ascii_lowercase() } else { '-' })
            .collect();
        let part = part.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        if !part.is_empty() {
            name.push('-');
            name.push_str(part);
        }
    }
    if name.len() <= MAX_NAME {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let kept = name[..MAX_NAME - hash.len() - 1].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{kept}-{hash}")
}

/// Whether `name` is a name Kubernetes takes for these objects (`--name`).
pub fn valid_object_name(name: &str) -> bool {
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= MAX_NAME
        && ends_ok(name.chars().next())
        && ends_ok(name.chars().last())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// Where the object for `generated`'s workload goes, and its name. For the pods of Istio
/// Gateways: in `--namespace`, else the namespace of the Services in front of them (a plugin
/// applies to the pods of its own namespace), else Istio's root namespace; named after their
/// labels. For a Gateway API Gateway: in its namespace (a WasmPlugin targets only a Gateway
/// of its own), named after it. `--name` names it.
pub fn placement(generated: &Generated, request: &Request, services: &[Service]) -> Result<Placement, ConfigFailure> {
    let (derived, namespace, pods_namespace, how) = match &generated.target {
        Target::Gateway { namespace, name } => (
            object_name(&[name]),
            namespace.clone(),
            Some(namespace.clone()),
            format!("In {namespace}, the namespace of Gateway {namespace}/{name}, which it targets."),
        ),
        Target::Pods(labels) => {
            let values: Vec<&str> = labels.values().map(String::as_str).collect();
            let pods = join_labels(labels);
            let (namespace, known, how) = match (&request.namespace, pods_namespace(services, labels)) {
                (Some(namespace), _) => (
                    namespace.clone(),
                    true,
                    format!("In {namespace}, given with --namespace as the namespace of the gateway pods."),
                ),
                (None, found @ PodsNamespace::Found { namespace, .. }) => (
                    namespace.to_owned(),
                    true,
                    format!(
                        "In {namespace}, where the gateway pods run: {} in front of the pods labelled {pods} is \
                         there, and a plugin applies to the pods of its own namespace.",
                        found.services()
                    ),
                ),
                (None, several @ PodsNamespace::Several(_)) => {
                    return Err(ConfigFailure::Unusable(format!(
                        "the gateway pods labelled {pods} run in several namespaces ({} in front of them): give \
                         --namespace for the one to configure (a plugin applies to the pods of its own namespace; \
                         in Istio's root namespace, to those of every namespace)",
                        several.services()
                    )))
                }
                (None, PodsNamespace::Unknown) => (
                    DEFAULT_PLUGIN_NAMESPACE.to_owned(),
                    false,
                    format!(
                        "In {DEFAULT_PLUGIN_NAMESPACE}, Istio's root namespace by default, where a plugin applies to \
                         the matching pods of every namespace: the input has no Service for the pods labelled {pods} \
                         to say where they run (give it, or --namespace)."
                    ),
                ),
            };
            let pods_namespace = known.then(|| namespace.clone());
            (object_name(&values), namespace, pods_namespace, how)
        }
    };
    let (name, how) = match &request.name {
        Some(name) => (name.clone(), format!("{how} Named {name} by --name.")),
        None => (
            derived.clone(),
            format!(
                "{how} Named {derived} after the workload, so that each gateway workload has its own object \
                 (--name sets another)."
            ),
        ),
    };
    Ok(Placement { name, namespace, pods_namespace, how })
}

/// The ports the plugin is matched on, and how they were decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    pub numbers: Vec<u32>,
    pub how: String,
}

/// The ports of the included servers, as the gateway listens on them. A Gateway names the
/// Service's port; Istio's gateway listens on the Service's `targetPort` for it, which is what a
/// WasmPlugin's `match.ports` and an EnvoyFilter's `portNumber` are compared with. So: the
/// Service in the input that sends to the gateway pods maps each port; without one, an Istio
/// gateway on 443 (or 80) is matched on 8443 (8080) too, the targetPort of the
/// istio-ingressgateway Service `istioctl install` makes; `--match-port` overrides.
pub fn match_ports(
    servers: &[Server],
    generated: &Generated,
    placement: &Placement,
    services: &[Service],
    overrides: &[u32],
) -> Ports {
    let gateway_ports: BTreeSet<u32> = generated.included.iter().map(|&i| servers[i].port.number).collect();
    let listed = |ports: &BTreeSet<u32>| ports.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let on = |ports: &BTreeSet<u32>| format!("{} {}", if ports.len() == 1 { "port" } else { "ports" }, listed(ports));
    if !overrides.is_empty() {
        let numbers: BTreeSet<u32> = overrides.iter().copied().collect();
        return Ports {
            numbers: numbers.iter().copied().collect(),
            how: format!(
                "Ports {}: from --match-port (the Gateways' servers are on {}).",
                listed(&numbers),
                on(&gateway_ports)
            ),
        };
    }
    let (labels, istio) = match &generated.target {
        Target::Pods(labels) => (labels.clone(), true),
        Target::Gateway { name, .. } => (BTreeMap::from([(GATEWAY_NAME_LABEL.to_owned(), name.clone())]), false),
    };
    let namespace = &placement.pods_namespace;
    let fronting: Vec<&Service> = services
        .iter()
        .filter(|s| namespace.as_ref().is_none_or(|ns| *ns == s.namespace))
        .filter(|s| s.fronts(&labels))
        .collect();
    let mut numbers = BTreeSet::new();
    let mut sentences = Vec::new();
    for &port in &gateway_ports {
        // A Service lists a port once per protocol: 443 over TCP and over UDP (HTTP/3) is one
        // mapping here, and the listeners of both are matched by the same number.
        let mut mapped = Vec::new();
        let mut over_udp = Vec::new();
        for service in &fronting {
            let name = format!("{}/{}", service.namespace, service.name);
            for p in service.ports.iter().filter(|p| p.port == port) {
                if !mapped.contains(&(name.clone(), p.target.clone())) {
                    mapped.push((name.clone(), p.target.clone()));
                }
                if p.udp && !over_udp.contains(&name) {
                    over_udp.push(name.clone());
                }
            }
        }
        if mapped.is_empty() {
            numbers.insert(port);
            let default = if istio { [(443, 8443), (80, 8080)].into_iter().find(|(p, _)| *p == port) } else { None };
            match (fronting.is_empty(), default) {
                (true, Some((_, target))) => {
                    numbers.insert(target);
                    sentences.push(format!(
                        "the Gateways' port is {port}; {target} too, since the input has no Service for these pods \
                         and the istio-ingressgateway Service `istioctl install` makes maps {port} to targetPort \
                         {target}, where the gateway then listens (give the Service in the input, or --match-port, \
                         to match one port only)."
                    ));
                }
                (true, None) => sentences.push(format!(
                    "the Gateways' port is {port}; the input has no Service for these pods, so the gateway is taken \
                     to listen on it (give the Service in the input, or --match-port, if it does not)."
                )),
                (false, _) => {
                    let names: Vec<String> = fronting.iter().map(|s| format!("{}/{}", s.namespace, s.name)).collect();
                    sentences.push(format!(
                        "the Gateways' port is {port}; Service {} has no port {port}, so the gateway is taken to \
                         listen on it.",
                        names.join(", ")
                    ));
                }
            }
            continue;
        }
        for (service, target) in mapped {
            match target {
                TargetPort::Number(n) => {
                    numbers.insert(n);
                    if n == port {
                        sentences.push(format!("Service {service} sends the Gateways' port {port} to the same port."));
                    } else {
                        sentences.push(format!(
                            "Service {service} maps the Gateways' port {port} to targetPort {n}, where the gateway \
                             listens."
                        ));
                    }
                }
                TargetPort::Named(name) => {
                    numbers.insert(port);
                    sentences.push(format!(
                        "Service {service} maps the Gateways' port {port} to the named targetPort {}, whose number \
                         only the pod spec says: give it with --match-port.",
                        crate::text::Shown(&name)
                    ));
                }
            }
        }
        if !over_udp.is_empty() {
            sentences.push(format!(
                "Service {} also takes port {port} over UDP: Istio with PILOT_ENABLE_QUIC_LISTENERS then serves \
                 these servers over HTTP/3 too, on a QUIC listener of the same port number, which this matches \
                 as well as the TCP one.",
                over_udp.join(", ")
            ));
        }
    }
    let numbers: BTreeSet<u32> = numbers;
    Ports {
        how: format!("Ports {}: {}", listed(&numbers), sentences.join(" ")),
        numbers: numbers.into_iter().collect(),
    }
}

/// Everything a manifest needs beyond the configuration.
pub struct Manifest<'a> {
    pub kind: Kind,
    pub generated: &'a Generated,
    pub placement: &'a Placement,
    /// The WasmPlugin's and TrafficExtension's module.
    pub image: Option<&'a Image>,
    /// The EnvoyFilter's module, a file in the gateway pod.
    pub module_path: &'a str,
    pub ports: &'a Ports,
    /// How many servers, from how many Gateways: for the first comment line.
    pub summary: String,
    /// The passthrough servers listed (`plugin::passthrough_listed`), each `label (hosts)`.
    pub passthrough: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Object<S> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: S,
}

#[derive(Serialize)]
struct Metadata {
    name: String,
    namespace: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Selector<'a> {
    match_labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct TargetRef<'a> {
    group: &'static str,
    kind: &'static str,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmPluginSpec<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<Selector<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_refs: Option<[TargetRef<'a>; 1]>,
    #[serde(flatten)]
    module: Module<'a>,
    phase: &'static str,
    #[serde(rename = "match")]
    matches: [TrafficSelector; 1],
    plugin_config: &'a PluginConfig,
}

/// The module fields a WasmPlugin's spec and a TrafficExtension's `wasm` share, in the order
/// Istio's documentation gives them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Module<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_pull_policy: Option<&'static str>,
    plugin_name: &'static str,
    #[serde(rename = "type")]
    filter_type: &'static str,
    fail_strategy: &'static str,
}

#[derive(Serialize)]
struct TrafficSelector {
    mode: &'static str,
    ports: Vec<PortSelector>,
}

#[derive(Serialize)]
struct PortSelector {
    number: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TrafficExtensionSpec<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<Selector<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_refs: Option<[TargetRef<'a>; 1]>,
    phase: &'static str,
    #[serde(rename = "match")]
    matches: [TrafficSelector; 1],
    wasm: TrafficExtensionWasm<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TrafficExtensionWasm<'a> {
    #[serde(flatten)]
    module: Module<'a>,
    plugin_config: &'a PluginConfig,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvoyFilterSpec<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    workload_selector: Option<WorkloadSelector<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_refs: Option<[TargetRef<'a>; 1]>,
    priority: i32,
    config_patches: Vec<ConfigPatch<'a>>,
}

#[derive(Serialize)]
struct WorkloadSelector<'a> {
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigPatch<'a> {
    apply_to: &'static str,
    #[serde(rename = "match")]
    matches: PatchMatch,
    patch: Patch<'a>,
}

#[derive(Serialize)]
struct PatchMatch {
    context: &'static str,
    listener: ListenerMatch,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListenerMatch {
    port_number: u32,
    filter_chain: FilterChainMatch,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FilterChainMatch {
    filter: FilterMatch,
}

#[derive(Serialize)]
struct FilterMatch {
    name: &'static str,
}

#[derive(Serialize)]
struct Patch<'a> {
    operation: &'static str,
    value: &'a HttpFilter<'a>,
}

/// sni-guard's HTTP filter behind Envoy's same-name matcher, as Envoy's API spells it.
#[derive(Serialize)]
struct HttpFilter<'a> {
    name: &'static str,
    typed_config: WithMatcher<'a>,
}

#[derive(Serialize)]
struct WithMatcher<'a> {
    #[serde(rename = "@type")]
    type_url: &'static str,
    xds_matcher: XdsMatcher,
    extension_config: ExtensionConfig<'a>,
}

#[derive(Serialize)]
struct ExtensionConfig<'a> {
    name: &'static str,
    typed_config: WasmFilter<'a>,
}

#[derive(Serialize)]
struct WasmFilter<'a> {
    #[serde(rename = "@type")]
    type_url: &'static str,
    config: WasmConfig<'a>,
}

#[derive(Serialize)]
struct WasmConfig<'a> {
    name: &'static str,
    root_id: &'static str,
    failure_policy: &'static str,
    configuration: StringValue,
    vm_config: VmConfig<'a>,
}

#[derive(Serialize)]
struct StringValue {
    #[serde(rename = "@type")]
    type_url: &'static str,
    value: String,
}

#[derive(Serialize)]
struct VmConfig<'a> {
    vm_id: &'static str,
    runtime: &'static str,
    code: Code<'a>,
}

#[derive(Serialize)]
struct Code<'a> {
    local: Local<'a>,
}

#[derive(Serialize)]
struct Local<'a> {
    filename: &'a str,
}

/// The configuration an EnvoyFilter carries: the generated one, naming the matcher in front,
/// the weakest the filter accepts for these servers (`SameNameTest::required`).
pub fn behind_matcher(config: &PluginConfig) -> Result<(PluginConfig, SameNameTest), ConfigFailure> {
    let settings =
        config.validate().map_err(|e| ConfigFailure::Unusable(format!("the configuration does not validate: {e}")))?;
    let test = settings.same_name;
    Ok((PluginConfig { same_name_matcher: Some(test.text().to_owned()), ..config.clone() }, test))
}

/// What a manifest is made of: the paragraphs of its header comment, the object, and the
/// comments above some of its keys.
pub struct Parts {
    pub header: Vec<String>,
    pub object: serde_yaml_ng::Value,
    pub comments: Vec<(&'static str, String)>,
}

/// The manifest as YAML, with its comments; the configuration in it is checked with the filter's
/// own parser first.
pub fn yaml(manifest: &Manifest) -> Result<String, ConfigFailure> {
    let parts = parts(manifest)?;
    let mut out = String::new();
    for (i, paragraph) in parts.header.iter().enumerate() {
        if i > 0 {
            out.push_str("#\n");
        }
        out.push_str(&yaml::comment(paragraph));
    }
    // The Envoy configuration's JSON (`value`) as a literal block, one server a line.
    let body =
        yaml::document_with_blocks(&parts.object, &parts.comments, &["value"]).map_err(ConfigFailure::Unusable)?;
    Ok(out + &body)
}

/// The manifest's parts (`yaml` writes them).
pub fn parts(manifest: &Manifest) -> Result<Parts, ConfigFailure> {
    let generated = manifest.generated;
    let what = match &generated.target {
        Target::Pods(labels) => format!("the gateway pods labelled {}", join_labels(labels)),
        Target::Gateway { namespace, name } => format!("Gateway {namespace}/{name}"),
    };
    let (name, namespace) = (manifest.placement.name.clone(), manifest.placement.namespace.clone());
    let (selector, target_refs) = match &generated.target {
        Target::Pods(labels) => (Some(labels), None),
        Target::Gateway { name, .. } => {
            (None, Some([TargetRef { group: "gateway.networking.k8s.io", kind: "Gateway", name }]))
        }
    };
    let metadata = Metadata { name, namespace };
    let matches = || {
        [TrafficSelector {
            mode: "CLIENT",
            ports: manifest.ports.numbers.iter().map(|&number| PortSelector { number }).collect(),
        }]
    };
    fn module(image: &Image) -> Module<'_> {
        Module {
            url: &image.url,
            sha256: image.sha256.as_deref(),
            image_pull_policy: (image.scheme == Scheme::Oci).then_some("IfNotPresent"),
            plugin_name: NAME,
            filter_type: "HTTP",
            fail_strategy: "FAIL_OPEN",
        }
    }
    let image = || manifest.image.ok_or_else(|| ConfigFailure::Unusable("this kind needs the module: --image".into()));
    // Checked like the JSON output: the manifest embeds the same validated value.
    crate::generate::plugin::to_json(&generated.config)?;
    let mut header = vec![format!("sni-guard for {what}: {}.", manifest.summary)];
    if !manifest.passthrough.is_empty() {
        header.push(format!(
            "Listed although TLS passthrough: {}. Each is on a port where other servers terminate TLS; when a \
             certificate they present covers its hosts (`sni-guard audit` says), a browser carries those hosts on \
             their connections, to a route table that answers 404. Listed, such a request gets 421 and is retried \
             on a connection of its own, which Envoy forwards to the passthrough backend; its own connections never \
             reach the filter. --no-passthrough leaves them out.",
            manifest.passthrough.join("; ")
        ));
    }
    let (object, mut comments) = match manifest.kind {
        Kind::Json => return Err(ConfigFailure::Unusable("--kind json has no manifest".into())),
        Kind::WasmPlugin => {
            let image = image()?;
            let spec = WasmPluginSpec {
                selector: selector.map(|match_labels| Selector { match_labels }),
                target_refs,
                module: module(image),
                phase: "AUTHN",
                matches: matches(),
                plugin_config: &generated.config,
            };
            let object = Object { api_version: "extensions.istio.io/v1alpha1", kind: "WasmPlugin", metadata, spec };
            (to_value(&object)?, module_comments(image, manifest.ports))
        }
        Kind::TrafficExtension => {
            let image = image()?;
            header.push(
                "A TrafficExtension (extensions.istio.io/v1alpha1, Istio 1.31 and later) is the WasmPlugin in \
                 Istio's newer API: its `wasm` block holds what a WasmPlugin's spec holds. Apply it instead of a \
                 WasmPlugin, not beside one."
                    .into(),
            );
            let spec = TrafficExtensionSpec {
                selector: selector.map(|match_labels| Selector { match_labels }),
                target_refs,
                phase: "AUTHN",
                matches: matches(),
                wasm: TrafficExtensionWasm { module: module(image), plugin_config: &generated.config },
            };
            let object =
                Object { api_version: "extensions.istio.io/v1alpha1", kind: "TrafficExtension", metadata, spec };
            (to_value(&object)?, module_comments(image, manifest.ports))
        }
        Kind::EnvoyFilter => {
            let (config, test) = behind_matcher(&generated.config)?;
            let value = envoy_configuration(&config)?;
            header.push(format!(
                "An EnvoyFilter patches the Envoy configuration Istio generates, and can break on an Istio upgrade: \
                 prefer `sni-guard config --kind wasmplugin` where Istio has WasmPlugin. Its one advantage: \
                 Envoy's same-name matcher in front of the filter skips it, without a call into Wasm, for a request \
                 whose :authority is exactly the SNI (nearly all). The matcher's test is {:?}, the weakest the \
                 filter accepts for these servers, and same_name_matcher in the configuration names it.",
                test.text()
            ));
            header.push(format!(
                "The module is read from {} in the gateway pod: mount dist/sni-guard.wasm there (a ConfigMap or a \
                 volume in the gateway Deployment); --module-path sets another path.",
                manifest.module_path
            ));
            let filter = HttpFilter {
                name: NAME,
                typed_config: WithMatcher {
                    type_url: matcher::EXTENSION_WITH_MATCHER,
                    xds_matcher: matcher::xds_matcher(test),
                    extension_config: ExtensionConfig {
                        name: NAME,
                        typed_config: WasmFilter {
                            type_url: WASM_TYPE,
                            config: WasmConfig {
                                name: NAME,
                                root_id: NAME,
                                failure_policy: "FAIL_OPEN",
                                configuration: StringValue { type_url: STRING_VALUE, value },
                                vm_config: VmConfig {
                                    vm_id: NAME,
                                    runtime: "envoy.wasm.runtime.v8",
                                    code: Code { local: Local { filename: manifest.module_path } },
                                },
                            },
                        },
                    },
                },
            };
            let spec = EnvoyFilterSpec {
                workload_selector: selector.map(|labels| WorkloadSelector { labels }),
                target_refs,
                priority: ENVOYFILTER_PRIORITY,
                config_patches: manifest
                    .ports
                    .numbers
                    .iter()
                    .map(|&port_number| ConfigPatch {
                        apply_to: "HTTP_FILTER",
                        matches: PatchMatch {
                            context: "GATEWAY",
                            listener: ListenerMatch {
                                port_number,
                                filter_chain: FilterChainMatch {
                                    filter: FilterMatch { name: "envoy.filters.network.http_connection_manager" },
                                },
                            },
                        },
                        patch: Patch { operation: "INSERT_FIRST", value: &filter },
                    })
                    .collect(),
            };
            let object = Object { api_version: "networking.istio.io/v1alpha3", kind: "EnvoyFilter", metadata, spec };
            let comments = vec![
                (
                    "priority",
                    "Istio applies EnvoyFilters in ascending priority: this one after those of lower priority (the \
                     default is 0), so that its INSERT_FIRST puts sni-guard ahead of any filter they insert first \
                     too. Keep it above theirs."
                        .to_owned(),
                ),
                (
                    "configPatches",
                    format!(
                        "One patch per port the gateway listens on. {} Each inserts sni-guard as the first HTTP \
                         filter (INSERT_FIRST, applied to the filters Istio built) in every HTTP filter chain of \
                         that port, each with the whole gateway's servers: a misdirected request is answered 421 \
                         before any filter that could answer it for the wrong server (a CUSTOM AuthorizationPolicy's \
                         ext_authz, RequestAuthentication's jwt_authn, ALLOW/DENY RBAC) and before the routes \
                         (pilot/pkg/networking/core/listener_builder.go builds that list; \
                         envoyfilter/listener_patch.go applies the patch).",
                        manifest.ports.how
                    ),
                ),
                (
                    "failure_policy",
                    "FAIL_OPEN: a module that crashes while serving is skipped rather than failing every request; \
                     sni-guard repairs routing, it is not an access control. A module or configuration that fails \
                     to load is refused with the whole listener update, whatever this says (check it first)."
                        .to_owned(),
                ),
            ];
            (to_value(&object)?, comments)
        }
    };
    comments.insert(0, ("metadata", manifest.placement.how.clone()));
    header.push(mode_comment(generated.config.mode));
    header.push(
        "Per-pair counters: sni-guard counts each misdirected request by the pair of servers, in Istio's \
         tag form (sni_guard.connection_server=.=A;.;host_server=.=B;.;rejected_by_server). To get them as \
         Prometheus labels, add `extraStatTags: [connection_server, host_server]` to meshConfig.defaultConfig, or \
         annotate the gateway pods with `sidecar.istio.io/extraStatTags: connection_server,host_server`."
            .into(),
    );
    header.push(
        "Before applying: `sni-guard check FILE` reads the configuration with the filter's own parser. Later, \
         `sni-guard audit --deployed FILE GATEWAYS...` exits 1 when the Gateways have drifted from it."
            .into(),
    );
    Ok(Parts { header, object, comments })
}

/// The configuration as an Envoy `StringValue` holds it: JSON with one server per line, read
/// back by the filter's own entry point before it is written.
fn envoy_configuration(config: &PluginConfig) -> Result<String, ConfigFailure> {
    let unwritable = |e: serde_json::Error| ConfigFailure::Unusable(format!("cannot write the configuration: {e}"));
    let rest = serde_json::to_string(&PluginConfig { servers: Vec::new(), ..config.clone() }).map_err(unwritable)?;
    let text = if config.servers.is_empty() {
        rest + "\n"
    } else {
        let servers: Vec<String> = config
            .servers
            .iter()
            .map(|s| serde_json::to_string(s).map(|s| format!("  {s}")))
            .collect::<Result<_, _>>()
            .map_err(unwritable)?;
        format!("{{\"servers\": [\n{}\n],\n{}\n", servers.join(",\n"), rest.trim_start_matches('{'))
    };
    match sni_guard::config::Settings::from_json(text.as_bytes()) {
        Ok(_) => Ok(text),
        Err(e) => Err(ConfigFailure::Unusable(format!("the written configuration does not load: {e}"))),
    }
}

fn mode_comment(mode: Mode) -> String {
    match mode {
        Mode::DryRun => "Mode dry_run, the default for a first rollout: a misdirected request is counted \
                         (sni_guard.dry_run_mismatch) and logged, then let through. When that counter and the log \
                         show only the requests you expect, write this again with --mode enforce."
            .into(),
        Mode::Enforce => "Mode enforce (--mode enforce): a misdirected request is answered 421, and the browser \
                          retries it on a new connection."
            .into(),
    }
}

fn module_comments(image: &Image, ports: &Ports) -> Vec<(&'static str, String)> {
    let url = match (image.scheme, &image.sha256) {
        (Scheme::Oci, _) => format!(
            "oci://: sha256 is {}. Istio's agent compares it with the digest of the image manifest it pulls (not \
             the .wasm inside), so a re-pushed tag cannot swap the module under the gateway.",
            image.origin
        ),
        (Scheme::Http, _) => format!(
            "sha256 is {}. Istio's agent downloads the module and compares it with the sha256 of the bytes.",
            image.origin
        ),
        (Scheme::File, Some(_)) => format!(
            "file://: Envoy reads the module from the gateway pod; Istio does not check sha256 for it (here {}).",
            image.origin
        ),
        (Scheme::File, None) => "file://: Envoy reads the module from the gateway pod; Istio does not check a sha256 \
                                 for it."
            .into(),
    };
    vec![
        ("url", url),
        (
            "phase",
            "AUTHN, the earliest phase Istio has: a misdirected request is answered 421 before \
             RequestAuthentication's jwt_authn, ALLOW/DENY authorization and the routes (the wrong server's routes \
             would answer 404). A CUSTOM AuthorizationPolicy's ext_authz runs before every phase (Istio's \
             listener_builder.go): on a gateway with one, use --kind envoyfilter, which puts sni-guard first."
                .into(),
        ),
        (
            "failStrategy",
            "FAIL_OPEN: if the module crashes while serving (or, per Istio's documentation, cannot be fetched), the \
             plugin is skipped and traffic flows as before sni-guard; sni-guard repairs routing, it is not an \
             access control. A configuration the filter refuses is not covered: Envoy keeps the previous one."
                .into(),
        ),
        (
            "match",
            format!(
                "Istio counts gateway listeners as CLIENT traffic (SERVER would never match a gateway). {}",
                ports.how
            ),
        ),
    ]
}

/// The object as a YAML value, its keys in the order of its fields.
fn to_value<T: Serialize>(object: &T) -> Result<serde_yaml_ng::Value, ConfigFailure> {
    serde_yaml_ng::to_value(object).map_err(|e| ConfigFailure::Unusable(format!("cannot write the manifest: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_stay_within_kubernetes_limits() {
        assert_eq!(object_name(&["ingressgateway"]), "sni-guard-ingressgateway");
        assert_eq!(
            object_name(&["istio-ingressgateway", "ingressgateway"]),
            "sni-guard-istio-ingressgateway-ingressgateway"
        );
        assert_eq!(object_name(&["Internal_GW."]), "sni-guard-internal-gw");
        assert_eq!(object_name(&[]), "sni-guard");
        // A Gateway name may be 253 characters: the object's name keeps its start and a hash.
        let long = |last: char| format!("{}{last}", "g".repeat(252));
        let (a, b) = (object_name(&[&long('a')]), object_name(&[&long('b')]));
        assert_eq!((a.len(), b.len()), (253, 253));
        assert!(a.starts_with("sni-guard-gggg"), "{a}");
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!(valid_object_name(name), "{name}");
        }
        for bad in ["", "Sni-guard", "sni-guard-", "-x", "a_b", &"x".repeat(254)] {
            assert!(!valid_object_name(bad), "{bad:?}");
        }
    }
}
