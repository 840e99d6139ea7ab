//! The `meshprobe` command and the `grpc` kind: `validate` warns where a
//! kubelet `grpc:` probe or an Istio cluster name would go wrong; `run`
//! says it does not call gRPC dependencies.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::Command;
use support::envoy::Scratch;

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

    let (code, out) = meshprobe(&[
        "run",
        &file,
        "ready",
        "--format",
        "json",
        "--cluster",
        "outbound|50051||db.prod.svc.cluster.local=http://127.0.0.1:9",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(
            "grpc status UNIMPLEMENTED: not run: meshprobe run calls HTTP/1.1 dependencies only"
        ),
        "{out}"
    );
}
