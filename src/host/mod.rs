//! The host layer: the only code that talks to proxy-wasm. The root context
//! owns the VM's [`Engine`] (in [`exec::Host`]); each HTTP context
//! ([`filter::Filter`]) classifies its request and hands probes to it. The
//! host reads headers, executes the engine's effects and sends replies;
//! every decision is the pure core's.
//!
//! Callouts are dispatched by the root context only (an HTTP context's are
//! deferred to the root, woken at once through its shared queue, or on the
//! tick): proxy-wasm hands a callout's answer to the context that was
//! active when it was dispatched and drops it when that context is gone,
//! and Envoy does not cancel the callout when its request goes away.

mod exec;
mod filter;
mod grpc;
mod grpc_probe;
mod stats;

use crate::engine::{generation, CalloutId, Engine};
use crate::outcome::CalloutResponse;
use crate::policy::Policy;
use exec::{now_ms, Host, Shared};
use log::{error, info};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(Root { id, host: None }) });
}}

type Handle = Rc<RefCell<Host>>;

/// A random id for this VM (the lease owner), from WASI's random source.
fn vm_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ms());
    h.finish()
}

struct Root {
    id: u32,
    host: Option<Handle>,
}

impl Root {
    fn with(&self, f: impl FnOnce(&mut Host)) {
        if let Some(Ok(mut h)) = self.host.as_ref().map(|h| h.try_borrow_mut()) {
            f(&mut h);
            h.execute(self.id);
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _: usize,
    ) {
        self.with(|h| {
            let Some(pos) = h.tokens.iter().position(|(t, _)| *t == token) else {
                return;
            };
            let (_, id): (u32, CalloutId) = h.tokens.swap_remove(pos);
            // No headers: the callout broke off after its answer began.
            // Reading them then would be refused (a panic in the SDK).
            let status = (num_headers > 0)
                .then(|| hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status"))
                .and_then(|s| s.ok().flatten());
            let body_size = if status.is_none() { 0 } else { body_size };
            let wanted = h.engine.body_wanted(id, status.as_deref(), body_size);
            let body = (wanted > 0)
                .then(|| hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, wanted))
                .and_then(|b| b.ok().flatten())
                .unwrap_or_default();
            let response = CalloutResponse {
                status: status.as_deref(),
                body: &body,
                body_size,
            };
            h.engine.on_callout(now_ms(), &mut Shared, id, &response);
        });
    }

    fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        self.grpc_response(token, status_code, response_size);
    }
}

impl Root {
    fn grpc_response(&mut self, token: u32, status: u32, size: usize) {
        self.with(|h| grpc::on_response(h, token, status, size));
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("meshprobe: cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        let policy = match Policy::from_json(&bytes, &|name| std::env::var(name).ok()) {
            Ok(policy) => policy,
            Err(errors) => {
                for e in &errors {
                    error!("meshprobe: invalid policy: {e}");
                }
                error!("meshprobe: policy refused ({} error(s))", errors.len());
                return false;
            }
        };
        let (endpoints, checks) = (policy.endpoints.len(), policy.checks.len());
        info!("meshprobe: policy loaded: {endpoints} endpoint(s), {checks} check(s)");
        let me = vm_id();
        let engine = Engine::new(
            Rc::new(policy),
            generation(&bytes),
            me,
            now_ms(),
            &mut Shared,
        );
        let tick = engine.tick_ms();
        let mut host = Host::new(engine, me, self.id);
        if let Some(ms) = tick {
            let _ = hostcalls::set_tick_period(Duration::from_millis(ms));
            let name = format!("meshprobe/kick/{me:016x}/{}", self.id);
            host.queue = hostcalls::register_shared_queue(&name).ok();
        }
        self.host = Some(Rc::new(RefCell::new(host)));
        true
    }

    fn on_tick(&mut self) {
        self.with(|h| {
            let now = now_ms();
            h.flush();
            h.engine.on_tick(now, &mut Shared);
            h.execute(h.root);
            h.tick(now);
        });
    }

    fn on_queue_ready(&mut self, queue: u32) {
        while let Ok(Some(_)) = hostcalls::dequeue_shared_queue(queue) {}
        self.with(Host::flush);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(filter::Filter::new(context_id, self.host.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
