//! The host layer: the only code that talks to proxy-wasm. The root context
//! owns the VM's engine (in [`exec::Host`]); each HTTP context
//! ([`filter::Filter`]) hands its request to it. The host reads headers,
//! executes the engine's effects and sends replies; every decision is the
//! pure core's.
//!
//! Callouts are dispatched by the root context only (an HTTP context's are
//! deferred to the root, woken at once through its shared queue, or on the
//! tick): proxy-wasm hands a callout's answer to the context that was
//! active when it was dispatched and drops it when that context is gone,
//! and Envoy does not cancel the callout when its request goes away.

mod exec;
mod filter;

use crate::engine::Engine;
use exec::{now_ms, Glue, Host, Shared};
use log::{error, info};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(Root { id, host: None }) });
}}

type Handle = Rc<RefCell<Host>>;

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
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _: usize) {
        self.with(|h| h.on_response(token, headers, body));
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX);
        let bytes = bytes.ok().flatten().unwrap_or_default();
        // A random id for this VM (the lease owner), from WASI's random source.
        let me = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), now_ms());
        let env = |name: &str| std::env::var(name).ok();
        let engine = match Engine::configure(&bytes, &env, me, now_ms(), &mut Shared) {
            Ok((engine, line)) => {
                info!("{line}");
                engine
            }
            Err(lines) => {
                lines.iter().for_each(|line| error!("{line}"));
                return false;
            }
        };
        let tick = engine.tick_ms();
        let mut glue = Glue::default();
        if let Some(ms) = tick {
            let _ = hostcalls::set_tick_period(Duration::from_millis(ms));
            let name = format!("meshprobe/kick/{me:016x}/{}", self.id);
            glue.queue = hostcalls::register_shared_queue(&name).ok();
        }
        let host = Host {
            engine,
            me,
            root: self.id,
            glue,
        };
        self.host = Some(Rc::new(RefCell::new(host)));
        true
    }

    fn on_tick(&mut self) {
        self.with(Host::tick);
    }

    fn on_queue_ready(&mut self, queue: u32) {
        while let Ok(Some(_)) = hostcalls::dequeue_shared_queue(queue) {}
        self.with(Host::flush);
    }

    fn create_http_context(&self, id: u32) -> Option<Box<dyn HttpContext>> {
        let host = self.host.clone();
        Some(Box::new(filter::Filter {
            id,
            host,
            waiting: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
