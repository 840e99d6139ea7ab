//! `meshprobe explain`: what the module would do with one request, decided
//! by the module's own classifier. Secrets are never printed: only whether
//! one matched, and which (by index).

use meshprobe::classify::{classify, Decision, Probe, RequestHeaders};
use meshprobe::duration::format_millis;
use meshprobe::policy::{Access, BodyExpect, CheckKind, Details, OnMiss, Policy, Unauthorized};
use meshprobe::render::Reply;
use meshprobe::{cidr, query, secret};
use std::fmt::Write as _;

/// The request as given on the command line.
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub source: Option<String>,
    pub peer: Option<String>,
}

impl RequestHeaders for Request {
    fn get(&mut self, name: &str) -> Option<&str> {
        if name == ":method" {
            return Some(&self.method);
        }
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        match path {
            ["source", "address"] => self.source.clone(),
            ["connection", "uri_san_peer_certificate"] => self.peer.clone(),
            _ => None,
        }
    }
}

/// `name:value` of `--header`.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() => {
            Ok((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        }
        _ => Err("expected name:value".to_string()),
    }
}

/// Which secret (by index) `candidate` is, if any.
fn which_secret(policy: &Policy, candidate: &[u8]) -> String {
    let hit = policy
        .authorization
        .secrets
        .iter()
        .position(|s| secret::ct_eq(candidate, s.as_bytes()));
    match hit {
        Some(i) => format!("matches authorization.secrets[{i}]"),
        None => "matches no secret".into(),
    }
}

/// The path with a token segment and the token query parameter hidden.
fn shown_path(policy: &Policy, raw: &str, notes: &mut Vec<String>) -> String {
    let auth = &policy.authorization;
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let mut path = path.to_string();
    if let Some(prefix) = &auth.path_prefix {
        if let Some(rest) = path
            .strip_prefix(prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            if let Some((token, tail)) = rest.split_once('/') {
                notes.push(format!(
                    "token in the path (path_prefix {prefix}): {}",
                    which_secret(policy, &query::decode_path(token))
                ));
                path = format!("{prefix}/<secret>/{tail}");
            }
        }
    }
    if query.is_empty() {
        return path;
    }
    let mut parts = Vec::new();
    for (k, v) in query::params(query) {
        if auth.query_param.as_deref() == Some(k) {
            notes.push(format!(
                "query parameter {k}: {}",
                which_secret(policy, &query::decode(v))
            ));
            parts.push(format!("{k}=<secret>"));
        } else if v.is_empty() {
            parts.push(k.to_string());
        } else {
            parts.push(format!("{k}={v}"));
        }
    }
    format!("{path}?{}", parts.join("&"))
}

pub fn explain(policy: &Policy, mut req: Request) -> String {
    let mut out = String::new();
    let mut notes = Vec::new();
    let shown = shown_path(policy, &req.path, &mut notes);
    let _ = writeln!(out, "request: {} {shown}", req.method);
    let auth = &policy.authorization;
    for (k, v) in &req.headers {
        if auth.header.as_deref() == Some(k.as_str()) {
            let _ = writeln!(
                out,
                "  {k}: <secret> ({})",
                which_secret(policy, v.as_bytes())
            );
        } else if k == "authorization" {
            let token = v
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t);
            let what = match token {
                Some(t) if auth.bearer => which_secret(policy, t.as_bytes()),
                Some(_) => "bearer is not enabled: ignored".into(),
                None => "not a bearer token: ignored".into(),
            };
            let _ = writeln!(out, "  {k}: <secret> ({what})");
        } else {
            let _ = writeln!(out, "  {k}: {v}");
        }
    }
    if let Some(s) = &req.source {
        let _ = writeln!(out, "  source address: {s}");
    }
    if let Some(p) = &req.peer {
        let _ = writeln!(out, "  mTLS peer URI SAN: {p}");
    }
    for n in &notes {
        let _ = writeln!(out, "  {n}");
    }

    let path = req.path.clone();
    match classify(policy, &path, &mut req) {
        Decision::PassThrough { new_path } => {
            let _ = writeln!(out, "decision: pass-through to the application");
            strips(policy, new_path.as_deref(), &mut out);
        }
        Decision::Reply(reply) => {
            let _ = writeln!(out, "decision: local answer {}", reply_line(&reply));
        }
        Decision::Unauthorized {
            endpoint,
            reply,
            new_path,
        } => {
            let ep = policy.endpoints.get(endpoint);
            let name = ep.map_or("", |e| e.name.as_str());
            let _ = writeln!(
                out,
                "decision: unauthorized request for endpoint {name:?} (endpoints[{endpoint}])"
            );
            if let Some(ep) = ep {
                if let Some(list) = &ep.sources {
                    let ip = req.source.as_deref().and_then(cidr::source_ip);
                    let inside = ip.is_some_and(|ip| list.iter().any(|r| r.contains(ip)));
                    let _ = writeln!(
                        out,
                        "  sources: probes accepted only from {} range(s); the source address is {}",
                        list.len(),
                        match (ip, inside) {
                            (None, _) => "not known (give --source)",
                            (Some(_), true) => "inside",
                            (Some(_), false) => "outside",
                        }
                    );
                }
                if ep.access == Access::Protected {
                    let _ = writeln!(out, "  access: protected (a valid secret is needed)");
                }
                let _ = writeln!(
                    out,
                    "  on_unauthorized: {}",
                    match ep.on_unauthorized {
                        Unauthorized::NotFound => "not_found",
                        Unauthorized::Forbidden => "forbidden",
                        Unauthorized::PassThrough => "pass_through",
                    }
                );
            }
            match reply {
                Some(reply) => {
                    let _ = writeln!(out, "  answer: local {}", reply_line(&reply));
                }
                None => {
                    let _ = writeln!(out, "  answer: pass-through to the application");
                    strips(policy, new_path.as_deref(), &mut out);
                }
            }
        }
        Decision::Probe(probe) => describe_probe(policy, &probe, &mut out),
    }
    out
}

fn strips(policy: &Policy, new_path: Option<&str>, out: &mut String) {
    if let Some(h) = &policy.authorization.header {
        let _ = writeln!(out, "  removes the probe header {h} (from every request)");
    }
    if let Some(p) = new_path {
        let mut notes = Vec::new();
        let _ = writeln!(
            out,
            "  removes the query parameter {}: the application sees {}",
            policy.authorization.query_param.as_deref().unwrap_or(""),
            shown_path(policy, p, &mut notes)
        );
    }
}

fn reply_line(reply: &Reply) -> String {
    let body = String::from_utf8_lossy(&reply.body);
    let body = body.trim_end();
    let mut line = reply.status.to_string();
    if body.is_empty() {
        line.push_str(" (empty body)");
    } else {
        let _ = write!(line, " {body:?}");
    }
    for (k, v) in &reply.headers {
        if *k == "allow" {
            let _ = write!(line, ", {k}: {v}");
        }
    }
    line
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn describe_probe(policy: &Policy, probe: &Probe, out: &mut String) {
    let Some(ep) = policy.endpoints.get(probe.endpoint) else {
        return;
    };
    let _ = writeln!(
        out,
        "decision: probe of endpoint {:?} (endpoints[{}], {})",
        ep.name, probe.endpoint, ep.path
    );
    let _ = writeln!(
        out,
        "  access: {}; caller authorized: {}; sees details: {} (details: {})",
        match ep.access {
            Access::Public => "public",
            Access::Protected => "protected",
        },
        yes(probe.authorized),
        yes(probe.details),
        match ep.details {
            Details::Never => "never",
            Details::Authorized => "authorized",
            Details::Always => "always",
        }
    );
    let c = ep.status_codes;
    let _ = writeln!(
        out,
        "  view: {}{}; status pass {}, warn {}, fail {}{}{}",
        probe.format.name(),
        if probe.verbose { ", verbose" } else { "" },
        c.pass,
        c.warn,
        c.fail,
        if ep.warnings_as_errors {
            "; warnings count as failures"
        } else {
            ""
        },
        if ep.degraded_header {
            "; x-envoy-degraded on warn"
        } else {
            ""
        }
    );
    for n in &probe.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    let checks = probe.checks(policy);
    if checks.is_empty() {
        let _ = writeln!(
            out,
            "  no checks: answered at once by the proxy (liveness), zero callouts"
        );
        return;
    }
    let _ = writeln!(out, "  deadline: {}", format_millis(ep.deadline_ms));
    let cache = ep.cache;
    let miss = |m: OnMiss| match m {
        OnMiss::Run => "run",
        OnMiss::Fail => "fail",
    };
    if cache.ttl_ms == 0 {
        let _ = writeln!(out, "  cache: none (ttl 0s; a run in flight is shared)");
    } else {
        let _ = writeln!(
            out,
            "  cache: ttl {}, max_stale {}, refresh in the background: {}, on_stale {}, on_startup {}",
            format_millis(cache.ttl_ms),
            format_millis(cache.max_stale_ms),
            yes(cache.refresh),
            miss(cache.on_stale),
            miss(cache.on_startup)
        );
    }
    let _ = writeln!(out, "  checks ({}, in parallel):", checks.len());
    for &i in checks {
        let Some(check) = policy.checks.get(i) else {
            continue;
        };
        let _ = writeln!(
            out,
            "    {}: {} {} to cluster {:?}, authority {:?}, timeout {}",
            check.name,
            check.method,
            check.path,
            check.cluster,
            check.authority,
            format_millis(check.timeout_for(ep))
        );
        if !check.headers.is_empty() {
            let names: Vec<&str> = check.headers.iter().map(|(k, _)| k.as_str()).collect();
            let _ = writeln!(
                out,
                "      extra headers: {} (values not shown)",
                names.join(", ")
            );
        }
        let mut judged = match &check.kind {
            CheckKind::Http => format!("passes on status {}", check.expect_status),
            CheckKind::EnvoyServer => "Envoy admin /server_info: passes while LIVE".into(),
            CheckKind::EnvoyCluster {
                cluster,
                min_healthy_percent,
            } => format!(
                "Envoy admin /clusters: at least {min_healthy_percent}% of {cluster:?}'s hosts healthy"
            ),
            CheckKind::EnvoyMemory { limit_bytes } => {
                format!("Envoy admin /memory: warns above {limit_bytes} bytes allocated")
            }
            CheckKind::Grpc { service, .. } => format!(
                "grpc.health.v1.Health/Check for service {service:?}: passes on SERVING"
            ),
        };
        match &check.expect_body {
            Some(BodyExpect::Contains(text)) => {
                let _ = write!(judged, ", body contains {text:?}");
            }
            Some(BodyExpect::Pointer { pointer, accepted }) => {
                let words: Vec<String> = accepted.iter().map(ToString::to_string).collect();
                let _ = write!(judged, ", body at {pointer} is {}", words.join(" or "));
            }
            None => {}
        }
        if let Some(w) = check.warn_after_ms {
            let _ = write!(judged, ", warns when slower than {}", format_millis(w));
        }
        let _ = writeln!(
            out,
            "      {judged}; {}",
            if check.critical {
                "critical (a failure fails the probe)"
            } else {
                "not critical (a failure warns)"
            }
        );
    }
}
