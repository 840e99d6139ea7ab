//! Load: a probe storm.

use super::*;

/// Envoy's heap in use (admin `/memory`, `allocated`), in bytes.
fn allocated(s: &Stack) -> u64 {
    let (status, body) = s.envoy.admin_get("/memory").unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["allocated"].as_str().unwrap().parse().unwrap()
}

/// `n` probes at once, one thread and connection each.
fn storm(port: u16, n: usize, path: &'static str) -> Vec<Response> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                get(port, path, &[auth()])
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

const STORM_BODY: &str = "[-]a failed: timeout after 400ms\n[-]b failed: timeout after 400ms\n\
                          [-]c failed: timeout after 400ms\nready check failed\n";

/// 200 concurrent probes on 2 workers with every dependency hanging: each
/// answered 503 within its deadline, the storm costs one run (coalescing),
/// and Envoy's heap returns to its baseline.
///
/// Measured here (2 shared cores): every probe answered in 390-440 ms
/// (deadline 500 ms, checks time out at 400 ms); `allocated` 12.99 MB
/// after the warm-up storm and within 41 KB of it after each later storm.
/// The tolerance, 512 KiB over three storms (600 probes), is 12x that
/// drift, and below what 600 leaked streams would hold (an HCM stream with
/// its filter contexts is over 1 KiB).
/// Its coalescing and deadline parts are covered deterministically by the
/// simulator (`tests/sim`); Envoy's heap is what only this test sees.
#[test]
fn a_storm_of_200_probes_with_every_dependency_hanging() {
    const TOLERANCE: u64 = 512 * 1024;
    let checks = [
        r#"{"name": "a", "cluster": "a", "timeout": "400ms"}"#,
        r#"{"name": "b", "cluster": "b", "timeout": "400ms"}"#,
        r#"{"name": "c", "cluster": "c", "timeout": "400ms"}"#,
    ];
    let s = Stack::with_workers(
        &policy("500ms", &checks),
        &[("a", Mode::Hang), ("b", Mode::Hang), ("c", Mode::Hang)],
        &[("TOKEN", SECRET)],
        2,
    );
    let settle = || std::thread::sleep(Duration::from_millis(500));
    // Warm-up: connection pools, worker thread caches, stats.
    storm(s.envoy.port, 200, "/readyz?verbose");
    settle();
    let baseline = allocated(&s);
    let mut after = Vec::new();
    for round in 0..3 {
        let hits = s.dependency_hits();
        let started = Instant::now();
        let answers = storm(s.envoy.port, 200, "/readyz?verbose");
        let took = started.elapsed();
        let slowest = answers.iter().map(|r| r.elapsed).max().unwrap();
        for r in &answers {
            assert_eq!(r.status, 503, "{}", r.body);
            assert!(
                r.body == STORM_BODY
                    || r.body
                        == "warn: deadline exceeded waiting for the run on another worker\n\
                            ready check failed\n",
                "{}",
                r.body
            );
        }
        assert!(
            slowest <= Duration::from_millis(500) + MARGIN,
            "a probe took {slowest:?}, deadline 500ms (+{MARGIN:?})"
        );
        // One run serves the storm (two at most: one per worker).
        let runs = (s.dependency_hits() - hits) / 3;
        assert!((1..=2).contains(&runs), "{runs} runs for one storm");
        settle();
        after.push(allocated(&s));
        println!("storm {round}: {took:?}, slowest answer {slowest:?}, {runs} run(s)");
    }
    println!("allocated: baseline {baseline}, after each storm {after:?}");
    for a in &after {
        assert!(
            a.saturating_sub(baseline) < TOLERANCE,
            "Envoy's heap grew from {baseline} to {a} bytes"
        );
    }
    // Nothing is left waiting or leased: recovered dependencies pass now.
    for d in ["a", "b", "c"] {
        s.dep(d).set_mode(Mode::Status(200));
    }
    let r = s.get("/readyz?verbose", &[auth()]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "[+]a ok\n[+]b ok\n[+]c ok\nready check passed\n")
    );
    within(&r, 100);
    assert_healthy(&s);
}
