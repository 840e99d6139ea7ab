//! Decoding one endpoint, and what needs every endpoint: `include`.

use super::authorization::{sources, UNAUTHORIZED_CHOICES};
use super::decode::{index, type_name, Errors, Obj};
use super::{
    fields, Access, CachePolicy, Check, Details, Endpoint, Format, OnMiss, StatusCodes,
    Unauthorized, DEFAULT_DEADLINE_MS, DEFAULT_MAX_STALE_MS, DEFAULT_TTL_MS, MAX_DURATION_MS,
};
use crate::duration::format_millis;
use crate::json::Value;

pub(super) fn endpoint(
    value: &Value,
    path: &str,
    checks: &[Check],
    default_unauthorized: Unauthorized,
    errs: &mut Errors,
) -> Option<(Endpoint, Vec<(String, String)>)> {
    let obj = Obj::open(value, path, fields::ENDPOINT, errs)?;
    let name = obj.required_string("name", errs).and_then(|n| {
        if n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            errs.push(
                &obj.path_of("name"),
                format!("{n:?} must be non-empty and use only a-z, 0-9, '-' and '_'"),
            );
            return None;
        }
        Some(n)
    });
    let req_path = obj.required_string("path", errs).and_then(|p| {
        if !p.starts_with('/')
            || p.contains(['?', '#'])
            || p.bytes().any(|b| b <= 0x20 || b == 0x7f)
        {
            errs.push(
                &obj.path_of("path"),
                format!("{p:?} must start with '/' and hold no query, fragment or spaces"),
            );
            return None;
        }
        Some(p)
    });
    let access = obj
        .choice(
            "access",
            &[("protected", Access::Protected), ("public", Access::Public)],
            errs,
        )
        .unwrap_or(Access::Protected);
    let on_unauthorized = obj
        .choice("on_unauthorized", UNAUTHORIZED_CHOICES, errs)
        .unwrap_or(default_unauthorized);
    let deadline_ms = obj
        .duration("deadline", errs)
        .unwrap_or(DEFAULT_DEADLINE_MS);
    if deadline_ms > MAX_DURATION_MS {
        errs.push(
            &obj.path_of("deadline"),
            format!("must be at most {}", format_millis(MAX_DURATION_MS)),
        );
    }
    let format = obj
        .choice("format", Format::ALL, errs)
        .unwrap_or(Format::Text);

    let mut refs = Vec::new();
    for (i, v) in obj.array("checks", errs).into_iter().flatten().enumerate() {
        let item_path = index(&obj.path_of("checks"), i);
        let Value::String(check_name) = v else {
            errs.push(
                &item_path,
                format!("expected a check name, found {}", type_name(v)),
            );
            continue;
        };
        match checks.iter().position(|c| &c.name == check_name) {
            None => errs.push(&item_path, format!("unknown check {check_name:?}")),
            Some(_)
                if refs
                    .iter()
                    .any(|&r: &usize| checks.get(r).is_some_and(|c| &c.name == check_name)) =>
            {
                errs.push(&item_path, format!("check {check_name:?} is listed twice"));
            }
            Some(found) => {
                refs.push(found);
            }
        }
    }

    let mut includes = Vec::new();
    for (i, v) in obj.array("include", errs).into_iter().flatten().enumerate() {
        match v {
            Value::String(n) => includes.push((n.clone(), index(&obj.path_of("include"), i))),
            other => errs.push(
                &index(&obj.path_of("include"), i),
                format!("expected an endpoint name, found {}", type_name(other)),
            ),
        }
    }
    let details = obj
        .choice(
            "details",
            &[
                ("never", Details::Never),
                ("authorized", Details::Authorized),
                ("always", Details::Always),
            ],
            errs,
        )
        .unwrap_or(Details::Authorized);
    let warnings_as_errors = obj.bool("warnings_as_errors", errs).unwrap_or(false);
    let degraded_header = obj.bool("degraded_header", errs).unwrap_or(false);
    let miss = [("run", OnMiss::Run), ("fail", OnMiss::Fail)];
    let ttl_ms = obj.duration_or_zero("ttl", errs).unwrap_or(DEFAULT_TTL_MS);
    let max_stale_ms = obj
        .duration("max_stale", errs)
        .unwrap_or(DEFAULT_MAX_STALE_MS.max(ttl_ms));
    let refresh = obj.bool("refresh", errs).unwrap_or(false);
    if max_stale_ms < ttl_ms {
        errs.push(
            &obj.path_of("max_stale"),
            format!(
                "{} is shorter than ttl {}",
                format_millis(max_stale_ms),
                format_millis(ttl_ms)
            ),
        );
    }
    let on_stale = obj.choice("on_stale", &miss, errs).unwrap_or(OnMiss::Run);
    let on_startup = obj.choice("on_startup", &miss, errs).unwrap_or(OnMiss::Run);
    if !refresh && (on_stale == OnMiss::Fail || on_startup == OnMiss::Fail) {
        errs.push(
            &obj.path_of("refresh"),
            "on_stale or on_startup \"fail\" needs refresh: true (else nothing would ever run the checks)",
        );
    }
    if refresh && ttl_ms == 0 {
        errs.push(&obj.path_of("refresh"), "needs a ttl above zero");
    }
    if ttl_ms > 3_600_000 || max_stale_ms > 3_600_000 {
        errs.push(
            &obj.path_of("max_stale"),
            "ttl and max_stale must be at most 1h",
        );
    }
    let cache = CachePolicy {
        ttl_ms,
        refresh,
        max_stale_ms,
        on_stale,
        on_startup,
    };
    let sources = sources(&obj, errs);
    let grpc_service = obj.string("grpc_service", errs);
    if grpc_service
        .as_ref()
        .is_some_and(|s| s.len() > crate::grpc::MAX_SERVICE)
    {
        errs.push(
            &obj.path_of("grpc_service"),
            format!("must be at most {} bytes", crate::grpc::MAX_SERVICE),
        );
    }
    let status_codes = obj
        .get("status_codes")
        .and_then(|v| status_codes(v, &obj.path_of("status_codes"), errs))
        .unwrap_or_default();

    Some((
        Endpoint {
            name: name?,
            path: req_path?,
            checks: refs,
            access,
            on_unauthorized,
            deadline_ms,
            format,
            warnings_as_errors,
            status_codes,
            degraded_header,
            details,
            cache,
            sources,
            grpc_service,
        },
        includes,
    ))
}

fn status_codes(value: &Value, path: &str, errs: &mut Errors) -> Option<StatusCodes> {
    let obj = Obj::open(value, path, fields::STATUS_CODES, errs)?;
    let defaults = StatusCodes::default();
    let mut code = |key: &str, default: u16| match obj.number(key, errs) {
        None => default,
        Some(n) if (100..=599).contains(&n) => u16::try_from(n).unwrap_or(default),
        Some(n) => {
            errs.push(
                &obj.path_of(key),
                format!("{n} is not an HTTP status (100-599)"),
            );
            default
        }
    };
    Some(StatusCodes {
        pass: code("pass", defaults.pass),
        warn: code("warn", defaults.warn),
        fail: code("fail", defaults.fail),
    })
}

/// Adds the checks of included endpoints (transitively, included first) to
/// each endpoint, and checks every timeout against the deadline.
pub(super) fn resolve_includes(
    endpoints: &mut [Endpoint],
    includes: &[Vec<(String, String)>],
    checks: &[Check],
    errs: &mut Errors,
) {
    let mut direct: Vec<Vec<usize>> = vec![Vec::new(); endpoints.len()];
    for (i, list) in includes.iter().enumerate() {
        for (name, path) in list {
            match endpoints.iter().position(|e| &e.name == name) {
                None => errs.push(path, format!("unknown endpoint {name:?}")),
                Some(j) => {
                    if let Some(d) = direct.get_mut(i) {
                        d.push(j);
                    }
                }
            }
        }
    }
    /// Depth-first; true when `at` is reached again through `trail`.
    /// Endpoints in `done` are already collected and are not walked again:
    /// shared includes (diamonds) would otherwise cost exponential time.
    fn collect(
        at: usize,
        endpoints: &[Endpoint],
        direct: &[Vec<usize>],
        trail: &mut Vec<usize>,
        done: &mut Vec<usize>,
        out: &mut Vec<usize>,
    ) -> bool {
        if trail.contains(&at) {
            return true;
        }
        if done.contains(&at) {
            return false;
        }
        trail.push(at);
        let mut cycle = false;
        for &j in direct.get(at).into_iter().flatten() {
            cycle |= collect(j, endpoints, direct, trail, done, out);
        }
        for &c in endpoints.get(at).map_or(&[][..], |e| e.checks.as_slice()) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        trail.pop();
        done.push(at);
        cycle
    }
    let mut resolved = Vec::with_capacity(endpoints.len());
    for i in 0..endpoints.len() {
        let mut out = Vec::new();
        if collect(
            i,
            endpoints,
            &direct,
            &mut Vec::new(),
            &mut Vec::new(),
            &mut out,
        ) {
            errs.push(&format!("endpoints[{i}].include"), "includes form a cycle");
        }
        resolved.push(out);
    }
    for (i, (e, list)) in endpoints.iter_mut().zip(resolved).enumerate() {
        e.checks = list;
        for c in e.checks.iter().filter_map(|&c| checks.get(c)) {
            if let Some(t) = c.timeout_ms.filter(|&t| t > e.deadline_ms) {
                errs.push(
                    &format!("endpoints[{i}].deadline"),
                    format!(
                        "{} is shorter than check {:?}'s timeout {}",
                        format_millis(e.deadline_ms),
                        c.name,
                        format_millis(t)
                    ),
                );
            }
        }
    }
}
