//! Envoy metrics through `define_metric`: each is defined once per VM on
//! first use and found again by its key, so counting on the probe path
//! formats no name and allocates nothing.

use crate::engine::{Metric, MetricKind};
use crate::policy::Policy;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

#[derive(Default)]
pub struct Stats {
    ids: Vec<(Metric, u32)>,
}

impl Stats {
    fn id(&mut self, policy: &Policy, vm: u64, key: Metric) -> Option<u32> {
        if let Some((_, id)) = self.ids.iter().find(|(k, _)| *k == key) {
            return Some(*id);
        }
        let (kind, name) = key.define(policy, vm)?;
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        let id = hostcalls::define_metric(kind, &name).ok()?;
        self.ids.push((key, id));
        Some(id)
    }

    pub fn count(&mut self, policy: &Policy, vm: u64, key: Metric) {
        if let Some(id) = self.id(policy, vm, key) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Sets a gauge or records a histogram sample.
    pub fn record(&mut self, policy: &Policy, vm: u64, key: Metric, value: u64) {
        if let Some(id) = self.id(policy, vm, key) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}
