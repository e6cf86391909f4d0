//! Certificates made at test time with the `openssl` command (Debian's openssl, which `make
//! deps` installs): real X.509 that the CLI parses as it would a cluster's. The private key
//! goes to /dev/null; no key is ever written to the repository or the test's files.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;

/// A self-signed certificate (PEM) with subject `CN=common_name` and these DNS subject
/// alternative names (none: no SAN extension at all).
pub fn certificate(common_name: &str, dns_names: &[&str]) -> String {
    let mut command = Command::new("openssl");
    command.args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]);
    command.args(["-keyout", "/dev/null", "-days", "2", "-subj", &format!("/CN={common_name}")]);
    // The names go in a configuration on stdin: a certificate of 20,000 names is longer than
    // one command-line argument may be.
    let mut config = "[req]\ndistinguished_name = dn\n[dn]\n".to_owned();
    if !dns_names.is_empty() {
        let sans: Vec<String> = dns_names.iter().map(|n| format!("DNS:{n}")).collect();
        config.push_str(&format!("[names]\nsubjectAltName = {}\n", sans.join(",")));
        command.args(["-extensions", "names"]);
    }
    command.args(["-config", "/dev/stdin"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): the certificate tests need it; `make deps` installs it"));
    child.stdin.take().expect("piped").write_all(config.as_bytes()).expect("openssl reads its configuration");
    let out = child.wait_with_output().expect("openssl runs");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("openssl prints PEM")
}

/// A `kubernetes.io/tls` Secret holding `pem`, as `kubectl get secret -o yaml` prints one
/// (base64 `data`). Its `tls.key` is a marker, not a key: tests check it is never printed.
pub fn secret(namespace: &str, name: &str, pem: &str) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\ntype: kubernetes.io/tls\n\
         data:\n  tls.crt: {}\n  tls.key: {}\n---\n",
        b64(pem.as_bytes()),
        b64(KEY_MARKER.as_bytes())
    )
}

/// What every test Secret has as its `tls.key`.
pub const KEY_MARKER: &str = "-----BEGIN PRIVATE KEY-----\nTEST-MARKER-NOT-A-KEY\n-----END PRIVATE KEY-----\n";
