//! The engine's promises, checked after every step of the simulation:
//!
//! 1. every probe is answered exactly once, never after its deadline plus
//!    one tick, never after its client left;
//! 2. per endpoint, a run starts only when no other worker has one in
//!    flight, and the shared result is at least one TTL old (on demand) or
//!    the last run started at least one TTL ago, less one tick
//!    (background refresh, on its slots); except when the last run's VM
//!    died (its lease expires first: the documented case);
//! 3. no answer comes from a result older than `max_stale`; `on_stale` and
//!    `on_startup` answer `fail` at once when they say so;
//! 4. every answer's status is the aggregation (computed here) of the run
//!    it came from;
//! 5. (at the end, in the test) nothing is left: no waiter, callout, lease
//!    or stuck run.

use meshprobe::classify::Probe;
use meshprobe::engine::{Source, TICK_MS};
use meshprobe::policy::{CachePolicy, OnMiss, Policy};
use meshprobe::render::Reply;
use meshprobe::report::{Health, Report};
use std::collections::HashMap;
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Arrived,
    Waiting,
    Answered,
    Gone,
    Lost,
}

pub struct ProbeRec {
    worker: usize,
    uid: u64,
    gen: u64,
    policy: Rc<Policy>,
    probe: Probe,

    deadline: u64,
    result_age: Option<u64>,
    /// `on_startup`/`on_stale` say `fail`, with `refresh`.
    must_fail: bool,
    state: State,
}

impl ProbeRec {
    pub fn new(
        worker: usize,
        uid: u64,
        gen: u64,
        policy: Rc<Policy>,
        probe: Probe,
        arrival: u64,
        result_age: Option<u64>,
    ) -> ProbeRec {
        let ep = policy.endpoints.get(probe.endpoint);
        let deadline = arrival + ep.map_or(0, |e| e.deadline_ms);
        let must_fail = ep.is_some_and(|ep| {
            let c = &ep.cache;
            c.refresh
                && !ep.checks.is_empty()
                && match result_age {
                    None => c.on_startup == OnMiss::Fail,
                    Some(a) => a > c.max_stale_ms && c.on_stale == OnMiss::Fail,
                }
        });
        ProbeRec {
            worker,
            uid,
            gen,
            policy,
            probe,
            deadline,
            result_age,
            must_fail,
            state: State::Arrived,
        }
    }
}

/// A run starting, as the world saw it.
pub struct RunStart {
    pub uid: u64,
    pub endpoint: usize,
    pub now: u64,
    /// Another live worker has a run of the endpoint in flight.
    pub others: bool,
    /// The shared result's time.
    pub result_at: Option<u64>,
    /// Since the last run of the endpoint started (on a live VM).
    pub spacing: Option<u64>,
}

#[derive(Default)]
pub struct Oracle {
    probes: HashMap<u32, ProbeRec>,
    /// Last run start per (engine, endpoint).
    pub runs: HashMap<(u64, usize), u64>,
    pub runs_started: u64,
    pub answered: u64,
    pub violations: Vec<String>,
}

/// The health of `report` narrowed to the probe's checks, aggregated here.
fn expected(policy: &Policy, probe: &Probe, report: &Report) -> Health {
    let Some(ep) = policy.endpoints.get(probe.endpoint) else {
        return Health::Fail;
    };
    let names: Vec<&str> = probe
        .checks(policy)
        .iter()
        .filter_map(|&c| policy.checks.get(c))
        .map(|c| c.name.as_str())
        .collect();
    let mut worst = Health::Pass;
    for c in report
        .checks
        .iter()
        .filter(|c| names.contains(&c.name.as_str()))
    {
        worst = worst.max(c.health);
    }
    if worst == Health::Warn && ep.warnings_as_errors {
        worst = Health::Fail;
    }
    worst
}

impl Oracle {
    fn fail(&mut self, what: String) {
        self.violations.push(what);
    }

    pub fn arrived(&mut self, ctx: u32, rec: ProbeRec) {
        self.probes.insert(ctx, rec);
    }

    pub fn waiting(&mut self, ctx: u32, deadline: u64) {
        let Some(p) = self.probes.get_mut(&ctx) else {
            return;
        };
        p.state = State::Waiting;
        if p.must_fail {
            return self.fail(format!(
                "probe {ctx}: waits, but on_startup/on_stale say fail at once"
            ));
        }
        if deadline != p.deadline {
            let want = p.deadline;
            self.fail(format!(
                "probe {ctx}: waits until {deadline}, its deadline is {want}"
            ));
        }
    }

    pub fn answered(
        &mut self,
        ctx: u32,
        now: u64,
        reply: &Reply,
        source: Source,
        results: &HashMap<(String, u64), Vec<Report>>,
        at_once: bool,
    ) {
        self.answered += 1;
        let Some(p) = self.probes.get_mut(&ctx) else {
            return self.fail(format!("reply to unknown context {ctx}"));
        };
        let state = p.state;
        if !matches!(state, State::Arrived | State::Waiting) || (state == State::Arrived) != at_once
        {
            return self.fail(format!(
                "probe {ctx}: answered in state {state:?} (at once: {at_once})"
            ));
        }
        p.state = State::Answered;
        let (policy, probe, deadline, age, must_fail, gen) = (
            p.policy.clone(),
            p.probe.clone(),
            p.deadline,
            p.result_age,
            p.must_fail,
            p.gen,
        );
        let Some(ep) = policy.endpoints.get(probe.endpoint) else {
            return;
        };
        if now > deadline + TICK_MS {
            return self.fail(format!(
                "probe {ctx}: answered at {now}, deadline {deadline} + one tick"
            ));
        }
        let codes = ep.status_codes;
        // on_startup / on_stale with refresh: `fail` at once.
        if must_fail && !(at_once && source == Source::Local && reply.status == codes.fail) {
            return self.fail(format!(
                "probe {ctx}: result age {age:?} must fail at once, got {} {source:?}",
                reply.status
            ));
        }
        let c = &ep.cache;
        match source {
            Source::Result { at_ms } => {
                if now.saturating_sub(at_ms) > c.max_stale_ms {
                    return self.fail(format!(
                        "probe {ctx}: served a result {}ms old, max_stale {}",
                        now - at_ms,
                        c.max_stale_ms
                    ));
                }
                let key = (meshprobe::cache::result_key(gen, &ep.name), at_ms);
                let Some(reports) = results.get(&key) else {
                    return self.fail(format!(
                        "probe {ctx}: answered from a result at {at_ms} that no run shared"
                    ));
                };
                // The run it came from: one of those shared at that time
                // (two runs may complete in the same millisecond).
                let wants: Vec<u16> = reports
                    .iter()
                    .map(|r| expected(&policy, &probe, r).http_status(&codes))
                    .collect();
                if !wants.contains(&reply.status) {
                    self.fail(format!(
                        "probe {ctx}: status {}, the run's aggregation says {wants:?}",
                        reply.status
                    ));
                }
            }
            Source::Local if ep.checks.is_empty() && reply.status != codes.pass => {
                self.fail(format!("probe {ctx}: liveness answered {}", reply.status));
            }
            _ => {}
        }
    }

    /// The client of `ctx` left: its worker and engine, if it was waiting.
    pub fn leave(&mut self, ctx: u32) -> Option<(usize, u64)> {
        let p = self.probes.get_mut(&ctx)?;
        if p.state != State::Waiting {
            return None;
        }
        p.state = State::Gone;
        Some((p.worker, p.uid))
    }

    /// The engine `uid` is gone with its VM: its probes are lost.
    pub fn lost(&mut self, uid: u64) {
        for p in self
            .probes
            .values_mut()
            .filter(|p| p.uid == uid && p.state == State::Waiting)
        {
            p.state = State::Lost;
        }
    }

    /// Probes past their deadline plus one tick.
    pub fn overdue(&mut self, now: u64) {
        let late: Vec<u32> = self
            .probes
            .iter()
            .filter(|(_, p)| p.state == State::Waiting && now > p.deadline + TICK_MS)
            .map(|(c, _)| *c)
            .collect();
        for ctx in late {
            self.fail(format!(
                "probe {ctx}: unanswered at {now}, past its deadline plus one tick"
            ));
        }
    }

    pub fn run_started(&mut self, r: &RunStart, cache: &CachePolicy) {
        let (uid, endpoint, now) = (r.uid, r.endpoint, r.now);
        self.runs_started += 1;
        self.runs.insert((uid, endpoint), now);
        if r.others {
            self.fail(format!(
                "engine {uid}: run of endpoint {endpoint} while another worker runs it"
            ));
        }
        let ttl = cache.ttl_ms;
        if cache.refresh {
            // Background runs: on slots one TTL apart (less one tick).
            if let Some(s) = r.spacing.filter(|s| *s + TICK_MS < ttl) {
                self.fail(format!(
                    "engine {uid}: run of endpoint {endpoint} {s}ms after the last (ttl {ttl})"
                ));
            }
        } else if let Some(at) = r.result_at.filter(|at| now.saturating_sub(*at) < ttl) {
            self.fail(format!(
                "engine {uid}: run of endpoint {endpoint} with a result {}ms old (ttl {ttl})",
                now - at
            ));
        }
    }

    /// Probes still waiting (none may be, at the end).
    pub fn still_waiting(&self) -> usize {
        self.probes
            .values()
            .filter(|p| matches!(p.state, State::Waiting | State::Arrived))
            .count()
    }
}
