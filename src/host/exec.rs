//! The host side of the engine: proxy-wasm shared data as its [`Store`],
//! and the execution of its effects.

use crate::engine::{CalloutId, Ctx, Dispatch, Effect, Engine, Level, Metric, MetricKind};
use crate::engine::{Store, StoreError, TICK_MS};
use crate::outcome::{CalloutResponse, DispatchError};
use crate::render::Reply;
use log::{info, warn};
use proxy_wasm::hostcalls::{self, set_effective_context};
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};
use std::time::{Duration, UNIX_EPOCH};

/// Milliseconds of the host clock.
pub fn now_ms() -> u64 {
    let t = hostcalls::get_current_time().ok();
    let d = t.and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    d.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
    let headers = reply
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let _ = hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body));
}

/// What the host keeps beside the engine.
#[derive(Default)]
pub struct Glue {
    /// Envoy's callout tokens and the engine's ids.
    tokens: Vec<(u32, CalloutId)>,
    /// Callouts asked for in an HTTP context, dispatched by the root.
    deferred: Vec<Dispatch>,
    /// The root's own queue: a message wakes it up at once.
    pub queue: Option<u32>,
    /// Probes the engine has yet to answer, with their deadline.
    pub waiting: Vec<(Ctx, u64)>,
    /// Metric ids, defined once per VM on first use.
    metrics: Vec<(Metric, u32)>,
    memory: u64,
}

/// One VM's engine and what the host keeps for it.
pub struct Host {
    pub engine: Engine,
    pub me: u64,
    pub root: Ctx,
    pub glue: Glue,
}

impl Host {
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
                        let kick = self.glue.deferred.is_empty();
                        self.glue.deferred.push(d);
                        if let Some(q) = self.glue.queue.filter(|_| kick) {
                            let _ = hostcalls::enqueue_shared_queue(q, Some(b"k"));
                        }
                    }
                    Effect::Reply { ctx, reply, .. } => {
                        self.glue.waiting.retain(|(c, _)| *c != ctx);
                        if ctx == effective || set_effective_context(ctx).is_ok() {
                            effective = ctx;
                            send(&reply);
                        }
                    }
                    Effect::Count(m) => self.metric(m, None),
                    Effect::Record(m, v) => self.metric(m, Some(v)),
                    Effect::Log(Level::Info, line) => info!("{line}"),
                    Effect::Log(Level::Warn, line) => warn!("{line}"),
                }
            }
        }
        if effective != current {
            let _ = set_effective_context(current);
        }
    }

    /// Counts (`None`), sets a gauge or records a histogram sample.
    fn metric(&mut self, m: Metric, value: Option<u64>) {
        let id = match self.glue.metrics.iter().find(|(k, _)| *k == m) {
            Some((_, id)) => *id,
            None => {
                let Some((kind, name)) = m.define(self.engine.policy(), self.me) else {
                    return;
                };
                let kind = match kind {
                    MetricKind::Counter => MetricType::Counter,
                    MetricKind::Gauge => MetricType::Gauge,
                    MetricKind::Histogram => MetricType::Histogram,
                };
                let Ok(id) = hostcalls::define_metric(kind, &name) else {
                    return;
                };
                self.glue.metrics.push((m, id));
                id
            }
        };
        let _ = match value {
            None => hostcalls::increment_metric(id, 1),
            Some(v) => hostcalls::record_metric(id, v),
        };
    }

    /// In the root context: dispatches the deferred callouts.
    pub fn flush(&mut self) {
        for d in std::mem::take(&mut self.glue.deferred) {
            self.dispatch(d);
        }
    }

    fn dispatch(&mut self, d: Dispatch) {
        let headers = d
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let timeout = Duration::from_millis(d.timeout_ms);
        match hostcalls::dispatch_http_call(&d.cluster, headers, None, vec![], timeout) {
            Ok(token) => self.glue.tokens.push((token, d.id)),
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

    /// A callout answered (in the root context).
    pub fn on_response(&mut self, token: u32, num_headers: usize, body_size: usize) {
        let Some(pos) = self.glue.tokens.iter().position(|(t, _)| *t == token) else {
            return;
        };
        let (_, id) = self.glue.tokens.swap_remove(pos);
        // No headers: the callout broke off after its answer began.
        // Reading them then would be refused (a panic in the SDK).
        let status = (num_headers > 0)
            .then(|| hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status"))
            .and_then(|s| s.ok().flatten());
        let body_size = if status.is_none() { 0 } else { body_size };
        let wanted = self.engine.body_wanted(id, status.as_deref(), body_size);
        let body = (wanted > 0)
            .then(|| hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, wanted))
            .and_then(|b| b.ok().flatten())
            .unwrap_or_default();
        let response = CalloutResponse {
            status: status.as_deref(),
            body: &body,
            body_size,
        };
        self.engine.on_callout(now_ms(), &mut Shared, id, &response);
    }

    /// The tick (root context): deferred callouts (should the queue have
    /// failed), the engine's tick, the last resort for a probe the engine
    /// left unanswered past its deadline plus one tick (the simulator
    /// proves it never does), and the memory gauge.
    pub fn tick(&mut self) {
        let now = now_ms();
        self.flush();
        self.engine.on_tick(now, &mut Shared);
        self.execute(self.root);
        let waiting = std::mem::take(&mut self.glue.waiting);
        let (late, keep) = waiting.into_iter().partition(|(_, d)| now > d + TICK_MS);
        self.glue.waiting = keep;
        for (ctx, _) in late {
            self.engine.on_gone(ctx);
            warn!("meshprobe: probe {ctx} unanswered at its deadline: 503");
            if set_effective_context(ctx).is_ok() {
                send(&Reply::plain(503, "meshprobe: no answer by the deadline\n"));
            }
            let _ = set_effective_context(self.root);
        }
        let memory = core::arch::wasm32::memory_size(0) as u64 * 65_536;
        if memory != self.glue.memory {
            self.glue.memory = memory;
            self.metric(Metric::VmMemory, Some(memory));
        }
    }
}
