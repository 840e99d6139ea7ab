use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::policy::Policy;

/// [`super::evaluate`] with the failure as its reason text.
fn evaluate(
    response: &CalloutResponse<'_>,
    check: &Check,
    timeout_ms: u64,
    elapsed_ms: u64,
) -> Result<(), String> {
    super::evaluate(response, check, timeout_ms, elapsed_ms).map_err(|f| f.to_string())
}

fn dispatch_reason(err: DispatchError, cluster: &str) -> String {
    dispatch_failure(err, cluster).to_string()
}

/// A check from policy JSON (the `checks[0]` of a minimal policy).
fn check(json: &str) -> Check {
    let policy = format!(
        r#"{{"endpoints":[{{"name":"r","path":"/r","access":"public","checks":["c"]}}],"checks":[{json}]}}"#
    );
    Policy::from_json(policy.as_bytes(), &|_| None)
        .unwrap()
        .checks
        .remove(0)
}

fn plain() -> Check {
    check(r#"{"name":"c","cluster":"c"}"#)
}

fn eval(status: Option<&str>, body: &str, elapsed: u64) -> Result<(), String> {
    let response = CalloutResponse {
        status,
        body: body.as_bytes(),
        body_size: body.len(),
    };
    evaluate(&response, &plain(), 500, elapsed)
}

#[test]
fn body_expectations() {
    let contains = check(r#"{"name":"c","cluster":"c","expect_body":{"contains":"PONG"}}"#);
    let indicator = check(
        r#"{"name":"c","cluster":"c","expect_body":{"pointer":"/status/indicator","equals":"none"}}"#,
    );
    let celery = check(
        r#"{"name":"c","cluster":"c","expect_body":{"pointer":"/ok","one_of":["pong","PONG"]}}"#,
    );
    let small = check(r#"{"name":"c","cluster":"c","max_body":8,"expect_body":{"contains":"x"}}"#);
    let cases: &[(&Check, &str, Result<(), &str>)] = &[
        (&contains, "+PONG\r\n", Ok(())),
        (&contains, "+PING", Err("body does not contain \"PONG\"")),
        (
            &indicator,
            r#"{"status":{"indicator":"none","description":"All Systems Operational"}}"#,
            Ok(()),
        ),
        (
            &indicator,
            r#"{"status":{"indicator":"major"}}"#,
            Err("/status/indicator is \"major\" (expected \"none\")"),
        ),
        (
            &indicator,
            r#"{"status":{}}"#,
            Err("body has no value at \"/status/indicator\""),
        ),
        (
            &indicator,
            "\u{ff}not json",
            Err("body is not JSON (expected value at line 1 column 1)"),
        ),
        (&celery, r#"{"ok":"pong"}"#, Ok(())),
        (&celery, r#"{"ok":"PONG"}"#, Ok(())),
        (
            &celery,
            r#"{"ok":1}"#,
            Err("/ok is 1 (expected \"pong\" or \"PONG\")"),
        ),
        (&small, "xxxxxxxx", Ok(())),
        (
            &small,
            "xxxxxxxxx",
            Err("body of 9 bytes is over max_body 8"),
        ),
    ];
    for (check, body, want) in cases {
        let got = evaluate(
            &CalloutResponse {
                status: Some("200"),
                body: body.as_bytes(),
                body_size: body.len(),
            },
            check,
            500,
            1,
        );
        assert_eq!(got, want.map_err(String::from), "{body:?}");
    }
    // The body is not consulted when the status already failed.
    let r = evaluate(
        &CalloutResponse {
            status: Some("500"),
            body: b"PONG",
            body_size: 4,
        },
        &contains,
        500,
        1,
    );
    assert_eq!(r, Err("unexpected status 500 (expected 200-299)".into()));
}

#[test]
fn how_much_body_the_host_reads() {
    let contains =
        check(r#"{"name":"c","cluster":"c","max_body":100,"expect_body":{"contains":"x"}}"#);
    assert_eq!(body_bytes_needed(&contains, Some("200"), 100), 100);
    assert_eq!(body_bytes_needed(&contains, Some("200"), 101), 0);
    assert_eq!(body_bytes_needed(&plain(), Some("200"), 5000), 0);
    assert_eq!(
        body_bytes_needed(&plain(), Some("503"), 5000),
        DIAGNOSTIC_BODY_BYTES
    );
    assert_eq!(body_bytes_needed(&plain(), Some("504"), 20), 20);
    assert_eq!(
        body_bytes_needed(&plain(), Some("502"), 5000),
        DIAGNOSTIC_BODY_BYTES
    );
}

#[test]
#[allow(clippy::type_complexity)]
fn outcome_table() {
    let protocol =
        "upstream connect error or disconnect/reset before headers. reset reason: protocol error";
    let refused = "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused";
    let cases: &[(Option<&str>, &str, u64, Result<(), &str>)] = &[
        (Some("200"), "", 3, Ok(())),
        (Some("204"), "", 3, Ok(())),
        (Some("500"), "boom", 3, Err("unexpected status 500 (expected 200-299)")),
        (Some("301"), "", 3, Err("unexpected status 301 (expected 200-299)")),
        (Some("504"), "upstream request timeout", 500, Err("timeout after 500ms")),
        (Some("504"), "", 501, Err("timeout after 500ms")),
        (Some("504"), "gateway says no", 10, Err("unexpected status 504 (expected 200-299)")),
        (Some("503"), "no healthy upstream", 1, Err("no healthy upstream")),
        (
            Some("503"),
            refused,
            1,
            Err("connection failed: remote connection failure, transport failure reason: delayed connect error: Connection refused"),
        ),
        (Some("503"), "maintenance", 1, Err("unexpected status 503 (expected 200-299)")),
        // Envoy 1.36 and 1.40, for an answer that is not HTTP.
        (Some("502"), protocol, 1, Err("protocol error: the answer is not valid HTTP")),
        (
            Some("502"),
            "upstream connect error or disconnect/reset before headers. reset reason: protocol error, transport failure reason: x",
            1,
            Err("protocol error: the answer is not valid HTTP (transport failure reason: x)"),
        ),
        (Some("502"), "Bad Gateway", 1, Err("unexpected status 502 (expected 200-299)")),
        (Some("502"), "upstream connect error", 1, Err("unexpected status 502 (expected 200-299)")),
        (
            Some("502"),
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            1,
            Err("connection failed: connection termination"),
        ),
        (None, "", 1, Err("connection failed: the answer broke off before it was complete")),
        (None, "", 500, Err("timeout after 500ms")),
        (None, "", 495, Err("timeout after 500ms")),
        (None, "", 480, Err("connection failed: the answer broke off before it was complete")),
        (Some("abc"), "", 1, Err("response with an invalid :status \"abc\"")),
    ];
    for (status, body, elapsed, want) in cases {
        let got = eval(*status, body, *elapsed);
        assert_eq!(got, want.map_err(String::from), "{status:?} {body:?}");
    }
}

#[test]
fn expected_set_can_include_failures() {
    let c = check(r#"{"name":"c","cluster":"c","expect_status":[200,"401-403"]}"#);
    let r = CalloutResponse {
        status: Some("401"),
        body: b"",
        body_size: 0,
    };
    assert_eq!(evaluate(&r, &c, 500, 1), Ok(()));
    let r = CalloutResponse {
        status: Some("404"),
        body: b"",
        body_size: 0,
    };
    assert_eq!(
        evaluate(&r, &c, 500, 1),
        Err("unexpected status 404 (expected 200, 401-403)".into())
    );
}

/// Envoy's own 502 for a protocol error is not the dependency's status:
/// accepting 502 does not make it pass.
#[test]
fn a_protocol_error_fails_whatever_statuses_are_expected() {
    let any = check(r#"{"name":"c","cluster":"c","expect_status":["200-599"]}"#);
    let body =
        b"upstream connect error or disconnect/reset before headers. reset reason: protocol error";
    let r = CalloutResponse {
        status: Some("502"),
        body,
        body_size: body.len(),
    };
    assert_eq!(
        super::evaluate(&r, &any, 500, 1),
        Err(Failure::ProtocolError {
            detail: String::new()
        })
    );
    let own = CalloutResponse {
        status: Some("502"),
        body: b"<html>Bad Gateway</html>",
        body_size: 24,
    };
    assert_eq!(super::evaluate(&own, &any, 500, 1), Ok(()));
}

/// On wasm32 a `usize` body size tops out at `u32::MAX`; against the
/// u64 `max_body` (up to 16 MiB) neither side may be truncated.
#[test]
fn body_sizes_up_to_usize_max() {
    let largest =
        check(r#"{"name":"c","cluster":"c","max_body":16777216,"expect_body":{"contains":"x"}}"#);
    let max = 16 * 1024 * 1024;
    assert_eq!(body_bytes_needed(&largest, Some("200"), max), max);
    assert_eq!(body_bytes_needed(&largest, Some("200"), max + 1), 0);
    assert_eq!(body_bytes_needed(&largest, Some("200"), usize::MAX), 0);
    assert_eq!(
        body_bytes_needed(&plain(), Some("503"), usize::MAX),
        DIAGNOSTIC_BODY_BYTES
    );
    let huge = CalloutResponse {
        status: Some("200"),
        body: b"",
        body_size: usize::MAX,
    };
    assert_eq!(
        evaluate(&huge, &largest, 500, 1),
        Err(format!(
            "body of {} bytes is over max_body 16777216",
            usize::MAX
        ))
    );
}

#[test]
fn dispatch_reasons_name_the_cluster() {
    assert_eq!(
        dispatch_reason(DispatchError::BadArgument, "dbb"),
        "dispatch failed: unknown cluster \"dbb\""
    );
    assert_eq!(
        dispatch_reason(DispatchError::FailedAtOnce, "void"),
        "no healthy upstream: cluster \"void\" failed the callout as it was sent"
    );
}
