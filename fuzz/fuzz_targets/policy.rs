//! Decoding and validating a policy.
//!
//! Each input is used twice: as raw bytes handed to `Policy::from_json`
//! (the corpus holds real policies from the tests, README and examples),
//! and, read as a recipe, to edit a valid policy one field at a time (drop
//! a field, set a known field to an odd value, rename, duplicate, nest)
//! so the validation of each field is reached with the rest still valid.
//!
//! Invariants: an accepted policy has every property the runtime relies on
//! (unique names and paths, check indexes in range, secrets usable in
//! headers, protected endpoints with a secret, timeouts within deadlines,
//! sane cache and status settings); a refused one has at least one error,
//! each with a reason; no error message repeats a secret; an accepted
//! policy classifies its own endpoint paths without panicking.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use meshprobe::classify::{classify, RequestHeaders};
use meshprobe::policy::{
    fields, Access, BodyExpect, CheckKind, ConfigError, Policy, MAX_DURATION_MS,
};
use serde_json::{Map, Value};

const BASES: &[&str] = &[
    r#"{
      "authorization": {"header": "x-health", "secrets": [{"env": "MESHPROBE_TOKEN"}, {"value": "previous-☃☃-secret"}],
                        "path_prefix": "/health", "query_param": "health_token", "bearer": true},
      "endpoints": [
        {"name": "live", "path": "/livez", "access": "public"},
        {"name": "ready", "path": "/readyz", "checks": ["db", "cache"], "deadline": "800ms"}
      ],
      "checks": [
        {"name": "db", "cluster": "outbound|8080||db.prod.svc.cluster.local", "path": "/health", "timeout": "500ms"},
        {"name": "cache", "cluster": "cache", "path": "/ping", "timeout": "300ms", "critical": false,
         "expect_status": [200, 204]}
      ]
    }"#,
    r#"{
      "service": {"id": "orders", "version": "1.4.2", "description": "orders"},
      "authorization": {"header": "x-health", "secrets": [{"value": "☃☃s3cret"}], "path_prefix": "/health",
                        "on_unauthorized": "forbidden"},
      "endpoints": [
        {"name": "application", "path": "/readyz", "checks": ["db", "celery"], "degraded_header": true,
         "ttl": "2s", "max_stale": "30s", "refresh": true, "on_stale": "fail", "on_startup": "run"},
        {"name": "pipeline", "path": "/statusz", "include": ["application"], "checks": ["github"],
         "format": "html", "status_codes": {"pass": 200, "warn": 207, "fail": 500}, "details": "always",
         "warnings_as_errors": true, "access": "public"}
      ],
      "checks": [
        {"name": "db", "cluster": "db", "path": "/health", "warn_after": "200ms", "component_type": "datastore",
         "method": "HEAD", "authority": "db.local", "headers": {"x-probe": "meshprobe"}},
        {"name": "celery", "cluster": "celery", "path": "/ping", "expect_body": {"pointer": "/ok", "equals": "pong"}},
        {"name": "github", "cluster": "githubstatus", "path": "/api/v2/status.json", "critical": false,
         "expect_body": {"pointer": "/status/indicator", "one_of": ["none", "minor"]}, "max_body": 16384},
        {"name": "redis", "cluster": "redis", "expect_body": {"contains": "PONG"}, "timeout": "1.5s"}
      ]
    }"#,
    r#"{
      "authorization": {"query_param": "t", "bearer": true, "secrets": [{"value": "a☃☃b"}], "on_unauthorized": "pass_through"},
      "endpoints": [
        {"name": "a", "path": "/a", "checks": ["x"], "deadline": "2s", "ttl": "0s", "on_unauthorized": "not_found"},
        {"name": "b", "path": "/b", "include": ["a"], "access": "public", "details": "never", "format": "json"},
        {"name": "c", "path": "/c", "include": ["b", "a"], "access": "public", "format": "rss"}
      ],
      "checks": [{"name": "x", "cluster": "x", "timeout": "1s", "expect_status": ["200-299", 404]},
                 {"name": "envoy", "cluster": "admin", "kind": "envoy_server"},
                 {"name": "backend", "cluster": "admin", "kind": "envoy_cluster", "target_cluster": "backend",
                  "min_healthy_percent": 50},
                 {"name": "heap", "cluster": "admin", "kind": "envoy_memory", "memory_limit": 1073741824,
                  "critical": false}]
    }"#,
];

/// Text known to the decoder, to put where the fuzzer would not guess it.
const WORDS: &[&str] = &[
    "",
    "/",
    "/health",
    "/health/",
    "/readyz",
    "/a",
    "a",
    "db",
    "x",
    "x-health",
    ":path",
    "Host",
    "authorization",
    "500ms",
    "0s",
    "0ms",
    "1m",
    "61s",
    "1.5s",
    "0.0001s",
    "60s",
    "1h",
    "2s",
    "30s",
    "3600s",
    "3601s",
    "protected",
    "public",
    "never",
    "always",
    "authorized",
    "not_found",
    "forbidden",
    "pass_through",
    "run",
    "fail",
    "text",
    "json",
    "health",
    "html",
    "atom",
    "rss",
    "dhc",
    "openmetrics",
    "200-299",
    "599-100",
    "MESHPROBE_TOKEN",
    "UNSET",
    " pad ",
    "tab\t",
    "☃☃secret",
    "/status/indicator",
    "a=b",
    "GET",
    "http",
    "envoy_server",
    "envoy_cluster",
    "envoy_memory",
    "HE AD",
    "application",
    "pipeline",
    "live",
    "ready",
];

/// One edit of a JSON document.
#[derive(Arbitrary, Debug)]
enum Edit {
    /// Remove the field or element reached.
    Remove(Vec<u8>),
    /// Set a field (known to the decoder, or raw) of the object reached.
    Set(Vec<u8>, Key, Leaf),
    /// Replace the value reached.
    Replace(Vec<u8>, Leaf),
    /// Append a copy of an element to the array reached.
    Duplicate(Vec<u8>, u8),
    /// Wrap the value reached in an array or object.
    Wrap(Vec<u8>, bool),
}

#[derive(Arbitrary, Debug)]
enum Key {
    Known(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Leaf {
    Null,
    Bool(bool),
    Uint(u64),
    Int(i64),
    Float(f64),
    Word(u8),
    Str(String),
    Names(Vec<u8>),
    Secret(bool, String),
    EmptyArray,
    EmptyObject,
}

const ALL_FIELDS: &[&[fields::FieldDoc]] = &[
    fields::TOP,
    fields::SERVICE,
    fields::AUTHORIZATION,
    fields::SECRET,
    fields::ENDPOINT,
    fields::STATUS_CODES,
    fields::CHECK,
    fields::BODY,
];

fn known_field(i: u8) -> &'static str {
    let all: Vec<&str> = ALL_FIELDS
        .iter()
        .flat_map(|t| t.iter().map(|f| f.name))
        .collect();
    all.get(usize::from(i) % all.len())
        .copied()
        .unwrap_or("name")
}

fn word(i: u8) -> &'static str {
    WORDS
        .get(usize::from(i) % WORDS.len())
        .copied()
        .unwrap_or("")
}

impl Leaf {
    fn value(&self) -> Value {
        match self {
            Leaf::Null => Value::Null,
            Leaf::Bool(b) => Value::Bool(*b),
            Leaf::Uint(n) => Value::from(*n),
            Leaf::Int(n) => Value::from(*n),
            Leaf::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Leaf::Word(i) => Value::from(word(*i)),
            Leaf::Str(s) => Value::from(s.as_str()),
            Leaf::Names(ix) => Value::Array(ix.iter().map(|&i| Value::from(word(i))).collect()),
            Leaf::Secret(env, s) => {
                let mut m = Map::new();
                if *env {
                    m.insert("env".into(), Value::from(s.as_str()));
                } else {
                    m.insert("value".into(), Value::from(format!("☃☃{s}")));
                }
                Value::Object(m)
            }
            Leaf::EmptyArray => Value::Array(Vec::new()),
            Leaf::EmptyObject => Value::Object(Map::new()),
        }
    }
}

/// The value reached by following `route` (each step picks a child).
fn walk<'v>(v: &'v mut Value, route: &[u8]) -> &'v mut Value {
    let Some((&step, rest)) = route.split_first() else {
        return v;
    };
    let len = match &*v {
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        _ => 0,
    };
    if len == 0 {
        return v;
    }
    let i = usize::from(step) % len;
    match v {
        Value::Array(items) => walk(&mut items[i], rest),
        Value::Object(map) => match map.values_mut().nth(i) {
            Some(child) => walk(child, rest),
            None => unreachable!(),
        },
        _ => unreachable!(),
    }
}

fn apply(doc: &mut Value, edit: &Edit) {
    match edit {
        Edit::Remove(route) => {
            let (last, parent) = route.split_last().map_or((0, &[][..]), |(l, p)| (*l, p));
            match walk(doc, parent) {
                Value::Array(items) if !items.is_empty() => {
                    let i = usize::from(last) % items.len();
                    items.remove(i);
                }
                Value::Object(map) if !map.is_empty() => {
                    let i = usize::from(last) % map.len();
                    if let Some(k) = map.keys().nth(i).cloned() {
                        map.remove(&k);
                    }
                }
                _ => {}
            }
        }
        Edit::Set(route, key, leaf) => {
            if let Value::Object(map) = walk(doc, route) {
                let k = match key {
                    Key::Known(i) => known_field(*i).to_string(),
                    Key::Raw(s) => s.clone(),
                };
                map.insert(k, leaf.value());
            }
        }
        Edit::Replace(route, leaf) => *walk(doc, route) = leaf.value(),
        Edit::Duplicate(route, which) => {
            if let Value::Array(items) = walk(doc, route) {
                if !items.is_empty() {
                    let copy = items[usize::from(*which) % items.len()].clone();
                    items.push(copy);
                }
            }
        }
        Edit::Wrap(route, in_array) => {
            let v = walk(doc, route);
            let inner = v.take();
            *v = if *in_array {
                Value::Array(vec![inner])
            } else {
                let mut m = Map::new();
                m.insert("value".into(), inner);
                Value::Object(m)
            };
        }
    }
}

const MARK: &str = "☃☃";

/// Strings at `authorization.secrets[*].value`.
fn secret_values(doc: &Value) -> Vec<&str> {
    doc.get("authorization")
        .and_then(|a| a.get("secrets"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|s| s.get("value").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

struct NoHeaders;

impl RequestHeaders for NoHeaders {
    fn get(&mut self, name: &str) -> Option<&str> {
        (name == ":method").then_some("GET")
    }
}

fn check_errors(errs: &[ConfigError], text: &[u8]) {
    assert!(!errs.is_empty());
    for e in errs {
        assert!(!e.reason.trim().is_empty(), "{e:?}");
    }
    // A secret never appears in an error. Judged only when every marker in
    // the document sits inside a secret value (and in the environment).
    if !errs
        .iter()
        .any(|e| e.path.contains(MARK) || e.reason.contains(MARK))
    {
        return;
    }
    let Ok(doc) = serde_json::from_slice::<Value>(text) else {
        return;
    };
    let in_secrets: usize = secret_values(&doc)
        .iter()
        .map(|s| s.matches(MARK).count())
        .sum();
    let in_doc = String::from_utf8_lossy(text).matches(MARK).count();
    let escaped = String::from_utf8_lossy(text).contains("\\u");
    if in_doc != in_secrets || escaped {
        return;
    }
    for e in errs {
        assert!(
            !e.path.contains(MARK) && !e.reason.contains(MARK),
            "secret leaked in {e}"
        );
    }
}

fn check_policy(p: &Policy) {
    let auth = &p.authorization;
    assert!(!p.endpoints.is_empty());
    for (i, e) in p.endpoints.iter().enumerate() {
        assert!(!e.name.is_empty());
        assert!(e
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'));
        assert!(e.path.starts_with('/') && !e.path.contains(['?', '#']));
        assert!(!e.path.bytes().any(|b| b <= 0x20 || b == 0x7f));
        for o in &p.endpoints[..i] {
            assert_ne!(o.name, e.name);
            assert_ne!(o.path, e.path);
        }
        for (j, &c) in e.checks.iter().enumerate() {
            let check = p.checks.get(c).expect("check index in range");
            assert!(!e.checks[..j].contains(&c), "check listed twice");
            if let Some(t) = check.timeout_ms {
                assert!(t <= e.deadline_ms);
            }
            assert!(check.timeout_for(e) <= e.deadline_ms);
        }
        assert!(e.deadline_ms > 0 && e.deadline_ms <= MAX_DURATION_MS);
        if e.access == Access::Protected {
            assert!(!auth.secrets.is_empty());
        }
        if let Some(prefix) = &auth.path_prefix {
            assert!(!e.path.starts_with(&format!("{prefix}/")));
        }
        for code in [
            e.status_codes.pass,
            e.status_codes.warn,
            e.status_codes.fail,
        ] {
            assert!((100..=599).contains(&code));
        }
        let cache = &e.cache;
        assert!(cache.max_stale_ms >= cache.ttl_ms);
        assert!(!cache.refresh || cache.ttl_ms > 0);
        assert!(cache.max_stale_ms <= 3_600_000);
    }
    for (i, c) in p.checks.iter().enumerate() {
        assert!(!c.name.is_empty() && !c.cluster.is_empty());
        assert!(p.checks[..i].iter().all(|o| o.name != c.name));
        assert!(!c.expect_status.0.is_empty());
        for &(lo, hi) in &c.expect_status.0 {
            assert!(100 <= lo && lo <= hi && hi <= 599);
        }
        assert!(c.max_body >= 1 && c.max_body <= 16 * 1024 * 1024);
        assert!(c.path.starts_with('/'));
        for (k, v) in &c.headers {
            assert!(!k.starts_with(':') && *k == k.to_ascii_lowercase());
            assert!(!v.contains(['\r', '\n', '\0']));
        }
        if let (Some(w), Some(t)) = (c.warn_after_ms, c.timeout_ms) {
            assert!(w < t);
        }
        match &c.kind {
            CheckKind::Http => {}
            CheckKind::EnvoyServer => assert!(c.expect_body.is_none()),
            CheckKind::EnvoyCluster {
                min_healthy_percent,
                ..
            } => {
                assert!(c.expect_body.is_none());
                assert!(*min_healthy_percent <= 100);
            }
            CheckKind::EnvoyMemory { limit_bytes } => {
                assert!(c.expect_body.is_none());
                assert!(*limit_bytes > 0);
            }
            // HTTP-only fields are refused on a gRPC check.
            CheckKind::Grpc { .. } => assert!(c.expect_body.is_none()),
        }
        match &c.expect_body {
            Some(BodyExpect::Contains(t)) => assert!(!t.is_empty()),
            Some(BodyExpect::Pointer { pointer, accepted }) => {
                assert!(pointer.is_empty() || pointer.starts_with('/'));
                assert!(!accepted.is_empty());
            }
            None => {}
        }
    }
    for s in &auth.secrets {
        assert!(!s.is_empty());
        assert!(!s.bytes().any(|b| b < 0x21 || b == 0x7f));
    }
    if !auth.secrets.is_empty() {
        assert!(
            auth.header.is_some()
                || auth.path_prefix.is_some()
                || auth.query_param.is_some()
                || auth.bearer
        );
    }
    if let Some(h) = &auth.header {
        assert!(!h.is_empty() && *h == h.to_ascii_lowercase() && !h.starts_with(':'));
    }
    if let Some(prefix) = &auth.path_prefix {
        assert!(prefix.starts_with('/') && !prefix.ends_with('/'));
    }
    if let Some(q) = &auth.query_param {
        assert!(!q.is_empty() && !q.contains(['&', '=', '?', '#', ' ']));
    }
    // The policy answers its own endpoints.
    for e in &p.endpoints {
        let _ = classify(p, &e.path, &mut NoHeaders);
        let _ = classify(
            p,
            &format!("{}?format=json&verbose", e.path),
            &mut NoHeaders,
        );
    }
}

fn run(text: &[u8], env_value: &str) {
    let env = |name: &str| (name != "UNSET").then(|| format!("{name}{env_value}"));
    match Policy::from_json(text, &env) {
        Ok(p) => check_policy(&p),
        Err(errs) => check_errors(&errs, text),
    }
}

fuzz_target!(|data: &[u8]| {
    // As it is.
    run(data, "");

    // As a recipe of edits to a valid policy.
    let mut u = Unstructured::new(data);
    let Ok(base) = u.choose_index(BASES.len()) else {
        return;
    };
    let Ok(mut doc) = serde_json::from_str::<Value>(BASES[base]) else {
        return;
    };
    let edits: Vec<Edit> = u.arbitrary().unwrap_or_default();
    let env_value: String = u.arbitrary().unwrap_or_default();
    for edit in edits.iter().take(16) {
        apply(&mut doc, edit);
    }
    let pretty: bool = u.arbitrary().unwrap_or(false);
    let text = if pretty {
        serde_json::to_vec_pretty(&doc)
    } else {
        serde_json::to_vec(&doc)
    };
    if let Ok(text) = text {
        run(&text, &env_value);
    }
});
