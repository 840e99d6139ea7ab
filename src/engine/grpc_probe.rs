//! gRPC health probes, as the host meets them: the request's body is held
//! until its message is complete (the `service` of the `HealthCheckRequest`
//! selects the endpoint), then the probe is classified and handled like an
//! HTTP one. Its headers have gone on by then (a host gives no body to a
//! filter that holds the headers), less the probe header, which is
//! captured first; a local reply resets the call to the app before the app
//! has its message. A passing endpoint lets the call go on to the app; a
//! failing one is answered with a gRPC error (see [`crate::render::grpc`]).

use super::{Answer, Ctx, Engine, Request, Store};
use crate::classify::grpc::{classify_grpc, is_candidate};
use crate::classify::{Decision, RequestHeaders};
use crate::grpc::{frame, Frame, CHECK_PATH, MAX_SERVICE};
use crate::render::grpc::{action, Action};

/// How many body bytes the host reads of a possible gRPC probe.
pub const BODY_READ: usize = MAX_SERVICE + 32;

/// A gRPC frame holding the empty `HealthCheckRequest`.
pub const EMPTY_REQUEST: [u8; 5] = [0; 5];

/// The headers the classifier reads, taken in the headers phase (the host
/// refuses to read request headers once they have gone on).
#[derive(Debug, Default, Clone)]
pub struct Captured {
    /// The probe header's value (the host removes it from the request).
    secret: Option<String>,
    authorization: Option<String>,
}

/// The captured headers, with the host's properties (the peer address).
struct Held<'a> {
    header: Option<&'a str>,
    captured: &'a Captured,
    host: &'a mut dyn RequestHeaders,
}

impl RequestHeaders for Held<'_> {
    fn get(&mut self, name: &str) -> Option<&str> {
        if Some(name) == self.header {
            return self.captured.secret.as_deref();
        }
        match name {
            "authorization" => self.captured.authorization.as_deref(),
            _ => None,
        }
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        self.host.property(path)
    }
}

/// What the host does with a gRPC probe once its message is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcStep {
    /// Replace the request's message by [`EMPTY_REQUEST`]: should the call
    /// go on, the app is asked for its overall health (the endpoint's
    /// `grpc_service` name is meshprobe's, not the app's).
    pub empty_body: bool,
    /// `Pass`: the call goes on (its headers already have); or the answer.
    pub request: Request,
}

impl Engine {
    /// Whether the filter must read this request's body: a possible gRPC
    /// health probe (`content_type` is asked for only then).
    pub fn wants_body(&self, path: &str, content_type: impl FnOnce() -> Option<String>) -> bool {
        path == CHECK_PATH && is_candidate(&self.policy, path, content_type().as_deref())
    }

    /// Captures what the classifier will need of the headers; the host
    /// then removes the probe header (the policy's `authorization.header`).
    pub fn capture(&self, headers: &mut dyn RequestHeaders) -> Captured {
        let header = self.policy.authorization.header.as_deref();
        Captured {
            secret: header.and_then(|h| headers.get(h).map(str::to_string)),
            authorization: headers.get("authorization").map(str::to_string),
        }
    }

    /// The body of a possible gRPC probe so far, and whether it is
    /// complete: `None` while more is needed.
    pub fn on_grpc_request(
        &mut self,
        now: u64,
        store: &mut dyn Store,
        ctx: Ctx,
        (body, end): (&[u8], bool),
        captured: &Captured,
        host: &mut dyn RequestHeaders,
    ) -> Option<GrpcStep> {
        let pass = |empty_body| GrpcStep {
            empty_body,
            request: Request::Pass { new_path: None },
        };
        let message = match frame(body) {
            Frame::Incomplete if !end => return None,
            Frame::Message(m) => m,
            // Not a health request meshprobe can read: the app's to answer.
            Frame::Incomplete | Frame::Invalid(_) => return Some(pass(false)),
        };
        let policy = self.policy.clone();
        let header = policy.authorization.header.as_deref();
        let mut headers = Held {
            header,
            captured,
            host,
        };
        let answer = |reply| {
            Some(GrpcStep {
                empty_body: false,
                request: Request::Answer(Answer::Now(reply, super::Source::Local)),
            })
        };
        match classify_grpc(&policy, message, &mut headers) {
            Decision::PassThrough { .. } => Some(pass(false)),
            Decision::Reply(reply) => answer(reply),
            Decision::Unauthorized {
                endpoint, reply, ..
            } => {
                self.unauthorized(endpoint);
                // Envoy turns a local 404 (403) to a gRPC request into
                // UNIMPLEMENTED (PERMISSION_DENIED).
                reply.map_or(Some(pass(false)), answer)
            }
            Decision::Probe(probe) => {
                let empty_body = policy
                    .endpoints
                    .get(probe.endpoint)
                    .is_some_and(|e| e.grpc_service.as_deref().is_some_and(|s| !s.is_empty()));
                let request = match self.on_probe(now, store, ctx, probe) {
                    Answer::Now(reply, _) if action(&reply) == Some(Action::Continue) => {
                        Request::Pass { new_path: None }
                    }
                    other => Request::Answer(other),
                };
                Some(GrpcStep {
                    empty_body,
                    request,
                })
            }
        }
    }
}
