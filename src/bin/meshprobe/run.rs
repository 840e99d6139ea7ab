//! `meshprobe run POLICY ENDPOINT --cluster NAME=URL...`: one endpoint's
//! checks against real dependencies, judged, aggregated and rendered by the
//! module's core ([`ProbeRun`], `outcome`, `render`). Each callout goes to
//! the URL its cluster is mapped to; what Envoy would hand the module when
//! a dependency cannot be reached (its local 503 replies, or no answer at
//! the callout's timeout) is handed to the core the same way, so the
//! reasons are the module's.
//!
//! TODO(engine): once the engine lives in the core, drive the run through
//! it (cache, shared runs) instead of `ProbeRun` directly.

use crate::check::agent;
use crate::grpc_call::{GrpcAnswer, GrpcTarget, DEADLINE_EXCEEDED};
use meshprobe::grpc::GrpcResponse;
use meshprobe::outcome::{body_bytes_needed, CalloutResponse, DispatchError};
use meshprobe::policy::{CheckKind, Format, Policy};
use meshprobe::render::{render, View};
use meshprobe::report::Health;
use meshprobe::run::ProbeRun;
use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest body a callout reads (the largest `max_body` the policy accepts).
const READ_LIMIT: u64 = 16 * 1024 * 1024 + 1;

/// `NAME=URL` of `--cluster`.
pub fn parse_cluster(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, url)) if !name.is_empty() && url.starts_with("http://") => {
            Ok((name.to_string(), url.trim_end_matches('/').to_string()))
        }
        _ => Err(format!("expected NAME=http://HOST:PORT, found {text:?}")),
    }
}

/// What a callout brought back, as Envoy would hand it to the module.
enum Answer {
    Response {
        status: String,
        body: Vec<u8>,
    },
    /// Envoy's own local reply (e.g. 503 `upstream connect error ...`).
    EnvoyReply {
        status: u16,
        body: String,
    },
    /// The answer to a `grpc` check's call.
    Grpc(GrpcAnswer),
}

fn envoy_reset(reason: &str) -> Answer {
    Answer::EnvoyReply {
        status: 503,
        body: format!(
            "upstream connect error or disconnect/reset before headers. reset reason: {reason}"
        ),
    }
}

/// One callout, on its own thread.
fn call(url: String, headers: Vec<(String, String)>, timeout_ms: u64) -> Option<Answer> {
    let mut builder = ureq::http::Request::builder().uri(&url);
    for (k, v) in &headers {
        builder = match k.as_str() {
            ":method" => builder.method(v.as_str()),
            ":authority" => builder.header("host", v.as_str()),
            ":path" => builder,
            _ => builder.header(k.as_str(), v.as_str()),
        };
    }
    let request = builder.body(()).ok()?;
    // The run enforces the timeout itself; this only ends the thread.
    match agent(timeout_ms.saturating_add(1000)).run(request) {
        Ok(mut resp) => {
            let status = resp.status().as_str().to_string();
            match resp.body_mut().with_config().limit(READ_LIMIT).read_to_vec() {
                Ok(body) => Some(Answer::Response { status, body }),
                Err(_) => None,
            }
        }
        Err(ureq::Error::Timeout(_)) => None,
        Err(ureq::Error::Io(e)) => Some(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => envoy_reset(
                "remote connection failure, transport failure reason: delayed connect error: Connection refused",
            ),
            std::io::ErrorKind::TimedOut => return None,
            _ => envoy_reset("connection termination"),
        }),
        Err(ureq::Error::HostNotFound | ureq::Error::ConnectionFailed) => {
            Some(Answer::EnvoyReply {
                status: 503,
                body: "no healthy upstream".into(),
            })
        }
        // Envoy answers an upstream that does not speak HTTP with a 502.
        Err(_) => Some(Answer::EnvoyReply {
            status: 502,
            body: "upstream connect error or disconnect/reset before headers. reset reason: protocol error".into(),
        }),
    }
}

fn is_grpc(policy: &Policy, run: &ProbeRun, slot: usize) -> bool {
    run.check(policy, slot)
        .is_some_and(|c| matches!(c.kind, CheckKind::Grpc { .. }))
}

/// The call of a `grpc` check: its service, metadata, and authority (the
/// URL's when the check names none: Envoy would send the cluster name).
fn grpc_target(
    policy: &Policy,
    run: &ProbeRun,
    slot: usize,
    base: &str,
    metadata: &[(&str, &str)],
    timeout_ms: u64,
) -> Option<GrpcTarget> {
    let check = run.check(policy, slot)?;
    let CheckKind::Grpc { service, .. } = &check.kind else {
        return None;
    };
    Some(GrpcTarget {
        url: base.to_string(),
        authority: (check.authority != check.cluster).then(|| check.authority.clone()),
        service: service.clone(),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timeout_ms,
    })
}

fn now_ms(base_ms: u64, t0: Instant) -> u64 {
    base_ms.saturating_add(u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX))
}

pub fn run(
    policy: &Policy,
    endpoint: &str,
    clusters: &[(String, String)],
    format: Option<&str>,
    verbose: bool,
) -> Result<ExitCode, String> {
    let Some(ep_index) = policy.endpoint_by_name(endpoint) else {
        let names: Vec<&str> = policy.endpoints.iter().map(|e| e.name.as_str()).collect();
        return Err(format!(
            "no endpoint {endpoint:?} in the policy (endpoints: {})",
            names.join(", ")
        ));
    };
    let ep = policy
        .endpoints
        .get(ep_index)
        .ok_or_else(|| format!("no endpoint {endpoint:?}"))?;
    let format = match format {
        None => ep.format,
        Some(word) => Format::ALL
            .iter()
            .find(|(name, _)| *name == word)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown format {word:?}; use one of: {}", names.join(", "))
            })?,
    };

    let base_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let t0 = Instant::now();
    let mut run = ProbeRun::start(policy, ep_index, base_ms);
    let (tx, rx) = mpsc::channel();
    // (slot, when its timeout passes)
    let mut pending: Vec<(usize, u64)> = Vec::new();
    for callout in run.callouts(policy) {
        let Some((_, base)) = clusters.iter().find(|(name, _)| name == callout.cluster) else {
            let now = now_ms(base_ms, t0);
            run.dispatch_failed(policy, callout.slot, DispatchError::BadArgument, now);
            continue;
        };
        let (slot, timeout_ms, tx) = (callout.slot, callout.timeout_ms, tx.clone());
        pending.push((slot, base_ms.saturating_add(timeout_ms)));
        if callout.grpc.is_some() {
            let target = grpc_target(policy, &run, slot, base, &callout.headers, timeout_ms);
            std::thread::spawn(move || {
                let answer = target.and_then(crate::grpc_call::call).map(Answer::Grpc);
                let _ = tx.send((slot, answer));
            });
            continue;
        }
        let path = callout
            .headers
            .iter()
            .find(|(k, _)| *k == ":path")
            .map_or("/", |(_, v)| *v);
        let url = format!("{base}{path}");
        let headers: Vec<(String, String)> = callout
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        std::thread::spawn(move || {
            let answer = call(url, headers, timeout_ms);
            let _ = tx.send((slot, answer));
        });
    }
    drop(tx);

    let report = loop {
        let now = now_ms(base_ms, t0);
        pending.retain(|&(slot, due)| {
            if now < due {
                return true;
            }
            if is_grpc(policy, &run, slot) {
                // Envoy ends the call at its timeout: DEADLINE_EXCEEDED.
                let late = GrpcResponse {
                    code: DEADLINE_EXCEEDED,
                    message: "",
                    body: &[],
                };
                run.grpc_response(policy, slot, &late, now);
                return false;
            }
            let none = CalloutResponse {
                status: None,
                body: &[],
                body_size: 0,
            };
            run.response(policy, slot, &none, now);
            false
        });
        if let Some(report) = run.poll(policy, now) {
            break report;
        }
        let next = pending
            .iter()
            .map(|&(_, due)| due)
            .fold(run.deadline_at(), u64::min);
        let wait = Duration::from_millis(next.saturating_sub(now).max(1));
        let Ok((slot, answer)) = rx.recv_timeout(wait) else {
            continue;
        };
        let now = now_ms(base_ms, t0);
        if !pending.iter().any(|&(s, _)| s == slot) {
            continue;
        }
        pending.retain(|&(s, _)| s != slot);
        let (status, body) = match answer {
            Some(Answer::Grpc(g)) => {
                let response = GrpcResponse {
                    code: g.code,
                    message: &g.message,
                    body: &g.body,
                };
                run.grpc_response(policy, slot, &response, now);
                continue;
            }
            None if is_grpc(policy, &run, slot) => {
                let late = GrpcResponse {
                    code: DEADLINE_EXCEEDED,
                    message: "",
                    body: &[],
                };
                run.grpc_response(policy, slot, &late, now);
                continue;
            }
            Some(Answer::Response { status, body }) => (Some(status), body),
            Some(Answer::EnvoyReply { status, body }) => {
                (Some(status.to_string()), body.into_bytes())
            }
            None => (None, Vec::new()),
        };
        let wanted = run
            .check(policy, slot)
            .map_or(0, |c| body_bytes_needed(c, status.as_deref(), body.len()));
        let response = CalloutResponse {
            status: status.as_deref(),
            body: body.get(..wanted).unwrap_or(&body),
            body_size: body.len(),
        };
        run.response(policy, slot, &response, now);
    };

    let view = View {
        format,
        verbose,
        details: true,
        codes: ep.status_codes,
        degraded_header: ep.degraded_header,
    };
    let reply = render(&report, &view, &policy.service);
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(&reply.body);
    if !reply.body.ends_with(b"\n") {
        let _ = stdout.write_all(b"\n");
    }
    eprintln!(
        "meshprobe run: {} {} ({})",
        ep.name,
        report.health.as_str(),
        reply.status
    );
    Ok(if report.health == Health::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
