//! The `meshprobe` command as a user runs it: the built binary, spawned on
//! real files. `validate` on every shipped config and on broken copies, and
//! bad input to the command. (`explain`: tests/cli_explain.rs; `run` and
//! `check` against real servers and a real Envoy: tests/cli_e2e.rs;
//! `schema`: tests/cli_schema.rs.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use meshprobe::policy::Policy;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::envoy::Scratch;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn meshprobe(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_meshprobe"))
        .args(args)
        .current_dir(repo())
        .env_remove("MESHPROBE_TOKEN")
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Every YAML file under envoy/ and istio/ (relative paths).
fn shipped_files() -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::from("envoy"), PathBuf::from("istio")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(repo().join(&dir)).unwrap() {
            let name = entry.unwrap().file_name();
            let rel = dir.join(&name);
            if repo().join(&rel).is_dir() {
                stack.push(rel);
            } else if rel.extension().is_some_and(|e| e == "yaml") {
                files.push(rel.display().to_string());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_shipped_config_validates_clean_even_strict() {
    let files = shipped_files();
    let args: Vec<&str> = ["validate", "--strict"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = meshprobe(&args);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(": 0 error(s), 0 warning(s)"),
        "{}",
        out.stdout
    );
    // Each of these holds a policy; the others are listed as skipped.
    for file in [
        "envoy/demo/envoy.yaml",
        "envoy/ecds/envoy.yaml",
        "envoy/ecds/filters/meshprobe.yaml",
        "envoy/lds/listeners/main.yaml",
        "envoy/scoped/envoy.yaml",
        "envoy/tiers/envoy.yaml",
        "istio/wasmplugin-mesh.yaml",
        "istio/wasmplugin-namespace.yaml",
        "istio/wasmplugin-workload.yaml",
        "istio/wasmplugin-gateway.yaml",
    ] {
        assert!(
            out.stdout.contains(&format!("ok: {file}: document 1 (")),
            "{file}:\n{}",
            out.stdout
        );
    }
    for n in 1..=4 {
        assert!(out.stdout.contains(&format!(
            "ok: istio/trafficextension.yaml: document {n} (TrafficExtension/"
        )));
    }
    assert!(out.stdout.contains(
        "skipped: istio/peerauthentication.yaml: document 1 (PeerAuthentication/orders-probe-port): not a meshprobe resource"
    ));
    assert!(out
        .stdout
        .contains("skipped: envoy/lds/envoy.yaml: document 1 (Envoy bootstrap): no meshprobe Wasm filter or policy"));
    // Directories stand for their YAML and JSON files.
    let dirs = meshprobe(&["validate", "--strict", "envoy", "istio"]);
    assert_eq!(dirs.code, 0, "{}{}", dirs.stdout, dirs.stderr);
    assert_eq!(
        dirs.stdout
            .lines()
            .filter(|l| l.starts_with("ok: "))
            .count(),
        out.stdout.lines().filter(|l| l.starts_with("ok: ")).count()
    );
    // `meshprobe validate istio/*.yaml` just works.
    let istio: Vec<String> = files
        .into_iter()
        .filter(|f| f.starts_with("istio/"))
        .collect();
    let args: Vec<&str> = ["validate"]
        .into_iter()
        .chain(istio.iter().map(String::as_str))
        .collect();
    assert_eq!(meshprobe(&args).code, 0);
}

/// The errors the module logs for `policy` (Envoy: `meshprobe: invalid
/// policy: <this>`).
fn module_errors(policy: &str, env: &[(&str, &str)]) -> Vec<String> {
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    match Policy::from_json(policy.as_bytes(), &lookup) {
        Ok(_) => panic!("the policy is valid:\n{policy}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn write(dir: &Scratch, name: &str, text: &str) -> String {
    let path = dir.0.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap()
}

/// `text` with `from` replaced, which must be there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not found");
    text.replacen(from, to, 1)
}

#[test]
fn a_broken_wasmplugin_in_a_stream_fails_with_file_document_and_field() {
    let dir = Scratch::new("cli-validate");
    let plugin = edit(
        &read("istio/wasmplugin-workload.yaml"),
        "checks: [app, db, payments, githubstatus]",
        "checks: [app, dbb, payments, githubstatus]",
    );
    let plugin = edit(
        &plugin,
        "deadline: 800ms",
        "deadline: 800ms\n        access: everyone",
    );
    let stream = format!("{}\n---\n{plugin}", read("istio/peerauthentication.yaml"));
    let file = write(&dir, "stream.yaml", &stream);
    let out = meshprobe(&["validate", &file]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let place =
        format!("error: {file}: document 2 (WasmPlugin/meshprobe-orders) at spec.pluginConfig: ");
    assert!(
        out.stdout.contains(&format!(
            "{place}endpoints[1].checks[1]: unknown check \"dbb\""
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "{place}endpoints[0].access: \"everyone\" is not one of: protected, public"
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&format!(
        "skipped: {file}: document 1 (PeerAuthentication/orders-probe-port)"
    )));
    assert!(!out.stdout.contains("ok: "), "{}", out.stdout);
}

#[test]
fn broken_envoy_configs_fail_in_the_words_envoy_logs() {
    let dir = Scratch::new("cli-validate");
    // Bootstrap, LDS and ECDS files, each with a policy the module refuses.
    let cases = [
        (
            "envoy/demo/envoy.yaml",
            r#""timeout": "300ms", "critical": false"#,
            r#""timeout": "3h", "critical": "no""#,
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.configuration.value",
            "Envoy bootstrap, filter meshprobe",
        ),
        (
            "envoy/lds/listeners/main.yaml",
            r#""checks": ["db", "cache"]"#,
            r#""checks": ["db", "db"], "ttl": "soon""#,
            "resources[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.configuration.value",
            "Envoy discovery response, filter meshprobe",
        ),
        (
            "envoy/ecds/filters/meshprobe.yaml",
            r#""path_prefix": "/health""#,
            r#""path_prefix": "health", "bearer": 1"#,
            "resources[0].typed_config.config.configuration.value",
            "Envoy discovery response, filter meshprobe",
        ),
    ];
    for (rel, from, to, at, label) in cases {
        let text = edit(&read(rel), from, to);
        let name = rel.replace('/', "_");
        let file = write(&dir, &name, &text);
        let out = meshprobe(&["validate", &file]);
        assert_eq!(out.code, 1, "{rel}: {}{}", out.stdout, out.stderr);
        // The policy as the module gets it, and the module's own errors.
        let docs: Vec<serde_norway::Value> = serde_norway::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let policy = find_string_value(&serde_json::to_value(&docs[0]).unwrap()).unwrap();
        let want = module_errors(&policy, &[("MESHPROBE_TOKEN", "x")]);
        assert!(want.len() >= 2, "{want:?}");
        for e in &want {
            let line = format!("error: {file}: document 1 ({label}) at {at}: {e}");
            assert!(
                out.stdout.contains(&line),
                "{rel}: missing {line:?}\n{}",
                out.stdout
            );
        }
    }
}

fn find_string_value(v: &Value) -> Option<String> {
    match v {
        Value::Object(map) => {
            if map.get("@type").and_then(Value::as_str)
                == Some("type.googleapis.com/google.protobuf.StringValue")
            {
                return map.get("value").and_then(Value::as_str).map(String::from);
            }
            map.values().find_map(find_string_value)
        }
        Value::Array(items) => items.iter().find_map(find_string_value),
        _ => None,
    }
}

#[test]
fn a_policy_file_and_env_secrets() {
    let dir = Scratch::new("cli-validate");
    let bad = r#"{"endpoints": [{"name": "r", "path": "readyz"}], "checks": [{"name": "db"}]}"#;
    let file = write(&dir, "policy.json", bad);
    let out = meshprobe(&["validate", &file]);
    assert_eq!(out.code, 1);
    for e in module_errors(bad, &[]) {
        assert!(
            out.stdout
                .contains(&format!("error: {file}: document 1 (policy): {e}")),
            "{e}\n{}",
            out.stdout
        );
    }
    // A WasmPlugin's env secret must be declared in vmConfig.env: the
    // module refuses the policy otherwise.
    let plugin = edit(
        &read("istio/wasmplugin-namespace.yaml"),
        "name: MESHPROBE_TOKEN",
        "name: OTHER_TOKEN",
    );
    let file = write(&dir, "plugin.yaml", &plugin);
    let out = meshprobe(&["validate", &file]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains(
        "spec.pluginConfig: authorization.secrets[0].env: environment variable \"MESHPROBE_TOKEN\" is not set in the VM"
    ), "{}", out.stdout);
}

const WARNED: &str = r#"apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: meshprobe-warned
  namespace: prod
spec:
  url: oci://ghcr.io/example-org/meshprobe:0.1.0
  pluginConfig:
    authorization:
      header: x-health
      secrets:
        - value: inline-s3cret
    endpoints:
      - name: ready
        path: /readyz
        checks: [db, stats]
        deadline: 1s
    checks:
      - name: db
        cluster: "outbound|8008|db.prod.svc.cluster.local"
        timeout: 500ms
      - name: stats
        cluster: db
      - name: unused
        cluster: prometheus_stats
        kind: envoy_server
"#;

#[test]
fn warnings_a_reviewer_wants_and_strict() {
    let dir = Scratch::new("cli-validate");
    let file = write(&dir, "warned.yaml", WARNED);
    let out = meshprobe(&["validate", &file]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let place =
        format!("warning: {file}: document 1 (WasmPlugin/meshprobe-warned) at spec.pluginConfig: ");
    for want in [
        "checks[2]: check \"unused\" is used by no endpoint",
        "authorization.secrets[0].value: inline secret",
        "endpoints[0].deadline: 1s is not below kubelet's default timeoutSeconds (1s)",
        "checks[0].cluster: \"outbound|8008|db.prod.svc.cluster.local\" has 3 parts",
        "checks[1].cluster: \"db\" is not a cluster of an Istio sidecar",
    ] {
        assert!(
            out.stdout.contains(&format!("{place}{want}")),
            "{want}\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("0 error(s), 5 warning(s)"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("inline-s3cret"), "{}", out.stdout);

    let strict = meshprobe(&["validate", "--strict", &file]);
    assert_eq!(strict.code, 1);
    assert!(
        strict.stdout.contains("5 error(s), 0 warning(s)"),
        "{}",
        strict.stdout
    );

    // Machine-readable findings for CI annotations.
    let json = meshprobe(&["validate", "--format", "json", &file]);
    assert_eq!(json.code, 0);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["warnings"], 5);
    assert_eq!(v["errors"], 0);
    let first = &v["findings"][0];
    assert_eq!(first["file"], file.as_str());
    assert_eq!(first["document"], 1);
    assert_eq!(first["resource"], "WasmPlugin/meshprobe-warned");
    assert_eq!(first["at"], "spec.pluginConfig");
    assert_eq!(first["severity"], "warning");
    assert!(first["path"].as_str().unwrap().starts_with("checks["));
}

#[test]
fn a_check_to_a_cluster_the_bootstrap_lacks_warns() {
    let dir = Scratch::new("cli-validate");
    let text = edit(
        &read("envoy/demo/envoy.yaml"),
        r#""cluster": "search""#,
        r#""cluster": "serch""#,
    );
    let file = write(&dir, "envoy.yaml", &text);
    let out = meshprobe(&["validate", &file]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains(
        "configuration.value: checks[2].cluster: \"serch\" is not a cluster of this bootstrap (static_resources.clusters)"
    ), "{}", out.stdout);
    assert_eq!(meshprobe(&["validate", "--strict", &file]).code, 1);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = Scratch::new("cli-validate");
    let broken = write(&dir, "broken.yaml", "spec: [\n");
    let cases: &[(&[&str], &str)] = &[
        (
            &["validate", "no/such/file.yaml"],
            "meshprobe: cannot read no/such/file.yaml: ",
        ),
        (
            &["validate", &broken],
            &format!("meshprobe: {broken} is not valid YAML: "),
        ),
        (
            &["validate", "istio/peerauthentication.yaml"],
            "meshprobe: no meshprobe policy in istio/peerauthentication.yaml",
        ),
        (
            &[
                "validate",
                "istio/wasmplugin-mesh.yaml",
                "no/such/file.yaml",
            ],
            "meshprobe: cannot read no/such/file.yaml: ",
        ),
        (
            &["explain", "istio/trafficextension.yaml", "/livez"],
            "meshprobe: istio/trafficextension.yaml holds 4 policies; choose one with --which N",
        ),
        (
            &["run", "envoy/demo/envoy.yaml", "nope"],
            "meshprobe: no endpoint \"nope\"",
        ),
        (
            &["check", "--timeout", "soon", "http://127.0.0.1:1/"],
            "meshprobe: --timeout \"soon\": ",
        ),
    ];
    // With JSON findings too: the line on stderr, and in `bad_input`.
    let json = meshprobe(&["validate", "--format", "json", "no/such/file.yaml"]);
    assert_eq!(json.code, 2);
    assert!(json
        .stderr
        .starts_with("meshprobe: cannot read no/such/file.yaml: "));
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["bad_input"].as_array().unwrap().len(), 1);
    // For hooks that pass every changed file: none is fine when asked.
    let none = meshprobe(&["validate", "--allow-none", "istio/peerauthentication.yaml"]);
    assert_eq!(none.code, 0, "{}", none.stderr);
    assert_eq!(
        meshprobe(&["validate", "--allow-none", "no/such/file.yaml"]).code,
        2
    );
    for (args, want) in cases {
        let out = meshprobe(args);
        assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
        assert!(lines[0].starts_with(want), "{args:?}: {}", out.stderr);
    }
}
