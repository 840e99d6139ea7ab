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
//!   schema are made explicit (see [`structural`]): unknown fields refused,
//!   `nullable`, `format: int32` bounds, int-or-string, and the `apiVersion`,
//!   `kind` and `metadata` that the API server validates itself;
//! - against the CRD's `x-kubernetes-validations` (CEL rules), each evaluated
//!   by a Rust equivalent (see [`cel`]); a rule without an equivalent that a
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

use meshprobe::policy::Policy;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn crd_file() -> PathBuf {
    repo().join("../shared/istio/customresourcedefinitions.gen.yaml")
}

// ---------------------------------------------------------------------------
// Reading YAML the way Kubernetes reads it
// ---------------------------------------------------------------------------

/// YAML to JSON as sigs.k8s.io/yaml converts it: scalar map keys become
/// strings (`8081:` in portLevelMtls is the key "8081"); tags are refused.
fn yaml_to_json(v: serde_norway::Value, at: &str) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                let f = n.as_f64().unwrap();
                assert!(f.is_finite(), "{at}: {f} is not a JSON number");
                json!(f)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &format!("{at}/{i}")))
                .collect(),
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => panic!("{at}: map key {other:?} is not a scalar"),
                };
                let value = yaml_to_json(v, &format!("{at}/{key}"));
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => panic!("{at}: YAML tag {} has no meaning to Kubernetes", t.tag),
    }
}

/// Every document of a multi-document YAML text (empty documents skipped).
fn yaml_documents(text: &str, what: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let y = serde_norway::Value::deserialize(de)
            .unwrap_or_else(|e| panic!("{what}: document {i} is not valid YAML: {e}"));
        let v = yaml_to_json(y, &format!("{what}#{i}"));
        if !v.is_null() {
            docs.push(v);
        }
    }
    docs
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
// The CRD schemas, made structural-strict
// ---------------------------------------------------------------------------

/// (group, version, kind) -> `openAPIV3Schema`, for every served version.
fn crds() -> &'static BTreeMap<(String, String, String), Value> {
    static CRDS: OnceLock<BTreeMap<(String, String, String), Value>> = OnceLock::new();
    CRDS.get_or_init(|| {
        let path = crd_file();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; the shared Istio CRDs must be checked out beside this repository",
                path.display()
            )
        });
        let mut out = BTreeMap::new();
        for crd in yaml_documents(&text, "customresourcedefinitions.gen.yaml") {
            if crd["kind"] != "CustomResourceDefinition" {
                continue;
            }
            let group = crd["spec"]["group"].as_str().unwrap().to_string();
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
            for version in crd["spec"]["versions"].as_array().unwrap() {
                if version["served"] != true {
                    continue;
                }
                let name = version["name"].as_str().unwrap().to_string();
                let schema = version["schema"]["openAPIV3Schema"].clone();
                assert!(schema.is_object(), "{group}/{name} {kind}: no schema");
                out.insert((group.clone(), name, kind.clone()), schema);
            }
        }
        assert!(!out.is_empty(), "no CRD in {}", path.display());
        out
    })
}

fn crd_schema(api_version: &str, kind: &str) -> Option<&'static Value> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    crds().get(&(group.to_string(), version.to_string(), kind.to_string()))
}

/// A CRD schema made explicit for a JSON-schema validator.
///
/// The Kubernetes API server does more than JSON Schema says. An object
/// schema that lists `properties` and is not marked
/// `x-kubernetes-preserve-unknown-fields: true` knows no other field: the
/// server prunes unknown fields of a structural schema, and with strict field
/// validation (kubectl's default `--validate=strict`, and server-side apply)
/// it refuses them. So every such object gets `additionalProperties: false`
/// here; objects that preserve unknown fields (the opaque `pluginConfig`,
/// `status`) stay open, and objects that declare `additionalProperties` (maps
/// such as `matchLabels`, `portLevelMtls`) keep their own. Only `properties`,
/// `items` and `additionalProperties` are walked: a structural schema may not
/// declare fields inside `anyOf`/`oneOf`/`not`, which only constrain.
///
/// Also: `nullable: true` allows null; `format: int32`/`int64` become bounds
/// (the server checks them; JSON Schema has no such format);
/// `x-kubernetes-int-or-string` without a type means integer or string. Other
/// formats are dropped except `date-time`, which the validator checks.
fn structural(node: &Value) -> Value {
    let Some(map) = node.as_object() else {
        return node.clone();
    };
    let mut n = map.clone();
    if let Some(Value::Object(props)) = n.get_mut("properties") {
        for v in props.values_mut() {
            *v = structural(v);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = n.get_mut(key) {
            if v.is_object() {
                *v = structural(v);
            }
        }
    }
    let bounds = match n.get("format").and_then(Value::as_str) {
        Some("int32") => Some((i64::from(i32::MIN), i64::from(i32::MAX))),
        Some("int64") => Some((i64::MIN, i64::MAX)),
        _ => None,
    };
    if let Some((lo, hi)) = bounds {
        let min = n
            .get("minimum")
            .and_then(Value::as_i64)
            .unwrap_or(lo)
            .max(lo);
        let max = n
            .get("maximum")
            .and_then(Value::as_i64)
            .unwrap_or(hi)
            .min(hi);
        n.insert("minimum".into(), json!(min));
        n.insert("maximum".into(), json!(max));
    }
    if n.get("format").is_some_and(|f| f != "date-time") {
        n.remove("format");
    }
    if n.get("x-kubernetes-int-or-string") == Some(&json!(true))
        && !n.contains_key("type")
        && !n.contains_key("anyOf")
    {
        n.insert(
            "anyOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    let is_object = n.get("type") == Some(&json!("object"));
    let preserves = n.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if is_object && !preserves && !n.contains_key("additionalProperties") {
        n.insert("additionalProperties".into(), json!(false));
    }
    if n.remove("nullable") == Some(json!(true)) {
        return json!({"anyOf": [{"type": "null"}, Value::Object(n)]});
    }
    Value::Object(n)
}

const DNS_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// The part of ObjectMeta a manifest may set. The API server validates
/// metadata itself (a CRD schema cannot describe it); fields the server sets
/// (uid, resourceVersion, ...) have no place in a manifest and are refused.
fn metadata_schema() -> Value {
    json!({
        "type": "object",
        "required": ["name"],
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN},
            "namespace": {"type": "string", "maxLength": 63, "pattern": DNS_LABEL},
            "labels": {
                "type": "object",
                "additionalProperties": {
                    "type": "string",
                    "maxLength": 63,
                    "pattern": "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
                }
            },
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
        }
    })
}

/// The whole resource's schema: the CRD's, strict, plus the envelope.
fn resource_schema(crd: &Value, api_version: &str, kind: &str) -> Value {
    let mut root = structural(crd);
    let obj = root.as_object_mut().unwrap();
    let props = obj
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .unwrap();
    props.insert("apiVersion".into(), json!({"enum": [api_version]}));
    props.insert("kind".into(), json!({"enum": [kind]}));
    props.insert("metadata".into(), metadata_schema());
    let mut required: Vec<Value> = obj
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for field in ["apiVersion", "kind", "metadata"] {
        if !required.contains(&json!(field)) {
            required.push(json!(field));
        }
    }
    obj.insert("required".into(), Value::Array(required));
    root
}

fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

// ---------------------------------------------------------------------------
// x-kubernetes-validations (CEL) and list types
// ---------------------------------------------------------------------------

/// A Rust equivalent of each CEL rule that `istio/` documents reach, keyed by
/// the rule's text (whitespace collapsed). `None`: no equivalent yet.
fn cel(rule: &str, v: &Value) -> Option<bool> {
    let has = |k: &str| v.get(k).is_some();
    let count = |keys: &[&str]| keys.iter().filter(|k| has(k)).count();
    let str_at = |k: &str, default: &'static str| -> String {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    if rule.starts_with("isURL(self) ?") {
        return Some(url_scheme_allowed(rule, v.as_str()?));
    }
    Some(match rule {
        r#"!self.contains("*")"# => !v.as_str()?.contains('*'),
        r#"self.all(key, !key.contains("*"))"# => v.as_object()?.keys().all(|k| !k.contains('*')),
        "self.all(key, key.size() != 0)" => v.as_object()?.keys().all(|k| !k.is_empty()),
        "self.size() == 0" => v.as_str()?.is_empty(),
        r#"self != "*""# => v.as_str()? != "*",
        "0 < self && self <= 65535" => {
            let n = v.as_i64()?;
            0 < n && n <= 65535
        }
        // int(key) on a non-number is a CEL error: the rule fails.
        "self.all(key, 0 < int(key) && int(key) <= 65535)" => v
            .as_object()?
            .keys()
            .all(|k| k.parse::<i64>().is_ok_and(|n| 0 < n && n <= 65535)),
        "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1" => {
            count(&["selector", "targetRef", "targetRefs"]) <= 1
        }
        "(has(self.selector) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1" => {
            count(&["selector", "targetRefs"]) <= 1
        }
        "has(self.wasm) != has(self.lua)" => has("wasm") != has("lua"),
        r#"(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)"# => {
            str_at("valueFrom", "") != "HOST" || !has("value")
        }
        "has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? self.selector.matchLabels : {}).size() > 0) : true" => {
            !has("portLevelMtls")
                || v.pointer("/selector/matchLabels")
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty())
        }
        "self.all(l1, self.exists_one(l2, l1.number == l2.number))" => {
            let items = v.as_array()?;
            items.iter().all(|l1| {
                l1.get("number").is_some()
                    && items
                        .iter()
                        .filter(|l2| l2.get("number") == l1.get("number"))
                        .count()
                        == 1
            })
        }
        "(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1" => {
            count(&["workloadSelector", "endpoints"]) <= 1
        }
        r#"!((has(self.addresses) ? self.addresses : []).exists(k, k.contains("/")) && !((has(self.resolution) ? self.resolution : "NONE") in ["STATIC", "NONE"]))"# => {
            let cidr = v
                .get("addresses")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|k| k.as_str().is_some_and(|s| s.contains('/'))));
            let resolution = str_at("resolution", "NONE");
            // CIDR addresses only with NONE or STATIC resolution.
            !cidr || ["STATIC", "NONE"].contains(&resolution.as_str())
        }
        r#"((has(self.resolution) ? self.resolution : "NONE") == "NONE") ? !has(self.endpoints) : true"# => {
            str_at("resolution", "NONE") != "NONE" || !has("endpoints")
        }
        r#"((has(self.resolution) ? self.resolution : "") == "DNS_ROUND_ROBIN") ? ((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true"# => {
            str_at("resolution", "") != "DNS_ROUND_ROBIN"
                || v.get("endpoints")
                    .and_then(Value::as_array)
                    .is_none_or(|e| e.len() <= 1)
        }
        _ => return None,
    })
}

/// The url rule: `isURL(self) ? (url(self).getScheme() in [...]) :
/// (isURL("http://" + self) && ...)`. A scheme is what Go's url.Parse takes
/// as one (a letter, then letters, digits, `+-.`, then `:`); it must be one
/// of the rule's list. Without a scheme ("ghcr.io/org/image:tag") the rule
/// retries with "http://" prepended, which any non-empty host/path passes.
fn url_scheme_allowed(rule: &str, url: &str) -> bool {
    let list = &rule[rule.find('[').unwrap() + 1..rule.find(']').unwrap()];
    let allowed: Vec<&str> = list
        .split(',')
        .map(|s| s.trim().trim_matches('"'))
        .collect();
    let mut chars = url.char_indices();
    let scheme = match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() => {
            let end =
                chars.find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')));
            match end {
                Some((i, ':')) => Some(url[..i].to_ascii_lowercase()),
                _ => None,
            }
        }
        _ => None,
    };
    match scheme {
        Some(s) => allowed.contains(&s.as_str()),
        None => !url.is_empty(),
    }
}

/// Walks a document along its CRD schema and applies the rules that the
/// API server applies beside the schema: CEL validations and list types.
fn kubernetes_rules(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for r in rules {
            let raw = r["rule"].as_str().unwrap();
            let rule = raw.split_whitespace().collect::<Vec<_>>().join(" ");
            let message = r["message"].as_str().unwrap_or(raw);
            match cel(&rule, value) {
                Some(true) => {}
                Some(false) => errors.push(format!("{at}: {message} (rule: {rule})")),
                None => errors.push(format!(
                    "{at}: CEL rule without an equivalent in tests/istio.rs `cel`; add one: {rule}"
                )),
            }
        }
    }
    if let Some(items) = value.as_array() {
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => {
                let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap())
                    .collect();
                let mut seen = BTreeSet::new();
                for item in items {
                    let key: Vec<String> =
                        keys.iter().map(|k| format!("{k}={}", item[*k])).collect();
                    let key = key.join(",");
                    if !seen.insert(key.clone()) {
                        errors.push(format!(
                            "{at}: duplicate entries with {key} (list-type map)"
                        ));
                    }
                }
            }
            Some("set") => {
                let mut seen = BTreeSet::new();
                for item in items {
                    if !seen.insert(item.to_string()) {
                        errors.push(format!("{at}: duplicate set item {item}"));
                    }
                }
            }
            _ => {}
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                kubernetes_rules(item_schema, item, &format!("{at}/{i}"), errors);
            }
        }
    }
    if let Some(fields) = value.as_object() {
        for (k, v) in fields {
            let sub = schema
                .get("properties")
                .and_then(|p| p.get(k))
                .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
            if let Some(sub) = sub {
                kubernetes_rules(sub, v, &format!("{at}/{k}"), errors);
            }
        }
    }
}

/// Everything the API server would refuse in this custom resource; empty
/// when it would accept it.
fn api_server_errors(resource: &Value) -> Vec<String> {
    let api_version = resource["apiVersion"].as_str().unwrap_or("");
    let kind = resource["kind"].as_str().unwrap_or("");
    let Some(crd) = crd_schema(api_version, kind) else {
        return vec![format!(
            "no served CRD version for apiVersion {api_version:?} kind {kind:?} in {}",
            crd_file().display()
        )];
    };
    let mut errors = schema_errors(&resource_schema(crd, api_version, kind), resource);
    kubernetes_rules(crd, resource, "", &mut errors);
    errors
}

/// Built-in kinds (no CRD here): the envelope every object shares.
const BUILTIN: &[(&str, &str)] = &[("apps/v1", "Deployment"), ("v1", "Service")];

fn builtin_errors(resource: &Value) -> Vec<String> {
    let api_version = resource["apiVersion"].as_str().unwrap_or("");
    let kind = resource["kind"].as_str().unwrap_or("");
    let schema = json!({
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": false,
        "properties": {
            "apiVersion": {"enum": [api_version]},
            "kind": {"enum": [kind]},
            "metadata": metadata_schema(),
            "spec": {"type": "object"}
        }
    });
    schema_errors(&schema, resource)
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

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn every_file_starts_with_a_comment_and_holds_resources() {
    for path in istio_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with('#'),
            "{}: start the file with a comment explaining it",
            path.display()
        );
        assert!(
            path.extension().is_some_and(|e| e == "yaml"),
            "{}: name resource files *.yaml",
            path.display()
        );
    }
    for d in docs() {
        assert!(
            d.value["apiVersion"].is_string() && d.value["kind"].is_string(),
            "{}: not a Kubernetes resource",
            d.id()
        );
        assert!(
            !d.namespace().is_empty(),
            "{}: examples state their namespace",
            d.id()
        );
    }
}

#[test]
fn every_resource_is_accepted_by_its_crd_schema() {
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for d in docs() {
        let api_version = d.str("/apiVersion");
        let errors = if crd_schema(api_version, d.kind()).is_some() {
            api_server_errors(&d.value)
        } else if BUILTIN.contains(&(api_version, d.kind())) {
            builtin_errors(&d.value)
        } else {
            vec![format!(
                "{api_version} {}: neither a CRD in the shared file nor a built-in kind this test knows",
                d.kind()
            )]
        };
        if errors.is_empty() {
            *checked.entry(d.kind().to_string()).or_default() += 1;
        } else {
            failures.push(format!("{}:\n  {}", d.id(), errors.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
    let want: BTreeMap<String, usize> = [
        ("WasmPlugin", 4),
        ("TrafficExtension", 4),
        ("PeerAuthentication", 1),
        ("ServiceEntry", 1),
        ("DestinationRule", 1),
        ("Deployment", 1),
        ("Service", 1),
        ("Telemetry", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(checked, want, "resources checked, by kind");
}

#[test]
fn every_plugin_config_is_a_valid_meshprobe_policy() {
    let all = plugins();
    assert_eq!(all.len(), 8);
    for p in all {
        policy_of(p);
        if let Some(errors) = policy_errors(p.module()) {
            panic!("{}: meshprobe refuses its pluginConfig: {errors}", p.id());
        }
        // Every secret read from the environment is given to the VM.
        let secrets = p.module()["pluginConfig"]
            .pointer("/authorization/secrets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for s in secrets {
            if let Some(var) = s["env"].as_str() {
                let entry = p.module()["vmConfig"]["env"]
                    .as_array()
                    .and_then(|env| env.iter().find(|e| e["name"] == var))
                    .unwrap_or_else(|| panic!("{}: {var} is not in vmConfig.env", p.id()));
                assert_eq!(
                    entry["valueFrom"],
                    "HOST",
                    "{}: {var} must come from the proxy's environment",
                    p.id()
                );
            }
        }
    }
}

#[test]
fn wasm_plugins_cover_every_scope_url_form_and_failure_strategy() {
    let wasm = docs_of("WasmPlugin");
    let scope = |d: &Doc| {
        let spec = &d.value["spec"];
        if spec.get("targetRefs").is_some() {
            "targetRefs"
        } else if spec.get("selector").is_some() {
            "selector"
        } else if d.namespace() == "istio-system" {
            "mesh"
        } else {
            "namespace"
        }
    };
    let scopes: BTreeSet<&str> = wasm.iter().map(|d| scope(d)).collect();
    assert_eq!(
        scopes,
        BTreeSet::from(["mesh", "namespace", "selector", "targetRefs"])
    );
    let mut url_forms = BTreeSet::new();
    let mut strategies = BTreeSet::new();
    for d in &wasm {
        let spec = &d.value["spec"];
        let url = spec["url"].as_str().unwrap();
        let form = url.split("://").next().unwrap();
        url_forms.insert(form);
        match form {
            "https" => assert!(
                spec["sha256"]
                    .as_str()
                    .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())),
                "{}: an https:// module must be pinned with sha256",
                d.id()
            ),
            // For oci:// Istio compares sha256 with the manifest digest, for
            // file:// it ignores it; the only sha256 here is the module's.
            "oci" | "file" => assert!(
                spec.get("sha256").is_none(),
                "{}: sha256 is only pinned for the https:// form (`just pin-sha` writes the module's)",
                d.id()
            ),
            other => panic!("{}: url form {other}", d.id()),
        }
        if form == "file" {
            assert!(
                url.starts_with("file:///"),
                "{}: absolute file path",
                d.id()
            );
        }
        assert_eq!(spec["phase"], "AUTHN", "{}: runs before authz", d.id());
        assert!(spec["priority"].is_i64(), "{}: priority", d.id());
        strategies.insert(spec["failStrategy"].as_str().unwrap());
        let modes: Vec<&str> = spec["match"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mode"].as_str().unwrap())
            .collect();
        if scope(d) == "targetRefs" {
            assert_eq!(
                spec["targetRefs"][0]["kind"],
                "Gateway",
                "{}: targets a Gateway",
                d.id()
            );
            // Istio matches gateway listeners as CLIENT: SERVER would never apply.
            assert!(
                !modes.contains(&"SERVER"),
                "{}: gateway with mode SERVER",
                d.id()
            );
        } else {
            assert_eq!(modes, ["SERVER"], "{}: sidecar inbound only", d.id());
        }
    }
    assert_eq!(url_forms, BTreeSet::from(["file", "https", "oci"]));
    assert_eq!(strategies, BTreeSet::from(["FAIL_CLOSE", "FAIL_OPEN"]));
    // A dedicated probe port is matched somewhere.
    assert!(wasm
        .iter()
        .any(|d| d.value["spec"]["match"][0]["ports"][0]["number"].is_u64()));
    // Priorities order the plugins that can meet on one pod: workload, then
    // namespace, then mesh (higher runs first).
    let prio = |name: &str| {
        wasm.iter().find(|d| d.name() == name).unwrap().value["spec"]["priority"]
            .as_i64()
            .unwrap()
    };
    assert!(prio("meshprobe-orders") > prio("meshprobe-prod"));
    assert!(prio("meshprobe-prod") > prio("meshprobe-mesh"));
}

#[test]
fn traffic_extensions_say_what_the_wasm_plugins_say() {
    const MODULE_FIELDS: &[&str] = &[
        "url",
        "sha256",
        "imagePullPolicy",
        "imagePullSecret",
        "pluginName",
        "type",
        "failStrategy",
        "vmConfig",
        "pluginConfig",
    ];
    const SCOPE_FIELDS: &[&str] = &["selector", "targetRefs", "phase", "priority", "match"];
    let extensions = docs_of("TrafficExtension");
    assert_eq!(extensions.len(), docs_of("WasmPlugin").len());
    for te in extensions {
        let wp = doc("WasmPlugin", te.namespace(), te.name());
        let (te_spec, wp_spec) = (&te.value["spec"], &wp.value["spec"]);
        for f in SCOPE_FIELDS {
            assert_eq!(te_spec.get(*f), wp_spec.get(*f), "{}: spec.{f}", te.id());
        }
        for f in MODULE_FIELDS {
            assert_eq!(
                te_spec["wasm"].get(*f),
                wp_spec.get(*f),
                "{}: spec.wasm.{f}",
                te.id()
            );
        }
        for f in te_spec.as_object().unwrap().keys() {
            assert!(
                SCOPE_FIELDS.contains(&f.as_str()) || f == "wasm",
                "{}: spec.{f} has no WasmPlugin counterpart here",
                te.id()
            );
        }
        for f in wp_spec.as_object().unwrap().keys() {
            assert!(
                SCOPE_FIELDS.contains(&f.as_str()) || MODULE_FIELDS.contains(&f.as_str()),
                "{}: spec.{f} is not carried over to the TrafficExtension",
                wp.id()
            );
        }
    }
}

#[test]
fn deployment_probes_reach_meshprobe_through_the_sidecar() {
    let deployment = docs_of("Deployment");
    assert_eq!(deployment.len(), 1);
    let deployment = deployment[0];
    let spec = &deployment.value["spec"];
    let template = &spec["template"];
    let labels = &template["metadata"]["labels"];
    assert!(
        selects(&spec["selector"]["matchLabels"], labels),
        "selector matches the pods"
    );

    // Probe rewrite off, as a string (annotation values are strings).
    assert_eq!(
        template["metadata"]["annotations"]["sidecar.istio.io/rewriteAppHTTPProbers"],
        json!("false")
    );

    // The workload's plugin: selected by the pods' labels.
    let plugin = docs_of("WasmPlugin")
        .into_iter()
        .find(|p| {
            p.namespace() == deployment.namespace()
                && selects(&p.value["spec"]["selector"]["matchLabels"], labels)
        })
        .expect("a WasmPlugin selecting the Deployment's pods");
    let policy = policy_of(plugin);
    let probe_port = plugin.value["spec"]["match"][0]["ports"][0]["number"]
        .as_u64()
        .unwrap();
    let header = policy["authorization"]["header"].as_str().unwrap();
    let endpoints: BTreeMap<&str, &Value> = policy["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap(), e))
        .collect();

    let containers = template["spec"]["containers"].as_array().unwrap();
    let app = containers
        .iter()
        .find(|c| c.get("livenessProbe").is_some())
        .unwrap();
    let mut values = BTreeSet::new();
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let p = &app[probe];
        let get = &p["httpGet"];
        assert_eq!(get["port"], probe_port, "{probe}: the plugin's probe port");
        let path = get["path"].as_str().unwrap();
        let endpoint = endpoints
            .get(path)
            .unwrap_or_else(|| panic!("{probe}: {path} is not an endpoint of the policy"));
        let sent: Vec<&Value> = get["httpHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["name"] == header)
            .collect();
        assert_eq!(sent.len(), 1, "{probe}: sends the {header} header once");
        values.insert(sent[0]["value"].as_str().unwrap());
        let deadline = millis(endpoint["deadline"].as_str().unwrap_or("800ms"));
        let timeout = p["timeoutSeconds"].as_u64().unwrap_or(1) * 1000;
        assert!(
            deadline < timeout,
            "{probe}: deadline {deadline}ms >= timeoutSeconds"
        );
    }
    assert_eq!(values.len(), 1, "every probe sends the same secret");

    // The proxy has every variable the plugin reads from HOST, from a Secret.
    let proxy = containers
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .expect("an istio-proxy entry carrying the token");
    for var in env_names(plugin.module()) {
        let e = proxy["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == var.as_str())
            .unwrap_or_else(|| panic!("istio-proxy lacks {var}"));
        assert!(
            e.pointer("/valueFrom/secretKeyRef/name").is_some(),
            "{var} from a Secret"
        );
    }
    // The probe port is declared on the pod.
    assert!(app["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["containerPort"] == probe_port));

    // Plaintext accepted on the probe port.
    let pa = docs_of("PeerAuthentication")
        .into_iter()
        .find(|p| {
            p.namespace() == deployment.namespace()
                && selects(&p.value["spec"]["selector"]["matchLabels"], labels)
        })
        .expect("a PeerAuthentication for the pods");
    let mode = &pa.value["spec"]["portLevelMtls"][probe_port.to_string()]["mode"];
    assert!(
        mode == "PERMISSIVE" || mode == "DISABLE",
        "probe port {probe_port} must accept plaintext, has {mode}"
    );

    // A Service declares the probe port as HTTP, and every inbound|N|| check
    // cluster exists (a Service selects the pods on target port N).
    let service = docs_of("Service")
        .into_iter()
        .find(|s| {
            s.namespace() == deployment.namespace() && selects(&s.value["spec"]["selector"], labels)
        })
        .expect("a Service selecting the pods");
    let ports = service.value["spec"]["ports"].as_array().unwrap();
    let http_port = |n: u64| {
        ports.iter().any(|p| {
            p["targetPort"] == n
                && (p["appProtocol"] == "http"
                    || p["name"].as_str().is_some_and(|s| s.starts_with("http")))
        })
    };
    assert!(
        http_port(probe_port),
        "Service declares {probe_port} as HTTP"
    );
    for check in policy["checks"].as_array().unwrap() {
        let cluster = check["cluster"].as_str().unwrap();
        if let Some(rest) = cluster.strip_prefix("inbound|") {
            let n: u64 = rest.split('|').next().unwrap().parse().unwrap();
            assert!(
                http_port(n),
                "{cluster}: no Service selects the pods on {n}"
            );
        }
    }
}

#[test]
fn every_check_calls_an_istio_cluster_with_a_real_authority() {
    let service_entries = docs_of("ServiceEntry");
    for p in plugins() {
        for check in policy_of(p)["checks"].as_array().into_iter().flatten() {
            let name = format!("{}: check {}", p.id(), check["name"]);
            let cluster = check["cluster"].as_str().unwrap();
            if check["kind"]
                .as_str()
                .is_some_and(|k| k.starts_with("envoy_"))
            {
                // Envoy's admin API: Istio's bootstrap cluster to the admin port.
                assert_eq!(cluster, "prometheus_stats", "{name}");
                continue;
            }
            let parts: Vec<&str> = cluster.split('|').collect();
            assert_eq!(
                parts.len(),
                4,
                "{name}: {cluster} is not direction|port|subset|host"
            );
            let port: u16 = parts[1].parse().unwrap();
            assert!(port > 0);
            match parts[0] {
                "inbound" => assert!(parts[3].is_empty(), "{name}: inbound|<port>||"),
                "outbound" => assert!(!parts[3].is_empty(), "{name}: outbound host"),
                other => panic!("{name}: direction {other}"),
            }
            // The default authority is the cluster name, not a valid Host.
            let authority = check["authority"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: set authority"));
            assert!(!authority.contains('|'), "{name}: authority {authority}");
            let host = parts[3];
            if parts[0] == "outbound" && !host.ends_with(".svc.cluster.local") {
                assert_eq!(authority, host, "{name}: external Host");
                let se = service_entries
                    .iter()
                    .find(|se| {
                        se.value["spec"]["hosts"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|h| h == host)
                    })
                    .unwrap_or_else(|| panic!("{name}: no ServiceEntry for {host}"));
                let se_port = se.value["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|sp| sp["number"] == port)
                    .unwrap_or_else(|| panic!("{name}: ServiceEntry lacks port {port}"));
                // Plain-HTTP callouts to a TLS port need TLS origination.
                if se_port["targetPort"] == 443 {
                    let dr = docs_of("DestinationRule")
                        .into_iter()
                        .find(|d| d.value["spec"]["host"] == host)
                        .unwrap_or_else(|| panic!("{name}: no DestinationRule originating TLS"));
                    let tls = dr.value["spec"]["trafficPolicy"]["portLevelSettings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|s| s["port"]["number"] == port)
                        .map(|s| &s["tls"])
                        .unwrap();
                    assert_eq!(tls["mode"], "SIMPLE", "{name}");
                    assert_eq!(tls["sni"], host, "{name}");
                }
            }
        }
    }
}

#[test]
fn yaml_scalars_mean_the_same_to_kubernetes() {
    // Kubernetes reads YAML 1.1 (sigs.k8s.io/yaml): yes/no/on/off/y/n are
    // booleans there, strings to the YAML 1.2 parser of this test. Quote them.
    const AMBIGUOUS: &[&str] = &["y", "n", "yes", "no", "on", "off"];
    for path in istio_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split(" #").next().unwrap().trim();
            if code.starts_with('#') {
                continue;
            }
            let value = code
                .rsplit_once(": ")
                .map(|(_, v)| v)
                .or_else(|| code.strip_prefix("- "))
                .unwrap_or("")
                .trim();
            assert!(
                !AMBIGUOUS.contains(&value.to_ascii_lowercase().as_str()),
                "{}:{}: quote {value:?} (a boolean to Kubernetes)",
                path.display(),
                i + 1
            );
        }
    }
}

/// Mutations of valid documents that the API server must refuse, one per line:
/// `kind name json-pointer new-value | fragment of the expected error`, the
/// new value as JSON, or `-` to remove the field.
const BROKEN: &str = r#"
# Unknown enum values and wrong types.
WasmPlugin meshprobe-orders /spec/failStrategy "FAIL_SOMETIMES"      | "FAIL_SOMETIMES" is not one of
WasmPlugin meshprobe-orders /spec/phase "AUTHZN"                     | "AUTHZN" is not one of
WasmPlugin meshprobe-orders /spec/phase "UNSPECIFIED"                | "UNSPECIFIED" is not one of
WasmPlugin meshprobe-orders /spec/priority "high"                    | /spec/priority: "high" is not valid
WasmPlugin meshprobe-orders /spec/priority 2147483648                | /spec/priority: 2147483648 is not valid
WasmPlugin meshprobe-orders /spec/vmConfig/env/0/valueFrom "SECRET"  | "SECRET" is not one of
WasmPlugin meshprobe-orders /spec/match/0/mode "INBOUND"             | "INBOUND" is not one of
WasmPlugin meshprobe-orders /spec/match/0/ports/0/number 70000       | 70000 is greater than the maximum of 65535
WasmPlugin meshprobe-orders /spec/match/0/ports/0/number "8081"      | "8081" is not of type "integer"
WasmPlugin meshprobe-orders /spec/sha256 "ABC123"                    | "ABC123" does not match
WasmPlugin meshprobe-orders /spec/url -                              | "url" is a required property
# Unknown fields (structural strictness), at several depths.
WasmPlugin meshprobe-orders /spec/failstrategy "FAIL_OPEN"           | 'failstrategy' was unexpected
WasmPlugin meshprobe-orders /spec/vmConfig/env/0/secretKeyRef "t"    | 'secretKeyRef' was unexpected
WasmPlugin meshprobe-orders /spec/match/0/port 8081                  | 'port' was unexpected
WasmPlugin meshprobe-orders /metadata/nmae "x"                       | 'nmae' was unexpected
WasmPlugin meshprobe-orders /status2 {}                              | 'status2' was unexpected
# Envelope.
WasmPlugin meshprobe-orders /apiVersion "extensions.istio.io/v1"     | no served CRD version
WasmPlugin meshprobe-orders /metadata/name "Meshprobe_Orders"        | "Meshprobe_Orders" does not match
WasmPlugin meshprobe-orders /metadata/labels {"tier": 1}             | 1 is not of type "string"
# CEL rules and list types.
WasmPlugin meshprobe-orders /spec/targetRefs [{"kind": "Gateway", "name": "g"}] | only one of targetRefs or selector
WasmPlugin meshprobe-orders /spec/vmConfig/env/0/value "inline"      | value may only be set when valueFrom is INLINE
WasmPlugin meshprobe-orders /spec/url "ftp://example.com/m.wasm"     | url must have schema one of
WasmPlugin meshprobe-orders /spec/vmConfig/env/1 {"name": "MESHPROBE_TOKEN"} | duplicate entries with name="MESHPROBE_TOKEN"
WasmPlugin meshprobe-orders /spec/selector/matchLabels/app "ord*"    | wildcard not allowed in label value match
WasmPlugin meshprobe-gateway /spec/targetRefs/0/namespace "other"    | cross namespace referencing is not currently supported
# TrafficExtension: WasmPlugin habits, and its own rules.
TrafficExtension meshprobe-orders /spec/failStrategy "FAIL_OPEN"     | 'failStrategy' was unexpected
TrafficExtension meshprobe-orders /spec/phase "UNSPECIFIED_PHASE"    | "UNSPECIFIED_PHASE" is not one of
TrafficExtension meshprobe-orders /spec/lua {"inlineCode": "x"}      | exactly one of wasm or lua must be set
TrafficExtension meshprobe-orders /spec/wasm/failStrategy "FAIL_SOMETIMES" | "FAIL_SOMETIMES" is not one of
TrafficExtension meshprobe-gateway /spec/targetRef {"kind": "Gateway", "name": "public"} | 'targetRef' was unexpected
# PeerAuthentication, ServiceEntry, DestinationRule.
PeerAuthentication orders-probe-port /spec/selector -                | portLevelMtls requires selector
PeerAuthentication orders-probe-port /spec/portLevelMtls/8081/mode "LAX" | "LAX" is not one of
PeerAuthentication orders-probe-port /spec/portLevelMtls/probe {"mode": "DISABLE"} | port must be between 1-65535
ServiceEntry githubstatus /spec/hosts/0 "*"                          | hostname cannot be wildcard
ServiceEntry githubstatus /spec/ports/1/number 80                    | port number cannot be duplicated
ServiceEntry githubstatus /spec/location "OUTSIDE"                   | "OUTSIDE" is not one of
DestinationRule githubstatus /spec/trafficPolicy/portLevelSettings/0/tls/mode "TLS" | "TLS" is not one of
"#;

#[test]
fn broken_resources_are_refused() {
    let mut cases = 0;
    let mut accepted = Vec::new();
    for line in BROKEN.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        cases += 1;
        let (change, expect) = line.split_once(" | ").unwrap();
        let mut words = change.splitn(4, ' ');
        let (kind, name, pointer) = (
            words.next().unwrap(),
            words.next().unwrap(),
            words.next().unwrap(),
        );
        let value = match words.next().unwrap().trim() {
            "-" => None,
            json => Some(serde_json::from_str::<Value>(json).unwrap()),
        };
        let base = docs()
            .iter()
            .find(|d| d.kind() == kind && d.name() == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"));
        assert!(
            api_server_errors(&base.value).is_empty(),
            "{}: valid to start with",
            base.id()
        );
        let errors = api_server_errors(&mutate(&base.value, pointer, value));
        if !errors.iter().any(|e| e.contains(expect.trim())) {
            accepted.push(format!(
                "{change}: expected an error containing {expect:?}, got {errors:#?}"
            ));
        }
    }
    assert_eq!(cases, 37);
    assert!(
        accepted.is_empty(),
        "not refused as expected:\n{}",
        accepted.join("\n")
    );
}

#[test]
fn strictness_stops_where_the_schema_preserves_unknown_fields() {
    // pluginConfig is opaque to Kubernetes (x-kubernetes-preserve-unknown-fields):
    // a typo in it passes the CRD, and meshprobe's validator refuses it.
    let wp = doc("WasmPlugin", "prod", "meshprobe-orders");
    let typo = mutate(
        &wp.value,
        "/spec/pluginConfig/endpoints/0/deadlin",
        Some(json!("1s")),
    );
    assert!(
        api_server_errors(&typo).is_empty(),
        "{:?}",
        api_server_errors(&typo)
    );
    let errors = policy_errors(&typo["spec"]).expect("meshprobe accepts an unknown field");
    assert!(errors.contains("deadlin"), "{errors}");

    // The policy validator sees only the variables vmConfig.env provides.
    let no_env = mutate(&wp.value, "/spec/vmConfig", None);
    assert!(api_server_errors(&no_env).is_empty());
    let errors = policy_errors(&no_env["spec"]).expect("a secret without its variable");
    assert!(errors.contains("MESHPROBE_TOKEN"), "{errors}");

    // A check that does not exist.
    let te = doc("TrafficExtension", "prod", "meshprobe-orders");
    let unknown = mutate(
        &te.value,
        "/spec/wasm/pluginConfig/endpoints/1/checks/0",
        Some(json!("dbb")),
    );
    assert!(api_server_errors(&unknown).is_empty());
    let errors = policy_errors(&unknown["spec"]["wasm"]).expect("an unknown check");
    assert!(errors.contains("dbb"), "{errors}");
}

#[test]
fn the_url_rule_equivalent_reads_schemes_like_go() {
    let rule = r#"isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) && url("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])"#;
    for ok in [
        "oci://ghcr.io/org/meshprobe:0.1.0",
        "ghcr.io/org/meshprobe:0.1.0",
        "file:///var/local/lib/wasm/meshprobe.wasm",
        "HTTPS://example.com/m.wasm",
    ] {
        assert!(url_scheme_allowed(rule, ok), "{ok}");
    }
    for bad in ["ftp://example.com/m.wasm", "localhost:5000/meshprobe", ""] {
        assert!(!url_scheme_allowed(rule, bad), "{bad}");
    }
}
