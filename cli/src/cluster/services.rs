//! Services: `config` reads the port a gateway listens on from the Service in front of its
//! pods.

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
