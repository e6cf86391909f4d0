//! The `sni-guard` command on a generated fleet (`support/fleet.rs`): two ingress deployments in
//! two namespaces behind their Services, a wildcard and a SAN certificate, a passthrough server,
//! a Gateway API Gateway, and thousands of app servers.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/run.rs"]
mod run;
#[path = "support/scratch.rs"]
mod scratch;

use std::time::{Duration, Instant};

use fleet::{Certificates, Fleet};
use run::sni_guard;
use scratch::Scratch;

fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `sni-guard ARGS`, and how long it took.
fn timed(args: &[&str]) -> ((i32, String, String), Duration) {
    let start = Instant::now();
    let ran = sni_guard(args);
    (ran, start.elapsed())
}

/// The audit, `merge` and the JSON report grow with the servers, not with their cube: 4,000
/// servers under one wildcard certificate, and 1,000 on one certificate naming all of them.
/// Before the index, a release build took 5.3 s for 1,000 under the wildcard and did not finish
/// 4,000 in 20 minutes; this debug build takes about a second. The bound leaves room for a
/// loaded machine, none for a cubic audit.
#[test]
fn the_audit_grows_with_the_servers() {
    let scratch = Scratch::new("fleet-scale");
    for (servers, certificates) in [(4_000, Certificates::Wildcard), (1_000, Certificates::San)] {
        let fleet = Fleet { servers, certificates };
        let input = scratch.write(&format!("{servers}.yaml"), &fleet.yaml());
        let ((code, out, err), took) = timed(&["audit", &input]);
        assert_eq!(code, 1, "{err}");
        let public = format!(
            "Conflict 1: OverlappingCertificates, istio=ingressgateway port 443, {} servers\n",
            fleet.apps() + 1
        );
        assert!(out.starts_with(&public), "{}", &out[..out.len().min(2000)]);
        assert!(out.contains(&format!("{servers} servers in ")), "{}", &out[out.len().saturating_sub(500)..]);
        assert!(took < Duration::from_secs(60), "audit of {servers} servers ({certificates:?}): {took:?}");
        if certificates == Certificates::San {
            // The certificate of 992 names is listed once in full (JSON), and shortened in text.
            assert!(flat(&out).contains("certificate app-0.corp.example, app-1.corp.example,"), "{}", &out[..2000]);
            assert!(flat(&out).contains("and 982 more names (`--output json` lists them)"), "{}", &out[..2000]);
        }

        let ((code, merged, err), took) = timed(&["merge", &input]);
        assert_eq!(code, 0, "{err}");
        assert!(merged.contains(&fleet::app_host(fleet.apps() - 1)), "{merged}");
        assert!(took < Duration::from_secs(60), "merge of {servers} servers ({certificates:?}): {took:?}");
        // Each member's "Certificate change" names at most 10 of the certificate's names: listing
        // them all for each member made `merge` write 92 MB for 2,000 servers (release build).
        assert!(merged.len() < servers * 2_000, "merge of {servers} servers wrote {} bytes", merged.len());

        let ((code, json, err), took) = timed(&["audit", "-o", "json", &input]);
        assert_eq!(code, 1, "{err}");
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(doc["summary"]["servers"], servers);
        assert_eq!(doc["conflicts"][0]["servers"].as_array().unwrap().len(), fleet.apps() + 1);
        assert!(took < Duration::from_secs(60), "JSON audit of {servers} servers ({certificates:?}): {took:?}");
        // Each certificate once: the report grows with servers + names, not servers × names.
        let names: usize =
            doc["certificates"].as_object().unwrap().values().map(|c| c["names"].as_array().unwrap().len()).sum();
        assert!(names < servers + 10, "{names} certificate names in the report");
    }
}

/// The three workloads of the fleet: `--selector`, and where and under which name their object
/// goes.
const WORKLOADS: [(&str, &str, &str); 3] = [
    (fleet::PUBLIC_SELECTOR, fleet::PUBLIC_NAMESPACE, "sni-guard-ingressgateway"),
    (fleet::INTERNAL_SELECTOR, fleet::INTERNAL_NAMESPACE, "sni-guard-internal-gateway"),
    (fleet::EDGE_SELECTOR, fleet::EDGE_NAMESPACE, "sni-guard-edge"),
];

const KINDS: [&str; 3] = ["wasmplugin", "trafficextension", "envoyfilter"];

/// `sni-guard config --kind KIND --selector SELECTOR ARGS INPUT`, which must succeed.
fn config(kind: &str, selector: &str, args: &[&str], input: &str) -> String {
    let image: &[&str] =
        if kind == "envoyfilter" { &[] } else { &["--image", "file:///var/local/lib/wasm/sni-guard.wasm"] };
    let (code, out, err) =
        sni_guard(&[&["config", "--kind", kind, "--selector", selector], image, args, &[input]].concat());
    assert_eq!(code, 0, "{kind} {selector}: {err}");
    out
}

fn metadata(manifest: &str) -> (String, String) {
    let object: serde_json::Value = serde_yaml_ng::from_str(manifest).unwrap();
    let field = |f: &str| object["metadata"][f].as_str().unwrap().to_owned();
    (field("namespace"), field("name"))
}

/// issue #19: `--selector istio=ingressgateway` and `--selector istio=internal-gateway` both wrote
/// `istio-system/sni-guard`, and applying the second replaced the first. Each workload's object
/// now goes where its pods run (the Service in front of them says), named after it.
#[test]
fn each_gateway_workload_gets_its_own_object() {
    let scratch = Scratch::new("fleet-names");
    let input = scratch.write("fleet.yaml", &Fleet { servers: 40, certificates: Certificates::Wildcard }.yaml());
    for kind in KINDS {
        let mut files = Vec::new();
        for (selector, namespace, name) in WORKLOADS {
            let manifest = config(kind, selector, &[], &input);
            assert_eq!(metadata(&manifest), (namespace.to_owned(), name.to_owned()), "{kind} {selector}");
            // The comment says how.
            if selector == fleet::INTERNAL_SELECTOR {
                let comments: String =
                    manifest.lines().filter_map(|l| l.trim().strip_prefix("# ")).collect::<Vec<_>>().join(" ");
                assert!(
                    comments.contains(
                        "In istio-ingress-internal, where the gateway pods run: Service \
                         istio-ingress-internal/internal-gateway in front of the pods labelled istio=internal-gateway \
                         is there"
                    ),
                    "{manifest}"
                );
            }
            files.push(scratch.write(&format!("{kind}-{name}.yaml"), &manifest));
        }
        // Applied together, they are three objects: `check` accepts all three.
        let args: Vec<&str> = std::iter::once("check").chain(files.iter().map(String::as_str)).collect();
        let (code, out, err) = sni_guard(&args);
        assert_eq!(code, 0, "{out}{err}");
        // One port each (443, which their Services map to 8443): one configuration per object.
        assert!(flat(&out).ends_with("3 sni-guard configurations: 3 accepted, 0 refused."), "{out}");
        assert!(!out.contains("given twice"), "{out}");
        // --name and --namespace set them.
        let named = config(kind, fleet::INTERNAL_SELECTOR, &["--name", "guard", "--namespace", "ops"], &input);
        assert_eq!(metadata(&named), ("ops".to_owned(), "guard".to_owned()));
    }
    let (code, _, err) = sni_guard(&["config", "--selector", "istio=x", "--name", "Not_A_Name", &input]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a Kubernetes object name"), "{err}");
}

/// Two objects of one kind, namespace and name (as the same `--name` for two workloads writes
/// them): `kubectl apply` merges them, and `check` and `audit --deployed` say so, naming both.
#[test]
fn one_identity_applied_twice_is_refused() {
    let scratch = Scratch::new("fleet-twice");
    let input = scratch.write("fleet.yaml", &Fleet { servers: 40, certificates: Certificates::Wildcard }.yaml());
    let same = ["--name", "sni-guard", "--namespace", "istio-system"];
    let public = scratch.write("public.yaml", &config("wasmplugin", fleet::PUBLIC_SELECTOR, &same, &input));
    let internal = scratch.write("internal.yaml", &config("wasmplugin", fleet::INTERNAL_SELECTOR, &same, &input));
    let (code, out, _) = sni_guard(&["check", &public, &internal]);
    assert_eq!(code, 1, "{out}");
    let said = format!(
        "refused: {public} and {internal} are one object, WasmPlugin istio-system/sni-guard: applied together, the \
         later replaces the earlier"
    );
    assert!(flat(&out).contains(&said), "{out}");
    assert!(flat(&out).ends_with("2 sni-guard configurations: 2 accepted, 0 refused; 1 object given twice."), "{out}");

    let (code, out, err) = sni_guard(&["audit", "--deployed", &public, "--deployed", &internal, &input]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(flat(&out).contains(&format!("Given twice: {public} and {internal} are one object")), "{out}");
    assert!(flat(&out).contains("1 object given twice."), "{out}");
}

/// issue #19: with the public gateway's plugin given, `audit --deployed` said `no drift`, exit
/// 0, while the internal and the Gateway API gateways have conflicts and no plugin at all.
#[test]
fn deployed_audit_flags_gateways_with_conflicts_and_no_plugin() {
    let scratch = Scratch::new("fleet-unprotected");
    let input = scratch.write("fleet.yaml", &Fleet { servers: 40, certificates: Certificates::Wildcard }.yaml());
    let mut deployed = Vec::new();
    for (selector, _, name) in WORKLOADS {
        deployed.push(scratch.write(&format!("{name}.yaml"), &config("wasmplugin", selector, &[], &input)));
    }
    let (code, out, err) = sni_guard(&["audit", "--deployed", &deployed[0], &input]);
    assert_eq!(code, 1, "{out}{err}");
    let text = flat(&out);
    assert!(text.contains("No drift: "), "{out}");
    assert!(
        text.contains(
            "Not protected: istio=internal-gateway port 443: 2 servers at risk together (OverlappingCertificates: \
             ops/internal spec.servers[0], ops/internal spec.servers[1]), and no deployed sni-guard configuration \
             applies to these gateway pods."
        ),
        "{out}"
    );
    assert!(text.contains("`sni-guard config --selector istio=internal-gateway`"), "{out}");
    assert!(text.contains("Not protected: gateway edge/edge port 443: 2 servers"), "{out}");
    assert!(
        text.ends_with(
            "1 deployed configuration compared with the Gateways: no drift; 2 risks on gateways without sni-guard."
        ),
        "{out}"
    );
    let (code, json, _) = sni_guard(&["audit", "--deployed", &deployed[0], "-o", "json", &input]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["unprotected"].as_array().unwrap().len(), 2, "{doc}");
    assert_eq!(doc["unprotected"][0]["workload"], "istio=internal-gateway");

    // Each workload with its plugin: nothing left out, no drift.
    let args: Vec<&str> = ["audit"]
        .into_iter()
        .chain(deployed.iter().flat_map(|d| ["--deployed", d.as_str()]))
        .chain([input.as_str()])
        .collect();
    let (code, out, err) = sni_guard(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(flat(&out).ends_with("3 deployed configurations compared with the Gateways: no drift."), "{out}");
}

/// issue #19: the internal gateway's servers were audited against `istio-system/...` Secrets,
/// and its Secret, only in `istio-ingress-internal`, was "not in the input". The Service in
/// front of its pods says where they run; the report says so; `--gateway-namespace` overrides.
#[test]
fn credential_secrets_are_looked_up_where_the_services_say_the_pods_run() {
    let scratch = Scratch::new("fleet-namespaces");
    let input = scratch.write("fleet.yaml", &Fleet { servers: 40, certificates: Certificates::Wildcard }.yaml());
    let (code, out, err) = sni_guard(&["audit", &input]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err, "", "every credentialName Secret is found");
    let text = flat(&out);
    for (pods, namespace) in
        [(fleet::PUBLIC_SELECTOR, fleet::PUBLIC_NAMESPACE), (fleet::INTERNAL_SELECTOR, fleet::INTERNAL_NAMESPACE)]
    {
        let service = if namespace == fleet::PUBLIC_NAMESPACE { "istio-ingressgateway" } else { "internal-gateway" };
        let said = format!(
            "Istio credentialName Secrets of the gateway pods labelled {pods} were looked up in {namespace}, where \
             they run: Service {namespace}/{service} in front of them is there."
        );
        assert!(text.contains(&said), "{out}");
    }
    assert!(
        text.contains(
            "certificate grafana.ops.corp.example, kibana.ops.corp.example, from Secret istio-ingress-internal/ops-san"
        ),
        "{out}"
    );
    assert!(!text.contains("assumed"), "{out}");
    let (_, json, _) = sni_guard(&["audit", "-o", "json", &input]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        doc["gateway_namespaces"][fleet::INTERNAL_SELECTOR],
        serde_json::json!({"namespace": "istio-ingress-internal", "decided": {"service": "Service istio-ingress-internal/internal-gateway"}})
    );

    // --gateway-namespace still decides: there, the Secret is not.
    let (code, _, err) = sni_guard(&["audit", "--gateway-namespace", "istio=internal-gateway:istio-system", &input]);
    assert_eq!(code, 1);
    assert!(
        flat(&err).contains(
            "Secret istio-system/ops-san is not in the input; a Secret of that name is in istio-ingress-internal, where \
             it is not looked for"
        ),
        "{err}"
    );
}

/// issue #19: `legacy.corp.example` (PASSTHROUGH on 443) is covered by `*.corp.example`, which
/// `portal` presents on the same port: the audit listed it as not at risk and `config` left it
/// out, so a browser reusing portal's connection for it got a 404. Now it is reported, with the
/// certificate and who presents it, and listed as a server; `--no-passthrough` leaves it out.
#[test]
fn a_passthrough_host_a_certificate_on_its_port_covers_is_reported_and_listed() {
    let scratch = Scratch::new("fleet-passthrough");
    let input = scratch.write("fleet.yaml", &Fleet { servers: 40, certificates: Certificates::Wildcard }.yaml());
    let (code, out, _) = sni_guard(&["audit", &input]);
    assert_eq!(code, 1);
    let text = flat(&out);
    assert!(text.contains("Passthrough at risk: 1 server (a certificate on the same port covers the host"), "{out}");
    assert!(
        text.contains(
            "legacy/legacy spec.servers[0]: legacy.corp.example, port 443 legacy.corp.example is covered by \
             *.corp.example, a name of the certificate web/portal spec.servers[0], team-0/apps-0 spec.servers[0], \
             team-0/apps-0 spec.servers[1] and 30 more present (from Secret istio-system/corp-wildcard)"
        ),
        "{out}"
    );
    assert!(text.contains("Fix: deploy sni-guard, whose configuration lists this server's hosts (`sni-guard config --selector istio=ingressgateway`)"), "{out}");
    assert!(text.contains("1 passthrough server at risk."), "{out}");
    assert!(!text.contains("legacy.corp.example, port 443: TLS passthrough: forwarded by SNI"), "{out}");

    let (_, json, _) = sni_guard(&["audit", "-o", "json", &input]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let at_risk = &doc["passthrough_at_risk"][0];
    assert_eq!(at_risk["server"]["hosts"], serde_json::json!([fleet::PASSTHROUGH_HOST]));
    assert_eq!(at_risk["covered_by"][0]["certificate_name"], "*.corp.example");
    assert_eq!(at_risk["covered_by"][0]["presented_by"][0], "web/portal spec.servers[0]");
    assert_eq!(at_risk["covered_by"][0]["presented_by_count"], 33);
    assert_eq!(doc["summary"]["passthrough_at_risk"], 1);

    let hosts = |json: &str| -> Vec<String> {
        let config: serde_json::Value = serde_json::from_str(json).unwrap();
        config["servers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["hosts"].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_owned()))
            .collect()
    };
    let (code, listed, err) = sni_guard(&["config", "--selector", fleet::PUBLIC_SELECTOR, &input]);
    assert_eq!(code, 0, "{err}");
    assert!(hosts(&listed).contains(&fleet::PASSTHROUGH_HOST.to_owned()), "{listed}");
    let (code, without, _) = sni_guard(&["config", "--selector", fleet::PUBLIC_SELECTOR, "--no-passthrough", &input]);
    assert_eq!(code, 0);
    assert!(!hosts(&without).contains(&fleet::PASSTHROUGH_HOST.to_owned()), "{without}");
    // The manifest says why.
    let manifest = config("wasmplugin", fleet::PUBLIC_SELECTOR, &[], &input);
    assert!(
        flat(&manifest)
            .contains("# Listed although TLS passthrough: legacy/legacy spec.servers[0] (legacy.corp.example)."),
        "{manifest}"
    );

    // Deployed without it, the host a certificate is known to cover is unguarded: drift.
    let with = scratch.write("with.yaml", &config("wasmplugin", fleet::PUBLIC_SELECTOR, &[], &input));
    let (code, out, _) = sni_guard(&["audit", "--deployed", &with, &input]);
    assert!(flat(&out).contains("No drift: "), "{out}");
    assert_eq!(code, 1, "the other workloads are not protected: {out}");
    let without =
        scratch.write("without.yaml", &config("wasmplugin", fleet::PUBLIC_SELECTOR, &["--no-passthrough"], &input));
    let (_, out, _) = sni_guard(&["audit", "--deployed", &without, &input]);
    assert!(
        flat(&out).contains(
            "legacy.corp.example (legacy/legacy spec.servers[0]) is in no deployed server: a request for it on another \
             server's connection is not answered 421"
        ),
        "{out}"
    );
    // Without any plugin for the public gateway, its passthrough server is not protected either.
    let internal = scratch.write("internal.yaml", &config("wasmplugin", fleet::INTERNAL_SELECTOR, &[], &input));
    let (code, out, _) = sni_guard(&["audit", "--deployed", &internal, &input]);
    assert_eq!(code, 1);
    assert!(
        flat(&out).contains(
            "Not protected: istio=ingressgateway port 443: passthrough server legacy/legacy spec.servers[0] \
             (legacy.corp.example) at risk (a certificate on the port covers its hosts)"
        ),
        "{out}"
    );
}

/// Bad input in a fleet's dump still gets exit 2, naming the file, the item and the field.
#[test]
fn bad_input_in_a_fleet_names_file_item_and_field() {
    let scratch = Scratch::new("fleet-bad");
    let mut list = Fleet { servers: 20, certificates: Certificates::Wildcard }.list();
    list["items"][0]["spec"]["ports"][0]["port"] = serde_json::json!(0);
    let input = scratch.write("fleet.yaml", &serde_yaml_ng::to_string(&list).unwrap());
    for command in [&["audit"][..], &["config", "--selector", fleet::PUBLIC_SELECTOR][..], &["merge"][..]] {
        let (code, out, err) = sni_guard(&[command, &[input.as_str()]].concat());
        assert_eq!(code, 2, "{command:?}: {err}");
        assert_eq!(out, "", "{command:?}");
        assert_eq!(
            err.trim_end(),
            format!(
                "sni-guard: bad input: {input}: items[0]: Service istio-system/istio-ingressgateway: spec.ports[0].port: \
                 0 is not a port number (1 to 65535)"
            ),
            "{command:?}"
        );
    }
}
