//! What a callout's answer means for its check.
//!
//! Envoy reports its own failures to reach a cluster as local replies: a
//! timeout arrives as 504 `upstream request timeout`, a refused or reset
//! connection as 503 `upstream connect error ...`, a cluster without healthy
//! hosts as 503 `no healthy upstream`. Those become reasons that name the
//! cause rather than "unexpected status".

use crate::policy::StatusSet;

/// How much of a callout's body the host passes in to explain a 503/504.
pub const DIAGNOSTIC_BODY_BYTES: usize = 256;

/// A callout answer as the host read it.
#[derive(Debug, Clone, Copy)]
pub struct CalloutResponse<'a> {
    /// The raw `:status` value, `None` when the answer had none.
    pub status: Option<&'a str>,
    /// The start of the body (at most [`DIAGNOSTIC_BODY_BYTES`] are needed).
    pub body: &'a [u8],
}

/// Why a callout could not even be dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchError {
    /// The host refused the arguments: in Envoy, an unknown cluster.
    BadArgument,
    /// Any other refusal, with the host's status code.
    Other(u32),
}

/// The reason a check failed because its callout could not be sent.
pub fn dispatch_reason(err: DispatchError, cluster: &str) -> String {
    match err {
        DispatchError::BadArgument => format!("dispatch failed: unknown cluster {cluster:?}"),
        DispatchError::Other(code) => format!("dispatch failed: host status {code}"),
    }
}

/// Judges a callout answer: `Ok` when the check passes, else the reason.
pub fn evaluate(
    response: &CalloutResponse<'_>,
    expect: &StatusSet,
    timeout_ms: u64,
    elapsed_ms: u64,
) -> Result<(), String> {
    let Some(raw) = response.status else {
        return Err("response without :status".into());
    };
    let Ok(status) = raw.trim().parse::<u16>() else {
        return Err(format!(
            "response with an invalid :status {:?}",
            truncate(raw, 16)
        ));
    };
    if let Some(cause) = envoy_cause(status, response.body, timeout_ms, elapsed_ms) {
        return Err(cause);
    }
    if expect.contains(status) {
        Ok(())
    } else {
        Err(format!("unexpected status {status} (expected {expect})"))
    }
}

/// Recognises Envoy's own local replies for an unreachable upstream.
fn envoy_cause(status: u16, body: &[u8], timeout_ms: u64, elapsed_ms: u64) -> Option<String> {
    let text = String::from_utf8_lossy(body.get(..DIAGNOSTIC_BODY_BYTES).unwrap_or(body));
    match status {
        504 if text.starts_with("upstream request timeout") || elapsed_ms >= timeout_ms => {
            Some(format!("timeout after {timeout_ms}ms"))
        }
        503 if text.starts_with("no healthy upstream") => Some("no healthy upstream".into()),
        503 if text.starts_with("upstream connect error") => {
            // "upstream connect error or disconnect/reset before headers.
            // reset reason: remote connection failure[, transport failure
            // reason: ...]"
            let detail = text
                .split_once("reset reason: ")
                .map(|(_, d)| d.trim())
                .filter(|d| !d.is_empty())
                .unwrap_or("upstream connect error");
            Some(format!("connection failed: {}", truncate(detail, 160)))
        }
        _ => None,
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_range() -> StatusSet {
        StatusSet(vec![(200, 299)])
    }

    fn eval(status: Option<&str>, body: &str, elapsed: u64) -> Result<(), String> {
        evaluate(
            &CalloutResponse {
                status,
                body: body.as_bytes(),
            },
            &ok_range(),
            500,
            elapsed,
        )
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn outcome_table() {
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
            (None, "", 1, Err("response without :status")),
            (Some("abc"), "", 1, Err("response with an invalid :status \"abc\"")),
        ];
        for (status, body, elapsed, want) in cases {
            let got = eval(*status, body, *elapsed);
            assert_eq!(got, want.map_err(String::from), "{status:?} {body:?}");
        }
    }

    #[test]
    fn expected_set_can_include_failures() {
        let expect = StatusSet(vec![(200, 200), (401, 401)]);
        let r = CalloutResponse {
            status: Some("401"),
            body: b"",
        };
        assert_eq!(evaluate(&r, &expect, 500, 1), Ok(()));
    }

    #[test]
    fn dispatch_reasons_name_the_cluster() {
        assert_eq!(
            dispatch_reason(DispatchError::BadArgument, "dbb"),
            "dispatch failed: unknown cluster \"dbb\""
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é");
    }
}
