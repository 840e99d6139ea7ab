//! The deterministic simulator of the engine (see `world.rs` for the
//! model, `oracle.rs` for the promises it checks). `cargo test --test sim`
//! runs 10,000 seeds (`SIM_SEEDS`, from `SIM_START`); `just sim N` runs
//! more; `SIM_SEED=<n> cargo test --test sim replay -- --nocapture` prints
//! a seed's whole trace. A failing seed prints its trace and becomes a
//! regression below.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod deps;
mod mesh;
mod oracle;
mod policies;
mod rng;
mod world;

use meshprobe::cache::{self, Lease};
use meshprobe::engine::TICK_MS;
use std::io::Write;
use world::World;

/// Seeds that found bugs (kept as regressions): see the notes by each.
const REGRESSIONS: &[u64] = &[
    // A probe waiting on another worker (a dead one's lease) joined the
    // run started at its deadline's tick, after the overdue probes of that
    // tick were answered: answered one tick late.
    9,
    // A run longer than the TTL was followed at once by the next (refresh
    // slot), which failed at once and shared its result in the same
    // millisecond; the VM kept serving the first from its memo (found in
    // the first 1M-seed run).
    37184,
];

/// Load, then quiet long enough for every run and TTL to pass.
const QUIET_MS: u64 = 3_000;

/// Runs one seed; the violations found, with the trace when `trace`.
fn check(seed: u64, trace: bool) -> Result<(u64, u64), String> {
    let mut w = World::new(seed, trace);
    let end = w.params.load_ms + QUIET_MS;
    let ok = w.run(end);
    let mut problems = std::mem::take(&mut w.oracle.violations);
    if ok {
        problems.extend(leaks(&w));
    }
    if problems.is_empty() {
        return Ok((w.oracle.answered, w.oracle.runs_started));
    }
    let trace = w.trace.map(|t| t.join("\n")).unwrap_or_default();
    Err(format!(
        "seed {seed}: {}\n--- trace ---\n{trace}",
        problems.join("\n")
    ))
}

/// Property 5: after the load stops and the TTLs pass, nothing is left.
fn leaks(w: &World) -> Vec<String> {
    let mut out = Vec::new();
    if w.oracle.still_waiting() > 0 {
        out.push(format!(
            "{} probes never answered",
            w.oracle.still_waiting()
        ));
    }
    for inst in w.workers.iter().flatten() {
        let (_, _, waiting) = inst.engine.holding();
        if waiting > 0 {
            out.push(format!("engine {}: {waiting} waiters left", inst.uid));
        }
        for (e, ep) in inst.policy.endpoints.iter().enumerate() {
            let started = w.oracle.runs.get(&(inst.uid, e)).copied().unwrap_or(0);
            if inst.engine.running(e) && started + ep.deadline_ms + TICK_MS < w.now {
                out.push(format!(
                    "engine {}: run of {} stuck since {started}",
                    inst.uid, ep.name
                ));
            }
            let key = cache::lease_key(inst.gen, &ep.name);
            let lease = w.store.mem.get_lease(&key);
            if let Some(l) = lease.filter(|l| l.owner == inst.me) {
                if !inst.engine.running(e) {
                    out.push(format!(
                        "engine {}: holds the lease of {} without a run ({l:?})",
                        inst.uid, ep.name
                    ));
                }
            }
        }
    }
    out
}

trait Leases {
    fn get_lease(&self, key: &str) -> Option<Lease>;
}

impl Leases for meshprobe::engine::MemStore {
    fn get_lease(&self, key: &str) -> Option<Lease> {
        use meshprobe::engine::Store;
        self.get(key).0.and_then(|b| Lease::decode(&b))
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs seeds `start..start + n` on every core; panics on the first failure.
fn run_seeds(start: u64, n: u64) {
    let t0 = std::time::Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let handles: Vec<_> = (0..threads)
        .map(|k| {
            std::thread::spawn(move || {
                let (mut answers, mut runs) = (0, 0);
                for seed in (start + k..start + n).step_by(threads as usize) {
                    match check(seed, false) {
                        Ok((a, r)) => (answers, runs) = (answers + a, runs + r),
                        // Again with the trace, to show it.
                        Err(_) => return Err(check(seed, true).err().unwrap_or_default()),
                    }
                }
                Ok((answers, runs))
            })
        })
        .collect();
    let (mut answers, mut runs) = (0, 0);
    for h in handles {
        match h.join().expect("simulator thread") {
            Ok((a, r)) => (answers, runs) = (answers + a, runs + r),
            Err(e) => panic!("{e}"),
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "simulator: {n} seeds ({start}..{}) passed: {answers} probes answered, {runs} runs, in {:.1}s",
        start + n,
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn seeds() {
    run_seeds(env("SIM_START", 0), env("SIM_SEEDS", 10_000));
}

#[test]
fn regressions() {
    for &seed in REGRESSIONS {
        if let Err(e) = check(seed, true) {
            panic!("{e}");
        }
    }
}

/// `SIM_SEED=<n>`: one seed's whole trace.
#[test]
fn replay() {
    let Ok(seed) = std::env::var("SIM_SEED") else {
        return;
    };
    let seed = seed.parse().expect("SIM_SEED is a number");
    let mut w = World::new(seed, true);
    let end = w.params.load_ms + QUIET_MS;
    w.run(end);
    println!("{}", w.trace.take().unwrap_or_default().join("\n"));
    let mut problems = w.oracle.violations.clone();
    problems.extend(leaks(&w));
    assert!(problems.is_empty(), "seed {seed}: {problems:?}");
}

/// Mesh scale: 500 Envoys of 2 workers, one shared dependency, TTL 1 s,
/// started at once; the dependency hangs from 12 s to 16 s.
#[test]
fn a_mesh_of_500_envoys_spreads_its_runs_over_the_ttl() {
    for seed in 0..env("MESH_SEEDS", 2) {
        let load = mesh::run(seed, 500, 2, 24_000, 12_000..16_000);
        let phases = [
            ("rollout", 0, 3_000),
            ("steady", 3_000, 12_000),
            ("outage", 12_000, 16_000),
            ("recovery", 16_000, 20_000),
        ];
        let mut line = format!("mesh seed {seed}:");
        for (name, from, to) in phases {
            let (peak, mean) = load.peak_and_mean(from, to);
            line += &format!(
                " {name} peak {peak}/100ms mean {mean:.1} ({:.2}x);",
                f64::from(peak) / mean
            );
            assert!(
                f64::from(peak) <= 1.5 * mean,
                "seed {seed}, {name}: peak {peak} over 100 ms, mean {mean:.1}"
            );
        }
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}
