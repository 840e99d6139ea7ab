//! The host layer: the only code that talks to proxy-wasm. The root context
//! owns the VM (the core's [`Vm`]: the engine and its bookkeeping); each
//! HTTP context ([`filter::Filter`]) hands its request to the engine. This
//! layer reads what the core asks for, executes its effects and sends
//! replies; every decision is the core's.
//!
//! Callouts are dispatched by the root context only (an HTTP context's are
//! kept for the root, woken at once through its shared queue, or on the
//! tick): proxy-wasm hands a callout's answer to the context that was
//! active when it was dispatched and drops it when that context is gone,
//! and Envoy does not cancel the callout when its request goes away.

mod exec;
mod filter;

use crate::engine::{HttpAnswer, Vm, TICK_MS};
use exec::{execute, now_ms, read, Shared};
use log::error;
use proxy_wasm::hostcalls::{self as host, get_map_value};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(Root { id, vm: None }) });
}}

type Handle = Rc<RefCell<Vm>>;

struct Root {
    id: u32,
    vm: Option<Handle>,
}

impl Root {
    /// Runs `f` on the VM, then executes what it asked for.
    fn with(&self, f: impl FnOnce(&mut Vm)) {
        if let Some(Ok(mut vm)) = self.vm.as_ref().map(|h| h.try_borrow_mut()) {
            f(&mut vm);
            execute(&mut vm, self.id);
        }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _: usize) {
        let answer = (token, HttpAnswer { headers, body_size });
        let status = || {
            get_map_value(MapType::HttpCallResponseHeaders, ":status")
                .ok()
                .flatten()
        };
        let body = |n| read(BufferType::HttpCallResponseBody, n);
        self.with(|vm| vm.on_http_answer(now_ms(), &mut Shared, answer, status, body));
    }

    fn on_grpc_call_response(&mut self, token: u32, code: u32, size: usize) {
        let body = |n| read(BufferType::GrpcReceiveBuffer, n);
        let message = exec::grpc_status_message;
        self.with(|vm| {
            vm.on_grpc_answer(now_ms(), &mut Shared, (token, code, size), body, message)
        });
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = read(BufferType::PluginConfiguration, usize::MAX);
        let env = |name: &str| std::env::var(name).ok();
        let (mut vm, queue) = match Vm::configure(&bytes, &env, self.id, now_ms(), &mut Shared) {
            Ok(vm) => vm,
            Err(lines) => {
                lines.iter().for_each(|line| error!("{line}"));
                return false;
            }
        };
        if let Some(name) = queue {
            let _ = host::set_tick_period(Duration::from_millis(TICK_MS));
            vm.queue = host::register_shared_queue(&name).ok();
        }
        execute(&mut vm, self.id);
        self.vm = Some(Rc::new(RefCell::new(vm)));
        true
    }

    fn on_tick(&mut self) {
        self.with(|vm| {
            exec::flush(vm);
            let memory = core::arch::wasm32::memory_size(0) as u64 * 65_536;
            vm.on_tick(now_ms(), &mut Shared, memory);
        });
    }

    fn on_queue_ready(&mut self, queue: u32) {
        while let Ok(Some(_)) = host::dequeue_shared_queue(queue) {}
        self.with(exec::flush);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(filter::Filter::new(context_id, self.vm.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
