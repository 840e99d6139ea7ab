//! Metric names. Tags are written into the name as `<tag>.<value>` pairs so
//! that Envoy's tag extraction (`stats_config.stats_tags`, see
//! `envoy/demo/envoy.yaml`) turns them into labels:
//!
//! | name | type | labels after extraction |
//! |---|---|---|
//! | `meshprobe.endpoint.<e>.code.<c>.probes` | counter | endpoint, code |
//! | `meshprobe.endpoint.<e>.unauthorized` | counter | endpoint |
//! | `meshprobe.endpoint.<e>.cache_hits` / `.cache_misses` | counter | endpoint |
//! | `meshprobe.endpoint.<e>.runs` | counter | endpoint |
//! | `meshprobe.check.<k>.outcome.<o>.callouts` | counter | check, outcome |
//! | `meshprobe.check.<k>.state` | gauge (0 pass, 1 warn, 2 fail) | check |
//! | `meshprobe.check.<k>.latency_ms` | histogram | check |
//!
//! Endpoint names are `[a-z0-9_-]` and check names `[A-Za-z0-9_-]` (no dot),
//! so every name splits back unambiguously.
//!
//! The callout `outcome` of a check result is `pass`, or the label of its
//! typed failure (`crate::failure::Failure::label`): `fail` (status,
//! body, admin judgement), `warn` (`envoy_memory` over its limit),
//! `timeout` (timeout, deadline), `refused` (connection refused or reset,
//! no healthy upstream), `protocol_error` (the answer is not HTTP),
//! `dispatch_error` (unknown cluster, host refusal). A slow pass is `pass`.

use crate::report::{CheckReport, Health};

pub fn probes(endpoint: &str, code: u16) -> String {
    format!("meshprobe.endpoint.{endpoint}.code.{code}.probes")
}

pub fn unauthorized(endpoint: &str) -> String {
    format!("meshprobe.endpoint.{endpoint}.unauthorized")
}

pub fn cache(endpoint: &str, hit: bool) -> String {
    let what = if hit { "cache_hits" } else { "cache_misses" };
    format!("meshprobe.endpoint.{endpoint}.{what}")
}

pub fn runs(endpoint: &str) -> String {
    format!("meshprobe.endpoint.{endpoint}.runs")
}

pub fn callouts(check: &str, outcome: &str) -> String {
    format!("meshprobe.check.{check}.outcome.{outcome}.callouts")
}

pub fn state(check: &str) -> String {
    format!("meshprobe.check.{check}.state")
}

pub fn latency(check: &str) -> String {
    format!("meshprobe.check.{check}.latency_ms")
}

/// The gauge value of a health.
pub fn state_value(health: Health) -> u64 {
    match health {
        Health::Pass => 0,
        Health::Warn => 1,
        Health::Fail => 2,
    }
}

/// The outcome label of a check result: `pass`, or its failure's
/// [`Failure::label`](crate::failure::Failure::label) (`fail`, `warn`,
/// `timeout`, `refused`, `protocol_error`, `dispatch_error`; a slow pass
/// is `pass`). Taken from the typed failure, never from the reason's text.
pub fn outcome(check: &CheckReport) -> &'static str {
    match (&check.failure, check.health) {
        (_, Health::Pass) => "pass",
        (Some(failure), _) => failure.label(),
        // A result without a typed cause (none is made so): a failure.
        (None, _) => "fail",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Failure;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn outcomes_come_from_the_typed_failure() {
        let c = |critical: bool, r: Result<(), Failure>| CheckReport::new("c", critical, r, 1);
        assert_eq!(outcome(&c(true, Ok(()))), "pass");
        assert_eq!(outcome(&c(true, Ok(())).slow_after(Some(0))), "pass");
        let cases = [
            (Failure::Timeout { after_ms: 500 }, "timeout"),
            (Failure::DeadlineExceeded { deadline_ms: 800 }, "timeout"),
            (
                Failure::ConnectionFailed {
                    detail: "remote connection failure".into(),
                },
                "refused",
            ),
            (Failure::NoHealthyUpstream, "refused"),
            (
                Failure::NoUsableHost {
                    cluster: "void".into(),
                },
                "refused",
            ),
            (Failure::BrokeOff, "refused"),
            (
                Failure::ProtocolError {
                    detail: "garbage".into(),
                },
                "protocol_error",
            ),
            (
                Failure::UnknownCluster {
                    cluster: "x".into(),
                },
                "dispatch_error",
            ),
            (
                Failure::Status {
                    status: 500,
                    expected: "200-299".into(),
                },
                "fail",
            ),
            (
                Failure::ServerState {
                    state: "DRAINING".into(),
                },
                "fail",
            ),
        ];
        for (failure, label) in cases {
            assert_eq!(outcome(&c(true, Err(failure.clone()))), label, "{failure}");
            // A non-critical check warns, its callout outcome is the same.
            assert_eq!(outcome(&c(false, Err(failure.clone()))), label, "{failure}");
        }
    }

    /// An `envoy_memory` check over its limit passes degraded: its callout
    /// outcome is `warn` (it was counted as `fail` when the label was
    /// guessed from the reason's wording).
    #[test]
    fn a_memory_warning_is_counted_as_warn() {
        let over = Failure::MemoryOverLimit {
            allocated: 6 << 20,
            limit: 4 << 20,
        };
        let report = CheckReport::new("mem", true, Ok(()), 1).warned(Some(over));
        assert_eq!(report.health, Health::Warn);
        assert_eq!(outcome(&report), "warn");
        // The wording plays no part: a reason that reads like a timeout.
        let mut reworded = report.clone();
        reworded.reason = Some("timeout after 1ms".into());
        assert_eq!(outcome(&reworded), "warn");
    }

    #[test]
    fn names_carry_their_tags() {
        assert_eq!(
            probes("ready", 503),
            "meshprobe.endpoint.ready.code.503.probes"
        );
        assert_eq!(
            callouts("db", "timeout"),
            "meshprobe.check.db.outcome.timeout.callouts"
        );
        assert_eq!(cache("ready", true), "meshprobe.endpoint.ready.cache_hits");
    }
}
