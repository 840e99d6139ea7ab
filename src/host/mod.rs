//! The host layer: the only code that talks to the host, through the
//! proxy-wasm ABI (`meshprobe-abi`). It exports the callbacks meshprobe
//! needs and no other (Envoy enters the VM for every exported callback):
//! the root context's here, an HTTP context's in [`filter`]. Each reads
//! what the core asks for, calls the core's [`Vm`] and executes its
//! effects ([`exec`]); every decision is the core's.
//!
//! Callouts are dispatched by the root context only (an HTTP context's are
//! kept for the root, woken at once through its shared queue, or on the
//! tick), so their answers come to the root whatever becomes of the
//! request that asked: Envoy does not cancel a callout when its request
//! goes away.

mod exec;
mod filter;

use crate::engine::{HttpAnswer, Roots, Streams, Vm, TICK_MS};
use exec::{execute, Shared};
use meshprobe_abi::{self as abi, Buffer, LogLevel, Map};
use std::cell::RefCell;

thread_local! {
    static ROOTS: RefCell<Roots> = const { RefCell::new(Roots::new()) };
    /// Taken out of while a request's callback runs (defensive: Envoy
    /// defers what a host call would call back, except the allocation).
    static STREAMS: RefCell<Streams> = const { RefCell::new(Streams::new()) };
}

/// Runs `f` on the VM of root `id`, then executes its effects in context
/// `current`. `None` if there is none, or (defensive: Envoy defers what a
/// host call would call back) it is busy.
fn with_vm<R>(id: u32, current: u32, f: impl FnOnce(&mut Vm) -> R) -> Option<R> {
    ROOTS.with(|roots| {
        let mut roots = roots.try_borrow_mut().ok()?;
        let vm = roots.vm(id)?;
        let out = f(vm);
        execute(vm, current);
        Some(out)
    })
}

/// `f` on the value of `cell`, unless it is in use (never: no callback
/// comes while these are borrowed, except as [`with_vm`] allows).
fn borrow<T, R>(
    cell: &'static std::thread::LocalKey<RefCell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> Option<R> {
    cell.with(|c| c.try_borrow_mut().ok().map(|mut v| f(&mut v)))
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(ctx: u32, root: u32) {
    match root {
        0 => borrow(&ROOTS, |r| r.start(ctx)),
        _ => borrow(&STREAMS, |s| s.start(ctx, root)),
    };
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(ctx: u32) {
    if let Some((root, mut stream)) = borrow(&STREAMS, |s| s.take(ctx)).flatten() {
        with_vm(root, ctx, |vm| stream.on_end(vm));
    } else {
        // A root context: its VM goes with it.
        borrow(&ROOTS, |r| r.end(ctx));
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(id: u32, size: usize) -> bool {
    let bytes = abi::buffer(Buffer::PluginConfiguration, size);
    let env = |name: &str| std::env::var(name).ok();
    let (mut vm, queue) = match Vm::configure(&bytes, &env, id, abi::now_ms(), &mut Shared) {
        Ok(vm) => vm,
        Err(lines) => {
            lines.iter().for_each(|l| abi::log(LogLevel::Error, l));
            return false;
        }
    };
    if let Some(name) = queue {
        let _ = abi::set_tick_period(TICK_MS as u32);
        vm.queue = abi::register_queue(&name).ok();
    }
    execute(&mut vm, id);
    borrow(&ROOTS, |r| r.configured(id, vm)).unwrap_or(false)
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(id: u32) {
    with_vm(id, id, |vm| {
        exec::flush(vm);
        let memory = core::arch::wasm32::memory_size(0) as u64 * 65_536;
        vm.on_tick(abi::now_ms(), &mut Shared, memory);
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_queue_ready(id: u32, queue: u32) {
    while abi::dequeue(queue).is_some() {}
    with_vm(id, id, exec::flush);
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    id: u32,
    token: u32,
    headers: usize,
    body: usize,
    _: usize,
) {
    let answer = (
        token,
        HttpAnswer {
            headers,
            body_size: body,
        },
    );
    let status = || {
        abi::header(Map::HttpCallResponseHeaders, ":status").and_then(|v| String::from_utf8(v).ok())
    };
    let body = |n| abi::buffer(Buffer::HttpCallResponseBody, n);
    with_vm(id, id, |vm| {
        vm.on_http_answer(abi::now_ms(), &mut Shared, answer, status, body)
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_receive(id: u32, token: u32, size: usize) {
    grpc_answer(id, (token, 0, size));
}

#[no_mangle]
pub extern "C" fn proxy_on_grpc_close(id: u32, token: u32, code: u32) {
    grpc_answer(id, (token, code, 0));
}

fn grpc_answer(id: u32, answer: (u32, u32, usize)) {
    let body = |n| abi::buffer(Buffer::GrpcReceive, n);
    let message = abi::grpc_status_message;
    with_vm(id, id, |vm| {
        vm.on_grpc_answer(abi::now_ms(), &mut Shared, answer, body, message)
    });
}
