//! The runs README's "sni-guard audit" section shows, run again: the README shows what the
//! tool prints. Certificates are made anew by cli/demo/make-secrets.sh, so fingerprints differ
//! and are left out of the comparison.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The lines after `command` in the README's console block, up to the block's end; `indent` is
/// the block's indentation, taken off.
fn shown_after(command: &str, indent: &str) -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme.find(command).unwrap_or_else(|| panic!("README has no {command:?}")) + command.len() + 1;
    let block = &readme[start..];
    let end = block.find(&format!("{indent}```")).unwrap();
    block[..end].lines().map(|l| l.strip_prefix(indent).unwrap_or(l).to_owned() + "\n").collect()
}

/// `SHA-256 AB:CD:...…` with the digits replaced.
fn without_fingerprints(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("SHA-256 ") {
        let after = &rest[at + "SHA-256 ".len()..];
        let digits = after.find('…').unwrap_or(0);
        out.push_str(&rest[..at]);
        out.push_str("SHA-256 XX");
        rest = &after[digits..];
    }
    out + rest
}

fn sni_guard(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sni-guard"))
        .current_dir(repo_root())
        .args(args)
        .stdin(Stdio::null())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn the_audit_run_in_the_readme() {
    let secrets = Command::new("bash").arg(repo_root().join("cli/demo/make-secrets.sh")).output().unwrap();
    assert!(secrets.status.success(), "make-secrets.sh: {}", String::from_utf8_lossy(&secrets.stderr));
    let file = std::env::temp_dir().join(format!("sni-guard-readme-{}.yaml", std::process::id()));
    std::fs::write(&file, &secrets.stdout).unwrap();
    let (code, out, err) = sni_guard(&["audit", "cli/demo/gateways.yaml", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    // Warnings come first on a terminal: stderr is written as they arise, the report at the end.
    let ran = format!("{err}{out}exit {code}\n");
    let shown = shown_after("$ sni-guard audit cli/demo/gateways.yaml secrets.yaml; echo \"exit $?\"", "");
    assert_eq!(
        without_fingerprints(&shown),
        without_fingerprints(&ran),
        "README shows:\n{shown}\nthe run printed:\n{ran}"
    );
}

/// `$ COMMAND` in the README's two-space-indented console block, run again: stderr, then stdout,
/// then `exit N` when the README's command echoes it.
fn rerun(command: &str) {
    let shown = shown_after(&format!("$ {command}"), "  ");
    let (line, echo) = match command.strip_suffix("; echo \"exit $?\"") {
        Some(line) => (line, true),
        None => (command, false),
    };
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    let (code, out, err) = sni_guard(&args);
    let ran = if echo { format!("{err}{out}exit {code}\n") } else { format!("{err}{out}") };
    assert_eq!(shown, ran, "README shows:\n{shown}\nthe run printed:\n{ran}");
}

#[test]
fn the_config_run_in_the_readme() {
    rerun(
        "sni-guard config -l gateway.networking.k8s.io/gateway-name=edge --kind wasmplugin --image \
         file:///var/local/lib/wasm/sni-guard.wasm cli/demo/gateways.yaml",
    );
}

#[test]
fn the_check_run_in_the_readme() {
    rerun("sni-guard check envoyfilter/wasmplugin.yaml envoyfilter/envoyfilter.yaml");
}

#[test]
fn the_drift_run_in_the_readme() {
    rerun("sni-guard audit --deployed envoyfilter/wasmplugin.yaml cli/demo/moved-d.yaml; echo \"exit $?\"");
}
