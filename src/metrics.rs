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

/// The outcome label of a check result: `pass`, `timeout`, `refused`,
/// `dispatch_error` or `fail` (a slow pass is `pass`).
pub fn outcome(check: &CheckReport) -> &'static str {
    let reason = check.reason.as_deref().unwrap_or("");
    if check.health == Health::Pass || reason.starts_with("slow: ") {
        "pass"
    } else if reason.starts_with("timeout after") || reason.starts_with("deadline ") {
        "timeout"
    } else if reason.starts_with("connection failed") || reason == "no healthy upstream" {
        "refused"
    } else if reason.starts_with("dispatch failed") {
        "dispatch_error"
    } else {
        "fail"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn outcomes() {
        let c = |critical: bool, r: Result<(), &str>| {
            CheckReport::new("c", critical, r.map_err(String::from), 1)
        };
        assert_eq!(outcome(&c(true, Ok(()))), "pass");
        assert_eq!(outcome(&c(true, Ok(())).slow_after(Some(0))), "pass");
        assert_eq!(outcome(&c(true, Err("timeout after 500ms"))), "timeout");
        assert_eq!(
            outcome(&c(false, Err("deadline 800ms exceeded"))),
            "timeout"
        );
        assert_eq!(
            outcome(&c(
                true,
                Err("connection failed: remote connection failure")
            )),
            "refused"
        );
        assert_eq!(outcome(&c(true, Err("no healthy upstream"))), "refused");
        assert_eq!(
            outcome(&c(true, Err("dispatch failed: unknown cluster \"x\""))),
            "dispatch_error"
        );
        assert_eq!(
            outcome(&c(false, Err("unexpected status 500 (expected 200-299)"))),
            "fail"
        );
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
