//! The `envoy/grpc` example, started for real: its Envoy configuration as
//! shipped (ports replaced by ephemeral ones, the module from
//! `MESHPROBE_WASM`), a real gRPC application and a real gRPC dependency
//! (Python grpcio), probed by a real gRPC health client and over HTTP.
//! `MESHPROBE_SHOW=1` prints the answers (envoy/grpc/README.md shows them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::envoy::{wasm_path, Envoy};
use support::grpc::{check, GrpcServer, Kind};
use support::http::get;

fn show(what: &str, answer: &str) {
    if std::env::var("MESHPROBE_SHOW").is_ok() {
        eprintln!("== {what}\n{answer}\n");
    }
}

#[test]
fn the_grpc_example_runs() {
    let mut app = GrpcServer::start(Kind::Health);
    let mut ratings = GrpcServer::start(Kind::Health);
    ratings.set("ratings.v1.Ratings", "SERVING");
    let yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/grpc/envoy.yaml"),
    )
    .unwrap()
    .replace("port_value: 9912", "port_value: 0")
    .replace("port_value: 10200", "port_value: 0")
    .replace("port_value: 50061", &format!("port_value: {}", app.port))
    .replace(
        "port_value: 50062",
        &format!("port_value: {}", ratings.port),
    )
    .replace("dist/meshprobe.wasm", &wasm_path());
    let envoy = Envoy::try_start_yaml(&yaml, 1)
        .unwrap_or_else(|r| panic!("Envoy did not start ({}):\n{}", r.status, r.log));
    let port = envoy.port;

    let serving = check(port, "", &[]);
    show(r#"Check service "" (ready), all healthy"#, &serving);
    assert_eq!(serving, "SERVING");
    assert_eq!(app.hits(), 1, "SERVING is the app's own answer");
    assert_eq!(check(port, "live", &[]), "SERVING");

    ratings.set("ratings.v1.Ratings", "NOT_SERVING");
    std::thread::sleep(std::time::Duration::from_millis(1100)); // ttl 1s
    let failing = check(port, "", &[]);
    show(r#"Check service "" (ready), ratings NOT_SERVING"#, &failing);
    assert_eq!(
        failing,
        "ERROR UNAVAILABLE: ready check failed: ratings: grpc health status NOT_SERVING"
    );
    let http = get(port, "/readyz?format=json", &[]);
    show(
        &format!("GET /readyz?format=json (HTTP {})", http.status),
        http.body.trim(),
    );
    assert_eq!(http.status, 503);
    assert!(
        http.body.contains("grpc health status NOT_SERVING"),
        "{}",
        http.body
    );
    assert_eq!(
        check(port, "live", &[]),
        "SERVING",
        "liveness has no checks"
    );

    ratings.set("ratings.v1.Ratings", "SERVING");
    app.set("", "NOT_SERVING");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let app_down = check(port, "", &[]);
    show(
        r#"Check service "" (ready), ratings back, the app NOT_SERVING"#,
        &app_down,
    );
    assert_eq!(app_down, "NOT_SERVING");
}
