//! gRPC dependency checks (`kind: grpc`) end to end: a real Envoy with the
//! module calls real `grpc.health.v1` servers (Python grpcio, see
//! tests/support/grpc.rs) behind HTTP/2 clusters, and a plain HTTP/1 server
//! behind an HTTP/1 cluster.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::deps::{DepServer, Mode};
use support::envoy::{Envoy, Options, Setup};
use support::grpc::{GrpcServer, Kind};
use support::http::try_request;

/// One public endpoint per check (`/c/<name>`, no cache, details for all).
fn policy(checks: &[&str]) -> String {
    let endpoints: Vec<String> = checks
        .iter()
        .map(|c| {
            let v: Value = serde_json::from_str(c).unwrap();
            let name = v["name"].as_str().unwrap();
            format!(
                r#"{{"name": "{name}", "path": "/c/{name}", "access": "public", "details": "always", "ttl": "0s", "deadline": "1500ms", "format": "json", "checks": ["{name}"]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"endpoints": [{}], "checks": [{}]}}"#,
        endpoints.join(","),
        checks.join(",")
    )
}

/// (HTTP status, check status, reason) of `/c/<name>`.
fn probe(envoy: &Envoy, name: &str) -> (u16, String, String) {
    let r = try_request(envoy.port, "GET", &format!("/c/{name}"), &[], "HTTP/1.1")
        .unwrap_or_else(|| panic!("no answer to /c/{name}; Envoy log:\n{}", envoy.log_text()));
    let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    let c = &v["checks"][name];
    (
        r.status,
        c["status"].as_str().unwrap_or("").to_string(),
        c["reason"].as_str().unwrap_or("").to_string(),
    )
}

struct Rig {
    envoy: Envoy,
    grpc: GrpcServer,
    _others: Vec<GrpcServer>,
    _http1: DepServer,
}

/// Clusters: `dep` (HTTP/2, the health server), `reset` (HTTP/2, resets),
/// `closed` (HTTP/2, nobody listens), `h1` (HTTP/1, a plain HTTP server),
/// `h1grpc` (HTTP/1 cluster in front of the gRPC server).
fn rig(checks: &[&str]) -> Rig {
    let grpc = GrpcServer::start(Kind::Health);
    let reset = GrpcServer::start(Kind::Reset);
    let http1 = DepServer::start(Mode::Status(200));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = DepServer::start(Mode::Echo);
    let policy = policy(checks);
    let envoy = Envoy::start_with(
        &Setup {
            policy: &policy,
            clusters: &[
                ("app", app.port),
                ("dep", grpc.port),
                ("reset", reset.port),
                ("closed", closed_port),
                ("h1", http1.port),
                ("h1grpc", grpc.port),
            ],
            env: &[],
            workers: 1,
        },
        &Options {
            http2_clusters: &["dep", "reset", "closed"],
            ..Options::default()
        },
    );
    Rig {
        envoy,
        grpc,
        _others: vec![reset],
        _http1: http1,
    }
}

fn callouts(envoy: &Envoy, check: &str, outcome: &str) -> u64 {
    envoy
        .stat(&format!(
            "wasmcustom.meshprobe.check.{check}.outcome.{outcome}.callouts"
        ))
        .unwrap_or(0)
}

const OVERALL: &str = r#"{"name": "overall", "cluster": "dep", "kind": "grpc"}"#;

/// SERVING passes; NOT_SERVING and UNKNOWN fail naming the status; the
/// server's state switched at run time is seen by the next probe (no cache).
#[test]
fn serving_passes_and_every_other_status_fails_naming_it() {
    let mut r = rig(&[OVERALL]);
    assert_eq!(
        probe(&r.envoy, "overall"),
        (200, "pass".into(), String::new())
    );
    r.grpc.set("", "NOT_SERVING");
    assert_eq!(
        probe(&r.envoy, "overall"),
        (503, "fail".into(), "grpc health status NOT_SERVING".into())
    );
    // grpcio leaves UNKNOWN (0, proto3's default) out of the message.
    r.grpc.set("", "UNKNOWN");
    assert_eq!(
        probe(&r.envoy, "overall"),
        (
            503,
            "fail".into(),
            "grpc health answer has no status (UNKNOWN)".into()
        )
    );
    r.grpc.set("", "SERVING");
    assert_eq!(probe(&r.envoy, "overall").0, 200);
    assert_eq!(r.grpc.hits(), 4, "one call per probe");
    assert_eq!(callouts(&r.envoy, "overall", "pass"), 2);
    assert_eq!(callouts(&r.envoy, "overall", "fail"), 2);
}

/// `service` is sent in the request; a service the server does not know is
/// gRPC NOT_FOUND, read as "service unknown".
#[test]
fn the_service_field_selects_the_service() {
    let mut r = rig(&[
        r#"{"name": "db", "cluster": "dep", "kind": "grpc", "service": "db"}"#,
        r#"{"name": "nope", "cluster": "dep", "kind": "grpc", "service": "nope"}"#,
        OVERALL,
    ]);
    r.grpc.set("db", "SERVING");
    assert_eq!(probe(&r.envoy, "db").0, 200);
    r.grpc.set("db", "NOT_SERVING");
    assert_eq!(
        probe(&r.envoy, "db"),
        (503, "fail".into(), "grpc health status NOT_SERVING".into())
    );
    assert_eq!(
        probe(&r.envoy, "overall").0,
        200,
        "the overall health is apart"
    );
    assert_eq!(
        probe(&r.envoy, "nope"),
        (
            503,
            "fail".into(),
            "grpc status NOT_FOUND: service unknown".into()
        )
    );
}

/// A server that hangs fails at the check's timeout; `warn_after` and
/// `critical: false` work as for HTTP checks.
#[test]
fn a_hanging_server_times_out_and_slow_warns() {
    let mut r = rig(&[
        r#"{"name": "slow", "cluster": "dep", "kind": "grpc", "timeout": "300ms"}"#,
        r#"{"name": "soft", "cluster": "dep", "kind": "grpc", "timeout": "300ms", "critical": false}"#,
    ]);
    r.grpc.hang(true);
    let t = Instant::now();
    let got = probe(&r.envoy, "slow");
    let took = t.elapsed();
    assert_eq!(got, (503, "fail".into(), "timeout after 300ms".into()));
    // The engine judges a callout out of time by Envoy's clock, which may
    // run a few ms behind this one (as tests/faults/dependencies.rs allows).
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(800),
        "{took:?}"
    );
    assert_eq!(callouts(&r.envoy, "slow", "timeout"), 1);
    // Not critical: the endpoint warns (200), the check still fails.
    let (status, check, reason) = probe(&r.envoy, "soft");
    assert_eq!(
        (status, check.as_str(), reason.as_str()),
        (200, "warn", "timeout after 300ms")
    );
    r.grpc.hang(false);
}

#[test]
fn warn_after_applies_to_grpc_checks() {
    let mut r = rig(&[
        r#"{"name": "w", "cluster": "dep", "kind": "grpc", "timeout": "900ms", "warn_after": "100ms"}"#,
    ]);
    r.grpc.hang(true);
    let waiter = std::thread::spawn({
        let port = r.envoy.port;
        move || try_request(port, "GET", "/c/w", &[], "HTTP/1.1").unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    r.grpc.hang(false);
    let answer = waiter.join().unwrap();
    let v: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(v["status"], "warn", "{}", answer.body);
    let reason = v["checks"]["w"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("slow: took "), "{reason}");
}

/// A server that resets the connection, and a port nobody listens on.
#[test]
fn refused_and_reset_connections_name_the_cause() {
    let r = rig(&[
        r#"{"name": "reset", "cluster": "reset", "kind": "grpc"}"#,
        r#"{"name": "closed", "cluster": "closed", "kind": "grpc"}"#,
    ]);
    assert_eq!(
        probe(&r.envoy, "reset"),
        (
            503,
            "fail".into(),
            "connection failed: connection termination".into()
        )
    );
    // Envoy 1.40 ends the reason there; 1.36 adds ", transport failure
    // reason: delayed connect error: Connection refused".
    let (status, check, reason) = probe(&r.envoy, "closed");
    assert_eq!((status, check.as_str()), (503, "fail"));
    assert!(
        reason.starts_with("connection failed: remote connection failure"),
        "{reason}"
    );
    assert_eq!(callouts(&r.envoy, "closed", "refused"), 1);
}

/// gRPC needs HTTP/2 to the server. An HTTP/1 cluster in front of the gRPC
/// server: the server refuses HTTP/1.1 and Envoy resets with a protocol
/// error. A plain HTTP/1 server behind an HTTP/1 cluster: its 200 is no
/// gRPC answer (Envoy: INTERNAL, no message).
#[test]
fn a_cluster_that_is_not_http2_says_so() {
    let r = rig(&[
        r#"{"name": "h1grpc", "cluster": "h1grpc", "kind": "grpc"}"#,
        r#"{"name": "h1", "cluster": "h1", "kind": "grpc"}"#,
    ]);
    assert_eq!(
        probe(&r.envoy, "h1grpc"),
        (503, "fail".into(), "no gRPC answer over HTTP/2 (protocol error): the cluster needs http2_protocol_options and a gRPC server".into())
    );
    assert_eq!(
        probe(&r.envoy, "h1"),
        (503, "fail".into(), "no gRPC answer over HTTP/2 (grpc status INTERNAL without a message: a plain HTTP answer?): the cluster needs http2_protocol_options and a gRPC server".into())
    );
    assert_eq!(callouts(&r.envoy, "h1", "protocol_error"), 1);
}

/// `authority` goes to Envoy in a GrpcService proto; a cluster name that
/// would parse as one (`h1`) is never handed over bare (Envoy 1.40 aborts
/// on it); an unknown cluster fails the call as it is sent.
#[test]
fn authority_and_cluster_names() {
    let r = rig(&[
        r#"{"name": "auth", "cluster": "dep", "kind": "grpc", "authority": "db.svc:50051", "metadata": {"x-probe": "1"}}"#,
        r#"{"name": "unknown", "cluster": "nowhere", "kind": "grpc"}"#,
    ]);
    assert_eq!(probe(&r.envoy, "auth"), (200, "pass".into(), String::new()));
    assert_eq!(
        probe(&r.envoy, "unknown"),
        (
            503,
            "fail".into(),
            "no healthy upstream: cluster \"nowhere\" failed the callout as it was sent".into()
        )
    );
}
