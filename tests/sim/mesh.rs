//! Mesh scale: M Envoys (each its own store and workers), all refreshing
//! in the background one check of one shared dependency, all started at
//! once (a rollout). The refresh jitter must spread their runs over the
//! TTL: the dependency's peak load over any 100 ms window stays within
//! 1.5x its mean, right after the rollout, in steady state, and after the
//! dependency recovers from an outage (it hangs: every callout times out).

use super::rng::Rng;
use meshprobe::engine::{generation, Effect, Engine, MemStore, TICK_MS};
use meshprobe::outcome::CalloutResponse;
use meshprobe::policy::Policy;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;

const POLICY: &str = r#"{
  "endpoints": [{"name": "ready", "path": "/readyz", "access": "public", "checks": ["dep"],
                 "deadline": "300ms", "ttl": "1s", "refresh": true, "max_stale": "10s"}],
  "checks": [{"name": "dep", "cluster": "dep", "timeout": "250ms"}]
}"#;

pub struct Load {
    /// Callouts the dependency saw, per millisecond.
    pub hits: Vec<u32>,
}

impl Load {
    /// The peak count over any 100 ms window within `from..to` (ms), and
    /// the mean count per 100 ms over that span.
    pub fn peak_and_mean(&self, from: usize, to: usize) -> (u32, f64) {
        let span = &self.hits[from..to];
        let total: u32 = span.iter().sum();
        let peak = span
            .windows(100)
            .map(|w| w.iter().sum::<u32>())
            .max()
            .unwrap_or(0);
        (peak, f64::from(total) * 100.0 / span.len() as f64)
    }
}

/// Runs `envoys` Envoys of `workers` workers for `ms`, the dependency
/// hanging during `outage`.
pub fn run(
    seed: u64,
    envoys: usize,
    workers: usize,
    ms: u64,
    outage: std::ops::Range<u64>,
) -> Load {
    let mut rng = Rng::new(seed);
    let policy = Rc::new(Policy::from_json(POLICY.as_bytes(), &|_| None).unwrap());
    let gen = generation(POLICY.as_bytes());
    let mut stores: Vec<MemStore> = (0..envoys).map(|_| MemStore::new()).collect();
    let mut engines: Vec<(usize, u64, Engine)> = Vec::new();
    for (e, store) in stores.iter_mut().enumerate() {
        for _ in 0..workers {
            let engine = Engine::new(policy.clone(), gen, rng.u64() | 1, 0, store);
            engines.push((e, rng.below(TICK_MS), engine));
        }
    }
    let mut hits = vec![0u32; ms as usize];
    // (time, engine index, run, slot, status)
    let mut answers: BinaryHeap<Reverse<(u64, usize, u64, usize, u16)>> = BinaryHeap::new();
    for now in 0..ms {
        while let Some(Reverse((t, i, run, slot, status))) = answers.peek().copied() {
            if t > now {
                break;
            }
            answers.pop();
            let (e, _, engine) = &mut engines[i];
            let status = status.to_string();
            let response = CalloutResponse {
                status: Some(&status),
                body: b"",
                body_size: 0,
            };
            let id = meshprobe::engine::CalloutId { run, slot };
            engine.on_callout(now, &mut stores[*e], id, &response);
            engine.take_effects();
        }
        for (i, (e, phase, engine)) in engines.iter_mut().enumerate() {
            if now % TICK_MS != *phase {
                continue;
            }
            engine.on_tick(now, &mut stores[*e]);
            for effect in engine.take_effects() {
                if let Effect::Dispatch(d) = effect {
                    hits[now as usize] += 1;
                    let (at, status) = if outage.contains(&now) {
                        (now + d.timeout_ms, 504)
                    } else {
                        (now + 5 + rng.below(45), 200)
                    };
                    answers.push(Reverse((at, i, d.id.run, d.id.slot, status)));
                }
            }
        }
    }
    Load { hits }
}
