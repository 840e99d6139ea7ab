//! The rig of the observability tests (tests/observability.rs,
//! tests/openmetrics.rs): a real Envoy with the module, the `stats_tags` of
//! docs/observability.md and failing dependencies, and traffic for it.

#![allow(dead_code)]

use super::deps::{DepServer, Mode};
use super::envoy::{bootstrap, Envoy, Setup};
use super::http::try_request;
use super::prometheus::{Job, Prometheus};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

pub const SECRET: &str = "obs-s3cret";

/// `ready` runs three checks on every probe: db (its mode is the test's),
/// cache (non-critical, hangs: times out at 200 ms), search (nobody
/// listens: refused). `cached` keeps its result 5 s (cache hits);
/// `status` is public and shows details to bearers of the secret.
pub const POLICY: &str = r#"{
  "authorization": {"header": "x-health", "bearer": true, "secrets": [{"value": "obs-s3cret"}]},
  "endpoints": [
    {"name": "live", "path": "/livez", "access": "public"},
    {"name": "ready", "path": "/readyz", "checks": ["db", "cache", "search"], "ttl": "0s"},
    {"name": "cached", "path": "/cachedz", "checks": ["db"], "ttl": "5s"},
    {"name": "status", "path": "/statusz", "access": "public", "checks": ["db", "cache", "search"], "ttl": "0s"}
  ],
  "checks": [
    {"name": "db", "cluster": "db", "path": "/health"},
    {"name": "cache", "cluster": "cache", "critical": false, "timeout": "200ms"},
    {"name": "search", "cluster": "closed"}
  ]
}"#;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `stats_config` block of docs/observability.md (a ```yaml block).
pub fn documented_stats_tags() -> String {
    let doc = read("docs/observability.md");
    let start = doc
        .find("```yaml\nstats_config:\n")
        .expect("docs/observability.md has no ```yaml block starting with stats_config:")
        + "```yaml\n".len();
    let len = doc[start..].find("```").expect("unterminated block");
    doc[start..start + len].to_string()
}

/// [`bootstrap`] with its `stats_config` replaced by the documented one.
pub fn with_documented_tags(yaml: &str) -> String {
    let admin = yaml.find("\nadmin:\n").expect("bootstrap without admin");
    assert!(yaml.starts_with("stats_config:\n"), "bootstrap changed");
    format!("{}{}", documented_stats_tags(), &yaml[admin + 1..])
}

pub struct Rig {
    pub envoy: Envoy,
    _deps: Vec<DepServer>,
}

/// Envoy with `module`, the documented tags, and the dependencies of
/// [`POLICY`]: db in `db_mode`, cache hanging, search refused.
pub fn start_envoy(module: &str, db_mode: Mode) -> Rig {
    let app = DepServer::start(Mode::Echo);
    let db = DepServer::start(db_mode);
    let cache = DepServer::start(Mode::Hang);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let clusters = [
        ("app", app.port),
        ("db", db.port),
        ("cache", cache.port),
        ("closed", closed_port),
    ];
    let setup = Setup {
        policy: POLICY,
        clusters: &clusters,
        env: &[],
        workers: 1,
    };
    let yaml = with_documented_tags(&bootstrap(&setup, module));
    let envoy = match Envoy::try_start_yaml(&yaml, 1) {
        Ok(e) => e,
        Err(r) => panic!("Envoy did not start ({}):\n{}", r.status, r.log),
    };
    Rig {
        envoy,
        _deps: vec![app, db, cache],
    }
}

pub fn envoy_job(envoy: &Envoy) -> Job<'static> {
    Job {
        name: "envoy",
        target: format!("127.0.0.1:{}", envoy.admin),
        metrics_path: "/stats/prometheus",
        params: &[],
        bearer: None,
    }
}

/// One round of traffic: every endpoint, a cache hit, two wrong secrets.
pub fn drive(envoy: &Envoy) {
    let auth = [("x-health", SECRET)];
    for (path, headers) in [
        ("/livez", &[][..]),
        ("/readyz", &auth[..]),
        ("/cachedz", &auth[..]),
        ("/cachedz", &auth[..]),
        ("/readyz", &[("x-health", "guess-1")][..]),
        ("/readyz", &[("x-health", "guess-2")][..]),
    ] {
        let _ = try_request(envoy.port, "GET", path, headers, "HTTP/1.1");
    }
}

/// Drives traffic and queries `promql` until it returns something.
pub fn until(prom: &Prometheus, envoy: &Envoy, promql: &str, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        drive(envoy);
        match prom.query(promql) {
            Ok(r) if !r.is_empty() => return r,
            Err(e) => panic!("{promql}: {e}"),
            Ok(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "{promql} returned nothing within {within:?}; targets {:?}",
            prom.targets()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

pub fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

/// observability/alerts.yaml with every `for:` cut to 1 s, so that a test
/// sees the real rules fire within seconds.
pub fn alerts_with_short_for() -> String {
    let text = read("observability/alerts.yaml");
    let mut cut = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("for: ") {
                cut += 1;
                format!("{}for: 1s", &l[..l.len() - l.trim_start().len()])
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(cut >= 5, "only {cut} `for:` lines in alerts.yaml");
    out.join("\n") + "\n"
}

/// The test build of the module (`just build-test-hooks`): the request
/// header `x-meshprobe-test-hook: panic` fails its VM.
pub fn hooks_module() -> String {
    let path = std::env::var("MESHPROBE_WASM_TEST_HOOKS")
        .unwrap_or_else(|_| "dist/meshprobe-test-hooks.wasm".into());
    let abs = repo().join(&path);
    assert!(
        abs.exists(),
        "{path} is missing: run `just build-test-hooks` (`just test` does)"
    );
    abs.display().to_string()
}
