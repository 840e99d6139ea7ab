//! Sharing one run's result: what a probe does given the cached result, the
//! lease on the next run, and the time. Pure; the host stores entries and
//! leases in proxy-wasm shared data (one value per key, compare-and-swap),
//! so every worker of an Envoy (every VM with the same `vm_id`) shares them.

use crate::policy::{CachePolicy, OnMiss, Policy};
use crate::report::{Health, Report};

mod stored;
pub use stored::{decode, encode};

/// Margin added to a run's deadline for its lease: a worker that dies
/// mid-run blocks the next run for at most deadline + this.
pub const LEASE_MARGIN_MS: u64 = 200;

/// Shared-data key of an endpoint's cached result. `generation` changes
/// with the policy, so a new policy never serves an old policy's result.
pub fn result_key(generation: u64, endpoint: &str) -> String {
    format!("meshprobe/{generation:016x}/result/{endpoint}")
}

/// Shared-data key of an endpoint's run lease.
pub fn lease_key(generation: u64, endpoint: &str) -> String {
    format!("meshprobe/{generation:016x}/lease/{endpoint}")
}

/// Shared-data key of the time of an endpoint's first background refresh
/// (drawn once per Envoy, see the engine's refresh jitter).
pub fn first_key(generation: u64, endpoint: &str) -> String {
    format!("meshprobe/{generation:016x}/first/{endpoint}")
}

/// A claim on running an endpoint's checks, until `expires_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub owner: u64,
    pub expires_ms: u64,
}

impl Lease {
    pub fn encode(&self) -> Vec<u8> {
        format!("{:016x}:{}", self.owner, self.expires_ms).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<Lease> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (owner, expires) = text.split_once(':')?;
        Some(Lease {
            owner: u64::from_str_radix(owner, 16).ok()?,
            expires_ms: expires.parse().ok()?,
        })
    }

    pub fn held_by_other(&self, me: u64, now_ms: u64) -> bool {
        self.owner != me && self.expires_ms > now_ms
    }
}

/// What to do with a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Answer from the cached result.
    Serve,
    /// Answer `fail` for this reason, without a run.
    Fail(String),
    /// Wait for the run this worker already has in flight.
    Join,
    /// Take the lease and run the checks.
    Run,
    /// Another worker is running them: wait for its result.
    Wait,
}

/// Decides what a probe of an endpoint with `cache` gets, given the cached
/// result's time, the current lease, whether this worker has a run in
/// flight, and the time.
pub fn plan(
    cache: &CachePolicy,
    result_at: Option<u64>,
    lease: Option<Lease>,
    me: u64,
    local_run: bool,
    now_ms: u64,
) -> Plan {
    let age = result_at.map(|at| now_ms.saturating_sub(at));
    if age.is_some_and(|a| a < cache.ttl_ms) {
        return Plan::Serve;
    }
    let servable = age.is_some_and(|a| a <= cache.max_stale_ms);
    if cache.refresh {
        // The tick refreshes; probes never wait for callouts while a
        // result younger than max_stale exists.
        if servable {
            return Plan::Serve;
        }
        let policy = if age.is_some() {
            cache.on_stale
        } else {
            cache.on_startup
        };
        if policy == OnMiss::Fail {
            return Plan::Fail(match age {
                Some(a) => format!(
                    "stale result ({}ms old, max_stale {}ms)",
                    a, cache.max_stale_ms
                ),
                None => "no result yet".into(),
            });
        }
    }
    if local_run {
        return Plan::Join;
    }
    match lease {
        Some(l) if l.held_by_other(me, now_ms) => {
            if servable && cache.ttl_ms > 0 {
                Plan::Serve // stale while another worker revalidates
            } else {
                Plan::Wait
            }
        }
        _ => Plan::Run,
    }
}

/// The cached full report narrowed to the probe's checks (a per-check path
/// or `?exclude=`), aggregated again, with the probe's notes.
pub fn select(
    policy: &Policy,
    endpoint: usize,
    checks: &[usize],
    full: &Report,
    notes: &[String],
) -> Report {
    let Some(ep) = policy.endpoints.get(endpoint) else {
        return full.clone();
    };
    let mut report = if checks.len() == ep.checks.len() {
        full.clone()
    } else {
        let wanted: Vec<&str> = checks
            .iter()
            .filter_map(|&c| policy.checks.get(c).map(|k| k.name.as_str()))
            .collect();
        let kept = full
            .checks
            .iter()
            .filter(|c| wanted.contains(&c.name.as_str()))
            .cloned()
            .collect();
        let mut r = Report::new(&full.endpoint, kept).warnings_as_errors(ep.warnings_as_errors);
        r.at_ms = full.at_ms;
        r
    };
    report.notes = notes.to_vec();
    report
}

/// Log lines for checks whose state changed between two results (on the
/// first result, the checks that do not pass).
pub fn changes(previous: Option<&Report>, next: &Report) -> Vec<String> {
    next.checks
        .iter()
        .filter_map(|c| {
            let before = previous
                .and_then(|p| p.checks.iter().find(|o| o.name == c.name))
                .map(|o| o.health);
            let changed = match before {
                Some(b) => b != c.health,
                None => c.health != Health::Pass,
            };
            changed.then(|| {
                let from = before.map_or("none", Health::as_str);
                let reason = c
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                format!(
                    "check {:?} of endpoint {:?}: {} -> {}{}",
                    c.name,
                    next.endpoint,
                    from,
                    c.health.as_str(),
                    reason
                )
            })
        })
        .collect()
}

/// The `Age` header value (whole seconds) of a result taken at `at_ms`.
pub fn age_secs(at_ms: u64, now_ms: u64) -> u64 {
    now_ms.saturating_sub(at_ms) / 1_000
}

#[cfg(test)]
mod tests;
