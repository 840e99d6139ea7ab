//! Envoy metrics through `define_metric`. Each metric is defined once per
//! VM on first use and found again by a small key, so counting on the probe
//! path formats no name and allocates nothing.

use crate::metrics;
use crate::policy::Policy;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Which metric: the kind, the endpoint or check index, and a number
/// (status code, or outcome index).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Probes(usize, u16),
    Unauthorized(usize),
    Cache(usize, bool),
    Runs(usize),
    Callouts(usize, &'static str),
    State(usize),
    Latency(usize),
}

#[derive(Default)]
pub struct Stats {
    ids: Vec<(Key, u32)>,
}

impl Stats {
    fn id(&mut self, policy: &Policy, key: Key) -> Option<u32> {
        if let Some((_, id)) = self.ids.iter().find(|(k, _)| *k == key) {
            return Some(*id);
        }
        let ep = |i: usize| policy.endpoints.get(i).map(|e| e.name.as_str());
        let check = |i: usize| policy.checks.get(i).map(|c| c.name.as_str());
        let (kind, name) = match key {
            Key::Probes(e, code) => (MetricType::Counter, metrics::probes(ep(e)?, code)),
            Key::Unauthorized(e) => (MetricType::Counter, metrics::unauthorized(ep(e)?)),
            Key::Cache(e, hit) => (MetricType::Counter, metrics::cache(ep(e)?, hit)),
            Key::Runs(e) => (MetricType::Counter, metrics::runs(ep(e)?)),
            Key::Callouts(c, outcome) => {
                (MetricType::Counter, metrics::callouts(check(c)?, outcome))
            }
            Key::State(c) => (MetricType::Gauge, metrics::state(check(c)?)),
            Key::Latency(c) => (MetricType::Histogram, metrics::latency(check(c)?)),
        };
        let id = hostcalls::define_metric(kind, &name).ok()?;
        self.ids.push((key, id));
        Some(id)
    }

    pub fn count(&mut self, policy: &Policy, key: Key) {
        if let Some(id) = self.id(policy, key) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Sets a gauge or records a histogram sample.
    pub fn record(&mut self, policy: &Policy, key: Key, value: u64) {
        if let Some(id) = self.id(policy, key) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}
