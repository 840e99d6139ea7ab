//! Clients that go away mid-probe.

use super::*;

/// Sends a probe, waits `stay`, and closes the socket unread.
fn send_and_leave(port: u16, path: &str, stay: Duration) {
    use std::io::Write;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nhost: probe\r\nx-health: {SECRET}\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(stay);
}

fn wait_for_hits(s: &Stack, dep: &str, n: usize) {
    let start = Instant::now();
    while s.dep(dep).hits() < n {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{dep} saw {} callouts, not {n}",
            s.dep(dep).hits()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Cached results (`ttl`); db hangs and times out after `timeout`.
fn leaving_rig(workers: u32, deadline: &str, timeout: &str, ttl: &str) -> Stack {
    let check = format!(r#"{{"name": "db", "cluster": "db", "timeout": "{timeout}"}}"#);
    Stack::with_workers(
        &policy_ttl(deadline, ttl, &[&check]),
        &[("db", Mode::Hang)],
        &[("TOKEN", SECRET)],
        workers,
    )
}

/// Probe A starts a run and goes away after `stay`; probe B, sent once the
/// run's callout is out, joins it. B's answer.
fn join_a_run_whose_client_leaves(s: &Stack, stay: Duration) -> Response {
    let port = s.envoy.port;
    let before = s.dep("db").hits();
    let a = std::thread::spawn(move || send_and_leave(port, "/readyz", stay));
    wait_for_hits(s, "db", before + 1);
    let b = s.get("/readyz?verbose", &[auth()]);
    a.join().unwrap();
    b
}

/// Callouts are dispatched by the root context, so a run goes on when the
/// probe that started it leaves: its answer comes, its result is shared,
/// and no second callout is made within the TTL. (The simulator,
/// `tests/sim`, covers clients leaving at every point deterministically;
/// this is the proof in Envoy.)
#[test]
fn a_client_leaving_mid_run_leaves_no_stuck_state() {
    let s = leaving_rig(1, "600ms", "500ms", "5s");
    send_and_leave(s.envoy.port, "/readyz", Duration::ZERO);
    // The probe is gone before its callout is answered (db hangs): the run
    // goes on.
    wait_for_hits(&s, "db", 1);
    std::thread::sleep(Duration::from_millis(100));
    s.dep("db").set_mode(Mode::Status(200));
    // A probe now joins that run and gets its timeout, at the run's end.
    let r = s.get("/readyz?verbose", &[auth()]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            503,
            "[-]db failed: timeout after 500ms\nready check failed\n"
        )
    );
    within(&r, 500);
    // ...whose result is cached as usual: no second callout within the TTL.
    let r = s.get("/readyz?verbose", &[auth()]);
    assert_eq!(r.status, 503);
    assert_eq!(s.dep("db").hits(), 1);
    assert_healthy(&s);
}

/// The simulator (`tests/sim`) covers this case deterministically: every
/// probe answered once, by its deadline plus one tick, no stuck state. This
/// is the smoke test in a real Envoy, with generous margins.
#[test]
fn a_probe_joining_a_run_whose_client_left_is_still_answered() {
    let s = leaving_rig(1, "600ms", "500ms", "5s");
    let b = join_a_run_whose_client_leaves(&s, Duration::from_millis(150));
    // B gets the run A started, at its timeout (before B's own deadline).
    assert_eq!(
        (b.status, b.body.as_str()),
        (
            503,
            "[-]db failed: timeout after 500ms\nready check failed\n"
        )
    );
    assert_eq!(s.dep("db").hits(), 1);
    within(&b, 600);
    // The run's result is cached for the TTL: no further callout.
    std::thread::sleep(Duration::from_millis(400));
    let r = s.get("/readyz?verbose", &[auth()]);
    assert_eq!(r.status, 503);
    assert_eq!(s.dep("db").hits(), 1);
    assert_healthy(&s);
}

/// README: "the answer never takes longer" than the deadline. B arrives
/// right after A (so its deadline is A's, 900 ms), A leaves at 600 ms; B
/// gets the run A started, at its timeout (800 ms), within its deadline.
/// (Before root dispatch, the run was started again for B: ~600 + 20 +
/// 800 ms unless capped at B's deadline.)
/// The simulator (`tests/sim`) covers this case deterministically: every
/// probe answered once, by its deadline plus one tick, no stuck state. This
/// is the smoke test in a real Envoy, with generous margins.
#[test]
fn a_probe_joining_a_run_whose_client_left_is_answered_within_its_deadline() {
    let s = leaving_rig(1, "900ms", "800ms", "5s");
    let b = join_a_run_whose_client_leaves(&s, Duration::from_millis(600));
    assert_eq!(b.status, 503, "{}", b.body);
    within(&b, 900);
}

/// The simulator (`tests/sim`) covers this case deterministically: every
/// probe answered once, by its deadline plus one tick, no stuck state. This
/// is the smoke test in a real Envoy, with generous margins.
#[test]
fn clients_leaving_mid_run_on_two_workers_leave_no_stuck_state() {
    let s = leaving_rig(2, "600ms", "500ms", "1s");
    let port = s.envoy.port;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(20));
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                if i % 2 == 0 {
                    send_and_leave(port, "/readyz", Duration::from_millis(150));
                    None
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                    Some(get(port, "/readyz?verbose", &[auth()]))
                }
            })
        })
        .collect();
    for r in clients.into_iter().filter_map(|c| c.join().unwrap()) {
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(
            r.body == "[-]db failed: timeout after 500ms\nready check failed\n"
                || r.body == "[-]db failed: deadline 600ms exceeded\nready check failed\n"
                || r.body == "warn: deadline exceeded waiting for the run on another worker\nready check failed\n",
            "{}",
            r.body
        );
        // Within its own deadline (600 ms), whoever's run it joined.
        within(&r, 600);
    }
    // Both workers took probes (else this would test one worker).
    let (_, stats) = s
        .envoy
        .admin_get("/stats?filter=downstream_cx_total")
        .unwrap();
    for w in ["worker_0", "worker_1"] {
        let n: u64 = stats
            .lines()
            .find(|l| l.starts_with("listener.127.0.0.1_") && l.contains(w))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0);
        assert!(n > 0, "{w} took no probe:\n{stats}");
    }
    // Once the failed result expires, the recovered dependency is seen.
    s.dep("db").set_mode(Mode::Status(200));
    std::thread::sleep(Duration::from_millis(1_100));
    for _ in 0..4 {
        let r = s.get("/readyz?verbose", &[auth()]);
        assert_eq!((r.status, r.body.as_str()), (200, VERBOSE_OK));
        within(&r, 100);
    }
    assert_healthy(&s);
}
