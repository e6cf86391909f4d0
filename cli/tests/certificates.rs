//! `sni-guard audit` and `merge` deciding by what the certificates cover, on Secrets and PEM
//! files holding certificates made by openssl for each test.

#[path = "support/certs.rs"]
mod certs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine;
use certs::{certificate, secret, KEY_MARKER};
use serde_json::Value;

/// A directory of input files of one test's own (unique, removed when dropped).
struct Input {
    dir: tempfile::TempDir,
}

impl Input {
    fn new(test: &str) -> Input {
        Input { dir: tempfile::Builder::new().prefix(&format!("sni-guard-{test}-")).tempdir().unwrap() }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn run(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sni-guard"))
        .args(args)
        .args(paths)
        .stdin(Stdio::null())
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn text(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout.clone()).unwrap(),
        String::from_utf8(out.stderr.clone()).unwrap(),
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Wrapped text as one line.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn istio_gateway(namespace: &str, name: &str, hosts: &[&str], credential: &str) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  selector: {{istio: ingressgateway}}\n  servers:\n  - port: {{number: 443, name: https, protocol: HTTPS}}\n    \
         hosts: [{}]\n    tls: {{mode: SIMPLE, credentialName: {credential}}}\n---\n",
        hosts.join(", ")
    )
}

/// Every line of every output fits 100 columns.
fn narrow(out: &str) {
    for line in out.lines() {
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
    }
}

#[test]
fn a_wildcard_certificate_covers_another_istio_gateways_host() {
    // istio/istio#13589: *.acme.test on one Gateway, api.acme.test with its own certificate on
    // another. No credential is shared and no host overlaps: only the certificate tells.
    let input = Input::new("wildcard-covers");
    let gateways = input.file(
        "gateways.yaml",
        &(istio_gateway("shop", "shop", &["shop.acme.test"], "wildcard-acme")
            + &istio_gateway("api", "api", &["api.acme.test"], "api-acme")),
    );
    let secrets = input.file(
        "secrets.yaml",
        &(secret("istio-system", "wildcard-acme", &certificate("acme", &["*.acme.test"]))
            + &secret("istio-system", "api-acme", &certificate("api", &["api.acme.test"]))),
    );
    let (code, out, err) = text(&run(&["audit"], &[&gateways, &secrets]));
    assert_eq!(code, 1, "{out}{err}");
    narrow(&out);
    assert!(
        out.starts_with("Conflict 1: OverlappingCertificates, istio=ingressgateway port 443, 2 servers\n"),
        "{out}"
    );
    assert!(!out.contains("Conflict 2"), "{out}");
    assert!(out.contains("certificate *.acme.test, from Secret istio-system/wildcard-acme"), "{out}");
    assert!(
        flat(&out).contains(
            "OverlappingCertificates: the certificate of [1] has the name *.acme.test, which covers api.acme.test [2]"
        ),
        "{out}"
    );
    assert!(flat(&out).contains("Or give [1] a certificate without *.acme.test, for its own hosts only."), "{out}");
    assert!(err.is_empty(), "{err}");

    let doc = json(&run(&["audit", "-o", "json"], &[&gateways, &secrets]));
    let evidence = &doc["conflicts"][0]["evidence"];
    assert_eq!(evidence.as_array().unwrap().len(), 1, "{evidence}");
    assert_eq!(evidence[0]["kind"], "certificate_covers_host");
    assert_eq!(evidence[0]["reason"], "OverlappingCertificates");
    assert_eq!(evidence[0]["presented_by"], serde_json::json!([0]));
    assert_eq!(
        evidence[0]["names"],
        serde_json::json!([{"certificate_name": "*.acme.test",
                            "covers": [{"server": 1, "name": "api.acme.test", "host": "api.acme.test"}]}])
    );
    // Each certificate once, by its fingerprint; the servers name it by that.
    let sha256 = evidence[0]["sha256"].as_str().unwrap();
    assert_eq!(doc["certificates"][sha256]["names"], serde_json::json!(["*.acme.test"]));
    assert_eq!(doc["conflicts"][0]["servers"][0]["certificates"]["presented"][0]["sha256"], sha256);

    // By credential name alone (no Secrets), as Istio's analyzer does: nothing to see.
    let (code, out, _) = text(&run(&["audit"], &[&gateways]));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn two_secrets_holding_one_certificate() {
    let input = Input::new("same-certificate");
    let pem = certificate("acme", &["shop.acme.test", "blog.acme.test"]);
    let gateways = input.file(
        "gateways.yaml",
        &(istio_gateway("shop", "shop", &["shop.acme.test"], "shop-cert")
            + &istio_gateway("blog", "blog", &["blog.acme.test"], "blog-cert")),
    );
    let secrets = input.file(
        "secrets.yaml",
        &(secret("istio-system", "shop-cert", &pem) + &secret("istio-system", "blog-cert", &pem)),
    );
    let (code, out, _) = text(&run(&["audit"], &[&gateways, &secrets]));
    assert_eq!(code, 1, "{out}");
    assert!(flat(&out).contains("[1] [2] present one certificate (SHA-256"), "{out}");
    assert!(flat(&out).contains("from Secret istio-system/blog-cert and Secret istio-system/shop-cert"), "{out}");
    let doc = json(&run(&["audit", "-o", "json"], &[&gateways, &secrets]));
    let same = &doc["conflicts"][0]["evidence"][0];
    assert_eq!(same["kind"], "same_certificate");
    assert_eq!(same["servers"], serde_json::json!([0, 1]));
    assert_eq!(same["sources"].as_array().unwrap().len(), 2);
    assert_eq!(same["sha256"].as_str().unwrap().len(), 95);
}

#[test]
fn gateway_api_listeners_with_different_secrets_one_wildcard() {
    let input = Input::new("gateway-api-wildcard");
    let gateway = input.file(
        "gateway.yaml",
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: web}
spec:
  gatewayClassName: istio
  listeners:
  - {name: www, hostname: www.corp.test, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: corp-wild}]}}
  - {name: pay, hostname: pay.corp.test, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: pay-corp}]}}
  - {name: http, port: 80, protocol: HTTP}
",
    );
    let secrets = input.file(
        "secrets.yaml",
        &(secret("web", "corp-wild", &certificate("corp", &["*.corp.test"]))
            + &secret("web", "pay-corp", &certificate("pay", &["pay.corp.test"]))),
    );
    let (code, out, _) = text(&run(&["audit"], &[&gateway, &secrets]));
    assert_eq!(code, 1, "{out}");
    narrow(&out);
    assert!(out.starts_with("Conflict 1: OverlappingCertificates, gateway web/edge port 443, 2 servers\n"), "{out}");
    assert!(
        flat(&out).contains("the certificate of [1] has the name *.corp.test, which covers pay.corp.test [2]"),
        "{out}"
    );
    assert!(
        flat(&out).contains(
            "Gateway API: listeners www [1], pay [2] should carry the condition OverlappingTLSConfig, status True, reason OverlappingCertificates."
        ),
        "{out}"
    );
    let doc = json(&run(&["audit", "--output=json"], &[&gateway, &secrets]));
    let conditions = doc["listener_conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 3);
    for (listener, condition) in conditions.iter().map(|c| (c["listener"].as_str().unwrap(), &c["condition"])) {
        if listener == "http" {
            // Negative polarity: no condition rather than status False.
            assert_eq!(*condition, Value::Null);
        } else {
            assert_eq!(condition["type"], "OverlappingTLSConfig", "{listener}");
            assert_eq!(condition["status"], "True");
            assert_eq!(condition["reason"], "OverlappingCertificates");
        }
    }
    assert_eq!(
        conditions[0]["condition"]["message"],
        "its certificate's name *.corp.test covers pay.corp.test of listener pay (sni-guard audit)"
    );

    // merge: the whole Gateway, ready to apply, with the wildcard listener's certificate.
    let (code, merged, _) = text(&run(&["merge"], &[&gateway, &secrets]));
    assert_eq!(code, 0);
    let doc: Value = serde_yaml_ng::from_str(merged.trim_end().trim_end_matches("---")).unwrap();
    assert_eq!(doc["spec"]["gatewayClassName"], "istio");
    let listeners = doc["spec"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2, "{merged}");
    assert_eq!(listeners[0]["hostname"], "*.corp.test");
    assert_eq!(listeners[0]["tls"]["certificateRefs"][0]["name"], "corp-wild");
    assert_eq!(listeners[1]["name"], "http");
}

#[test]
fn a_certificate_covering_only_its_own_server() {
    let input = Input::new("own-certificate");
    let gateways = input.file(
        "gateways.yaml",
        &(istio_gateway("docs", "docs", &["docs.acme.test"], "docs")
            + &istio_gateway("api", "api", &["api.acme.test"], "api")
            + &istio_gateway("apex", "apex", &["acme.test"], "apex")),
    );
    // A certificate wildcard covers one label: *.docs.acme.test is not valid for
    // docs.acme.test's siblings, nor *.acme.test-less acme.test.
    let secrets = input.file(
        "secrets.yaml",
        &(secret("istio-system", "docs", &certificate("docs", &["docs.acme.test", "*.docs.acme.test"]))
            + &secret("istio-system", "api", &certificate("api.acme.test", &[]))
            + &secret("istio-system", "apex", &certificate("apex", &["acme.test"]))),
    );
    let (code, out, err) = text(&run(&["audit"], &[&gateways, &secrets]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("No conflict.\n"), "{out}");
    assert!(out.contains("Not in a conflict: 3 servers"), "{out}");
    // A certificate without DNS names in SANs: its common name stands in.
    assert!(
        out.contains("certificate api.acme.test (its common name: no DNS SAN), from Secret istio-system/api"),
        "{out}"
    );
    assert!(out.contains("3 servers in 3 Gateways, 3 Secrets read; no conflict."), "{out}");
}

#[test]
fn a_secret_missing_from_the_input() {
    let input = Input::new("missing-secret");
    let gateways = input.file(
        "gateways.yaml",
        &(istio_gateway("shop", "shop", &["shop.acme.test"], "shop")
            + &istio_gateway("status", "status", &["status.acme.test"], "status-cert")
            + "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: web}
spec:
  gatewayClassName: istio
  listeners:
  - {name: a, hostname: a.corp.test, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: gone}]}}
"),
    );
    // status-cert exists, but in the Gateway's namespace, where Istio does not look.
    let secrets = input.file(
        "secrets.yaml",
        &(secret("istio-system", "shop", &certificate("shop", &["shop.acme.test"]))
            + &secret("status", "status-cert", &certificate("status", &["status.acme.test"]))),
    );
    let (code, out, err) = text(&run(&["audit"], &[&gateways, &secrets]));
    // Nothing conflicts by name or host; the unknown certificates are said, not taken as safe.
    assert_eq!(code, 0, "{out}{err}");
    let flat_out = flat(&out);
    assert!(
        flat_out.contains("status/status spec.servers[0]: status.acme.test certificate unknown: Secret istio-system/status-cert is not in the input (namespace assumed); a Secret of that name is in status, where it is not looked for checked instead: no other server on istio=ingressgateway port 443 names the same credential, and no host overlaps"),
        "{out}"
    );
    assert!(flat_out.contains("certificate unknown: Secret web/gone is not in the input"), "{out}");
    assert!(flat_out.contains("2 servers' certificates unknown"), "{out}");
    // Warnings on stderr name the server and field; the audit went on.
    narrow(&err);
    assert!(
        flat(&err).contains(
            "sni-guard: warning: web/edge spec.listeners[0] (tls.certificateRefs): Secret web/gone is not in the input"
        ),
        "{err}"
    );
    assert!(
        flat(&err).contains("istio-system is assumed to be the namespace of the gateway pods (istio=ingressgateway): --gateway-namespace sets it"),
        "{err}"
    );

    // Told where the gateway runs, the Secret is found.
    let (_, out, _) = text(&run(
        &["audit", "--gateway-namespace", "status", "--gateway-namespace", "istio=none:x"],
        &[&gateways, &secrets],
    ));
    assert!(flat(&out).contains("certificate status.acme.test, from Secret status/status-cert"), "{out}");
    let doc = json(&run(&["audit", "-o", "json"], &[&gateways, &secrets]));
    assert_eq!(doc["summary"]["certificate_unknown"], 2);
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 2);
}

#[test]
fn certificate_files_named_on_the_command_line() {
    let input = Input::new("files");
    let gateway = input.file(
        "gateway.yaml",
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-docs, protocol: HTTPS}
    hosts: [docs.example.org]
    tls: {mode: SIMPLE, serverCertificate: /etc/istio/certs/docs.pem, privateKey: /etc/istio/certs/docs.key}
  - port: {number: 443, name: https-wild, protocol: HTTPS}
    hosts: [www.example.org]
    tls: {mode: SIMPLE, serverCertificate: /etc/istio/certs/wild.pem, privateKey: /etc/istio/certs/wild.key}
",
    );
    let docs = input.file("docs.pem", &certificate("docs", &["docs.example.org"]));
    let wild = input.file("wild.pem", &certificate("wild", &["*.example.org"]));
    let arg = |path: &str, file: &Path| format!("--server-certificate={path}={}", file.display());
    let out = run(
        &["audit", &arg("/etc/istio/certs/docs.pem", &docs), &arg("/etc/istio/certs/wild.pem", &wild)],
        &[&gateway],
    );
    let (code, out, err) = text(&out);
    assert_eq!(code, 1, "{out}{err}");
    assert!(flat(&out).contains("certificate *.example.org, from file /etc/istio/certs/wild.pem"), "{out}");
    assert!(
        flat(&out).contains("the certificate of [2] has the name *.example.org, which covers docs.example.org [1]"),
        "{out}"
    );

    // A file that is not a certificate is bad input, naming the option and the file.
    let bad = input.file("bad.pem", "not a certificate");
    let (code, out, err) = text(&run(&["audit", &arg("/etc/istio/certs/docs.pem", &bad)], &[&gateway]));
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("bad input: --server-certificate /etc/istio/certs/docs.pem:"), "{err}");
    assert!(err.contains("bad.pem: no PEM certificate"), "{err}");
}

#[test]
fn twenty_app_gateways_and_one_wildcard_are_one_conflict() {
    // As a new user tried it: before, 41 conflicts in 112 lines and 40 "No merge printed".
    let input = Input::new("twenty");
    let mut gateways = istio_gateway("edge", "wildcard", &["*.example.com"], "wildcard-example-com");
    let mut secrets = secret("istio-system", "wildcard-example-com", &certificate("wild", &["*.example.com"]));
    for n in 1..=20 {
        let host = format!("app{n}.example.com");
        gateways += &istio_gateway(&format!("app{n}"), "gw", &[&host], &format!("app{n}"));
        secrets += &secret("istio-system", &format!("app{n}"), &certificate(&host, &[&host]));
    }
    let gateways = input.file("gateways.yaml", &gateways);
    let secrets = input.file("secrets.yaml", &secrets);
    let (code, out, _) = text(&run(&["audit"], &[&gateways, &secrets]));
    assert_eq!(code, 1);
    narrow(&out);
    assert!(out.contains("Conflict 1: OverlappingCertificates, istio=ingressgateway port 443, 21 servers"), "{out}");
    assert!(!out.contains("Conflict 2"), "{out}");
    assert!(out.lines().count() < 70, "{} lines:\n{out}", out.lines().count());
    assert!(
        flat(&out).contains("Merge them into one server with the certificate of [1], valid for every host here"),
        "{out}"
    );

    let (code, merged, _) = text(&run(&["merge"], &[&gateways, &secrets]));
    assert_eq!(code, 0);
    narrow(&merged);
    assert_eq!(merged.matches("apiVersion:").count(), 1, "{merged}");
    assert!(!merged.contains("No merge printed"), "{merged}");
    let doc: Value = serde_yaml_ng::from_str(merged.trim_end().trim_end_matches("---")).unwrap();
    assert_eq!(doc["spec"]["servers"][0]["hosts"].as_array().unwrap().len(), 21);
    assert_eq!(doc["spec"]["servers"][0]["tls"]["credentialName"], "wildcard-example-com");
    let json = json(&run(&["audit", "-o", "json"], &[&gateways, &secrets]));
    assert_eq!(json["conflicts"].as_array().unwrap().len(), 1);
}

#[test]
fn private_keys_are_never_printed() {
    let input = Input::new("keys");
    let gateways = input.file(
        "gateways.yaml",
        &(istio_gateway("a", "a", &["a.acme.test"], "wild") + &istio_gateway("b", "b", &["b.acme.test"], "b")),
    );
    let secrets = input.file(
        "secrets.yaml",
        &(secret("istio-system", "wild", &certificate("w", &["*.acme.test"]))
            + &secret("istio-system", "b", &certificate("b", &["b.acme.test"]))),
    );
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(KEY_MARKER);
    for args in [&["audit"][..], &["audit", "-o", "json"], &["merge"]] {
        let out = run(args, &[&gateways, &secrets]);
        for stream in [&out.stdout, &out.stderr] {
            let stream = String::from_utf8_lossy(stream);
            assert!(!stream.contains("TEST-MARKER-NOT-A-KEY") && !stream.contains(&key_b64), "{args:?}: {stream}");
        }
    }
}

/// A broken TLS Secret (a placeholder, a certificate half issued) stops nothing: unused, it is a
/// warning and skipped; used, the server's certificate is unknown, with the reason.
#[test]
fn broken_secrets_are_skipped_or_leave_the_certificate_unknown() {
    let input = Input::new("bad-certificates");
    let gateways = input.file(
        "gateways.yaml",
        &(istio_gateway("a", "a", &["a.acme.test"], "used") + &istio_gateway("b", "b", &["b.acme.test"], "used")),
    );
    let tls = |name: &str, data: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: istio-system}}\ntype: kubernetes.io/tls\n\
             data:\n{data}\n---\n"
        )
    };
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let garbage = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", b64("not DER at all"));
    let cases = [
        ("  tls.crt: ''".to_owned(), "data.tls.crt: empty"),
        ("  tls.crt: this*is*not*base64".to_owned(), "data.tls.crt: not base64: "),
        (format!("  tls.crt: {}", b64("hello, not PEM")), "data.tls.crt: no PEM certificate"),
        (format!("  tls.crt: {}", b64(&garbage)), "data.tls.crt: certificate 1 of the chain: not an X.509 certificate"),
        (
            "  tls.key: eA==".to_owned(),
            "data.tls.crt: missing (a kubernetes.io/tls Secret holds its certificate there)",
        ),
    ];
    for (data, problem) in cases {
        // No server uses it: a warning, and the audit as without it.
        let secrets = input.file("secrets.yaml", &tls("placeholder", &data));
        for sub in ["audit", "merge"] {
            let (code, out, err) = text(&run(&[sub], &[&gateways, &secrets]));
            assert_eq!(code, if sub == "audit" { 1 } else { 0 }, "{sub} {problem}: {out}{err}");
            let warning = format!("Secret istio-system/placeholder (kubernetes.io/tls): {problem}");
            assert!(err.starts_with("sni-guard: warning: "), "{err}");
            assert!(flat(&err).contains(&flat(&warning)), "{sub}: {err}");
            assert!(flat(&err).contains("no server uses it, so it is skipped"), "{err}");
        }
        let (_, out, _) = text(&run(&["audit"], &[&gateways, &secrets]));
        assert!(flat(&out).contains("[1] [2] use credentialName used: one certificate"), "{out}");
        // Both servers use it: their certificate is unknown, and why; they still conflict.
        let secrets = input.file("secrets.yaml", &tls("used", &data));
        let (code, out, err) = text(&run(&["audit"], &[&gateways, &secrets]));
        assert_eq!(code, 1, "{problem}: {out}{err}");
        assert!(
            flat(&out).contains(&flat(&format!("certificate unknown: Secret istio-system/used: {problem}"))),
            "{out}"
        );
        assert!(flat(&out).contains("2 servers' certificates unknown"), "{out}");
        assert!(
            flat(&err).contains(&flat(&format!(
                "a/a spec.servers[0] (tls.credentialName): Secret istio-system/used: {problem}"
            ))),
            "{err}"
        );
        let doc = json(&run(&["audit", "-o", "json"], &[&gateways, &secrets]));
        assert_eq!(doc["summary"]["certificate_unknown"], 2);
    }
    // An Opaque Secret a server names must hold a certificate; one no server names is not read.
    let opaque = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: istio-system}}\ndata:\n  cert: {}\n",
            b64("hello")
        )
    };
    let used = input.file("opaque.yaml", &opaque("used"));
    let (code, out, err) = text(&run(&["audit"], &[&gateways, &used]));
    assert_eq!(code, 1, "{err}");
    assert!(
        flat(&out).contains("certificate unknown: Secret istio-system/used: data.cert: no PEM certificate"),
        "{out}"
    );
    let unrelated = input.file("unrelated.yaml", &opaque("other"));
    let (code, _, err) = text(&run(&["audit"], &[&gateways, &unrelated]));
    assert_eq!(code, 1);
    assert!(!err.contains("other"), "{err}");
}
