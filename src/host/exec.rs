//! The execution of the core's effects with proxy-wasm: shared data as the
//! engine's [`Store`], callouts, replies, metrics and logs.

use crate::engine::{Ctx, Dispatch, Effect, Level, MetricKind, Store, StoreError};
use crate::engine::{Token, Vm};
use crate::grpc::{CHECK_METHOD, HEALTH_SERVICE};
use crate::render::grpc::{action, Action};
use crate::render::Reply;
use log::{info, warn};
use proxy_wasm::hostcalls as host;
use proxy_wasm::types::{BufferType, GrpcStatusCode, MetricType, Status};
use std::time::{Duration, UNIX_EPOCH};

/// Milliseconds of the host clock.
pub fn now_ms() -> u64 {
    host::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Up to `max` bytes of a host buffer (empty when there are none).
pub fn read(buffer: BufferType, max: usize) -> Vec<u8> {
    (max > 0)
        .then(|| host::get_buffer(buffer, 0, max))
        .and_then(|b| b.ok().flatten())
        .unwrap_or_default()
}

/// Envoy's shared data: every worker of the Envoy sees the same.
pub struct Shared;

impl Store for Shared {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        host::get_shared_data(key).unwrap_or((None, None))
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        host::set_shared_data(key, Some(value), cas).map_err(|s| match s {
            Status::CasMismatch => StoreError::CasMismatch,
            other => StoreError::Host(other as u32),
        })
    }
}

/// Sends `reply` in the current (or effective) context: a gRPC probe's
/// goes on to the app when it passes, or is answered with a gRPC error.
pub fn send(reply: &Reply) {
    let _ = match action(reply) {
        Some(Action::Continue) => host::resume_http_request(),
        Some(Action::Error(code, message)) => {
            let status = match code {
                14 => GrpcStatusCode::Unavailable,
                _ => GrpcStatusCode::Internal,
            };
            host::send_grpc_response(status, Some(message), vec![])
        }
        None => {
            let headers = reply.headers.iter().map(|(k, v)| (*k, v.as_str()));
            host::send_http_response(reply.status.into(), headers.collect(), Some(&reply.body))
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
                    if let Some(q) = vm.queue {
                        let _ = host::enqueue_shared_queue(q, Some(b"k"));
                    }
                }
                Effect::Reply { ctx, reply, .. } => {
                    if ctx == effective || host::set_effective_context(ctx).is_ok() {
                        effective = ctx;
                        send(&reply);
                    }
                }
                Effect::Count(m) => {
                    let _ = vm.metric(m, define).map(|id| host::increment_metric(id, 1));
                }
                Effect::Add(m, n) => {
                    let n = i64::try_from(n).unwrap_or(i64::MAX);
                    let _ = vm.metric(m, define).map(|id| host::increment_metric(id, n));
                }
                Effect::Record(m, value) => {
                    let _ = vm
                        .metric(m, define)
                        .map(|id| host::record_metric(id, value));
                }
                Effect::Log(Level::Info, line) => info!("{line}"),
                Effect::Log(Level::Warn, line) => warn!("{line}"),
            }
        }
    }
    if effective != current {
        let _ = host::set_effective_context(current);
    }
}

fn define(kind: MetricKind, name: &str) -> Option<u32> {
    let kind = match kind {
        MetricKind::Counter => MetricType::Counter,
        MetricKind::Gauge => MetricType::Gauge,
        MetricKind::Histogram => MetricType::Histogram,
    };
    host::define_metric(kind, name).ok()
}

/// In the root context: dispatches the callouts kept for it.
pub fn flush(vm: &mut Vm) {
    for d in vm.flush() {
        dispatch(vm, d);
    }
}

fn dispatch(vm: &mut Vm, d: Dispatch) {
    let timeout = Duration::from_millis(d.timeout_ms);
    let sent = match &d.grpc {
        Some(call) => {
            let metadata = d.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes()));
            let message = Some(call.message.as_slice());
            let (upstream, service, method) = (&call.upstream, HEALTH_SERVICE, CHECK_METHOD);
            let metadata = metadata.collect();
            host::dispatch_grpc_call(upstream, service, method, metadata, message, timeout)
                .map(Token::Grpc)
        }
        None => {
            let headers = d.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            host::dispatch_http_call(&d.cluster, headers.collect(), None, vec![], timeout)
                .map(Token::Http)
        }
    };
    match sent {
        Ok(token) => vm.dispatched(token, d.id),
        Err(status) => vm.refused(now_ms(), &mut Shared, &d, status as u32),
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_status(code: *mut u32, data: *mut *mut u8, size: *mut usize) -> Status;
}

/// The status message of the gRPC call that just closed. Not the SDK's
/// `get_grpc_status`, which panics on a message that is not UTF-8.
pub fn grpc_status_message() -> String {
    let (mut code, mut data, mut size) = (0u32, std::ptr::null_mut(), 0usize);
    // SAFETY: the host writes a buffer it allocated through the SDK's
    // `proxy_on_memory_allocate` (a `Vec<u8>` of `size` bytes), whose
    // ownership passes to us.
    unsafe {
        let status = proxy_get_status(&mut code, &mut data, &mut size);
        if !matches!(status, Status::Ok) || data.is_null() {
            return String::new();
        }
        String::from_utf8_lossy(&Vec::from_raw_parts(data, size, size)).into_owned()
    }
}
