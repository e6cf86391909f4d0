//! `sni-guard check` and `sni-guard audit --deployed` as CI runs them: on good, bad and drifted
//! inputs, with their exit codes (0 fine, 1 refused or drifted, 2 bad input or usage). The good
//! inputs are the manifests under envoyfilter/; the bad and drifted ones are edited copies.

#[path = "support/run.rs"]
mod run;
#[path = "support/scratch.rs"]
mod scratch;
use run::{repo_root, sni_guard};
use scratch::Scratch;

fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn example(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("envoyfilter").join(name)).unwrap()
}

/// The placeholder digest the examples carry (`--example`).
const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn check_accepts_every_shipped_form_with_a_real_digest() {
    let scratch = Scratch::new("shipped");
    for file in ["wasmplugin.yaml", "wasmplugin-http.yaml", "trafficextension.yaml", "envoyfilter.yaml", "envoy.yaml"] {
        // As a user applies it: the placeholder replaced by the image's digest.
        let real = scratch.write(file, &example(file).replace(ZEROS, &"7d".repeat(32)));
        let (code, out, err) = sni_guard(&["check", &real]);
        assert_eq!(code, 0, "{file}: {out}{err}");
        assert!(flat(&out).contains(": ok: 3 servers"), "{out}");
        assert!(!out.contains(": refused:"), "{out}");
    }
    let (code, out, _) = sni_guard(&["check", "envoyfilter/envoyfilter.yaml"]);
    assert_eq!(code, 0);
    // One configuration per port's patch, each behind the matcher it names.
    assert_eq!(flat(&out).matches("behind Envoy's same-name matcher").count(), 2, "{out}");
    assert!(out.ends_with("2 sni-guard configurations: 2 accepted, 0 refused.\n"), "{out}");
    // A directory: the manifests (the examples refused for their placeholder), and the Gateways
    // file skipped as holding none. The examples are alternatives for one workload, so the
    // WasmPlugins are one object given three times (the base's, and the oci:// and https://
    // examples): applied together, one would replace another. The overlay's is another.
    let (code, out, _) = sni_guard(&["check", "envoyfilter"]);
    assert_eq!(code, 1, "{out}");
    assert!(flat(&out).contains("Gateway team-a/gw-a: holds no sni-guard configuration"), "{out}");
    assert!(!out.contains(": refused: the filter"), "{out}");
    assert!(
        flat(&out).contains(
            "refused: envoyfilter/kustomize/base/wasmplugin.yaml and envoyfilter/wasmplugin.yaml are one object, \
             WasmPlugin istio-system/sni-guard-ingressgateway"
        ),
        "{out}"
    );
    assert!(
        flat(&out).ends_with("13 sni-guard configurations: 8 accepted, 5 refused; 2 objects given twice."),
        "{out}"
    );
}

/// The examples' placeholder, and any `sha256` Istio would not take, is refused with how to get
/// the real one: applied, istio-agent would refuse the module and the gateway would run without
/// sni-guard.
#[test]
fn check_refuses_a_digest_no_module_matches() {
    for (file, field) in [
        ("envoyfilter/wasmplugin.yaml", "spec.sha256"),
        ("envoyfilter/wasmplugin-http.yaml", "spec.sha256"),
        ("envoyfilter/trafficextension.yaml", "spec.wasm.sha256"),
        ("envoyfilter/kustomize/base/wasmplugin.yaml", "spec.sha256"),
    ] {
        let (code, out, err) = sni_guard(&["check", file]);
        assert_eq!(code, 1, "{file}: {out}{err}");
        let out = flat(&out);
        assert!(
            out.contains(&format!("refused: {field} is the examples' placeholder (64 zeros), which no module matches")),
            "{out}"
        );
        assert!(out.contains("`make image` prints the image's, and `sni-guard config --image oci://... --oci-layout dist/oci` writes it"), "{out}");
        // Only the digest: the configuration itself is the filter's.
        assert!(!out.contains("the filter refuses"), "{out}");
        assert!(out.ends_with("1 sni-guard configuration: 0 accepted, 1 refused."), "{out}");
    }
    let scratch = Scratch::new("digest");
    let plugin = example("wasmplugin.yaml");
    for (digest, problem) in [
        (format!("\"sha256:{}\"", "ab".repeat(32)), "is not 64 lower-case hex digits"),
        (format!("\"{}\"", "AB".repeat(32)), "is not 64 lower-case hex digits"),
        ("\"abc\"".to_owned(), "\"abc\" is not 64 lower-case hex digits"),
        ("\"a\\u001b[2J\"".to_owned(), "\"a\\u{1b}[2J\" is not 64"),
        ("12".to_owned(), "spec.sha256: expected a string"),
    ] {
        let file = scratch.write("bad.yaml", &plugin.replace(&format!("\"{ZEROS}\""), &digest));
        let (code, out, _) = sni_guard(&["check", &file]);
        assert_eq!(code, 1, "{digest}: {out}");
        assert!(flat(&out).contains(problem), "{digest}: {out}");
        assert!(!out.contains('\u{1b}'), "{out:?}");
    }
    // Drift compares the servers whatever the digest.
    let (code, out, err) =
        sni_guard(&["audit", "--deployed", "envoyfilter/wasmplugin.yaml", "envoyfilter/example-gateways.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn check_refuses_what_the_filter_or_the_matcher_would() {
    let scratch = Scratch::new("deployed-check");
    let wasmplugin = example("wasmplugin.yaml");
    let envoyfilter = example("envoyfilter.yaml");
    let plain = "request.host == connection.requested_server_name";
    let no_dot = "request.host == connection.requested_server_name && !request.host.endsWith('.')";
    let cases = [
        // A host in two servers: the filter's own message, naming the field.
        (
            "duplicate.yaml",
            wasmplugin.replace("- b.example.com", "- A.example.com"),
            "servers[1].hosts: host \"a.example.com\" is already listed by servers[0]",
        ),
        // A renamed field.
        ("renamed.yaml", wasmplugin.replace("    servers:", "    server:"), "unknown field `server`"),
        // A WasmPlugin never sits behind Envoy's matcher.
        (
            "matcher-in-wasmplugin.yaml",
            wasmplugin.replace(
                "    on_missing_sni: allow",
                &format!("    on_missing_sni: allow\n    same_name_matcher: {plain}"),
            ),
            "puts none there",
        ),
        // The configuration names a stronger test than the matcher's parsed expression is.
        (
            "mismatch.yaml",
            envoyfilter
                .replace(&format!("\"same_name_matcher\":\"{plain}\""), &format!("\"same_name_matcher\":\"{no_dot}\"")),
            "the matcher's parsed expression is \"request.host == connection.requested_server_name\", not",
        ),
        // A catch-all server: the matcher in front is too weak, and the filter says which it needs.
        (
            "catch-all.yaml",
            envoyfilter.replace("{\"hosts\":[\"b.example.com\"]}", "{\"hosts\":[\"*\"]}"),
            "too weak for this configuration",
        ),
        // Behind the matcher without naming it.
        (
            "unnamed.yaml",
            envoyfilter.replace(&format!(",\"same_name_matcher\":\"{plain}\""), ""),
            "must name its test in same_name_matcher: \"request.host == connection.requested_server_name\"",
        ),
    ];
    for (name, text, expected) in &cases {
        assert_ne!(text, &wasmplugin, "{name}: the edit did not apply");
        assert_ne!(text, &envoyfilter, "{name}: the edit did not apply");
        let path = scratch.write(name, text);
        let (code, out, err) = sni_guard(&["check", &path]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(flat(&out).contains(&flat(expected)), "{name}: {out}");
        assert!(flat(&out).contains(": refused: "), "{out}");
    }
    // Raw JSON, from a file and from stdin.
    let good = scratch.write("good.json", "{\"servers\": [{\"hosts\": [\"a.example.com\"]}]}\n");
    let (code, out, _) = sni_guard(&["check", &good]);
    assert_eq!(code, 0, "{out}");
    assert!(flat(&out).contains("good.json: the configuration: ok: 1 server, mode enforce"), "{out}");
    let bad = scratch.write("bad.json", "{\"servers\": [{\"hosts\": [\"a.*.com\"]}]}");
    let (code, out, _) = sni_guard(&["check", &good, &bad]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("servers[0].hosts[0]"), "{out}");
    assert!(out.ends_with("2 sni-guard configurations: 1 accepted, 1 refused.\n"), "{out}");
}

#[test]
fn check_bad_input_exits_2() {
    let scratch = Scratch::new("deployed-check-bad");
    let (code, _, err) = sni_guard(&["check", "does-not-exist.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
    let (code, _, err) = sni_guard(&["check", &scratch.write("broken.yaml", "a: [unclosed")]);
    assert_eq!(code, 2);
    assert!(err.contains("not valid YAML"), "{err}");
    // Only Gateways: no configuration to check is bad input, not a pass.
    let (code, out, err) = sni_guard(&["check", "envoyfilter/example-gateways.yaml"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("no sni-guard configuration in it"), "{err}");
}

#[test]
fn audit_deployed_finds_no_drift_in_the_examples() {
    for file in ["envoyfilter/wasmplugin.yaml", "envoyfilter/trafficextension.yaml", "envoyfilter/envoyfilter.yaml"] {
        let (code, out, err) = sni_guard(&["audit", "--deployed", file, "envoyfilter/example-gateways.yaml"]);
        assert_eq!(code, 0, "{file}: {out}{err}");
        assert!(out.starts_with("No drift: "), "{out}");
        assert!(out.ends_with("1 deployed configuration compared with the Gateways: no drift.\n"), "{out}");
    }
}

#[test]
fn audit_deployed_reports_drift_and_exits_1() {
    let scratch = Scratch::new("deployed-drift");
    // e.example.com joins a's server; d.example.com moves from c's server to b's.
    let gateways = std::fs::read_to_string(repo_root().join("envoyfilter/example-gateways.yaml"))
        .unwrap()
        .replace("hosts: [a.example.com]", "hosts: [a.example.com, e.example.com]")
        .replace("hosts: [b.example.com]", "hosts: [b.example.com, d.example.com]")
        .replace("hosts: [c.example.com, d.example.com]", "hosts: [c.example.com]");
    let gateways = scratch.write("gateways.yaml", &gateways);
    let (code, out, err) = sni_guard(&["audit", "--deployed", "envoyfilter/wasmplugin.yaml", &gateways]);
    assert_eq!(code, 1, "{out}{err}");
    let text = flat(&out);
    assert!(text.starts_with("Drift: envoyfilter/wasmplugin.yaml: WasmPlugin istio-system/sni-guard"), "{out}");
    assert!(text.contains("e.example.com (team-a/gw-a spec.servers[0]) is in no deployed server"), "{out}");
    assert!(
        text.contains(
            "deployed servers[2] (c.example.com, d.example.com) is no Gateway server now: team-c/gw-cd spec.servers[0] \
             has c.example.com; team-b/gw-b spec.servers[0] has b.example.com, d.example.com"
        ),
        "{out}"
    );
    assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
    // For tools: the same, as JSON.
    let (code, out, _) = sni_guard(&["audit", "--deployed", "envoyfilter/envoyfilter.yaml", "-o", "json", &gateways]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["drifted"], 1);
    assert_eq!(
        doc["deployed"][0]["unguarded"],
        serde_json::json!([{"host": "e.example.com", "server": "team-a/gw-a spec.servers[0]"}])
    );
    assert_eq!(doc["deployed"][0]["stale"].as_array().unwrap().len(), 3, "{out}");
    // A removed Gateway: its host is in no Gateway server now.
    let without_b = scratch.write(
        "without-b.yaml",
        &std::fs::read_to_string(repo_root().join("envoyfilter/example-gateways.yaml"))
            .unwrap()
            .replace("b.example.com", "a2.example.com"),
    );
    let (code, out, _) = sni_guard(&["audit", "--deployed", "envoyfilter/wasmplugin.yaml", &without_b]);
    assert_eq!(code, 1);
    assert!(
        flat(&out).contains(
            "deployed servers[1] (b.example.com) is no Gateway server now: no Gateway server has b.example.com"
        ),
        "{out}"
    );
}

#[test]
fn audit_deployed_needs_a_gateway_and_a_good_configuration() {
    let scratch = Scratch::new("deployed-bad");
    let json = scratch.write(
        "config.json",
        r#"{"servers": [{"hosts": ["a.example.com"]}, {"hosts": ["b.example.com"]}, {"hosts": ["c.example.com", "d.example.com"]}]}"#,
    );
    // Raw JSON does not say which gateway: --selector does.
    let (code, _, err) = sni_guard(&["audit", "--deployed", &json, "envoyfilter/example-gateways.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("does not say which gateway it is for: give --selector"), "{err}");
    let (code, out, err) = sni_guard(&[
        "audit",
        "--deployed",
        &json,
        "--selector",
        "istio=ingressgateway",
        "envoyfilter/example-gateways.yaml",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(flat(&out).contains("(the gateway pods labelled istio=ingressgateway)"), "{out}");
    // A configuration the filter refuses is bad input here (check says why).
    let refused = scratch.write("refused.yaml", &example("wasmplugin.yaml").replace("mode: dry_run", "mode: block"));
    let (code, _, err) = sni_guard(&["audit", "--deployed", &refused, "envoyfilter/example-gateways.yaml"]);
    assert_eq!(code, 2);
    assert!(
        flat(&err).contains("refused: the filter refuses it: invalid configuration: mode: unknown variant `block`"),
        "{err}"
    );
    // Nothing deployed in the file.
    let (code, _, err) =
        sni_guard(&["audit", "--deployed", "envoyfilter/example-gateways.yaml", "envoyfilter/example-gateways.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("no sni-guard configuration in it"), "{err}");
}
