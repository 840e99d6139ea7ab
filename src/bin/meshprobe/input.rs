//! Finding meshprobe policies in the files a user names: a policy JSON, an
//! Envoy bootstrap / LDS / ECDS file, an Istio `WasmPlugin` or
//! `TrafficExtension`, or a Kubernetes YAML stream mixing them with other
//! kinds.
//!
//! How a Wasm filter is recognised as meshprobe: one of its names contains
//! `meshprobe` (Envoy: the filter's `config.name`, `root_id`, `vm_id` or the
//! code's file name or URI; Istio: `metadata.name`, `pluginName` or `url`).
//! `--any-wasm` takes every Wasm filter for meshprobe.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `@type` of Envoy's Wasm HTTP filter.
const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";

/// Where a policy came from: decides which warnings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A policy JSON (or YAML) document on its own.
    Bare,
    /// The `configuration` of an Envoy Wasm filter.
    Envoy,
    /// The `pluginConfig` of an Istio `WasmPlugin` / `TrafficExtension`.
    Istio,
}

/// The VM environment variables a policy's `{"env": NAME}` secrets may name.
#[derive(Debug, Clone)]
pub enum Env {
    /// Not known (a policy on its own): every name counts as set.
    Any,
    /// Declared next to the policy: a name with its inline value, or
    /// `None` when the value comes from the host at run time.
    Declared(BTreeMap<String, Option<String>>),
}

/// One policy found in a file.
#[derive(Debug, Clone)]
pub struct Found {
    pub file: String,
    /// 1-based, counting the non-empty documents of the file.
    pub doc: usize,
    /// `kind/name` of a Kubernetes object, else what the document is.
    pub label: String,
    /// Where the policy sits in the document (`spec.pluginConfig`; empty
    /// for a policy on its own).
    pub at: String,
    pub origin: Origin,
    /// The policy JSON the module would get, or why there is none.
    pub bytes: Result<Vec<u8>, String>,
    pub env: Env,
    /// The clusters a check may name, when the document says them all (an
    /// Envoy bootstrap with static clusters and no CDS).
    pub clusters: Option<Vec<String>>,
}

/// A document that holds no meshprobe policy.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub file: String,
    pub doc: usize,
    pub label: String,
    pub why: String,
}

/// Everything found in one file.
#[derive(Debug, Default)]
pub struct Contents {
    pub found: Vec<Found>,
    pub skipped: Vec<Skipped>,
}

/// `path` itself, or for a directory every `.yaml`, `.yml` and `.json`
/// file below it (sorted; hidden entries left out).
pub fn expand(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(path)];
    if !dirs.iter().all(|d| d.is_dir()) {
        return vec![path.to_string()];
    }
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            out.push(dir.display().to_string());
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden {
                continue;
            }
            if p.is_dir() {
                dirs.push(p);
            } else if p
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                out.push(p.display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Reads `file` and finds its policies. `Err` is one line: the file cannot
/// be read or parsed (bad input, exit 2).
pub fn load(file: &str, any_wasm: bool) -> Result<Contents, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let docs = parse(file, &text)?;
    let json_file = file.ends_with(".json");
    let mut out = Contents::default();
    for (i, doc) in docs.into_iter().enumerate() {
        let n = i + 1;
        let before = out.found.len();
        let label = classify_doc(file, n, &doc, json_file, any_wasm, &mut out);
        if out.found.len() == before {
            if let Some((label, why)) = label {
                out.skipped.push(Skipped {
                    file: file.to_string(),
                    doc: n,
                    label,
                    why,
                });
            }
        }
    }
    Ok(out)
}

/// The documents of a file, empty ones left out. JSON files are read as
/// JSON (its error messages are clearer), anything else as a YAML stream.
fn parse(file: &str, text: &str) -> Result<Vec<Value>, String> {
    if file.ends_with(".json") {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("{file} is not valid JSON: {e}"))?;
        return Ok(vec![v]);
    }
    let mut docs = Vec::new();
    for de in serde_norway::Deserializer::from_str(text) {
        let v = <serde_norway::Value as serde::Deserialize>::deserialize(de)
            .map_err(|e| format!("{file} is not valid YAML: {e}"))?;
        if !v.is_null() {
            docs.push(to_json(v));
        }
    }
    Ok(docs)
}

/// YAML to JSON values; non-string keys become their YAML text.
fn to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_norway::to_string(&other)
                        .map(|s| s.trim_end().to_string())
                        .unwrap_or_default(),
                };
                out.insert(key, to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => to_json(t.value),
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .and_then(Value::as_str)
}

fn names_meshprobe(names: &[Option<&str>]) -> bool {
    names
        .iter()
        .flatten()
        .any(|n| n.to_ascii_lowercase().contains("meshprobe"))
}

/// Adds the document's policies to `out`; returns its label and why it
/// holds none (used when it holds none).
fn classify_doc(
    file: &str,
    doc: usize,
    v: &Value,
    json_file: bool,
    any_wasm: bool,
    out: &mut Contents,
) -> Option<(String, String)> {
    if let (Some(api), Some(kind)) = (str_at(v, &["apiVersion"]), str_at(v, &["kind"])) {
        let label = format!("{kind}/{}", str_at(v, &["metadata", "name"]).unwrap_or("?"));
        let istio = api.starts_with("extensions.istio.io/");
        let (module, at) = match kind {
            "WasmPlugin" if istio => (v.get("spec"), "spec"),
            "TrafficExtension" if istio => match v.get("spec").and_then(|s| s.get("wasm")) {
                Some(w) => (Some(w), "spec.wasm"),
                None => return Some((label, "a TrafficExtension without wasm".into())),
            },
            _ => return Some((label, "not a meshprobe resource".into())),
        };
        let module = module.unwrap_or(&Value::Null);
        let names = [
            str_at(v, &["metadata", "name"]),
            str_at(module, &["pluginName"]),
            str_at(module, &["url"]),
        ];
        if !any_wasm && !names_meshprobe(&names) {
            return Some((
                label,
                format!(
                    "another Wasm module ({}; see --any-wasm)",
                    str_at(module, &["url"]).unwrap_or("no url")
                ),
            ));
        }
        let bytes = match module.get("pluginConfig") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(s.clone().into_bytes()),
            Some(config) => serde_json::to_vec(config).map_err(|e| e.to_string()),
        };
        out.found.push(Found {
            file: file.to_string(),
            doc,
            label,
            at: format!("{at}.pluginConfig"),
            origin: Origin::Istio,
            bytes,
            env: Env::Declared(istio_env(module)),
            clusters: None,
        });
        return None;
    }

    let envoy_label = if v.get("resources").is_some() {
        "Envoy discovery response"
    } else if ["static_resources", "dynamic_resources", "admin", "node"]
        .iter()
        .any(|k| v.get(k).is_some())
    {
        "Envoy bootstrap"
    } else {
        "Envoy config"
    };
    let mut filters = Vec::new();
    walk(v, "", &mut filters);
    let mut any = false;
    for (path, config) in filters {
        let names = [
            str_at(config, &["name"]),
            str_at(config, &["root_id"]),
            str_at(config, &["vm_config", "vm_id"]),
            str_at(config, &["vm_config", "code", "local", "filename"]),
            str_at(config, &["vm_config", "code", "remote", "http_uri", "uri"]),
        ];
        if !any_wasm && !names_meshprobe(&names) {
            continue;
        }
        any = true;
        let at = join(&path, "configuration");
        let (at, bytes) = match config.get("configuration") {
            None | Some(Value::Null) => (at, Ok(Vec::new())),
            Some(c) => match (str_at(c, &["@type"]), c.get("value")) {
                (Some(STRING_VALUE), Some(Value::String(s))) => {
                    (join(&at, "value"), Ok(s.clone().into_bytes()))
                }
                (Some(STRING_VALUE), None) => (join(&at, "value"), Ok(Vec::new())),
                _ => (
                    at,
                    Err("expected a google.protobuf.StringValue holding the policy JSON".into()),
                ),
            },
        };
        let label = match str_at(config, &["name"]) {
            Some(name) => format!("{envoy_label}, filter {name}"),
            None => envoy_label.to_string(),
        };
        out.found.push(Found {
            file: file.to_string(),
            doc,
            label,
            at,
            origin: Origin::Envoy,
            bytes,
            env: Env::Declared(envoy_env(config)),
            clusters: static_clusters(v),
        });
    }
    if any {
        return None;
    }
    let looks_like_policy = match v {
        Value::Object(map) => {
            map.keys()
                .any(|k| meshprobe::policy::fields::TOP.iter().any(|f| f.name == k))
                || (json_file && !map.contains_key("@type") && envoy_label == "Envoy config")
        }
        _ => json_file,
    };
    if looks_like_policy {
        out.found.push(Found {
            file: file.to_string(),
            doc,
            label: "policy".into(),
            at: String::new(),
            origin: Origin::Bare,
            bytes: serde_json::to_vec(v).map_err(|e| e.to_string()),
            env: Env::Any,
            clusters: None,
        });
        return None;
    }
    Some((
        envoy_label.into(),
        "no meshprobe Wasm filter or policy".into(),
    ))
}

/// Every Envoy Wasm filter's `config` (PluginConfig) below `v`, with its
/// path. A Wasm filter without `config` (a per-route `FilterConfig`) holds
/// no policy.
fn walk<'v>(v: &'v Value, path: &str, out: &mut Vec<(String, &'v Value)>) {
    match v {
        Value::Object(map) => {
            if map.get("@type").and_then(Value::as_str) == Some(WASM_TYPE) {
                if let Some(config @ Value::Object(_)) = map.get("config") {
                    out.push((join(path, "config"), config));
                }
                return;
            }
            for (k, child) in map {
                walk(child, &join(path, k), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The names of a bootstrap's static clusters, unless clusters may also
/// come from CDS.
fn static_clusters(v: &Value) -> Option<Vec<String>> {
    if v.pointer("/dynamic_resources/cds_config").is_some() {
        return None;
    }
    let list = v.pointer("/static_resources/clusters")?.as_array()?;
    Some(
        list.iter()
            .filter_map(|c| str_at(c, &["name"]).map(String::from))
            .collect(),
    )
}

/// Envoy `vm_config.environment_variables`: `key_values` (inline) and
/// `host_env_keys` (from Envoy's own environment).
fn envoy_env(config: &Value) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let vars = config
        .get("vm_config")
        .and_then(|c| c.get("environment_variables"));
    if let Some(Value::Object(kv)) = vars.and_then(|e| e.get("key_values")) {
        for (k, v) in kv {
            out.insert(k.clone(), v.as_str().map(String::from));
        }
    }
    if let Some(Value::Array(keys)) = vars.and_then(|e| e.get("host_env_keys")) {
        for k in keys.iter().filter_map(Value::as_str) {
            out.insert(k.to_string(), None);
        }
    }
    out
}

/// Istio `vmConfig.env`: `value` (INLINE, the default) or `valueFrom: HOST`.
fn istio_env(module: &Value) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    if let Some(Value::Array(vars)) = module.get("vmConfig").and_then(|c| c.get("env")) {
        for var in vars {
            let Some(name) = str_at(var, &["name"]) else {
                continue;
            };
            let value = match str_at(var, &["valueFrom"]) {
                Some("HOST") => None,
                _ => Some(str_at(var, &["value"]).unwrap_or("").to_string()),
            };
            out.insert(name.to_string(), value);
        }
    }
    out
}
