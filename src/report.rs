//! The result of one probe run, and how check results aggregate.

use crate::failure::Failure;
use crate::policy::StatusCodes;

/// Health of one check or of a whole endpoint. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Pass,
    Warn,
    Fail,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Pass => "pass",
            Health::Warn => "warn",
            Health::Fail => "fail",
        }
    }

    /// The HTTP status of a probe answer under `codes` (by default pass and
    /// warn 200, healthy for every prober; fail 503).
    pub fn http_status(self, codes: &StatusCodes) -> u16 {
        match self {
            Health::Pass => codes.pass,
            Health::Warn => codes.warn,
            Health::Fail => codes.fail,
        }
    }
}

/// One check's result within a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub name: String,
    pub health: Health,
    pub critical: bool,
    /// Why the check did not pass, for people; `None` when it passed.
    /// Always `failure`'s text.
    pub reason: Option<String>,
    /// Why the check did not pass, typed (metrics take their label from
    /// it); `None` when it passed.
    /// Not in the shared result (see [`Failure`]): only the worker that
    /// ran the check counts its metrics.
    pub failure: Option<Failure>,
    pub latency_ms: u64,
    /// When the result was taken (host clock, ms since the Unix epoch).
    pub at_ms: u64,
    /// `componentType` in `application/health+json`.
    pub component_type: String,
}

impl CheckReport {
    /// A check outcome: passed, or failed for a cause. A failed
    /// non-critical check is a warning.
    pub fn new(name: &str, critical: bool, outcome: Result<(), Failure>, latency_ms: u64) -> Self {
        Self::at(name, critical, outcome, latency_ms, 0)
    }

    /// As [`CheckReport::new`], taken at `at_ms`.
    pub fn at(
        name: &str,
        critical: bool,
        outcome: Result<(), Failure>,
        latency_ms: u64,
        at_ms: u64,
    ) -> Self {
        let (health, failure) = match outcome {
            Ok(()) => (Health::Pass, None),
            Err(failure) if critical => (Health::Fail, Some(failure)),
            Err(failure) => (Health::Warn, Some(failure)),
        };
        CheckReport {
            name: name.to_string(),
            health,
            critical,
            reason: failure.as_ref().map(Failure::to_string),
            failure,
            latency_ms,
            at_ms,
            component_type: "component".into(),
        }
    }

    /// A passing check with a warning (e.g. memory over its limit) is
    /// degraded, with the warning as its reason.
    pub fn warned(mut self, warning: Option<Failure>) -> Self {
        if let Some(why) = warning {
            if self.health == Health::Pass {
                self.health = Health::Warn;
                self.reason = Some(why.to_string());
                self.failure = Some(why);
            }
        }
        self
    }

    /// A passing check that took longer than `warn_after_ms` is degraded.
    pub fn slow_after(mut self, warn_after_ms: Option<u64>) -> Self {
        if let Some(limit) = warn_after_ms {
            if self.health == Health::Pass && self.latency_ms > limit {
                let slow = Failure::Slow {
                    took_ms: self.latency_ms,
                    limit_ms: limit,
                };
                self.health = Health::Warn;
                self.reason = Some(slow.to_string());
                self.failure = Some(slow);
            }
        }
        self
    }
}

/// The result of running an endpoint's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub endpoint: String,
    pub health: Health,
    pub checks: Vec<CheckReport>,
    /// When the report was complete (ms since the Unix epoch).
    pub at_ms: u64,
    /// Remarks for the caller, e.g. an unknown name in `?exclude=`.
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(endpoint: &str, checks: Vec<CheckReport>) -> Self {
        Report {
            endpoint: endpoint.to_string(),
            health: aggregate(&checks),
            checks,
            at_ms: 0,
            notes: Vec::new(),
        }
    }

    /// A warning counts as a failure (`warnings_as_errors`).
    pub fn warnings_as_errors(mut self, yes: bool) -> Self {
        if yes && self.health == Health::Warn {
            self.health = Health::Fail;
        }
        self
    }
}

/// The worst health of the checks; `pass` when there are none (liveness).
pub fn aggregate(checks: &[CheckReport]) -> Health {
    checks
        .iter()
        .map(|c| c.health)
        .max()
        .unwrap_or(Health::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn down() -> Failure {
        Failure::Status {
            status: 500,
            expected: "200-299".into(),
        }
    }

    fn check(critical: bool, ok: bool) -> CheckReport {
        CheckReport::new("c", critical, if ok { Ok(()) } else { Err(down()) }, 1)
    }

    #[test]
    fn aggregation_table() {
        let cases: &[(&[(bool, bool)], Health)] = &[
            (&[], Health::Pass),
            (&[(true, true)], Health::Pass),
            (&[(true, true), (false, true)], Health::Pass),
            (&[(true, true), (false, false)], Health::Warn),
            (&[(true, false), (false, true)], Health::Fail),
            (&[(true, false), (false, false)], Health::Fail),
            (&[(false, false), (false, false)], Health::Warn),
        ];
        for (checks, want) in cases {
            let reports: Vec<_> = checks.iter().map(|&(c, ok)| check(c, ok)).collect();
            assert_eq!(aggregate(&reports), *want, "{checks:?}");
        }
    }

    #[test]
    fn status_codes() {
        let d = StatusCodes::default();
        assert_eq!(Health::Pass.http_status(&d), 200);
        assert_eq!(Health::Warn.http_status(&d), 200);
        assert_eq!(Health::Fail.http_status(&d), 503);
        let custom = StatusCodes {
            pass: 200,
            warn: 299,
            fail: 500,
        };
        assert_eq!(Health::Warn.http_status(&custom), 299);
        assert_eq!(Health::Fail.http_status(&custom), 500);
    }

    #[test]
    fn slow_checks_warn_and_warnings_can_fail() {
        let c = CheckReport::new("db", true, Ok(()), 350).slow_after(Some(200));
        assert_eq!(c.health, Health::Warn);
        assert_eq!(
            c.reason.as_deref(),
            Some("slow: took 350ms (warn_after 200ms)")
        );
        let fast = CheckReport::new("db", true, Ok(()), 200).slow_after(Some(200));
        assert_eq!(fast.health, Health::Pass);
        let failed = CheckReport::new("db", true, Err(down()), 900).slow_after(Some(200));
        assert_eq!(
            failed.reason.as_deref(),
            Some("unexpected status 500 (expected 200-299)")
        );
        let r = Report::new("ready", vec![c.clone()]);
        assert_eq!(r.health, Health::Warn);
        assert_eq!(r.warnings_as_errors(true).health, Health::Fail);
        assert_eq!(
            Report::new("ready", vec![c])
                .warnings_as_errors(false)
                .health,
            Health::Warn
        );
    }

    #[test]
    fn non_critical_failure_is_a_warning_with_its_reason() {
        let c = CheckReport::new("cache", false, Err(Failure::Timeout { after_ms: 500 }), 500);
        assert_eq!(c.health, Health::Warn);
        assert_eq!(c.reason.as_deref(), Some("timeout after 500ms"));
    }
}
