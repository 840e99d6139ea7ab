//! `meshprobe explain` as a user runs it (the built binary on real files):
//! the README's example requests against the demo's policy, secrets in the
//! header, the path, the query and a bearer token (matched, never printed),
//! local answers, sources, and the Istio examples.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::Command;
use support::envoy::Scratch;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn write(dir: &Scratch, name: &str, text: &str) -> String {
    let path = dir.0.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn explain(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_meshprobe"))
        .arg("explain")
        .args(args)
        .current_dir(repo())
        .env_remove("MESHPROBE_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert!(
        !stdout.contains("demo-secret"),
        "a secret was printed: {stdout}"
    );
    stdout
}

fn has(text: &str, lines: &[&str]) {
    for l in lines {
        assert!(text.contains(l), "missing {l:?} in:\n{text}");
    }
}

/// The README's example requests against the demo (envoy/demo/envoy.yaml).
#[test]
fn explain_the_readme_requests() {
    let demo = "envoy/demo/envoy.yaml";
    has(
        &explain(&[demo, "/livez"]),
        &[
            "request: GET /livez",
            "decision: probe of endpoint \"live\" (endpoints[0], /livez)",
            "no checks: answered at once by the proxy (liveness), zero callouts",
        ],
    );
    has(
        &explain(&[demo, "/readyz?verbose", "-H", "x-health: demo-secret"]),
        &[
            "x-health: <secret> (matches authorization.secrets[0])",
            "decision: probe of endpoint \"ready\" (endpoints[1], /readyz)",
            "caller authorized: yes; sees details: yes",
            "view: text, verbose; status pass 200, warn 200, fail 503",
            "deadline: 800ms",
            "cache: none (ttl 0s; a run in flight is shared)",
            "checks (3, in parallel):",
            "db: GET /health to cluster \"db\", authority \"db\", timeout 500ms",
            "cache: GET /ping to cluster \"cache\", authority \"cache\", timeout 300ms",
            "not critical (a failure warns)",
        ],
    );
    has(
        &explain(&[
            demo,
            "/readyz",
            "-H",
            "x-health: demo-secret",
            "-H",
            "accept: application/json",
        ]),
        &["view: json;"],
    );
    has(
        &explain(&[demo, "/readyz", "-H", "x-health: guess"]),
        &[
            "x-health: <secret> (matches no secret)",
            "decision: unauthorized request for endpoint \"ready\" (endpoints[1])",
            "answer: local 404 (empty body)",
        ],
    );
    has(
        &explain(&[demo, "/orders?id=7", "-H", "x-health: demo-secret"]),
        &[
            "decision: pass-through to the application",
            "removes the probe header x-health (from every request)",
        ],
    );
    // Secrets in the path, the query and a bearer token: matched, never shown.
    has(
        &explain(&[demo, "/health/demo-secret/ready"]),
        &[
            "request: GET /health/<secret>/ready",
            "token in the path (path_prefix /health): matches authorization.secrets[0]",
            "decision: probe of endpoint \"ready\"",
        ],
    );
    has(
        &explain(&[demo, "/orders?health_token=demo-secret&id=7"]),
        &[
            "request: GET /orders?health_token=<secret>&id=7",
            "removes the query parameter health_token: the application sees /orders?id=7",
        ],
    );
    has(
        &explain(&[demo, "/readyz", "-H", "authorization: Bearer demo-secret"]),
        &[
            "authorization: <secret> (matches authorization.secrets[0])",
            "caller authorized: yes",
        ],
    );
    // Local answers.
    has(
        &explain(&[
            demo,
            "/readyz",
            "--method",
            "POST",
            "-H",
            "x-health: demo-secret",
        ]),
        &["decision: local answer 405 \"method not allowed\", allow: GET, HEAD"],
    );
    has(
        &explain(&[demo, "/readyz?format=xml", "-H", "x-health: demo-secret"]),
        &["decision: local answer 400 \"unknown format; use one of: text, json, health, html, atom, rss, dhc, openmetrics\""],
    );
    has(
        &explain(&[
            demo,
            "/readyz",
            "-H",
            "x-health: demo-secret",
            "-H",
            "accept: image/png",
        ]),
        &["decision: local answer 406"],
    );
    // A per-check path and ?exclude=.
    has(
        &explain(&[
            demo,
            "/readyz/db?exclude=nope",
            "-H",
            "x-health: demo-secret",
        ]),
        &["checks (1, in parallel):", "db: GET /health"],
    );
    has(
        &explain(&[
            demo,
            "/readyz?exclude=cache&exclude=nope",
            "-H",
            "x-health: demo-secret",
        ]),
        &[
            "checks (2, in parallel):",
            "note: unknown check \"nope\" in exclude",
        ],
    );
    // The secret comes from --env over the file's own environment.
    has(
        &explain(&[
            demo,
            "/readyz",
            "-H",
            "x-health: demo-secret",
            "--env",
            "MESHPROBE_TOKEN=rotated",
        ]),
        &[
            "x-health: <secret> (matches no secret)",
            "answer: local 404",
        ],
    );
}

#[test]
fn explain_sources_and_the_istio_examples() {
    let dir = Scratch::new("cli-explain");
    let policy = r#"{
      "authorization": {"header": "x-health", "secrets": [{"value": "old-s3cret"}, {"value": "new-s3cret"}],
                        "sources": ["10.0.0.0/8"], "on_unauthorized": "forbidden"},
      "endpoints": [{"name": "ready", "path": "/readyz", "checks": ["db"], "ttl": "5s", "refresh": true}],
      "checks": [{"name": "db", "cluster": "outbound|5432||db.prod.svc.cluster.local", "path": "/health",
                  "headers": {"authorization": "Basic c2VjcmV0"}, "expect_body": {"pointer": "/ok", "equals": true}}]
    }"#;
    let file = write(&dir, "policy.json", policy);
    let inside = explain(&[
        &file,
        "/readyz",
        "-H",
        "x-health: new-s3cret",
        "--source",
        "10.1.2.3:5000",
    ]);
    has(
        &inside,
        &[
            "x-health: <secret> (matches authorization.secrets[1])",
            "source address: 10.1.2.3:5000",
            "cache: ttl 5s, max_stale 30s, refresh in the background: yes, on_stale run, on_startup run",
            "extra headers: authorization (values not shown)",
            "passes on status 200-299, body at /ok is true",
        ],
    );
    assert!(
        !inside.contains("new-s3cret") && !inside.contains("c2VjcmV0"),
        "{inside}"
    );
    has(
        &explain(&[
            &file,
            "/readyz",
            "-H",
            "x-health: new-s3cret",
            "--source",
            "192.168.1.1:5000",
        ]),
        &[
            "sources: probes accepted only from 1 range(s); the source address is outside",
            "answer: local 403 \"forbidden\"",
        ],
    );
    has(
        &explain(&[
            "istio/trafficextension.yaml",
            "--which",
            "1",
            "/meshprobe/readyz",
        ]),
        &[
            "decision: probe of endpoint \"proxy\"",
            "envoy: GET /server_info to cluster \"prometheus_stats\"",
            "Envoy admin /server_info: passes while LIVE",
        ],
    );
}
