use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Every cause: its reason text (the wording the README and the end-to-end
/// tests quote) and its metric label.
#[test]
fn every_cause_has_its_text_and_label() {
    use Failure::*;
    let s = |t: &str| t.to_string();
    let cases: Vec<(Failure, &str, &str)> = vec![
        (
            Status {
                status: 500,
                expected: s("200-299"),
            },
            "unexpected status 500 (expected 200-299)",
            "fail",
        ),
        (
            InvalidStatus { raw: s("abc") },
            "response with an invalid :status \"abc\"",
            "fail",
        ),
        (Timeout { after_ms: 500 }, "timeout after 500ms", "timeout"),
        (
            ConnectionFailed {
                detail: s("connection termination"),
            },
            "connection failed: connection termination",
            "refused",
        ),
        (
            BrokeOff,
            "connection failed: the answer broke off before it was complete",
            "refused",
        ),
        (NoHealthyUpstream, "no healthy upstream", "refused"),
        (
            ProtocolError { detail: s("") },
            "protocol error: the answer is not valid HTTP",
            "protocol_error",
        ),
        (
            ProtocolError {
                detail: s("transport failure reason: x"),
            },
            "protocol error: the answer is not valid HTTP (transport failure reason: x)",
            "protocol_error",
        ),
        (
            BodyTooLarge { size: 9, max: 8 },
            "body of 9 bytes is over max_body 8",
            "fail",
        ),
        (
            BodyLacks { text: s("PONG") },
            "body does not contain \"PONG\"",
            "fail",
        ),
        (
            BodyNotJson {
                detail: s("expected value at line 1 column 1"),
            },
            "body is not JSON (expected value at line 1 column 1)",
            "fail",
        ),
        (
            NoValueAt { pointer: s("/ok") },
            "body has no value at \"/ok\"",
            "fail",
        ),
        (
            ValueMismatch {
                pointer: s("/ok"),
                found: s("1"),
                expected: s("\"pong\""),
            },
            "/ok is 1 (expected \"pong\")",
            "fail",
        ),
        (
            UnknownCluster { cluster: s("dbb") },
            "dispatch failed: unknown cluster \"dbb\"",
            "dispatch_error",
        ),
        (
            NoUsableHost { cluster: s("void") },
            "no healthy upstream: cluster \"void\" failed the callout as it was sent",
            "refused",
        ),
        (
            DispatchFailed { code: 7 },
            "dispatch failed: host status 7",
            "dispatch_error",
        ),
        (
            DeadlineExceeded { deadline_ms: 800 },
            "deadline 800ms exceeded",
            "timeout",
        ),
        (
            DeadlineExceeded { deadline_ms: 2000 },
            "deadline 2s exceeded",
            "timeout",
        ),
        (
            WaitExceeded,
            "deadline exceeded waiting for the run on another worker",
            "timeout",
        ),
        (
            Stale {
                age_ms: 61_000,
                max_stale_ms: 60_000,
            },
            "stale result (61000ms old, max_stale 60000ms)",
            "stale",
        ),
        (NoResultYet, "no result yet", "no_result"),
        (
            Slow {
                took_ms: 350,
                limit_ms: 200,
            },
            "slow: took 350ms (warn_after 200ms)",
            "pass",
        ),
        (
            AdminBodyTooLarge { size: 9, max: 8 },
            "admin answer of 9 bytes is over max_body 8",
            "fail",
        ),
        (
            AdminNotJson {
                what: s("/memory"),
                detail: s("expected value at line 1 column 1"),
            },
            "/memory answer is not JSON (expected value at line 1 column 1)",
            "fail",
        ),
        (
            ServerState {
                state: s("DRAINING"),
            },
            "Envoy is DRAINING",
            "fail",
        ),
        (NoServerState, "/server_info answer has no state", "fail"),
        (
            ClusterMissing { cluster: s("nope") },
            "cluster \"nope\" is not in /clusters",
            "fail",
        ),
        (
            ClusterUnhealthy {
                healthy: 2,
                total: 4,
                min_percent: 51,
            },
            "2 of 4 hosts healthy (50%, minimum 51%)",
            "fail",
        ),
        (
            ClusterUnhealthy {
                healthy: 0,
                total: 0,
                min_percent: 1,
            },
            "0 of 0 hosts healthy (0%, minimum 1%)",
            "fail",
        ),
        (NoAllocated, "/memory answer has no allocated bytes", "fail"),
        (
            MemoryOverLimit {
                allocated: 1600,
                limit: 1000,
            },
            "allocated 1.5 KiB is over the limit 1000 B",
            "warn",
        ),
        (
            MemoryOverLimit {
                allocated: 6 << 20,
                limit: 4 << 30,
            },
            "allocated 6 MiB is over the limit 4 GiB",
            "warn",
        ),
    ];
    for (failure, text, label) in &cases {
        assert_eq!(failure.to_string(), *text);
        assert_eq!(failure.label(), *label, "{text}");
    }
    // Labels are metric name segments: no dot, nothing Envoy's tag regex
    // would split.
    for (failure, ..) in &cases {
        let label = failure.label();
        assert!(
            label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{label}"
        );
    }
}

#[test]
fn the_shared_result_keeps_the_reason_not_the_cause() {
    use crate::report::{CheckReport, Report};
    let failed = CheckReport::new("db", true, Err(Failure::Timeout { after_ms: 500 }), 501);
    assert_eq!(failed.failure, Some(Failure::Timeout { after_ms: 500 }));
    let report = Report::new("ready", vec![failed]);
    let back = crate::cache::decode(&crate::cache::encode(&report)).unwrap();
    let check = &back.checks[0];
    assert_eq!(check.reason.as_deref(), Some("timeout after 500ms"));
    assert_eq!(check.failure, None);
    assert_eq!(back.health, report.health);
}

#[test]
fn truncation_respects_char_boundaries() {
    assert_eq!(truncate("ééé", 3), "é");
    assert_eq!(truncate("abc", 3), "abc");
    assert_eq!(truncate("abc", 0), "");
}
