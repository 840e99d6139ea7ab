//! One probe run: the state machine between "callouts dispatched" and
//! "report ready". It never touches the host; the caller feeds it dispatch
//! errors, callout answers and the current time (milliseconds), and asks
//! [`ProbeRun::poll`] whether the report is complete.

use crate::failure::{Failure, Judgement};
use crate::grpc::GrpcCall;
use crate::outcome::{self, CalloutResponse, DispatchError};
use crate::policy::{Check, CheckKind, Policy};
use crate::report::{CheckReport, Report};

/// A callout the host must dispatch for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout<'p> {
    /// Which slot of the run the answer belongs to.
    pub slot: usize,
    pub cluster: &'p str,
    /// Pseudo-headers first, then the check's extra headers.
    pub headers: Vec<(&'p str, &'p str)>,
    pub timeout_ms: u64,
    /// For a `grpc` check: the call (`headers` are then its metadata).
    pub grpc: Option<GrpcCall>,
}

#[derive(Debug, Clone)]
struct Slot {
    check: usize,
    timeout_ms: u64,
    result: Option<CheckReport>,
}

/// The checks of one endpoint in flight.
#[derive(Debug, Clone)]
pub struct ProbeRun {
    endpoint: usize,
    started_ms: u64,
    deadline_ms: u64,
    slots: Vec<Slot>,
    notes: Vec<String>,
}

impl ProbeRun {
    /// Starts a run of `endpoint`'s checks at `now_ms`. An endpoint with no
    /// checks is complete at once.
    pub fn start(policy: &Policy, endpoint: usize, now_ms: u64) -> ProbeRun {
        let all = policy
            .endpoints
            .get(endpoint)
            .map_or(&[][..], |e| e.checks.as_slice());
        Self::start_with(policy, endpoint, all, Vec::new(), now_ms)
    }

    /// Starts a run of the `checks` (indexes into `policy.checks`) chosen
    /// for `endpoint`; `notes` are passed on to the report.
    pub fn start_with(
        policy: &Policy,
        endpoint: usize,
        checks: &[usize],
        notes: Vec<String>,
        now_ms: u64,
    ) -> ProbeRun {
        let (slots, deadline_ms) = match policy.endpoints.get(endpoint) {
            Some(ep) => (
                checks
                    .iter()
                    .filter_map(|&check| {
                        let c = policy.checks.get(check)?;
                        Some(Slot {
                            check,
                            timeout_ms: c.timeout_for(ep),
                            result: None,
                        })
                    })
                    .collect(),
                ep.deadline_ms,
            ),
            None => (Vec::new(), 0),
        };
        ProbeRun {
            endpoint,
            started_ms: now_ms,
            deadline_ms,
            slots,
            notes,
        }
    }

    /// The check behind `slot`, e.g. to know how much body to read.
    pub fn check<'p>(&self, policy: &'p Policy, slot: usize) -> Option<&'p Check> {
        self.slots
            .get(slot)
            .and_then(|s| policy.checks.get(s.check))
    }

    /// The callouts to dispatch, all at once.
    pub fn callouts<'p>(&self, policy: &'p Policy) -> Vec<Callout<'p>> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| {
                let c = policy.checks.get(s.check)?;
                let grpc = match &c.kind {
                    CheckKind::Grpc { service, upstream } => Some(GrpcCall {
                        upstream: upstream.clone(),
                        message: crate::grpc::encode_request(service),
                    }),
                    _ => None,
                };
                let mut headers = match grpc {
                    Some(_) => Vec::new(),
                    None => vec![
                        (":method", c.method.as_str()),
                        (":path", c.path.as_str()),
                        (":authority", c.authority.as_str()),
                        ("user-agent", "meshprobe"),
                    ],
                };
                headers.extend(c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                Some(Callout {
                    slot,
                    cluster: c.cluster.as_str(),
                    headers,
                    timeout_ms: s.timeout_ms,
                    grpc,
                })
            })
            .collect()
    }

    /// The callout of `slot` could not be dispatched.
    pub fn dispatch_failed(
        &mut self,
        policy: &Policy,
        slot: usize,
        err: DispatchError,
        now_ms: u64,
    ) {
        let cluster = self
            .slots
            .get(slot)
            .and_then(|s| policy.checks.get(s.check))
            .map_or("", |c| c.cluster.as_str());
        let failure = outcome::dispatch_failure(err, cluster);
        self.finish(policy, slot, Judgement::Fail(failure), now_ms);
    }

    /// The callout of `slot` answered.
    pub fn response(
        &mut self,
        policy: &Policy,
        slot: usize,
        response: &CalloutResponse<'_>,
        now_ms: u64,
    ) {
        let Some(s) = self.slots.get(slot) else {
            return;
        };
        let Some(check) = policy.checks.get(s.check) else {
            return;
        };
        let elapsed = now_ms.saturating_sub(self.started_ms);
        let judgement = outcome::judge(response, check, s.timeout_ms, elapsed);
        self.finish(policy, slot, judgement, now_ms);
    }

    fn finish(&mut self, policy: &Policy, slot: usize, judgement: Judgement, now_ms: u64) {
        let latency = now_ms.saturating_sub(self.started_ms);
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        if s.result.is_some() {
            return; // a late or duplicate answer changes nothing
        }
        let Some(check) = policy.checks.get(s.check) else {
            return;
        };
        let (verdict, warning) = match judgement {
            Judgement::Pass => (Ok(()), None),
            Judgement::Warn(why) => (Ok(()), Some(why)),
            Judgement::Fail(why) => (Err(why), None),
        };
        let mut report = CheckReport::at(&check.name, check.critical, verdict, latency, now_ms)
            .slow_after(check.warn_after_ms)
            .warned(warning);
        report.component_type.clone_from(&check.component_type);
        s.result = Some(report);
    }

    /// The report when every check is in or the deadline has passed (checks
    /// still pending then fail with `deadline <d> exceeded`); else `None`.
    pub fn poll(&mut self, policy: &Policy, now_ms: u64) -> Option<Report> {
        let elapsed = now_ms.saturating_sub(self.started_ms);
        let pending = self.slots.iter().any(|s| s.result.is_none());
        if pending && elapsed < self.deadline_ms {
            return None;
        }
        Some(self.report_now(policy, now_ms))
    }

    /// The report as it stands: checks still pending fail with `deadline
    /// <d> exceeded` (for callers whose own deadline has come).
    pub fn report_now(&mut self, policy: &Policy, now_ms: u64) -> Report {
        let elapsed = now_ms.saturating_sub(self.started_ms);
        let deadline = self.deadline_ms;
        let checks = self
            .slots
            .iter()
            .filter_map(|s| match &s.result {
                Some(r) => Some(r.clone()),
                None => {
                    let c = policy.checks.get(s.check)?;
                    let failure = Failure::DeadlineExceeded {
                        deadline_ms: deadline,
                    };
                    let mut r = CheckReport::at(&c.name, c.critical, Err(failure), elapsed, now_ms);
                    r.component_type.clone_from(&c.component_type);
                    Some(r)
                }
            })
            .collect();
        let ep = policy.endpoints.get(self.endpoint);
        let mut report = Report::new(ep.map_or("", |e| e.name.as_str()), checks)
            .warnings_as_errors(ep.is_some_and(|e| e.warnings_as_errors));
        report.at_ms = now_ms;
        report.notes.clone_from(&self.notes);
        report
    }

    /// When the run's deadline passes (ms, host clock).
    pub fn deadline_at(&self) -> u64 {
        self.started_ms.saturating_add(self.deadline_ms)
    }

    /// How many callouts are still unanswered.
    pub fn pending(&self) -> usize {
        self.slots.iter().filter(|s| s.result.is_none()).count()
    }
}

mod grpc;

#[cfg(test)]
mod tests;
