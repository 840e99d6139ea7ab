//! A bounded soak through a real Envoy with 2 workers: 100,000 probes
//! (`SOAK_PROBES`; at most `SOAK_SECS`, 150 s, whichever comes first),
//! 10% of them from clients that leave while the run's callouts are
//! pending, one dependency hanging every other second. Afterwards: every
//! probe that stayed was answered, each VM's linear memory
//! (`meshprobe_vm_memory_bytes`) is flat after the warm-up, Envoy's heap
//! (`/memory`) is back to its baseline, and the dependencies saw at most
//! one run per TTL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::deps::Mode;
use support::stack::Stack;

const TTL_MS: u64 = 200;
const CLIENTS: u64 = 8;

const POLICY: &str = r#"{
  "endpoints": [{"name": "ready", "path": "/readyz", "access": "public", "details": "always",
                 "checks": ["ok", "slow", "flaky"], "deadline": "300ms", "ttl": "200ms"}],
  "checks": [{"name": "ok", "cluster": "ok"},
             {"name": "slow", "cluster": "slow"},
             {"name": "flaky", "cluster": "flaky", "critical": false, "timeout": "250ms"}]
}"#;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One probe on a kept-alive connection: the status.
fn probe(r: &mut BufReader<TcpStream>) -> u16 {
    r.get_mut()
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: soak\r\n\r\n")
        .unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).unwrap();
    status
}

fn connect(port: u16) -> BufReader<TcpStream> {
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    BufReader::new(c)
}

/// Each VM's `vm_memory_bytes` gauge, by VM id.
fn vm_memory(s: &Stack) -> Vec<(String, u64)> {
    let (_, body) = s.envoy.admin_get("/stats?filter=vm_memory_bytes").unwrap();
    let mut v: Vec<(String, u64)> = body
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(": ")?;
            let id = name
                .strip_prefix("wasmcustom.meshprobe.vm.")?
                .split('.')
                .next()?;
            Some((id.to_string(), value.trim().parse().ok()?))
        })
        .collect();
    v.sort();
    v
}

/// Envoy's heap in use (admin `/memory`, `allocated`).
fn allocated(s: &Stack) -> u64 {
    let (_, body) = s.envoy.admin_get("/memory").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    v["allocated"].as_str().unwrap().parse().unwrap()
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    answered: AtomicU64,
    left: AtomicU64,
    other: AtomicU64,
}

/// Probes until `total` are sent or `stop`; every 10th client leaves.
fn load(port: u16, total: u64, counts: &Arc<Counts>, stop: &Arc<AtomicBool>) {
    let threads: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let (counts, stop) = (counts.clone(), stop.clone());
            thread::spawn(move || {
                let mut conn = connect(port);
                let mut i = k;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed)
                    && counts.sent.fetch_add(1, Ordering::Relaxed) < total
                {
                    i += CLIENTS;
                    n += 1;
                    if n % 10 == 0 {
                        // Sent, then gone within 0-30 ms: mostly while the
                        // run's callouts are out (the checks take 50-250 ms).
                        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                        c.write_all(b"GET /readyz HTTP/1.1\r\nhost: soak\r\n\r\n")
                            .unwrap();
                        thread::sleep(Duration::from_millis(i % 31));
                        counts.left.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    match probe(&mut conn) {
                        200 | 503 => counts.answered.fetch_add(1, Ordering::Relaxed),
                        _ => counts.other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_soak_of_100k_probes_leaves_memory_flat() {
    let total = env("SOAK_PROBES", 100_000);
    let limit = Duration::from_secs(env("SOAK_SECS", 150));
    let deps = [
        ("ok", Mode::Status(200)),
        ("slow", Mode::Delay(50)),
        ("flaky", Mode::Status(200)),
    ];
    let s = Stack::with_workers(POLICY, &deps, &[], 2);
    let port = s.envoy.port;
    let stop = Arc::new(AtomicBool::new(false));
    let flaky = s.dep("flaky");
    let counts = Arc::new(Counts::default());
    let (mut vm_before, mut heap_before, mut hits, mut took) = (Vec::new(), 0, 0, Duration::ZERO);
    thread::scope(|scope| {
        // The flaky dependency hangs every other second.
        scope.spawn(|| {
            let mut hang = false;
            while !stop.load(Ordering::Relaxed) {
                hang = !hang;
                flaky.set_mode(if hang { Mode::Hang } else { Mode::Status(200) });
                thread::sleep(Duration::from_secs(1));
            }
        });
        let warm = Arc::new(Counts::default());
        load(port, total / 20, &warm, &stop);
        thread::sleep(Duration::from_millis(500));
        (vm_before, heap_before) = (vm_memory(&s), allocated(&s));
        let hits_before = s.dep("ok").hits();
        let started = Instant::now();
        let stop_at = &stop;
        scope.spawn(move || {
            while !stop_at.load(Ordering::Relaxed) && started.elapsed() < limit {
                thread::sleep(Duration::from_millis(100));
            }
            stop_at.store(true, Ordering::Relaxed);
        });
        load(port, total, &counts, &stop);
        took = started.elapsed();
        hits = (s.dep("ok").hits() - hits_before) as u64;
        stop.store(true, Ordering::Relaxed);
    });
    thread::sleep(Duration::from_secs(1));
    let (vm_after, heap_after) = (vm_memory(&s), allocated(&s));

    let (answered, left) = (
        counts.answered.load(Ordering::Relaxed),
        counts.left.load(Ordering::Relaxed),
    );
    let sent = answered + left;
    println!(
        "soak: {sent} probes in {took:?} ({answered} answered, {left} clients left mid-run), \
         {hits} runs; VM memory before {vm_before:?}, after {vm_after:?}; \
         Envoy heap before {heap_before}, after {heap_after}"
    );
    assert_eq!(
        counts.other.load(Ordering::Relaxed),
        0,
        "answers other than 200/503"
    );
    assert!(sent >= total.min(20_000), "only {sent} probes in {took:?}");
    // One run per TTL at most (plus the one in flight at each end).
    let most = took.as_millis() as u64 / TTL_MS + 2;
    assert!(
        hits <= most,
        "{hits} runs in {took:?}, TTL {TTL_MS} ms: more than {most}"
    );
    // One gauge per VM: the two workers' and the main thread's.
    assert!(vm_before.len() >= 2, "{vm_before:?}");
    assert_eq!(
        vm_after, vm_before,
        "a VM's linear memory grew after the warm-up"
    );
    let prometheus = s.envoy.admin_get("/stats/prometheus").unwrap().1;
    assert!(
        prometheus.contains("meshprobe_vm_memory_bytes{meshprobe_vm=\""),
        "{prometheus}"
    );
    // Envoy's heap: back within 1 MiB (a leaked stream per departed
    // client would be over 1 KiB each: 10,000 of them, over 10 MiB).
    assert!(
        heap_after <= heap_before + 1024 * 1024,
        "Envoy heap {heap_before} -> {heap_after}"
    );
}
