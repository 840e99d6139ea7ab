//! What a callout's answer means for its check.
//!
//! Envoy reports its own failures to reach a cluster as local replies: a
//! timeout arrives as 504 `upstream request timeout`, a refused or reset
//! connection as 503 `upstream connect error ...`, a cluster without healthy
//! hosts as 503 `no healthy upstream`, an answer that is not valid HTTP as
//! 502 `... reset reason: protocol error`. Those become failures that name
//! the cause rather than "unexpected status".

use crate::admin;
use crate::failure::{size, truncate, Failure, Judgement};
use crate::json::Value;
use crate::policy::{BodyExpect, Check, CheckKind};
use crate::text::join;
pub mod grpc;

/// How much of a callout's body the host passes in to explain a 503/504.
pub const DIAGNOSTIC_BODY_BYTES: usize = 256;

/// How far Envoy's callout timer and the run's millisecond clock may differ.
const TIMER_SLACK_MS: u64 = 10;

/// A callout answer as the host read it.
#[derive(Debug, Clone, Copy)]
pub struct CalloutResponse<'a> {
    /// The raw `:status` value, `None` when the answer had none.
    pub status: Option<&'a str>,
    /// The body, or as much of it as [`body_bytes_needed`] asked for.
    pub body: &'a [u8],
    /// The whole body's size.
    pub body_size: usize,
}

/// How many body bytes the host must read for `check` to be judged: all of
/// it for a body expectation (unless it is over `max_body`), the start of
/// it to explain Envoy's own 502/503/504, else none.
pub fn body_bytes_needed(check: &Check, status: Option<&str>, body_size: usize) -> usize {
    if check.expect_body.is_some() || check.kind != CheckKind::Http {
        if over_max_body(body_size, check) {
            return 0;
        }
        return body_size;
    }
    match status {
        Some("502" | "503" | "504") => body_size.min(DIAGNOSTIC_BODY_BYTES),
        _ => 0,
    }
}

/// Why a callout could not even be dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchError {
    /// The host refused the arguments: in Envoy, an unknown cluster.
    BadArgument,
    /// The request failed as it was sent (Envoy: `InternalFailure`), which
    /// is what a cluster without a usable host does: no endpoints, or none
    /// healthy.
    FailedAtOnce,
    /// Any other refusal, with the host's status code.
    Other(u32),
}

/// Why a check failed because its callout could not be sent.
pub fn dispatch_failure(err: DispatchError, cluster: &str) -> Failure {
    let cluster = truncate(cluster, 80).to_string();
    match err {
        DispatchError::BadArgument => Failure::UnknownCluster { cluster },
        DispatchError::FailedAtOnce => Failure::NoUsableHost { cluster },
        DispatchError::Other(code) => Failure::DispatchFailed { code },
    }
}

/// Judges a callout answer for any check kind: [`evaluate`] first, then,
/// for the `envoy_*` kinds, what the admin answer says.
pub fn judge(
    response: &CalloutResponse<'_>,
    check: &Check,
    timeout_ms: u64,
    elapsed_ms: u64,
) -> Judgement {
    if let Err(failure) = evaluate(response, check, timeout_ms, elapsed_ms) {
        return Judgement::Fail(failure);
    }
    if check.kind != CheckKind::Http && over_max_body(response.body_size, check) {
        return Judgement::Fail(Failure::AdminBodyTooLarge {
            size: size(response.body_size),
            max: check.max_body,
        });
    }
    match &check.kind {
        CheckKind::Http => Judgement::Pass,
        CheckKind::EnvoyServer => admin::server_state(response.body),
        CheckKind::EnvoyCluster {
            cluster,
            min_healthy_percent,
        } => admin::cluster_health(response.body, cluster, *min_healthy_percent),
        CheckKind::EnvoyMemory { limit_bytes } => admin::memory(response.body, *limit_bytes),
        // Answers come through [`grpc::judge`]: an HTTP one is none.
        CheckKind::Grpc { .. } => Judgement::Fail(Failure::GrpcBadAnswer {
            detail: "an HTTP answer".into(),
        }),
    }
}

fn over_max_body(body_size: usize, check: &Check) -> bool {
    u64::try_from(body_size).map_or(true, |n| n > check.max_body)
}

/// Judges a callout answer by status and `expect_body`: `Ok` when the
/// check passes, else why not.
pub fn evaluate(
    response: &CalloutResponse<'_>,
    check: &Check,
    timeout_ms: u64,
    elapsed_ms: u64,
) -> Result<(), Failure> {
    let expect = &check.expect_status;
    let Some(raw) = response.status else {
        // Envoy delivers no headers when the callout failed after its
        // answer began: cut off mid-body, or out of time.
        // (Envoy's timer and the run's clock differ by a few ms.)
        if elapsed_ms.saturating_add(TIMER_SLACK_MS) >= timeout_ms {
            return Err(Failure::Timeout {
                after_ms: timeout_ms,
            });
        }
        return Err(Failure::BrokeOff);
    };
    let Ok(status) = raw.trim().parse::<u16>() else {
        return Err(Failure::InvalidStatus {
            raw: truncate(raw, 16).into(),
        });
    };
    if let Some(cause) = envoy_cause(status, response.body, timeout_ms, elapsed_ms) {
        return Err(cause);
    }
    if !expect.contains(status) {
        return Err(Failure::Status {
            status,
            expected: expect.to_string(),
        });
    }
    match &check.expect_body {
        None => Ok(()),
        Some(_) if over_max_body(response.body_size, check) => Err(Failure::BodyTooLarge {
            size: size(response.body_size),
            max: check.max_body,
        }),
        Some(expect) => body_matches(expect, response.body),
    }
}

fn body_matches(expect: &BodyExpect, body: &[u8]) -> Result<(), Failure> {
    match expect {
        BodyExpect::Contains(text) => {
            let needle = text.as_bytes();
            if body.windows(needle.len().max(1)).any(|w| w == needle) {
                Ok(())
            } else {
                Err(Failure::BodyLacks {
                    text: truncate(text, 80).into(),
                })
            }
        }
        BodyExpect::Pointer { pointer, accepted } => {
            let json: Value = crate::json::from_slice(body).map_err(|e| Failure::BodyNotJson {
                detail: e.to_string(),
            })?;
            let Some(found) = json.pointer(pointer) else {
                return Err(Failure::NoValueAt {
                    pointer: pointer.clone(),
                });
            };
            if accepted.contains(found) {
                return Ok(());
            }
            let shown = found.to_string();
            let wanted: Vec<String> = accepted.iter().map(Value::to_string).collect();
            Err(Failure::ValueMismatch {
                pointer: pointer.clone(),
                found: truncate(&shown, 80).into(),
                expected: truncate(&join(&wanted, " or "), 160).into(),
            })
        }
    }
}

/// The text after the first `marker`, as `split_once(marker)` gives it,
/// without `str`'s two-way searcher (~3 KB of the module).
pub(crate) fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let i = text
        .as_bytes()
        .windows(marker.len().max(1))
        .position(|w| w == marker.as_bytes())?;
    text.get(i + marker.len()..)
}

/// Recognises Envoy's own local replies for an unreachable upstream or
/// one that does not speak HTTP.
fn envoy_cause(status: u16, body: &[u8], timeout_ms: u64, elapsed_ms: u64) -> Option<Failure> {
    let text = String::from_utf8_lossy(body.get(..DIAGNOSTIC_BODY_BYTES).unwrap_or(body));
    match status {
        504 if text.starts_with("upstream request timeout") || elapsed_ms >= timeout_ms => {
            Some(Failure::Timeout {
                after_ms: timeout_ms,
            })
        }
        503 if text.starts_with("no healthy upstream") => Some(Failure::NoHealthyUpstream),
        502 | 503 if text.starts_with("upstream connect error") => {
            // "upstream connect error or disconnect/reset before headers.
            // reset reason: remote connection failure[, transport failure
            // reason: ...]", or (502) "... reset reason: protocol error".
            let detail = after(&text, "reset reason: ")
                .map(str::trim)
                .filter(|d| !d.is_empty());
            match detail {
                Some(d) if d.starts_with("protocol error") => {
                    let mut more = d;
                    while let Some(rest) = more.strip_prefix("protocol error") {
                        more = rest;
                    }
                    let more = more.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
                    Some(Failure::ProtocolError {
                        detail: truncate(more, 160).into(),
                    })
                }
                Some(d) => Some(Failure::ConnectionFailed {
                    detail: truncate(d, 160).into(),
                }),
                None if status == 503 => Some(Failure::ConnectionFailed {
                    detail: "upstream connect error".into(),
                }),
                None => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
