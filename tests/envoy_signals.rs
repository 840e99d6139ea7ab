//! Envoy's own state as checks: the `envoy_server`, `envoy_cluster` and
//! `envoy_memory` kinds read Envoy's admin API through a cluster to the
//! admin port, in a real Envoy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};
use support::deps::{DepServer, Mode};
use support::envoy::{bootstrap, wasm_path, Envoy, Setup};
use support::http::{get, request, Response};

const POLICY: &str = r#"{
  "endpoints": [
    {"name": "live", "path": "/livez", "access": "public"},
    {"name": "ready", "path": "/readyz", "access": "public", "details": "always", "ttl": "0s",
     "checks": ["envoy", "backend", "memory"]},
    {"name": "tight", "path": "/tightz", "access": "public", "details": "always", "ttl": "0s",
     "checks": ["memory_tight"]}
  ],
  "checks": [
    {"name": "envoy", "cluster": "envoy_admin", "kind": "envoy_server"},
    {"name": "backend", "cluster": "envoy_admin", "kind": "envoy_cluster", "target_cluster": "backend",
     "min_healthy_percent": 50},
    {"name": "memory", "cluster": "envoy_admin", "kind": "envoy_memory", "memory_limit": 4294967296},
    {"name": "memory_tight", "cluster": "envoy_admin", "kind": "envoy_memory", "memory_limit": 1000}
  ]
}"#;

/// A free port on 127.0.0.1 (for the admin listener, which the admin
/// cluster must know before Envoy starts).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Rig {
    envoy: Envoy,
    backends: [DepServer; 2],
    _app: DepServer,
}

/// Envoy whose admin port is also the cluster `envoy_admin`, and a
/// `backend` cluster of two hosts under active HTTP health checking.
fn rig() -> Rig {
    let app = DepServer::start(Mode::Echo);
    let backends = [
        DepServer::start(Mode::Status(200)),
        DepServer::start(Mode::Status(200)),
    ];
    let admin = free_port();
    let clusters = [
        ("app", app.port),
        ("envoy_admin", admin),
        ("backend", backends[0].port),
    ];
    let yaml = bootstrap(
        &Setup {
            policy: POLICY,
            clusters: &clusters,
            env: &[],
            workers: 1,
        },
        &wasm_path(),
    );
    let fixed_admin = yaml.replacen(
        "admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }",
        &format!("admin:\n  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}"),
        1,
    );
    assert_ne!(
        fixed_admin, yaml,
        "the admin block of the bootstrap changed shape"
    );
    // Two hosts in `backend`, checked every 100 ms (also without traffic:
    // the default `no_traffic_interval` is 60 s); one failed check marks a
    // host unhealthy, one passing check brings it back.
    let backend_block = format!(
        r#"    - name: "backend"
      connect_timeout: 0.25s
      health_checks:
        - timeout: 1s
          interval: 0.1s
          no_traffic_interval: 0.1s
          unhealthy_threshold: 1
          healthy_threshold: 1
          http_health_check: {{ path: /health }}
      load_assignment:
        cluster_name: "backend"
        endpoints: [{{ lb_endpoints: [
          {{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }} }} }},
          {{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }} }} }}] }}]
"#,
        backends[0].port, backends[1].port
    );
    let start = fixed_admin.find("    - name: \"backend\"").unwrap();
    let end = start + fixed_admin[start..].find("]\n").unwrap() + 2;
    let mut yaml = fixed_admin.clone();
    yaml.replace_range(start..end, &backend_block);
    let envoy = match Envoy::try_start_yaml(&yaml, 1) {
        Ok(e) => e,
        Err(r) => panic!("Envoy did not start ({}):\n{}\n{yaml}", r.status, r.log),
    };
    assert_eq!(envoy.admin, admin);
    Rig {
        envoy,
        backends,
        _app: app,
    }
}

fn ready(rig: &Rig) -> (Response, serde_json::Value) {
    let r = get(rig.envoy.port, "/readyz?format=json", &[]);
    let json: serde_json::Value =
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body));
    (r, json)
}

fn check<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["checks"]
        .get(name)
        .unwrap_or_else(|| panic!("no check {name} in {json}"))
}

/// Polls readiness until `want(status, json)` holds, or panics after 5 s.
fn ready_until(
    rig: &Rig,
    what: &str,
    want: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (r, json) = ready(rig);
        if want(r.status, &json) {
            return json;
        }
        if Instant::now() >= deadline {
            let clusters = rig.envoy.admin_get("/clusters?format=json").map(|(_, b)| b);
            let hosts = clusters
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .and_then(|v| {
                    v["cluster_statuses"]
                        .as_array()?
                        .iter()
                        .find(|c| c["name"] == "backend")
                        .map(|c| c["host_statuses"].to_string())
                });
            panic!(
                "{what}: last answer {} {json}; backend hosts: {hosts:?}; health checks seen: {} {}",
                r.status,
                rig.backends[0].hits(),
                rig.backends[1].hits()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn admin_post(rig: &Rig, path: &str) {
    let r = request(rig.envoy.admin, "POST", path, &[]);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
}

#[test]
fn draining_fails_readiness_while_liveness_stays_200() {
    let rig = rig();
    let json = ready_until(&rig, "all pass at first", |s, _| s == 200);
    assert_eq!(check(&json, "envoy")["status"], "pass", "{json}");
    assert_eq!(check(&json, "memory")["status"], "pass", "{json}");

    admin_post(&rig, "/healthcheck/fail");
    let json = ready_until(&rig, "readiness after /healthcheck/fail", |s, _| s == 503);
    let envoy = check(&json, "envoy");
    assert_eq!(envoy["status"], "fail", "{json}");
    assert_eq!(envoy["reason"], "Envoy is DRAINING", "{json}");
    // The other checks are unaffected; liveness never calls out.
    assert_eq!(check(&json, "backend")["status"], "pass", "{json}");
    let live = get(rig.envoy.port, "/livez", &[]);
    assert_eq!(live.status, 200, "{}", live.body);

    admin_post(&rig, "/healthcheck/ok");
    let json = ready_until(&rig, "readiness after /healthcheck/ok", |s, _| s == 200);
    assert_eq!(check(&json, "envoy")["status"], "pass", "{json}");
}

#[test]
fn a_cluster_whose_hosts_are_down_fails_its_check() {
    let rig = rig();
    ready_until(&rig, "both backend hosts healthy", |s, j| {
        s == 200 && check(j, "backend")["status"] == "pass"
    });
    // One of two down: 50% healthy is still enough.
    rig.backends[0].set_mode(Mode::Status(503));
    let json = ready_until(&rig, "one host down", |_, j| {
        rig.envoy
            .admin_get("/clusters?format=json")
            .is_some_and(|(_, b)| b.contains("failed_active_health_check"))
            && check(j, "backend")["status"] == "pass"
    });
    assert_eq!(check(&json, "backend")["status"], "pass", "{json}");
    // Both down: the check fails and so does readiness.
    rig.backends[1].set_mode(Mode::Status(503));
    let json = ready_until(&rig, "both hosts down", |s, _| s == 503);
    assert_eq!(
        check(&json, "backend")["reason"],
        "0 of 2 hosts healthy (0%, minimum 50%)",
        "{json}"
    );
    assert_eq!(check(&json, "envoy")["status"], "pass", "{json}");
    // Recovery is seen too.
    rig.backends[0].set_mode(Mode::Status(200));
    rig.backends[1].set_mode(Mode::Status(200));
    ready_until(&rig, "hosts back", |s, _| s == 200);
}

#[test]
fn memory_over_its_limit_warns() {
    let rig = rig();
    let r = get(rig.envoy.port, "/tightz?format=json", &[]);
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(r.status, 200, "a warning keeps 200: {json}");
    assert_eq!(json["status"], "warn", "{json}");
    let mem = check(&json, "memory_tight");
    let reason = mem["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("allocated ") && reason.ends_with(" is over the limit 1000 B"),
        "{json}"
    );
    // The figure is Envoy's own: compare with /memory read directly.
    let (_, body) = rig.envoy.admin_get("/memory").unwrap();
    let direct: serde_json::Value = serde_json::from_str(&body).unwrap();
    let allocated: u64 = direct["allocated"].as_str().unwrap().parse().unwrap();
    assert!(
        allocated > 1000 << 10,
        "Envoy allocates more than 1000 KiB: {allocated}"
    );
    assert!(reason.contains("MiB"), "{reason}");
    // Its callout outcome is `warn` (the typed cause's label), not `fail`.
    let outcome = |o: &str| {
        rig.envoy.stat(&format!(
            "wasmcustom.meshprobe.check.memory_tight.outcome.{o}.callouts"
        ))
    };
    assert_eq!(outcome("warn"), Some(1));
    assert_eq!(outcome("fail"), None);
}
