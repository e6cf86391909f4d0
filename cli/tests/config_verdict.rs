//! `sni-guard config` output, fed to the filter's own entry points: `Settings::from_json`
//! (what `proxy_on_configure` runs) and `verdict::check` (what every request gets). Hosts of
//! one server share a connection (pass, 200 upstream); hosts of two servers do not (421).

#[path = "support/run.rs"]
mod run;

use run::config;
use sni_guard::config::{Mode, Settings};
use sni_guard::verdict::{check, Misdirection};

fn verdict(settings: &Settings, sni: &str, authority: &str) -> Result<(), Misdirection> {
    check(settings, Some(sni.as_bytes()), Some(authority.as_bytes()))
}

#[test]
fn merged_server_passes_and_other_servers_get_421() {
    let (code, json, err) = config(&["--selector", "istio=ingressgateway"], "merged.yaml");
    assert_eq!(code, 0, "{err}");
    let settings = Settings::from_json(json.as_bytes()).expect("the filter loads what config prints");
    // One merged server: a connection opened for shop may carry blog (Istio's ns/ form too).
    assert_eq!(verdict(&settings, "shop.example.com", "blog.example.com"), Ok(()));
    assert_eq!(verdict(&settings, "blog.example.com", "SHOP.example.com:443"), Ok(()));
    // Another server: 421.
    assert_eq!(verdict(&settings, "shop.example.com", "admin.example.com"), Err(Misdirection::OtherServer));
    assert_eq!(verdict(&settings, "admin.example.com", "blog.example.com"), Err(Misdirection::OtherServer));
    // The passthrough server on 443 is listed: a request for it on shop's connection (whose
    // certificate may cover it) gets 421, and the retry opens a connection of its own. Said so,
    // in lines wrapped at 100 columns.
    assert_eq!(verdict(&settings, "shop.example.com", "db.example.com"), Err(Misdirection::OtherServer));
    assert!(err.lines().all(|l| l.chars().count() <= 100), "{err}");
    let said = err.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains(
            "listed team-shop/merged-wildcard-example-com-443 spec.servers[2] (db.example.com): TLS passthrough"
        ),
        "{err}"
    );
    // --no-passthrough leaves it out, and says so.
    let (code, json, err) = config(&["--selector", "istio=ingressgateway", "--no-passthrough"], "merged.yaml");
    assert_eq!(code, 0, "{err}");
    assert!(!json.contains("db.example.com"), "{json}");
    assert!(
        err.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains("(db.example.com): TLS passthrough, by --no-passthrough"),
        "{err}"
    );
}

#[test]
fn the_two_gateways_case_gets_421_across_gateways() {
    for fixture in ["two-gateways.json", "two-gateways.yaml", "manifests"] {
        let (code, json, err) = config(&["--selector", "istio=ingressgateway,app=istio-ingressgateway"], fixture);
        assert_eq!(code, 0, "{fixture}: {err}");
        let settings = Settings::from_json(json.as_bytes()).unwrap();
        assert_eq!(
            verdict(&settings, "shop.example.com", "blog.example.com"),
            Err(Misdirection::OtherServer),
            "{fixture}"
        );
        assert_eq!(verdict(&settings, "shop.example.com", "shop.example.com"), Ok(()));
    }
}

#[test]
fn wildcard_and_gateway_api_configurations() {
    let (code, json, _) = config(&["--selector", "istio=ingressgateway"], "wildcard.yaml");
    assert_eq!(code, 0);
    let settings = Settings::from_json(json.as_bytes()).unwrap();
    assert_eq!(verdict(&settings, "www.example.com", "shop.example.com"), Ok(()));
    assert_eq!(verdict(&settings, "www.example.com", "api.example.com"), Err(Misdirection::OtherServer));

    let (code, json, err) = config(&["--selector", "gateway.networking.k8s.io/gateway-name=edge"], "gateway-api.yaml");
    assert_eq!(code, 0, "{err}");
    let settings = Settings::from_json(json.as_bytes()).unwrap();
    assert_eq!(verdict(&settings, "shop.example.com", "blog.example.com"), Err(Misdirection::OtherServer));
    assert!(!json.contains("solo"), "{json}");
}

#[test]
fn wasmplugin_manifest_embeds_a_loadable_configuration() {
    let (code, yaml, err) = config(
        &[
            "--selector",
            "istio=ingressgateway",
            "--kind",
            "wasmplugin",
            "--image",
            "oci://registry.example.com/sni-guard:1",
            "--sha256",
            "sha256:7d4ffc8a52ba4a6a73e8d4b4c81a86fd6e0f7ab8b6c1d1c26cf2b5a5e4d9e1f0",
            "--namespace",
            "istio-ingress",
        ],
        "merged.yaml",
    );
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(doc["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(doc["kind"], "WasmPlugin");
    assert_eq!(doc["metadata"]["namespace"], "istio-ingress");
    assert_eq!(doc["spec"]["selector"]["matchLabels"], serde_json::json!({"istio": "ingressgateway"}));
    assert_eq!(doc["spec"]["url"], "oci://registry.example.com/sni-guard:1");
    assert_eq!(doc["spec"]["sha256"], "7d4ffc8a52ba4a6a73e8d4b4c81a86fd6e0f7ab8b6c1d1c26cf2b5a5e4d9e1f0");
    assert_eq!(doc["spec"]["phase"], "AUTHN");
    assert_eq!(doc["spec"]["failStrategy"], "FAIL_OPEN");
    // A first rollout: dry_run unless --mode enforce, and the output says so.
    assert!(yaml.contains("# Mode dry_run, the default for a first rollout"), "{yaml}");
    // Istio hands pluginConfig to the plugin as JSON.
    let plugin_config = serde_json::to_vec(&doc["spec"]["pluginConfig"]).unwrap();
    let settings = Settings::from_json(&plugin_config).unwrap();
    assert_eq!(settings.mode, Mode::DryRun);
    assert_eq!(verdict(&settings, "shop.example.com", "blog.example.com"), Ok(()));
    assert_eq!(verdict(&settings, "shop.example.com", "admin.example.com"), Err(Misdirection::OtherServer));
}

#[test]
fn config_refusals() {
    // No such workload: exit 2, naming the workloads that exist.
    let (code, out, err) = config(&["--selector", "istio=missing"], "two-gateways.yaml");
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("workloads in the input: istio=ingressgateway"), "{err}");
    // Only passthrough on that port: nothing to guard, exit 2.
    let (code, _, err) = config(&["--selector", "istio=eastwestgateway"], "passthrough.yaml");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no server that terminates TLS and routes HTTP"), "{err}");
    // A host in two servers: the filter would refuse it, so config refuses too, exit 1.
    let (code, out, err) = config(&["--selector", "istio=ingressgateway"], "duplicate-host.yaml");
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("servers[1] (team-shop-canary/shop-canary spec.servers[0]).hosts"), "{err}");
    assert!(err.contains("already listed by servers[0] (team-shop/shop spec.servers[0])"), "{err}");
    // Bad input: exit 2.
    let (code, _, err) = config(&["--selector", "istio=ingressgateway"], "bad/no-hosts.yaml");
    assert_eq!(code, 2);
    assert!(err.contains("spec.servers[1].hosts"), "{err}");
}
