//! Warnings about a valid policy that a reviewer would want to see: the
//! module loads it, but it probably does not do what was meant.

use crate::input::{Found, Origin};
use crate::validate::Finding;
use meshprobe::duration::format_millis;
use meshprobe::policy::Policy;
use serde_json::Value;

/// kubelet's default probe `timeoutSeconds`.
const KUBELET_TIMEOUT_MS: u64 = 1_000;

/// Clusters of Istio's own bootstrap a check may name without `|`.
const ISTIO_STATIC_CLUSTERS: &[&str] = &[
    "prometheus_stats",
    "agent",
    "sds-grpc",
    "xds-grpc",
    "zipkin",
    "BlackHoleCluster",
    "PassthroughCluster",
    "InboundPassthroughCluster",
    "InboundPassthroughClusterIpv4",
    "InboundPassthroughClusterIpv6",
];

pub fn warnings(policy: &Policy, raw: &Value, found: &Found) -> Vec<Finding> {
    let origin = found.origin;
    let mut out = Vec::new();
    for (i, check) in policy.checks.iter().enumerate() {
        if !policy.endpoints.iter().any(|e| e.checks.contains(&i)) {
            out.push(Finding::warning(
                format!("checks[{i}]"),
                format!("check {:?} is used by no endpoint", check.name),
            ));
        }
        if let Some(why) = istio_cluster_problem(&check.cluster, origin) {
            out.push(Finding::warning(format!("checks[{i}].cluster"), why));
        }
        if let Some(clusters) = &found.clusters {
            if !clusters.contains(&check.cluster) {
                out.push(Finding::warning(
                    format!("checks[{i}].cluster"),
                    format!(
                        "{:?} is not a cluster of this bootstrap (static_resources.clusters): the check fails with \"dispatch failed: unknown cluster\"",
                        check.cluster
                    ),
                ));
            }
        }
    }
    for (i, e) in policy.endpoints.iter().enumerate() {
        if !e.checks.is_empty() && e.deadline_ms >= KUBELET_TIMEOUT_MS {
            out.push(Finding::warning(
                format!("endpoints[{i}].deadline"),
                format!(
                    "{} is not below kubelet's default timeoutSeconds (1s): the kubelet gives up before meshprobe answers",
                    format_millis(e.deadline_ms)
                ),
            ));
        }
    }
    out.extend(grpc_warnings(policy, raw));
    if origin == Origin::Istio {
        let secrets = raw
            .pointer("/authorization/secrets")
            .and_then(Value::as_array);
        for (i, s) in secrets.into_iter().flatten().enumerate() {
            if s.get("value").is_some() {
                out.push(Finding::warning(
                    format!("authorization.secrets[{i}].value"),
                    "inline secret: anyone who may read WasmPlugins reads it; use {\"env\": NAME} and vmConfig.env with valueFrom: HOST",
                ));
            }
        }
    }
    out
}

/// gRPC: kubelet `grpc:` probes send no metadata; Istio cluster names
/// are no `:authority`.
fn grpc_warnings(policy: &Policy, raw: &Value) -> Vec<Finding> {
    use meshprobe::policy::{Access, CheckKind};
    let mut out = Vec::new();
    for (i, e) in policy.endpoints.iter().enumerate() {
        if e.grpc_service.is_some() && e.access == Access::Protected && e.sources.is_none() {
            out.push(Finding::warning(
                format!("endpoints[{i}].grpc_service"),
                "a kubelet grpc: probe sends no metadata (no probe header, no bearer token): make the endpoint public or gate it by sources",
            ));
        }
    }
    for (i, c) in policy.checks.iter().enumerate() {
        let explicit = raw.pointer(&format!("/checks/{i}/authority")).is_some();
        if matches!(c.kind, CheckKind::Grpc { .. }) && c.cluster.contains('|') && !explicit {
            out.push(Finding::warning(
                format!("checks[{i}].authority"),
                "an Istio cluster name is no valid :authority for a gRPC call: set authority (e.g. \"db.prod.svc.cluster.local:50051\")",
            ));
        }
    }
    out
}

/// Why `cluster` is not a usable Istio cluster name, if it is not: a name
/// with `|` must be `outbound|<port>|<subset>|<host>` (or `inbound|<port>|
/// <subset>|<host>`, whose host may be empty); in an Istio resource a name
/// without `|` must be one of the bootstrap's own clusters.
pub fn istio_cluster_problem(cluster: &str, origin: Origin) -> Option<String> {
    let format = "Istio names clusters outbound|<port>|<subset>|<host>, e.g. \"outbound|8080||db.prod.svc.cluster.local\"";
    if !cluster.contains('|') {
        if origin == Origin::Istio && !ISTIO_STATIC_CLUSTERS.contains(&cluster) {
            return Some(format!(
                "{cluster:?} is not a cluster of an Istio sidecar: {format}"
            ));
        }
        return None;
    }
    let parts: Vec<&str> = cluster.split('|').collect();
    let [direction, port, _subset, host] = parts.as_slice() else {
        return Some(format!("{cluster:?} has {} parts: {format}", parts.len()));
    };
    if !matches!(*direction, "outbound" | "inbound") {
        return Some(format!(
            "{cluster:?} starts with {direction:?}, not outbound or inbound: {format}"
        ));
    }
    if !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Some(format!("{cluster:?} has port {port:?}: {format}"));
    }
    if *direction == "outbound" && host.is_empty() {
        return Some(format!("{cluster:?} has no host: {format}"));
    }
    if host.contains([' ', '/', ':']) {
        return Some(format!("{cluster:?} has host {host:?}: {format}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[rustfmt::skip]
    fn istio_cluster_names() {
        let cases: &[(&str, Origin, bool)] = &[
            ("outbound|8080||db.prod.svc.cluster.local", Origin::Istio, true),
            ("outbound|8080|v1|db.prod.svc.cluster.local", Origin::Istio, true),
            ("inbound|8080||", Origin::Istio, true),
            ("prometheus_stats", Origin::Istio, true),
            ("db", Origin::Envoy, true),
            ("db", Origin::Istio, false),
            ("outbound|8080|db.prod.svc.cluster.local", Origin::Istio, false),
            ("outbound|http||db.prod.svc.cluster.local", Origin::Envoy, false),
            ("outbound|0||db", Origin::Istio, false),
            ("outbund|8080||db", Origin::Istio, false),
            ("outbound|8080||", Origin::Istio, false),
            ("outbound|8080||db:8080", Origin::Istio, false),
        ];
        for (name, origin, ok) in cases {
            assert_eq!(
                istio_cluster_problem(name, *origin).is_none(),
                *ok,
                "{name} {origin:?}"
            );
        }
    }
}
