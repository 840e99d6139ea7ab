//! The tick: overdue runs and probes, probes waiting on other workers,
//! background refreshes.
//!
//! Refresh jitter: a VM's first background run of an endpoint starts at a
//! random time within one TTL of the VM's start, and each next one at the
//! result's time plus the TTL plus a random jitter of up to a tenth of the
//! TTL (never past `max_stale`). So the Envoys of a mesh that start
//! together (a rollout), or whose dependency recovers together, spread
//! their runs over the TTL instead of calling at once; and runs of an
//! endpoint are never less than one TTL apart. Leases need no jitter:
//! the workers of an Envoy race for one by compare-and-swap, one wins.

use super::{Engine, Source, SplitMix, Store, Waiter};
use crate::policy::{CachePolicy, Policy};
use crate::report::{Health, Report};

/// The first refresh of each endpoint with `refresh`: within one TTL.
pub(super) fn first_refreshes(policy: &Policy, rng: &mut SplitMix, now: u64) -> Vec<Option<u64>> {
    policy
        .endpoints
        .iter()
        .map(|e| (e.cache.refresh && !e.checks.is_empty()).then(|| now + rng.below(e.cache.ttl_ms)))
        .collect()
}

/// The jitter bound of a refresh period.
fn jitter_bound(cache: &CachePolicy) -> u64 {
    (cache.ttl_ms / 10).min(cache.max_stale_ms.saturating_sub(cache.ttl_ms))
}

impl Engine {
    /// The next refresh after a result taken at `at_ms`.
    pub(super) fn schedule_refresh(&mut self, endpoint: usize, at_ms: u64) {
        let Some(ep) = self.policy.endpoints.get(endpoint) else {
            return;
        };
        if !ep.cache.refresh {
            return;
        }
        let due = at_ms + ep.cache.ttl_ms + self.rng.below(jitter_bound(&ep.cache) + 1);
        if let Some(slot) = self.refresh_at.get_mut(endpoint) {
            *slot = Some(due);
        }
    }

    /// The periodic tick (every [`super::TICK_MS`]).
    pub fn on_tick(&mut self, now: u64, store: &mut dyn Store) {
        let policy = self.policy.clone();
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
        self.remote_waiters(store, now);
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
            } else if let Err(back) = self.try_start(store, endpoint, vec![w], now) {
                // The other worker is still at it.
                self.remote.extend(back);
            }
        }
    }

    /// Background refreshes that are due.
    fn refresh(&mut self, store: &mut dyn Store, now: u64) {
        for endpoint in 0..self.runs.len() {
            let Some(Some(mut due)) = self.refresh_at.get(endpoint).copied() else {
                continue;
            };
            if self.runs.get(endpoint).is_some_and(Option::is_some) {
                continue;
            }
            // A newer result (another worker's) moves the next refresh.
            if let Some(at) = self.result(store, endpoint).map(|r| r.at_ms) {
                let ttl = self
                    .policy
                    .endpoints
                    .get(endpoint)
                    .map_or(0, |e| e.cache.ttl_ms);
                if at + ttl > due {
                    self.schedule_refresh(endpoint, at);
                    due = self
                        .refresh_at
                        .get(endpoint)
                        .copied()
                        .flatten()
                        .unwrap_or(due);
                }
            }
            if now >= due {
                let _ = self.try_start(store, endpoint, Vec::new(), now);
            }
        }
    }
}
