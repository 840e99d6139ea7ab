//! Decoding and validating one check.

use super::decode::{index, is_token, type_name, Errors, Obj};
use super::{
    fields, BodyExpect, Check, CheckKind, StatusSet, DEFAULT_MAX_ADMIN_BODY, DEFAULT_MAX_BODY,
    MAX_DURATION_MS,
};
use crate::duration::format_millis;
use crate::json::Value;

/// Largest `max_body` accepted: Envoy buffers the whole callout answer.
const MAX_MAX_BODY: u64 = 16 * 1024 * 1024;

pub(super) fn check(value: &Value, path: &str, errs: &mut Errors) -> Option<Check> {
    let obj = Obj::open(value, path, fields::CHECK, errs)?;
    let name = obj.required_string("name", errs).and_then(|n| {
        if n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            errs.push(
                &obj.path_of("name"),
                format!("{n:?} must be non-empty and use only A-Z, a-z, 0-9, '-' and '_'"),
            );
            return None;
        }
        Some(n)
    });
    let cluster = obj.required_string("cluster", errs).and_then(|c| {
        if c.is_empty() {
            errs.push(&obj.path_of("cluster"), "must not be empty");
            return None;
        }
        Some(c)
    });
    let mut kind = kind(&obj, errs);
    let grpc = matches!(kind, CheckKind::Grpc { .. });
    if grpc {
        for field in HTTP_ONLY {
            if obj.get(field).is_some() {
                errs.push(
                    &obj.path_of(field),
                    "does not go with kind \"grpc\" (HTTP checks only)",
                );
            }
        }
    } else if obj.get("metadata").is_some() {
        errs.push(&obj.path_of("metadata"), "goes with kind \"grpc\" only");
    }
    if let Some(admin_path) = kind.admin_path() {
        for field in ["method", "path", "expect_body"] {
            if obj.get(field).is_some() {
                errs.push(
                    &obj.path_of(field),
                    format!("is set by kind (GET {admin_path}); leave it out"),
                );
            }
        }
    }
    let default_method = if grpc { "POST" } else { "GET" };
    let method = obj
        .string("method", errs)
        .unwrap_or_else(|| default_method.into());
    if !is_token(&method) {
        errs.push(
            &obj.path_of("method"),
            format!("{method:?} is not an HTTP method"),
        );
    }
    let call_path = obj
        .string("path", errs)
        .or_else(|| kind.admin_path().map(String::from))
        .or_else(|| grpc.then(|| crate::grpc::CHECK_PATH.into()))
        .unwrap_or_else(|| "/".into());
    if !call_path.starts_with('/') || call_path.bytes().any(|b| b <= 0x20 || b == 0x7f) {
        errs.push(
            &obj.path_of("path"),
            format!("{call_path:?} must start with '/' and hold no spaces"),
        );
    }
    let authority = obj.string("authority", errs);
    let mut headers = Vec::new();
    let headers_field = if grpc { "metadata" } else { "headers" };
    if let Some(map) = obj.object(headers_field, errs) {
        for (k, v) in map.iter() {
            let hpath = obj.path_of(headers_field) + "." + k;
            let lower = k.to_ascii_lowercase();
            if !is_token(&lower) || lower.starts_with(':') {
                errs.push(&hpath, "is not a valid header name (pseudo-headers are set by method, path and authority)");
                continue;
            }
            match v {
                Value::String(s) if !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) => {
                    headers.push((lower, s.clone()))
                }
                Value::String(_) => errs.push(&hpath, "header values cannot hold CR, LF or NUL"),
                other => errs.push(
                    &hpath,
                    format!("expected a string, found {}", type_name(other)),
                ),
            }
        }
    }
    let timeout_ms = obj.duration("timeout", errs);
    if timeout_ms.is_some_and(|t| t > MAX_DURATION_MS) {
        errs.push(
            &obj.path_of("timeout"),
            format!("must be at most {}", format_millis(MAX_DURATION_MS)),
        );
    }
    let expect_status = match obj.array("expect_status", errs) {
        None => StatusSet(vec![(200, 299)]),
        Some(items) => status_set(items, &obj.path_of("expect_status"), errs),
    };
    let expect_body = obj
        .get("expect_body")
        .and_then(|v| body_expect(v, &obj.path_of("expect_body"), errs));
    let default_max_body = match kind {
        CheckKind::Http => DEFAULT_MAX_BODY,
        _ => DEFAULT_MAX_ADMIN_BODY,
    };
    let max_body = obj.number("max_body", errs).unwrap_or(default_max_body);
    if max_body == 0 || max_body > MAX_MAX_BODY {
        errs.push(
            &obj.path_of("max_body"),
            format!("must be between 1 and {MAX_MAX_BODY} bytes"),
        );
    }
    let warn_after_ms = obj.duration("warn_after", errs);
    if let (Some(w), Some(t)) = (warn_after_ms, timeout_ms) {
        if w >= t {
            errs.push(
                &obj.path_of("warn_after"),
                format!(
                    "{} is not below the timeout {}: the check would never warn",
                    format_millis(w),
                    format_millis(t)
                ),
            );
        }
    }
    let component_type = obj
        .string("component_type", errs)
        .unwrap_or_else(|| "component".into());
    let critical = obj.bool("critical", errs).unwrap_or(true);
    let cluster = cluster?;
    if let CheckKind::Grpc { upstream, .. } = &mut kind {
        *upstream = grpc_upstream(&cluster, authority.as_deref(), &obj, errs);
    }
    Some(Check {
        name: name?,
        kind,
        authority: authority.unwrap_or_else(|| cluster.clone()),
        cluster,
        method,
        path: call_path,
        headers,
        timeout_ms,
        expect_status,
        expect_body,
        max_body,
        warn_after_ms,
        component_type,
        critical,
    })
}

/// Fields a `grpc` check refuses.
const HTTP_ONLY: &[&str] = &[
    "method",
    "path",
    "headers",
    "expect_status",
    "expect_body",
    "max_body",
];

/// What Envoy's `proxy_grpc_call` gets for a `grpc` check: a
/// `GrpcService` proto naming the cluster (and the authority, if set).
fn grpc_upstream(
    cluster: &str,
    authority: Option<&str>,
    obj: &Obj<'_>,
    errs: &mut Errors,
) -> String {
    let authority = authority.unwrap_or("");
    if obj.get("authority").is_some()
        && (authority.is_empty() || !authority.bytes().all(|b| b.is_ascii_graphic()))
    {
        errs.push(
            &obj.path_of("authority"),
            format!("{authority:?} is not a valid :authority"),
        );
    }
    match crate::grpc::service_config(cluster, authority) {
        Some(config) => config,
        None => {
            errs.push(
                &obj.path_of("cluster"),
                format!(
                    "cluster and authority together must be at most {} bytes with kind \"grpc\"",
                    crate::grpc::MAX_UPSTREAM
                ),
            );
            String::new()
        }
    }
}

/// The words of `kind`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Server,
    Cluster,
    Memory,
    Grpc,
}

const KINDS: &[(&str, Kind)] = &[
    ("http", Kind::Http),
    ("envoy_server", Kind::Server),
    ("envoy_cluster", Kind::Cluster),
    ("envoy_memory", Kind::Memory),
    ("grpc", Kind::Grpc),
];

/// `kind` and the fields that go with it; a field of another kind is refused.
fn kind(obj: &Obj<'_>, errs: &mut Errors) -> CheckKind {
    let word = obj.choice("kind", KINDS, errs).unwrap_or(Kind::Http);
    let mut allowed: &[&str] = &[];
    let kind = match word {
        Kind::Http => CheckKind::Http,
        Kind::Server => CheckKind::EnvoyServer,
        Kind::Cluster => {
            allowed = &["target_cluster", "min_healthy_percent"];
            let cluster = obj
                .required_string("target_cluster", errs)
                .unwrap_or_default();
            if cluster.is_empty() && obj.get("target_cluster").is_some() {
                errs.push(&obj.path_of("target_cluster"), "must not be empty");
            }
            let min = obj.number("min_healthy_percent", errs).unwrap_or(100);
            if min > 100 {
                errs.push(
                    &obj.path_of("min_healthy_percent"),
                    format!("{min} is not a percentage (0-100)"),
                );
            }
            CheckKind::EnvoyCluster {
                cluster,
                min_healthy_percent: min.min(100),
            }
        }
        Kind::Memory => {
            allowed = &["memory_limit"];
            let limit = obj.number("memory_limit", errs);
            if obj.get("memory_limit").is_none() {
                errs.push(
                    &obj.path_of("memory_limit"),
                    "is required with kind envoy_memory",
                );
            } else if limit == Some(0) {
                errs.push(&obj.path_of("memory_limit"), "must be greater than zero");
            }
            CheckKind::EnvoyMemory {
                limit_bytes: limit.unwrap_or(0),
            }
        }
        Kind::Grpc => {
            allowed = &["service"];
            let service = obj.string("service", errs).unwrap_or_default();
            if service.len() > crate::grpc::MAX_SERVICE {
                errs.push(
                    &obj.path_of("service"),
                    format!("must be at most {} bytes", crate::grpc::MAX_SERVICE),
                );
            }
            CheckKind::Grpc {
                service,
                upstream: String::new(),
            }
        }
    };
    for field in [
        "target_cluster",
        "min_healthy_percent",
        "memory_limit",
        "service",
    ] {
        if !allowed.contains(&field) && obj.get(field).is_some() {
            errs.push(
                &obj.path_of(field),
                format!(
                    "does not go with kind {:?}",
                    KINDS
                        .iter()
                        .find(|(_, k)| *k == word)
                        .map_or("http", |(w, _)| *w)
                ),
            );
        }
    }
    kind
}

fn body_expect(value: &Value, path: &str, errs: &mut Errors) -> Option<BodyExpect> {
    let obj = Obj::open(value, path, fields::BODY, errs)?;
    let contains = obj.string("contains", errs);
    let pointer = obj.string("pointer", errs);
    let equals = obj.get("equals");
    let one_of = obj.array("one_of", errs);
    match (contains, pointer) {
        (Some(_), Some(_)) => {
            errs.push(path, "set either contains or pointer, not both");
            None
        }
        (None, None) => {
            errs.push(path, "set contains, or pointer with equals or one_of");
            None
        }
        (Some(text), None) => {
            if equals.is_some() || one_of.is_some() {
                errs.push(path, "equals and one_of go with pointer, not contains");
            }
            if text.is_empty() {
                errs.push(&obj.path_of("contains"), "must not be empty");
            }
            Some(BodyExpect::Contains(text))
        }
        (None, Some(pointer)) => {
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                errs.push(
                    &obj.path_of("pointer"),
                    format!("{pointer:?} is not a JSON pointer (it starts with '/', e.g. \"/status/indicator\")"),
                );
            }
            let accepted = match (equals, one_of) {
                (Some(v), None) => vec![v.clone()],
                (None, Some(items)) if !items.is_empty() => items.clone(),
                (None, Some(_)) => {
                    errs.push(&obj.path_of("one_of"), "must list at least one value");
                    return None;
                }
                (Some(_), Some(_)) => {
                    errs.push(path, "set either equals or one_of, not both");
                    return None;
                }
                (None, None) => {
                    errs.push(path, "pointer needs equals or one_of");
                    return None;
                }
            };
            Some(BodyExpect::Pointer { pointer, accepted })
        }
    }
}

fn status_set(items: &[Value], path: &str, errs: &mut Errors) -> StatusSet {
    let mut ranges = Vec::new();
    if items.is_empty() {
        errs.push(path, "must list at least one status");
    }
    for (i, v) in items.iter().enumerate() {
        let item_path = index(path, i);
        let range = match v {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .map(|n| (n, n)),
            Value::String(s) => s.split_once('-').and_then(|(lo, hi)| {
                Some((
                    lo.trim().parse::<u16>().ok()?,
                    hi.trim().parse::<u16>().ok()?,
                ))
            }),
            _ => None,
        };
        match range {
            Some((lo, hi))
                if (100..=599).contains(&lo) && (100..=599).contains(&hi) && lo <= hi =>
            {
                ranges.push((lo, hi))
            }
            _ => errs.push(
                &item_path,
                format!("{v} is not a status (100-599) or a range like \"200-299\""),
            ),
        }
    }
    StatusSet(ranges)
}
