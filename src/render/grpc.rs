//! The answer to a gRPC health probe. Envoy strips the body of a local
//! reply to a gRPC request, so meshprobe cannot itself answer `SERVING`:
//! a passing endpoint lets the call go on to the application's own health
//! service (`grpc-status` 0 here means "continue"); a failing one is
//! answered locally with `UNAVAILABLE` and the reason as `grpc-message`.

use super::{Parts, Reply, View};
use crate::report::{Health, Report};
use crate::text::join;

/// gRPC `UNAVAILABLE`: what a failing endpoint answers.
pub const UNAVAILABLE: u32 = 14;

/// The gRPC answer to `report`: status 0 (continue to the app) unless it
/// failed; the reason only for callers allowed details.
pub fn reply(report: &Report, view: &View) -> Reply {
    let failed = report.health == Health::Fail;
    let mut message = String::new();
    if failed {
        message = format!("{} check failed", report.endpoint);
        if view.details {
            let reasons: Vec<String> = report
                .checks
                .iter()
                .filter(|c| c.health == Health::Fail)
                .map(|c| format!("{}: {}", c.name, c.reason.as_deref().unwrap_or("failed")))
                .chain(report.notes.iter().cloned())
                .collect();
            if !reasons.is_empty() {
                message = format!("{message}: {}", join(&reasons, "; "));
            }
        } else {
            message.push_str(": reason withheld");
        }
    }
    let code = if failed { UNAVAILABLE } else { 0 };
    Reply::from(Parts {
        // Not sent (the call goes on, or a gRPC error answers it): the
        // status an HTTP probe would get, for the probe metric's code.
        status: report.health.http_status(&view.codes),
        headers: Vec::new(),
        body: Vec::new(),
        grpc: Some(Status {
            code,
            message: message.replace(['\r', '\n'], " "),
        }),
        map: Default::default(),
    })
}

/// The gRPC status of the answer to a gRPC probe: 0 lets the call go on
/// to the application; any other is sent with `message` as the
/// `grpc-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u32,
    pub message: String,
}

/// What the host does with a reply to a gRPC probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// The endpoint passes: the call goes on to the application.
    Continue,
    /// Answer locally with this gRPC status and message.
    Error(u32, &'a str),
}

/// `Some` when `reply` was made by [`reply`].
pub fn action(reply: &Reply) -> Option<Action<'_>> {
    let status = reply.grpc.as_ref()?;
    Some(match status.code {
        0 => Action::Continue,
        code => Action::Error(code, &status.message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Failure;
    use crate::format::Format;
    use crate::report::CheckReport;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn report(fail: bool) -> Report {
        let db = CheckReport::new(
            "db",
            true,
            if fail {
                Err(Failure::GrpcServing { status: 2 })
            } else {
                Ok(())
            },
            3,
        );
        let cache = CheckReport::new("cache", false, Err(Failure::NoHealthyUpstream), 1);
        Report::new("ready", vec![db, cache])
    }

    #[test]
    fn failing_is_unavailable_with_the_reason_or_withheld() {
        let details = View::new(Format::Grpc, false, true);
        let r = reply(&report(true), &details);
        assert_eq!(r.status, 503, "the probe metric counts it as a failure");
        assert_eq!(
            action(&r),
            Some(Action::Error(
                14,
                "ready check failed: db: grpc health status NOT_SERVING"
            ))
        );
        let none = View::new(Format::Grpc, false, false);
        let r = reply(&report(true), &none);
        assert_eq!(
            action(&r),
            Some(Action::Error(14, "ready check failed: reason withheld"))
        );
    }

    #[test]
    fn passing_and_warning_continue_to_the_app() {
        let details = View::new(Format::Grpc, false, true);
        assert_eq!(
            action(&reply(&report(false), &details)),
            Some(Action::Continue)
        );
        assert_eq!(action(&Reply::plain(404, "")), None);
    }
}
