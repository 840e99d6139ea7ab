//! `meshprobe run` and `meshprobe check` as a user runs them: `run` against
//! real dependency servers on 127.0.0.1 (pass, fail, hanging, garbage,
//! closing, refused), giving the same verdicts and reasons as the module in
//! a real Envoy; `check` against a real Envoy with the module (pass, fail,
//! 404, connection refused, timeout), with its exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};
use support::deps::{DepServer, Mode};
use support::envoy::Scratch;
use support::stack::Stack;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn meshprobe(args: &[&str]) -> Out {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_meshprobe"))
        .args(args)
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        took: start.elapsed(),
    }
}

fn strs(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

/// A port nobody listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const POLICY: &str = r#"{
  "endpoints": [
    {"name": "ready", "path": "/readyz", "access": "public", "details": "always", "ttl": "0s",
     "checks": ["pass", "fail", "hanging", "garbage", "closer", "refused", "optional"], "deadline": "800ms"},
    {"name": "fine", "path": "/finez", "access": "public", "details": "always", "ttl": "0s", "checks": ["pass", "optional"]}
  ],
  "checks": [
    {"name": "pass", "cluster": "pass", "path": "/health"},
    {"name": "fail", "cluster": "fail", "path": "/health"},
    {"name": "hanging", "cluster": "hanging", "timeout": "300ms"},
    {"name": "garbage", "cluster": "garbage", "expect_body": {"pointer": "/status", "equals": "ok"}},
    {"name": "closer", "cluster": "closer"},
    {"name": "refused", "cluster": "closed"},
    {"name": "optional", "cluster": "fail", "critical": false}
  ]
}"#;

fn deps() -> Vec<(&'static str, Mode)> {
    vec![
        ("pass", Mode::Status(200)),
        ("fail", Mode::Status(500)),
        ("hanging", Mode::Hang),
        ("garbage", Mode::parse("garbage").unwrap()),
        ("closer", Mode::Close),
    ]
}

/// `{check: (status, reason)}` of a JSON view.
fn verdicts(body: &str) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let mut out: Vec<(String, String, String)> = v["checks"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, c)| {
            (
                name.clone(),
                c["status"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The run against servers started here (no Envoy needed): exit codes,
/// reasons, and the answer within the deadline.
#[test]
fn run_against_real_dependencies() {
    let servers: Vec<(&str, DepServer)> = deps()
        .into_iter()
        .map(|(n, m)| (n, DepServer::start(m)))
        .collect();
    let dir = Scratch::new("cli-run");
    let file = dir.0.join("policy.json");
    std::fs::write(&file, POLICY).unwrap();
    let file = file.display().to_string();
    let mut args = vec!["run".to_string(), file.clone(), "ready".into()];
    for (name, s) in &servers {
        args.push("--cluster".into());
        args.push(format!("{name}=http://127.0.0.1:{}", s.port));
    }
    args.push("--cluster".into());
    args.push(format!("closed=http://127.0.0.1:{}", closed_port()));
    let with = |extra: &[&str]| -> Vec<String> {
        let mut a = args.clone();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    let out = meshprobe(&strs(&with(&["--format", "json"])));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    // The deadline (800ms) bounds the run even with a hanging dependency;
    // the hanging check failed at its own timeout.
    assert!(out.took < Duration::from_millis(1500), "{:?}", out.took);
    let got = verdicts(&out.stdout);
    let want = [
        (
            "closer",
            "fail",
            "connection failed: connection termination",
        ),
        ("fail", "fail", "unexpected status 500 (expected 200-299)"),
        (
            "garbage",
            "fail",
            "body is not JSON (expected value at line 1 column 1)",
        ),
        ("hanging", "fail", "timeout after 300ms"),
        (
            "optional",
            "warn",
            "unexpected status 500 (expected 200-299)",
        ),
        ("pass", "pass", ""),
    ];
    for (name, status, reason) in want {
        let g = got.iter().find(|(n, _, _)| n == name).unwrap();
        assert_eq!((g.1.as_str(), g.2.as_str()), (status, reason), "{name}");
    }
    let refused = got.iter().find(|(n, _, _)| n == "refused").unwrap();
    assert_eq!(refused.1, "fail");
    assert!(
        refused
            .2
            .starts_with("connection failed: remote connection failure"),
        "{refused:?}"
    );
    assert_eq!(out.stderr.trim(), "meshprobe run: ready fail (503)");

    // The endpoint's own view (text), verbose.
    let text = meshprobe(&strs(&with(&["--verbose"])));
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains("[-]hanging failed: timeout after 300ms"),
        "{}",
        text.stdout
    );

    // A cluster given no URL fails as in Envoy (an unknown cluster).
    let mut partial: Vec<String> = args.iter().take(3).cloned().collect();
    partial.extend(["--format".into(), "json".into()]);
    let out = meshprobe(&strs(&partial));
    assert_eq!(out.code, 1);
    let got = verdicts(&out.stdout);
    assert!(got.contains(&(
        "pass".into(),
        "fail".into(),
        "dispatch failed: unknown cluster \"pass\"".into()
    )));

    // pass + a failing non-critical check: warn, exit 0.
    let mut fine = vec!["run".to_string(), file, "fine".into()];
    for (name, s) in &servers {
        fine.push("--cluster".into());
        fine.push(format!("{name}=http://127.0.0.1:{}", s.port));
    }
    fine.extend(["--format".into(), "json".into()]);
    let out = meshprobe(&strs(&fine));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["status"], "warn");
}

fn envoy_available() -> bool {
    std::env::var_os("MESHPROBE_ENVOY").is_some()
}

/// The module in a real Envoy and `meshprobe run` give the same verdicts
/// and reasons for the same dependencies.
#[test]
fn run_agrees_with_the_module_in_envoy() {
    if !envoy_available() {
        panic!("MESHPROBE_ENVOY is not set: run with `just test` (it installs Envoy)");
    }
    let stack = Stack::start(POLICY, &deps(), &[]);
    let module = stack.get("/readyz?format=json", &[]);
    assert_eq!(module.status, 503, "{}", module.body);
    let module = verdicts(&module.body);

    let dir = Scratch::new("cli-run");
    let file = dir.0.join("policy.json");
    std::fs::write(&file, POLICY).unwrap();
    let mut args = vec![
        "run".to_string(),
        file.display().to_string(),
        "ready".into(),
        "--format".into(),
        "json".into(),
    ];
    for (name, _) in deps() {
        args.push("--cluster".into());
        args.push(format!("{name}=http://127.0.0.1:{}", stack.dep(name).port));
    }
    args.push("--cluster".into());
    args.push(format!("closed=http://127.0.0.1:{}", closed_port()));
    let out = meshprobe(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let cli = verdicts(&out.stdout);
    assert_eq!(module.len(), cli.len());
    for (m, c) in module.iter().zip(&cli) {
        assert_eq!((&m.0, &m.1), (&c.0, &c.1), "{module:?}\n{cli:?}");
        if m.0 == "refused" {
            // Envoy's transport failure detail varies by release.
            let prefix = "connection failed: remote connection failure";
            assert!(
                m.2.starts_with(prefix) && c.2.starts_with(prefix),
                "{m:?} {c:?}"
            );
        } else {
            assert_eq!(m.2, c.2, "{}", m.0);
        }
    }
}

const SECRET: &str = "check-s3cret-value";

const CHECK_POLICY: &str = r#"{
  "authorization": {"header": "x-health", "secrets": [{"env": "TOKEN"}]},
  "endpoints": [
    {"name": "live", "path": "/livez", "access": "public"},
    {"name": "ready", "path": "/readyz", "checks": ["db"], "ttl": "0s"},
    {"name": "slow", "path": "/slowz", "access": "public", "checks": ["hanging"], "ttl": "0s", "deadline": "3s"},
    {"name": "soft", "path": "/softz", "access": "public", "checks": ["db"], "ttl": "0s", "details": "always",
     "format": "json", "status_codes": {"fail": 200}}
  ],
  "checks": [
    {"name": "db", "cluster": "db", "path": "/health"},
    {"name": "hanging", "cluster": "hanging", "timeout": "3s"}
  ]
}"#;

/// `meshprobe check` against a real Envoy with the module.
#[test]
fn check_against_a_real_envoy() {
    if !envoy_available() {
        panic!("MESHPROBE_ENVOY is not set: run with `just test` (it installs Envoy)");
    }
    let stack = Stack::start(
        CHECK_POLICY,
        &[("db", Mode::Status(200)), ("hanging", Mode::Hang)],
        &[("TOKEN", SECRET)],
    );
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", stack.envoy.port);
    let header = format!("x-health: {SECRET}");
    let check = |args: &[&str]| -> Out {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        let out = meshprobe(&all);
        assert!(
            !out.stdout.contains(SECRET) && !out.stderr.contains(SECRET),
            "{args:?} printed the secret: {}{}",
            out.stdout,
            out.stderr
        );
        out
    };

    // Liveness: 200, exit 0, the body printed.
    let out = check(&[&url("/livez")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "ok");

    // Readiness with the secret: 0 while db passes, 1 when it fails (503).
    let out = check(&[&url("/readyz"), "-H", &header]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    stack.dep("db").set_mode(Mode::Status(500));
    let out = check(&[&url("/readyz"), "-H", &header]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.trim(), "fail");
    let json = check(&[&url("/readyz"), "-H", &header, "--format", "json"]);
    assert_eq!(json.code, 1);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["status"], 503);
    assert_eq!(v["exit"], 1);

    // A fail status in a 200 answer (status_codes.fail: 200) is a failure.
    let out = check(&[&url("/softz")]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    stack.dep("db").set_mode(Mode::Status(200));

    // Without the secret: the module answers 404: neither 2xx nor 5xx.
    let out = check(&[&url("/readyz")]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("status 404 is neither 2xx nor 5xx"),
        "{}",
        out.stderr
    );

    // Timeout: the probe waits for its hanging check longer than we do.
    let out = check(&[&url("/slowz"), "--timeout", "200ms", "-H", &header]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.ends_with(": timeout after 200ms\n"),
        "{}",
        out.stderr
    );
    // Not the module's answer, which comes after the 3s callout timeout.
    assert!(out.took < Duration::from_millis(2000), "{:?}", out.took);

    // Connection refused.
    let refused = format!("http://127.0.0.1:{}/livez", closed_port());
    let out = check(&[&refused, "-H", &header]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.trim(),
        format!("meshprobe check: {refused}: connection refused")
    );
    let json = check(&[&refused, "--format", "json", "-H", &header]);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["exit"], 2);
    assert_eq!(v["error"], "connection refused");
}
