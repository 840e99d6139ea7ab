//! The plugin configuration ("policy"): decoded from JSON with every field
//! path known, then validated into an immutable runtime form.
//!
//! `Policy::from_json` reports *all* problems at once, each naming its field,
//! e.g. `endpoints[1].checks[0]: unknown check "dbb"`.

mod check;
mod decode;
pub mod fields;

use crate::cidr::Cidr;
use crate::duration::format_millis;
use check::check;
use decode::{index, Errors, Obj};
use serde_json::Value;
use std::fmt;

/// One problem with a policy: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Default whole-probe deadline: below kubelet's default `timeoutSeconds: 1`.
pub const DEFAULT_DEADLINE_MS: u64 = 800;
/// Default callout timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 500;
/// Longest deadline or timeout accepted.
pub const MAX_DURATION_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Protected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthorized {
    NotFound,
    Forbidden,
    PassThrough,
}

pub use crate::format::Format;

/// Who sees check names, reasons and latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Details {
    /// Status only, for everyone.
    Never,
    /// Callers that presented a valid secret.
    Authorized,
    /// Everyone who may see the endpoint.
    Always,
}

/// The HTTP status answered for each health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCodes {
    pub pass: u16,
    pub warn: u16,
    pub fail: u16,
}

impl Default for StatusCodes {
    fn default() -> Self {
        StatusCodes {
            pass: 200,
            warn: 200,
            fail: 503,
        }
    }
}

/// What `application/health+json` says about the service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    pub id: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
}

/// What a check asks and how its answer is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A plain HTTP callout judged by status (and `expect_body`).
    Http,
    /// Envoy's admin `/server_info`: `LIVE` passes, anything else fails.
    EnvoyServer,
    /// Envoy's admin `/clusters?format=json`: the share of healthy hosts of
    /// `cluster` must be at least `min_healthy_percent`.
    EnvoyCluster {
        cluster: String,
        min_healthy_percent: u64,
    },
    /// Envoy's admin `/memory`: `allocated` above `limit_bytes` warns.
    EnvoyMemory { limit_bytes: u64 },
}

impl CheckKind {
    /// The admin path an Envoy kind calls (`None` for plain HTTP).
    pub fn admin_path(&self) -> Option<&'static str> {
        match self {
            CheckKind::Http => None,
            CheckKind::EnvoyServer => Some("/server_info"),
            CheckKind::EnvoyCluster { .. } => Some("/clusters?format=json"),
            CheckKind::EnvoyMemory { .. } => Some("/memory"),
        }
    }
}

/// Default largest admin answer read for the `envoy_*` kinds (Envoy's
/// `/clusters` lists every host of every cluster with its counters, and
/// `/server_info` carries the whole command line: 120 KiB on Envoy 1.40).
pub const DEFAULT_MAX_ADMIN_BODY: u64 = 4 * 1024 * 1024;

/// What a callout's body must hold for its check to pass.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyExpect {
    /// The body contains this text.
    Contains(String),
    /// The body is JSON and the value at `pointer` (RFC 6901) is one of
    /// `accepted`.
    Pointer {
        pointer: String,
        accepted: Vec<Value>,
    },
}

/// What a probe gets when the cached result is too old, or missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMiss {
    /// Run the checks now and answer with the result.
    Run,
    /// Answer `fail` at once, saying why.
    Fail,
}

/// How an endpoint's results are cached and shared across workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// A result younger than this is served without a run; 0 = no cache.
    pub ttl_ms: u64,
    /// Refresh in the background (root context tick), so probes are
    /// answered from the cache with zero callouts.
    pub refresh: bool,
    /// A result older than this is never served.
    pub max_stale_ms: u64,
    pub on_stale: OnMiss,
    pub on_startup: OnMiss,
}

/// Default cache TTL.
pub const DEFAULT_TTL_MS: u64 = 2_000;
/// Default age past which a result is not served.
pub const DEFAULT_MAX_STALE_MS: u64 = 30_000;

/// Default largest callout body read for a body expectation.
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024;

const UNAUTHORIZED_CHOICES: &[(&str, Unauthorized)] = &[
    ("not_found", Unauthorized::NotFound),
    ("forbidden", Unauthorized::Forbidden),
    ("pass_through", Unauthorized::PassThrough),
];

/// Inclusive ranges of HTTP statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= status && status <= hi)
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Authorization {
    /// Lower-case probe header name.
    pub header: Option<String>,
    pub secrets: Vec<String>,
    /// Without a trailing slash, e.g. `/health`.
    pub path_prefix: Option<String>,
    pub query_param: Option<String>,
    pub bearer: bool,
    /// Default answer to unauthorized requests (endpoints may override).
    pub on_unauthorized: Unauthorized,
    /// Probes are accepted only from these ranges (`None`: from anywhere).
    pub sources: Option<Vec<Cidr>>,
    /// Details only for these mTLS peer URI SANs (a trailing `*` matches a
    /// prefix); empty: no such restriction.
    pub detail_peers: Vec<String>,
}

impl Authorization {
    /// `san` (a peer certificate's URI SAN) is one of `detail_peers`.
    pub fn peer_may_see_details(&self, san: &str) -> bool {
        self.detail_peers.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => san.starts_with(prefix),
            None => san == p,
        })
    }
}

impl Default for Authorization {
    fn default() -> Self {
        Authorization {
            header: None,
            secrets: Vec::new(),
            path_prefix: None,
            query_param: None,
            bearer: false,
            on_unauthorized: Unauthorized::NotFound,
            sources: None,
            detail_peers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub path: String,
    /// Indexes into `Policy::checks`.
    pub checks: Vec<usize>,
    pub access: Access,
    pub on_unauthorized: Unauthorized,
    pub deadline_ms: u64,
    pub format: Format,
    /// A warning fails the endpoint.
    pub warnings_as_errors: bool,
    pub status_codes: StatusCodes,
    /// Add `x-envoy-degraded` to a `warn` answer.
    pub degraded_header: bool,
    pub details: Details,
    pub cache: CachePolicy,
    /// Probes are accepted only from these ranges: the endpoint's own
    /// `sources`, else `authorization.sources` (`None`: from anywhere).
    pub sources: Option<Vec<Cidr>>,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
    pub cluster: String,
    pub method: String,
    pub path: String,
    pub authority: String,
    pub headers: Vec<(String, String)>,
    /// `None` means the default, capped by the endpoint's deadline.
    pub timeout_ms: Option<u64>,
    pub expect_status: StatusSet,
    pub expect_body: Option<BodyExpect>,
    /// Largest body read for `expect_body`, in bytes.
    pub max_body: u64,
    /// A passing check slower than this is `warn`.
    pub warn_after_ms: Option<u64>,
    /// `componentType` in `application/health+json`.
    pub component_type: String,
    pub critical: bool,
}

impl Check {
    /// The callout timeout used when this check runs for an endpoint.
    pub fn timeout_for(&self, endpoint: &Endpoint) -> u64 {
        self.timeout_ms
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .min(endpoint.deadline_ms)
    }
}

/// A validated policy. Immutable once built.
#[derive(Debug, Clone)]
pub struct Policy {
    pub service: Service,
    pub authorization: Authorization,
    pub endpoints: Vec<Endpoint>,
    pub checks: Vec<Check>,
}

impl Policy {
    /// Decodes and validates a policy. `env` looks up VM environment
    /// variables (secrets given as `{"env": "NAME"}`).
    pub fn from_json(
        bytes: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Policy, Vec<ConfigError>> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(vec![ConfigError {
                path: String::new(),
                reason: "the plugin configuration is empty: meshprobe needs a policy (JSON)".into(),
            }]);
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            vec![ConfigError {
                path: String::new(),
                reason: format!("the policy is not valid JSON: {e}"),
            }]
        })?;
        let mut errs = Errors::default();
        let policy = build(&value, env, &mut errs);
        match policy {
            Some(policy) if errs.0.is_empty() => Ok(policy),
            _ => Err(errs.0),
        }
    }

    pub fn endpoint_by_path(&self, path: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.path == path)
    }

    pub fn endpoint_by_name(&self, name: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.name == name)
    }
}

fn build(value: &Value, env: &dyn Fn(&str) -> Option<String>, errs: &mut Errors) -> Option<Policy> {
    let top = Obj::open(value, "", fields::TOP, errs)?;

    let authorization = match top.get("authorization") {
        Some(v) => authorization(v, env, errs).unwrap_or_default(),
        None => Authorization::default(),
    };
    let default_unauthorized = authorization.on_unauthorized;

    let mut checks = Vec::new();
    for (i, v) in top.array("checks", errs).into_iter().flatten().enumerate() {
        if let Some(c) = check(v, &index("checks", i), errs) {
            if checks.iter().any(|other: &Check| other.name == c.name) {
                errs.push(
                    &format!("checks[{i}].name"),
                    format!("duplicate check name {:?}", c.name),
                );
            }
            checks.push(c);
        }
    }

    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut includes = Vec::new();
    match top.array("endpoints", errs) {
        None if top.get("endpoints").is_none() => errs.push("endpoints", "is required"),
        None => {}
        Some(items) if items.is_empty() => {
            errs.push("endpoints", "must list at least one endpoint")
        }
        Some(items) => {
            for (i, v) in items.iter().enumerate() {
                let path = index("endpoints", i);
                if let Some((e, inc)) = endpoint(v, &path, &checks, default_unauthorized, errs) {
                    if endpoints.iter().any(|o| o.name == e.name) {
                        errs.push(
                            &format!("{path}.name"),
                            format!("duplicate endpoint name {:?}", e.name),
                        );
                    }
                    if endpoints.iter().any(|o| o.path == e.path) {
                        errs.push(
                            &format!("{path}.path"),
                            format!("duplicate endpoint path {:?}", e.path),
                        );
                    }
                    endpoints.push(e);
                    includes.push(inc);
                }
            }
        }
    }

    resolve_includes(&mut endpoints, &includes, &checks, errs);
    for e in &mut endpoints {
        if e.sources.is_none() {
            e.sources.clone_from(&authorization.sources);
        }
    }
    let service = top
        .get("service")
        .and_then(|v| Obj::open(v, "service", fields::SERVICE, errs))
        .map(|o| Service {
            id: o.string("id", errs),
            version: o.string("version", errs),
            description: o.string("description", errs),
        })
        .unwrap_or_default();

    let protected = endpoints.iter().any(|e| e.access == Access::Protected);
    if protected && authorization.secrets.is_empty() {
        errs.push(
            "authorization.secrets",
            "a protected endpoint needs at least one secret (or set the endpoint's access to \"public\")",
        );
    }
    if let Some(prefix) = &authorization.path_prefix {
        for (i, e) in endpoints.iter().enumerate() {
            if e.path.starts_with(&format!("{prefix}/")) {
                errs.push(
                    &format!("endpoints[{i}].path"),
                    format!(
                        "{:?} lies under authorization.path_prefix {prefix:?}",
                        e.path
                    ),
                );
            }
        }
    }

    Some(Policy {
        service,
        authorization,
        endpoints,
        checks,
    })
}

fn authorization(
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
fn sources(obj: &Obj<'_>, errs: &mut Errors) -> Option<Vec<Cidr>> {
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
                    decode::type_name(v)
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

fn endpoint(
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
                format!("expected a check name, found {}", decode::type_name(v)),
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
                format!(
                    "expected an endpoint name, found {}",
                    decode::type_name(other)
                ),
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
fn resolve_includes(
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

/// An HTTP token (RFC 9110): method names and header names.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests;
