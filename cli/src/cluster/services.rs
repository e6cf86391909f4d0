//! Services: the Service in front of a gateway's pods says where those pods run (their
//! namespace: where Istio reads `credentialName` Secrets, where a plugin for them goes) and
//! which port of theirs each of its ports goes to (what `config` matches the plugin on).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::documents::{type_name, InputError};

/// A Kubernetes Service, as far as `config` cares: which pods it sends to, and which port of
/// theirs each of its ports goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// `spec.selector`; empty for a Service without one (its endpoints are managed by hand).
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub port: u32,
    pub target: TargetPort,
    /// `spec.ports[].protocol` is UDP: Istio then also serves the gateway's HTTPS servers on
    /// that port over QUIC (HTTP/3), when its QUIC listeners are on.
    pub udp: bool,
}

/// `spec.ports[].targetPort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    /// A number, or absent (Kubernetes then uses `port`).
    Number(u32),
    /// A container port's name: which number it is, only the pod spec says.
    Named(String),
}

pub(super) fn read_service(
    object: &Map<String, Value>,
    at: &str,
    namespace: String,
    name: String,
) -> Result<Service, InputError> {
    let refuse = |field: &str, problem: String| InputError(format!("{at}: {field}: {problem}"));
    let spec = match object.get("spec") {
        None | Some(Value::Null) => {
            return Ok(Service { namespace, name, selector: BTreeMap::new(), ports: Vec::new() })
        }
        Some(Value::Object(spec)) => spec,
        Some(other) => return Err(refuse("spec", format!("expected a mapping, found {}", type_name(other)))),
    };
    let mut selector = BTreeMap::new();
    match spec.get("selector") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            for (key, value) in labels {
                let Value::String(value) = value else {
                    return Err(refuse(
                        &format!("spec.selector.{key}"),
                        format!("expected a string, found {}", type_name(value)),
                    ));
                };
                selector.insert(key.clone(), value.clone());
            }
        }
        Some(other) => return Err(refuse("spec.selector", format!("expected a mapping, found {}", type_name(other)))),
    }
    let mut ports = Vec::new();
    let items = match spec.get("ports") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(other) => return Err(refuse("spec.ports", format!("expected a list, found {}", type_name(other)))),
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("spec.ports[{i}]");
        let number = |value: &Value, field: &str| match value.as_u64() {
            Some(n @ 1..=65535) => Ok(n as u32),
            _ => Err(refuse(field, format!("{value} is not a port number (1 to 65535)"))),
        };
        let Some(item) = item.as_object() else {
            return Err(refuse(&field, format!("expected a mapping, found {}", type_name(item))));
        };
        let port_field = format!("{field}.port");
        let port = number(item.get("port").ok_or_else(|| refuse(&port_field, "missing".into()))?, &port_field)?;
        let target = match item.get("targetPort") {
            None | Some(Value::Null) => TargetPort::Number(port),
            Some(Value::String(name)) => match name.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => TargetPort::Number(n),
                _ => TargetPort::Named(name.clone()),
            },
            Some(value) => TargetPort::Number(number(value, &format!("{field}.targetPort"))?),
        };
        let udp = match item.get("protocol") {
            None | Some(Value::Null) => false,
            Some(Value::String(protocol)) => protocol == "UDP",
            Some(other) => {
                return Err(refuse(
                    &format!("{field}.protocol"),
                    format!("expected a string, found {}", type_name(other)),
                ))
            }
        };
        ports.push(ServicePort { port, target, udp });
    }
    Ok(Service { namespace, name, selector, ports })
}

/// Whether `small`'s labels are all in `large`.
fn subset(small: &BTreeMap<String, String>, large: &BTreeMap<String, String>) -> bool {
    small.iter().all(|(k, v)| large.get(k) == Some(v))
}

impl Service {
    /// Whether this Service sends to the gateway pods with `labels`: its selector and the labels
    /// agree (either holds the other), so the pods behind it carry `labels`.
    pub fn fronts(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.selector.is_empty() && (subset(&self.selector, labels) || subset(labels, &self.selector))
    }

    /// `namespace/name`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Where the gateway pods with some labels run, as the Services in front of them say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodsNamespace<'a> {
    /// No Service in the input sends to them.
    Unknown,
    /// Every Service in front of them is in `namespace`.
    Found { namespace: &'a str, services: Vec<&'a Service> },
    /// Services in front of pods with these labels are in several namespaces: as many
    /// deployments.
    Several(Vec<&'a Service>),
}

/// The Services in front of the gateway pods with `labels`, and so where those pods run.
pub fn pods_namespace<'a>(services: &'a [Service], labels: &BTreeMap<String, String>) -> PodsNamespace<'a> {
    let fronting: Vec<&Service> = services.iter().filter(|s| s.fronts(labels)).collect();
    match fronting.first() {
        None => PodsNamespace::Unknown,
        Some(first) if fronting.iter().all(|s| s.namespace == first.namespace) => {
            PodsNamespace::Found { namespace: &first.namespace, services: fronting }
        }
        Some(_) => PodsNamespace::Several(fronting),
    }
}

impl PodsNamespace<'_> {
    /// `Service a/b` or `Services a/b, a/c`.
    pub fn services(&self) -> String {
        let services = match self {
            PodsNamespace::Unknown => return String::new(),
            PodsNamespace::Found { services, .. } | PodsNamespace::Several(services) => services,
        };
        let names: Vec<String> = services.iter().map(|s| s.label()).collect();
        format!("{} {}", if names.len() == 1 { "Service" } else { "Services" }, names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(namespace: &str, name: &str, selector: &[(&str, &str)]) -> Service {
        Service {
            namespace: namespace.into(),
            name: name.into(),
            selector: selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ports: Vec::new(),
        }
    }

    #[test]
    fn the_services_in_front_of_the_pods_say_where_they_run() {
        let services = [
            service(
                "istio-system",
                "istio-ingressgateway",
                &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
            ),
            service("istio-ingress-internal", "internal-gateway", &[("istio", "internal-gateway")]),
            service("default", "kubernetes", &[]),
            service("kube-system", "kube-dns", &[("k8s-app", "kube-dns")]),
        ];
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        match pods_namespace(&services, &labels(&[("istio", "ingressgateway")])) {
            PodsNamespace::Found { namespace, services } => {
                assert_eq!((namespace, services.len()), ("istio-system", 1));
            }
            other => panic!("{other:?}"),
        }
        let internal = pods_namespace(&services, &labels(&[("istio", "internal-gateway"), ("app", "internal")]));
        assert!(matches!(internal, PodsNamespace::Found { namespace: "istio-ingress-internal", .. }), "{internal:?}");
        assert_eq!(internal.services(), "Service istio-ingress-internal/internal-gateway");
        assert_eq!(pods_namespace(&services, &labels(&[("istio", "eastwest")])), PodsNamespace::Unknown);
        let twice =
            [services[0].clone(), service("istio-canary", "istio-ingressgateway", &[("istio", "ingressgateway")])];
        assert!(
            matches!(pods_namespace(&twice, &labels(&[("istio", "ingressgateway")])), PodsNamespace::Several(s) if s.len() == 2)
        );
    }
}
