//! The `meshprobe` command and the `grpc` kind: `validate` warns where a
//! kubelet `grpc:` probe or an Istio cluster name would go wrong; `run`
//! calls real gRPC health servers (Python grpcio, `just setup`) over h2c
//! and gives the module's reasons.

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
use support::envoy::{Envoy, Options, Scratch, Setup};
use support::grpc::{GrpcServer, Kind};
use support::http::try_request;

fn meshprobe(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meshprobe"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap(),
    )
}

const POLICY: &str = r#"{
  "authorization": {"header": "x-health", "secrets": [{"value": "s"}]},
  "endpoints": [
    {"name": "ready", "path": "/readyz", "checks": ["db"], "grpc_service": ""},
    {"name": "live", "path": "/livez", "access": "public", "grpc_service": "live"},
    {"name": "gated", "path": "/gatedz", "sources": ["10.0.0.0/8"], "grpc_service": "gated"}
  ],
  "checks": [{"name": "db", "cluster": "outbound|50051||db.prod.svc.cluster.local", "kind": "grpc"}]
}"#;

#[test]
fn validate_warns_about_grpc_pitfalls() {
    let dir = Scratch::new("cli-grpc");
    let file = dir.0.join("policy.json");
    std::fs::write(&file, POLICY).unwrap();
    let file = file.display().to_string();
    let (code, out) = meshprobe(&["validate", &file]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("endpoints[0].grpc_service: a kubelet grpc: probe sends no metadata"),
        "{out}"
    );
    assert!(
        out.contains("checks[0].authority: an Istio cluster name is no valid :authority"),
        "{out}"
    );
    assert!(out.contains("0 error(s), 2 warning(s)"), "{out}");

    let fixed = POLICY.replace(
        r#""kind": "grpc"}"#,
        r#""kind": "grpc", "authority": "db.prod.svc.cluster.local:50051"}"#,
    );
    std::fs::write(&file, fixed).unwrap();
    let (_, out) = meshprobe(&["validate", &file]);
    assert!(out.contains("0 error(s), 1 warning(s)"), "{out}");
}

const RUN_POLICY: &str = r#"{
  "endpoints": [
    {"name": "overall", "path": "/o", "access": "public", "details": "always", "ttl": "0s", "checks": ["overall"]},
    {"name": "db", "path": "/db", "access": "public", "details": "always", "ttl": "0s", "checks": ["db"]},
    {"name": "nope", "path": "/nope", "access": "public", "details": "always", "ttl": "0s", "checks": ["nope"]},
    {"name": "auth", "path": "/auth", "access": "public", "details": "always", "ttl": "0s", "checks": ["auth"]},
    {"name": "slow", "path": "/slow", "access": "public", "details": "always", "ttl": "0s", "checks": ["slow"]},
    {"name": "reset", "path": "/reset", "access": "public", "details": "always", "ttl": "0s", "checks": ["reset"]},
    {"name": "closed", "path": "/closed", "access": "public", "details": "always", "ttl": "0s", "checks": ["closed"]},
    {"name": "h1", "path": "/h1", "access": "public", "details": "always", "ttl": "0s", "checks": ["h1"]}
  ],
  "checks": [
    {"name": "overall", "cluster": "dep", "kind": "grpc"},
    {"name": "db", "cluster": "dep", "kind": "grpc", "service": "db"},
    {"name": "nope", "cluster": "dep", "kind": "grpc", "service": "nope"},
    {"name": "auth", "cluster": "dep", "kind": "grpc", "authority": "db.svc:50051", "metadata": {"x-probe": "1"}},
    {"name": "slow", "cluster": "hang", "kind": "grpc", "timeout": "300ms"},
    {"name": "reset", "cluster": "reset", "kind": "grpc"},
    {"name": "closed", "cluster": "closed", "kind": "grpc"},
    {"name": "h1", "cluster": "h1", "kind": "grpc"}
  ]
}"#;

/// (exit code, check status, reason, how long it took) of `meshprobe run`
/// of one endpoint, whose one check has the endpoint's name.
fn run_one(file: &str, clusters: &[String], endpoint: &str) -> (i32, String, String, Duration) {
    let mut args = vec!["run", file, endpoint, "--format", "json"];
    for c in clusters {
        args.extend(["--cluster", c.as_str()]);
    }
    let t = Instant::now();
    let (code, out) = meshprobe(&args);
    let took = t.elapsed();
    let json = out.lines().next().unwrap_or("");
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {out}"));
    let c = &v["checks"][endpoint];
    (
        code,
        c["status"].as_str().unwrap_or("").to_string(),
        c["reason"].as_str().unwrap_or("").to_string(),
        took,
    )
}

/// `meshprobe run` calls `grpc.health.v1.Health/Check` on real servers:
/// the statuses, a service the server does not know, a hanging server, a
/// reset and a refused connection, a server that speaks no HTTP/2.
#[test]
fn run_calls_real_grpc_health_servers() {
    let mut dep = GrpcServer::start(Kind::Health);
    let mut hang = GrpcServer::start(Kind::Health);
    let reset = GrpcServer::start(Kind::Reset);
    let http1 = DepServer::start(Mode::Status(200));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = Scratch::new("cli-grpc-run");
    let file = dir.0.join("policy.json");
    std::fs::write(&file, RUN_POLICY).unwrap();
    let file = file.display().to_string();
    let clusters: Vec<String> = [
        ("dep", dep.port),
        ("hang", hang.port),
        ("reset", reset.port),
        ("closed", closed_port),
        ("h1", http1.port),
    ]
    .iter()
    .map(|(n, p)| format!("{n}=http://127.0.0.1:{p}"))
    .collect();
    let run = |ep: &str| {
        let (code, status, reason, _) = run_one(&file, &clusters, ep);
        (code, status, reason)
    };
    let fail = |reason: &str| (1, "fail".to_string(), reason.to_string());

    assert_eq!(run("overall"), (0, "pass".into(), String::new()));
    dep.set("", "NOT_SERVING");
    assert_eq!(run("overall"), fail("grpc health status NOT_SERVING"));
    // grpcio leaves UNKNOWN (0, proto3's default) out of the message.
    dep.set("", "UNKNOWN");
    assert_eq!(
        run("overall"),
        fail("grpc health answer has no status (UNKNOWN)")
    );
    dep.set("", "SERVING");
    dep.set("db", "SERVING");
    assert_eq!(run("db").0, 0);
    dep.set("db", "NOT_SERVING");
    assert_eq!(run("db"), fail("grpc health status NOT_SERVING"));
    assert_eq!(run("nope"), fail("grpc status NOT_FOUND: service unknown"));
    assert_eq!(run("auth"), (0, "pass".into(), String::new()));
    assert_eq!(dep.hits(), 7, "one call per run");

    hang.hang(true);
    let (code, status, reason, took) = run_one(&file, &clusters, "slow");
    hang.hang(false);
    assert_eq!(
        (code, status.as_str(), reason.as_str()),
        (1, "fail", "timeout after 300ms")
    );
    assert!(took < Duration::from_millis(1500), "{took:?}");

    assert_eq!(
        run("reset"),
        fail("connection failed: connection termination")
    );
    let (code, status, reason) = run("closed");
    assert_eq!((code, status.as_str()), (1, "fail"), "{reason}");
    assert!(
        reason.starts_with("connection failed: remote connection failure"),
        "{reason}"
    );
    assert_eq!(
        run("h1"),
        fail("no gRPC answer over HTTP/2 (protocol error): the cluster needs http2_protocol_options and a gRPC server")
    );
}

/// The module in a real Envoy and `meshprobe run` give the same verdicts
/// and reasons for the same gRPC servers (the plain HTTP/1 server: both
/// say it gave no gRPC answer over HTTP/2, Envoy from behind an HTTP/1
/// cluster, `run` speaking HTTP/2 to it).
#[test]
fn run_agrees_with_the_module_in_envoy() {
    if std::env::var_os("MESHPROBE_ENVOY").is_none() {
        panic!("MESHPROBE_ENVOY is not set: run with `just test` (it installs Envoy)");
    }
    let mut dep = GrpcServer::start(Kind::Health);
    let mut hang = GrpcServer::start(Kind::Health);
    let reset = GrpcServer::start(Kind::Reset);
    let http1 = DepServer::start(Mode::Status(200));
    let app = DepServer::start(Mode::Echo);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let ports = [
        ("dep", dep.port),
        ("hang", hang.port),
        ("reset", reset.port),
        ("closed", closed_port),
        ("h1", http1.port),
    ];
    let mut clusters = vec![("app", app.port)];
    clusters.extend(ports);
    let envoy = Envoy::start_with(
        &Setup {
            policy: RUN_POLICY,
            clusters: &clusters,
            env: &[],
            workers: 1,
        },
        &Options {
            http2_clusters: &["dep", "hang", "reset", "closed"],
            ..Options::default()
        },
    );
    let dir = Scratch::new("cli-grpc-module");
    let file = dir.0.join("policy.json");
    std::fs::write(&file, RUN_POLICY).unwrap();
    let file = file.display().to_string();
    let urls: Vec<String> = ports
        .iter()
        .map(|(n, p)| format!("{n}=http://127.0.0.1:{p}"))
        .collect();
    let module = |ep: &str, path: &str| -> (String, String) {
        let r = try_request(
            envoy.port,
            "GET",
            &format!("{path}?format=json"),
            &[],
            "HTTP/1.1",
        )
        .unwrap_or_else(|| panic!("no answer to {path}; Envoy log:\n{}", envoy.log_text()));
        let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
        let c = &v["checks"][ep];
        (
            c["status"].as_str().unwrap_or("").to_string(),
            c["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    let cli = |ep: &str| {
        let (_, status, reason, _) = run_one(&file, &urls, ep);
        (status, reason)
    };
    let same = |ep: &str, path: &str| {
        let (m, c) = (module(ep, path), cli(ep));
        assert_eq!(m, c, "{ep}");
        m
    };

    dep.set("db", "SERVING");
    assert_eq!(same("overall", "/o").0, "pass");
    assert_eq!(same("db", "/db").0, "pass");
    assert_eq!(same("auth", "/auth").0, "pass");
    dep.set("", "NOT_SERVING");
    dep.set("db", "UNKNOWN");
    assert_eq!(same("overall", "/o").1, "grpc health status NOT_SERVING");
    assert_eq!(
        same("db", "/db").1,
        "grpc health answer has no status (UNKNOWN)"
    );
    assert_eq!(same("nope", "/nope").0, "fail");
    hang.hang(true);
    assert_eq!(same("slow", "/slow").1, "timeout after 300ms");
    hang.hang(false);
    assert_eq!(
        same("reset", "/reset").1,
        "connection failed: connection termination"
    );
    // Envoy's transport failure detail varies by release.
    for (ep, path, prefix) in [
        (
            "closed",
            "/closed",
            "connection failed: remote connection failure",
        ),
        ("h1", "/h1", "no gRPC answer over HTTP/2 ("),
    ] {
        let (m, c) = (module(ep, path), cli(ep));
        assert_eq!((m.0.as_str(), c.0.as_str()), ("fail", "fail"), "{ep}");
        assert!(
            m.1.starts_with(prefix) && c.1.starts_with(prefix),
            "{m:?} {c:?}"
        );
    }
}
