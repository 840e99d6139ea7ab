//! Runs: the lease, starting a run, callout answers, completion.

use super::{CalloutId, Dispatch, Effect, Engine, Level, LocalRun, Metric, Source, Store, Waiter};
use crate::cache::{self, Lease, LEASE_MARGIN_MS};
use crate::metrics;
use crate::outcome::{CalloutResponse, DispatchError};
use crate::report::Report;
use crate::run::ProbeRun;

impl Engine {
    /// The shared result of an endpoint, decoded once per change.
    pub(super) fn result(&mut self, store: &dyn Store, endpoint: usize) -> Option<Report> {
        let ep = self.policy.endpoints.get(endpoint)?;
        let bytes = store.get(&cache::result_key(self.generation, &ep.name)).0?;
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

    fn lease_key(&self, endpoint: usize) -> Option<String> {
        let ep = self.policy.endpoints.get(endpoint)?;
        Some(cache::lease_key(self.generation, &ep.name))
    }

    pub(super) fn lease(&self, store: &dyn Store, endpoint: usize) -> (Option<Lease>, Option<u32>) {
        let Some(key) = self.lease_key(endpoint) else {
            return (None, None);
        };
        let (bytes, cas) = store.get(&key);
        (bytes.and_then(|b| Lease::decode(&b)), cas)
    }

    /// Takes the endpoint's lease by compare-and-swap; false when another
    /// worker holds it or won the swap.
    pub(super) fn take_lease(&mut self, store: &mut dyn Store, endpoint: usize, now: u64) -> bool {
        let (Some(ep), Some(key)) = (
            self.policy.endpoints.get(endpoint),
            self.lease_key(endpoint),
        ) else {
            return false;
        };
        let (lease, cas) = self.lease(store, endpoint);
        if lease.is_some_and(|l| l.held_by_other(self.me, now)) {
            return false;
        }
        let mine = Lease {
            owner: self.me,
            expires_ms: now + ep.deadline_ms + LEASE_MARGIN_MS,
        };
        store.set(&key, &mine.encode(), cas).is_ok()
    }

    pub(super) fn release_lease(&mut self, store: &mut dyn Store, endpoint: usize) {
        let Some(key) = self.lease_key(endpoint) else {
            return;
        };
        let (lease, cas) = self.lease(store, endpoint);
        if lease.is_some_and(|l| l.owner == self.me) {
            let free = Lease {
                owner: 0,
                expires_ms: 0,
            };
            let _ = store.set(&key, &free.encode(), cas);
        }
    }

    /// Takes the lease and starts a run for `waiters`, who saw the result
    /// taken at `seen` (none: no result); when the lease is not to be had,
    /// gives the waiters back. When a newer result appeared since `seen`
    /// (another worker finished between the two reads), no run: the
    /// waiters get that result.
    pub(super) fn try_start(
        &mut self,
        store: &mut dyn Store,
        endpoint: usize,
        waiters: Vec<Waiter>,
        seen: Option<u64>,
        now: u64,
    ) -> Result<(), Vec<Waiter>> {
        if !self.take_lease(store, endpoint, now) {
            return Err(waiters);
        }
        let newer = self
            .result(store, endpoint)
            .filter(|r| seen.is_none_or(|s| r.at_ms > s));
        if let Some(r) = newer {
            self.release_lease(store, endpoint);
            for w in &waiters {
                self.answer_from(w.ctx, &w.probe, &r, Source::Result { at_ms: r.at_ms }, now);
            }
            return Ok(());
        }
        self.start(store, endpoint, waiters, now);
        Ok(())
    }

    /// Starts a run of `endpoint` (the lease is ours).
    fn start(&mut self, store: &mut dyn Store, endpoint: usize, waiters: Vec<Waiter>, now: u64) {
        let policy = self.policy.clone();
        self.out.push(Effect::Count(Metric::Runs(endpoint)));
        let id = self.next_run;
        self.next_run += 1;
        let run = ProbeRun::start(&policy, endpoint, now);
        let mut pending = Vec::new();
        for c in run.callouts(&policy) {
            pending.push(c.slot);
            self.out.push(Effect::Dispatch(Dispatch {
                id: CalloutId {
                    run: id,
                    slot: c.slot,
                },
                cluster: c.cluster.to_string(),
                headers: c
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                timeout_ms: c.timeout_ms,
                grpc: c.grpc,
            }));
        }
        if let Some(slot) = self.runs.get_mut(endpoint) {
            *slot = Some(LocalRun {
                id,
                run,
                pending,
                waiters,
            });
        }
        self.poll(store, endpoint, now);
    }

    /// Finds the run and slot of a callout still awaited, and forgets it.
    pub(super) fn awaited(&mut self, id: CalloutId) -> Option<usize> {
        self.runs.iter_mut().enumerate().find_map(|(i, r)| {
            let local = r.as_mut().filter(|l| l.id == id.run)?;
            let pos = local.pending.iter().position(|s| *s == id.slot)?;
            local.pending.swap_remove(pos);
            Some(i)
        })
    }

    /// A callout answered (a status, or none when it broke off). Answers
    /// to runs already complete are ignored.
    pub fn on_callout(
        &mut self,
        now: u64,
        store: &mut dyn Store,
        id: CalloutId,
        response: &CalloutResponse<'_>,
    ) {
        let Some(endpoint) = self.awaited(id) else {
            return;
        };
        let policy = self.policy.clone();
        if let Some(Some(local)) = self.runs.get_mut(endpoint) {
            local.run.response(&policy, id.slot, response, now);
        }
        self.poll(store, endpoint, now);
    }

    /// A callout could not be dispatched.
    pub fn on_dispatch_failed(
        &mut self,
        now: u64,
        store: &mut dyn Store,
        id: CalloutId,
        err: DispatchError,
    ) {
        let Some(endpoint) = self.awaited(id) else {
            return;
        };
        let policy = self.policy.clone();
        if let Some(Some(local)) = self.runs.get_mut(endpoint) {
            local.run.dispatch_failed(&policy, id.slot, err, now);
        }
        self.poll(store, endpoint, now);
    }

    /// Completes the endpoint's run if every check is in or its deadline
    /// has passed.
    pub(super) fn poll(&mut self, store: &mut dyn Store, endpoint: usize, now: u64) {
        let policy = self.policy.clone();
        let done = match self.runs.get_mut(endpoint) {
            Some(Some(local)) => local.run.poll(&policy, now),
            _ => None,
        };
        if let Some(report) = done {
            self.complete(store, endpoint, report, now);
        }
    }

    /// A run is complete: share the result, log state changes, record
    /// metrics, release the lease, answer every waiting probe.
    fn complete(&mut self, store: &mut dyn Store, endpoint: usize, report: Report, now: u64) {
        let Some(local) = self.runs.get_mut(endpoint).and_then(Option::take) else {
            return;
        };
        let previous = self.result(store, endpoint);
        for line in cache::changes(previous.as_ref(), &report) {
            self.out
                .push(Effect::Log(Level::Info, format!("meshprobe: {line}")));
        }
        let policy = self.policy.clone();
        for c in &report.checks {
            let Some(i) = policy.checks.iter().position(|k| k.name == c.name) else {
                continue;
            };
            self.out
                .push(Effect::Count(Metric::Callouts(i, metrics::outcome(c))));
            self.out.push(Effect::Record(
                Metric::State(i),
                metrics::state_value(c.health),
            ));
            self.out
                .push(Effect::Record(Metric::Latency(i), c.latency_ms));
        }
        // Never overwrite a newer result (from a worker whose lease came
        // after ours expired).
        if previous.as_ref().is_none_or(|p| p.at_ms <= report.at_ms) {
            if let Some(ep) = policy.endpoints.get(endpoint) {
                let key = cache::result_key(self.generation, &ep.name);
                let bytes = cache::encode(&report);
                if let Err(e) = store.set(&key, &bytes, None) {
                    let line = format!("meshprobe: result of {:?} not shared: {e}", ep.name);
                    self.out.push(Effect::Log(Level::Warn, line));
                }
                // This VM serves its own newest result (the memo held the
                // previous one, which may have the same time).
                if let Some(memo) = self.memo.get_mut(endpoint) {
                    *memo = Some((bytes, report.clone()));
                }
                if let Some(r) = self.rendered.get_mut(endpoint) {
                    r.clear();
                }
            }
        }
        self.release_lease(store, endpoint);
        let source = Source::Result {
            at_ms: report.at_ms,
        };
        for w in &local.waiters {
            self.answer_from(w.ctx, &w.probe, &report, source, now);
        }
        // Probes waiting on other workers for this endpoint are served too.
        let (mine, rest): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.remote)
            .into_iter()
            .partition(|w| w.probe.endpoint == endpoint);
        self.remote = rest;
        for w in &mine {
            self.answer_from(w.ctx, &w.probe, &report, source, now);
        }
    }

    /// On the tick: callouts whose timeout has passed without an answer
    /// are judged as Envoy judges them (a timeout), and the run completes
    /// at its deadline whatever the host did.
    pub(super) fn expire(&mut self, store: &mut dyn Store, endpoint: usize, now: u64) {
        let policy = self.policy.clone();
        let Some(Some(local)) = self.runs.get_mut(endpoint) else {
            return;
        };
        let started = local
            .run
            .deadline_at()
            .saturating_sub(policy.endpoints.get(endpoint).map_or(0, |e| e.deadline_ms));
        let late: Vec<usize> = local
            .pending
            .iter()
            .copied()
            .filter(|&slot| {
                local.run.check(&policy, slot).and_then(|c| {
                    let ep = policy.endpoints.get(endpoint)?;
                    Some(now >= started.saturating_add(c.timeout_for(ep)))
                }) == Some(true)
            })
            .collect();
        let none = CalloutResponse {
            status: None,
            body: &[],
            body_size: 0,
        };
        for slot in late {
            local.pending.retain(|s| *s != slot);
            local.run.response(&policy, slot, &none, now);
        }
        self.poll(store, endpoint, now);
    }
}
