//! The `sni-guard` binary as CI and people run it: exit codes, output, stdin and pipes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Runs `sni-guard args...` with `stdin` piped in (empty when `None`); stdout is a pipe.
fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sni-guard"))
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    {
        let mut input = child.stdin.take().unwrap();
        // A process that exits before reading (a usage error) closes the pipe: not a failure.
        let _ = input.write_all(stdin.unwrap_or_default());
    }
    child.wait_with_output().unwrap()
}

/// Text with its line breaks and indentation as single spaces: what a wrapped sentence says.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn audit(name: &str) -> (i32, String, String) {
    let path = fixture(name);
    let out = run(&["audit", path.to_str().unwrap()], None);
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn two_gateways_sharing_a_secret_conflict_in_json_and_yaml() {
    for name in ["two-gateways.json", "two-gateways.yaml"] {
        let (code, out, err) = audit(name);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(
            out.starts_with("Conflict 1: OverlappingCertificates, istio=ingressgateway port 443, 2 servers\n"),
            "{out}"
        );
        assert!(out.contains("\n  [1] team-shop/shop spec.servers[0]: shop.example.com\n"), "{out}");
        assert!(out.contains("\n  [2] team-blog/blog spec.servers[0]: blog.example.com\n"), "{out}");
        // The Secret is not in the input: what was looked for, and what was checked instead.
        assert!(
            flat(&out).contains("certificate unknown: Secret istio-system/wildcard-example-com is not in the input"),
            "{out}"
        );
        assert!(flat(&out).contains("[1] [2] use credentialName wildcard-example-com: one certificate"), "{out}");
        assert!(err.contains("warning: the input holds no Secret, so 2 certificate(s) are unknown"), "{err}");
        // The port-80 redirect server has a tls block but no TLS.
        assert!(out.contains("Not at risk: 1 server"), "{out}");
        // A pipe gets no colour, and lines fit 100 columns.
        assert!(!out.contains('\x1b'), "{out:?}");
        assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
    }
}

#[test]
fn stdin_works_like_a_file() {
    let text = std::fs::read(fixture("two-gateways.yaml")).unwrap();
    let out = run(&["audit", "-"], Some(&text));
    assert_eq!(out.status.code(), Some(1));
    let out2 = run(&["audit"], Some(&text));
    assert_eq!(out.stdout, out2.stdout);
}

#[test]
fn conflicts_within_one_gateway() {
    let (code, out, _) = audit("within-one-gateway.yaml");
    assert_eq!(code, 1);
    assert!(out.contains("Conflict 2: OverlappingCertificates"), "{out}");
    assert!(!out.contains("Conflict 3"), "{out}");
    assert!(out.contains("[1] [2] use credentialName example-com-san"), "{out}");
    assert!(flat(&out).contains("[1] [2] use files /etc/istio/certs/org.pem + /etc/istio/certs/org.key"), "{out}");
    assert!(flat(&out).contains("--server-certificate /etc/istio/certs/org.pem=FILE"), "{out}");
    let clear = &out[out.find("Not in a conflict: 1 server").expect(&out)..];
    assert!(clear.contains("edge/public spec.servers[4]: own.example.net"), "{out}");
    assert!(flat(clear).contains("checked instead: no other server on istio=ingressgateway port 443"), "{out}");
}

#[test]
fn different_selectors_do_not_conflict() {
    let (code, out, _) = audit("different-selectors.yaml");
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("No conflict.\n"), "{out}");
    assert!(
        flat(&out).contains("2 servers in 2 Gateways, 0 Secrets read; no conflict; 2 servers' certificates unknown."),
        "{out}"
    );
}

#[test]
fn passthrough_and_mesh_servers_are_listed_as_not_at_risk() {
    let (code, out, _) = audit("passthrough.yaml");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Not at risk: 4 servers"), "{out}");
    assert_eq!(flat(&out).matches("TLS passthrough: forwarded by SNI as TCP").count(), 3, "{out}");
    assert!(out.contains("ISTIO_MUTUAL: mesh-internal"), "{out}");
}

#[test]
fn a_host_wildcard_matching_another_servers_host_conflicts() {
    let (code, out, _) = audit("wildcard.yaml");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Conflict 1: OverlappingHostnames"), "{out}");
    assert!(
        flat(&out).contains(
            "OverlappingHostnames: host *.example.com of [1] also matches api.example.com [2] (a host wildcard matches any depth)"
        ),
        "{out}"
    );
}

#[test]
fn the_same_host_in_two_servers() {
    let (code, out, _) = audit("duplicate-host.yaml");
    assert_eq!(code, 1, "{out}");
    assert!(flat(&out).contains("OverlappingHostnames: host shop.example.com is in [1] [2]"), "{out}");
    // The filter refuses a host in two servers: sni-guard is not offered as the fix.
    assert!(out.contains("Keep shop.example.com in one server only"), "{out}");
    assert!(!out.contains("sni-guard config"), "{out}");
}

#[test]
fn gateway_api_listeners_sharing_a_certificate_ref() {
    let (code, out, _) = audit("gateway-api.yaml");
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("Conflict 1: OverlappingCertificates, gateway web/edge port 443, 2 servers\n"), "{out}");
    assert!(flat(&out).contains("[1] web/edge spec.listeners[0] (shop): shop.example.com"), "{out}");
    assert!(out.contains("[1] [2] use Secret web/wildcard-example-com"), "{out}");
    assert!(
        flat(&out)
            .contains("Gateway API: listeners shop [1], blog [2] should carry the condition OverlappingTLSConfig"),
        "{out}"
    );
    // `solo` is its own workload: not part of the conflict.
    assert!(!out.contains("Conflict 2"), "{out}");
    let clear = &out[out.find("Not in a conflict: 1 server").expect(&out)..];
    assert!(clear.contains("web/solo spec.listeners[0] (https): solo.example.com"), "{out}");
}

#[test]
fn a_directory_of_manifests() {
    let (code, out, _) = audit("manifests");
    assert_eq!(code, 1, "{out}");
    assert!(flat(&out).contains("2 servers in 2 Gateways, 0 Secrets read; 1 conflict (2 servers)"), "{out}");
}

#[test]
fn json_output_for_machines() {
    let path = fixture("two-gateways.json");
    let out = run(&["audit", "--output", "json", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["conflicts"], 1);
    assert_eq!(doc["summary"]["certificate_unknown"], 2);
    let conflict = &doc["conflicts"][0];
    assert_eq!(conflict["reason"], "OverlappingCertificates");
    assert_eq!(conflict["workload"]["selector"]["istio"], "ingressgateway");
    assert_eq!(conflict["port"], 443);
    let evidence = &conflict["evidence"][0];
    assert_eq!(evidence["kind"], "same_credential");
    assert_eq!(evidence["reason"], "OverlappingCertificates");
    assert_eq!(evidence["credential"]["credential_name"], "wildcard-example-com");
    assert_eq!(evidence["servers"], serde_json::json!([0, 1]));
    let gateways: Vec<&str> =
        conflict["servers"].as_array().unwrap().iter().map(|s| s["gateway"].as_str().unwrap()).collect();
    assert_eq!(gateways, ["shop", "blog"]);
    assert_eq!(conflict["servers"][0]["certificate_known"], false);
    assert!(conflict["fix"][0].as_str().unwrap().starts_with("Merge them into one server"), "{conflict}");
    assert_eq!(doc["not_at_risk"][0]["reason"], "plain_text");
    assert_eq!(doc["assumed_gateway_namespaces"]["istio-system"], serde_json::json!(["istio=ingressgateway"]));

    let clean = fixture("different-selectors.yaml");
    let out = run(&["audit", "-o", "json", clean.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["conflicts"], serde_json::json!([]));
    assert_eq!(doc["not_in_conflict"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_input_exits_2_with_a_message_naming_object_and_field() {
    let cases = [
        ("bad/prose.txt", "not a Kubernetes object (found a string)"),
        ("bad/truncated.json", "not valid JSON"),
        ("bad/deployment.yaml", "no Gateway found (first object: Deployment istio-system/istio-ingressgateway"),
        (
            "bad/no-hosts.yaml",
            "items[0]: Gateway team-shop/shop: spec.servers[1].hosts: a server needs at least one host",
        ),
        ("bad/bad-host.json", "Gateway team-shop/shop: spec.servers[0].hosts[0]: \"shop.*.example.com\""),
        ("bad/listener-without-port.yaml", "Gateway web/edge: spec.listeners[0].port: missing"),
        ("bad/empty.yaml", "empty input"),
        ("bad/binary.yaml", "not UTF-8"),
        ("does-not-exist.yaml", "cannot read"),
    ];
    for (name, message) in cases {
        for sub in ["audit", "merge"] {
            let path = fixture(name);
            let out = run(&[sub, path.to_str().unwrap()], None);
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(2), "{sub} {name}: {err}");
            assert!(err.starts_with("sni-guard: bad input: "), "{name}: {err}");
            assert!(err.contains(message), "{name}: {err}");
            assert!(!err.contains("panicked"), "{name}: {err}");
            assert!(out.stdout.is_empty(), "{name}");
        }
    }
    let out = run(&["audit"], Some(b"{\"kind\": 3}"));
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["audit"], Some(b""));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    for args in [
        &[][..],
        &["lint"],
        &["audit", "--output", "xml"],
        &["audit", "--bogus"],
        &["config"],
        &["config", "--selector", "oops"],
        &["config", "--selector", "a=b", "--port", "0"],
        &["config", "--selector", "a=b", "--url", "oci://x"],
        &["config", "--selector", "a=b", "--kind", "helm"],
        &["check", "--bogus"],
        &["audit", "--selector", "a=b"],
        &["completions", "tcsh"],
    ] {
        let out = run(args, None);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        // No subcommand at all: the help, on stderr; otherwise clap's one-line error.
        let explained = if args.is_empty() {
            err.contains("Usage: sni-guard <COMMAND>")
        } else {
            err.starts_with("error: ") && err.contains("--help")
        };
        assert!(explained, "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = run(&["--help"], None);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Exit status: 0 no conflict"), "{help}");
    for sub in ["audit", "config", "check", "merge", "completions"] {
        assert!(help.contains(&format!("  {sub} ")), "{help}");
    }
}

#[test]
fn each_subcommand_has_its_own_help() {
    for args in [&["help", "audit"][..], &["audit", "--help"], &["audit", "-h"]] {
        let out = run(args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("Usage: sni-guard audit [OPTIONS] [FILE|DIR|-]..."), "{args:?}: {help}");
        assert!(help.contains("--output <OUTPUT>"), "{help}");
        assert!(help.contains("--deployed <FILE>"), "{help}");
    }
    let help = String::from_utf8(run(&["config", "--help"], None).stdout).unwrap();
    for option in [
        "--selector",
        "--namespace",
        "--port",
        "--mode",
        "--kind",
        "--image",
        "--oci-layout",
        "--wasm",
        "--sha256",
        "--example",
        "--match-port",
        "--module-path",
    ] {
        assert!(help.contains(option), "{option}: {help}");
    }
    assert!(help.lines().all(|l| l.chars().count() <= 100), "{help}");
}

#[test]
fn version() {
    let out = run(&["--version"], None);
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8(out.stdout).unwrap();
    // A build outside `make release` names no module; the release's own test checks the digests
    // a released build names against its artefacts (e2e/manifests/test_release.py).
    if option_env!("SNI_GUARD_RELEASE_MODULE_SHA256").is_none() {
        assert_eq!(printed, format!("sni-guard {} (unreleased build: no module digest)\n", env!("CARGO_PKG_VERSION")));
    } else {
        assert!(printed.starts_with(&format!("sni-guard {} (module sha256:", env!("CARGO_PKG_VERSION"))), "{printed}");
    }
}

#[test]
fn double_dash_ends_the_options() {
    // A file whose name starts with '-' is reachable after `--`.
    let dir = tempfile::Builder::new().prefix("sni-guard-dash-").tempdir().unwrap();
    let odd = dir.path().join("-gateways.yaml");
    std::fs::copy(fixture("wildcard.yaml"), &odd).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sni-guard"))
        .current_dir(dir.path())
        .args(["audit", "--", "-gateways.yaml"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    // Without `--` it is an unknown option: a usage error.
    let out = run(&["audit", "-gateways.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[cfg(unix)]
#[test]
fn a_file_name_that_is_not_utf8_is_read_like_any_other() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let name = OsStr::from_bytes(b"\xff.yaml");
    // Missing: a clear error naming the file, exit 2, no panic.
    let out =
        Command::new(env!("CARGO_BIN_EXE_sni-guard")).arg("audit").arg(name).stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("sni-guard: bad input: \"\\xFF.yaml\": cannot read: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty());
    // Present: read.
    let dir = tempfile::Builder::new().prefix("sni-guard-utf8-").tempdir().unwrap();
    std::fs::copy(fixture("wildcard.yaml"), dir.path().join(name)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sni-guard"))
        .arg("audit")
        .arg(dir.path().join(name))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn several_inputs_are_read_together() {
    let (a, b) = (fixture("manifests/shop-gateway.yaml"), fixture("manifests/blog-gateway.json"));
    let out = run(&["audit", a.to_str().unwrap(), b.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read(fixture("two-gateways.yaml")).unwrap();
    let out = run(&["audit", "-", "-"], Some(&text));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn completions() {
    let out = run(&["completions", "bash"], None);
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("complete -F _sni__guard"), "{script}");
    assert!(script.contains("--output"), "{script}");
}

/// The `#` comment lines of a merge output, joined into one line.
fn comments(text: &str) -> String {
    text.lines().filter_map(|l| l.strip_prefix("# ")).collect::<Vec<_>>().join(" ")
}

#[test]
fn merge_prints_one_server_with_all_hosts() {
    let path = fixture("two-gateways.yaml");
    let out = run(&["merge", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    assert!(
        comments(&text).contains(
            "Replaces: team-shop/shop spec.servers[0] (shop.example.com), team-blog/blog spec.servers[0] (blog.example.com)."
        ),
        "{text}"
    );
    let docs: Vec<serde_json::Value> =
        text.split("---\n").filter_map(|d| serde_yaml_ng::from_str::<Option<serde_json::Value>>(d).unwrap()).collect();
    assert_eq!(docs.len(), 1, "{text}");
    let servers = docs[0]["spec"]["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0]["hosts"], serde_json::json!(["shop.example.com", "blog.example.com"]));
    assert_eq!(servers[0]["tls"]["credentialName"], "wildcard-example-com");
    // The merged Gateway is itself conflict-free.
    let out = run(&["audit", "-"], Some(text.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn merge_prints_the_whole_gateway_api_gateway() {
    let api = fixture("gateway-api.yaml");
    let text = String::from_utf8(run(&["merge", api.to_str().unwrap()], None).stdout).unwrap();
    assert!(comments(&text).contains("must name merged-443 instead"), "{text}");
    assert!(comments(&text).contains("*.example.com also matches db.example.com of listener db"), "{text}");
    let docs: Vec<serde_json::Value> =
        text.split("---\n").filter_map(|d| serde_yaml_ng::from_str::<Option<serde_json::Value>>(d).unwrap()).collect();
    assert_eq!(docs.len(), 1, "{text}");
    let gateway = &docs[0];
    // Applyable as it is: the class, the untouched listeners, the merged one where shop was.
    assert_eq!(gateway["metadata"], serde_json::json!({"name": "edge", "namespace": "web"}));
    assert_eq!(gateway["spec"]["gatewayClassName"], "istio");
    let names: Vec<&str> =
        gateway["spec"]["listeners"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["merged-443", "db", "http"]);
    let merged = &gateway["spec"]["listeners"][0];
    assert_eq!(merged["hostname"], "*.example.com");
    assert_eq!(merged["tls"]["certificateRefs"][0]["name"], "wildcard-example-com");
    assert_eq!(merged["allowedRoutes"]["namespaces"]["from"], "All");
    // Audited again: no conflict.
    let out = run(&["audit", "-"], Some(text.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_closed_pipe_is_not_a_crash() {
    // The reader goes away before the output is written: no panic, the usual exit code.
    let path = fixture("within-one-gateway.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sni-guard"))
        .args(["audit", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn a_service_taking_the_port_over_tcp_and_udp_is_one_port_matched_for_both_listeners() {
    // HTTP/3 in Istio: the Service takes 443 over TCP and over UDP, both to 8443. istiod builds
    // the TCP listener 0.0.0.0_8443 and the QUIC listener udp_0.0.0.0_8443; a WasmPlugin's
    // `match.ports` and an EnvoyFilter's `portNumber` compare the port number only, so one port
    // matches both (e2e/envoy/test_http3_istio.py applies the patch as istiod does).
    let gateways =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../envoyfilter/example-gateways.yaml"))
            .unwrap();
    let service = [
        "---",
        "apiVersion: v1",
        "kind: Service",
        "metadata: {name: istio-ingressgateway, namespace: istio-system}",
        "spec:",
        "  selector: {istio: ingressgateway}",
        "  ports:",
        "  - {name: https, port: 443, targetPort: 8443, protocol: TCP}",
        "  - {name: http3, port: 443, targetPort: 8443, protocol: UDP}",
        "",
    ]
    .join("\n");
    let input = format!("{gateways}{service}");
    for (kind, port) in [("envoyfilter", "portNumber: 8443"), ("wasmplugin", "- number: 8443")] {
        let mut args = vec!["config", "--kind", kind, "--selector", "istio=ingressgateway"];
        if kind == "wasmplugin" {
            args.extend(["--image", "oci://registry.example.com/sni-guard:0.1.0", "--example"]);
        }
        let out = run(&args, Some(input.as_bytes()));
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.matches(port).count(), 1, "{kind}: one port\n{text}");
        let comments = flat(&text.lines().filter(|l| l.trim_start().starts_with('#')).collect::<Vec<_>>().join(" "));
        let comments = comments.replace(" # ", " ");
        assert_eq!(comments.matches("maps the Gateways' port 443 to targetPort 8443").count(), 1, "{comments}");
        assert!(
            comments.contains(
                "Service istio-system/istio-ingressgateway also takes port 443 over UDP: Istio with \
                 PILOT_ENABLE_QUIC_LISTENERS then serves these servers over HTTP/3 too, on a QUIC listener of the \
                 same port number, which this matches as well as the TCP one."
            ),
            "{kind}: {comments}"
        );
    }
    // Without the UDP port, no word of QUIC.
    let tcp_only = input.replace("  - {name: http3, port: 443, targetPort: 8443, protocol: UDP}\n", "");
    let out =
        run(&["config", "--kind", "envoyfilter", "--selector", "istio=ingressgateway"], Some(tcp_only.as_bytes()));
    assert!(!String::from_utf8(out.stdout).unwrap().contains("UDP"));
    // A protocol that is not a string is bad input, named.
    let bad = input.replace("protocol: UDP", "protocol: 17");
    let out = run(&["config", "--kind", "envoyfilter", "--selector", "istio=ingressgateway"], Some(bad.as_bytes()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("spec.ports[1].protocol: expected a string, found"));
}

/// A Gateway with `servers` HTTPS servers of one host each (27 characters), one certificate.
fn big_gateway(servers: usize) -> String {
    let mut text = String::from(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: big, namespace: apps}\nspec:\n  \
         selector: {istio: ingressgateway}\n  servers:\n",
    );
    for i in 0..servers {
        text.push_str(&format!(
            "  - port: {{number: 443, name: https-{i}, protocol: HTTPS}}\n    hosts: [host-{i:05}.apps.example.com]\n    \
             tls: {{mode: SIMPLE, credentialName: wildcard}}\n"
        ));
    }
    text
}

#[test]
fn config_warns_when_client_side_apply_cannot_store_the_manifest() {
    let args =
        ["config", "--kind", "wasmplugin", "--image", "oci://r.example/sni-guard:1", "--sha256", &"c".repeat(64)];
    let args = [&args[..], &["-l", "istio=ingressgateway", "-"]].concat();
    // Measured with these hosts: 5,000 servers take 210,599 bytes of annotation, 7,500 take 315,599.
    for (servers, expected) in [(100, None), (5_000, Some("close to the limit")), (7_500, Some("refuses it"))] {
        let out = run(&args, Some(big_gateway(servers).as_bytes()));
        assert_eq!(out.status.code(), Some(0));
        let stderr = flat(&String::from_utf8(out.stderr).unwrap());
        match expected {
            None => assert!(!stderr.contains("last-applied-configuration"), "{servers}: {stderr}"),
            Some(what) => {
                assert!(stderr.contains(what) && stderr.contains("kubectl apply --server-side"), "{servers}: {stderr}")
            }
        }
    }
}
