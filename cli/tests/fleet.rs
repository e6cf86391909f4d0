//! The `sni-guard` command on a generated fleet (`support/fleet.rs`): two ingress deployments in
//! two namespaces behind their Services, a wildcard and a SAN certificate, a passthrough server,
//! a Gateway API Gateway, and thousands of app servers.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/run.rs"]
mod run;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fleet::{Certificates, Fleet};
use run::sni_guard;

/// A directory of this test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sni-guard-fleet-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
    let scratch = Scratch::new("scale");
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
