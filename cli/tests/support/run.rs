//! Running the `sni-guard` binary from the repository's root, as the CLI tests do.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Exit code, stdout and stderr of `sni-guard ARGS` (no stdin, no NO_COLOR).
#[allow(dead_code)] // not every test file runs the binary
pub fn sni_guard(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sni-guard"))
        .current_dir(repo_root())
        .args(args)
        .stdin(Stdio::null())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// `sni-guard config ARGS cli/tests/fixtures/FIXTURE`: exit code, stdout and stderr.
#[allow(dead_code)] // not every test file runs `config`
pub fn config(args: &[&str], fixture: &str) -> (i32, String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture);
    let path = path.to_str().expect("the fixtures' path is UTF-8");
    sni_guard(&[&["config"], args, &[path]].concat())
}
