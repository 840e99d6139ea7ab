//! Rendering a report into an HTTP answer: pure functions, one per format.

use crate::policy::Format;
use crate::report::{Health, Report};
use serde_json::Value;
use std::fmt::Write as _;

/// A local reply: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A short plain-text answer (errors, 404, 405...), never cached.
    pub fn plain(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![
                ("content-type", "text/plain; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// How a report is shown to this caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub format: Format,
    pub verbose: bool,
    /// Check names, reasons and latencies may be shown.
    pub details: bool,
}

/// Renders `report` for `view`. For `HEAD` the same reply is sent: Envoy
/// keeps its headers (with the `content-length` a GET would get) and never
/// writes the body.
pub fn render(report: &Report, view: &View) -> Reply {
    let body = match view.format {
        Format::Text => text(report, view),
        Format::Json => json_body(report, view),
    };
    Reply {
        status: report.health.http_status(),
        headers: vec![
            ("content-type", view.format.content_type().into()),
            ("cache-control", "no-store".into()),
            ("vary", "Accept".into()),
            ("x-content-type-options", "nosniff".into()),
        ],
        body,
    }
}

fn word(health: Health) -> &'static str {
    match health {
        Health::Pass => "ok",
        Health::Warn => "warn",
        Health::Fail => "fail",
    }
}

/// `ok` / `warn` / `fail`; with `?verbose` (and details allowed) one line per
/// check, Kubernetes style, then `<endpoint> check passed|failed`.
fn text(report: &Report, view: &View) -> Vec<u8> {
    if !(view.verbose && view.details) {
        return format!("{}\n", word(report.health)).into_bytes();
    }
    let mut out = String::new();
    for c in &report.checks {
        let reason = c.reason.as_deref().unwrap_or("");
        let line = match c.health {
            Health::Pass => format!("[+]{} ok\n", c.name),
            Health::Warn => format!("[!]{} warn: {}\n", c.name, reason),
            Health::Fail => format!("[-]{} failed: {}\n", c.name, reason),
        };
        out.push_str(&line);
    }
    let verdict = if report.health == Health::Fail {
        "failed"
    } else {
        "passed"
    };
    out.push_str(&format!("{} check {verdict}\n", report.endpoint));
    out.into_bytes()
}

/// `{"status":"pass|warn|fail","checks":{"db":{"status":..,"reason":..,"latency_ms":..}}}`,
/// keys in that order, checks in policy order; status only when details are
/// not allowed.
fn json_body(report: &Report, view: &View) -> Vec<u8> {
    let mut out = format!("{{\"status\":\"{}\"", report.health.as_str());
    if view.details {
        out.push_str(",\"checks\":{");
        for (i, c) in report.checks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{}:{{\"status\":\"{}\"",
                json_string(&c.name),
                c.health.as_str()
            );
            if let Some(reason) = &c.reason {
                let _ = write!(out, ",\"reason\":{}", json_string(reason));
            }
            let _ = write!(out, ",\"latency_ms\":{}}}", c.latency_ms);
        }
        out.push('}');
    }
    out.push_str("}\n");
    out.into_bytes()
}

/// A JSON string literal, escaped.
fn json_string(s: &str) -> String {
    Value::from(s).to_string()
}

#[cfg(test)]
mod tests;
