//! The manifests checked in under envoyfilter/ (and the Kustomize base's WasmPlugin) are
//! `sni-guard config`'s output for envoyfilter/example-gateways.yaml, byte for byte: the
//! commands of `make examples`, run again. Only they carry the placeholder digest, which only
//! `--example` writes.

#[path = "support/run.rs"]
mod run;
use run::{repo_root, sni_guard};

const GATEWAYS: &str = "envoyfilter/example-gateways.yaml";
const OCI: &str = "oci://registry.example.com/sni-guard:0.1.0";
const HTTPS: &str = "https://downloads.example.com/sni-guard/0.1.0/sni-guard.wasm";

/// `make examples`, file by file.
fn examples() -> Vec<(&'static str, Vec<&'static str>)> {
    let common = ["--selector", "istio=ingressgateway"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["config"];
        args.extend(extra);
        args.extend(common);
        args.push(GATEWAYS);
        args
    };
    vec![
        ("envoyfilter/wasmplugin.yaml", with(&["--kind", "wasmplugin", "--image", OCI, "--example"])),
        ("envoyfilter/wasmplugin-http.yaml", with(&["--kind", "wasmplugin", "--image", HTTPS, "--example"])),
        ("envoyfilter/trafficextension.yaml", with(&["--kind", "trafficextension", "--image", OCI, "--example"])),
        ("envoyfilter/envoyfilter.yaml", with(&["--kind", "envoyfilter"])),
        // The Kustomize base's WasmPlugin (Kustomize reads no file outside the base's directory).
        ("envoyfilter/kustomize/base/wasmplugin.yaml", with(&["--kind", "wasmplugin", "--image", OCI, "--example"])),
    ]
}

#[test]
fn the_checked_in_manifests_are_what_config_writes() {
    for (file, args) in examples() {
        let (code, out, err) = sni_guard(&args);
        assert_eq!(code, 0, "{file}: {err}");
        let checked_in = std::fs::read_to_string(repo_root().join(file)).unwrap();
        assert!(checked_in == out, "{file} is not what `sni-guard {}` writes: run `make examples`", args.join(" "));
    }
}

/// `make examples`' overlay: envoyfilter/kustomize/overlays/example, written again into a
/// temporary directory, file by file.
#[test]
fn the_example_overlay_is_what_config_writes() {
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    let flags = &makefile[makefile.find("EXAMPLE_OVERLAY_FLAGS := ").unwrap() + "EXAMPLE_OVERLAY_FLAGS := ".len()..];
    let flags = flags[..flags.find("\n\n").unwrap()].replace("\\\n", " ");
    let directory = std::env::temp_dir().join(format!("sni-guard-example-overlay-{}", std::process::id()));
    let directory_arg = directory.to_str().unwrap();
    let mut args = vec!["config"];
    args.extend(flags.split_whitespace());
    args.extend(["--overlay", directory_arg, "--base", "../../base", GATEWAYS]);
    let (code, _, err) = sni_guard(&args);
    assert_eq!(code, 0, "{err}");
    for file in ["kustomization.yaml", "sni-guard.yaml"] {
        let written = std::fs::read_to_string(directory.join(file)).unwrap();
        let checked_in =
            std::fs::read_to_string(repo_root().join("envoyfilter/kustomize/overlays/example").join(file)).unwrap();
        assert!(written == checked_in, "envoyfilter/kustomize/overlays/example/{file}: run `make examples`");
    }
    std::fs::remove_dir_all(&directory).unwrap();
    assert!(makefile.contains("--overlay envoyfilter/kustomize/overlays/example --base ../../base"));
}

#[test]
fn the_makefile_writes_them_with_these_commands() {
    // `make examples` and the table above name the same files, images and flags.
    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    let recipe = &makefile[makefile.find("\nexamples: cli\n").expect("an examples target")..];
    let recipe = &recipe[..recipe.find("\n\n").unwrap()];
    for (file, args) in examples() {
        let line = recipe.lines().find(|l| l.contains(&format!("config,{file},"))).unwrap_or_else(|| panic!("{file}"));
        for arg in args.iter().filter(|a| !["config", "--selector", "istio=ingressgateway", GATEWAYS].contains(a)) {
            assert!(line.contains(arg), "{file}: {arg} not in {line}");
        }
    }
    assert!(makefile.contains("EXAMPLE_FLAGS := --selector istio=ingressgateway"));
}

#[test]
fn only_example_writes_the_placeholder() {
    let zeros = "0".repeat(64);
    for (file, _) in examples() {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        if file.ends_with("envoyfilter.yaml") {
            assert!(!text.contains(&zeros), "{file}");
        } else {
            assert!(text.contains(&format!("sha256: \"{zeros}\"")), "{file}");
            assert!(text.contains("placeholder (--example)"), "{file}");
        }
    }
    let (code, out, err) = sni_guard(&[
        "config",
        "-l",
        "istio=ingressgateway",
        "--kind",
        "wasmplugin",
        "--image",
        OCI,
        "--sha256",
        &zeros,
        GATEWAYS,
    ]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("placeholder"), "{err}");
    // Without a digest source, no manifest: the image cannot be pinned.
    let (code, out, err) =
        sni_guard(&["config", "-l", "istio=ingressgateway", "--kind", "wasmplugin", "--image", OCI, GATEWAYS]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("--oci-layout DIR"), "{err}");
    let (code, _, err) = sni_guard(&["config", "-l", "istio=ingressgateway", "--kind", "trafficextension", GATEWAYS]);
    assert_eq!(code, 2);
    assert!(err.contains("needs the module's location: --image"), "{err}");
    let (code, _, err) =
        sni_guard(&["config", "-l", "istio=ingressgateway", "--kind", "envoyfilter", "--image", OCI, GATEWAYS]);
    assert_eq!(code, 2);
    assert!(err.contains("--module-path"), "{err}");
}

#[test]
fn the_example_gateways_give_the_servers_and_ports_of_today() {
    let text = std::fs::read_to_string(repo_root().join("envoyfilter/wasmplugin.yaml")).unwrap();
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(
        doc["spec"]["pluginConfig"]["servers"],
        serde_json::json!([{"hosts": ["a.example.com"]}, {"hosts": ["b.example.com"]}, {"hosts": ["c.example.com", "d.example.com"]}])
    );
    assert_eq!(
        doc["spec"]["match"],
        serde_json::json!([{"mode": "CLIENT", "ports": [{"number": 443}, {"number": 8443}]}])
    );
    assert_eq!(doc["spec"]["failStrategy"], "FAIL_OPEN");
    assert_eq!(doc["spec"]["pluginConfig"]["mode"], "dry_run");
    assert!(text.contains("`extraStatTags: [connection_server, host_server]`"), "{text}");
}
