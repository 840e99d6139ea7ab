//! HTTP/1.0 probes without a `Host` header, as load balancers send them
//! (HAProxy's `option httpchk` without a version, for one), through a real
//! Envoy with the module.
//!
//! Envoy's HTTP/1 codec judges such a request before any HTTP filter: with
//! `accept_http_10` alone it answers 400 and meshprobe never runs, so the
//! listener needs `default_host_for_http_10` too. The test bootstrap sets
//! both (as every listener in `envoy/` does); the controls take them away
//! and get Envoy's own answers, so this test fails if the setting is lost.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::deps::{DepServer, Mode};
use support::envoy::{bootstrap, wasm_path, Envoy, Setup};

const SECRET: &str = "http10-s3cret";

const POLICY: &str = r#"{
  "authorization": {"header": "x-health", "secrets": [{"value": "http10-s3cret"}]},
  "endpoints": [
    {"name": "live", "path": "/livez", "access": "public"},
    {"name": "ready", "path": "/readyz", "checks": ["db"], "ttl": "0s"}
  ],
  "checks": [{"name": "db", "cluster": "db", "path": "/health"}]
}"#;

/// What the test bootstrap's HTTP connection manager says, and what the
/// controls put in its place.
const BOTH: &str =
    "http_protocol_options: { accept_http_10: true, default_host_for_http_10: localhost }";
const ACCEPT_ONLY: &str = "http_protocol_options: { accept_http_10: true }";
const NEITHER: &str = "http_protocol_options: {}";

/// Status line and body of the answer to exactly `head` (plus the blank line
/// that ends it), read until Envoy closes the connection.
fn raw(port: u16, head: &str) -> (String, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(format!("{head}\r\n\r\n").as_bytes())
        .unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    (status, body.to_string())
}

struct Rig {
    envoy: Envoy,
    app: DepServer,
    db: DepServer,
}

/// Envoy with the test bootstrap, its `http_protocol_options` replaced by
/// `options`.
fn start(options: &str) -> Rig {
    let app = DepServer::start(Mode::Status(200));
    let db = DepServer::start(Mode::Status(200));
    let setup = Setup {
        policy: POLICY,
        clusters: &[("app", app.port), ("db", db.port)],
        env: &[],
        workers: 1,
    };
    let yaml = bootstrap(&setup, &wasm_path());
    let count = yaml.matches(BOTH).count();
    assert_eq!(
        count, 1,
        "the test bootstrap's listener no longer says {BOTH}"
    );
    let yaml = yaml.replace(BOTH, options);
    let envoy = match Envoy::try_start_yaml(&yaml, 1) {
        Ok(e) => e,
        Err(r) => panic!("Envoy did not start ({}):\n{}", r.status, r.log),
    };
    Rig { envoy, app, db }
}

#[test]
fn a_host_less_http10_probe_is_answered_by_meshprobe() {
    let rig = start(BOTH);
    let port = rig.envoy.port;

    let (status, body) = raw(port, "GET /livez HTTP/1.0");
    assert!(status.ends_with(" 200 OK"), "{status}: {body}");
    assert_eq!(body, "ok\n");

    // A protected endpoint: the secret is read and the callout runs.
    let (status, body) = raw(
        port,
        &format!("GET /readyz?verbose HTTP/1.0\r\nx-health: {SECRET}"),
    );
    assert!(status.ends_with(" 200 OK"), "{status}: {body}");
    assert_eq!(body, "[+]db ok\nready check passed\n");
    assert_eq!(rig.db.hits(), 1);

    // The way HAProxy's `option httpchk` asks by default: not a probe
    // path, so it goes to the application, with the default Host.
    let (status, _) = raw(port, "OPTIONS / HTTP/1.0");
    assert!(status.ends_with(" 200 OK"), "{status}");
    assert_eq!(rig.app.hits(), 1);
    let seen = rig.app.seen().join("\n").to_ascii_lowercase();
    assert!(seen.contains("host: localhost"), "{seen}");
}

#[test]
fn without_default_host_envoy_refuses_it_before_meshprobe() {
    let rig = start(ACCEPT_ONLY);
    let port = rig.envoy.port;

    let (status, body) = raw(port, "GET /livez HTTP/1.0");
    assert!(status.ends_with(" 400 Bad Request"), "{status}: {body}");
    assert_ne!(body, "ok\n");
    let (status, _) = raw(port, &format!("GET /readyz HTTP/1.0\r\nx-health: {SECRET}"));
    assert!(status.ends_with(" 400 Bad Request"), "{status}");
    assert_eq!(rig.db.hits(), 0, "meshprobe ran a check");

    // The same listener answers an HTTP/1.0 probe that carries a Host: the
    // 400 is about the missing header, nothing else.
    let (status, body) = raw(port, "GET /livez HTTP/1.0\r\nhost: lb.example");
    assert!(status.ends_with(" 200 OK"), "{status}: {body}");
    assert_eq!(body, "ok\n");
    assert_eq!(rig.app.hits(), 0);
}

#[test]
fn without_accept_http_10_envoy_asks_for_an_upgrade() {
    let rig = start(NEITHER);
    for head in [
        "GET /livez HTTP/1.0",
        "GET /livez HTTP/1.0\r\nhost: lb.example",
    ] {
        let (status, _) = raw(rig.envoy.port, head);
        assert!(
            status.ends_with(" 426 Upgrade Required"),
            "{head:?}: {status}"
        );
    }
    // HTTP/1.1 is unaffected.
    let (status, body) = raw(
        rig.envoy.port,
        "GET /livez HTTP/1.1\r\nhost: lb.example\r\nconnection: close",
    );
    assert!(status.ends_with(" 200 OK"), "{status}: {body}");
    assert_eq!(rig.app.hits(), 0);
}

#[test]
fn every_example_listener_that_accepts_http10_sets_a_default_host() {
    let mut stack = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy")];
    let mut listeners = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().filter(|l| l.contains("accept_http_10")) {
                listeners += 1;
                assert!(
                    line.contains("default_host_for_http_10:"),
                    "{}: HTTP/1.0 without a default host: {line}",
                    path.display()
                );
            }
        }
    }
    // demo, tiers, scoped, ecds, lds.
    assert!(listeners >= 5, "only {listeners} listeners accept HTTP/1.0");
}
