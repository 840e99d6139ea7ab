//! gRPC health probes in the HTTP context: the request's body is held
//! until its message is complete (the `service` of the
//! `HealthCheckRequest` selects the endpoint), then the probe is classified
//! and handed to the engine like an HTTP one. Its headers have gone on by
//! then (the host gives no body to a filter that holds the headers), less
//! the probe header; a local reply resets the call to the app before the
//! app has its message. A passing endpoint lets the call go on to the app; a
//! failing one is answered with a gRPC error (see [`crate::render::grpc`]).

use super::exec::{now_ms, Host, Shared};
use super::filter::{pass_through, request_header, HostHeaders};
use super::Handle;
use crate::classify::grpc::classify_grpc;
use crate::classify::{Decision, Probe, RequestHeaders};
use crate::engine::Answer;
use crate::grpc::{frame, Frame, MAX_SERVICE};
use crate::render::grpc::{action, Action as GrpcAction};
use crate::render::Reply;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType, GrpcStatusCode};

/// A gRPC frame holding the empty `HealthCheckRequest`.
const EMPTY_REQUEST: [u8; 5] = [0; 5];

/// Whether the filter must read this request's body.
pub fn wants_body(host: Option<&Handle>, path: &str) -> bool {
    if path != crate::grpc::CHECK_PATH {
        return false; // no extra host call for any other request
    }
    let Some(Ok(h)) = host.map(|h| h.try_borrow()) else {
        return false;
    };
    let content_type = request_header("content-type");
    crate::classify::grpc::is_candidate(h.engine.policy(), path, content_type.as_deref())
}

/// The headers the classifier reads, taken in the headers phase: the
/// host refuses to read request headers once they have gone on (a panic
/// in the SDK).
#[derive(Default)]
pub struct Captured {
    /// The probe header's value (removed from the request).
    secret: Option<String>,
    authorization: Option<String>,
}

/// Takes what the classifier needs, and removes the probe header.
pub fn capture(host: Option<&Handle>) -> Captured {
    let header = host
        .and_then(|h| h.try_borrow().ok())
        .and_then(|h| h.engine.policy().authorization.header.clone());
    let secret = header.as_deref().and_then(request_header);
    let _ = pass_through(header.as_deref(), None);
    Captured {
        secret,
        authorization: request_header("authorization"),
    }
}

/// The request's headers as captured.
struct Held<'a> {
    header: Option<&'a str>,
    captured: &'a Captured,
}

impl RequestHeaders for Held<'_> {
    fn get(&mut self, name: &str) -> Option<String> {
        if Some(name) == self.header {
            return self.captured.secret.clone();
        }
        match name {
            "authorization" => self.captured.authorization.clone(),
            _ => None,
        }
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        HostHeaders.property(path)
    }
}

/// Answers a gRPC probe with `reply` (in the current or effective
/// context): `true` when `reply` is a gRPC one.
pub fn send(reply: &Reply) -> bool {
    match action(reply) {
        None => false,
        Some(GrpcAction::Continue) => {
            let _ = hostcalls::resume_http_request();
            true
        }
        Some(GrpcAction::Error(code, message)) => {
            let status = if code == 14 {
                GrpcStatusCode::Unavailable
            } else {
                GrpcStatusCode::Internal
            };
            let _ = hostcalls::send_grpc_response(status, Some(message), vec![]);
            true
        }
    }
}

/// The request body so far (`size` bytes buffered, `end` when complete):
/// what the filter does with the request, `None` while more body is
/// needed. `waiting` is set when the engine answers later.
pub fn on_body(
    host: Option<&Handle>,
    id: u32,
    size: usize,
    end: bool,
    captured: &Captured,
    waiting: &mut bool,
) -> Option<Action> {
    // Not read when empty: in the headers phase there is no body buffer.
    let body = (size > 0)
        .then(|| hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size.min(MAX_SERVICE + 32)))
        .and_then(|b| b.ok().flatten())
        .unwrap_or_default();
    let message = match frame(&body) {
        Frame::Incomplete if !end => return None,
        Frame::Message(m) => m.to_vec(),
        // Not a health request meshprobe can read: the app's to answer.
        Frame::Incomplete | Frame::Invalid(_) => return Some(Action::Continue),
    };
    let Some(Ok(mut h)) = host.map(|h| h.try_borrow_mut()) else {
        return Some(Action::Continue);
    };
    let policy = h.engine.policy().clone();
    let header = policy.authorization.header.as_deref();
    let mut headers = Held { header, captured };
    let action = match classify_grpc(&policy, &message, &mut headers) {
        Decision::PassThrough { .. } => Action::Continue,
        Decision::Reply(reply) => {
            super::exec::send(&reply);
            Action::Pause
        }
        Decision::Unauthorized {
            endpoint, reply, ..
        } => {
            h.engine.unauthorized(endpoint);
            match reply {
                // Envoy turns a local 404 (403) to a gRPC request into
                // UNIMPLEMENTED (PERMISSION_DENIED).
                Some(reply) => {
                    super::exec::send(&reply);
                    Action::Pause
                }
                None => Action::Continue,
            }
        }
        Decision::Probe(probe) => {
            // Should it pass, the call asks the app for its overall health
            // (the empty service): the endpoint's name is meshprobe's.
            let named = policy
                .endpoints
                .get(probe.endpoint)
                .is_some_and(|e| e.grpc_service.as_deref().is_some_and(|s| !s.is_empty()));
            if named && size > 0 {
                let _ = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, size, &EMPTY_REQUEST);
            }
            probe_answer(&mut h, id, probe, waiting)
        }
    };
    h.execute(id);
    Some(action)
}

/// Hands the probe to the engine: the call goes on when it passes at
/// once; else answered now, or held until the engine answers.
fn probe_answer(h: &mut Host, id: u32, probe: Probe, waiting: &mut bool) -> Action {
    match h.engine.on_probe(now_ms(), &mut Shared, id, probe) {
        Answer::Now(reply, _) => match action(&reply) {
            Some(GrpcAction::Continue) => Action::Continue,
            _ => {
                super::exec::send(&reply);
                Action::Pause
            }
        },
        Answer::Waiting { deadline_ms } => {
            *waiting = true;
            h.waiting.push((id, deadline_ms));
            Action::Pause
        }
    }
}
