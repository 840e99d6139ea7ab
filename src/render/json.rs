//! The JSON views: meshprobe's own, django-health-check's map, and
//! `application/health+json` (draft-inadarei-api-health-check).

use super::time::rfc3339;
use super::View;
use crate::policy::Service;
use crate::report::{Health, Report};
use crate::text::join;
use std::fmt::Write as _;

/// A JSON string literal, escaped.
fn string(s: &str) -> String {
    crate::json::quote(s)
}

fn notes(out: &mut String, key: &str, report: &Report) {
    if report.notes.is_empty() {
        return;
    }
    let items: Vec<String> = report.notes.iter().map(|n| string(n)).collect();
    let _ = write!(out, ",\"{key}\":[{}]", join(&items, ","));
}

/// `{"status":"pass|warn|fail","checks":{"db":{"status":..,"reason":..,"latency_ms":..}}}`,
/// keys in that order, checks in policy order; status only without details.
pub fn json(report: &Report, view: &View) -> String {
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
                string(&c.name),
                c.health.as_str()
            );
            if let Some(reason) = &c.reason {
                let _ = write!(out, ",\"reason\":{}", string(reason));
            }
            let _ = write!(out, ",\"latency_ms\":{}}}", c.latency_ms);
        }
        out.push('}');
        notes(&mut out, "warnings", report);
    }
    out.push_str("}\n");
    out
}

/// django-health-check's map: `{"db": "working", "cache": "<error text>"}`.
/// Without details one entry for the endpoint: `working` or
/// `reason withheld`.
pub fn dhc(report: &Report, view: &View) -> String {
    let entry = |health: Health, reason: Option<&str>| match health {
        Health::Pass => "working".to_string(),
        _ => reason.unwrap_or("unavailable").to_string(),
    };
    let mut out = String::from("{");
    if view.details {
        for (i, c) in report.checks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{}:{}",
                string(&c.name),
                string(&entry(c.health, c.reason.as_deref()))
            );
        }
    } else {
        let value = entry(report.health, Some("reason withheld"));
        let _ = write!(out, "{}:{}", string(&report.endpoint), string(&value));
    }
    out.push_str("}\n");
    out
}

/// `application/health+json`: `status`, then (with details) `serviceId`,
/// `version`, `description`, `notes` and `checks` keyed
/// `"<name>:responseTime"`, each an array of one object with
/// `componentType`, `observedValue`, `observedUnit` `ms`, `status`, `time`
/// and, unless it passed, `output`.
pub fn health(report: &Report, view: &View, service: &Service) -> String {
    let mut out = format!("{{\"status\":\"{}\"", report.health.as_str());
    if view.details {
        for (key, value) in [
            ("serviceId", &service.id),
            ("version", &service.version),
            ("description", &service.description),
        ] {
            if let Some(v) = value {
                let _ = write!(out, ",\"{key}\":{}", string(v));
            }
        }
        notes(&mut out, "notes", report);
        out.push_str(",\"checks\":{");
        for (i, c) in report.checks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{}:[{{\"componentType\":{},\"observedValue\":{},\"observedUnit\":\"ms\",\"status\":\"{}\",\"time\":\"{}\"",
                string(&format!("{}:responseTime", c.name)),
                string(&c.component_type),
                c.latency_ms,
                c.health.as_str(),
                rfc3339(c.at_ms)
            );
            if let Some(reason) = &c.reason {
                let _ = write!(out, ",\"output\":{}", string(reason));
            }
            out.push_str("}]");
        }
        out.push('}');
    }
    out.push_str("}\n");
    out
}
