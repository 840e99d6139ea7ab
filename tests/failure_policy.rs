//! What Envoy does when the VM fails, under each `failure_policy`, with the
//! test build of the module (`just build-test-hooks`), in which the request
//! header `x-meshprobe-test-hook: panic` makes the VM fail as a bug would.
//! The release module has no such hook (checked here too).

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
use support::http::{try_request, Response};

const HOOK: &str = "x-meshprobe-test-hook";
const POLICY: &str = r#"{
  "endpoints": [
    {"name": "live", "path": "/livez", "access": "public"},
    {"name": "ready", "path": "/readyz", "access": "public", "details": "always", "ttl": "0s", "checks": ["db"]}
  ],
  "checks": [{"name": "db", "cluster": "db"}]
}"#;

fn hooks_module() -> String {
    let path = std::env::var("MESHPROBE_WASM_TEST_HOOKS")
        .unwrap_or_else(|_| "dist/meshprobe-test-hooks.wasm".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run `just build-test-hooks` (`just test` does)"
    );
    path
}

struct Rig {
    envoy: Envoy,
    _app: DepServer,
    db: DepServer,
}

fn start(failure_policy: &str) -> Rig {
    let app = DepServer::start(Mode::Echo);
    let db = DepServer::start(Mode::Status(200));
    let clusters = [("app", app.port), ("db", db.port)];
    let yaml = bootstrap(
        &Setup {
            policy: POLICY,
            clusters: &clusters,
            env: &[],
            workers: 1,
        },
        &hooks_module(),
    );
    let with_policy = yaml.replace(
        "failure_policy: FAIL_RELOAD",
        &format!("failure_policy: {failure_policy}"),
    );
    assert!(with_policy.contains(&format!("failure_policy: {failure_policy}")));
    let envoy = match Envoy::try_start_yaml(&with_policy, 1) {
        Ok(e) => e,
        Err(r) => panic!("Envoy did not start ({}):\n{}", r.status, r.log),
    };
    Rig {
        envoy,
        _app: app,
        db,
    }
}

impl Rig {
    /// A request; `None` when the connection failed or was reset.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Option<Response> {
        try_request(self.envoy.port, "GET", path, headers, "HTTP/1.1")
    }

    fn answered_by_meshprobe(&self) -> bool {
        self.get("/livez", &[])
            .is_some_and(|r| r.status == 200 && r.body == "ok\n")
    }

    /// Fails the VM, and waits until the log shows it did.
    fn crash(&self) -> Option<Response> {
        let r = self.get("/livez", &[(HOOK, "panic")]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.envoy.log_text().contains("forced VM failure") {
            assert!(
                Instant::now() < deadline,
                "no VM failure in the log:\n{}",
                self.envoy.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }
}

#[test]
fn the_release_module_has_no_test_hook() {
    let release = std::fs::read(wasm_path()).unwrap();
    let hooks = std::fs::read(hooks_module()).unwrap();
    let has = |bytes: &[u8]| bytes.windows(HOOK.len()).any(|w| w == HOOK.as_bytes());
    assert!(has(&hooks), "the test build lost its hook");
    assert!(!has(&release), "{} carries the test hook", wasm_path());
}

#[test]
fn fail_reload_recovers_after_a_vm_failure() {
    let rig = start("FAIL_RELOAD");
    assert!(rig.answered_by_meshprobe());
    let crashed = rig.crash();
    assert!(
        crashed.as_ref().is_none_or(|r| r.status >= 500),
        "the failing request was answered {crashed:?}"
    );
    // Envoy reloads the VM (about 1 s later); until then requests fail.
    let failed_at = Instant::now();
    let deadline = failed_at + Duration::from_secs(10);
    while !rig.answered_by_meshprobe() {
        assert!(
            Instant::now() < deadline,
            "no recovery in 10 s:\n{}",
            rig.envoy.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let recovered_after = failed_at.elapsed();
    eprintln!("FAIL_RELOAD: meshprobe answered again {recovered_after:?} after the failure");
    // The new VM is whole: its callouts work.
    let r = rig.get("/readyz?verbose", &[]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("[+]db ok"), "{}", r.body);
    assert!(rig.db.hits() >= 1);
}

#[test]
fn fail_closed_keeps_failing_after_a_vm_failure() {
    let rig = start("FAIL_CLOSED");
    assert!(rig.answered_by_meshprobe());
    rig.crash();
    // Every request through the filter fails, probes and traffic alike.
    let until = Instant::now() + Duration::from_secs(3);
    let mut seen = 0;
    while Instant::now() < until {
        for path in ["/livez", "/orders"] {
            let r = rig.get(path, &[]);
            assert!(r.as_ref().is_none_or(|r| r.status == 503), "{path}: {r:?}");
            seen += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen > 10);
}

#[test]
fn fail_open_skips_the_filter_after_a_vm_failure() {
    let rig = start("FAIL_OPEN");
    assert!(rig.answered_by_meshprobe());
    rig.crash();
    // The filter is skipped: the probe path goes to the application.
    std::thread::sleep(Duration::from_millis(200));
    let r = rig.get("/livez", &[]).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("GET /livez "), "{}", r.body);
}
