//! The fault matrix, end to end through a real Envoy: dependencies that
//! misbehave in every way we could think of, probes that are malformed or
//! hostile, the protocols a probe may come in, clients that go away, a
//! probe storm, and policies that Envoy must refuse: one module per section
//! (`dependencies`, `probes`, `leaving`, `load`, `config`), one test binary.
//!
//! Timing assertions allow [`MARGIN`] past the time an answer is due (the
//! deadline, or the timeout that ends a run earlier). Measured on the
//! shared 2-core machine with the whole suite running in parallel, answers
//! came at most 30 ms after that time (storm: 425 ms for checks timing out
//! at 400 ms); 250 ms leaves room for a busier machine and still fails on
//! a probe that waits for a second run or for a lost callback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../support/mod.rs"]
mod support;

mod config;
mod dependencies;
mod leaving;
mod load;
mod probes;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::deps::{raw_response, Mode};
use support::envoy::Options;
use support::http::{get, Response};
use support::stack::Stack;

const SECRET: &str = "faults-s3cret";

/// A passing verbose `/readyz` over check `db`.
const VERBOSE_OK: &str = "[+]db ok\nready check passed\n";

/// Allowed lateness of an answer past its deadline (see the module doc).
const MARGIN: Duration = Duration::from_millis(250);

fn auth() -> (&'static str, &'static str) {
    ("x-health", SECRET)
}

/// Public `/livez`; protected `/readyz` (no cache) over every check given
/// (JSON objects); the secret from the VM environment, in every carrier.
fn policy(deadline: &str, checks: &[&str]) -> String {
    policy_ttl(deadline, "0s", checks)
}

fn policy_ttl(deadline: &str, ttl: &str, checks: &[&str]) -> String {
    let names: Vec<String> = checks
        .iter()
        .map(|c| {
            let v: Value = serde_json::from_str(c).unwrap();
            v["name"].to_string()
        })
        .collect();
    format!(
        r#"{{
  "authorization": {{"header": "x-health", "secrets": [{{"env": "TOKEN"}}], "path_prefix": "/health",
                     "query_param": "health_token", "bearer": true}},
  "endpoints": [
    {{"name": "live", "path": "/livez", "access": "public"}},
    {{"name": "ready", "path": "/readyz", "ttl": "{ttl}", "deadline": "{deadline}", "checks": [{}]}}
  ],
  "checks": [{}]
}}"#,
        names.join(", "),
        checks.join(",\n")
    )
}

fn rig(deadline: &str, checks: &[&str], deps: &[(&str, Mode)]) -> Stack {
    rig_with(deadline, checks, deps, &Options::default())
}

fn rig_with(deadline: &str, checks: &[&str], deps: &[(&str, Mode)], options: &Options) -> Stack {
    Stack::with_options(
        &policy(deadline, checks),
        deps,
        &[("TOKEN", SECRET)],
        1,
        options,
    )
}

/// `/readyz` as JSON: the answer and its parsed body.
fn report(s: &Stack) -> (Response, Value) {
    let r = s.get("/readyz?format=json", &[auth()]);
    let v = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"));
    (r, v)
}

/// (status, reason) of check `name` in a JSON report; reason "" on a pass.
fn verdict(v: &Value, name: &str) -> (String, String) {
    let c = &v["checks"][name];
    assert!(c.is_object(), "no check {name} in {v}");
    (
        c["status"].as_str().unwrap().to_string(),
        c["reason"].as_str().unwrap_or("").to_string(),
    )
}

fn fail(reason: &str) -> (String, String) {
    ("fail".into(), reason.into())
}

fn pass() -> (String, String) {
    ("pass".into(), String::new())
}

/// Envoy is alive and the module answers: admin `/ready` and liveness.
fn assert_healthy(s: &Stack) {
    assert_eq!(
        s.envoy
            .admin_get("/ready")
            .map(|(st, b)| (st, b.trim().to_string())),
        Some((200, "LIVE".to_string())),
        "Envoy is not ready:\n{}",
        s.envoy.log_text()
    );
    let r = s.get("/livez", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
}

fn within(r: &Response, deadline_ms: u64) {
    println!("answered in {:?} (due within {deadline_ms} ms)", r.elapsed);
    let limit = Duration::from_millis(deadline_ms) + MARGIN;
    assert!(
        r.elapsed <= limit,
        "answered after {:?}, deadline {deadline_ms}ms (+{MARGIN:?})",
        r.elapsed
    );
}
