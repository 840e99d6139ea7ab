//! The Istio resources in `istio/` are what a cluster would accept, and say
//! what they mean to say.
//!
//! Every YAML document there is checked the way the Kubernetes API server
//! checks a custom resource, as closely as a test without a cluster can:
//!
//! - against the `openAPIV3Schema` of its CRD (matched by group, version and
//!   kind) from `../shared/istio/customresourcedefinitions.gen.yaml`, with a
//!   real JSON-schema validator (`jsonschema`, draft 4: the dialect OpenAPI v3
//!   schemas are based on), after the Kubernetes-specific parts of the
//!   schema are made explicit (see `kube::structural`): unknown fields refused,
//!   `nullable`, `format: int32` bounds, int-or-string, and the `apiVersion`,
//!   `kind` and `metadata` that the API server validates itself;
//! - against the CRD's `x-kubernetes-validations` (CEL rules), each evaluated
//!   by a Rust equivalent (see `kube::cel`); a rule without an equivalent that a
//!   document reaches fails the test, so a new rule cannot be skipped silently;
//! - against `x-kubernetes-list-type` (`map` keys and `set` items unique).
//!
//! Kinds without a CRD there (the Deployment and Service of
//! `istio/deployment.yaml`) must parse, carry a valid envelope, and have the
//! fields checked that make kubelet's probes reach meshprobe.
//!
//! Every embedded `pluginConfig` is then validated by meshprobe's own policy
//! validator, with exactly the environment variables its `vmConfig.env`
//! declares. Negative tests mutate valid documents and assert that each
//! mutation is refused, so the validation above cannot be vacuous.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../support/kube.rs"]
mod kube;

mod deployment;
mod grpc;
mod refusals;
mod resources;

use kube::*;
use meshprobe::policy::Policy;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One document of `istio/`.
#[derive(Clone, Debug)]
struct Doc {
    file: String,
    index: usize,
    value: Value,
}

impl Doc {
    fn str(&self, pointer: &str) -> &str {
        self.value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    fn kind(&self) -> &str {
        self.str("/kind")
    }
    fn name(&self) -> &str {
        self.str("/metadata/name")
    }
    fn namespace(&self) -> &str {
        self.str("/metadata/namespace")
    }
    fn id(&self) -> String {
        format!(
            "{}#{} ({} {}/{})",
            self.file,
            self.index,
            self.kind(),
            self.namespace(),
            self.name()
        )
    }
    /// The WasmPlugin/TrafficExtension fields that describe the module
    /// (TrafficExtension nests them under `wasm`).
    fn module(&self) -> &Value {
        match self.kind() {
            "TrafficExtension" => &self.value["spec"]["wasm"],
            _ => &self.value["spec"],
        }
    }
}

fn istio_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("istio"))
        .expect("istio/ is missing")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML in istio/");
    files
}

fn docs() -> &'static [Doc] {
    static DOCS: OnceLock<Vec<Doc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut out = Vec::new();
        for path in istio_files() {
            let file = format!("istio/{}", path.file_name().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(&path).unwrap();
            for (index, value) in yaml_documents(&text, &file).into_iter().enumerate() {
                out.push(Doc {
                    file: file.clone(),
                    index,
                    value,
                });
            }
        }
        out
    })
}

fn docs_of(kind: &str) -> Vec<&'static Doc> {
    docs().iter().filter(|d| d.kind() == kind).collect()
}

fn doc(kind: &str, namespace: &str, name: &str) -> &'static Doc {
    docs()
        .iter()
        .find(|d| d.kind() == kind && d.namespace() == namespace && d.name() == name)
        .unwrap_or_else(|| panic!("istio/ has no {kind} {namespace}/{name}"))
}

// ---------------------------------------------------------------------------
// Helpers on the resources
// ---------------------------------------------------------------------------

fn plugins() -> Vec<&'static Doc> {
    docs()
        .iter()
        .filter(|d| matches!(d.kind(), "WasmPlugin" | "TrafficExtension"))
        .collect()
}

fn env_names(module: &Value) -> BTreeSet<String> {
    module
        .pointer("/vmConfig/env")
        .and_then(Value::as_array)
        .map(|env| {
            env.iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn policy_of(plugin: &Doc) -> &Value {
    let config = &plugin.module()["pluginConfig"];
    assert!(config.is_object(), "{}: no pluginConfig", plugin.id());
    config
}

/// meshprobe's verdict on a plugin's configuration, with exactly the
/// environment variables that its vmConfig.env gives the VM.
fn policy_errors(module: &Value) -> Option<String> {
    let declared = env_names(module);
    let bytes = serde_json::to_vec(&module["pluginConfig"]).unwrap();
    let env = |name: &str| declared.contains(name).then(|| "x".to_string());
    Policy::from_json(&bytes, &env)
        .err()
        .map(|errors| format!("{errors:?}"))
}

fn millis(duration: &str) -> u64 {
    if let Some(ms) = duration.strip_suffix("ms") {
        ms.parse().unwrap()
    } else if let Some(s) = duration.strip_suffix('s') {
        (s.parse::<f64>().unwrap() * 1000.0) as u64
    } else {
        panic!("{duration:?}: not a duration this test reads")
    }
}

fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|sel| !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// Sets (or, with None, removes) the value at a JSON pointer.
fn mutate(base: &Value, pointer: &str, new: Option<Value>) -> Value {
    let mut v = base.clone();
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let target = v
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("{pointer}: no parent"));
    match (target, new) {
        (Value::Object(m), Some(new)) => {
            m.insert(last.to_string(), new);
        }
        (Value::Object(m), None) => {
            m.remove(last)
                .unwrap_or_else(|| panic!("{pointer}: nothing to remove"));
        }
        (Value::Array(a), Some(new)) => {
            let i: usize = last.parse().unwrap();
            if i == a.len() {
                a.push(new);
            } else {
                a[i] = new;
            }
        }
        (Value::Array(a), None) => {
            a.remove(last.parse().unwrap());
        }
        _ => panic!("{pointer}: parent is not a container"),
    }
    v
}
