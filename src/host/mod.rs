//! The host layer: the only code that talks to proxy-wasm. The root context
//! owns the [`engine::Engine`] (shared results, leases, runs, waiting
//! probes); each HTTP context ([`filter::Filter`]) classifies its request
//! and hands probes to the engine. Every decision is the pure core's.

mod engine;
mod filter;
mod stats;

use engine::Engine;
use log::{error, info};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use crate::policy::Policy;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(Root { id, engine: None }) });
}}

/// How often the root context looks at waiting probes, overdue runs and
/// background refreshes.
pub(crate) const TICK_MS: u64 = 20;

/// Milliseconds of the host clock.
pub(crate) fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

/// FNV-1a of the policy bytes: the cache generation.
fn generation(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A random id for this VM (the lease owner), from WASI's random source.
fn vm_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ms());
    h.finish()
}

struct Root {
    id: u32,
    engine: Option<Rc<RefCell<Engine>>>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        forward_callout(
            self.engine.as_ref(),
            self.id,
            token_id,
            num_headers,
            body_size,
        );
    }
}

/// Hands a callout answer, received in context `ctx`, to the engine (runs
/// belong to the engine, whichever context dispatched their callouts).
pub(crate) fn forward_callout(
    engine: Option<&Rc<RefCell<Engine>>>,
    ctx: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
) {
    if let Some(Ok(mut e)) = engine.map(|e| e.try_borrow_mut()) {
        e.on_callout(ctx, token, num_headers, body_size);
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
        match Policy::from_json(&bytes, &|name| std::env::var(name).ok()) {
            Ok(policy) => {
                info!(
                    "meshprobe: policy loaded: {} endpoint(s), {} check(s)",
                    policy.endpoints.len(),
                    policy.checks.len()
                );
                let busy = policy.endpoints.iter().any(|e| !e.checks.is_empty());
                let engine = Engine::new(Rc::new(policy), generation(&bytes), vm_id());
                self.engine = Some(Rc::new(RefCell::new(engine)));
                if busy {
                    let _ = hostcalls::set_tick_period(Duration::from_millis(TICK_MS));
                }
                true
            }
            Err(errors) => {
                for e in &errors {
                    error!("meshprobe: invalid policy: {e}");
                }
                error!("meshprobe: policy refused ({} error(s))", errors.len());
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(engine) = &self.engine {
            if let Ok(mut e) = engine.try_borrow_mut() {
                e.tick(self.id, now_ms());
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(filter::Filter::new(
            context_id,
            self.engine.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
