//! One request, as the host's HTTP context sees it: its headers, then
//! (for a possible gRPC health probe) its body, then its end. Each phase
//! gives the host one [`Step`] to carry out; where the request stands
//! between phases (reading its body, held, waiting for the engine) is
//! kept here.

use super::{Answer, Captured, Ctx, Request, Store, Vm};
use crate::classify::RequestHeaders;
use crate::render::Reply;

/// What the host does with the request now: first remove the probe
/// header when `strip` (the policy's `authorization.header`, if it has
/// one) and set `:path` when asked (only ever in the headers phase), then
/// [`Then`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub strip: bool,
    pub path: Option<String>,
    pub then: Then,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// The request goes on.
    Continue,
    /// Hold it: the engine answers later (an [`super::Effect::Reply`]).
    Pause,
    /// Hold it and send this reply now.
    Reply(Reply),
}

impl Step {
    fn then(then: Then) -> Step {
        Step {
            strip: false,
            path: None,
            then,
        }
    }
}

/// Where one request stands.
#[derive(Debug, Default)]
pub struct Stream {
    ctx: Ctx,
    /// Handed to the engine and not answered yet.
    waiting: bool,
    /// A possible gRPC health probe whose body is being read, with the
    /// headers the classifier will need.
    reading: Option<Captured>,
    /// Held (answered locally, or until the engine answers).
    held: bool,
    /// The request has no more body to come.
    ended: bool,
}

impl Stream {
    pub fn new(ctx: Ctx) -> Stream {
        Stream {
            ctx,
            ..Stream::default()
        }
    }

    /// The request's headers (`end` when it has no body). A possible gRPC
    /// health probe goes on at once, less the probe header, and its body
    /// is read: a host gives no body to a filter that holds the headers.
    pub fn on_headers(
        &mut self,
        vm: &mut Vm,
        now: impl Fn() -> u64,
        store: &mut dyn Store,
        path: &str,
        headers: &mut dyn RequestHeaders,
        end: bool,
    ) -> Step {
        self.ended = end;
        if vm
            .engine
            .wants_body(path, || headers.get("content-type").map(str::to_string))
        {
            self.reading = Some(vm.engine.capture(headers));
            let then = match end {
                true => {
                    self.on_body(vm, now, store, (Vec::new, true), headers)
                        .0
                        .then
                }
                false => Then::Continue,
            };
            return Step {
                strip: true,
                ..Step::then(then)
            };
        }
        let request = vm.engine.on_request(now, store, self.ctx, path, headers);
        match self.act(vm, request) {
            Ok(step) => step,
            Err(path) => Step {
                strip: true,
                path,
                then: Then::Continue,
            },
        }
    }

    /// The host's context id of the request.
    pub fn ctx(&self) -> Ctx {
        self.ctx
    }

    /// Whether the host must keep this stream for the request's next
    /// phases: a probe waiting for the engine, a body being read, or a
    /// held request whose body is still to come (each chunk is held).
    /// App traffic that went on needs nothing more, nor does a probe
    /// answered at once with no body to come: its end is nothing to the
    /// VM.
    pub fn kept(&self) -> bool {
        self.waiting || self.reading.is_some() || (self.held && !self.ended)
    }

    /// Whether the host must read the body (then [`Stream::on_body`]).
    pub fn reads_body(&self) -> bool {
        self.reading.is_some()
    }

    /// Whether the request is held (answered locally, or until the
    /// engine answers): a body chunk the host need not read is held too.
    pub fn held(&self) -> bool {
        self.held
    }

    /// A body chunk: the body so far (at most [`super::BODY_READ`] bytes
    /// of it, read from the host only when needed) and whether it is
    /// complete; with `true` when the host must replace the message by
    /// [`super::EMPTY_REQUEST`]. The clock is read only when needed too.
    pub fn on_body(
        &mut self,
        vm: &mut Vm,
        now: impl Fn() -> u64,
        store: &mut dyn Store,
        (body, end): (impl FnOnce() -> Vec<u8>, bool),
        headers: &mut dyn RequestHeaders,
    ) -> (Step, bool) {
        self.ended = end;
        let Some(captured) = self.reading.take() else {
            let then = if self.held {
                Then::Pause
            } else {
                Then::Continue
            };
            return (Step::then(then), false);
        };
        let (body, now) = (body(), now());
        let body = (body.as_slice(), end);
        let step = vm
            .engine
            .on_grpc_request(now, store, self.ctx, body, &captured, headers);
        let Some(step) = step else {
            self.reading = Some(captured);
            return (Step::then(Then::Pause), false);
        };
        // The headers went on: nothing to strip or change any more.
        let then = self
            .act(vm, step.request)
            .map_or(Then::Continue, |s| s.then);
        (Step::then(then), step.empty_body)
    }

    /// The request is gone: the VM is told when it was waiting.
    pub fn on_end(&mut self, vm: &mut Vm) {
        if std::mem::take(&mut self.waiting) {
            vm.gone(self.ctx);
        }
    }

    /// The step for the engine's answer; `Err` with the new `:path` (if
    /// any) when the request goes on.
    fn act(&mut self, vm: &mut Vm, request: Request) -> Result<Step, Option<String>> {
        match request {
            Request::Pass { new_path } => Err(new_path),
            Request::Answer(Answer::Now(reply, _)) => {
                self.held = true;
                Ok(Step::then(Then::Reply(reply)))
            }
            Request::Answer(Answer::Waiting { deadline_ms }) => {
                (self.held, self.waiting) = (true, true);
                vm.wait(self.ctx, deadline_ms);
                Ok(Step::then(Then::Pause))
            }
        }
    }
}

#[cfg(test)]
mod tests;
