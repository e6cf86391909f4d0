//! A generated fleet: what `kubectl get gateways.networking.istio.io,gateways.gateway.networking.k8s.io,
//! services,secrets -A -o yaml` prints for a cluster shaped like a platform team's (issue #19),
//! at any number of servers. One generator for the tests (`cli/tests/fleet.rs`), the benchmark
//! (`cargo run --release -p sni-guard-cli --example fleet`, run by `bench/run.py --cli`) and the
//! Envoy test of a passthrough host (`e2e/envoy/test_fleet_passthrough.py`).
//!
//! A `kind: List` with `managedFields`, `status` and the other fields the API server adds:
//!
//! - two Istio ingress deployments: `istio=ingressgateway` in `istio-system` and
//!   `istio=internal-gateway` in `istio-ingress-internal`, each behind a Service mapping 443 to
//!   8443;
//! - on the public one, Gateway `web/portal` (`portal.corp.example`, certificate
//!   `*.corp.example` from Secret `istio-system/corp-wildcard`, and its port-80 redirect),
//!   Gateway `legacy/legacy` (`legacy.corp.example`, PASSTHROUGH on 443), and the app servers
//!   `app-N.corp.example`, ten to a Gateway, in five team namespaces: each presents the
//!   wildcard certificate (`Certificates::Wildcard`) or one certificate naming every app host
//!   (`Certificates::San`, Secret `istio-system/apps-san`);
//! - on the internal one, Gateway `ops/internal` with `grafana.ops.corp.example` and
//!   `kibana.ops.corp.example` on one SAN certificate whose Secret (`ops-san`) is only in
//!   `istio-ingress-internal`;
//! - a Gateway API Gateway `edge/edge` (class `istio`, its Service `edge/edge-istio`):
//!   listener `www` with the certificate `*.edge.example` from Secret `certs/edge-wildcard` (a
//!   ReferenceGrant in `certs` allows it), `pay` with its own, and `http`;
//! - Services and Secrets of other kinds, as a cluster has them.
//!
//! Certificates are made with openssl (`certs.rs`): every run has new fingerprints.

#![allow(dead_code)]

use serde_json::{json, Value};

use super::certs::{certificate, KEY_MARKER};

/// Which certificate the app servers present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certificates {
    /// `*.corp.example`, as the portal does: one name covering every app host.
    Wildcard,
    /// One certificate listing every app host: as many names as app servers.
    San,
}

pub const PUBLIC_SELECTOR: &str = "istio=ingressgateway";
pub const PUBLIC_NAMESPACE: &str = "istio-system";
pub const INTERNAL_SELECTOR: &str = "istio=internal-gateway";
pub const INTERNAL_NAMESPACE: &str = "istio-ingress-internal";
pub const EDGE_SELECTOR: &str = "gateway.networking.k8s.io/gateway-name=edge";
pub const EDGE_NAMESPACE: &str = "edge";
pub const PORTAL_HOST: &str = "portal.corp.example";
pub const PASSTHROUGH_HOST: &str = "legacy.corp.example";
pub const INTERNAL_HOSTS: [&str; 2] = ["grafana.ops.corp.example", "kibana.ops.corp.example"];
/// The servers besides the app servers: portal's two, legacy's, internal's two, edge's three.
pub const OTHER_SERVERS: usize = 8;

pub struct Fleet {
    /// Every server, app servers and the others (at least `OTHER_SERVERS`).
    pub servers: usize,
    pub certificates: Certificates,
}

pub fn app_host(n: usize) -> String {
    format!("app-{n}.corp.example")
}

const TIME: &str = "2026-05-04T09:00:00Z";

impl Fleet {
    pub fn apps(&self) -> usize {
        self.servers.saturating_sub(OTHER_SERVERS)
    }

    /// The fleet as `kubectl get ... -A -o yaml` prints it.
    pub fn yaml(&self) -> String {
        serde_yaml_ng::to_string(&self.list()).expect("the fleet serialises")
    }

    pub fn list(&self) -> Value {
        let mut items = vec![
            service(
                PUBLIC_NAMESPACE,
                "istio-ingressgateway",
                json!({"app": "istio-ingressgateway", "istio": "ingressgateway"}),
                &[("status-port", 15021, 15021), ("http2", 80, 8080), ("https", 443, 8443)],
            ),
            service(
                INTERNAL_NAMESPACE,
                "internal-gateway",
                json!({"app": "internal-gateway", "istio": "internal-gateway"}),
                &[("status-port", 15021, 15021), ("https", 443, 8443)],
            ),
            service(
                EDGE_NAMESPACE,
                "edge-istio",
                json!({"gateway.networking.k8s.io/gateway-name": "edge"}),
                &[("status-port", 15021, 15021), ("https", 443, 443), ("http", 80, 80)],
            ),
            service("kube-system", "kube-dns", json!({"k8s-app": "kube-dns"}), &[("dns", 53, 53)]),
            service("default", "kubernetes", Value::Null, &[("https", 443, 6443)]),
            istio_gateway(
                "web",
                "portal",
                "ingressgateway",
                vec![
                    https_server("https-portal", PORTAL_HOST, "corp-wildcard"),
                    json!({"port": {"number": 80, "name": "http-portal", "protocol": "HTTP"},
                           "hosts": [PORTAL_HOST], "tls": {"httpsRedirect": true}}),
                ],
            ),
            istio_gateway(
                "legacy",
                "legacy",
                "ingressgateway",
                vec![json!({"port": {"number": 443, "name": "tls-legacy", "protocol": "TLS"},
                            "hosts": [PASSTHROUGH_HOST], "tls": {"mode": "PASSTHROUGH"}})],
            ),
        ];
        let credential = match self.certificates {
            Certificates::Wildcard => "corp-wildcard",
            Certificates::San => "apps-san",
        };
        let apps = self.apps();
        for (g, first) in (0..apps).step_by(10).enumerate() {
            let servers = (first..apps.min(first + 10))
                .map(|n| https_server(&format!("https-app-{n}"), &app_host(n), credential))
                .collect();
            items.push(istio_gateway(&format!("team-{}", g % 5), &format!("apps-{g}"), "ingressgateway", servers));
        }
        items.push(istio_gateway(
            "ops",
            "internal",
            "internal-gateway",
            INTERNAL_HOSTS
                .iter()
                .map(|h| https_server(&format!("https-{}", &h[..h.find('.').unwrap_or(0)]), h, "ops-san"))
                .collect(),
        ));
        items.push(edge_gateway());
        items.push(reference_grant());
        items.push(tls_secret(
            PUBLIC_NAMESPACE,
            "corp-wildcard",
            &certificate("corp.example", &["*.corp.example", "corp.example"]),
        ));
        if self.certificates == Certificates::San {
            let hosts: Vec<String> = (0..apps).map(app_host).collect();
            let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
            items.push(tls_secret(PUBLIC_NAMESPACE, "apps-san", &certificate("apps.corp.example", &names)));
        }
        items.push(tls_secret(INTERNAL_NAMESPACE, "ops-san", &certificate("ops.corp.example", &INTERNAL_HOSTS)));
        items.push(tls_secret("certs", "edge-wildcard", &certificate("edge.example", &["*.edge.example"])));
        items.push(tls_secret(EDGE_NAMESPACE, "pay-edge", &certificate("pay.edge.example", &["pay.edge.example"])));
        items.push(json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": metadata("istio-system", "sh.helm.release.v1.istio-base.v1", "v1", json!({"f:data": {}})),
            "data": {"release": "H4sIAAAAAAAC/6tWKkktLlGyUlAqS8wpTgUAVfOJ9RIAAAA="}}));
        items.push(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": metadata("default", "registry-credentials", "v1", json!({"f:data": {}})),
            "data": {".dockerconfigjson": "e30="}}));
        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
    }
}

/// `metadata` as the API server returns it, with one `managedFields` entry for `fields`.
fn metadata(namespace: &str, name: &str, api_version: &str, fields: Value) -> Value {
    let uid = format!("{:08x}-0000-4000-8000-{:012x}", name.len() * 7919 + namespace.len(), name.len() * 104_729);
    json!({
        "creationTimestamp": TIME,
        "generation": 1,
        "managedFields": [{"apiVersion": api_version, "fieldsType": "FieldsV1", "fieldsV1": fields,
                           "manager": "kubectl-client-side-apply", "operation": "Update", "time": TIME}],
        "name": name,
        "namespace": namespace,
        "resourceVersion": "184467",
        "uid": uid,
    })
}

fn service(namespace: &str, name: &str, selector: Value, ports: &[(&str, u32, u32)]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(port_name, port, target)| {
            json!({"name": port_name, "port": port, "protocol": "TCP", "targetPort": target})
        })
        .collect();
    let mut spec = json!({"clusterIP": "10.96.12.34", "ports": ports, "type": "ClusterIP"});
    if !selector.is_null() {
        spec["selector"] = selector;
        spec["type"] = json!("LoadBalancer");
    }
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": metadata(namespace, name, "v1", json!({"f:spec": {"f:ports": {}, "f:selector": {}}})),
        "spec": spec,
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}},
    })
}

fn https_server(port_name: &str, host: &str, credential: &str) -> Value {
    json!({"port": {"number": 443, "name": port_name, "protocol": "HTTPS"}, "hosts": [host],
           "tls": {"mode": "SIMPLE", "credentialName": credential}})
}

fn istio_gateway(namespace: &str, name: &str, istio: &str, servers: Vec<Value>) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": metadata(namespace, name, "networking.istio.io/v1",
                             json!({"f:spec": {".": {}, "f:selector": {}, "f:servers": {}}})),
        "spec": {"selector": {"istio": istio}, "servers": servers},
    })
}

fn edge_gateway() -> Value {
    let listener_status = |name: &str| {
        json!({"name": name, "attachedRoutes": 1, "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
               "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "lastTransitionTime": TIME, "message": "", "observedGeneration": 1}]})
    };
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": metadata(EDGE_NAMESPACE, "edge", "gateway.networking.k8s.io/v1",
                             json!({"f:spec": {".": {}, "f:gatewayClassName": {}, "f:listeners": {}}})),
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [
                {"name": "www", "hostname": "www.edge.example", "port": 443, "protocol": "HTTPS",
                 "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": "edge-wildcard", "namespace": "certs"}]},
                 "allowedRoutes": {"namespaces": {"from": "Same"}}},
                {"name": "pay", "hostname": "pay.edge.example", "port": 443, "protocol": "HTTPS",
                 "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "pay-edge"}]},
                 "allowedRoutes": {"namespaces": {"from": "Same"}}},
                {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "Same"}}},
            ],
        },
        "status": {
            "addresses": [{"type": "IPAddress", "value": "203.0.113.20"}],
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "lastTransitionTime": TIME, "message": "Resource accepted", "observedGeneration": 1},
                {"type": "Programmed", "status": "True", "reason": "Programmed", "lastTransitionTime": TIME, "message": "Resource programmed", "observedGeneration": 1},
            ],
            "listeners": [listener_status("www"), listener_status("pay"), listener_status("http")],
        },
    })
}

fn reference_grant() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": metadata("certs", "edge-certificates", "gateway.networking.k8s.io/v1beta1", json!({"f:spec": {}})),
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": EDGE_NAMESPACE}],
                 "to": [{"group": "", "kind": "Secret", "name": "edge-wildcard"}]},
    })
}

fn tls_secret(namespace: &str, name: &str, pem: &str) -> Value {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": metadata(namespace, name, "v1", json!({"f:data": {".": {}, "f:tls.crt": {}, "f:tls.key": {}}, "f:type": {}})),
        "data": {"tls.crt": b64(pem.as_bytes()), "tls.key": b64(KEY_MARKER.as_bytes())},
    })
}
