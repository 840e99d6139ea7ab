//! The host layer: the only code that talks to proxy-wasm. It reads headers,
//! dispatches callouts, keeps token -> check slot, and sends the local reply;
//! every decision is the pure core's.

use crate::classify::{classify, Decision, Probe, RequestHeaders};
use crate::outcome::{body_bytes_needed, CalloutResponse, DispatchError};
use crate::policy::Policy;
use crate::render::{render, Reply, View};
use crate::run::ProbeRun;
use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, Status};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { policy: None }) });
}}

/// Milliseconds of the host clock.
fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

struct Root {
    policy: Option<Rc<Policy>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("meshprobe: cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        match Policy::from_json(&bytes, &|name| std::env::var(name).ok()) {
            Ok(policy) => {
                info!(
                    "meshprobe: policy loaded: {} endpoint(s), {} check(s)",
                    policy.endpoints.len(),
                    policy.checks.len()
                );
                self.policy = Some(Rc::new(policy));
                true
            }
            Err(errors) => {
                for e in &errors {
                    error!("meshprobe: invalid policy: {e}");
                }
                error!("meshprobe: policy refused ({} error(s))", errors.len());
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            policy: self.policy.clone(),
            in_flight: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Reads request headers for the classifier.
struct HostHeaders;

impl RequestHeaders for HostHeaders {
    fn get(&mut self, name: &str) -> Option<String> {
        request_header(name)
    }
}

/// A probe waiting for its callouts.
struct InFlight {
    probe: Probe,
    run: ProbeRun,
    /// Callout token -> slot of the run.
    tokens: Vec<(u32, usize)>,
}

struct Filter {
    policy: Option<Rc<Policy>>,
    in_flight: Option<InFlight>,
}

impl Filter {
    fn send(reply: &Reply) {
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        if let Err(status) =
            hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body))
        {
            warn!("meshprobe: local reply not sent: {status:?}");
        }
    }

    fn start(&mut self, policy: &Policy, mut probe: Probe) -> Action {
        let now = now_ms();
        let mut run = ProbeRun::start_with(
            policy,
            probe.endpoint,
            &probe.checks,
            std::mem::take(&mut probe.notes),
            now,
        );
        let mut tokens = Vec::new();
        for callout in run.callouts(policy) {
            let timeout = Duration::from_millis(callout.timeout_ms);
            match hostcalls::dispatch_http_call(
                callout.cluster,
                callout.headers.clone(),
                None,
                vec![],
                timeout,
            ) {
                Ok(token) => tokens.push((token, callout.slot)),
                Err(status) => {
                    let err = match status {
                        Status::BadArgument => DispatchError::BadArgument,
                        other => DispatchError::Other(other as u32),
                    };
                    debug!(
                        "meshprobe: dispatch to {:?} failed: {status:?}",
                        callout.cluster
                    );
                    run.dispatch_failed(policy, callout.slot, err, now);
                }
            }
        }
        match run.poll(policy, now) {
            Some(report) => {
                Self::answer(policy, &probe, &report);
                Action::Pause
            }
            None => {
                self.in_flight = Some(InFlight { probe, run, tokens });
                Action::Pause
            }
        }
    }

    fn answer(policy: &Policy, probe: &Probe, report: &crate::report::Report) {
        let Some(ep) = policy.endpoints.get(probe.endpoint) else {
            return;
        };
        let view = View {
            format: probe.format,
            verbose: probe.verbose,
            details: probe.details,
            codes: ep.status_codes,
            degraded_header: ep.degraded_header,
        };
        Self::send(&render(report, &view, &policy.service));
    }
}

impl Context for Filter {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let (Some(policy), Some(flight)) = (self.policy.clone(), self.in_flight.as_mut()) else {
            return;
        };
        let Some(pos) = flight.tokens.iter().position(|(t, _)| *t == token_id) else {
            return;
        };
        let (_, slot) = flight.tokens.swap_remove(pos);
        let now = now_ms();
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten();
        let wanted = flight
            .run
            .check(&policy, slot)
            .map_or(0, |c| body_bytes_needed(c, status.as_deref(), body_size));
        let body = if wanted > 0 {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, wanted)
                .ok()
                .flatten()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let response = CalloutResponse {
            status: status.as_deref(),
            body: &body,
            body_size,
        };
        flight.run.response(&policy, slot, &response, now);
        if let Some(report) = flight.run.poll(&policy, now) {
            Self::answer(&policy, &flight.probe, &report);
            self.in_flight = None;
        }
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(policy) = self.policy.clone() else {
            return Action::Continue;
        };
        let path = request_header(":path").unwrap_or_default();
        match classify(&policy, &path, &mut HostHeaders) {
            Decision::PassThrough { new_path } => {
                if let Some(name) = &policy.authorization.header {
                    // The secret never reaches the application.
                    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
                }
                if let Some(new_path) = new_path {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        ":path",
                        Some(&new_path),
                    );
                }
                Action::Continue
            }
            Decision::Reply(reply) => {
                Self::send(&reply);
                Action::Pause
            }
            Decision::Probe(probe) => self.start(&policy, probe),
        }
    }
}
