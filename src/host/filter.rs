//! An HTTP context's callbacks: each phase of its request goes to the
//! core's [`Stream`], and the host carries out the [`Step`] it gives.

use super::exec::{send, Shared};
use super::{borrow, with_vm, STREAMS};
use crate::classify::RequestHeaders;
use crate::engine::{Step, Stream, Then, Vm, BODY_READ, EMPTY_REQUEST};
use meshprobe_abi::{self as abi, Action, Buffer, Map};

/// The request's headers, as the host serialized them (all read in one
/// host call), and its properties.
struct Headers<'a>(&'a [u8]);

impl RequestHeaders for Headers<'_> {
    fn get(&mut self, name: &str) -> Option<&str> {
        header(self.0, name)
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        String::from_utf8(abi::property(path)?).ok()
    }
}

/// The value of header `name` in `map`, borrowed from it.
fn header<'a>(map: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(abi::map_value(map, name)?).ok()
}

/// Carries out `step`; `map` is the request's headers (empty when they
/// were not read: then the probe header may be there).
fn carry(vm: &Vm, step: Step, map: &[u8]) -> Action {
    let name = vm.engine.policy().authorization.header.as_deref();
    let may_have = |n: &&str| map.is_empty() || abi::map_value(map, n).is_some();
    if let Some(name) = name.filter(|n| step.strip && may_have(n)) {
        // The secret never reaches the application.
        let _ = abi::set_header(Map::HttpRequestHeaders, name, None);
    }
    if let Some(path) = step.path {
        let _ = abi::set_header(Map::HttpRequestHeaders, ":path", Some(&path));
    }
    match step.then {
        Then::Continue => Action::Continue,
        Then::Pause => Action::Pause,
        Then::Reply(reply) => {
            send(&reply);
            Action::Pause
        }
    }
}

/// Runs a phase of the request of `ctx` (taken out of [`STREAMS`] meanwhile,
/// kept after only while it still matters) on its root's VM.
fn phase(ctx: u32, f: impl FnOnce(&mut Vm, &mut Stream) -> Action) -> Action {
    let Some((root, mut stream)) = borrow(&STREAMS, |s| s.take(ctx)).flatten() else {
        return Action::Continue;
    };
    let action = with_vm(root, ctx, |vm| f(vm, &mut stream)).unwrap_or(Action::Continue);
    borrow(&STREAMS, |s| s.keep(root, stream));
    action
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(ctx: u32, _: usize, end: bool) -> Action {
    #[cfg(feature = "test-hooks")]
    test_hook();
    phase(ctx, |vm, stream| {
        // All headers in one host call: then app traffic without the probe
        // header costs no second call to remove it.
        let map = abi::request_headers();
        let path = header(&map, ":path").unwrap_or_default();
        let headers = &mut Headers(&map);
        let step = stream.on_headers(vm, abi::now_ms, &mut Shared, path, headers, end);
        carry(vm, step, &map)
    })
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(ctx: u32, size: usize, end: bool) -> Action {
    phase(ctx, |vm, stream| {
        let body = (
            || abi::buffer(Buffer::HttpRequestBody, size.min(BODY_READ)),
            end,
        );
        // No headers: they went on with the headers phase (the host no
        // longer gives them), and the core took what it needs of them
        // then (`Captured`).
        let headers = &mut Headers(&[]);
        let (step, empty) = stream.on_body(vm, abi::now_ms, &mut Shared, body, headers);
        if empty && size > 0 {
            let _ = abi::set_buffer(Buffer::HttpRequestBody, 0, size, &EMPTY_REQUEST);
        }
        carry(vm, step, &[])
    })
}

/// Test builds only: `x-meshprobe-test-hook: panic` fails the VM the way a
/// bug would (a Rust panic, which aborts: a Wasm trap), so tests can watch
/// Envoy's `failure_policy` at work.
#[cfg(feature = "test-hooks")]
#[allow(clippy::panic)]
fn test_hook() {
    if abi::map_value(&abi::request_headers(), "x-meshprobe-test-hook") == Some(b"panic") {
        panic!("meshprobe test hook: forced VM failure");
    }
}
