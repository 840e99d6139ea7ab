//! Reading Envoy's own admin API answers: the `envoy_*` check kinds.
//!
//! proxy-wasm cannot see Envoy's draining state, cluster health or memory;
//! the admin API can, and a check reaches it through a cluster to the admin
//! port. Each function judges one admin answer's body.

use crate::failure::{truncate, Failure, Judgement};
use crate::json::Value;

fn json(body: &[u8], what: &str) -> Result<Value, Judgement> {
    crate::json::from_slice(body).map_err(|e| {
        Judgement::Fail(Failure::AdminNotJson {
            what: what.into(),
            detail: e.to_string(),
        })
    })
}

/// `/server_info`: `LIVE` passes; `DRAINING` (e.g. after admin
/// `/healthcheck/fail`, or while shutting down), `PRE_INITIALIZING` and
/// `INITIALIZING` fail.
pub fn server_state(body: &[u8]) -> Judgement {
    let value = match json(body, "/server_info") {
        Ok(v) => v,
        Err(j) => return j,
    };
    match value.get("state").and_then(Value::as_str) {
        Some("LIVE") => Judgement::Pass,
        Some(state) => Judgement::Fail(Failure::ServerState {
            state: truncate(state, 32).into(),
        }),
        None => Judgement::Fail(Failure::NoServerState),
    }
}

/// A host is healthy when Envoy has no failure flag on it and its EDS
/// status (if any) is `HEALTHY` or `UNKNOWN` (which Envoy routes to).
fn host_is_healthy(host: &Value) -> bool {
    let Some(status) = host.get("health_status").and_then(Value::as_object) else {
        return true;
    };
    let flagged = status
        .iter()
        .any(|(key, v)| key != "eds_health_status" && v.as_bool() == Some(true));
    let eds_ok = match status.get("eds_health_status").and_then(Value::as_str) {
        None | Some("HEALTHY" | "UNKNOWN") => true,
        Some(_) => false,
    };
    !flagged && eds_ok
}

/// `/clusters?format=json`: the share of `cluster`'s hosts that are
/// healthy must be at least `min_percent`. A cluster without hosts has no
/// healthy share: it fails unless the minimum is 0.
pub fn cluster_health(body: &[u8], cluster: &str, min_percent: u64) -> Judgement {
    let value = match json(body, "/clusters") {
        Ok(v) => v,
        Err(j) => return j,
    };
    let statuses = value
        .get("cluster_statuses")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let Some(found) = statuses
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(cluster))
    else {
        return Judgement::Fail(Failure::ClusterMissing {
            cluster: truncate(cluster, 80).into(),
        });
    };
    let hosts = found
        .get("host_statuses")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let total = hosts.len() as u64;
    let healthy = hosts.iter().filter(|h| host_is_healthy(h)).count() as u64;
    // healthy / total >= min / 100, in integers.
    let enough = healthy.saturating_mul(100) >= min_percent.saturating_mul(total)
        && (total > 0 || min_percent == 0);
    if enough {
        Judgement::Pass
    } else {
        Judgement::Fail(Failure::ClusterUnhealthy {
            healthy,
            total,
            min_percent,
        })
    }
}

/// `/memory`: `allocated` (bytes in use by Envoy's heap) above `limit`
/// warns. Envoy writes the numbers as JSON strings.
pub fn memory(body: &[u8], limit: u64) -> Judgement {
    let value = match json(body, "/memory") {
        Ok(v) => v,
        Err(j) => return j,
    };
    let allocated = match value.get("allocated") {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    match allocated {
        None => Judgement::Fail(Failure::NoAllocated),
        Some(n) if n > limit => Judgement::Warn(Failure::MemoryOverLimit {
            allocated: n,
            limit,
        }),
        Some(_) => Judgement::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A judgement as `pass`, `warn: <reason>` or `fail: <reason>`.
    fn shown(j: Judgement) -> String {
        match j {
            Judgement::Pass => "pass".into(),
            Judgement::Warn(f) => format!("warn: {f}"),
            Judgement::Fail(f) => format!("fail: {f}"),
        }
    }

    #[test]
    fn server_states() {
        let cases = [
            (r#"{"version":"x","state":"LIVE"}"#, "pass"),
            (r#"{"state":"DRAINING"}"#, "fail: Envoy is DRAINING"),
            (
                r#"{"state":"PRE_INITIALIZING"}"#,
                "fail: Envoy is PRE_INITIALIZING",
            ),
            (
                r#"{"version":"x"}"#,
                "fail: /server_info answer has no state",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(shown(server_state(body.as_bytes())), want, "{body}");
        }
        assert!(shown(server_state(b"<html>")).starts_with("fail: /server_info answer is not JSON"));
    }

    fn clusters(hosts: &[&str]) -> String {
        format!(
            r#"{{"cluster_statuses":[{{"name":"other","host_statuses":[]}},{{"name":"backend","added_via_api":false,"host_statuses":[{}]}}]}}"#,
            hosts
                .iter()
                .map(|h| format!(r#"{{"address":{{}},"health_status":{h}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        )
    }

    #[test]
    fn cluster_shares() {
        let ok = r#"{"eds_health_status":"HEALTHY"}"#;
        let hc_failed = r#"{"failed_active_health_check":true,"eds_health_status":"HEALTHY"}"#;
        let ejected = r#"{"failed_outlier_check":true}"#;
        let draining = r#"{"eds_health_status":"DRAINING"}"#;
        let two_of_four = clusters(&[ok, hc_failed, ok, draining]);
        assert_eq!(
            shown(cluster_health(two_of_four.as_bytes(), "backend", 50)),
            "pass"
        );
        assert_eq!(
            shown(cluster_health(two_of_four.as_bytes(), "backend", 51)),
            "fail: 2 of 4 hosts healthy (50%, minimum 51%)"
        );
        let all_down = clusters(&[hc_failed, ejected]);
        assert_eq!(
            shown(cluster_health(all_down.as_bytes(), "backend", 100)),
            "fail: 0 of 2 hosts healthy (0%, minimum 100%)"
        );
        let empty = clusters(&[]);
        assert_eq!(
            shown(cluster_health(empty.as_bytes(), "backend", 1)),
            "fail: 0 of 0 hosts healthy (0%, minimum 1%)"
        );
        assert_eq!(
            shown(cluster_health(empty.as_bytes(), "backend", 0)),
            "pass"
        );
        assert_eq!(
            shown(cluster_health(empty.as_bytes(), "nope", 0)),
            "fail: cluster \"nope\" is not in /clusters"
        );
        // No health_status at all: Envoy routes to it.
        let bare = r#"{"cluster_statuses":[{"name":"backend","host_statuses":[{"address":{}}]}]}"#;
        assert_eq!(
            shown(cluster_health(bare.as_bytes(), "backend", 100)),
            "pass"
        );
    }

    #[test]
    fn memory_limits() {
        let body = br#"{"allocated":"6291456","heap_size":"8388608"}"#;
        assert_eq!(shown(memory(body, 6_291_456)), "pass");
        assert_eq!(
            shown(memory(body, 4 << 20)),
            "warn: allocated 6 MiB is over the limit 4 MiB"
        );
        assert_eq!(
            shown(memory(br#"{"allocated":1600}"#, 1000)),
            "warn: allocated 1.5 KiB is over the limit 1000 B"
        );
        assert_eq!(
            shown(memory(br#"{"heap_size":"1"}"#, 1000)),
            "fail: /memory answer has no allocated bytes"
        );
    }
}
