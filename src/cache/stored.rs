//! A result as stored in shared data: the JSON that serde's derive wrote
//! for [`Report`] (field names and order, `"Pass"`/`"Warn"`/`"Fail"`,
//! `reason` `null` when none), written and read by hand: the derive cost
//! the module some 20 KB. A typed failure is not stored (see
//! [`crate::failure::Failure`]): only the worker that ran a check counts
//! its metrics.

use crate::json::{quote, Value};
use crate::report::{CheckReport, Health, Report};
use std::fmt::Write as _;

fn health_word(h: Health) -> &'static str {
    match h {
        Health::Pass => "Pass",
        Health::Warn => "Warn",
        Health::Fail => "Fail",
    }
}

/// `{"endpoint":..,"health":"Pass","checks":[{"name":..,"health":..,
/// "critical":..,"reason":..,"latency_ms":..,"at_ms":..,
/// "component_type":..}],"at_ms":..,"notes":[..]}`.
pub fn encode(report: &Report) -> Vec<u8> {
    let mut out = format!(
        "{{\"endpoint\":{},\"health\":\"{}\",\"checks\":[",
        quote(&report.endpoint),
        health_word(report.health)
    );
    for (i, c) in report.checks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let reason = c.reason.as_deref().map_or_else(|| "null".into(), quote);
        let _ = write!(
            out,
            "{{\"name\":{},\"health\":\"{}\",\"critical\":{},\"reason\":{reason},\"latency_ms\":{},\"at_ms\":{},\"component_type\":{}}}",
            quote(&c.name),
            health_word(c.health),
            c.critical,
            c.latency_ms,
            c.at_ms,
            quote(&c.component_type)
        );
    }
    let _ = write!(out, "],\"at_ms\":{},\"notes\":[", report.at_ms);
    for (i, n) in report.notes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(n));
    }
    out.push_str("]}");
    out.into_bytes()
}

fn health(v: &Value) -> Option<Health> {
    match v.as_str()? {
        "Pass" => Some(Health::Pass),
        "Warn" => Some(Health::Warn),
        "Fail" => Some(Health::Fail),
        _ => None,
    }
}

fn string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn check(v: &Value) -> Option<CheckReport> {
    Some(CheckReport {
        name: string(v.get("name")?)?,
        health: health(v.get("health")?)?,
        critical: v.get("critical")?.as_bool()?,
        reason: match v.get("reason") {
            None | Some(Value::Null) => None,
            Some(r) => Some(string(r)?),
        },
        failure: None,
        latency_ms: v.get("latency_ms")?.as_u64()?,
        at_ms: v.get("at_ms")?.as_u64()?,
        component_type: string(v.get("component_type")?)?,
    })
}

/// The report in `bytes`, `None` when they are not one.
pub fn decode(bytes: &[u8]) -> Option<Report> {
    let v = crate::json::from_slice(bytes).ok()?;
    let checks = v.get("checks")?.as_array()?;
    let notes = v.get("notes")?.as_array()?;
    Some(Report {
        endpoint: string(v.get("endpoint")?)?,
        health: health(v.get("health")?)?,
        checks: checks.iter().map(check).collect::<Option<_>>()?,
        at_ms: v.get("at_ms")?.as_u64()?,
        notes: notes.iter().map(string).collect::<Option<_>>()?,
    })
}
