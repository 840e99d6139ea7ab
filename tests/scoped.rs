//! Zero cost on application traffic: `envoy/scoped/envoy.yaml` runs the
//! filter only on the probe routes. Started for real (ports and module path
//! swapped for the test's), next to the same policy unscoped, so each
//! request that the scoped Envoy hands to the application is shown to be one
//! that meshprobe answers when it runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::deps::{DepServer, Mode};
use support::envoy::{wasm_path, Envoy};
use support::http::{get, Response};

const EXAMPLE: &str = include_str!("../envoy/scoped/envoy.yaml");
const SECRET: &str = "demo-secret";

struct Rig {
    envoy: Envoy,
    app: DepServer,
    deps: Vec<DepServer>,
}

/// The example with the test's ports: `unscoped` also drops the scoping
/// (filter enabled on every route), everything else unchanged.
fn start(unscoped: bool) -> Rig {
    let app = DepServer::start(Mode::Echo);
    let deps: Vec<DepServer> = (0..3)
        .map(|_| DepServer::start(Mode::Status(200)))
        .collect();
    let mut yaml = EXAMPLE
        .replace("port_value: 10400", "port_value: 0")
        .replace("port_value: 9941", "port_value: 0")
        .replace("port_value: 18080", &format!("port_value: {}", app.port))
        .replace(
            "filename: dist/meshprobe.wasm",
            &format!("filename: {}", wasm_path()),
        );
    for (demo_port, dep) in [18081, 18082, 18083].iter().zip(&deps) {
        yaml = yaml.replace(
            &format!("port_value: {demo_port}"),
            &format!("port_value: {}", dep.port),
        );
    }
    assert!(!yaml.contains("port_value: 1008") && !yaml.contains("port_value: 1808"));
    if unscoped {
        let scoped = yaml.clone();
        yaml = yaml.replace("disabled: true", "disabled: false");
        assert_ne!(
            yaml, scoped,
            "the example no longer disables the filter by default"
        );
    }
    let envoy = match Envoy::try_start_yaml(&yaml, 1) {
        Ok(e) => e,
        Err(r) => panic!("Envoy did not start ({}):\n{}", r.status, r.log),
    };
    Rig { envoy, app, deps }
}

impl Rig {
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        get(self.envoy.port, path, headers)
    }

    fn dependency_hits(&self) -> usize {
        self.deps.iter().map(DepServer::hits).sum()
    }

    /// Probes meshprobe counted: the sum of its `...probes` counters.
    fn probes_counted(&self) -> u64 {
        let (_, body) = self
            .envoy
            .admin_get("/stats?filter=^wasmcustom\\.meshprobe\\.")
            .unwrap();
        body.lines()
            .filter_map(|l| l.split_once(": "))
            .filter(|(name, _)| name.ends_with(".probes"))
            .map(|(_, v)| v.trim().parse::<u64>().unwrap())
            .sum()
    }
}

/// Requests for the application's routes that meshprobe would answer,
/// were it running there.
const APP_ROUTE_PROBES: &[&str] = &["/readyz/db", "/health/demo-secret/ready"];

#[test]
fn app_routes_bypass_the_filter() {
    let rig = start(false);
    let h = [("x-health", SECRET)];

    // The probe routes are answered by meshprobe, with callouts.
    let live = rig.get("/livez", &[]);
    assert_eq!((live.status, live.body.as_str()), (200, "ok\n"), "{live:?}");
    let ready = rig.get("/readyz?verbose", &h);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(ready.body.contains("[+]db ok"), "{}", ready.body);
    assert_eq!(rig.dependency_hits(), 3);
    assert_eq!(rig.app.hits(), 0, "a probe reached the application");
    assert_eq!(rig.probes_counted(), 2);

    // The application's routes: the application answers, untouched. The
    // probe header is still there (meshprobe removes it wherever it runs),
    // no callout is made, and the filter's metrics do not move.
    for path in APP_ROUTE_PROBES {
        let r = rig.get(path, &h);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            r.body.starts_with(&format!("GET {path} ")),
            "{path}: {}",
            r.body
        );
        assert!(
            r.body
                .to_ascii_lowercase()
                .contains("x-health: demo-secret"),
            "{}",
            r.body
        );
    }
    let plain = rig.get("/orders/42", &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(rig.app.hits(), APP_ROUTE_PROBES.len() + 1);
    assert_eq!(
        rig.dependency_hits(),
        3,
        "an application request caused a callout"
    );
    assert_eq!(rig.probes_counted(), 2, "application requests were counted");
}

#[test]
fn unscoped_the_same_requests_are_answered_by_meshprobe() {
    // The control: without the scoping, meshprobe answers the very requests
    // that the scoped Envoy hands to the application.
    let rig = start(true);
    let h = [("x-health", SECRET)];
    for path in APP_ROUTE_PROBES {
        let r = rig.get(path, &h);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            !r.body.starts_with("GET "),
            "{path} reached the application: {}",
            r.body
        );
    }
    assert_eq!(rig.app.hits(), 0);
    assert_eq!(rig.probes_counted(), APP_ROUTE_PROBES.len() as u64);
    // Ordinary traffic passes, minus the probe header.
    let r = rig.get("/orders/42", &h);
    assert_eq!(r.status, 200);
    assert!(
        !r.body.to_ascii_lowercase().contains("x-health"),
        "{}",
        r.body
    );
}
