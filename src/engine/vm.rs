//! What the host keeps for one VM's engine, as pure bookkeeping: Envoy's
//! call tokens, the callouts an HTTP context asked for (the root context
//! dispatches them, so that their answers reach the engine whatever
//! becomes of the request), the probes still waiting with the last-resort
//! 503 past their deadline, and the memory gauge. The host layer reads,
//! calls in and executes [`Vm::effects`]; it decides nothing.

use super::{
    CalloutId, Ctx, Dispatch, Effect, Engine, Level, Metric, MetricKind, Source, Store, TICK_MS,
};
use crate::grpc::GrpcResponse;
use crate::outcome::{CalloutResponse, DispatchError};
use crate::render::Reply;

/// The proxy-wasm ABI's status codes a dispatch can fail with.
pub mod status {
    pub const BAD_ARGUMENT: u32 = 2;
    pub const PARSE_FAILURE: u32 = 4;
    pub const INTERNAL_FAILURE: u32 = 10;
}

/// What an HTTP callout's answer brought, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpAnswer {
    /// How many headers it has: none when it broke off after its answer
    /// began (reading them then would be refused).
    pub headers: usize,
    pub body_size: usize,
}

/// Envoy's token for a call: HTTP callouts and gRPC calls count apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Http(u32),
    Grpc(u32),
}

/// One VM: its engine, its root context and what the host must remember.
pub struct Vm {
    pub engine: Engine,
    /// The root context's id.
    pub root: Ctx,
    calls: Vec<(Token, CalloutId)>,
    /// Callouts asked for in an HTTP context, for the root to dispatch.
    deferred: Vec<Dispatch>,
    /// Replies made in an HTTP context for other contexts, for the root.
    for_root: Vec<Effect>,
    /// Probes the engine has yet to answer, with their deadline.
    waiting: Vec<(Ctx, u64)>,
    /// Effects of the VM's own (the last resort, the memory gauge).
    ready: Vec<Effect>,
    memory: u64,
    /// The host's ids of the metrics defined so far.
    metrics: ByMetric<u32>,
    /// The host's handle to wake the root context with (its shared queue).
    pub queue: Option<u32>,
    /// Counters not yet handed to the host, with their increase: flushed
    /// on the tick (when the VM has one), so a probe costs no host call
    /// per counter.
    counts: ByMetric<u64>,
    batch: bool,
}

/// Per metric, sorted by metric: found by binary search on every probe
/// (a cost that grows with the log of the policy's size, and far less
/// code than a hash map).
#[derive(Debug, Default)]
struct ByMetric<T>(Vec<(Metric, T)>);

impl<T> ByMetric<T> {
    fn get_mut(&mut self, m: Metric) -> Result<&mut T, usize> {
        match self.0.binary_search_by(|(k, _)| k.cmp(&m)) {
            Ok(i) => self.0.get_mut(i).map(|(_, v)| v).ok_or(i),
            Err(i) => Err(i),
        }
    }

    fn insert(&mut self, at: usize, m: Metric, value: T) {
        self.0.insert(at.min(self.0.len()), (m, value));
    }
}

impl Vm {
    pub fn new(engine: Engine, root: Ctx) -> Vm {
        let engine_ticks = engine.tick_ms().is_some();
        Vm {
            engine,
            root,
            calls: Vec::new(),
            deferred: Vec::new(),
            for_root: Vec::new(),
            waiting: Vec::new(),
            ready: Vec::new(),
            memory: 0,
            metrics: ByMetric::default(),
            queue: None,
            counts: ByMetric::default(),
            batch: engine_ticks,
        }
    }

    /// A VM for the plugin configuration `bytes` (see
    /// [`Engine::configure`]) in the root context `root`, with a random id
    /// (the lease owner; from the host's random source through std), and
    /// the name of the shared queue to wake that root with, when it needs
    /// one (then also ticks of [`TICK_MS`]).
    #[allow(clippy::type_complexity)]
    pub fn configure(
        bytes: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
        root: Ctx,
        now: u64,
        store: &mut dyn Store,
    ) -> Result<(Vm, Option<String>), Vec<String>> {
        use std::hash::{BuildHasher, Hasher};
        let mut me = std::collections::hash_map::RandomState::new().build_hasher();
        me.write_u64(now);
        let me = me.finish();
        let (engine, line) = Engine::configure(bytes, env, me, now, store)?;
        let queue = engine
            .tick_ms()
            .map(|_| format!("meshprobe/kick/{me:016x}/{root}"));
        let mut vm = Vm::new(engine, root);
        vm.ready.push(Effect::Log(Level::Info, line));
        Ok((vm, queue))
    }

    /// An HTTP callout answered under `token`: `status` and `body` read
    /// from the host when asked for (`:status` only if it has headers, the
    /// body only as much as the check needs).
    pub fn on_http_answer(
        &mut self,
        now: u64,
        store: &mut dyn Store,
        (token, answer): (u32, HttpAnswer),
        status: impl FnOnce() -> Option<String>,
        body: impl FnOnce(usize) -> Vec<u8>,
    ) {
        let Some(id) = self.answered(Token::Http(token)) else {
            return;
        };
        let status = (answer.headers > 0).then(status).flatten();
        let body_size = if status.is_none() {
            0
        } else {
            answer.body_size
        };
        let wanted = self.engine.body_wanted(id, status.as_deref(), body_size);
        let body = if wanted > 0 { body(wanted) } else { Vec::new() };
        let status = status.as_deref();
        let response = CalloutResponse {
            status,
            body: &body,
            body_size,
        };
        self.engine.on_callout(now, store, id, &response);
    }

    /// A gRPC call answered under `token`: `code` 0 with its message of
    /// `size` bytes (`body`, up to 4 KiB of it), or closed with an error
    /// (`message`, the host's status message).
    pub fn on_grpc_answer(
        &mut self,
        now: u64,
        store: &mut dyn Store,
        (token, code, size): (u32, u32, usize),
        body: impl FnOnce(usize) -> Vec<u8>,
        message: impl FnOnce() -> String,
    ) {
        let Some(id) = self.answered(Token::Grpc(token)) else {
            return;
        };
        let (message, body) = match code {
            0 => (String::new(), body(size.min(4096))),
            _ => (message(), Vec::new()),
        };
        let response = GrpcResponse {
            code,
            message: &message,
            body: &body,
        };
        self.engine.on_grpc(now, store, id, &response);
    }

    /// The host refused to dispatch `d` with status `code`.
    pub fn refused(&mut self, now: u64, store: &mut dyn Store, d: &Dispatch, code: u32) {
        let err = match code {
            status::BAD_ARGUMENT => DispatchError::BadArgument,
            // Envoy's answer for a gRPC cluster it does not know.
            status::PARSE_FAILURE if d.grpc.is_some() => DispatchError::BadArgument,
            status::INTERNAL_FAILURE => DispatchError::FailedAtOnce,
            other => DispatchError::Other(other),
        };
        self.engine.on_dispatch_failed(now, store, d.id, err);
    }

    /// The effects to execute now, in context `current`, in order. A
    /// callout asked for outside the root is kept for [`Vm::flush`], a
    /// reply to another request for the root's next call, and the first
    /// one kept comes with [`Effect::WakeRoot`]. Empty when
    /// there is nothing left to do (executing a dispatch can fail and
    /// give the engine more to say: call again until empty).
    pub fn effects(&mut self, current: Ctx) -> Vec<Effect> {
        // In place: a run's completion may answer a thousand waiting
        // probes, and a copy would double the VM's peak memory.
        let mut out = std::mem::take(&mut self.ready);
        if current == self.root {
            out.append(&mut self.for_root);
        }
        let mut fresh = self.engine.take_effects();
        match out.is_empty() {
            true => out = fresh,
            false => out.append(&mut fresh),
        }
        // In a request's callback, what only the root may do waits for it:
        // callouts (an answer goes to the context that dispatched them),
        // and replies to other requests (Envoy holds the current request
        // after any local reply sent during its callback).
        let elsewhere = |e: &Effect| match e {
            Effect::Dispatch(_) => true,
            Effect::Reply { ctx, .. } => *ctx != current,
            _ => false,
        };
        if current != self.root && out.iter().any(elsewhere) {
            let all = std::mem::take(&mut out);
            if self.deferred.is_empty() && self.for_root.is_empty() {
                out.push(Effect::WakeRoot);
            }
            for effect in all {
                match effect {
                    Effect::Dispatch(d) => self.deferred.push(d),
                    e if elsewhere(&e) => self.for_root.push(e),
                    other => out.push(other),
                }
            }
        }
        for effect in &out {
            if let Effect::Reply { ctx, .. } = effect {
                self.waiting.retain(|(c, _)| c != ctx);
            }
        }
        if self.batch {
            let counts = &mut self.counts;
            out.retain(|effect| {
                let Effect::Count(m) = effect else {
                    return true;
                };
                match counts.get_mut(*m) {
                    Ok(n) => *n += 1,
                    Err(at) => counts.insert(at, *m, 1),
                }
                false
            });
            if out.is_empty() && out.capacity() > 0 {
                // Only counts (a probe answered at once): the engine
                // fills the same list again next time, with no allocation.
                self.engine.recycle(out);
                return Vec::new();
            }
        }
        out
    }

    /// In the root context: the callouts kept for it, to dispatch now.
    pub fn flush(&mut self) -> Vec<Dispatch> {
        std::mem::take(&mut self.deferred)
    }

    /// The callout `id` was dispatched under `token`.
    pub fn dispatched(&mut self, token: Token, id: CalloutId) {
        self.calls.push((token, id));
    }

    /// The callout whose answer came with `token` (forgotten: a token
    /// answers once). `None` for a token this VM never gave.
    fn answered(&mut self, token: Token) -> Option<CalloutId> {
        let pos = self.calls.iter().position(|(t, _)| *t == token)?;
        Some(self.calls.swap_remove(pos).1)
    }

    /// The probe of `ctx` waits for an [`Effect::Reply`], by `deadline_ms`.
    pub fn wait(&mut self, ctx: Ctx, deadline_ms: u64) {
        self.waiting.push((ctx, deadline_ms));
    }

    /// The request `ctx` went away.
    pub fn gone(&mut self, ctx: Ctx) {
        self.engine.on_gone(ctx);
        self.waiting.retain(|(c, _)| *c != ctx);
    }

    /// The tick, in the root context, with the VM's linear memory in
    /// bytes: the engine's tick, then the last resort for any probe the
    /// engine left unanswered past its deadline plus one tick (the
    /// simulator proves it never does: a 503 with a warning), the memory
    /// gauge when it moved, and the counters counted since the last tick.
    pub fn on_tick(&mut self, now: u64, store: &mut dyn Store, memory: u64) {
        self.engine.on_tick(now, store);
        let mut ready = self.effects(self.root);
        let (late, keep) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition::<Vec<_>, _>(|(_, deadline)| now > deadline + TICK_MS);
        self.waiting = keep;
        for (ctx, _) in late {
            self.engine.on_gone(ctx);
            let line = format!("meshprobe: probe {ctx} unanswered at its deadline: 503");
            ready.push(Effect::Log(Level::Warn, line));
            ready.push(Effect::Reply {
                ctx,
                reply: Reply::plain(503, "meshprobe: no answer by the deadline\n"),
                source: Source::Local,
            });
        }
        if memory != self.memory {
            self.memory = memory;
            ready.push(Effect::Record(Metric::VmMemory, memory));
        }
        for (m, n) in self.counts.0.iter_mut().filter(|(_, n)| *n > 0) {
            ready.push(Effect::Add(*m, std::mem::take(n)));
        }
        self.ready = ready;
    }

    /// The host's id of metric `m`: defined with `define` (its kind and
    /// name) on first use, found again after, so counting on the probe
    /// path formats no name and allocates nothing.
    pub fn metric(
        &mut self,
        m: Metric,
        define: impl FnOnce(MetricKind, &str) -> Option<u32>,
    ) -> Option<u32> {
        let at = match self.metrics.get_mut(m) {
            Ok(id) => return Some(*id),
            Err(at) => at,
        };
        let (kind, name) = m.define(self.engine.policy(), self.engine.me())?;
        let id = define(kind, &name)?;
        self.metrics.insert(at, m, id);
        Some(id)
    }

    /// What the VM holds for the host: (calls awaited, callouts kept for
    /// the root, probes waiting).
    pub fn holding(&self) -> (usize, usize, usize) {
        (self.calls.len(), self.deferred.len(), self.waiting.len())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod grpc_tests;
