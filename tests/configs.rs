//! Every Envoy configuration in `envoy/` passes `envoy --mode validate`
//! (which also loads the module and runs its `on_configure`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;

fn yaml_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
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
    for file in files {
        let (ok, out) = support::envoy::validate(&file);
        assert!(ok, "{} does not validate:\n{out}", file.display());
        assert!(out.contains("OK"), "{}: {out}", file.display());
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
