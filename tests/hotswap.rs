//! Policy hot swap under load, in a real Envoy: the meshprobe filter
//! delivered by ECDS from a watched file (how Istio delivers a
//! `WasmPlugin`, there over ADS), and the whole listener replaced by
//! file-based LDS. While probe threads run without pause, the test rotates
//! the secret and adds a check, then offers an invalid policy, and checks
//! that no probe failed, that the new policy is in force once Envoy says
//! so, and that a refused policy leaves the one in force untouched.
//!
//! What Envoy does (1.40, and 1.36.4 alike), measured here:
//!
//! - ECDS: a valid update reaches every worker within milliseconds of the
//!   rename, and applies to the next request on every connection, kept
//!   alive or not. A policy meshprobe refuses (`on_configure` returns
//!   false) makes the Wasm factory throw, so Envoy rejects the update:
//!   `config_fail` and `update_rejected` count it, the log says
//!   `Filesystem config update rejected: Unable to create Wasm plugin
//!   meshprobe` after meshprobe's own lines naming each field, and the
//!   filter config in force does not change. Two traps: `config_reload`
//!   counts the rejected update too, and `/config_dump` shows the rejected
//!   resource as the ECDS config; `version_text` (the last accepted
//!   `version_info`) is what tells which one is in force.
//! - ECDS at startup: a refused first version leaves the filter without a
//!   config; Envoy still becomes ready and answers every request on the
//!   listener 500 (probes and application traffic), unless the filter has
//!   a `default_config`, which is then in force until a valid file arrives.
//! - LDS: a new listener with the same address is an in-place filter-chain
//!   update: same socket, new connections get the new policy, while
//!   connections opened before keep the old filter chain (and the old
//!   policy) until they are drained. The probe threads therefore open one
//!   connection per request, as kubelet does; one pinned keep-alive
//!   connection shows the draining chain. A refused policy makes Envoy
//!   reject the listener (`lds.update_rejected`, `Filesystem config update
//!   rejected: Error adding/updating listener(s) main: Unable to create
//!   Wasm plugin meshprobe`, the admin's `error_state`) and keep the old
//!   one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use support::deps::{DepServer, Mode};
use support::envoy::{wasm_path, Envoy};
use support::http::{get, try_request};
use support::xds::{self, wait_for, Watched, XdsStats};

const OLD: &str = "hotswap-old-6f1c";
const NEW: &str = "hotswap-new-92ab";
/// The secret of the policy Envoy refuses: it must never be accepted.
const REFUSED: &str = "hotswap-refused-0d3e";
const LATER: &str = "hotswap-later-5b7a";

/// Envoy worker threads: a swap must reach each of them.
const WORKERS: u32 = 2;
/// Probe threads in each load loop.
const THREADS: usize = 16;
/// How long the load runs in each phase (before, after each swap).
const PHASE: Duration = Duration::from_millis(500);
/// How long Envoy may take to apply (or refuse) a swap.
const APPLY_LIMIT: Duration = Duration::from_secs(10);

/// A policy with one secret, public liveness, and readiness over
/// `checks` (each check named like its cluster). `ttl: 0s`, so every
/// probe runs the checks and a new check is seen at its dependency.
fn policy(secret: &str, checks: &[&str]) -> String {
    let names: Vec<String> = checks.iter().map(|c| format!("\"{c}\"")).collect();
    let defs: Vec<String> = checks
        .iter()
        .map(|c| format!(r#"{{"name": "{c}", "cluster": "{c}", "path": "/{c}"}}"#))
        .collect();
    format!(
        r#"{{
  "authorization": {{"header": "x-health", "secrets": [{{"value": "{secret}"}}]}},
  "endpoints": [
    {{"name": "live", "path": "/livez", "access": "public"}},
    {{"name": "ready", "path": "/readyz", "checks": [{}], "ttl": "0s"}}
  ],
  "checks": [{}]
}}"#,
        names.join(", "),
        defs.join(", ")
    )
}

/// A rotation to `REFUSED` that meshprobe refuses: the `search` check's
/// `cluster` is misspelled.
fn invalid_policy() -> String {
    let p = policy(REFUSED, &["db", "cache", "search"]);
    let bad = p.replace(r#""cluster": "search""#, r#""clustre": "search""#);
    assert_ne!(p, bad);
    bad
}

/// What meshprobe logs about [`invalid_policy`], each line naming a field.
const REFUSAL_LINES: [&str; 3] = [
    "meshprobe: invalid policy: checks[2].clustre: unknown field",
    "meshprobe: invalid policy: checks[2].cluster: is required",
    "meshprobe: policy refused (",
];

/// The application and the dependencies, on 127.0.0.1. `db` takes 3 ms,
/// so probes are in flight (callouts pending) when a swap lands.
struct Deps {
    app: DepServer,
    db: DepServer,
    cache: DepServer,
    search: DepServer,
}

impl Deps {
    fn start() -> Deps {
        Deps {
            app: DepServer::start(Mode::Echo),
            db: DepServer::start(Mode::Delay(3)),
            cache: DepServer::start(Mode::Status(200)),
            search: DepServer::start(Mode::Status(200)),
        }
    }

    fn clusters(&self) -> Vec<(&'static str, u16)> {
        vec![
            ("app", self.app.port),
            ("db", self.db.port),
            ("cache", self.cache.port),
            ("search", self.search.port),
        ]
    }
}

fn start_envoy(bootstrap: &str) -> Envoy {
    Envoy::try_start_yaml(bootstrap, WORKERS)
        .unwrap_or_else(|r| panic!("Envoy did not start ({}):\n{}", r.status, r.log))
}

/// An authorized probe on a new connection: (status, body).
fn probe(port: u16, path: &str, secret: &str) -> (u16, String) {
    let r = get(port, path, &[("x-health", secret)]);
    (r.status, r.body)
}

// ---------------------------------------------------------------------
// The load loop.

/// One HTTP/1.1 connection kept open across requests, as a load balancer
/// keeps it; reopened only when Envoy closes it (counted).
struct KeepAlive {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
    opened: u64,
}

impl KeepAlive {
    fn new(port: u16) -> KeepAlive {
        KeepAlive {
            port,
            conn: None,
            opened: 0,
        }
    }

    /// GET `path` with the probe header: (status, body).
    fn get(&mut self, path: &str, secret: &str) -> Result<(u16, String), String> {
        let result = self.exchange(path, secret);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn exchange(&mut self, path: &str, secret: &str) -> Result<(u16, String), String> {
        if self.conn.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            self.conn = Some(BufReader::new(s));
            self.opened += 1;
        }
        let conn = self.conn.as_mut().unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nhost: probe\r\nx-health: {secret}\r\n\r\n");
        conn.get_mut()
            .write_all(req.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        if conn
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?
            == 0
        {
            return Err("connection closed before an answer".into());
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let (mut length, mut close) = (0usize, false);
        loop {
            let mut h = String::new();
            conn.read_line(&mut h).map_err(|e| format!("read: {e}"))?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "connection" => close = v.trim().eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body)
            .map_err(|e| format!("body: {e}"))?;
        if close {
            self.conn = None;
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// The secrets the policy in force accepts, as far as the test knows.
#[derive(Clone, Copy, Debug)]
enum Accepts {
    /// Only this one: any other answer than a pass is a failure.
    One(&'static str),
    /// A swap is under way: either may pass, and either may get the
    /// unauthorized answer (404). The loop alternates them.
    Either(&'static str, &'static str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Connections {
    /// Each thread keeps one connection open (ECDS).
    KeepAlive,
    /// A new connection per request, `Connection: close` (LDS; kubelet).
    PerRequest,
}

/// What the load loop saw, in one phase.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    /// `200 ok`.
    passed: u64,
    /// 404 for a secret that was being rotated in or out.
    unauthorized_during_swap: u64,
    /// Anything else: connection errors, 5xx, a 404 for the secret in
    /// force, a body other than `ok`.
    failures: Vec<String>,
}

struct Shared {
    /// (generation, accepted secrets); the generation changes with each
    /// [`Load::accept`].
    accepts: Mutex<(u64, Accepts)>,
    stop: AtomicBool,
    tally: Mutex<Tally>,
    connections: AtomicU64,
}

/// Probe threads sending `/readyz` without pause.
struct Load {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, connections: Connections, accepts: Accepts) -> Load {
        let shared = Arc::new(Shared {
            accepts: Mutex::new((0, accepts)),
            stop: AtomicBool::new(false),
            tally: Mutex::new(Tally::default()),
            connections: AtomicU64::new(0),
        });
        let threads = (0..THREADS)
            .map(|i| {
                let shared = shared.clone();
                thread::spawn(move || probe_loop(port, connections, i as u64, &shared))
            })
            .collect();
        Load { shared, threads }
    }

    /// From now on the loop sends (and expects) these secrets.
    fn accept(&self, accepts: Accepts) {
        let mut a = self.shared.accepts.lock().unwrap();
        *a = (a.0 + 1, accepts);
    }

    /// The tally since the last call; a new one starts.
    fn take(&self) -> Tally {
        std::mem::take(&mut *self.shared.tally.lock().unwrap())
    }

    /// Stops the threads: the last tally and the connections opened.
    fn stop(mut self) -> (Tally, u64) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in std::mem::take(&mut self.threads) {
            t.join().unwrap();
        }
        let opened = self.shared.connections.load(Ordering::SeqCst);
        (self.take(), opened)
    }
}

impl Drop for Load {
    /// A test that fails midway stops its probe threads too.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

fn probe_loop(port: u16, connections: Connections, seed: u64, shared: &Shared) {
    let mut conn = KeepAlive::new(port);
    let mut n = seed;
    while !shared.stop.load(Ordering::SeqCst) {
        let (generation, accepts) = *shared.accepts.lock().unwrap();
        let secret = match accepts {
            Accepts::One(s) => s,
            Accepts::Either(a, b) => [a, b][(n % 2) as usize],
        };
        n += 1;
        let result = match connections {
            Connections::KeepAlive => conn.get("/readyz", secret),
            Connections::PerRequest => {
                try_request(port, "GET", "/readyz", &[("x-health", secret)], "HTTP/1.1")
                    .map(|r| (r.status, r.body))
                    .ok_or_else(|| "no answer (connection refused, reset or cut)".to_string())
            }
        };
        // Only a secret that was the one in force for the whole exchange
        // must pass; during a swap either answer is right.
        let settled =
            matches!(accepts, Accepts::One(_)) && shared.accepts.lock().unwrap().0 == generation;
        let mut t = shared.tally.lock().unwrap();
        t.requests += 1;
        match result {
            Ok((200, body)) if body == "ok\n" => t.passed += 1,
            Ok((404, body)) if !settled && body.is_empty() => t.unauthorized_during_swap += 1,
            Ok((status, body)) => t.failures.push(format!(
                "{secret}: {status} {body:?} ({})",
                if settled { "settled" } else { "during a swap" }
            )),
            Err(e) => t.failures.push(format!("{secret}: {e}")),
        }
    }
    let opened = match connections {
        Connections::KeepAlive => conn.opened,
        Connections::PerRequest => n - seed,
    };
    shared.connections.fetch_add(opened, Ordering::SeqCst);
}

/// Asserts the phase had requests and no failure; returns its figures
/// and adds its requests to `total`.
fn check_phase(name: &str, t: &Tally, total: &mut u64) -> String {
    assert!(t.requests > 0, "{name}: the load loop sent nothing");
    *total += t.requests;
    assert!(
        t.failures.is_empty(),
        "{name}: {} of {} probes failed, e.g. {:?}",
        t.failures.len(),
        t.requests,
        &t.failures[..t.failures.len().min(5)]
    );
    format!(
        "{name}: {} probes, {} passed, {} unauthorized during the swap, 0 failed",
        t.requests, t.passed, t.unauthorized_during_swap
    )
}

/// Waits until Envoy's log holds every line. Envoy writes its log file
/// from a buffer, flushed every 10 s (`--file-flush-interval-msec`) and at
/// once after a `critical` line: a warning after the last critical line
/// can take that long to appear.
fn wait_for_log(envoy: &Envoy, lines: &[&str]) {
    let limit = Duration::from_secs(15);
    let start = std::time::Instant::now();
    loop {
        let log = envoy.log_text();
        let missing: Vec<&&str> = lines.iter().filter(|l| !log.contains(**l)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "Envoy's log lacks {missing:?} after {limit:?}:\n{log}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn downstream_5xx(envoy: &Envoy) -> u64 {
    envoy
        .stat(&format!("http.{}.downstream_rq_5xx", xds::STAT_PREFIX))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------
// ECDS.

#[test]
fn ecds_swaps_the_policy_under_load_and_keeps_it_when_refused() {
    let deps = Deps::start();
    let wasm = wasm_path();
    let watched = Watched::new("ecds", "meshprobe-filter.json");
    watched.write(&xds::ecds_resource(
        "1",
        &policy(OLD, &["db", "cache"]),
        &wasm,
    ));
    let envoy = start_envoy(&xds::ecds_bootstrap(
        &watched,
        &deps.clusters(),
        None,
        &wasm,
    ));
    let port = envoy.port;
    assert_eq!(XdsStats::ecds(&envoy).version_text, "1");
    assert_eq!(probe(port, "/readyz", OLD), (200, "ok\n".into()));

    let load = Load::start(port, Connections::KeepAlive, Accepts::One(OLD));
    thread::sleep(PHASE);
    let mut total = 0;
    let mut figures = vec![check_phase("before", &load.take(), &mut total)];
    assert_eq!(deps.search.hits(), 0, "search is not a check yet");

    // a. Rotate the secret and add a check.
    let before = XdsStats::ecds(&envoy);
    load.accept(Accepts::Either(OLD, NEW));
    watched.swap(&xds::ecds_resource(
        "2",
        &policy(NEW, &["db", "cache", "search"]),
        &wasm,
    ));
    // Applied = accepted (version_text) and on every worker
    // (config_reload counts when the last worker has it).
    let (after, took) = wait_for(APPLY_LIMIT, "ECDS did not apply version 2", || {
        let s = XdsStats::ecds(&envoy);
        (s.version_text == "2" && s.config_reload > before.config_reload).then_some(s)
    });
    load.accept(Accepts::One(NEW));
    assert_eq!(after.update_success, before.update_success + 1);
    assert_eq!(after.config_fail, before.config_fail);
    let search_before = deps.search.hits();
    thread::sleep(PHASE);
    figures.push(format!("swap applied {took:?} after the rename"));
    figures.push(check_phase("swap", &load.take(), &mut total));

    assert_eq!(
        probe(port, "/readyz", OLD),
        (404, String::new()),
        "the old secret must get the unauthorized answer"
    );
    assert_eq!(probe(port, "/readyz", NEW), (200, "ok\n".into()));
    assert_eq!(
        probe(port, "/readyz?verbose", NEW).1,
        "[+]db ok\n[+]cache ok\n[+]search ok\nready check passed\n"
    );
    let (status, body) = probe(port, "/readyz?format=json", NEW);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["checks"]["search"]["status"], "pass", "{body}");
    assert!(
        deps.search.hits() > search_before,
        "the new check's dependency got no callout"
    );

    // b. A policy meshprobe refuses: Envoy rejects the update and keeps
    // version 2 on every worker; the loop keeps sending NEW and every
    // probe must pass.
    let before = XdsStats::ecds(&envoy);
    let verbose_before = probe(port, "/readyz?verbose", NEW);
    watched.swap(&xds::ecds_resource("3", &invalid_policy(), &wasm));
    let (after, took) = wait_for(APPLY_LIMIT, "ECDS did not refuse version 3", || {
        let s = XdsStats::ecds(&envoy);
        (s.config_fail > before.config_fail).then_some(s)
    });
    thread::sleep(PHASE);
    figures.push(format!("refusal counted {took:?} after the rename"));
    figures.push(check_phase("refused", &load.take(), &mut total));
    assert_eq!(after.config_fail, before.config_fail + 1);
    assert_eq!(after.update_rejected, before.update_rejected + 1);
    assert_eq!(after.update_success, before.update_success);
    assert_eq!(
        after.version_text, "2",
        "the refused version is not in force"
    );
    // Envoy (1.40, 1.36.4) counts config_reload for a rejected update too (the
    // update's cleanup runs while the exception unwinds): do not take
    // config_reload alone as "applied".
    assert_eq!(after.config_reload, before.config_reload + 1);
    assert_eq!(probe(port, "/readyz?verbose", NEW), verbose_before);
    assert_eq!(probe(port, "/readyz", REFUSED), (404, String::new()));
    // The admin's ECDS dump shows the refused resource (version 3) even so:
    // Envoy records it before the filter factory throws.
    let (_, dump) = envoy
        .admin_get("/config_dump?resource=ecds_filters")
        .unwrap();
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(dump["configs"][0]["version_info"], "3", "{dump}");

    // c. A valid policy after a refused one is applied as usual (rotating
    // again, to LATER, and dropping the cache check).
    let before = XdsStats::ecds(&envoy);
    load.accept(Accepts::Either(NEW, LATER));
    watched.swap(&xds::ecds_resource(
        "4",
        &policy(LATER, &["db", "search"]),
        &wasm,
    ));
    let (_, took) = wait_for(APPLY_LIMIT, "ECDS did not apply version 4", || {
        let s = XdsStats::ecds(&envoy);
        (s.version_text == "4" && s.config_reload > before.config_reload).then_some(s)
    });
    load.accept(Accepts::One(LATER));
    thread::sleep(PHASE);
    let (last, opened) = load.stop();
    figures.push(format!("second swap applied {took:?} after the rename"));
    figures.push(check_phase("after recovery", &last, &mut total));
    assert_eq!(probe(port, "/readyz", NEW), (404, String::new()));
    assert_eq!(
        probe(port, "/readyz?verbose", LATER).1,
        "[+]db ok\n[+]search ok\nready check passed\n"
    );

    // ECDS changes the filter config for the next request on every
    // connection: the keep-alive connections were never reopened.
    assert_eq!(opened, THREADS as u64, "keep-alive connections reopened");
    assert_eq!(downstream_5xx(&envoy), 0, "Envoy counted 5xx answers");
    figures.push(format!(
        "{total} probes in all, 0 failed, on {opened} keep-alive connections, none reopened"
    ));

    // Why Envoy refused version 3: meshprobe's lines naming the fields,
    // then the subscription's verdict.
    let mut lines = REFUSAL_LINES.to_vec();
    lines.push("Filesystem config update rejected: Unable to create Wasm plugin meshprobe");
    wait_for_log(&envoy, &lines);
    eprintln!("ECDS hot swap:\n  {}", figures.join("\n  "));
}

#[test]
fn ecds_refused_at_startup_fails_every_request_unless_there_is_a_default() {
    let deps = Deps::start();
    let wasm = wasm_path();

    // No default_config: Envoy starts and is ready, but the filter has no
    // config, so every request on the listener gets 500 (probes and the
    // application's traffic alike).
    let watched = Watched::new("ecds-startup", "meshprobe-filter.json");
    watched.write(&xds::ecds_resource("1", &invalid_policy(), &wasm));
    let envoy = start_envoy(&xds::ecds_bootstrap(
        &watched,
        &deps.clusters(),
        None,
        &wasm,
    ));
    let s = XdsStats::ecds(&envoy);
    assert_eq!((s.config_fail, s.version_text.as_str()), (1, ""));
    assert_eq!(get(envoy.port, "/livez", &[]).status, 500);
    assert_eq!(get(envoy.port, "/orders", &[]).status, 500);
    assert_eq!(deps.app.hits(), 0);
    wait_for_log(&envoy, &REFUSAL_LINES);
    // A valid file repairs it.
    watched.swap(&xds::ecds_resource("2", &policy(NEW, &["db"]), &wasm));
    let (_, took) = wait_for(APPLY_LIMIT, "ECDS did not apply version 2", || {
        let s = XdsStats::ecds(&envoy);
        (s.version_text == "2" && s.config_reload >= 2).then_some(())
    });
    assert_eq!(probe(envoy.port, "/readyz", NEW), (200, "ok\n".into()));
    assert_eq!(get(envoy.port, "/livez", &[]).status, 200);
    drop(envoy);

    // With a default_config (liveness only, as in envoy/ecds/envoy.yaml),
    // the default is in force until a valid file arrives: liveness is
    // answered and everything else reaches the application.
    let watched = Watched::new("ecds-default", "meshprobe-filter.json");
    watched.write(&xds::ecds_resource("1", &invalid_policy(), &wasm));
    let default = r#"{"endpoints": [{"name": "live", "path": "/livez", "access": "public"}]}"#;
    let envoy = start_envoy(&xds::ecds_bootstrap(
        &watched,
        &deps.clusters(),
        Some(default),
        &wasm,
    ));
    assert_eq!(XdsStats::ecds(&envoy).config_fail, 1);
    let r = get(envoy.port, "/livez", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let app_hits = deps.app.hits();
    assert_eq!(get(envoy.port, "/orders", &[]).status, 200);
    assert_eq!(deps.app.hits(), app_hits + 1);
    watched.swap(&xds::ecds_resource("2", &policy(NEW, &["db"]), &wasm));
    wait_for(APPLY_LIMIT, "ECDS did not apply version 2", || {
        let s = XdsStats::ecds(&envoy);
        (s.version_text == "2" && s.config_reload >= 2).then_some(())
    });
    assert_eq!(probe(envoy.port, "/readyz", NEW), (200, "ok\n".into()));
    eprintln!("ECDS startup: a valid file repaired a refused first version in {took:?}");
}

// ---------------------------------------------------------------------
// LDS.

#[test]
fn lds_replaces_the_listener_under_load_and_keeps_it_when_refused() {
    let deps = Deps::start();
    let wasm = wasm_path();
    let watched = Watched::new("lds", "listeners.json");
    // Port 0 in every version: the address is unchanged, so Envoy updates
    // the filter chains in place on the socket it already has.
    watched.write(&xds::lds_resource(
        "1",
        0,
        &policy(OLD, &["db", "cache"]),
        &wasm,
    ));
    let envoy = start_envoy(&xds::lds_bootstrap(&watched, &deps.clusters()));
    let port = envoy.port;
    assert_eq!(probe(port, "/readyz", OLD), (200, "ok\n".into()));
    // A connection opened before the swap and kept open.
    let mut pinned = KeepAlive::new(port);
    assert_eq!(pinned.get("/readyz", OLD), Ok((200, "ok\n".into())));

    let load = Load::start(port, Connections::PerRequest, Accepts::One(OLD));
    thread::sleep(PHASE);
    let mut total = 0;
    let mut figures = vec![check_phase("before", &load.take(), &mut total)];

    // The new listener: secret rotated, a check added.
    let before = XdsStats::lds(&envoy);
    load.accept(Accepts::Either(OLD, NEW));
    watched.swap(&xds::lds_resource(
        "2",
        0,
        &policy(NEW, &["db", "cache", "search"]),
        &wasm,
    ));
    // Applied = accepted and the new listener added on every worker.
    let (after, took) = wait_for(APPLY_LIMIT, "LDS did not apply version 2", || {
        let s = XdsStats::lds(&envoy);
        (s.version_text == "2"
            && s.listener_create_success >= before.listener_create_success + u64::from(WORKERS))
        .then_some(s)
    });
    load.accept(Accepts::One(NEW));
    assert_eq!(after.update_success, before.update_success + 1);
    let search_before = deps.search.hits();
    thread::sleep(PHASE);
    figures.push(format!("swap applied {took:?} after the rename"));
    figures.push(check_phase("swap", &load.take(), &mut total));
    let manager = xds::stats(&envoy, "listener_manager.");
    assert_eq!(manager["listener_manager.listener_in_place_updated"], "1");

    assert_eq!(probe(port, "/readyz", OLD), (404, String::new()));
    assert_eq!(probe(port, "/readyz", NEW), (200, "ok\n".into()));
    assert_eq!(
        probe(port, "/readyz?verbose", NEW).1,
        "[+]db ok\n[+]cache ok\n[+]search ok\nready check passed\n"
    );
    assert!(deps.search.hits() > search_before);
    // The pinned connection still runs the old filter chain, which is
    // draining: the old policy answers there.
    assert_eq!(
        pinned.get("/readyz", OLD).map(|r| r.0),
        Ok(200),
        "a connection from before the swap keeps the old policy until drained"
    );
    assert_eq!(pinned.opened, 1);
    assert!(manager["listener_manager.total_filter_chains_draining"] != "0");

    // A listener whose policy meshprobe refuses: Envoy rejects it and keeps
    // version 2.
    let before = XdsStats::lds(&envoy);
    watched.swap(&xds::lds_resource("3", 0, &invalid_policy(), &wasm));
    let (after, took) = wait_for(APPLY_LIMIT, "LDS did not refuse version 3", || {
        let s = XdsStats::lds(&envoy);
        (s.update_rejected > before.update_rejected).then_some(s)
    });
    thread::sleep(PHASE);
    let (last, _) = load.stop();
    figures.push(format!("refusal counted {took:?} after the rename"));
    figures.push(check_phase("refused", &last, &mut total));
    assert_eq!(after.version_text, "2");
    assert_eq!(after.update_success, before.update_success);
    assert_eq!(
        after.listener_create_success,
        before.listener_create_success
    );
    assert_eq!(probe(port, "/readyz", NEW), (200, "ok\n".into()));
    assert_eq!(probe(port, "/readyz", REFUSED), (404, String::new()));
    // The admin API keeps the refused listener as its error state.
    let (_, dump) = envoy
        .admin_get("/config_dump?resource=dynamic_listeners")
        .unwrap();
    let dump: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let main = dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .expect("listener main in the config dump");
    assert_eq!(
        main["error_state"]["details"],
        "Unable to create Wasm plugin meshprobe"
    );
    assert_eq!(downstream_5xx(&envoy), 0, "Envoy counted 5xx answers");
    let mut lines = REFUSAL_LINES.to_vec();
    lines.push(
        "Filesystem config update rejected: Error adding/updating listener(s) main: \
         Unable to create Wasm plugin meshprobe",
    );
    wait_for_log(&envoy, &lines);
    figures.push(format!(
        "{total} probes in all, one connection each, 0 failed"
    ));
    eprintln!("LDS hot swap:\n  {}", figures.join("\n  "));
}
