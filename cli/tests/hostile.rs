//! Input as a tenant, a broken pipeline or an attacker can write it: each gets a defined answer
//! (exit 2 naming file, document and field, or a report that says what it skipped) in bounded
//! time and memory. Every run here is under a 1 GiB address-space limit (`ulimit -v`) and must
//! end within 2 s in a release build (`cargo test --release --test hostile`; 20 s in debug).

#[path = "support/run.rs"]
mod run;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run gave.
struct Ran {
    code: i32,
    out: String,
    err: String,
    took: Duration,
}

/// The time any input may take: 2 s as built for release, more for a debug build.
fn bound() -> Duration {
    Duration::from_secs(if cfg!(debug_assertions) { 20 } else { 2 })
}

/// `sni-guard ARGS` under a 1 GiB address-space limit, `stdin` piped in (nothing when `None`).
fn sni_guard(args: &[&str], stdin: Option<&[u8]>) -> Ran {
    let started = Instant::now();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg("ulimit -v 1048576 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_sni-guard"))
        .args(args)
        .current_dir(run::repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    {
        let mut input = child.stdin.take().unwrap();
        // The binary may stop reading (a limit reached) and exit: not a failure here.
        let _ = input.write_all(stdin.unwrap_or_default());
    }
    let out = child.wait_with_output().unwrap();
    let ran = Ran {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8(out.stdout).unwrap(),
        err: String::from_utf8(out.stderr).unwrap(),
        took: started.elapsed(),
    };
    assert!(ran.took < bound(), "sni-guard {args:?} took {:?}:\n{}", ran.took, ran.err);
    assert!(!ran.err.contains("panicked") && !ran.err.contains("memory allocation"), "{}", ran.err);
    ran
}

/// A directory of this test's own, removed when dropped.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("sni-guard-hostile-{name}-")).tempdir().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// An Istio Gateway with one HTTPS server.
fn gateway(namespace: &str, name: &str, host: &str, credential: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  selector: {{istio: ingressgateway}}\n  servers:\n  - port: {{number: 443, name: https, protocol: HTTPS}}\n    \
         hosts: [{host}]\n    tls: {{mode: SIMPLE, credentialName: {credential}}}\n"
    )
}

#[test]
fn deep_nesting_is_refused_before_the_yaml_reader_runs() {
    let dir = scratch("deep");
    // 100,000 levels in 0.2 MB: the YAML reader alone took 30 s on it.
    let deep = write(dir.path(), "deep.yaml", &format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)));
    for sub in ["audit", "merge", "check"] {
        let ran = sni_guard(&[sub, &deep], None);
        assert_eq!(ran.code, 2, "{sub}: {}", ran.err);
        assert!(
            ran.err.contains("deep.yaml: nested 100001 levels deep, more than sni-guard's limit of 100"),
            "{sub}: {}",
            ran.err
        );
        assert!(ran.out.is_empty());
    }
    // JSON too, and through standard input.
    let json = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let ran = sni_guard(&["audit"], Some(json.as_bytes()));
    assert_eq!(ran.code, 2, "{}", ran.err);
    assert!(ran.err.contains("stdin: nested 200000 levels deep"), "{}", ran.err);
}

#[test]
fn millions_of_values_are_refused_before_the_yaml_reader_runs() {
    let dir = scratch("flat");
    // 12 MB of one-character values: the YAML reader would take about 2 GB for them.
    let flat = write(dir.path(), "flat.yaml", &format!("a: [{}1]\n", "1,".repeat(6_000_000)));
    let ran = sni_guard(&["audit", &flat], None);
    assert_eq!(ran.code, 2, "{}", ran.err);
    assert!(ran.err.contains("flat.yaml: more than 2000000 values in one file, sni-guard's limit"), "{}", ran.err);
    let block = write(dir.path(), "block.yaml", &format!("a:\n{}", "- 1\n".repeat(3_000_000)));
    let ran = sni_guard(&["audit", &block], None);
    assert_eq!(ran.code, 2, "{}", ran.err);
    assert!(ran.err.contains("block.yaml: more than 2000000 values in one file"), "{}", ran.err);
}

#[test]
fn input_larger_than_the_limit_is_refused_unread() {
    let dir = scratch("large");
    // A sparse file: its size is refused before a byte is read.
    let large = dir.path().join("large.yaml");
    std::fs::File::create(&large).unwrap().set_len(65 << 20).unwrap();
    let ran = sni_guard(&["audit", large.to_str().unwrap()], None);
    assert_eq!(ran.code, 2, "{}", ran.err);
    assert!(ran.err.contains("large.yaml: the input is larger than sni-guard's limit of 64 MiB"), "{}", ran.err);
    // Standard input is read up to the limit, then refused.
    let ran = sni_guard(&["audit", "-"], Some(&vec![b'#'; 65 << 20]));
    assert_eq!(ran.code, 2, "{}", ran.err);
    assert!(ran.err.contains("stdin: the input is larger than sni-guard's limit of 64 MiB"), "{}", ran.err);
    // The limit is for all inputs together; one file named twice is read once.
    let half = write(dir.path(), "half.yaml", &"#".repeat(40 << 20));
    let ran = sni_guard(&["audit", &half, &half], None);
    assert_eq!(ran.code, 2, "{}", ran.err);
    assert!(ran.err.contains("empty input"), "{}", ran.err);
    let copy = write(dir.path(), "copy.yaml", &"#".repeat(40 << 20));
    let ran = sni_guard(&["audit", &half, &copy], None);
    assert_eq!(ran.code, 2, "{}", ran.err);
    assert!(ran.err.contains("copy.yaml: the input is larger than sni-guard's limit"), "{}", ran.err);
}

#[cfg(unix)]
#[test]
fn a_directory_linking_to_itself_is_walked_once() {
    let dir = scratch("loop");
    write(dir.path(), "a.yaml", &gateway("a", "a", "a.example.com", "shared"));
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(&dir.path().join("sub"), "b.yaml", &gateway("b", "b", "b.example.com", "shared"));
    // Two links back to the top, and one to a file already read: a walk that followed them
    // would never end, or read the Gateways twice.
    std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/up")).unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/up-again")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("a.yaml"), dir.path().join("sub/a-link.yaml")).unwrap();
    let ran = sni_guard(&["audit", dir.path().to_str().unwrap()], None);
    assert_eq!(ran.code, 1, "{}", ran.err);
    let flat = ran.out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("2 servers in 2 Gateways, 0 Secrets read; 1 conflict (2 servers)"), "{}", ran.out);
}

#[test]
fn a_key_twice_is_refused_as_kubectl_refuses_it() {
    let dir = scratch("twice");
    // Two manifests run together without `---`: read as one, the second's keys would win.
    let joined = write(
        dir.path(),
        "joined.yaml",
        &(gateway("a", "a", "a.example.com", "shared") + &gateway("b", "b", "b.example.com", "other")),
    );
    let ran = sni_guard(&["audit", &joined], None);
    assert_eq!(ran.code, 2, "{}", ran.err);
    assert!(ran.err.starts_with("sni-guard: bad input: "), "{}", ran.err);
    assert!(
        ran.err.contains("joined.yaml: document 1: apiVersion: the key is in this mapping twice; kubectl refuses that"),
        "{}",
        ran.err
    );
    let json = r#"{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Secret", "metadata": {"name": "a", "name": "b"}}]}"#;
    let ran = sni_guard(&["audit"], Some(json.as_bytes()));
    assert_eq!(ran.code, 2, "{}", ran.err);
    assert!(ran.err.contains("stdin: items[0].metadata.name: the key is in this mapping twice"), "{}", ran.err);
}

/// The issue's injection: two Gateways in one namespace whose credentialName closes `merge`'s
/// comment and adds a ClusterRoleBinding. Not a Secret name: refused, nothing written.
#[test]
fn a_credential_name_that_would_inject_yaml_is_refused() {
    let dir = scratch("inject");
    let evil =
        "shared\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwn}\n\
                roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n\
                subjects: [{kind: ServiceAccount, name: default, namespace: evil}]\n---\n#";
    let quoted = serde_json::to_string(evil).unwrap();
    let input = write(
        dir.path(),
        "gateways.yaml",
        &format!(
            "{}---\n{}",
            gateway("evil", "a", "a.example.com", &quoted),
            gateway("evil", "b", "b.example.com", &quoted)
        ),
    );
    for sub in ["merge", "audit"] {
        let ran = sni_guard(&[sub, &input], None);
        assert_eq!(ran.code, 2, "{sub}: {}{}", ran.out, ran.err);
        assert!(ran.out.is_empty(), "{sub}: {}", ran.out);
        assert!(
            ran.err.contains(
                "gateways.yaml: document 1: Gateway evil/a: spec.servers[0].tls.credentialName: \"shared\\n---\\napiVersion:"
            ),
            "{}",
            ran.err
        );
        assert!(ran.err.contains("not a Kubernetes Secret name"), "{}", ran.err);
        assert_eq!(ran.err.lines().count(), 1, "one line, the newlines escaped: {}", ran.err);
    }
    // A Gateway's own name, from an offline file (the API server refuses such a name).
    let named = write(dir.path(), "named.yaml", &gateway("evil", "\"a\\n---\\nkind: X\"", "a.example.com", "c"));
    let ran = sni_guard(&["merge", &named], None);
    assert_eq!(ran.code, 2, "{}", ran.err);
    assert!(ran.err.contains("metadata.name: \"a\\n---\\nkind: X\" is not a Kubernetes name"), "{}", ran.err);
}

/// Names reach the terminal escaped: ESC, CR, BEL and U+202E in a listener's name (Gateway API
/// types it loosely) and a Secret's type clear no screen, fake no line and set no title.
#[test]
fn control_characters_reach_no_terminal() {
    let dir = scratch("terminal");
    let listener = "\u{1b}]0;owned\u{7}\u{1b}[2J\rNo conflict.\u{202e}";
    let gateway = serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "web"},
        "spec": {"listeners": [
            {"name": listener, "hostname": "a.corp.test", "port": 443, "protocol": "HTTPS",
             "tls": {"certificateRefs": [{"name": "shared"}]}},
            {"name": "b", "hostname": "b.corp.test", "port": 443, "protocol": "HTTPS",
             "tls": {"certificateRefs": [{"name": "shared"}]}}]}});
    let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls\u{1b}[31m",
        "metadata": {"name": "unused", "namespace": "web"}, "data": {"tls.crt": ""}});
    let input =
        write(dir.path(), "input.json", &serde_json::json!({"kind": "List", "items": [gateway, secret]}).to_string());
    let unsafe_chars = |text: &str| text.chars().any(|c| sni_guard_cli::text::is_unsafe(c) && c != '\n');
    for args in [vec!["audit", &input], vec!["audit", "-o", "json", &input], vec!["merge", &input]] {
        let ran = sni_guard(&args, None);
        assert!(ran.code == 1 || ran.code == 0, "{args:?}: {}", ran.err);
        assert!(!unsafe_chars(&ran.out) && !unsafe_chars(&ran.err), "{args:?}: {:?}{:?}", ran.out, ran.err);
        assert!(!ran.out.lines().any(|l| l.starts_with("No conflict.")), "{}", ran.out);
    }
    let text = sni_guard(&["audit", &input], None).out;
    assert!(text.contains("(\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\rNo conflict.\\u{202e})"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&sni_guard(&["audit", "-o", "json", &input], None).out).unwrap();
    assert_eq!(json["conflicts"][0]["servers"][0]["listener"], listener, "JSON escapes, a JSON reader gets it back");
}
