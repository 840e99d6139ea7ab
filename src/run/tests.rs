use super::*;
use crate::fixtures::policy;
use crate::report::Health;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn ok() -> CalloutResponse<'static> {
    CalloutResponse {
        status: Some("200"),
        body: b"",
        body_size: 0,
    }
}

#[test]
fn liveness_is_complete_at_once_with_no_callouts() {
    let p = policy();
    let mut run = ProbeRun::start(&p, 0, 1_000);
    assert!(run.callouts(&p).is_empty());
    let report = run.poll(&p, 1_000).unwrap();
    assert_eq!((report.health, report.checks.len()), (Health::Pass, 0));
    assert_eq!(report.endpoint, "live");
}

#[test]
fn callouts_carry_method_path_authority_headers_and_timeout() {
    let p = policy();
    let run = ProbeRun::start(&p, 1, 0);
    let calls = run.callouts(&p);
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].cluster, "db");
    assert_eq!(
        calls[0].headers,
        vec![
            (":method", "GET"),
            (":path", "/health"),
            (":authority", "db"),
            ("user-agent", "meshprobe"),
            ("x-probe", "meshprobe")
        ]
    );
    assert_eq!(calls[0].timeout_ms, 500);
    assert_eq!(calls[1].timeout_ms, 300);
    assert_eq!(calls[2].headers[0], (":method", "HEAD"));
    assert_eq!(calls[2].headers[2], (":authority", "search.local"));
    assert_eq!(calls[2].timeout_ms, 500);
}

#[test]
fn pending_until_the_last_answer_in_any_order() {
    let p = policy();
    let mut run = ProbeRun::start(&p, 1, 100);
    run.response(&p, 2, &ok(), 130);
    assert!(run.poll(&p, 130).is_none());
    run.response(&p, 0, &ok(), 150);
    assert_eq!(run.pending(), 1);
    assert!(run.poll(&p, 150).is_none());
    run.response(&p, 1, &ok(), 180);
    let report = run.poll(&p, 180).unwrap();
    assert_eq!(report.health, Health::Pass);
    let latencies: Vec<u64> = report.checks.iter().map(|c| c.latency_ms).collect();
    assert_eq!(latencies, vec![50, 80, 30]);
}

#[test]
fn aggregation_of_mixed_outcomes() {
    let p = policy();
    let fail = CalloutResponse {
        status: Some("500"),
        body: b"",
        body_size: 0,
    };
    // Non-critical cache fails: warn, still 200.
    let mut run = ProbeRun::start(&p, 1, 0);
    run.response(&p, 0, &ok(), 5);
    run.response(&p, 1, &fail, 5);
    run.response(&p, 2, &ok(), 5);
    let r = run.poll(&p, 5).unwrap();
    assert_eq!(r.health, Health::Warn);
    assert_eq!(
        r.checks[1].reason.as_deref(),
        Some("unexpected status 500 (expected 200-299)")
    );
    // Critical db fails: fail.
    let mut run = ProbeRun::start(&p, 1, 0);
    run.response(&p, 0, &fail, 5);
    run.response(&p, 1, &ok(), 5);
    run.response(&p, 2, &ok(), 5);
    assert_eq!(run.poll(&p, 5).unwrap().health, Health::Fail);
}

#[test]
fn dispatch_errors_fail_the_check_at_once() {
    let p = policy();
    let mut run = ProbeRun::start(&p, 2, 0);
    run.dispatch_failed(&p, 0, DispatchError::BadArgument, 0);
    let r = run.poll(&p, 0).unwrap();
    assert_eq!(r.health, Health::Fail);
    assert_eq!(
        r.checks[0].reason.as_deref(),
        Some("dispatch failed: unknown cluster \"db\"")
    );
}

#[test]
fn the_deadline_fails_whatever_is_still_pending() {
    let p = policy();
    let mut run = ProbeRun::start(&p, 1, 1_000);
    run.response(&p, 1, &ok(), 1_010);
    assert!(run.poll(&p, 1_799).is_none());
    let r = run.poll(&p, 1_800).unwrap();
    assert_eq!(r.health, Health::Fail);
    assert_eq!(
        r.checks[0].reason.as_deref(),
        Some("deadline 800ms exceeded")
    );
    assert_eq!(r.checks[0].latency_ms, 800);
    assert_eq!(r.checks[1].health, Health::Pass);
}

#[test]
fn late_duplicate_and_unknown_answers_change_nothing() {
    let p = policy();
    let mut run = ProbeRun::start(&p, 2, 0);
    run.response(&p, 0, &ok(), 10);
    let fail = CalloutResponse {
        status: Some("500"),
        body: b"",
        body_size: 0,
    };
    run.response(&p, 0, &fail, 20);
    run.response(&p, 7, &fail, 20);
    run.dispatch_failed(&p, 9, DispatchError::Other(10), 20);
    let r = run.poll(&p, 20).unwrap();
    assert_eq!(r.health, Health::Pass);
    assert_eq!(r.checks[0].latency_ms, 10);
}

/// Host clock times (ms since the epoch) are far past `u32::MAX`, which is
/// `usize::MAX` on wasm32: start, latencies and deadline must stay u64.
#[test]
fn times_past_u32_max_keep_their_latencies_and_deadline() {
    let p = policy();
    let start = u64::from(u32::MAX) - 20;
    let mut run = ProbeRun::start(&p, 1, start);
    assert_eq!(run.deadline_at(), start + 800);
    run.response(&p, 0, &ok(), start + 30);
    run.response(&p, 2, &ok(), start + 10);
    assert!(run.poll(&p, start + 799).is_none());
    let r = run.poll(&p, start + 800).unwrap();
    let latencies: Vec<u64> = r.checks.iter().map(|c| c.latency_ms).collect();
    assert_eq!(latencies, vec![30, 800, 10]);
    assert_eq!(r.at_ms, start + 800);
}

#[test]
fn a_clock_that_goes_backwards_does_not_underflow() {
    let p = policy();
    let mut run = ProbeRun::start(&p, 2, 1_000);
    run.response(&p, 0, &ok(), 900);
    let r = run.poll(&p, 900).unwrap();
    assert_eq!(r.checks[0].latency_ms, 0);
}
