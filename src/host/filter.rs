//! The HTTP context: classifies a request and either lets it through (minus
//! the secret), answers it locally, or hands the probe to the engine.

use super::exec::{now_ms, send, Shared};
use super::Handle;
use crate::classify::{classify, Decision, RequestHeaders};
use crate::engine::Answer;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

pub(super) fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

/// Reads request headers for the classifier.
pub(super) struct HostHeaders;

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
    /// A possible gRPC health probe: its body is read.
    grpc: GrpcBody,
    /// Its headers the classifier reads.
    captured: super::grpc_probe::Captured,
}

/// Where a possible gRPC health probe stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum GrpcBody {
    /// Not one, or decided to go on: the body passes.
    Off,
    /// Its body is read until the request message is complete.
    Reading,
    /// Decided: answered locally, or held until the engine answers.
    Held,
}

impl Filter {
    pub fn new(id: u32, host: Option<Handle>) -> Filter {
        Filter {
            id,
            host,
            waiting: false,
            grpc: GrpcBody::Off,
            captured: Default::default(),
        }
    }
}

pub(super) fn pass_through(header: Option<&str>, new_path: Option<&str>) -> Action {
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
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "test-hooks")]
        test_hooks::run();
        let path = request_header(":path").unwrap_or_default();
        if super::grpc_probe::wants_body(self.host.as_ref(), &path) {
            // The host never hands the body to a filter that paused the
            // headers (proxy-wasm makes that "stop all"): the headers go
            // on, less the secret (kept for the classifier), and the body
            // is held.
            self.captured = super::grpc_probe::capture(self.host.as_ref());
            if !end_of_stream {
                self.grpc = GrpcBody::Reading;
                return Action::Continue;
            }
            let (host, id) = (self.host.as_ref(), self.id);
            let action =
                super::grpc_probe::on_body(host, id, 0, true, &self.captured, &mut self.waiting);
            return action.unwrap_or(Action::Continue);
        }
        let Some(Ok(mut h)) = self.host.as_ref().map(|h| h.try_borrow_mut()) else {
            return Action::Continue;
        };
        let policy = h.engine.policy().clone();
        let header = policy.authorization.header.as_deref();
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

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.grpc {
            GrpcBody::Off => return Action::Continue,
            GrpcBody::Held => return Action::Pause,
            GrpcBody::Reading => {}
        }
        let action = super::grpc_probe::on_body(
            self.host.as_ref(),
            self.id,
            body_size,
            end_of_stream,
            &self.captured,
            &mut self.waiting,
        );
        match action {
            None => Action::Pause,
            Some(Action::Continue) => {
                self.grpc = GrpcBody::Off;
                Action::Continue
            }
            Some(other) => {
                self.grpc = GrpcBody::Held;
                other
            }
        }
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
