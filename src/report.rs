//! The result of one probe run, and how check results aggregate.

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

    /// The HTTP status of a probe answer: pass and warn are healthy for
    /// every prober (kubelet, ELB, GCP LB, Envoy HC); fail is 503.
    pub fn http_status(self) -> u16 {
        match self {
            Health::Pass | Health::Warn => 200,
            Health::Fail => 503,
        }
    }
}

/// One check's result within a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub name: String,
    pub health: Health,
    pub critical: bool,
    /// Why the check did not pass; `None` when it passed.
    pub reason: Option<String>,
    pub latency_ms: u64,
}

impl CheckReport {
    /// A check outcome: passed, or failed for `reason`. A failed
    /// non-critical check is a warning.
    pub fn new(name: &str, critical: bool, outcome: Result<(), String>, latency_ms: u64) -> Self {
        let (health, reason) = match outcome {
            Ok(()) => (Health::Pass, None),
            Err(reason) if critical => (Health::Fail, Some(reason)),
            Err(reason) => (Health::Warn, Some(reason)),
        };
        CheckReport {
            name: name.to_string(),
            health,
            critical,
            reason,
            latency_ms,
        }
    }
}

/// The result of running an endpoint's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub endpoint: String,
    pub health: Health,
    pub checks: Vec<CheckReport>,
}

impl Report {
    pub fn new(endpoint: &str, checks: Vec<CheckReport>) -> Self {
        Report {
            endpoint: endpoint.to_string(),
            health: aggregate(&checks),
            checks,
        }
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

    fn check(critical: bool, ok: bool) -> CheckReport {
        CheckReport::new(
            "c",
            critical,
            if ok { Ok(()) } else { Err("down".into()) },
            1,
        )
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
        assert_eq!(Health::Pass.http_status(), 200);
        assert_eq!(Health::Warn.http_status(), 200);
        assert_eq!(Health::Fail.http_status(), 503);
    }

    #[test]
    fn non_critical_failure_is_a_warning_with_its_reason() {
        let c = CheckReport::new("cache", false, Err("timeout after 500ms".into()), 500);
        assert_eq!(c.health, Health::Warn);
        assert_eq!(c.reason.as_deref(), Some("timeout after 500ms"));
    }
}
