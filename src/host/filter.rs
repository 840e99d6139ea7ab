//! The HTTP context: hands each phase of its request to the core's
//! [`Stream`] and carries out the [`Step`] it gives.

use super::exec::{execute, now_ms, read, send, Shared};
use super::Handle;
use crate::classify::RequestHeaders;
use crate::engine::{Step, Stream, Then, Vm, BODY_READ, EMPTY_REQUEST};
use proxy_wasm::hostcalls as host;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

/// The request's headers and properties, read when the core asks.
struct Headers;

impl RequestHeaders for Headers {
    fn get(&mut self, name: &str) -> Option<String> {
        host::get_map_value(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        let bytes = host::get_property(path.to_vec()).ok().flatten()?;
        String::from_utf8(bytes).ok()
    }
}

pub struct Filter {
    vm: Option<Handle>,
    stream: Stream,
}

impl Filter {
    pub fn new(id: u32, vm: Option<Handle>) -> Filter {
        Filter {
            vm,
            stream: Stream::new(id),
        }
    }
}

fn carry(vm: &Vm, step: Step) -> Action {
    let headers = MapType::HttpRequestHeaders;
    let name = vm.engine.policy().authorization.header.as_deref();
    if let Some(name) = name.filter(|_| step.strip) {
        // The secret never reaches the application.
        let _ = host::set_map_value(headers, name, None);
    }
    if let Some(path) = step.path {
        let _ = host::set_map_value(headers, ":path", Some(&path));
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

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "test-hooks")]
        test_hooks::run();
        let Some(Ok(mut vm)) = self.vm.as_ref().map(|h| h.try_borrow_mut()) else {
            return Action::Continue;
        };
        let path = Headers.get(":path").unwrap_or_default();
        let end = end_of_stream;
        let step = self
            .stream
            .on_headers(&mut vm, now_ms, &mut Shared, &path, &mut Headers, end);
        let action = carry(&vm, step);
        execute(&mut vm, self.stream.ctx());
        action
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !self.stream.reads_body() {
            return if self.stream.held() {
                Action::Pause
            } else {
                Action::Continue
            };
        }
        let Some(Ok(mut vm)) = self.vm.as_ref().map(|h| h.try_borrow_mut()) else {
            return Action::Continue;
        };
        // Not read when empty: in the headers phase there is no body buffer.
        let body = read(BufferType::HttpRequestBody, size.min(BODY_READ));
        let (now, body) = (now_ms(), (body.as_slice(), end_of_stream));
        let (step, empty) = self
            .stream
            .on_body(&mut vm, now, &mut Shared, body, &mut Headers);
        if empty && size > 0 {
            let _ = host::set_buffer(BufferType::HttpRequestBody, 0, size, &EMPTY_REQUEST);
        }
        let action = carry(&vm, step);
        execute(&mut vm, self.stream.ctx());
        action
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        // While the VM is busy (answering probes) it cannot be told; the
        // engine then forgets this probe as it answers it.
        if let Some(Ok(mut vm)) = self.vm.as_ref().map(|h| h.try_borrow_mut()) {
            self.stream.on_end(&mut vm);
        }
    }
}

/// Test builds only: `x-meshprobe-test-hook: panic` fails the VM the way a
/// bug would (a Rust panic, which aborts: a Wasm trap), so tests can watch
/// Envoy's `failure_policy` at work.
#[cfg(feature = "test-hooks")]
mod test_hooks {
    use crate::classify::RequestHeaders;

    #[allow(clippy::panic)]
    pub fn run() {
        if super::Headers.get("x-meshprobe-test-hook").as_deref() == Some("panic") {
            panic!("meshprobe test hook: forced VM failure");
        }
    }
}
