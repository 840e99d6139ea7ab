//! The Kubernetes API server, emulated as closely as a test without a
//! cluster can: YAML read the way Kubernetes reads it, a CRD's
//! `openAPIV3Schema` made structural-strict and checked by a real
//! JSON-schema validator, its `x-kubernetes-validations` (CEL rules, each a
//! Rust equivalent) and list types, and the envelope of built-in kinds.
//!
//! The CRDs come from `../shared/istio/customresourcedefinitions.gen.yaml`
//! (beside this repository, or under `MESHPROBE_SHARED`). Used by
//! `tests/istio/`.

#![allow(dead_code)]

use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The shared Istio CRDs (`MESHPROBE_SHARED` overrides the shared/
/// directory beside this repository).
pub fn crd_file() -> PathBuf {
    match std::env::var_os("MESHPROBE_SHARED") {
        Some(dir) => PathBuf::from(dir).join("istio/customresourcedefinitions.gen.yaml"),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/istio/customresourcedefinitions.gen.yaml"),
    }
}

// ---------------------------------------------------------------------------
// Reading YAML the way Kubernetes reads it
// ---------------------------------------------------------------------------

/// YAML to JSON as sigs.k8s.io/yaml converts it: scalar map keys become
/// strings (`8081:` in portLevelMtls is the key "8081"); tags are refused.
pub fn yaml_to_json(v: serde_norway::Value, at: &str) -> Value {
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
pub fn yaml_documents(text: &str, what: &str) -> Vec<Value> {
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

// ---------------------------------------------------------------------------
// The CRD schemas, made structural-strict
// ---------------------------------------------------------------------------

/// (group, version, kind) -> `openAPIV3Schema`, for every served version.
pub fn crds() -> &'static BTreeMap<(String, String, String), Value> {
    static CRDS: OnceLock<BTreeMap<(String, String, String), Value>> = OnceLock::new();
    CRDS.get_or_init(|| {
        let path = crd_file();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; the shared Istio CRDs must be checked out beside this repository (or set MESHPROBE_SHARED)",
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

pub fn crd_schema(api_version: &str, kind: &str) -> Option<&'static Value> {
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
pub fn structural(node: &Value) -> Value {
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

pub const DNS_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
pub const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// The part of ObjectMeta a manifest may set. The API server validates
/// metadata itself (a CRD schema cannot describe it); fields the server sets
/// (uid, resourceVersion, ...) have no place in a manifest and are refused.
pub fn metadata_schema() -> Value {
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
pub fn resource_schema(crd: &Value, api_version: &str, kind: &str) -> Value {
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

pub fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
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
pub fn cel(rule: &str, v: &Value) -> Option<bool> {
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
pub fn url_scheme_allowed(rule: &str, url: &str) -> bool {
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
pub fn kubernetes_rules(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
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
                    "{at}: CEL rule without an equivalent in tests/support/kube.rs `cel`; add one: {rule}"
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
pub fn api_server_errors(resource: &Value) -> Vec<String> {
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
pub const BUILTIN: &[(&str, &str)] = &[("apps/v1", "Deployment"), ("v1", "Service")];

pub fn builtin_errors(resource: &Value) -> Vec<String> {
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
