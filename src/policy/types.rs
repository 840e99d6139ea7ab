//! The policy's types: the validated, immutable runtime form.

use crate::cidr::Cidr;
use crate::json::Value;
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
    /// `grpc.health.v1.Health/Check` for `service`: SERVING passes. The
    /// check's `headers` are its metadata. `upstream` is what Envoy's
    /// `proxy_grpc_call` gets: a `GrpcService` proto naming the cluster
    /// (and the `:authority`, if set).
    Grpc { service: String, upstream: String },
}

impl CheckKind {
    /// The admin path an Envoy kind calls (`None` for plain HTTP).
    pub fn admin_path(&self) -> Option<&'static str> {
        match self {
            CheckKind::Http => None,
            CheckKind::EnvoyServer => Some("/server_info"),
            CheckKind::EnvoyCluster { .. } => Some("/clusters?format=json"),
            CheckKind::EnvoyMemory { .. } => Some("/memory"),
            CheckKind::Grpc { .. } => None,
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
    /// The `grpc.health.v1` service name that reaches this endpoint as a
    /// gRPC health probe (`""`: the empty service); `None`: HTTP only.
    pub grpc_service: Option<String>,
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
    /// The endpoints' indices sorted by path: a request finds its endpoint
    /// by binary search, so its cost hardly grows with the policy.
    pub(crate) by_path: Vec<usize>,
}
