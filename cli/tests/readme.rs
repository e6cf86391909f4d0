//! The `sni-guard` runs the README and docs/audit.md show, run again: they show what the tool
//! prints. A command may be shown more than once (a short version in the README, the whole
//! reference in docs/audit.md); every showing is compared. Certificates are made anew by
//! cli/demo/make-secrets.sh, so fingerprints differ and are left out of the comparison.

#[path = "support/run.rs"]
mod run;
use run::{repo_root, sni_guard};

use std::process::Command;

/// The documents whose console blocks are run again.
const DOCUMENTS: [&str; 2] = ["README.md", "docs/audit.md"];

/// Every showing of `command` in `DOCUMENTS`: where (`README.md:123`), and the lines after it in
/// its console block up to the block's end, with the block's indentation (what precedes
/// `command` on its line) taken off. Fails when no document shows it.
fn shown_after(command: &str) -> Vec<(String, String)> {
    let mut shown = Vec::new();
    for document in DOCUMENTS {
        let text = std::fs::read_to_string(repo_root().join(document)).unwrap();
        for (at, _) in text.match_indices(command) {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let indent = &text[line_start..at];
            let line = text[..line_start].lines().count() + 1;
            assert!(indent.trim().is_empty(), "{document}:{line}: {command:?} does not start its line");
            let block = &text[at + command.len() + 1..];
            let end = block.find(&format!("{indent}```")).unwrap();
            let lines = block[..end].lines().map(|l| l.strip_prefix(indent).unwrap_or(l).to_owned() + "\n").collect();
            shown.push((format!("{document}:{line}"), lines));
        }
    }
    assert!(!shown.is_empty(), "none of {DOCUMENTS:?} shows {command:?}");
    shown
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

#[test]
fn the_audit_run_in_the_readme() {
    let secrets = Command::new("bash").arg(repo_root().join("cli/demo/make-secrets.sh")).output().unwrap();
    assert!(secrets.status.success(), "make-secrets.sh: {}", String::from_utf8_lossy(&secrets.stderr));
    let file = tempfile::Builder::new().prefix("sni-guard-readme-").suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), &secrets.stdout).unwrap();
    let (code, out, err) = sni_guard(&["audit", "cli/demo/gateways.yaml", file.path().to_str().unwrap()]);
    // Warnings come first on a terminal: stderr is written as they arise, the report at the end.
    let ran = format!("{err}{out}exit {code}\n");
    for (place, shown) in shown_after("$ sni-guard audit cli/demo/gateways.yaml secrets.yaml; echo \"exit $?\"") {
        assert_eq!(
            without_fingerprints(&shown),
            without_fingerprints(&ran),
            "{place} shows:\n{shown}\nthe run printed:\n{ran}"
        );
    }
}

/// `$ COMMAND` in a console block, run again: stderr, then stdout, then `exit N` when the shown
/// command echoes it.
fn rerun(command: &str) {
    let showings = shown_after(&format!("$ {command}"));
    let (line, echo) = match command.strip_suffix("; echo \"exit $?\"") {
        Some(line) => (line, true),
        None => (command, false),
    };
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    let (code, out, err) = sni_guard(&args);
    let ran = if echo { format!("{err}{out}exit {code}\n") } else { format!("{err}{out}") };
    for (place, shown) in showings {
        assert_eq!(shown, ran, "{place} shows:\n{shown}\nthe run printed:\n{ran}");
    }
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
    rerun("sni-guard check envoyfilter/wasmplugin.yaml; echo \"exit $?\"");
}

#[test]
fn the_drift_run_in_the_readme() {
    rerun("sni-guard audit --deployed envoyfilter/wasmplugin.yaml cli/demo/moved-d.yaml; echo \"exit $?\"");
}

#[test]
fn the_example_audit_in_the_readme() {
    rerun("sni-guard audit envoyfilter/example-gateways.yaml; echo \"exit $?\"");
}
