//! Quiet access logs: `envoy/quiet-logs/envoy.yaml`, started for real (its
//! ports, module path and log path swapped for the test's), keeps the probes
//! meshprobe answers out of the access log and every application request in
//! it; the same file without its access-log filter logs everything (so the
//! filter is what drops the probes). The Istio equivalent,
//! `istio/telemetry-quiet-probes.yaml`, is checked against the Telemetry
//! CRD's schema and carries the same CEL expression.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde::Deserialize;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use support::deps::{DepServer, Mode};
use support::envoy::{wasm_path, Envoy, Scratch};
use support::http::get;

const EXAMPLE: &str = include_str!("../envoy/quiet-logs/envoy.yaml");
const TELEMETRY: &str = include_str!("../istio/telemetry-quiet-probes.yaml");
const SECRET: &str = "demo-secret";

/// The CEL expression of the example's access-log filter.
fn expression_of(text: &str) -> String {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("expression: "))
        .expect("no expression");
    serde_json::from_str(line).expect("the expression is a double-quoted string")
}

struct Rig {
    envoy: Envoy,
    log: std::path::PathBuf,
    _dir: Scratch,
    _deps: [DepServer; 2],
}

/// The example with the test's ports and paths; `quiet: false` removes the
/// access log's filter (and nothing else).
fn start(quiet: bool) -> Rig {
    let app = DepServer::start(Mode::Echo);
    let db = DepServer::start(Mode::Status(200));
    let dir = Scratch::new("quiet-logs");
    let log = dir.0.join("access.log");
    let mut yaml = EXAMPLE
        .replace("port_value: 10500", "port_value: 0")
        .replace("port_value: 9951", "port_value: 0")
        .replace("port_value: 18080", &format!("port_value: {}", app.port))
        .replace("port_value: 18081", &format!("port_value: {}", db.port))
        .replace(
            "filename: dist/meshprobe.wasm",
            &format!("filename: {}", wasm_path()),
        )
        .replace("path: /dev/stdout", &format!("path: {}", log.display()));
    assert!(!yaml.contains("port_value: 1") && !yaml.contains("/dev/stdout"));
    if !quiet {
        let start = yaml
            .find("                    filter:\n")
            .expect("no filter");
        let end = yaml[start..]
            .find("                    typed_config:\n")
            .expect("no typed_config after the filter")
            + start;
        yaml.replace_range(start..end, "");
        assert!(!yaml.contains("extension_filter:"));
    }
    let envoy = match Envoy::try_start_yaml(&yaml, 1) {
        Ok(e) => e,
        Err(r) => panic!("Envoy did not start ({}):\n{}", r.status, r.log),
    };
    Rig {
        envoy,
        log,
        _dir: dir,
        _deps: [app, db],
    }
}

/// What was sent and what the access log holds.
#[derive(Debug, PartialEq, Eq)]
struct Figures {
    probe_lines: usize,
    app_lines: usize,
    refused_lines: usize,
}

const PROBES_LIVE: usize = 40;
const PROBES_READY: usize = 20;
const APP: usize = 25;
const REFUSED: usize = 5;

/// Sends the traffic, then reads the log once Envoy has flushed it (the
/// test Envoy flushes every 100 ms: the count is read when it no longer
/// changes, and at least `expected` lines are there).
fn run(rig: &Rig, expected: usize) -> Figures {
    let port = rig.envoy.port;
    for _ in 0..PROBES_LIVE {
        let r = get(port, "/livez", &[]);
        assert_eq!((r.status, r.header("x-meshprobe")), (200, Some("probe")));
    }
    for _ in 0..PROBES_READY {
        let r = get(port, "/readyz", &[("x-health", SECRET)]);
        assert_eq!((r.status, r.header("x-meshprobe")), (200, Some("probe")));
    }
    for i in 0..APP {
        let r = get(port, &format!("/orders?id={i}"), &[]);
        assert_eq!(r.status, 200);
        assert!(r.body.starts_with("GET /orders"), "{}", r.body);
        assert_eq!(r.header("x-meshprobe"), None);
    }
    for _ in 0..REFUSED {
        let r = get(port, "/readyz", &[("x-health", "guess")]);
        assert_eq!((r.status, r.header("x-meshprobe")), (404, None));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = usize::MAX;
    let text = loop {
        std::thread::sleep(Duration::from_millis(400));
        let text = std::fs::read_to_string(&rig.log).unwrap_or_default();
        let n = text.lines().count();
        if n >= expected && n == last {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "{n} access-log lines, {expected} expected:\n{text}"
        );
        last = n;
    };
    let lines: Vec<&str> = text.lines().collect();
    let count = |f: &dyn Fn(&str) -> bool| lines.iter().filter(|l| f(l)).count();
    let figures = Figures {
        probe_lines: count(&|l| {
            l.contains("\"GET /livez ") || (l.contains("\"GET /readyz ") && l.contains("\" 200 "))
        }),
        app_lines: count(&|l| l.contains("\"GET /orders?id=")),
        refused_lines: count(&|l| l.contains("\"GET /readyz ") && l.contains("\" 404 ")),
    };
    assert_eq!(
        figures.probe_lines + figures.app_lines + figures.refused_lines,
        lines.len(),
        "unexpected lines:\n{text}"
    );
    figures
}

#[test]
fn probes_answered_by_meshprobe_stay_out_of_the_access_log() {
    let rig = start(true);
    let figures = run(&rig, APP + REFUSED);
    eprintln!(
        "quiet: {} probes sent, {} app requests, {} refused; logged: {figures:?}",
        PROBES_LIVE + PROBES_READY,
        APP,
        REFUSED
    );
    assert_eq!(
        figures,
        Figures {
            probe_lines: 0,
            app_lines: APP,
            refused_lines: REFUSED,
        }
    );
}

#[test]
fn without_the_filter_every_probe_is_logged() {
    let rig = start(false);
    let figures = run(&rig, PROBES_LIVE + PROBES_READY + APP + REFUSED);
    eprintln!("unfiltered: logged {figures:?}");
    assert_eq!(
        figures,
        Figures {
            probe_lines: PROBES_LIVE + PROBES_READY,
            app_lines: APP,
            refused_lines: REFUSED,
        }
    );
}

// ---------------------------------------------------------------------------
// The Istio Telemetry resource
// ---------------------------------------------------------------------------

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|de| Value::deserialize(de).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The schema made strict the way the API server applies it: objects that
/// list properties (and do not preserve unknown fields) refuse others;
/// `nullable` allows null; formats other than date-time are not checked.
fn strict(node: &Value) -> Value {
    let Some(map) = node.as_object() else {
        return node.clone();
    };
    let mut n = map.clone();
    if let Some(Value::Object(props)) = n.get_mut("properties") {
        for v in props.values_mut() {
            *v = strict(v);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = n.get_mut(key) {
            if v.is_object() {
                *v = strict(v);
            }
        }
    }
    if n.get("format").is_some_and(|f| f != "date-time") {
        n.remove("format");
    }
    let object = n.get("type") == Some(&json!("object"));
    let preserves = n.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if object && !preserves && !n.contains_key("additionalProperties") {
        n.insert("additionalProperties".into(), json!(false));
    }
    if n.remove("nullable") == Some(json!(true)) {
        return json!({"anyOf": [{"type": "null"}, Value::Object(n)]});
    }
    Value::Object(n)
}

/// The Telemetry CRD's `spec` schema for `version`, strict.
fn telemetry_spec_schema(version: &str) -> Value {
    // Beside the repository (as tests/istio/ reads it), or beside the
    // directory of worktrees.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        repo.join("../shared/istio/customresourcedefinitions.gen.yaml"),
        repo.join("../../shared/istio/customresourcedefinitions.gen.yaml"),
    ];
    let text = candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_else(|| {
            panic!("{candidates:?}: none exists; the shared Istio CRDs must be checked out beside this repository")
        });
    // Only the Telemetry CRD: parsing the whole file takes a while.
    let start = text
        .find("  name: telemetries.telemetry.istio.io\n")
        .expect("no Telemetry CRD");
    let doc_start = text[..start].rfind("\n---").map_or(0, |i| i + 4);
    let doc_end = text[start..]
        .find("\n---")
        .map_or(text.len(), |i| start + i);
    let crd = &yaml_documents(&text[doc_start..doc_end])[0];
    assert_eq!(crd["spec"]["names"]["kind"], "Telemetry");
    let v = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version && v["served"] == true)
        .unwrap_or_else(|| panic!("Telemetry {version} is not served"));
    strict(&v["schema"]["openAPIV3Schema"]["properties"]["spec"])
}

fn spec_errors(schema: &Value, spec: &Value) -> Vec<String> {
    let validator = jsonschema::draft4::options().build(schema).unwrap();
    validator
        .iter_errors(spec)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_istio_telemetry_resource_fits_its_crd_and_says_what_envoy_was_shown() {
    let docs = yaml_documents(TELEMETRY);
    assert_eq!(docs.len(), 1);
    let t = &docs[0];
    assert_eq!(t["apiVersion"], "telemetry.istio.io/v1");
    assert_eq!(t["kind"], "Telemetry");
    let schema = telemetry_spec_schema("v1");
    let errors = spec_errors(&schema, &t["spec"]);
    assert!(errors.is_empty(), "{errors:?}");
    // The CEL expression is the one the real Envoy ran above.
    let logging = &t["spec"]["accessLogging"][0];
    assert_eq!(
        logging["filter"]["expression"].as_str(),
        Some(expression_of(EXAMPLE).as_str())
    );
    assert_eq!(logging["providers"][0]["name"], "envoy");
    // The schema is not vacuous: a misspelt field is refused.
    let mut typo = t["spec"].clone();
    typo["accessLogging"][0]["filter"] = json!({"expresion": "true"});
    assert!(!spec_errors(&schema, &typo).is_empty());
}
