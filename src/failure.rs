//! Why a check did not pass, as a typed value.
//!
//! Every cause a check can fail (or warn) for is one [`Failure`] variant:
//! its `Display` is the reason people read (in the probe answer, the logs),
//! and [`Failure::label`] is the `outcome` label of the callout metric.
//! Nothing classifies a reason by its wording.
//!
//! Texts that come from outside (a dependency's body, Envoy's reply, an
//! admin answer) are cut short when the value is made, so a reason stays
//! short whatever the upstream sent.

use crate::duration::format_millis;
use std::fmt;

/// The cause of a failed (or degraded) check.
///
/// Not serialized: the result shared between workers carries the reason
/// text, and metrics are counted by the worker that ran the checks, from
/// its own typed report (a serde derive for this enum cost ~70 KB of Wasm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    // --- the callout's answer ------------------------------------------
    /// The status is outside the check's expected set.
    Status { status: u16, expected: String },
    /// The `:status` is not a number.
    InvalidStatus { raw: String },
    /// No answer within the check's timeout.
    Timeout { after_ms: u64 },
    /// The connection was refused or reset before an answer (Envoy's
    /// reset reason as `detail`).
    ConnectionFailed { detail: String },
    /// The answer began, then broke off before it was complete.
    BrokeOff,
    /// Envoy found no healthy host in the cluster.
    NoHealthyUpstream,
    /// The dependency's answer was not valid HTTP: Envoy reset the callout
    /// and answered it with its own 502 (reset reason `protocol error`),
    /// which is not the dependency's status. `detail`: what Envoy added
    /// after the reset reason, if anything.
    ProtocolError { detail: String },
    /// The body is over `max_body` and was not read.
    BodyTooLarge { size: u64, max: u64 },
    /// `expect_body.contains` is not in the body.
    BodyLacks { text: String },
    /// `expect_body.pointer` on a body that is not JSON.
    BodyNotJson { detail: String },
    /// `expect_body.pointer` points at nothing.
    NoValueAt { pointer: String },
    /// `expect_body.pointer` found a value that is not accepted.
    ValueMismatch {
        pointer: String,
        found: String,
        expected: String,
    },
    // --- dispatching the callout -----------------------------------------
    /// Envoy does not know the check's cluster.
    UnknownCluster { cluster: String },
    /// The cluster failed the callout as it was sent (no usable host).
    NoUsableHost { cluster: String },
    /// The host refused the callout for another reason.
    DispatchFailed { code: u32 },
    // --- the run -----------------------------------------------------------
    /// The endpoint's deadline came before the check's answer.
    DeadlineExceeded { deadline_ms: u64 },
    /// A probe's deadline came while it waited for another worker's run.
    WaitExceeded,
    /// The cached result is older than `max_stale` (`on_stale: fail`).
    Stale { age_ms: u64, max_stale_ms: u64 },
    /// No result yet (`on_startup: fail`).
    NoResultYet,
    /// A passing check took longer than `warn_after` (a warning).
    Slow { took_ms: u64, limit_ms: u64 },
    // --- Envoy's admin answers (the `envoy_*` checks) ----------------------
    /// The admin answer is over `max_body` and was not read.
    AdminBodyTooLarge { size: u64, max: u64 },
    /// The admin answer of `what` (e.g. `/memory`) is not JSON.
    AdminNotJson { what: String, detail: String },
    /// `/server_info`: Envoy is not `LIVE`.
    ServerState { state: String },
    /// `/server_info` has no state.
    NoServerState,
    /// `/clusters` does not list the cluster.
    ClusterMissing { cluster: String },
    /// Too small a share of the cluster's hosts is healthy.
    ClusterUnhealthy {
        healthy: u64,
        total: u64,
        min_percent: u64,
    },
    /// `/memory` has no `allocated` bytes.
    NoAllocated,
    /// Envoy's heap is over the check's limit (a warning).
    MemoryOverLimit { allocated: u64, limit: u64 },
    // --- gRPC health checks (the `grpc` kind) ------------------------------
    /// `grpc.health.v1` answered a status other than SERVING.
    GrpcServing { status: u64 },
    /// The health answer has no status (proto3's default: UNKNOWN).
    GrpcNoStatus,
    /// The call ended with a gRPC error (`code` not 0).
    GrpcStatus { code: u32, message: String },
    /// The answer is not a `HealthCheckResponse`.
    GrpcBadAnswer { detail: String },
    /// The cluster does not speak HTTP/2 (no `http2_protocol_options`, or
    /// an HTTP/1 server behind it).
    GrpcNotHttp2 { detail: String },
}

impl Failure {
    /// The `outcome` label of the callout metric (the `meshprobe_outcome` metric label).
    pub fn label(&self) -> &'static str {
        use Failure::*;
        match self {
            Timeout { .. } | DeadlineExceeded { .. } | WaitExceeded => "timeout",
            ConnectionFailed { .. } | BrokeOff | NoHealthyUpstream | NoUsableHost { .. } => {
                "refused"
            }
            ProtocolError { .. } | GrpcBadAnswer { .. } | GrpcNotHttp2 { .. } => "protocol_error",
            UnknownCluster { .. } | DispatchFailed { .. } => "dispatch_error",
            Stale { .. } => "stale",
            NoResultYet => "no_result",
            // The callout answered as expected; its time is in latency_ms.
            Slow { .. } => "pass",
            MemoryOverLimit { .. } => "warn",
            Status { .. }
            | InvalidStatus { .. }
            | BodyTooLarge { .. }
            | BodyLacks { .. }
            | BodyNotJson { .. }
            | NoValueAt { .. }
            | ValueMismatch { .. }
            | AdminBodyTooLarge { .. }
            | AdminNotJson { .. }
            | ServerState { .. }
            | NoServerState
            | ClusterMissing { .. }
            | ClusterUnhealthy { .. }
            | NoAllocated
            | GrpcServing { .. }
            | GrpcNoStatus
            | GrpcStatus { .. } => "fail",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Failure::*;
        match self {
            Status { status, expected } => {
                write!(f, "unexpected status {status} (expected {expected})")
            }
            InvalidStatus { raw } => write!(f, "response with an invalid :status {raw:?}"),
            Timeout { after_ms } => write!(f, "timeout after {after_ms}ms"),
            ConnectionFailed { detail } => write!(f, "connection failed: {detail}"),
            BrokeOff => {
                f.write_str("connection failed: the answer broke off before it was complete")
            }
            NoHealthyUpstream => f.write_str("no healthy upstream"),
            ProtocolError { detail } if detail.is_empty() => {
                f.write_str("protocol error: the answer is not valid HTTP")
            }
            ProtocolError { detail } => {
                write!(f, "protocol error: the answer is not valid HTTP ({detail})")
            }
            BodyTooLarge { size, max } => write!(f, "body of {size} bytes is over max_body {max}"),
            BodyLacks { text } => write!(f, "body does not contain {text:?}"),
            BodyNotJson { detail } => write!(f, "body is not JSON ({detail})"),
            NoValueAt { pointer } => write!(f, "body has no value at {pointer:?}"),
            ValueMismatch {
                pointer,
                found,
                expected,
            } => write!(f, "{pointer} is {found} (expected {expected})"),
            UnknownCluster { cluster } => write!(f, "dispatch failed: unknown cluster {cluster:?}"),
            NoUsableHost { cluster } => write!(
                f,
                "no healthy upstream: cluster {cluster:?} failed the callout as it was sent"
            ),
            DispatchFailed { code } => write!(f, "dispatch failed: host status {code}"),
            DeadlineExceeded { deadline_ms } => {
                write!(f, "deadline {} exceeded", format_millis(*deadline_ms))
            }
            WaitExceeded => f.write_str("deadline exceeded waiting for the run on another worker"),
            Stale {
                age_ms,
                max_stale_ms,
            } => write!(
                f,
                "stale result ({age_ms}ms old, max_stale {max_stale_ms}ms)"
            ),
            NoResultYet => f.write_str("no result yet"),
            Slow { took_ms, limit_ms } => {
                write!(f, "slow: took {took_ms}ms (warn_after {limit_ms}ms)")
            }
            AdminBodyTooLarge { size, max } => {
                write!(f, "admin answer of {size} bytes is over max_body {max}")
            }
            AdminNotJson { what, detail } => write!(f, "{what} answer is not JSON ({detail})"),
            ServerState { state } => write!(f, "Envoy is {state}"),
            NoServerState => f.write_str("/server_info answer has no state"),
            ClusterMissing { cluster } => write!(f, "cluster {cluster:?} is not in /clusters"),
            ClusterUnhealthy {
                healthy,
                total,
                min_percent,
            } => {
                let share = healthy.saturating_mul(100).checked_div(*total).unwrap_or(0);
                write!(
                    f,
                    "{healthy} of {total} hosts healthy ({share}%, minimum {min_percent}%)"
                )
            }
            NoAllocated => f.write_str("/memory answer has no allocated bytes"),
            MemoryOverLimit { allocated, limit } => write!(
                f,
                "allocated {} is over the limit {}",
                Bytes(*allocated),
                Bytes(*limit)
            ),
            GrpcServing { status } => write!(
                f,
                "grpc health status {}",
                crate::grpc::serving_name(*status)
            ),
            GrpcNoStatus => f.write_str("grpc health answer has no status (UNKNOWN)"),
            GrpcStatus { code: 5, .. } => f.write_str("grpc status NOT_FOUND: service unknown"),
            GrpcStatus { code, message } if message.is_empty() => {
                write!(f, "grpc status {}", crate::grpc::code_name(*code))
            }
            GrpcStatus { code, message } => {
                write!(
                    f,
                    "grpc status {}: {message}",
                    crate::grpc::code_name(*code)
                )
            }
            GrpcBadAnswer { detail } => {
                write!(f, "grpc answer is not a HealthCheckResponse ({detail})")
            }
            GrpcNotHttp2 { detail } => write!(
                f,
                "no gRPC answer over HTTP/2 ({detail}): the cluster needs http2_protocol_options and a gRPC server"
            ),
        }
    }
}

/// The outcome of judging a callout's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    Pass,
    /// Passes, degraded, with why.
    Warn(Failure),
    Fail(Failure),
}

/// Bytes for people: `512 MiB`, `1.5 GiB`, `900 B`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: &[(&str, u64)] = &[("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        let n = self.0;
        for (unit, size) in UNITS {
            if n >= *size {
                let tenths = n.saturating_mul(10) / size;
                return if tenths % 10 == 0 {
                    write!(f, "{} {unit}", tenths / 10)
                } else {
                    write!(f, "{}.{} {unit}", tenths / 10, tenths % 10)
                };
            }
        }
        write!(f, "{n} B")
    }
}

/// A size as `u64` (a `usize` always fits on the targets we build for).
pub(crate) fn size(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
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
mod tests;
