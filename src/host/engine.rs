//! One per VM (worker thread): serves probes from the shared result, runs
//! the checks under a lease when the result is stale, coalesces the probes
//! that arrive meanwhile, and refreshes in the background on the tick.
//!
//! Callouts are dispatched from whichever context starts a run (a probe's
//! HTTP context, or the root context on a tick); both forward the answers
//! here by token. A run whose starting request went away (its callouts are
//! cancelled with it) is run again by the root context on the next tick for
//! the probes still waiting.

use super::filter::send;
use super::stats::{Key, Stats};
use super::TICK_MS;
use crate::cache::{self, Lease, Plan, LEASE_MARGIN_MS};
use crate::classify::Probe;
use crate::metrics;
use crate::outcome::{body_bytes_needed, CalloutResponse, DispatchError};
use crate::policy::Format;
use crate::policy::Policy;
use crate::render::{render, Reply, View};
use crate::report::{Health, Report};
use crate::run::ProbeRun;
use log::{info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};
use std::rc::Rc;
use std::time::Duration;

/// A probe waiting for a result.
struct Waiter {
    ctx: u32,
    probe: Probe,
    deadline_ms: u64,
    /// `at_ms` of the result that was too old when it came (remote waits).
    seen_at: Option<u64>,
}

/// A run of one endpoint's checks in this VM.
struct LocalRun {
    run: ProbeRun,
    /// Callout token -> slot.
    tokens: Vec<(u32, usize)>,
    /// The context its callouts were dispatched from.
    runner: u32,
    waiters: Vec<Waiter>,
}

pub struct Engine {
    policy: Rc<Policy>,
    generation: u64,
    me: u64,
    stats: Stats,
    runs: Vec<Option<LocalRun>>,
    /// Probes waiting for another worker's run.
    remote: Vec<Waiter>,
    /// Last decoded result per endpoint, with its bytes.
    memo: Vec<Option<(Vec<u8>, Report)>>,
    /// Answers rendered from the memo'd result, by view (full check set,
    /// no notes): a probe storm renders each view once per result.
    rendered: Vec<Vec<((Format, bool, bool), Reply)>>,
    /// Runners that went away with callouts pending.
    orphaned: Vec<u32>,
    /// The context of the host callback being handled.
    current: u32,
}

impl Engine {
    pub fn new(policy: Rc<Policy>, generation: u64, me: u64) -> Engine {
        let n = policy.endpoints.len();
        let engine = Engine {
            policy,
            generation,
            me,
            stats: Stats::default(),
            runs: (0..n).map(|_| None).collect(),
            remote: Vec::new(),
            memo: (0..n).map(|_| None).collect(),
            rendered: (0..n).map(|_| Vec::new()).collect(),
            orphaned: Vec::new(),
            current: 0,
        };
        // Create each lease key once, so every later take is a real
        // compare-and-swap (a missing key cannot be swapped).
        for ep in &engine.policy.endpoints {
            let key = cache::lease_key(generation, &ep.name);
            if let Ok((None, _)) = hostcalls::get_shared_data(&key) {
                let free = Lease {
                    owner: 0,
                    expires_ms: 0,
                };
                let _ = hostcalls::set_shared_data(&key, Some(&free.encode()), None);
            }
        }
        engine
    }

    pub fn policy(&self) -> Rc<Policy> {
        self.policy.clone()
    }

    pub fn unauthorized(&mut self, endpoint: usize) {
        self.stats.count(&self.policy, Key::Unauthorized(endpoint));
    }

    /// Handles a probe from context `ctx`; true when it waits (answered
    /// later), false when it was answered at once.
    pub fn probe(&mut self, ctx: u32, probe: Probe, now: u64) -> bool {
        self.current = ctx;
        let policy = self.policy.clone();
        let Some(ep) = policy.endpoints.get(probe.endpoint) else {
            return false;
        };
        if ep.checks.is_empty() {
            // Liveness: answered locally, zero callouts, nothing to share.
            let mut report = Report::new(&ep.name, Vec::new());
            report.at_ms = now;
            self.answer(ctx, &probe, &report, now);
            return false;
        }
        let endpoint = probe.endpoint;
        // Fast path: the result this VM last read is still within its TTL;
        // a newer one elsewhere changes nothing for this probe.
        if let Some(Some((_, memo))) = self.memo.get(endpoint) {
            if now.saturating_sub(memo.at_ms) < ep.cache.ttl_ms {
                self.stats.count(&policy, Key::Cache(endpoint, true));
                let at = memo.at_ms;
                self.answer_memo(ctx, &probe, at, now);
                return false;
            }
        }
        let result = self.result(endpoint);
        let fresh = result
            .as_ref()
            .is_some_and(|r| now.saturating_sub(r.at_ms) < ep.cache.ttl_ms);
        let lease = if fresh { None } else { self.lease(endpoint).0 };
        let local = self.runs.get(probe.endpoint).is_some_and(Option::is_some);
        let waiter = Waiter {
            ctx,
            deadline_ms: now.saturating_add(ep.deadline_ms),
            seen_at: result.as_ref().map(|r| r.at_ms),
            probe,
        };
        match cache::plan(&ep.cache, waiter.seen_at, lease, self.me, local, now) {
            Plan::Serve => {
                self.stats.count(&policy, Key::Cache(endpoint, true));
                if let Some(full) = result {
                    self.answer_memo(ctx, &waiter.probe, full.at_ms, now);
                }
                false
            }
            Plan::Fail(reason) => {
                self.stats.count(&policy, Key::Cache(endpoint, true));
                let mut report = Report::new(&ep.name, Vec::new());
                report.health = Health::Fail;
                report.at_ms = now;
                report.notes = vec![reason];
                self.answer(ctx, &waiter.probe, &report, now);
                false
            }
            Plan::Join => {
                self.stats.count(&policy, Key::Cache(endpoint, false));
                if let Some(Some(run)) = self.runs.get_mut(waiter.probe.endpoint) {
                    run.waiters.push(waiter);
                }
                true
            }
            Plan::Wait => {
                self.stats.count(&policy, Key::Cache(endpoint, false));
                self.remote.push(waiter);
                true
            }
            Plan::Run => {
                self.stats.count(&policy, Key::Cache(endpoint, false));
                if self.take_lease(endpoint, now) {
                    self.start(endpoint, ctx, vec![waiter], now);
                } else {
                    // Another worker took it between our read and our swap.
                    self.remote.push(waiter);
                }
                true
            }
        }
    }

    /// The shared result of an endpoint, decoded once per change.
    fn result(&mut self, endpoint: usize) -> Option<Report> {
        let ep = self.policy.endpoints.get(endpoint)?;
        let bytes = hostcalls::get_shared_data(&cache::result_key(self.generation, &ep.name))
            .ok()?
            .0?;
        let memo = self.memo.get_mut(endpoint)?;
        if let Some((b, report)) = memo {
            if *b == bytes {
                return Some(report.clone());
            }
        }
        let report = cache::decode(&bytes)?;
        *memo = Some((bytes, report.clone()));
        if let Some(r) = self.rendered.get_mut(endpoint) {
            r.clear();
        }
        Some(report)
    }

    fn lease(&self, endpoint: usize) -> (Option<Lease>, Option<u32>) {
        let Some(ep) = self.policy.endpoints.get(endpoint) else {
            return (None, None);
        };
        match hostcalls::get_shared_data(&cache::lease_key(self.generation, &ep.name)) {
            Ok((bytes, cas)) => (bytes.and_then(|b| Lease::decode(&b)), cas),
            Err(_) => (None, None),
        }
    }

    /// Takes the endpoint's lease by compare-and-swap; false when another
    /// worker holds it or won the swap.
    fn take_lease(&mut self, endpoint: usize, now: u64) -> bool {
        let Some(ep) = self.policy.endpoints.get(endpoint) else {
            return false;
        };
        let (lease, cas) = self.lease(endpoint);
        if lease.is_some_and(|l| l.held_by_other(self.me, now)) {
            return false;
        }
        let mine = Lease {
            owner: self.me,
            expires_ms: now + ep.deadline_ms + LEASE_MARGIN_MS,
        };
        let key = cache::lease_key(self.generation, &ep.name);
        hostcalls::set_shared_data(&key, Some(&mine.encode()), cas).is_ok()
    }

    fn release_lease(&mut self, endpoint: usize) {
        let Some(ep) = self.policy.endpoints.get(endpoint) else {
            return;
        };
        let (lease, cas) = self.lease(endpoint);
        if lease.is_some_and(|l| l.owner == self.me) {
            let free = Lease {
                owner: 0,
                expires_ms: 0,
            };
            let key = cache::lease_key(self.generation, &ep.name);
            let _ = hostcalls::set_shared_data(&key, Some(&free.encode()), cas);
        }
    }

    /// Starts a run of `endpoint` with callouts dispatched from context
    /// `runner` (the current one).
    fn start(&mut self, endpoint: usize, runner: u32, waiters: Vec<Waiter>, now: u64) {
        let policy = self.policy.clone();
        self.stats.count(&policy, Key::Runs(endpoint));
        let mut run = ProbeRun::start(&policy, endpoint, now);
        let mut tokens = Vec::new();
        for callout in run.callouts(&policy) {
            let timeout = Duration::from_millis(callout.timeout_ms);
            match hostcalls::dispatch_http_call(
                callout.cluster,
                callout.headers.clone(),
                None,
                vec![],
                timeout,
            ) {
                Ok(token) => tokens.push((token, callout.slot)),
                Err(status) => {
                    let err = match status {
                        Status::BadArgument => DispatchError::BadArgument,
                        Status::InternalFailure => DispatchError::FailedAtOnce,
                        other => DispatchError::Other(other as u32),
                    };
                    run.dispatch_failed(&policy, callout.slot, err, now);
                }
            }
        }
        let done = run.poll(&policy, now);
        if let Some(slot) = self.runs.get_mut(endpoint) {
            *slot = Some(LocalRun {
                run,
                tokens,
                runner,
                waiters,
            });
        }
        if let Some(report) = done {
            self.complete(endpoint, report, runner, now);
        }
    }

    /// A callout answered in context `current`.
    pub fn on_callout(&mut self, current: u32, token: u32, num_headers: usize, body_size: usize) {
        self.current = current;
        let now = super::now_ms();
        let policy = self.policy.clone();
        let found = self.runs.iter().enumerate().find_map(|(i, r)| {
            let run = r.as_ref()?;
            let pos = run.tokens.iter().position(|(t, _)| *t == token)?;
            Some((i, pos))
        });
        let Some((endpoint, pos)) = found else { return };
        let Some(Some(local)) = self.runs.get_mut(endpoint) else {
            return;
        };
        let (_, slot) = local.tokens.swap_remove(pos);
        // No headers: the callout failed after its answer began (reset,
        // or timed out mid-body). Envoy then has no response to read, and
        // reading one would be refused, which the SDK turns into a panic.
        let status = if num_headers == 0 {
            None
        } else {
            hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
                .ok()
                .flatten()
        };
        let body_size = if status.is_none() { 0 } else { body_size };
        let wanted = local
            .run
            .check(&policy, slot)
            .map_or(0, |c| body_bytes_needed(c, status.as_deref(), body_size));
        let body = if wanted > 0 {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, wanted)
                .ok()
                .flatten()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let response = CalloutResponse {
            status: status.as_deref(),
            body: &body,
            body_size,
        };
        local.run.response(&policy, slot, &response, now);
        if let Some(report) = local.run.poll(&policy, now) {
            self.complete(endpoint, report, current, now);
        }
    }

    /// A run is complete: share the result, log state changes, record
    /// metrics, release the lease, answer every waiting probe.
    fn complete(&mut self, endpoint: usize, report: Report, current: u32, now: u64) {
        let Some(local) = self.runs.get_mut(endpoint).and_then(Option::take) else {
            return;
        };
        let previous = self.result(endpoint);
        for line in cache::changes(previous.as_ref(), &report) {
            info!("meshprobe: {line}");
        }
        let policy = self.policy.clone();
        for c in &report.checks {
            let Some(i) = policy.checks.iter().position(|k| k.name == c.name) else {
                continue;
            };
            self.stats
                .count(&policy, Key::Callouts(i, metrics::outcome(c)));
            self.stats
                .record(&policy, Key::State(i), metrics::state_value(c.health));
            self.stats.record(&policy, Key::Latency(i), c.latency_ms);
        }
        // Never overwrite a newer result (from a worker whose lease came
        // after ours expired).
        if previous.as_ref().is_none_or(|p| p.at_ms <= report.at_ms) {
            if let Some(ep) = self.policy.endpoints.get(endpoint) {
                let key = cache::result_key(self.generation, &ep.name);
                if let Err(status) =
                    hostcalls::set_shared_data(&key, Some(&cache::encode(&report)), None)
                {
                    warn!("meshprobe: result of {:?} not shared: {status:?}", ep.name);
                }
            }
        }
        self.release_lease(endpoint);
        for w in &local.waiters {
            self.answer_from(w.ctx, &w.probe, &report, now);
        }
        // Probes waiting on other workers for this endpoint are served too.
        let (mine, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.remote)
            .into_iter()
            .partition(|w| w.probe.endpoint == endpoint);
        self.remote = rest;
        for w in &mine {
            self.answer_from(w.ctx, &w.probe, &report, now);
        }
        if self.current != current {
            let _ = hostcalls::set_effective_context(current);
            self.current = current;
        }
    }

    /// Answers a probe from a full report (narrowed to its checks).
    fn answer_from(&mut self, ctx: u32, probe: &Probe, full: &Report, now: u64) {
        let report = cache::select(
            &self.policy,
            probe.endpoint,
            &probe.checks,
            full,
            &probe.notes,
        );
        self.answer(ctx, probe, &report, now);
    }

    /// Answers from the memo'd result taken at `at_ms`, rendering each view
    /// once per result.
    fn answer_memo(&mut self, ctx: u32, probe: &Probe, at_ms: u64, now: u64) {
        let endpoint = probe.endpoint;
        let full_set = self
            .policy
            .endpoints
            .get(endpoint)
            .is_some_and(|e| e.checks.len() == probe.checks.len());
        let Some(Some((_, memo))) = self.memo.get(endpoint) else {
            return;
        };
        if !full_set || !probe.notes.is_empty() || memo.at_ms != at_ms {
            let memo = memo.clone();
            self.answer_from(ctx, probe, &memo, now);
            return;
        }
        let key = (probe.format, probe.verbose, probe.details);
        let cached = self
            .rendered
            .get(endpoint)
            .and_then(|r| r.iter().find(|(k, _)| *k == key))
            .map(|(_, reply)| reply.clone());
        let reply = match cached {
            Some(reply) => reply,
            None => {
                let reply = self.render(probe, memo);
                if let Some(r) = self.rendered.get_mut(endpoint) {
                    r.push((key, reply.clone()));
                }
                reply
            }
        };
        self.send_to(ctx, endpoint, reply, at_ms, now);
    }

    fn render(&self, probe: &Probe, report: &Report) -> Reply {
        let (codes, degraded_header) = self
            .policy
            .endpoints
            .get(probe.endpoint)
            .map(|ep| (ep.status_codes, ep.degraded_header))
            .unwrap_or_default();
        let view = View {
            format: probe.format,
            verbose: probe.verbose,
            details: probe.details,
            codes,
            degraded_header,
        };
        render(report, &view, &self.policy.service)
    }

    fn answer(&mut self, ctx: u32, probe: &Probe, report: &Report, now: u64) {
        let reply = self.render(probe, report);
        self.send_to(ctx, probe.endpoint, reply, report.at_ms, now);
    }

    fn send_to(&mut self, ctx: u32, endpoint: usize, mut reply: Reply, at_ms: u64, now: u64) {
        let policy = self.policy.clone();
        let Some(ep) = policy.endpoints.get(endpoint) else {
            return;
        };
        if !ep.checks.is_empty() {
            reply
                .headers
                .push(("age", cache::age_secs(at_ms, now).to_string()));
        }
        // Another request's answer: switch to its context (it may have
        // gone away meanwhile: then there is no one to answer).
        if ctx != self.current {
            if hostcalls::set_effective_context(ctx).is_err() {
                return;
            }
            self.current = ctx;
        }
        send(&reply);
        self.stats
            .count(&policy, Key::Probes(endpoint, reply.status));
    }

    /// The request `ctx` went away.
    pub fn forget(&mut self, ctx: u32) {
        self.remote.retain(|w| w.ctx != ctx);
        for local in self.runs.iter_mut().flatten() {
            local.waiters.retain(|w| w.ctx != ctx);
            if local.runner == ctx && !local.tokens.is_empty() {
                // Its callouts are cancelled with it.
                self.orphaned.push(ctx);
            }
        }
    }

    /// Root context tick: overdue runs, orphaned runs, probes waiting on
    /// other workers, background refreshes.
    pub fn tick(&mut self, root: u32, now: u64) {
        self.current = root;
        let policy = self.policy.clone();
        for endpoint in 0..self.runs.len() {
            // Probes whose own deadline comes before the run's (a run
            // restarted for them, below, started after they came) get the
            // run as it stands when their deadline has come. The others are
            // answered when the run completes, by its deadline.
            let overdue = match self.runs.get_mut(endpoint) {
                Some(Some(local)) => {
                    let run_deadline = local.run.deadline_at();
                    let due = |w: &Waiter| now >= w.deadline_ms && w.deadline_ms < run_deadline;
                    if local.waiters.iter().any(due) {
                        let (late, keep): (Vec<Waiter>, Vec<Waiter>) =
                            std::mem::take(&mut local.waiters)
                                .into_iter()
                                .partition(due);
                        local.waiters = keep;
                        Some((late, local.run.report_now(&policy, now)))
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if let Some((late, report)) = overdue {
                for w in &late {
                    self.answer_from(w.ctx, &w.probe, &report, now);
                }
            }
            let Some(Some(local)) = self.runs.get_mut(endpoint) else {
                continue;
            };
            if self.orphaned.contains(&local.runner) {
                // Run it again from the root for the probes still waiting.
                let waiters = std::mem::take(&mut local.waiters);
                self.runs.get_mut(endpoint).map(Option::take);
                if waiters.is_empty() {
                    self.release_lease(endpoint);
                } else if self.take_lease(endpoint, now) {
                    self.start(endpoint, root, waiters, now);
                } else {
                    self.remote.extend(waiters);
                }
                continue;
            }
            // Callbacks that never came (should not happen: every callout
            // has a timeout within the deadline).
            if now >= local.run.deadline_at().saturating_add(LEASE_MARGIN_MS) {
                let report = local.run.report_now(&policy, now);
                self.complete(endpoint, report, root, now);
            }
        }
        self.orphaned.clear();

        // Probes waiting for another worker's result.
        let waiting = std::mem::take(&mut self.remote);
        for w in waiting {
            let endpoint = w.probe.endpoint;
            let result = self.result(endpoint);
            if let Some(r) = result.filter(|r| w.seen_at.is_none_or(|seen| r.at_ms > seen)) {
                self.answer_from(w.ctx, &w.probe, &r, now);
            } else if self.runs.get(endpoint).is_some_and(Option::is_some) {
                if let Some(Some(local)) = self.runs.get_mut(endpoint) {
                    local.waiters.push(w);
                }
            } else if now >= w.deadline_ms {
                let name = policy
                    .endpoints
                    .get(endpoint)
                    .map_or("", |e| e.name.as_str());
                let mut report = Report::new(name, Vec::new());
                report.health = Health::Fail;
                report.at_ms = now;
                report.notes =
                    vec!["deadline exceeded waiting for the run on another worker".into()];
                self.answer(w.ctx, &w.probe, &report, now);
            } else if self.take_lease(endpoint, now) {
                // The other worker is gone or done without a newer result.
                self.start(endpoint, root, vec![w], now);
            } else {
                self.remote.push(w);
            }
        }

        // Background refresh.
        for (endpoint, ep) in policy.endpoints.iter().enumerate() {
            if !ep.cache.refresh || self.runs.get(endpoint).is_some_and(Option::is_some) {
                continue;
            }
            let at = self.result(endpoint).map(|r| r.at_ms);
            if cache::refresh_due(&ep.cache, at, TICK_MS, now) && self.take_lease(endpoint, now) {
                self.start(endpoint, root, Vec::new(), now);
            }
        }
        if self.current != root {
            let _ = hostcalls::set_effective_context(root);
            self.current = root;
        }
    }
}
