//! The host side of the engine: proxy-wasm shared data as its [`Store`],
//! and the execution of its effects.

use super::stats::Stats;
use crate::engine::{CalloutId, Ctx, Dispatch, Effect, Engine, Level, Store, StoreError, TICK_MS};
use crate::outcome::DispatchError;
use crate::render::Reply;
use log::{info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;
use std::time::{Duration, UNIX_EPOCH};

/// Milliseconds of the host clock.
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Envoy's shared data: every worker of the Envoy sees the same.
pub struct Shared;

impl Store for Shared {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        hostcalls::set_shared_data(key, Some(value), cas).map_err(|s| match s {
            Status::CasMismatch => StoreError::CasMismatch,
            other => StoreError::Host(other as u32),
        })
    }
}

pub fn send(reply: &Reply) {
    if super::grpc_probe::send(reply) {
        return;
    }
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let _ = hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body));
}

/// One VM's engine and what the host keeps for it.
pub struct Host {
    pub engine: Engine,
    pub me: u64,
    pub root: Ctx,
    stats: Stats,
    /// Envoy's callout tokens and the engine's ids.
    pub tokens: Vec<(u32, CalloutId)>,
    /// Envoy's gRPC call tokens (a count of their own) and the engine's ids.
    pub grpc_tokens: Vec<(u32, CalloutId)>,
    /// Callouts asked for in an HTTP context, dispatched by the root.
    deferred: Vec<Dispatch>,
    /// The root's own queue: a message wakes it up at once.
    pub queue: Option<u32>,
    /// Probes the engine has yet to answer, with their deadline.
    pub waiting: Vec<(Ctx, u64)>,
    memory: u64,
}

impl Host {
    pub fn new(engine: Engine, me: u64, root: Ctx) -> Host {
        let (tokens, deferred, waiting) = (Vec::new(), Vec::new(), Vec::new());
        let (stats, queue, memory) = (Stats::default(), None, 0);
        Host {
            engine,
            me,
            root,
            stats,
            tokens,
            grpc_tokens: Vec::new(),
            deferred,
            queue,
            waiting,
            memory,
        }
    }

    /// Executes the engine's effects in context `current` (the root, or
    /// an HTTP context: callouts are then dispatched by the root, so that
    /// their answers come to the root whatever becomes of this request).
    pub fn execute(&mut self, current: Ctx) {
        let mut effective = current;
        loop {
            let effects = self.engine.take_effects();
            if effects.is_empty() {
                break;
            }
            for effect in effects {
                match effect {
                    Effect::Dispatch(d) if current == self.root => self.dispatch(d),
                    Effect::Dispatch(d) => {
                        let kick = self.deferred.is_empty();
                        self.deferred.push(d);
                        if let Some(q) = self.queue.filter(|_| kick) {
                            let _ = hostcalls::enqueue_shared_queue(q, Some(b"k"));
                        }
                    }
                    Effect::Reply { ctx, reply, .. } => {
                        self.waiting.retain(|(c, _)| *c != ctx);
                        if ctx == effective || hostcalls::set_effective_context(ctx).is_ok() {
                            effective = ctx;
                            send(&reply);
                        }
                    }
                    Effect::Count(m) => self.stats.count(self.engine.policy(), self.me, m),
                    Effect::Record(m, v) => self.stats.record(self.engine.policy(), self.me, m, v),
                    Effect::Log(Level::Info, line) => info!("{line}"),
                    Effect::Log(Level::Warn, line) => warn!("{line}"),
                }
            }
        }
        if effective != current {
            let _ = hostcalls::set_effective_context(current);
        }
    }

    /// In the root context: dispatches the deferred callouts.
    pub fn flush(&mut self) {
        for d in std::mem::take(&mut self.deferred) {
            self.dispatch(d);
        }
    }

    fn dispatch(&mut self, d: Dispatch) {
        if let Some(call) = d.grpc.clone() {
            return super::grpc::dispatch(self, d, &call);
        }
        let headers = d
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let timeout = Duration::from_millis(d.timeout_ms);
        match hostcalls::dispatch_http_call(&d.cluster, headers, None, vec![], timeout) {
            Ok(token) => self.tokens.push((token, d.id)),
            Err(status) => {
                let err = match status {
                    Status::BadArgument => DispatchError::BadArgument,
                    Status::InternalFailure => DispatchError::FailedAtOnce,
                    other => DispatchError::Other(other as u32),
                };
                self.engine
                    .on_dispatch_failed(now_ms(), &mut Shared, d.id, err);
            }
        }
    }

    /// On the tick, in the root context: the last resort for a probe the
    /// engine left unanswered past its deadline plus one tick (the
    /// simulator proves it never does), and the memory gauge.
    pub fn tick(&mut self, now: u64) {
        let (late, keep) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition::<Vec<_>, _>(|(_, deadline)| now > deadline + TICK_MS);
        self.waiting = keep;
        for (ctx, _) in late {
            self.engine.on_gone(ctx);
            warn!("meshprobe: probe {ctx} unanswered at its deadline: 503");
            if hostcalls::set_effective_context(ctx).is_ok() {
                send(&Reply::plain(503, "meshprobe: no answer by the deadline\n"));
            }
            let _ = hostcalls::set_effective_context(self.root);
        }
        let memory = core::arch::wasm32::memory_size(0) as u64 * 65_536;
        if memory != self.memory {
            self.memory = memory;
            let m = crate::engine::Metric::VmMemory;
            self.stats.record(self.engine.policy(), self.me, m, memory);
        }
    }
}
