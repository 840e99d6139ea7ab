//! Reading Envoy's own admin API answers: the `envoy_*` check kinds.
//!
//! proxy-wasm cannot see Envoy's draining state, cluster health or memory;
//! the admin API can, and a check reaches it through a cluster to the admin
//! port. Each function judges one admin answer's body.

use crate::outcome::truncate;
use serde_json::Value;

/// The outcome of judging an admin answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    Pass,
    /// Passes, degraded, with why.
    Warn(String),
    Fail(String),
}

fn json(body: &[u8], what: &str) -> Result<Value, Judgement> {
    serde_json::from_slice(body)
        .map_err(|e| Judgement::Fail(format!("{what} answer is not JSON ({e})")))
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
        Some(state) => Judgement::Fail(format!("Envoy is {}", truncate(state, 32))),
        None => Judgement::Fail("/server_info answer has no state".into()),
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
        return Judgement::Fail(format!(
            "cluster {:?} is not in /clusters",
            truncate(cluster, 80)
        ));
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
    let share = healthy.saturating_mul(100).checked_div(total).unwrap_or(0);
    let text = format!("{healthy} of {total} hosts healthy ({share}%, minimum {min_percent}%)");
    if enough {
        Judgement::Pass
    } else {
        Judgement::Fail(text)
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
        None => Judgement::Fail("/memory answer has no allocated bytes".into()),
        Some(n) if n > limit => Judgement::Warn(format!(
            "allocated {} is over the limit {}",
            bytes(n),
            bytes(limit)
        )),
        Some(_) => Judgement::Pass,
    }
}

/// Bytes for people: `512 MiB`, `1.5 GiB`, `900 B`.
fn bytes(n: u64) -> String {
    const UNITS: &[(&str, u64)] = &[("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= *size {
            let tenths = n.saturating_mul(10) / size;
            return if tenths % 10 == 0 {
                format!("{} {unit}", tenths / 10)
            } else {
                format!("{}.{} {unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn server_states() {
        let cases = [
            (r#"{"version":"x","state":"LIVE"}"#, Judgement::Pass),
            (
                r#"{"state":"DRAINING"}"#,
                Judgement::Fail("Envoy is DRAINING".into()),
            ),
            (
                r#"{"state":"PRE_INITIALIZING"}"#,
                Judgement::Fail("Envoy is PRE_INITIALIZING".into()),
            ),
            (
                r#"{"version":"x"}"#,
                Judgement::Fail("/server_info answer has no state".into()),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(server_state(body.as_bytes()), want, "{body}");
        }
        assert!(
            matches!(server_state(b"<html>"), Judgement::Fail(r) if r.starts_with("/server_info answer is not JSON"))
        );
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
            cluster_health(two_of_four.as_bytes(), "backend", 50),
            Judgement::Pass
        );
        assert_eq!(
            cluster_health(two_of_four.as_bytes(), "backend", 51),
            Judgement::Fail("2 of 4 hosts healthy (50%, minimum 51%)".into())
        );
        let all_down = clusters(&[hc_failed, ejected]);
        assert_eq!(
            cluster_health(all_down.as_bytes(), "backend", 100),
            Judgement::Fail("0 of 2 hosts healthy (0%, minimum 100%)".into())
        );
        let empty = clusters(&[]);
        assert_eq!(
            cluster_health(empty.as_bytes(), "backend", 1),
            Judgement::Fail("0 of 0 hosts healthy (0%, minimum 1%)".into())
        );
        assert_eq!(
            cluster_health(empty.as_bytes(), "backend", 0),
            Judgement::Pass
        );
        assert_eq!(
            cluster_health(empty.as_bytes(), "nope", 0),
            Judgement::Fail("cluster \"nope\" is not in /clusters".into())
        );
        // No health_status at all: Envoy routes to it.
        let bare = r#"{"cluster_statuses":[{"name":"backend","host_statuses":[{"address":{}}]}]}"#;
        assert_eq!(
            cluster_health(bare.as_bytes(), "backend", 100),
            Judgement::Pass
        );
    }

    #[test]
    fn memory_limits() {
        let body = br#"{"allocated":"6291456","heap_size":"8388608"}"#;
        assert_eq!(memory(body, 6_291_456), Judgement::Pass);
        assert_eq!(
            memory(body, 4 << 20),
            Judgement::Warn("allocated 6 MiB is over the limit 4 MiB".into())
        );
        assert_eq!(
            memory(br#"{"allocated":1600}"#, 1000),
            Judgement::Warn("allocated 1.5 KiB is over the limit 1000 B".into())
        );
        assert_eq!(
            memory(br#"{"heap_size":"1"}"#, 1000),
            Judgement::Fail("/memory answer has no allocated bytes".into())
        );
    }
}
