//! The HTTP context: classifies a request and either lets it through (minus
//! the secret), answers it locally, or hands the probe to the engine.

use super::exec::{now_ms, send, Shared};
use super::Handle;
use crate::classify::{classify, Decision, RequestHeaders};
use crate::engine::Answer;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

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
    host: Option<Handle>,
    /// Handed to the engine and not answered at once.
    waiting: bool,
}

impl Filter {
    pub fn new(id: u32, host: Option<Handle>) -> Filter {
        Filter {
            id,
            host,
            waiting: false,
        }
    }
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

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        #[cfg(feature = "test-hooks")]
        test_hooks::run();
        let Some(Ok(mut h)) = self.host.as_ref().map(|h| h.try_borrow_mut()) else {
            return Action::Continue;
        };
        let policy = h.engine.policy().clone();
        let header = policy.authorization.header.as_deref();
        let path = request_header(":path").unwrap_or_default();
        let action = match classify(&policy, &path, &mut HostHeaders) {
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
                h.engine.unauthorized(endpoint);
                match reply {
                    Some(reply) => {
                        send(&reply);
                        Action::Pause
                    }
                    None => pass_through(header, new_path.as_deref()),
                }
            }
            Decision::Probe(probe) => {
                match h.engine.on_probe(now_ms(), &mut Shared, self.id, probe) {
                    Answer::Now(reply, _) => send(&reply),
                    Answer::Waiting { deadline_ms } => {
                        self.waiting = true;
                        h.waiting.push((self.id, deadline_ms));
                    }
                }
                Action::Pause
            }
        };
        h.execute(self.id);
        action
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        // While the host is busy (answering probes) it cannot be told; the
        // engine then forgets this probe as it answers it.
        if let Some(Ok(mut h)) = self
            .host
            .as_ref()
            .filter(|_| self.waiting)
            .map(|h| h.try_borrow_mut())
        {
            h.engine.on_gone(self.id);
            h.waiting.retain(|(c, _)| *c != self.id);
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
