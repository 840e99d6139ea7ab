//! gRPC health probes gated by the policy, end to end: a real gRPC health
//! client (Python grpcio, the same `Check` call the kubelet's `grpc:` probe
//! makes) over h2c through a real Envoy with the module, in front of a real
//! gRPC application, with a real gRPC dependency.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::envoy::{Envoy, Options, Setup};
use support::grpc::{check, watch, GrpcServer, Kind};

const SECRET: &str = "grpc-s3cret";

/// `ready` (the empty service) and `prot` run check `dep`; `live` has no
/// check; `src` accepts probes from 10.0.0.0/8 only (the tests come from
/// 127.0.0.1); `prot` is protected (the secret as metadata).
fn policy() -> String {
    format!(
        r#"{{
  "authorization": {{"header": "x-health", "secrets": [{{"value": "{SECRET}"}}], "bearer": true}},
  "endpoints": [
    {{"name": "ready", "path": "/readyz", "access": "public", "details": "always", "ttl": "0s", "checks": ["dep"], "grpc_service": ""}},
    {{"name": "live", "path": "/livez", "access": "public", "grpc_service": "live"}},
    {{"name": "prot", "path": "/protz", "ttl": "0s", "checks": ["dep"], "grpc_service": "prot"}},
    {{"name": "src", "path": "/srcz", "access": "public", "ttl": "0s", "checks": ["dep"], "grpc_service": "src", "sources": ["10.0.0.0/8"]}}
  ],
  "checks": [{{"name": "dep", "cluster": "dep", "kind": "grpc", "timeout": "400ms"}}]
}}"#
    )
}

struct Rig {
    envoy: Envoy,
    app: GrpcServer,
    dep: GrpcServer,
}

fn rig(app: Kind) -> Rig {
    let app = GrpcServer::start(app);
    let dep = GrpcServer::start(Kind::Health);
    let policy = policy();
    let envoy = Envoy::start_with(
        &Setup {
            policy: &policy,
            clusters: &[("app", app.port), ("dep", dep.port)],
            env: &[],
            workers: 1,
        },
        &Options {
            http2_clusters: &["app", "dep"],
            ..Options::default()
        },
    );
    Rig { envoy, app, dep }
}

/// Passing dependencies: the call goes on to the app, whose own health
/// service answers (SERVING, or NOT_SERVING: the probe passes only when
/// both are healthy). Failing ones: UNAVAILABLE with the reason, the app
/// never asked.
#[test]
fn the_probe_passes_only_when_the_app_and_its_dependencies_are_healthy() {
    let mut r = rig(Kind::Health);
    assert_eq!(check(r.envoy.port, "", &[]), "SERVING");
    assert_eq!(r.app.hits(), 1, "SERVING came from the app");
    assert_eq!(r.dep.hits(), 1, "one dependency call per probe");
    r.app.set("", "NOT_SERVING");
    assert_eq!(check(r.envoy.port, "", &[]), "NOT_SERVING");
    r.app.set("", "SERVING");
    r.dep.set("", "NOT_SERVING");
    assert_eq!(
        check(r.envoy.port, "", &[]),
        "ERROR UNAVAILABLE: ready check failed: dep: grpc health status NOT_SERVING"
    );
    assert_eq!(r.app.hits(), 2, "a failing probe never reaches the app");
    r.dep.hang(true);
    assert_eq!(
        check(r.envoy.port, "", &[]),
        "ERROR UNAVAILABLE: ready check failed: dep: timeout after 400ms"
    );
    r.dep.hang(false);
    assert_eq!(
        check(r.envoy.port, "live", &[]),
        "SERVING",
        "no checks: the app answers"
    );
    assert_eq!(r.app.hits(), 3);
    // Probe metrics as for HTTP probes: the code an HTTP probe would get.
    let stat = |name: &str| {
        r.envoy
            .stat(&format!("wasmcustom.meshprobe.{name}"))
            .unwrap_or(0)
    };
    assert_eq!(stat("endpoint.ready.code.200.probes"), 2);
    assert_eq!(stat("endpoint.ready.code.503.probes"), 2);
    assert_eq!(stat("check.dep.outcome.timeout.callouts"), 1);
}

/// The app's own services, and `Watch`, are the app's: a service that no
/// endpoint takes goes on unchanged (the app says it does not know it).
#[test]
fn other_services_go_to_the_app() {
    let mut r = rig(Kind::Health);
    r.app.set("pay.v1.Payments", "NOT_SERVING");
    assert_eq!(check(r.envoy.port, "pay.v1.Payments", &[]), "NOT_SERVING");
    assert_eq!(
        check(r.envoy.port, "unknown.Service", &[]),
        "ERROR NOT_FOUND:"
    );
    // `Watch` (a stream) is the app's, whatever the service.
    assert_eq!(watch(r.envoy.port, ""), "SERVING");
    r.dep.set("", "NOT_SERVING");
    assert_eq!(watch(r.envoy.port, ""), "SERVING");
    assert_eq!(r.dep.hits(), 0);
}

/// An app without the health service answers UNIMPLEMENTED itself.
#[test]
fn an_app_without_a_health_service_answers_unimplemented() {
    let r = rig(Kind::NoHealth);
    let got = check(r.envoy.port, "", &[]);
    assert!(got.starts_with("ERROR UNIMPLEMENTED"), "{got}");
    assert_eq!(check(r.envoy.port, "live", &[]), got);
}

/// Protected endpoints take the probe header or the bearer token as
/// metadata; without, the policy's answer (not_found: a local 404, which
/// Envoy turns into UNIMPLEMENTED for a gRPC call) and no callout. A
/// source outside `sources` gets the same, with or without a secret.
#[test]
fn unauthorized_probes_get_the_policys_answer_and_cause_no_callout() {
    let mut r = rig(Kind::Health);
    let refused = check(r.envoy.port, "prot", &[]);
    assert!(refused.starts_with("ERROR UNIMPLEMENTED"), "{refused}");
    assert_eq!(
        check(r.envoy.port, "prot", &[("x-health", SECRET)]),
        "SERVING"
    );
    let bearer = format!("Bearer {SECRET}");
    assert_eq!(
        check(r.envoy.port, "prot", &[("authorization", &bearer)]),
        "SERVING"
    );
    assert_eq!(r.dep.hits(), 2, "no callout for the refused probe");
    let from_elsewhere = check(r.envoy.port, "src", &[("x-health", SECRET)]);
    assert!(
        from_elsewhere.starts_with("ERROR UNIMPLEMENTED"),
        "{from_elsewhere}"
    );
    assert_eq!(r.dep.hits(), 2, "no callout for a source outside `sources`");
    assert_eq!(r.app.hits(), 2);
    let stat = |name: &str| {
        r.envoy
            .stat(&format!("wasmcustom.meshprobe.{name}"))
            .unwrap_or(0)
    };
    assert_eq!(stat("endpoint.prot.unauthorized"), 1);
    assert_eq!(stat("endpoint.src.unauthorized"), 1);
}
