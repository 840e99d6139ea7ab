//! Dependencies that misbehave in every way we could think of.

use super::*;

/// The reason of a check whose dependency does not speak HTTP.
const PROTOCOL_ERROR: &str = "protocol error: the answer is not valid HTTP";

/// The simulator (`tests/sim`) covers this case deterministically: every
/// probe answered once, by its deadline plus one tick, no stuck state. This
/// is the smoke test in a real Envoy, with generous margins.
#[test]
fn a_hanging_dependency_fails_with_its_timeout_within_the_deadline() {
    let s = rig(
        "600ms",
        &[
            r#"{"name": "hung", "cluster": "hung", "timeout": "300ms"}"#,
            r#"{"name": "fine", "cluster": "fine"}"#,
        ],
        &[("hung", Mode::Hang), ("fine", Mode::Status(200))],
    );
    let (r, v) = report(&s);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(verdict(&v, "hung"), fail("timeout after 300ms"));
    assert_eq!(verdict(&v, "fine"), pass());
    // Answered when the hung check timed out, not at the deadline.
    assert!(r.elapsed >= Duration::from_millis(290), "{:?}", r.elapsed);
    within(&r, 300);
    assert_healthy(&s);
}

#[test]
fn a_dependency_that_closes_without_answering_fails_as_a_connection_failure() {
    let s = rig(
        "600ms",
        &[r#"{"name": "closer", "cluster": "closer"}"#],
        &[("closer", Mode::Close)],
    );
    let (r, v) = report(&s);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(
        verdict(&v, "closer"),
        fail("connection failed: connection termination")
    );
    within(&r, 100);
    assert_eq!(s.dep("closer").hits(), 1);
    assert_healthy(&s);
}

/// A dependency that does not speak HTTP (an SSH banner, a Redis error,
/// binary, a broken status line or header): Envoy resets the callout and
/// answers it with its own 502 ("... reset reason: protocol error"). The
/// reason names the fault; it is not the dependency's status, so an
/// `expect_status` that accepts 502 does not make it pass.
#[test]
fn a_dependency_that_speaks_garbage_fails_with_a_protocol_error() {
    let garbage: &[(&str, &[u8])] = &[
        ("ssh", b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"),
        ("redis", b"-ERR unknown command 'GET'\r\n"),
        ("binary", b"\x00\x01\x02\xff\xfe\r\n\r\n"),
        ("status", b"HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n"),
        (
            "header",
            b"HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 0\r\n\r\n",
        ),
    ];
    let mut checks: Vec<String> = garbage
        .iter()
        .map(|(name, _)| format!(r#"{{"name": "{name}", "cluster": "{name}"}}"#))
        .collect();
    checks.push(r#"{"name": "any", "cluster": "ssh", "expect_status": ["200-599"]}"#.to_string());
    let checks: Vec<&str> = checks.iter().map(String::as_str).collect();
    let deps: Vec<(&str, Mode)> = garbage
        .iter()
        .map(|(name, bytes)| (*name, Mode::Raw(bytes.to_vec())))
        .collect();
    let s = rig("600ms", &checks, &deps);
    let (r, v) = report(&s);
    assert_eq!(r.status, 503, "{}", r.body);
    for name in garbage.iter().map(|(n, _)| *n).chain(["any"]) {
        assert_eq!(verdict(&v, name), fail(PROTOCOL_ERROR), "{name}");
    }
    // What the module saw was Envoy's own 502, not an answer: the
    // dependency never sent a status.
    for (name, _) in garbage {
        let hits = s.dep(name).hits();
        assert_eq!(
            s.envoy
                .stat(&format!("cluster.{name}.upstream_rq_502"))
                .map(|n| n as usize),
            Some(hits),
            "{name}"
        );
    }
    within(&r, 100);
    assert_healthy(&s);
}

#[test]
fn answers_without_a_body_pass_on_status_and_fail_body_expectations() {
    let empty = raw_response(200, "", b"");
    // No content-length: the body ends when the connection closes.
    let unframed = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
    let s = rig(
        "600ms",
        &[
            r#"{"name": "empty", "cluster": "empty"}"#,
            r#"{"name": "unframed", "cluster": "unframed"}"#,
            r#"{"name": "nocontent", "cluster": "nocontent", "expect_status": [204]}"#,
            r#"{"name": "contains", "cluster": "empty", "expect_body": {"contains": "PONG"}}"#,
            r#"{"name": "pointer", "cluster": "unframed", "expect_body": {"pointer": "/ok", "equals": "pong"}}"#,
        ],
        &[
            ("empty", Mode::Raw(empty)),
            ("unframed", Mode::Raw(unframed)),
            ("nocontent", Mode::Raw(raw_response(204, "", b""))),
        ],
    );
    let (r, v) = report(&s);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(verdict(&v, "empty"), pass());
    assert_eq!(verdict(&v, "unframed"), pass());
    assert_eq!(verdict(&v, "nocontent"), pass());
    assert_eq!(
        verdict(&v, "contains"),
        fail("body does not contain \"PONG\"")
    );
    assert_eq!(
        verdict(&v, "pointer"),
        fail("body is not JSON (EOF while parsing a value at line 1 column 0)")
    );
    within(&r, 100);
    assert_healthy(&s);
}

/// `max_body` semantics (src/outcome.rs): without `expect_body` the body is
/// never read, so its size does not matter; with one, a body over
/// `max_body` fails without being read; under it, it is read whole.
#[test]
fn a_10_mib_body_passes_unread_fails_over_max_body_and_is_read_under_it() {
    const SIZE: usize = 10 * 1024 * 1024;
    let mut body = vec![b'x'; SIZE - 4];
    body.extend_from_slice(b"PONG");
    let s = rig(
        "3s",
        &[
            r#"{"name": "unread", "cluster": "big", "timeout": "2s"}"#,
            r#"{"name": "capped", "cluster": "big", "timeout": "2s", "expect_body": {"contains": "PONG"}}"#,
            r#"{"name": "whole", "cluster": "big", "timeout": "2s", "max_body": 16777216,
                "expect_body": {"contains": "PONG"}}"#,
        ],
        &[("big", Mode::Raw(raw_response(200, "", &body)))],
    );
    for _ in 0..2 {
        let (r, v) = report(&s);
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(verdict(&v, "unread"), pass());
        assert_eq!(
            verdict(&v, "capped"),
            fail(&format!("body of {SIZE} bytes is over max_body 65536"))
        );
        assert_eq!(verdict(&v, "whole"), pass());
        println!("3 x 10 MiB callouts answered in {:?}", r.elapsed);
        within(&r, 3000);
    }
    assert_eq!(s.dep("big").hits(), 6);
    assert_healthy(&s);
}

#[test]
fn a_dependency_answering_byte_by_byte_passes_when_fast_enough_and_times_out_when_not() {
    // 40 bytes, one every 20 ms: the whole answer takes ~0.8 s.
    let ok = raw_response(200, "", b"ok\n");
    let s = rig(
        "1500ms",
        &[
            r#"{"name": "crawl", "cluster": "crawl", "timeout": "300ms"}"#,
            r#"{"name": "dribble", "cluster": "crawl", "timeout": "1400ms"}"#,
        ],
        &[("crawl", Mode::Trickle(Vec::new(), 20, ok))],
    );
    let (r, v) = report(&s);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(verdict(&v, "crawl"), fail("timeout after 300ms"));
    assert_eq!(verdict(&v, "dribble"), pass());
    let latency = v["checks"]["dribble"]["latency_ms"].as_u64().unwrap();
    assert!(latency >= 700, "a 0.8 s answer took {latency} ms");
    within(&r, 1400);
    assert_healthy(&s);
}

/// A callout that fails after its response head arrived: Envoy reports it
/// with no response headers at all (`proxy_on_http_call_response` with 0
/// headers), unlike a failure before the head (a local 503/504 reply).
fn head_then_failure(mode: Mode) -> (Stack, Option<Response>) {
    let s = rig(
        "600ms",
        &[
            r#"{"name": "cut", "cluster": "cut", "timeout": "300ms"}"#,
            r#"{"name": "fine", "cluster": "fine"}"#,
        ],
        &[("cut", mode), ("fine", Mode::Status(200))],
    );
    let r = support::http::try_request(
        s.envoy.port,
        "GET",
        "/readyz?format=json",
        &[auth()],
        "HTTP/1.1",
    );
    (s, r)
}

fn assert_answered_with_a_failed_check(s: &Stack, r: Option<Response>, reason: &str) {
    let log = s.envoy.log_text();
    assert!(!log.contains("panicked"), "the VM panicked:\n{log}");
    let r = r.expect("the probe was never answered");
    assert_eq!(r.status, 503, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let (status, got) = verdict(&v, "cut");
    assert_eq!(status, "fail");
    assert!(
        got.starts_with(reason),
        "reason {got:?}, wanted {reason:?}..."
    );
    assert_eq!(verdict(&v, "fine"), pass());
    within(&r, 600);
}

#[test]
fn a_body_slower_than_the_timeout_fails_as_a_timeout() {
    let ok = raw_response(200, "", b"ok\n");
    let (head, body) = ok.split_at(ok.len() - 3);
    let (s, r) = head_then_failure(Mode::Trickle(head.to_vec(), 200, body.to_vec()));
    assert_answered_with_a_failed_check(&s, r, "timeout after 300ms");
}

#[test]
fn a_body_cut_short_fails_the_check() {
    let cut = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort".to_vec();
    let (s, r) = head_then_failure(Mode::Raw(cut));
    // Whatever the wording, the check fails (and says why).
    assert_answered_with_a_failed_check(&s, r, "");
}

#[test]
fn non_utf8_and_invalid_json_bodies_fail_json_expectations_and_stay_renderable() {
    let binary: &[u8] = b"\xff\xfe\x00PONG\xc0\xaf\x80";
    let s = rig(
        "600ms",
        &[
            r#"{"name": "binjson", "cluster": "binary", "expect_body": {"pointer": "/ok", "equals": "pong"}}"#,
            r#"{"name": "bincontains", "cluster": "binary", "expect_body": {"contains": "PONG"}}"#,
            r#"{"name": "truncated", "cluster": "truncated", "expect_body": {"pointer": "/ok", "equals": "pong"}}"#,
            r#"{"name": "html", "cluster": "html", "expect_body": {"pointer": "/ok", "equals": "pong"}}"#,
            r#"{"name": "novalue", "cluster": "other", "expect_body": {"pointer": "/ok", "equals": "pong"}}"#,
            r#"{"name": "wrongvalue", "cluster": "other", "expect_body": {"pointer": "/state", "equals": "pong"}}"#,
            r#"{"name": "bin503", "cluster": "bin503"}"#,
        ],
        &[
            ("binary", Mode::Raw(raw_response(200, "", binary))),
            (
                "truncated",
                Mode::Raw(raw_response(200, "", b"{\"ok\": \"po")),
            ),
            (
                "html",
                Mode::Raw(raw_response(
                    200,
                    "content-type: text/html\r\n",
                    b"<html>pong</html>",
                )),
            ),
            (
                "other",
                Mode::Raw(raw_response(
                    200,
                    "",
                    "{\"state\": \"p\u{f6}ng\\u0000\"}".as_bytes(),
                )),
            ),
            ("bin503", Mode::Raw(raw_response(503, "", binary))),
        ],
    );
    let (r, v) = report(&s);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(
        verdict(&v, "binjson"),
        fail("body is not JSON (expected value at line 1 column 1)")
    );
    // `contains` compares bytes: the body need not be UTF-8.
    assert_eq!(verdict(&v, "bincontains"), pass());
    assert_eq!(
        verdict(&v, "truncated"),
        fail("body is not JSON (EOF while parsing a string at line 1 column 10)")
    );
    assert_eq!(
        verdict(&v, "html"),
        fail("body is not JSON (expected value at line 1 column 1)")
    );
    assert_eq!(verdict(&v, "novalue"), fail("body has no value at \"/ok\""));
    assert_eq!(
        verdict(&v, "wrongvalue"),
        fail("/state is \"p\u{f6}ng\\u0000\" (expected \"pong\")")
    );
    assert_eq!(
        verdict(&v, "bin503"),
        fail("unexpected status 503 (expected 200-299)")
    );
    // Every view still renders (the JSON above parsed; HTML and feeds too).
    for format in ["text", "html", "atom", "rss", "health", "dhc"] {
        let r = s.get(&format!("/readyz?verbose&format={format}"), &[auth()]);
        assert!(
            matches!(r.status, 200 | 503) && !r.body.is_empty(),
            "{format}: {r:?}"
        );
        assert!(!r.body.contains('\0'), "{format} holds a NUL: {:?}", r.body);
    }
    assert_healthy(&s);
}

/// Envoy finds no host while dispatching and `dispatch_http_call` returns
/// InternalFailure (the request failed as it was sent): the reason says so.
#[test]
fn a_cluster_without_endpoints_fails_with_no_healthy_upstream() {
    let s = rig_with(
        "600ms",
        &[r#"{"name": "void", "cluster": "void"}"#],
        &[],
        &Options {
            empty_clusters: &["void"],
            ..Options::default()
        },
    );
    let (r, v) = report(&s);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(
        verdict(&v, "void"),
        fail("no healthy upstream: cluster \"void\" failed the callout as it was sent")
    );
    within(&r, 100);
    assert_healthy(&s);
}

/// The simulator (`tests/sim`) covers this case deterministically: every
/// probe answered once, by its deadline plus one tick, no stuck state. This
/// is the smoke test in a real Envoy, with generous margins.
#[test]
fn every_dependency_down_at_once_is_one_503_naming_each_cause() {
    let s = rig_with(
        "600ms",
        &[
            r#"{"name": "hung", "cluster": "hung", "timeout": "300ms"}"#,
            r#"{"name": "closer", "cluster": "closer"}"#,
            r#"{"name": "refused", "cluster": "closed"}"#,
            r#"{"name": "broken", "cluster": "broken"}"#,
            r#"{"name": "void", "cluster": "void"}"#,
            r#"{"name": "ghost", "cluster": "no-such-cluster"}"#,
            r#"{"name": "optional", "cluster": "hung", "critical": false}"#,
        ],
        &[
            ("hung", Mode::Hang),
            ("closer", Mode::Close),
            ("broken", Mode::Status(500)),
        ],
        &Options {
            empty_clusters: &["void"],
            ..Options::default()
        },
    );
    for _ in 0..2 {
        let (r, v) = report(&s);
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(v["status"], "fail");
        assert_eq!(verdict(&v, "hung"), fail("timeout after 300ms"));
        assert_eq!(
            verdict(&v, "closer"),
            fail("connection failed: connection termination")
        );
        let (status, reason) = verdict(&v, "refused");
        assert_eq!(status, "fail");
        assert!(
            reason.starts_with("connection failed: remote connection failure"),
            "{reason}"
        );
        assert_eq!(
            verdict(&v, "broken"),
            fail("unexpected status 500 (expected 200-299)")
        );
        // Its exact reason: a_cluster_without_endpoints_fails_with_no_healthy_upstream.
        assert_eq!(verdict(&v, "void").0, "fail");
        assert_eq!(
            verdict(&v, "ghost"),
            fail("dispatch failed: unknown cluster \"no-such-cluster\"")
        );
        // Non-critical: a warning, not the failure.
        assert_eq!(
            verdict(&v, "optional"),
            ("warn".into(), "timeout after 500ms".into())
        );
        within(&r, 500);
        assert!(r.elapsed >= Duration::from_millis(490), "{:?}", r.elapsed);
    }
    assert_healthy(&s);
}
