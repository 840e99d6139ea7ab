//! Source gating through a real Envoy: `sources` accepts probes only from
//! the listed address ranges, read from Envoy's `source.address` property
//! (this test's client connects from 127.0.0.1).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::deps::Mode;
use support::stack::Stack;

const SECRET: &str = "src-s3cret";

fn policy(sources: &str, live_sources: &str) -> String {
    format!(
        r#"{{
  "authorization": {{"header": "x-health", "secrets": [{{"value": "{SECRET}"}}], "query_param": "token",
                     "sources": {sources}}},
  "endpoints": [
    {{"name": "ready", "path": "/readyz", "checks": ["db"], "ttl": "0s"}},
    {{"name": "deep", "path": "/deepz", "checks": ["db"], "ttl": "0s", "on_unauthorized": "forbidden"}},
    {{"name": "live", "path": "/livez", "access": "public" {live_sources}}}
  ],
  "checks": [{{"name": "db", "cluster": "db"}}]
}}"#
    )
}

#[test]
fn probes_from_outside_the_ranges_are_refused_even_with_the_secret() {
    let s = Stack::start(
        &policy(r#"["10.0.0.0/8", "fd00::/8"]"#, ""),
        &[("db", Mode::Status(200))],
        &[],
    );
    let h = [("x-health", SECRET)];
    for (path, headers, want) in [
        ("/readyz", &h[..], 404),
        ("/readyz?token=src-s3cret", &[][..], 404),
        ("/deepz", &h[..], 403),
        ("/livez", &[][..], 404),
    ] {
        let r = s.get(path, headers);
        assert_eq!(r.status, want, "{path}: {}", r.body);
        assert!(!r.body.contains("db"), "{path}: {}", r.body);
    }
    assert_eq!(s.dependency_hits(), 0, "a refused probe caused a callout");
    // Ordinary traffic is not gated, and still loses the probe header.
    let r = s.get("/orders", &h);
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("GET /orders "), "{}", r.body);
    assert!(
        !r.body.to_ascii_lowercase().contains("x-health"),
        "{}",
        r.body
    );
    // Refusals are counted like any unauthorized probe.
    let refused = s
        .envoy
        .stat("wasmcustom.meshprobe.endpoint.ready.unauthorized");
    assert_eq!(refused, Some(2));
}

#[test]
fn probes_from_inside_the_ranges_are_answered() {
    // Loopback is allowed by the policy; liveness narrows it to another
    // range with its own `sources`.
    let s = Stack::start(
        &policy(
            r#"["10.0.0.0/8", "127.0.0.0/8"]"#,
            r#", "sources": ["192.0.2.0/24"]"#,
        ),
        &[("db", Mode::Status(200))],
        &[],
    );
    let r = s.get("/readyz?verbose", &[("x-health", SECRET)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("[+]db ok"), "{}", r.body);
    assert_eq!(s.dependency_hits(), 1);
    // Without the secret, from inside: the usual 404 for a protected endpoint.
    assert_eq!(s.get("/readyz", &[]).status, 404);
    // The endpoint's own ranges win over the policy's.
    assert_eq!(s.get("/livez", &[]).status, 404);
}
