//! The HTTP context: classifies a request and either lets it through (minus
//! the secret), answers it locally, or hands the probe to the engine.

use super::engine::Engine;
use super::{now_ms, request_header};
use crate::classify::{classify, Decision, RequestHeaders};
use crate::render::Reply;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};
use std::cell::RefCell;
use std::rc::Rc;

/// Reads request headers for the classifier.
struct HostHeaders;

impl RequestHeaders for HostHeaders {
    fn get(&mut self, name: &str) -> Option<String> {
        request_header(name)
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        let bytes = hostcalls::get_property(path.to_vec()).ok().flatten()?;
        String::from_utf8(bytes).ok()
    }
}

pub struct Filter {
    id: u32,
    engine: Option<Rc<RefCell<Engine>>>,
    /// Handed to the engine and not answered yet.
    waiting: bool,
}

impl Filter {
    pub fn new(id: u32, engine: Option<Rc<RefCell<Engine>>>) -> Filter {
        Filter {
            id,
            engine,
            waiting: false,
        }
    }
}

pub fn send(reply: &Reply) {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let _ = hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body));
}

fn pass_through(header: Option<&str>, new_path: Option<&str>) -> Action {
    if let Some(name) = header {
        // The secret never reaches the application.
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
    }
    if let Some(path) = new_path {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, ":path", Some(path));
    }
    Action::Continue
}

impl Context for Filter {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        // Callouts of a run started by this request; the run serves every
        // probe waiting for it.
        super::forward_callout(
            self.engine.as_ref(),
            self.id,
            token_id,
            num_headers,
            body_size,
        );
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        #[cfg(feature = "test-hooks")]
        test_hooks::run();
        let Some(engine) = self.engine.clone() else {
            return Action::Continue;
        };
        let Ok(mut e) = engine.try_borrow_mut() else {
            return Action::Continue;
        };
        let policy = e.policy();
        let header = policy.authorization.header.as_deref();
        let path = request_header(":path").unwrap_or_default();
        match classify(&policy, &path, &mut HostHeaders) {
            Decision::PassThrough { new_path } => pass_through(header, new_path.as_deref()),
            Decision::Reply(reply) => {
                send(&reply);
                Action::Pause
            }
            Decision::Unauthorized {
                endpoint,
                reply,
                new_path,
            } => {
                e.unauthorized(endpoint);
                match reply {
                    Some(reply) => {
                        send(&reply);
                        Action::Pause
                    }
                    None => pass_through(header, new_path.as_deref()),
                }
            }
            Decision::Probe(probe) => {
                self.waiting = e.probe(self.id, probe, now_ms());
                Action::Pause
            }
        }
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        if !self.waiting {
            return;
        }
        if let Some(engine) = &self.engine {
            // While the engine is busy answering probes it cannot be told;
            // it then learns of it when it next tries to answer this one.
            if let Ok(mut e) = engine.try_borrow_mut() {
                e.forget(self.id);
            }
        }
    }
}

/// Test builds only: `x-meshprobe-test-hook: panic` fails the VM the way a
/// bug would (a Rust panic, which aborts: a Wasm trap), so tests can watch
/// Envoy's `failure_policy` at work.
#[cfg(feature = "test-hooks")]
mod test_hooks {
    #[allow(clippy::panic)]
    pub fn run() {
        if super::request_header("x-meshprobe-test-hook").as_deref() == Some("panic") {
            panic!("meshprobe test hook: forced VM failure");
        }
    }
}
