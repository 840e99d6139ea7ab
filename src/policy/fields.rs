//! The policy's fields, each with its type, default and meaning.
//!
//! These tables are what the decoder accepts (a field not listed is refused)
//! and what the README's configuration reference is rendered from; a test
//! fails when the README's table differs from [`reference_table`].

/// One field of a policy object. The module (wasm32) keeps only the
/// names, which the decoder needs: the prose is for the README and would
/// cost the module some 15 KB.
pub struct FieldDoc {
    pub name: &'static str,
    #[cfg(not(target_arch = "wasm32"))]
    pub ty: &'static str,
    #[cfg(not(target_arch = "wasm32"))]
    pub default: &'static str,
    #[cfg(not(target_arch = "wasm32"))]
    pub doc: &'static str,
}

#[cfg(not(target_arch = "wasm32"))]
const fn f(
    name: &'static str,
    ty: &'static str,
    default: &'static str,
    doc: &'static str,
) -> FieldDoc {
    FieldDoc {
        name,
        ty,
        default,
        doc,
    }
}

#[cfg(target_arch = "wasm32")]
const fn f(name: &'static str, _: &'static str, _: &'static str, _: &'static str) -> FieldDoc {
    FieldDoc { name }
}

pub const TOP: &[FieldDoc] = &[
    f(
        "service",
        "object",
        "none",
        "Describes the service in `application/health+json`.",
    ),
    f(
        "endpoints",
        "array of endpoint",
        "required",
        "The probe endpoints this filter answers.",
    ),
    f(
        "checks",
        "array of check",
        "`[]`",
        "Dependency checks that endpoints refer to by name.",
    ),
    f(
        "authorization",
        "object",
        "none",
        "How a caller proves it may see a protected endpoint.",
    ),
];

pub const SERVICE: &[FieldDoc] = &[
    f("id", "string", "none", "`serviceId`."),
    f(
        "version",
        "string",
        "none",
        "`version` (shown to callers allowed details only).",
    ),
    f("description", "string", "none", "`description`."),
];

pub const AUTHORIZATION: &[FieldDoc] = &[
    f("header", "string", "none", "Probe header name (e.g. `x-health`); its value must be one of `secrets`. Removed from every request that goes upstream."),
    f("secrets", "array of secret", "`[]`", "Accepted secrets; several at once allow rotation. Compared in constant time."),
    f("path_prefix", "string", "none", "Token as a path segment: `<path_prefix>/<secret>/<endpoint name>` answers that endpoint. Nothing below it goes upstream: a path there that names no endpoint, or a wrong token, gets 404."),
    f("query_param", "string", "none", "Token as a query parameter, e.g. `token` for `/readyz?token=<secret>`."),
    f("bearer", "bool", "`false`", "Accept `Authorization: Bearer <secret>`."),
    f("on_unauthorized", "`not_found` \\| `forbidden` \\| `pass_through`", "`not_found`", "Answer to an unauthorized request for a protected endpoint: local 404, local 403, or the request goes to the app untouched."),
    f("sources", "array of address ranges", "any source", "Probes are accepted only from these ranges (`\"10.0.0.0/8\"`, `\"fd00::/8\"`, a single address), matched against Envoy's `source.address` (the downstream peer). Others get the `on_unauthorized` answer, with or without a secret, on public endpoints too."),
    f("detail_peers", "array of string", "no restriction", "Details only for callers whose mTLS peer certificate has one of these URI SANs (`connection.uri_san_peer_certificate`, e.g. `spiffe://cluster.local/ns/monitoring/sa/prober`; a trailing `*` matches a prefix). Without mTLS, nobody sees details."),
];

pub const SECRET: &[FieldDoc] = &[
    f("value", "string", "one of `value`, `env`", "The secret, inline."),
    f("env", "string", "one of `value`, `env`", "Name of a VM environment variable holding the secret (Envoy `vm_config.environment_variables`, Istio `vmConfig.env`)."),
];

#[rustfmt::skip]
pub const ENDPOINT: &[FieldDoc] = &[
    f("name", "string", "required", "Endpoint name (`[a-z0-9_-]`), shown in answers and used in token paths."),
    f("path", "string", "required", "Exact request path (query ignored), e.g. `/readyz`. `<path>/<check>` answers that one check."),
    f("checks", "array of check names", "`[]`", "Checks run in parallel for each probe; none (and no `include`) = liveness, answered locally with zero callouts."),
    f("include", "array of endpoint names", "`[]`", "Also run the checks of these endpoints (first), e.g. a pipeline tier = the application's checks plus status pages."),
    f("access", "`protected` \\| `public`", "`protected`", "`public`: anyone gets the status; `protected`: only authorized callers."),
    f("details", "`never` \\| `authorized` \\| `always`", "`authorized`", "Who sees check names, reasons, latencies and the version: nobody, callers that presented a secret, or everyone."),
    f("on_unauthorized", "as `authorization.on_unauthorized`", "`authorization.on_unauthorized`", "Per-endpoint override."),
    f("sources", "array of address ranges", "`authorization.sources`", "Per-endpoint override of the ranges probes are accepted from."),
    f("deadline", "duration", "`\"800ms\"`", "Whole-probe deadline; the answer never takes longer. Below kubelet's default 1 s `timeoutSeconds`."),
    f("format", "`text` \\| `json` \\| `health` \\| `html` \\| `atom` \\| `rss` \\| `dhc` \\| `openmetrics`", "`text`", "Format when neither `?format=` nor `Accept` chooses one."),
    f("warnings_as_errors", "bool", "`false`", "A `warn` fails the endpoint."),
    f("status_codes", "object", "`{\"pass\": 200, \"warn\": 200, \"fail\": 503}`", "HTTP status per health (feeds always answer 200)."),
    f("ttl", "duration", "`\"2s\"`", "One run of the checks serves every probe (on every worker) for this long; `\"0s\"`: no cache (in-flight runs are still shared)."),
    f("refresh", "bool", "`false`", "Refresh the result in the background before it expires, so probes never wait for callouts."),
    f("max_stale", "duration", "`\"30s\"` (at least `ttl`)", "A result older than this is never served."),
    f("on_stale", "`run` \\| `fail`", "`run`", "With `refresh`, when the result is older than `max_stale`: run the checks now, or answer `fail` (`stale result`)."),
    f("on_startup", "`run` \\| `fail`", "`run`", "Before the first result exists: run the checks now, or answer `fail` (`no result yet`)."),
    f("degraded_header", "bool", "`false`", "Add `x-envoy-degraded: true` to a `warn` answer, so Envoy active health checking deprioritises the host instead of ejecting it."),
    f("grpc_service", "string", "none (HTTP only)", "Also answer gRPC health probes (`grpc.health.v1.Health/Check`, e.g. the kubelet's `grpc:` probe) whose `service` is this name; `\"\"` takes the empty service (a probe without `service`). Failing: gRPC `UNAVAILABLE` with the reason; passing: the call goes on to the app's own health service (see docs/grpc.md)."),
];

#[rustfmt::skip]
pub const STATUS_CODES: &[FieldDoc] = &[
    f("pass", "status (100-599)", "`200`", "Status of a `pass` answer."),
    f("warn", "status (100-599)", "`200`", "Status of a `warn` answer."),
    f("fail", "status (100-599)", "`503`", "Status of a `fail` answer (some users want 500)."),
];

#[rustfmt::skip]
pub const CHECK: &[FieldDoc] = &[
    f("name", "string", "required", "Check name (`[A-Za-z0-9_-]`), shown in answers."),
    f("cluster", "string", "required", "Envoy cluster the callout goes to (Istio: `outbound\\|8080\\|\\|db.prod.svc.cluster.local`). For the `envoy_*` kinds, a cluster to Envoy's own admin port (Istio's bootstrap has `prometheus_stats`)."),
    f("kind", "`http` \\| `grpc` \\| `envoy_server` \\| `envoy_cluster` \\| `envoy_memory`", "`http`", "`http`: judged by status and `expect_body`. `grpc`: calls `grpc.health.v1.Health/Check` on an HTTP/2 cluster and passes on `SERVING` (see docs/grpc.md). The `envoy_*` kinds read Envoy's admin API: `envoy_server` passes while `/server_info` says `LIVE` (fails when draining, e.g. after `/healthcheck/fail`); `envoy_cluster` needs `min_healthy_percent` of `target_cluster`'s hosts healthy in `/clusters?format=json`; `envoy_memory` warns when `/memory` `allocated` is over `memory_limit`."),
    f("target_cluster", "string", "required with `envoy_cluster`", "The cluster whose hosts `envoy_cluster` counts."),
    f("min_healthy_percent", "number 0-100", "`100`", "With `envoy_cluster`: the least share of healthy hosts that passes (Envoy's `cluster_min_healthy_percentages`)."),
    f("memory_limit", "bytes", "required with `envoy_memory`", "With `envoy_memory`: `allocated` above this many bytes is `warn`."),
    f("service", "string", "`\"\"` (the server's overall health)", "With `grpc`: the `service` of the `HealthCheckRequest`."),
    f("metadata", "object of string", "`{}`", "With `grpc`: request metadata (e.g. `authorization`)."),
    f("method", "string", "`GET`", "HTTP method of the callout."),
    f("path", "string", "`/`", "Path of the callout."),
    f("authority", "string", "the cluster name", "`:authority` (Host) of the callout. With `grpc`, set it when the cluster name is not a valid host (Istio's `outbound\\|50051\\|\\|x.svc`)."),
    f("headers", "object of string", "`{}`", "Extra request headers for the callout."),
    f("timeout", "duration", "`\"500ms\"`, at most the endpoint's deadline", "Callout timeout; a check that takes longer fails with `timeout after <t>`."),
    f("expect_status", "array of status or `\"lo-hi\"`", "`[\"200-299\"]`", "Statuses that pass, e.g. `[200, 204, \"300-399\"]`."),
    f("expect_body", "object", "none", "What the body must hold: `{\"contains\": \"PONG\"}` or `{\"pointer\": \"/status/indicator\", \"equals\": \"none\"}` (or `one_of`)."),
    f("max_body", "bytes", "`65536` (`4194304` for the `envoy_*` kinds)", "A body larger than this fails the check instead of being read (only read with `expect_body` or an `envoy_*` kind)."),
    f("warn_after", "duration", "none", "A passing check slower than this is `warn` (degraded)."),
    f("component_type", "string", "`component`", "`componentType` in `application/health+json` (`datastore`, `system`, ...)."),
    f("critical", "bool", "`true`", "A failing critical check fails the probe (503); a failing non-critical one warns (200)."),
];

#[rustfmt::skip]
pub const BODY: &[FieldDoc] = &[
    f("contains", "string", "one of `contains`, `pointer`", "The body contains this text."),
    f("pointer", "JSON pointer", "one of `contains`, `pointer`", "The body is JSON; the value here (RFC 6901) is compared."),
    f("equals", "any JSON", "one of `equals`, `one_of`", "The value at `pointer` equals this."),
    f("one_of", "array", "one of `equals`, `one_of`", "The value at `pointer` is one of these."),
];

/// Every object of the policy with the path its fields appear under.
pub const SECTIONS: &[(&str, &[FieldDoc])] = &[
    ("", TOP),
    ("service.", SERVICE),
    ("authorization.", AUTHORIZATION),
    ("authorization.secrets[].", SECRET),
    ("endpoints[].", ENDPOINT),
    ("endpoints[].status_codes.", STATUS_CODES),
    ("checks[].", CHECK),
    ("checks[].expect_body.", BODY),
];

/// The README's configuration reference table, in Markdown.
#[cfg(not(target_arch = "wasm32"))]
pub fn reference_table() -> String {
    let mut out = String::from("| field | type | default | meaning |\n|---|---|---|---|\n");
    for (prefix, fields) in SECTIONS {
        for field in *fields {
            out.push_str(&format!(
                "| `{prefix}{}` | {} | {} | {} |\n",
                field.name, field.ty, field.default, field.doc
            ));
        }
    }
    out
}
