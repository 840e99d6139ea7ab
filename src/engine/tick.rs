//! The tick: overdue runs and probes, probes waiting on other workers,
//! background refreshes.
//!
//! Refresh jitter: the background runs of an endpoint start on slots one
//! TTL apart, `first + k * ttl`, where `first` is a random time within one
//! TTL of the Envoy's start, drawn once per Envoy (by its first worker,
//! shared through the store). The next run is on the first slot at least
//! one TTL (less one tick) after the last run started. So the Envoys of a
//! mesh that start together (a rollout) spread their runs uniformly over
//! the TTL, and keep them spread: a slow run, an outage or a recovery does
//! not move a slot (a random jitter drawn anew each period would: the
//! runs then drift into bunches; the mesh simulator measured 1.53x the
//! mean load over 100 ms against 1.5x allowed). Leases need no jitter: the
//! workers of an Envoy race for one by compare-and-swap, one wins.

use super::{Engine, Source, SplitMix, Store, Waiter};
use crate::policy::Policy;
use crate::report::{Health, Report};

/// The first refresh of each endpoint with `refresh`: at a random time
/// within one TTL, drawn by the first worker of the Envoy and shared
/// (were each worker to draw its own, the earliest of them would win,
/// bunching first runs at the start of the TTL).
pub(super) fn first_refreshes(
    policy: &Policy,
    generation: u64,
    rng: &mut SplitMix,
    now: u64,
    store: &mut dyn Store,
) -> Vec<Option<u64>> {
    let mut first = |e: &crate::policy::Endpoint| {
        if !e.cache.refresh || e.checks.is_empty() {
            return None;
        }
        let key = crate::cache::first_key(generation, &e.name);
        let read = |store: &dyn Store| {
            let bytes = store.get(&key).0?;
            std::str::from_utf8(&bytes).ok()?.parse::<u64>().ok()
        };
        if let Some(at) = read(store) {
            return Some(at);
        }
        let at = now + rng.below(e.cache.ttl_ms);
        let _ = store.set(&key, at.to_string().as_bytes(), None);
        Some(read(store).unwrap_or(at))
    };
    policy.endpoints.iter().map(&mut first).collect()
}

/// When the next background run is due: the first slot (`first + k *
/// ttl`) at least one TTL, less one tick, after the last run started.
fn due(first: u64, ttl: u64, last: Option<&Report>) -> u64 {
    let Some(r) = last else { return first };
    let took = r.checks.iter().map(|c| c.latency_ms).max().unwrap_or(0);
    let earliest = r.at_ms.saturating_sub(took) + ttl.saturating_sub(super::TICK_MS);
    if earliest <= first || ttl == 0 {
        return earliest.max(first);
    }
    first + (earliest - first).div_ceil(ttl) * ttl
}

impl Engine {
    /// The periodic tick (every [`super::TICK_MS`]).
    pub fn on_tick(&mut self, now: u64, store: &mut dyn Store) {
        let policy = self.policy.clone();
        // First: a probe waiting on another worker may join a run started
        // now, and is then answered below if its deadline has come.
        self.remote_waiters(store, now);
        for endpoint in 0..self.runs.len() {
            self.expire(store, endpoint, now);
            // Probes whose own deadline has come (they joined, or came back
            // from another worker, after the run started) get the run as it
            // stands.
            let overdue = match self.runs.get_mut(endpoint) {
                Some(Some(local)) if local.waiters.iter().any(|w| now >= w.deadline_ms) => {
                    let (late, keep): (Vec<Waiter>, Vec<Waiter>) =
                        std::mem::take(&mut local.waiters)
                            .into_iter()
                            .partition(|w| now >= w.deadline_ms);
                    local.waiters = keep;
                    Some((late, local.run.report_now(&policy, now)))
                }
                _ => None,
            };
            if let Some((late, report)) = overdue {
                for w in &late {
                    self.answer_from(w.ctx, &w.probe, &report, Source::Partial, now);
                }
            }
        }
        self.refresh(store, now);
    }

    /// Probes waiting for another worker's result.
    fn remote_waiters(&mut self, store: &mut dyn Store, now: u64) {
        let policy = self.policy.clone();
        for w in std::mem::take(&mut self.remote) {
            let endpoint = w.probe.endpoint;
            let result = self.result(store, endpoint);
            if let Some(r) = result.filter(|r| w.seen_at.is_none_or(|seen| r.at_ms > seen)) {
                self.answer_from(w.ctx, &w.probe, &r, Source::Result { at_ms: r.at_ms }, now);
            } else if let Some(Some(local)) = self.runs.get_mut(endpoint) {
                local.waiters.push(w);
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
                self.answer(w.ctx, &w.probe, &report, Source::Local, now);
            } else if let Err(back) = {
                let seen = w.seen_at;
                self.try_start(store, endpoint, vec![w], seen, now)
            } {
                // The other worker is still at it.
                self.remote.extend(back);
            }
        }
    }

    /// Background refreshes that are due.
    fn refresh(&mut self, store: &mut dyn Store, now: u64) {
        for endpoint in 0..self.runs.len() {
            let Some(Some(first)) = self.refresh_at.get(endpoint).copied() else {
                continue;
            };
            if self.runs.get(endpoint).is_some_and(Option::is_some) {
                continue;
            }
            let ttl = self
                .policy
                .endpoints
                .get(endpoint)
                .map_or(0, |e| e.cache.ttl_ms);
            let last = self.result(store, endpoint);
            if now >= due(first, ttl, last.as_ref()) {
                let seen = last.map(|r| r.at_ms);
                let _ = self.try_start(store, endpoint, Vec::new(), seen, now);
            }
        }
    }
}
