//! The execution of the core's effects: shared data as the engine's
//! [`Store`], callouts, replies, metrics and logs.

use crate::engine::{Ctx, Dispatch, Effect, Level, MetricKind, Store, StoreError, Token, Vm};
use crate::grpc::{CHECK_METHOD, HEALTH_SERVICE};
use crate::render::grpc::{action, Action};
use crate::render::Reply;
use meshprobe_abi::{self as abi, status, LogLevel, MetricType};

/// Envoy's shared data: every worker of the Envoy sees the same.
pub struct Shared;

impl Store for Shared {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        let (value, cas) = abi::shared_get(key);
        (value, Some(cas).filter(|c| *c != 0))
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        abi::shared_set(key, value, cas.unwrap_or(0)).map_err(|s| match s {
            status::CAS_MISMATCH => StoreError::CasMismatch,
            other => StoreError::Host(other),
        })
    }
}

/// Sends `reply` in the current (or effective) context: a gRPC probe's
/// goes on to the app when it passes, or is answered with a gRPC error.
pub fn send(reply: &Reply) {
    let _ = match action(reply) {
        Some(Action::Continue) => abi::resume_request(),
        Some(Action::Error(code, message)) => {
            let code = i32::try_from(code).unwrap_or(13);
            let no_headers: &[(&str, &str)] = &[];
            abi::send(200, no_headers, message.as_bytes(), code)
        }
        None => {
            let age = |map: &[u8], secs: u64| abi::with_pair(map, "age", &secs.to_string());
            reply.sent(abi::serialize_map, age, |map| {
                abi::send_map(reply.status.into(), map, &reply.body, -1)
            })
        }
    };
}

/// Executes the VM's effects in context `current` (the root, or an HTTP
/// context, whose callouts the VM keeps for the root).
pub fn execute(vm: &mut Vm, current: Ctx) {
    let mut effective = current;
    loop {
        let effects = vm.effects(current);
        if effects.is_empty() {
            break;
        }
        for effect in effects {
            match effect {
                Effect::Dispatch(d) => dispatch(vm, d),
                Effect::WakeRoot => {
                    let _ = vm.queue.map(|q| abi::enqueue(q, b"k"));
                }
                Effect::Reply { ctx, reply, .. } => {
                    if ctx == effective || abi::set_effective_context(ctx).is_ok() {
                        effective = ctx;
                        send(&reply);
                    }
                }
                Effect::Count(m) => add(vm, m, 1),
                Effect::Add(m, n) => add(vm, m, n),
                Effect::Record(m, value) => {
                    let _ = vm.metric(m, define).map(|id| abi::record_metric(id, value));
                }
                Effect::Log(Level::Info, line) => abi::log(LogLevel::Info, &line),
                Effect::Log(Level::Warn, line) => abi::log(LogLevel::Warn, &line),
            }
        }
    }
    if effective != current {
        let _ = abi::set_effective_context(current);
    }
}

fn add(vm: &mut Vm, m: crate::engine::Metric, n: u64) {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let _ = vm.metric(m, define).map(|id| abi::increment_metric(id, n));
}

fn define(kind: MetricKind, name: &str) -> Option<u32> {
    let kind = match kind {
        MetricKind::Counter => MetricType::Counter,
        MetricKind::Gauge => MetricType::Gauge,
        MetricKind::Histogram => MetricType::Histogram,
    };
    abi::define_metric(kind, name).ok()
}

/// In the root context: dispatches the callouts kept for it.
pub fn flush(vm: &mut Vm) {
    for d in vm.flush() {
        dispatch(vm, d);
    }
}

fn dispatch(vm: &mut Vm, d: Dispatch) {
    let timeout = u32::try_from(d.timeout_ms).unwrap_or(u32::MAX);
    let headers = &d.headers;
    let sent = match &d.grpc {
        Some(call) => {
            let to = (call.upstream.as_str(), HEALTH_SERVICE, CHECK_METHOD);
            abi::grpc_call(to, headers, &call.message, timeout).map(Token::Grpc)
        }
        None => abi::http_call(&d.cluster, headers, timeout).map(Token::Http),
    };
    match sent {
        Ok(token) => vm.dispatched(token, d.id),
        Err(status) => vm.refused(abi::now_ms(), &mut Shared, &d, status),
    }
}
