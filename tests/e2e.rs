//! End to end: the built module inside a real Envoy, with real dependency
//! servers and a real application on 127.0.0.1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;
use support::deps::Mode;
use support::envoy::{Envoy, Setup};
use support::http::{request, request_version, Response};
use support::stack::Stack;

const SECRET: &str = "e2e-s3cret";

/// The standard policy: public liveness; protected readiness over three
/// dependencies (cache non-critical); secrets from the VM environment.
fn policy(deadline: &str, extra_checks: &str) -> String {
    format!(
        r#"{{
  "authorization": {{"header": "x-health", "secrets": [{{"env": "PROBE_SECRET"}}, {{"value": "next-secret"}}],
                     "path_prefix": "/health", "query_param": "health_token", "bearer": true}},
  "endpoints": [
    {{"name": "live", "path": "/livez", "access": "public"}},
    {{"ttl": "0s", "name": "ready", "path": "/readyz", "checks": ["db", "cache", "search"], "deadline": "{deadline}"}},
    {{"ttl": "0s", "name": "deep", "path": "/deepz", "checks": ["db"], "on_unauthorized": "forbidden"}},
    {{"ttl": "0s", "name": "appz", "path": "/appz", "checks": ["db"], "on_unauthorized": "pass_through"}}
    {extra_checks}
  ],
  "checks": [
    {{"name": "db", "cluster": "db", "path": "/health"}},
    {{"name": "cache", "cluster": "cache", "path": "/ping", "critical": false}},
    {{"name": "search", "cluster": "search", "path": "/status"}},
    {{"name": "ghost", "cluster": "no-such-cluster"}},
    {{"name": "closed", "cluster": "closed"}}
  ]
}}"#
    )
}

struct Rig(Stack);

impl std::ops::Deref for Rig {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.0
    }
}

impl Rig {
    fn start() -> Rig {
        Self::with_policy(&policy("800ms", ""))
    }

    fn with_policy(policy: &str) -> Rig {
        let ok = Mode::Status(200);
        Rig(Stack::start(
            policy,
            &[("db", ok.clone()), ("cache", ok.clone()), ("search", ok)],
            &[("PROBE_SECRET", SECRET)],
        ))
    }

    fn probe(&self, path: &str) -> Response {
        self.get(path, &[("x-health", SECRET)])
    }
}

fn assert_no_store(r: &Response) {
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
}

#[test]
fn liveness_answers_200_with_zero_callouts() {
    let rig = Rig::start();
    for headers in [vec![], vec![("x-health", SECRET)]] {
        let r = rig.get("/livez", &headers);
        assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
        assert_no_store(&r);
    }
    let r = rig.probe("/livez?verbose");
    assert_eq!(r.body, "live check passed\n");
    assert_eq!(rig.dependency_hits(), 0);
    assert_eq!(rig.app.hits(), 0, "the application saw a probe");
}

#[test]
fn readiness_passes_in_text_and_json() {
    let rig = Rig::start();
    let r = rig.probe("/readyz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_no_store(&r);
    let r = rig.probe("/readyz?verbose");
    assert_eq!(
        r.body,
        "[+]db ok\n[+]cache ok\n[+]search ok\nready check passed\n"
    );

    for (path, accept) in [
        ("/readyz?format=json", "text/plain"),
        ("/readyz", "application/json"),
    ] {
        let r = rig.get(path, &[("x-health", SECRET), ("accept", accept)]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["status"], "pass");
        for name in ["db", "cache", "search"] {
            assert_eq!(v["checks"][name]["status"], "pass", "{}", r.body);
            assert!(v["checks"][name]["latency_ms"].is_u64());
        }
    }
    // Each probe called each dependency once, at the configured path.
    assert_eq!(
        (
            rig.dep("db").hits(),
            rig.dep("cache").hits(),
            rig.dep("search").hits()
        ),
        (4, 4, 4)
    );
    assert!(
        rig.dep("db").seen()[0].starts_with("GET /health HTTP/1.1"),
        "{:?}",
        rig.dep("db").seen()
    );
    assert!(rig.dep("cache").seen()[0].starts_with("GET /ping HTTP/1.1"));
    assert_eq!(rig.app.hits(), 0, "the application saw a probe");
}

#[test]
fn a_critical_failure_is_503_naming_it() {
    let rig = Rig::start();
    rig.dep("db").set_mode(Mode::Status(500));
    let r = rig.probe("/readyz?verbose");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        "[+]db failed: unexpected status 500 (expected 200-299)\n".replace("[+]", "[-]")
            + "[+]cache ok\n[+]search ok\nready check failed\n"
    );
    let r = rig.probe("/readyz");
    assert_eq!((r.status, r.body.as_str()), (503, "fail\n"));
    let r = rig.probe("/readyz?format=json");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["status"], "fail");
    assert_eq!(
        v["checks"]["db"]["reason"],
        "unexpected status 500 (expected 200-299)"
    );
}

#[test]
fn a_non_critical_failure_warns_with_200() {
    let rig = Rig::start();
    rig.dep("cache").set_mode(Mode::Status(503));
    let r = rig.probe("/readyz?verbose");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        "[+]db ok\n[!]cache warn: unexpected status 503 (expected 200-299)\n[+]search ok\nready check passed\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&rig.probe("/readyz?format=json").body).unwrap();
    assert_eq!(v["status"], "warn");
}

#[test]
fn a_hanging_dependency_is_answered_within_the_deadline() {
    let rig = Rig::with_policy(&policy("400ms", ""));
    rig.dep("search").set_mode(Mode::Hang);
    let r = rig.probe("/readyz?verbose");
    assert_eq!(r.status, 503);
    assert!(
        r.body.contains("[-]search failed: timeout after 400ms\n"),
        "{}",
        r.body
    );
    assert!(
        r.elapsed < Duration::from_millis(500),
        "answered after {:?}, deadline 400ms",
        r.elapsed
    );
    assert!(
        r.elapsed >= Duration::from_millis(390),
        "answered after {:?}",
        r.elapsed
    );
}

#[test]
fn unknown_cluster_and_closed_port_fail_with_their_cause() {
    let extra = r#", {"ttl": "0s", "name": "ghosts", "path": "/ghostz", "checks": ["ghost", "db"]},
                   {"ttl": "0s", "name": "closed", "path": "/closedz", "checks": ["closed"]}"#;
    let rig = Rig::with_policy(&policy("800ms", extra));
    let r = rig.probe("/ghostz?verbose");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        "[-]ghost failed: dispatch failed: unknown cluster \"no-such-cluster\"\n[+]db ok\nghosts check failed\n"
    );
    let r = rig.probe("/closedz?verbose");
    assert_eq!(r.status, 503);
    assert!(
        r.body
            .starts_with("[-]closed failed: connection failed: remote connection failure"),
        "{}",
        r.body
    );
    // Envoy still serves afterwards.
    assert_eq!(rig.probe("/livez").status, 200);
}

#[test]
fn all_dependencies_are_called_in_parallel() {
    let rig = Rig::start();
    for dep in [rig.dep("db"), rig.dep("cache"), rig.dep("search")] {
        dep.set_mode(Mode::Delay(300));
    }
    // Warm the connection pools so the figure is the fan-out alone.
    let _ = rig.probe("/readyz");
    let r = rig.probe("/readyz?verbose");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.elapsed < Duration::from_millis(450),
        "3 deps x 300 ms took {:?}: not parallel",
        r.elapsed
    );
    assert!(r.elapsed >= Duration::from_millis(300));
}

#[test]
fn missing_or_wrong_secrets_get_404_and_cause_no_callout() {
    let rig = Rig::start();
    let basic = format!("Basic {SECRET}");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/readyz", vec![]),
        ("/readyz", vec![("x-health", "wrong")]),
        ("/readyz", vec![("x-health", "E2E-S3CRET")]),
        ("/readyz", vec![("x-health", "e2e-s3cre")]),
        ("/readyz", vec![("x-health", "e2e-s3cret1")]),
        ("/readyz", vec![("x-health", "")]),
        ("/readyz", vec![("authorization", "Bearer wrong")]),
        ("/readyz", vec![("authorization", basic.as_str())]),
        ("/readyz?health_token=wrong", vec![]),
        ("/health/wrong/ready", vec![]),
        ("/readyz?verbose&format=json", vec![("x-health", "nope")]),
    ];
    for (path, headers) in &cases {
        let r = rig.get(path, headers);
        assert_eq!(r.status, 404, "{path} {headers:?}: {r:?}");
        assert!(!r.body.contains("db"), "details leaked: {}", r.body);
    }
    let r = rig.get("/deepz", &[("x-health", "wrong")]);
    assert_eq!((r.status, r.body.as_str()), (403, "forbidden\n"));
    let r = rig.get("/readyz", &[]);
    assert_no_store(&r);
    assert_eq!(
        rig.dependency_hits(),
        0,
        "an unauthorized request caused a callout"
    );
    assert_eq!(rig.app.hits(), 0);
}

#[test]
fn secrets_in_path_query_and_bearer_are_accepted() {
    let rig = Rig::start();
    let bearer = format!("Bearer {SECRET}");
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/health/{SECRET}/ready?verbose"), vec![]),
        (format!("/readyz?verbose&health_token={SECRET}"), vec![]),
        (
            "/readyz?verbose".into(),
            vec![("authorization", bearer.as_str())],
        ),
        // Rotation: the second secret works too.
        ("/readyz?verbose".into(), vec![("x-health", "next-secret")]),
    ];
    for (path, headers) in &cases {
        let r = rig.get(path, headers);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(
            r.body,
            "[+]db ok\n[+]cache ok\n[+]search ok\nready check passed\n"
        );
    }
    assert_eq!(rig.dep("db").hits(), cases.len());
    assert_eq!(rig.app.hits(), 0, "the application saw a probe");
}

#[test]
fn pass_through_requests_reach_the_app_without_the_secret() {
    let rig = Rig::start();
    let r = rig.get("/orders?id=7", &[("x-health", SECRET), ("x-other", "kept")]);
    assert_eq!(r.status, 200);
    assert!(
        r.body.starts_with("GET /orders?id=7 HTTP/1.1"),
        "{}",
        r.body
    );
    assert!(r.body.contains("x-other: kept"), "{}", r.body);
    assert!(
        !r.body.to_ascii_lowercase().contains("x-health"),
        "probe header reached the app: {}",
        r.body
    );
    assert!(!r.body.contains(SECRET));

    let r = rig.get(&format!("/orders?health_token={SECRET}&id=7"), &[]);
    assert!(
        r.body.starts_with("GET /orders?id=7 HTTP/1.1"),
        "{}",
        r.body
    );

    // An unauthorized probe of a pass_through endpoint goes to the app,
    // still without the (wrong) secret.
    let r = rig.get("/appz", &[("x-health", "wrong")]);
    assert!(r.body.starts_with("GET /appz HTTP/1.1"), "{}", r.body);
    assert!(!r.body.contains("wrong"));
    assert_eq!(rig.app.hits(), 3);
    assert_eq!(rig.dependency_hits(), 0);
}

#[test]
fn head_has_no_body_and_other_methods_get_405() {
    let rig = Rig::start();
    let r = request(
        rig.envoy.port,
        "HEAD",
        "/readyz?verbose",
        &[("x-health", SECRET)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.raw_body_len, 0, "HEAD answered with a body");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_no_store(&r);
    for method in ["POST", "PUT", "DELETE"] {
        let r = request(
            rig.envoy.port,
            method,
            "/readyz",
            &[("x-health", SECRET), ("content-length", "0")],
        );
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    // HTTP/1.0 probes work too (old load balancers).
    let r = request_version(rig.envoy.port, "GET", "/livez", &[], "HTTP/1.0");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(rig.app.hits(), 0);
}

#[test]
fn an_invalid_policy_stops_envoy_and_the_log_names_the_field() {
    let bad = r#"{"endpoints": [{"name": "ready", "path": "/readyz", "access": "public", "checks": ["dbb"]},
                               {"name": "x", "path": "/x", "access": "public", "deadline": "soon"}],
                 "checks": [{"name": "db", "cluster": "db"}]}"#;
    let refused = Envoy::try_start(&Setup {
        policy: bad,
        clusters: &[("app", 1)],
        env: &[],
        workers: 1,
    })
    .err()
    .expect("Envoy started with an invalid policy");
    assert!(!refused.status.success());
    for line in [
        "invalid policy: endpoints[0].checks[0]: unknown check \"dbb\"",
        "invalid policy: endpoints[1].deadline: \"soon\" is not a duration",
    ] {
        assert!(
            refused.log.contains(line),
            "log lacks {line:?}:\n{}",
            refused.log
        );
    }
}

#[test]
fn a_secret_from_a_missing_env_var_is_refused() {
    let refused = Envoy::try_start(&Setup {
        policy: &policy("800ms", ""),
        clusters: &[("app", 1)],
        env: &[],
        workers: 1,
    })
    .err()
    .expect("Envoy started without the secret's env var");
    assert!(
        refused.log.contains(
            "authorization.secrets[0].env: environment variable \"PROBE_SECRET\" is not set"
        ),
        "{}",
        refused.log
    );
    assert!(!refused.log.contains(SECRET));
}
