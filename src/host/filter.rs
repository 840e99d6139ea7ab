//! The HTTP context: hands its request to the engine, then lets it
//! through (minus the secret), answers it, or waits for the engine.

use super::exec::{now_ms, send, Shared};
use super::Handle;
use crate::classify::RequestHeaders;
use crate::engine::{Answer, Request};
use proxy_wasm::hostcalls::{self, get_map_value, set_map_value};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType::HttpRequestHeaders as Headers};

/// Reads request headers and properties for the classifier.
struct Host;

impl RequestHeaders for Host {
    fn get(&mut self, name: &str) -> Option<String> {
        get_map_value(Headers, name).ok().flatten()
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        String::from_utf8(hostcalls::get_property(path.to_vec()).ok()??).ok()
    }
}

pub struct Filter {
    pub id: u32,
    pub host: Option<Handle>,
    /// Handed to the engine and not answered at once.
    pub waiting: bool,
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        #[cfg(feature = "test-hooks")]
        test_hooks::run();
        let Some(Ok(mut h)) = self.host.as_ref().map(|h| h.try_borrow_mut()) else {
            return Action::Continue;
        };
        let path = Host.get(":path").unwrap_or_default();
        let action = match h
            .engine
            .on_request(now_ms(), &mut Shared, self.id, &path, &mut Host)
        {
            Request::Pass { new_path } => {
                // The secret never reaches the application.
                if let Some(name) = h.engine.policy().authorization.header.as_deref() {
                    let _ = set_map_value(Headers, name, None);
                }
                if let Some(path) = new_path {
                    let _ = set_map_value(Headers, ":path", Some(&path));
                }
                Action::Continue
            }
            Request::Answer(Answer::Now(reply, _)) => {
                send(&reply);
                Action::Pause
            }
            Request::Answer(Answer::Waiting { deadline_ms }) => {
                self.waiting = true;
                h.glue.waiting.push((self.id, deadline_ms));
                Action::Pause
            }
        };
        h.execute(self.id);
        action
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        // While the host is busy (answering probes) it cannot be told; it
        // forgets this probe as it answers it.
        let host = self.host.as_ref().filter(|_| self.waiting);
        if let Some(Ok(mut h)) = host.map(|h| h.try_borrow_mut()) {
            h.engine.on_gone(self.id);
            h.glue.waiting.retain(|(c, _)| *c != self.id);
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
        use crate::classify::RequestHeaders;
        if super::Host.get("x-meshprobe-test-hook").as_deref() == Some("panic") {
            panic!("meshprobe test hook: forced VM failure");
        }
    }
}
