//! The metrics the engine counts, as small keys; the host defines each
//! once per VM (by its name, from [`crate::metrics`]) and finds it again
//! by key.

use crate::metrics;
use crate::policy::Policy;

/// Which metric: the kind, the endpoint or check index, and a number
/// (status code, or outcome label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    Probes(usize, u16),
    Unauthorized(usize),
    Cache(usize, bool),
    Runs(usize),
    Callouts(usize, &'static str),
    State(usize),
    Latency(usize),
    /// This VM's linear memory, in bytes (a gauge per VM).
    VmMemory,
}

/// How a metric aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl Metric {
    /// The metric's kind and name in `policy`, for the VM `vm` (`None` for
    /// an index the policy does not have).
    pub fn define(self, policy: &Policy, vm: u64) -> Option<(MetricKind, String)> {
        let ep = |i: usize| policy.endpoints.get(i).map(|e| e.name.as_str());
        let check = |i: usize| policy.checks.get(i).map(|c| c.name.as_str());
        Some(match self {
            Metric::Probes(e, code) => (MetricKind::Counter, metrics::probes(ep(e)?, code)),
            Metric::Unauthorized(e) => (MetricKind::Counter, metrics::unauthorized(ep(e)?)),
            Metric::Cache(e, hit) => (MetricKind::Counter, metrics::cache(ep(e)?, hit)),
            Metric::Runs(e) => (MetricKind::Counter, metrics::runs(ep(e)?)),
            Metric::Callouts(c, outcome) => {
                (MetricKind::Counter, metrics::callouts(check(c)?, outcome))
            }
            Metric::State(c) => (MetricKind::Gauge, metrics::state(check(c)?)),
            Metric::Latency(c) => (MetricKind::Histogram, metrics::latency(check(c)?)),
            Metric::VmMemory => (MetricKind::Gauge, vm_memory(vm)),
        })
    }
}

/// `meshprobe.vm.<id>.vm_memory_bytes`: one gauge per VM (a gauge shared by
/// the workers would only show the last writer). The tag `meshprobe_vm`
/// extracts the id: `meshprobe_vm_memory_bytes{meshprobe_vm="<id>"}`.
pub fn vm_memory(vm: u64) -> String {
    format!("meshprobe.vm.{vm:016x}.vm_memory_bytes")
}
