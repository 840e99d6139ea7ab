//! The engine, sans-IO: one per VM (worker thread). It serves probes from
//! the shared result, runs an endpoint's checks under a lease when the
//! result is stale, coalesces the probes that arrive meanwhile, answers
//! probes waiting on another worker's run, and refreshes in the background.
//!
//! It never calls the host. Time comes in as an argument (`now`, ms) on
//! every entry point, shared data through a [`Store`], and everything else
//! it wants done comes back as [`Effect`]s, taken with
//! [`Engine::take_effects`]: dispatch this callout, answer this context,
//! count this metric, log this line. The host executes them and nothing
//! more. Every probe handed to [`Engine::on_probe`] gets an [`Answer`]: at
//! once, or later as an [`Effect::Reply`] no later than its deadline plus
//! one tick (the host keeps a last-resort 503 past that, which the
//! simulator proves is never used).
//!
//! Every callout answer must reach [`Engine::on_callout`] (or
//! [`Engine::on_dispatch_failed`]), whatever became of the probe that
//! started the run: the host dispatches from its root context for that.

mod contexts;
mod flow;
mod grpc;
mod grpc_probe;
mod metric;
mod probe;
mod rng;
mod store;
mod stream;
mod tick;
mod vm;

pub use contexts::{Roots, Streams};
pub use grpc_probe::{Captured, GrpcStep, BODY_READ, EMPTY_REQUEST};
pub use metric::{vm_memory, Metric, MetricKind};
pub use probe::Request;
pub use rng::SplitMix;
pub use store::{MemStore, Store, StoreError};
pub use stream::{Step, Stream, Then};
pub use vm::{status, HttpAnswer, Token, Vm};

use crate::cache::{self, Lease};
use crate::classify::Probe;
use crate::policy::{Format, Policy};
use crate::render::Reply;
use crate::report::Report;
use crate::run::ProbeRun;
use std::rc::Rc;

/// How often the host calls [`Engine::on_tick`] (when
/// [`Engine::tick_ms`] says so).
pub const TICK_MS: u64 = 20;

/// A host context (request) id.
pub type Ctx = u32;

/// Which callout of which run: the host keeps its own token for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CalloutId {
    pub run: u64,
    pub slot: usize,
}

/// A callout to dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub id: CalloutId,
    pub cluster: String,
    /// Pseudo-headers first.
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
    /// For a `grpc` check: the gRPC call (`headers` are its metadata).
    pub grpc: Option<crate::grpc::GrpcCall>,
}

/// Log levels of [`Effect::Log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

/// What the answer was made from (for the simulator's oracle and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A complete run's result, taken at `at_ms` (shared, or this VM's).
    Result { at_ms: u64 },
    /// A run still in flight, as it stood at the probe's deadline.
    Partial,
    /// No run: a liveness answer, or a refusal (stale, no result yet,
    /// deadline while waiting on another worker).
    Local,
}

/// Something the host must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Dispatch(Dispatch),
    /// Answer the waiting probe of context `ctx`.
    Reply {
        ctx: Ctx,
        reply: Reply,
        source: Source,
    },
    Count(Metric),
    /// Add `n` to a counter: the counts of a tick, batched by [`Vm`].
    Add(Metric, u64),
    /// Set a gauge or record a histogram sample.
    Record(Metric, u64),
    Log(Level, String),
    /// Wake the root context up (its shared queue): it has callouts to
    /// dispatch ([`Vm::flush`]). Made by [`Vm::effects`] only.
    WakeRoot,
}

/// The engine's answer to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send this reply now.
    Now(Reply, Source),
    /// An [`Effect::Reply`] for this context follows, by `deadline_ms`
    /// plus one tick.
    Waiting { deadline_ms: u64 },
}

/// A probe waiting for a result.
#[derive(Debug, Clone)]
struct Waiter {
    ctx: Ctx,
    probe: Probe,
    deadline_ms: u64,
    /// `at_ms` of the result that was too old when it came (remote waits).
    seen_at: Option<u64>,
}

/// A run of one endpoint's checks in this VM.
#[derive(Debug)]
struct LocalRun {
    id: u64,
    run: ProbeRun,
    /// Slots whose callout has not answered yet.
    pending: Vec<usize>,
    waiters: Vec<Waiter>,
}

type ViewKey = (Format, bool, bool);

pub struct Engine {
    policy: Rc<Policy>,
    generation: u64,
    me: u64,
    runs: Vec<Option<LocalRun>>,
    next_run: u64,
    /// Probes waiting for another worker's run.
    remote: Vec<Waiter>,
    /// Last decoded result per endpoint, with its bytes.
    memo: Vec<Option<(Vec<u8>, Report)>>,
    /// Answers rendered from the memo'd result, by view (full check set,
    /// no notes): a probe storm renders each view once per result.
    rendered: Vec<Vec<(ViewKey, Reply)>>,
    /// Background refresh: per endpoint, the time of its first slot (see
    /// [`tick`]).
    refresh_at: Vec<Option<u64>>,
    rng: SplitMix,
    out: Vec<Effect>,
}

/// FNV-1a of the policy bytes: the cache generation.
pub fn generation(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Engine {
    /// An engine for `policy` (its `generation`) in the VM `me` (a random
    /// id, also the lease owner and the jitter's seed), at `now`.
    pub fn new(
        policy: Rc<Policy>,
        generation: u64,
        me: u64,
        now: u64,
        store: &mut dyn Store,
    ) -> Engine {
        let n = policy.endpoints.len();
        let mut engine = Engine {
            policy,
            generation,
            me,
            runs: (0..n).map(|_| None).collect(),
            next_run: 1,
            remote: Vec::new(),
            memo: (0..n).map(|_| None).collect(),
            rendered: (0..n).map(|_| Vec::new()).collect(),
            refresh_at: Vec::new(),
            rng: SplitMix::new(me),
            out: Vec::new(),
        };
        // Create each lease key once, so every later take is a real
        // compare-and-swap (a missing key cannot be swapped).
        for ep in &engine.policy.endpoints {
            let key = cache::lease_key(generation, &ep.name);
            if store.get(&key).0.is_none() {
                let free = Lease {
                    owner: 0,
                    expires_ms: 0,
                };
                let _ = store.set(&key, &free.encode(), None);
            }
        }
        engine.refresh_at =
            tick::first_refreshes(&engine.policy, generation, &mut engine.rng, now, store);
        engine
    }

    /// An engine from the plugin configuration `bytes`, with the log line
    /// that says so; or the lines that say why the policy is refused.
    pub fn configure(
        bytes: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
        me: u64,
        now: u64,
        store: &mut dyn Store,
    ) -> Result<(Engine, String), Vec<String>> {
        let policy = Policy::from_json(bytes, env).map_err(|errors| {
            let mut lines: Vec<String> = errors
                .iter()
                .map(|e| format!("meshprobe: invalid policy: {e}"))
                .collect();
            lines.push(format!(
                "meshprobe: policy refused ({} error(s))",
                errors.len()
            ));
            lines
        })?;
        let (endpoints, checks) = (policy.endpoints.len(), policy.checks.len());
        let line = format!("meshprobe: policy loaded: {endpoints} endpoint(s), {checks} check(s)");
        Ok((
            Engine::new(Rc::new(policy), generation(bytes), me, now, store),
            line,
        ))
    }

    /// This VM's id (the lease owner).
    pub fn me(&self) -> u64 {
        self.me
    }

    pub fn policy(&self) -> &Rc<Policy> {
        &self.policy
    }

    /// The tick period the host must set, if the engine needs ticks.
    pub fn tick_ms(&self) -> Option<u64> {
        self.policy
            .endpoints
            .iter()
            .any(|e| !e.checks.is_empty())
            .then_some(TICK_MS)
    }

    /// The effects to execute, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.out)
    }

    /// An emptied list of effects, whose memory the engine reuses when it
    /// has none of its own.
    pub fn recycle(&mut self, effects: Vec<Effect>) {
        if self.out.capacity() == 0 && effects.is_empty() {
            self.out = effects;
        }
    }

    /// A probe of `endpoint` was refused for want of a secret.
    pub fn unauthorized(&mut self, endpoint: usize) {
        self.out.push(Effect::Count(Metric::Unauthorized(endpoint)));
    }

    /// The request `ctx` went away: it is never answered.
    pub fn on_gone(&mut self, ctx: Ctx) {
        self.remote.retain(|w| w.ctx != ctx);
        for local in self.runs.iter_mut().flatten() {
            local.waiters.retain(|w| w.ctx != ctx);
        }
    }

    /// How many body bytes the host must read of the answer to `id`.
    pub fn body_wanted(&self, id: CalloutId, status: Option<&str>, body_size: usize) -> usize {
        self.runs
            .iter()
            .flatten()
            .find(|r| r.id == id.run)
            .and_then(|r| r.run.check(&self.policy, id.slot))
            .map_or(0, |c| {
                crate::outcome::body_bytes_needed(c, status, body_size)
            })
    }

    /// Whether this VM has a run of `endpoint` in flight.
    pub fn running(&self, endpoint: usize) -> bool {
        self.runs.get(endpoint).is_some_and(Option::is_some)
    }

    /// What the engine holds: (runs in flight, callouts awaited, probes
    /// waiting). All zero once the load stops and the runs are done.
    pub fn holding(&self) -> (usize, usize, usize) {
        let runs = self.runs.iter().flatten();
        let callouts = runs.clone().map(|r| r.pending.len()).sum();
        let waiting = runs.clone().map(|r| r.waiters.len()).sum::<usize>() + self.remote.len();
        (self.runs.iter().flatten().count(), callouts, waiting)
    }
}

#[cfg(test)]
mod tests;
