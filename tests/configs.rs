//! Every Envoy configuration in `envoy/` passes `envoy --mode validate`
//! (which also loads the module and runs its `on_configure`).
//!
//! A YAML file with top-level `resources` is not a bootstrap but an xDS
//! resource file (a `DiscoveryResponse`) that a bootstrap reads through a
//! file-based subscription (`path_config_source`). `--mode validate` never
//! reads those, so each one is validated inside the bootstrap that reads
//! it, with its resources put in place of the subscription (an ECDS filter
//! becomes its `typed_config`, LDS becomes static listeners).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

#[test]
fn every_envoy_config_validates() {
    support::envoy::wasm_path(); // the configs load dist/meshprobe.wasm
    let mut files = Vec::new();
    yaml_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy"),
        &mut files,
    );
    assert!(!files.is_empty(), "no Envoy configs found");
    let (resources, bootstraps): (Vec<_>, Vec<_>) = files
        .into_iter()
        .map(|f| {
            let doc = read_yaml(&f);
            (f, doc)
        })
        .partition(|(_, doc)| doc.get("resources").is_some());
    for (file, _) in &bootstraps {
        let (ok, out) = support::envoy::validate(file);
        assert!(ok, "{} does not validate:\n{out}", file.display());
        assert!(out.contains("OK"), "{}: {out}", file.display());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, doc) in &resources {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let listed = doc["resources"].as_array().unwrap();
        let mut readers = 0;
        for (bootstrap, b) in &bootstraps {
            let Some(inlined) = inline_resources(b, &rel, listed) else {
                continue;
            };
            readers += 1;
            let dir = support::envoy::Scratch::new("inlined");
            let path = dir.0.join("bootstrap.json");
            std::fs::write(&path, inlined.to_string()).unwrap();
            let (ok, out) = support::envoy::validate(&path);
            let what = format!("{rel} (inside {})", bootstrap.display());
            assert!(ok, "{what} does not validate:\n{out}");
            assert!(out.contains("OK"), "{what}: {out}");
        }
        assert!(readers > 0, "{rel}: no bootstrap in envoy/ reads it");
    }
}

fn read_yaml(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// `bootstrap` with the resources of the file `rel` in place of the
/// file-based subscriptions that read it; `None` when none does.
fn inline_resources(bootstrap: &Value, rel: &str, resources: &[Value]) -> Option<Value> {
    let mut b = bootstrap.clone();
    let mut used = false;
    if reads(&b["dynamic_resources"]["lds_config"], rel) {
        b["dynamic_resources"]
            .as_object_mut()
            .unwrap()
            .remove("lds_config");
        let mut listeners = b["static_resources"]["listeners"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for r in resources {
            let mut listener = r.clone();
            listener.as_object_mut().unwrap().remove("@type");
            listeners.push(listener);
        }
        b["static_resources"]["listeners"] = Value::Array(listeners);
        used = true;
    }
    used |= inline_filters(&mut b, rel, resources);
    used.then_some(b)
}

fn reads(config_source: &Value, rel: &str) -> bool {
    config_source["path_config_source"]["path"] == rel
}

/// Replaces each filter whose `config_discovery` reads `rel` by the
/// resource of its name (ECDS).
fn inline_filters(v: &mut Value, rel: &str, resources: &[Value]) -> bool {
    match v {
        Value::Object(map) => {
            if map
                .get("config_discovery")
                .is_some_and(|d| reads(&d["config_source"], rel))
            {
                let name = &map["name"];
                let resource = resources
                    .iter()
                    .find(|r| &r["name"] == name)
                    .unwrap_or_else(|| panic!("{rel} has no resource named {name}"));
                let typed_config = resource["typed_config"].clone();
                map.remove("config_discovery");
                map.insert("typed_config".into(), typed_config);
                return true;
            }
            let mut any = false;
            for x in map.values_mut() {
                any |= inline_filters(x, rel, resources);
            }
            any
        }
        Value::Array(items) => {
            let mut any = false;
            for x in items {
                any |= inline_filters(x, rel, resources);
            }
            any
        }
        _ => false,
    }
}

#[test]
fn validate_catches_a_refused_policy() {
    // The check above would be worthless if validate ignored on_configure.
    let dir = support::envoy::Scratch::new("validate");
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/demo/envoy.yaml"),
    )
    .unwrap();
    let bad = good.replace(
        "\"checks\": [\"db\", \"cache\", \"search\"]",
        "\"checks\": [\"dbb\"]",
    );
    assert_ne!(good, bad);
    let file = dir.0.join("bad.yaml");
    std::fs::write(&file, bad).unwrap();
    let (ok, out) = support::envoy::validate(&file);
    assert!(!ok, "validate accepted a bad policy:\n{out}");
    assert!(
        out.contains("unknown check \\\"dbb\\\"") || out.contains("unknown check \"dbb\""),
        "{out}"
    );
}

#[test]
fn validate_catches_a_refused_policy_in_a_resource_file() {
    // The inlining above would be worthless if the resources' policies
    // were not what Envoy validates.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (bootstrap, rel) in [
        ("envoy/ecds/envoy.yaml", "envoy/ecds/filters/meshprobe.yaml"),
        ("envoy/lds/envoy.yaml", "envoy/lds/listeners/main.yaml"),
    ] {
        let good = std::fs::read_to_string(root.join(rel)).unwrap();
        let bad = good.replace("\"checks\": [\"db\", \"cache\"]", "\"checks\": [\"dbb\"]");
        assert_ne!(good, bad, "{rel}");
        let doc: Value = serde_norway::from_str(&bad).unwrap();
        let inlined = inline_resources(
            &read_yaml(&root.join(bootstrap)),
            rel,
            doc["resources"].as_array().unwrap(),
        )
        .unwrap_or_else(|| panic!("{bootstrap} does not read {rel}"));
        let dir = support::envoy::Scratch::new("inlined-bad");
        let path = dir.0.join("bootstrap.json");
        std::fs::write(&path, inlined.to_string()).unwrap();
        let (ok, out) = support::envoy::validate(&path);
        assert!(!ok, "validate accepted a bad policy in {rel}:\n{out}");
        assert!(out.contains("unknown check"), "{rel}: {out}");
    }
}
