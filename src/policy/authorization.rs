//! Decoding the `authorization` object: secrets, sources, peers.

use super::decode::{index, is_token, type_name, Errors, Obj};
use super::{fields, Authorization, Unauthorized};
use crate::cidr::Cidr;
use crate::json::Value;

/// The values of `on_unauthorized`.
pub(super) const UNAUTHORIZED_CHOICES: &[(&str, Unauthorized)] = &[
    ("not_found", Unauthorized::NotFound),
    ("forbidden", Unauthorized::Forbidden),
    ("pass_through", Unauthorized::PassThrough),
];

pub(super) fn authorization(
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<Authorization> {
    let obj = Obj::open(value, "authorization", fields::AUTHORIZATION, errs)?;
    let header = obj.string("header", errs).and_then(|h| {
        let lower = h.to_ascii_lowercase();
        if !is_token(&lower) || lower.starts_with(':') {
            errs.push(
                &obj.path_of("header"),
                format!("{h:?} is not a valid header name"),
            );
            return None;
        }
        if matches!(
            lower.as_str(),
            "host" | "authorization" | "content-length" | "transfer-encoding" | "connection"
        ) {
            errs.push(
                &obj.path_of("header"),
                format!("{h:?} cannot be the probe header"),
            );
            return None;
        }
        Some(lower)
    });

    let mut secrets = Vec::new();
    for (i, v) in obj.array("secrets", errs).into_iter().flatten().enumerate() {
        let path = index("authorization.secrets", i);
        if let Some(s) = secret(v, &path, env, errs) {
            secrets.push(s);
        }
    }

    let path_prefix = obj.string("path_prefix", errs).and_then(|p| {
        let trimmed = p.trim_end_matches('/');
        if !p.starts_with('/') || trimmed.is_empty() || p.contains(['?', '#']) {
            errs.push(
                &obj.path_of("path_prefix"),
                format!(
                    "{p:?} must start with '/' and name a path below the root, e.g. \"/health\""
                ),
            );
            return None;
        }
        Some(trimmed.to_string())
    });

    let query_param = obj.string("query_param", errs).and_then(|q| {
        if q.is_empty() || q.contains(['&', '=', '?', '#', ' ']) {
            errs.push(
                &obj.path_of("query_param"),
                format!("{q:?} is not a usable query parameter name"),
            );
            return None;
        }
        Some(q)
    });
    let bearer = obj.bool("bearer", errs).unwrap_or(false);
    let on_unauthorized = obj
        .choice("on_unauthorized", UNAUTHORIZED_CHOICES, errs)
        .unwrap_or(Unauthorized::NotFound);

    let carriers = header.is_some() || path_prefix.is_some() || query_param.is_some() || bearer;
    if !secrets.is_empty() && !carriers {
        errs.push(
            "authorization",
            "secrets are set but no way to present them: set header, path_prefix, query_param or bearer",
        );
    }
    let sources = sources(&obj, errs);
    let mut detail_peers = Vec::new();
    for (i, v) in obj
        .array("detail_peers", errs)
        .into_iter()
        .flatten()
        .enumerate()
    {
        match v.as_str() {
            Some(p) if !p.is_empty() && p != "*" => detail_peers.push(p.to_string()),
            _ => errs.push(
                &index(&obj.path_of("detail_peers"), i),
                format!("{v} is not a peer identity (e.g. \"spiffe://cluster.local/ns/monitoring/sa/prober\")"),
            ),
        }
    }
    Some(Authorization {
        header,
        secrets,
        path_prefix,
        query_param,
        bearer,
        on_unauthorized,
        sources,
        detail_peers,
    })
}

/// A `sources` list of address ranges; `None` when absent.
pub(super) fn sources(obj: &Obj<'_>, errs: &mut Errors) -> Option<Vec<Cidr>> {
    let items = obj.array("sources", errs)?;
    if items.is_empty() {
        errs.push(
            &obj.path_of("sources"),
            "must list at least one range (leave it out to accept probes from anywhere)",
        );
    }
    let mut ranges = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let path = index(&obj.path_of("sources"), i);
        match v.as_str().map(Cidr::parse) {
            Some(Ok(c)) => ranges.push(c),
            Some(Err(reason)) => errs.push(&path, reason),
            None => errs.push(
                &path,
                format!(
                    "expected a range like \"10.0.0.0/8\", found {}",
                    type_name(v)
                ),
            ),
        }
    }
    Some(ranges)
}

fn secret(
    value: &Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<String> {
    let obj = Obj::open(value, path, fields::SECRET, errs)?;
    let inline = obj.string("value", errs);
    let from_env = obj.string("env", errs);
    let (field, secret) = match (inline, from_env) {
        (Some(_), Some(_)) => {
            errs.push(path, "set either value or env, not both");
            return None;
        }
        (None, None) => {
            errs.push(path, "set value or env");
            return None;
        }
        (Some(v), None) => ("value", v),
        (None, Some(name)) => match env(&name) {
            Some(v) => ("env", v),
            None => {
                errs.push(
                    &obj.path_of("env"),
                    format!("environment variable {name:?} is not set in the VM (vm_config.environment_variables)"),
                );
                return None;
            }
        },
    };
    // The secret itself never appears in an error message.
    if secret.is_empty() {
        errs.push(&obj.path_of(field), "the secret is empty");
        return None;
    }
    if secret.trim() != secret || secret.bytes().any(|b| b < 0x21 || b == 0x7f) {
        errs.push(
            &obj.path_of(field),
            "the secret contains white space or control characters (headers cannot carry it intact)",
        );
        return None;
    }
    Some(secret)
}
