//! Judging a callout's answer: arbitrary `:status` (or none), body bytes,
//! and check definitions (expected statuses, a body expectation of either
//! kind, `max_body`, `warn_after`, criticality), read the way the host
//! reads them: `body_bytes_needed` first, then `evaluate` on that much.
//!
//! Invariants: the host never reads past the body nor more than it must;
//! a failure always has a reason, and a reason stays short whatever the
//! upstream sent; a pass means the status was expected and the body (when
//! judged) within `max_body`; the check's health follows its outcome.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use meshprobe::failure::{Failure, Judgement};
use meshprobe::metrics;
use meshprobe::outcome::{
    body_bytes_needed, dispatch_failure, evaluate, judge, CalloutResponse, DispatchError,
    DIAGNOSTIC_BODY_BYTES,
};
use meshprobe::policy::{BodyExpect, Check, CheckKind, StatusSet};
use meshprobe::report::{CheckReport, Health};
use serde_json::Value;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    status: Option<Status<'a>>,
    body: Body<'a>,
    /// Extra bytes the upstream claims beyond what was read (a host that
    /// is handed a shorter buffer than the body size).
    claimed_extra: Option<u16>,
    expect_status: Vec<(u16, u16)>,
    expect_body: Option<Expect<'a>>,
    kind: Kind,
    max_body: u64,
    timeout_ms: u64,
    elapsed_ms: u64,
    warn_after_ms: Option<u64>,
    critical: bool,
    dispatch: (bool, u32),
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Http,
    Server,
    Cluster(u8, u64),
    Memory(u64),
}

#[derive(Arbitrary, Debug)]
enum Status<'a> {
    Code(u16),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Body<'a> {
    Raw(&'a [u8]),
    /// One of Envoy's local replies, then arbitrary bytes.
    Envoy(u8, &'a [u8]),
    Json(Json),
    Admin(Admin),
}

/// Bodies shaped like Envoy's admin answers.
#[derive(Arbitrary, Debug)]
enum Admin {
    ServerInfo(Json),
    Clusters(Vec<(u8, Vec<Option<Vec<(u8, Json)>>>)>),
    Memory(Json),
}

const CLUSTER_NAMES: &[&str] = &["backend", "other", "", "☃"];
const HEALTH_KEYS: &[&str] = &[
    "eds_health_status",
    "failed_active_health_check",
    "failed_outlier_check",
    "pending_dynamic_removal",
];

impl Admin {
    fn value(&self) -> Value {
        match self {
            Admin::ServerInfo(state) => serde_json::json!({"state": state.value()}),
            Admin::Memory(allocated) => serde_json::json!({"allocated": allocated.value()}),
            Admin::Clusters(clusters) => {
                let statuses: Vec<Value> = clusters
                    .iter()
                    .map(|(name, hosts)| {
                        let hosts: Vec<Value> = hosts
                            .iter()
                            .map(|h| match h {
                                None => serde_json::json!({"address": {}}),
                                Some(flags) => {
                                    let status: serde_json::Map<String, Value> = flags
                                        .iter()
                                        .map(|(k, v)| {
                                            let k =
                                                HEALTH_KEYS[usize::from(*k) % HEALTH_KEYS.len()];
                                            (k.to_string(), v.value())
                                        })
                                        .collect();
                                    serde_json::json!({"health_status": status})
                                }
                            })
                            .collect();
                        let name = CLUSTER_NAMES[usize::from(*name) % CLUSTER_NAMES.len()];
                        serde_json::json!({"name": name, "host_statuses": hosts})
                    })
                    .collect();
                serde_json::json!({"cluster_statuses": statuses})
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Expect<'a> {
    Contains(&'a str),
    Pointer {
        pointer: Pointer<'a>,
        accepted: Vec<Json>,
    },
}

#[derive(Arbitrary, Debug)]
enum Pointer<'a> {
    Path(Vec<Segment<'a>>),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Segment<'a> {
    Index(u8),
    Key(&'a str),
}

/// A small JSON value.
#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => Value::from(*i),
            Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::from(s.as_str()),
            Json::Array(items) => Value::Array(items.iter().map(Json::value).collect()),
            Json::Object(pairs) => {
                Value::Object(pairs.iter().map(|(k, v)| (k.clone(), v.value())).collect())
            }
        }
    }
}

const ENVOY: &[&str] = &[
    "upstream request timeout",
    "no healthy upstream",
    "upstream connect error or disconnect/reset before headers. reset reason: ",
    "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused",
    "upstream connect error or disconnect/reset before headers. reset reason: protocol error",
];

fuzz_target!(|input: Input<'_>| {
    let status_text = match &input.status {
        None => None,
        Some(Status::Code(c)) => Some(c.to_string()),
        Some(Status::Raw(s)) => Some((*s).to_string()),
    };
    let status = status_text.as_deref();
    let body: Vec<u8> = match &input.body {
        Body::Raw(b) => b.to_vec(),
        Body::Envoy(i, rest) => {
            let mut b = ENVOY[usize::from(*i) % ENVOY.len()].as_bytes().to_vec();
            b.extend_from_slice(rest);
            b
        }
        Body::Json(j) => j.value().to_string().into_bytes(),
        Body::Admin(a) => a.value().to_string().into_bytes(),
    };
    let mut pointer_len = 0;
    let expect_body = input.expect_body.as_ref().map(|e| match e {
        Expect::Contains(text) => BodyExpect::Contains((*text).to_string()),
        Expect::Pointer { pointer, accepted } => {
            let pointer = match pointer {
                Pointer::Raw(p) => (*p).to_string(),
                Pointer::Path(segments) => segments
                    .iter()
                    .map(|s| match s {
                        Segment::Index(i) => format!("/{i}"),
                        Segment::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
                    })
                    .collect(),
            };
            pointer_len = pointer.len();
            BodyExpect::Pointer {
                pointer,
                // The module's own JSON value (src/json), from serde_json's text.
                accepted: accepted
                    .iter()
                    .filter_map(|j| {
                        meshprobe::json::from_slice(j.value().to_string().as_bytes()).ok()
                    })
                    .collect(),
            }
        }
    });
    let check = Check {
        name: "c".into(),
        kind: match input.kind {
            Kind::Http => CheckKind::Http,
            Kind::Server => CheckKind::EnvoyServer,
            Kind::Cluster(name, min) => CheckKind::EnvoyCluster {
                cluster: CLUSTER_NAMES[usize::from(name) % CLUSTER_NAMES.len()].into(),
                min_healthy_percent: min,
            },
            Kind::Memory(limit) => CheckKind::EnvoyMemory { limit_bytes: limit },
        },
        cluster: "c".into(),
        method: "GET".into(),
        path: "/".into(),
        authority: "c".into(),
        headers: Vec::new(),
        timeout_ms: Some(input.timeout_ms),
        expect_status: StatusSet(input.expect_status.clone()),
        expect_body,
        max_body: input.max_body,
        warn_after_ms: input.warn_after_ms,
        component_type: "component".into(),
        critical: input.critical,
    };

    // The host asks how much body it must read, then reads that much.
    let size = body.len();
    let needed = body_bytes_needed(&check, status, size);
    assert!(needed <= size);
    let reads_body = check.expect_body.is_some() || check.kind != CheckKind::Http;
    match &check.expect_body {
        _ if reads_body && (size as u64) <= check.max_body => assert_eq!(needed, size),
        _ if reads_body => assert_eq!(needed, 0),
        None if matches!(status, Some("502" | "503" | "504")) => {
            assert_eq!(needed, size.min(DIAGNOSTIC_BODY_BYTES))
        }
        _ => assert_eq!(needed, 0),
    }
    let read = &body[..needed];
    let mut responses = vec![CalloutResponse {
        status,
        body: read,
        body_size: size,
    }];
    // A host handing over the whole body, or claiming more than it gives.
    responses.push(CalloutResponse {
        status,
        body: &body,
        body_size: size + input.claimed_extra.map_or(0, usize::from),
    });

    for response in &responses {
        let outcome = evaluate(response, &check, input.timeout_ms, input.elapsed_ms);
        match &outcome {
            Ok(()) => {
                let code: u16 = status
                    .and_then(|s| s.trim().parse().ok())
                    .expect("a pass has a status");
                assert!(check.expect_status.contains(code));
                if check.expect_body.is_some() {
                    assert!(response.body_size as u64 <= check.max_body);
                }
            }
            Err(failure) => {
                let reason = failure.to_string();
                assert!(!reason.trim().is_empty());
                // Bounded whatever the body: only the pointer and the
                // expected statuses, from the policy, are not truncated.
                let from_policy = 12 * pointer_len + 14 * check.expect_status.0.len();
                assert!(
                    reason.len() <= 1024 + from_policy,
                    "reason of {} bytes",
                    reason.len()
                );
                if status.is_none() {
                    // No headers: Envoy cut the answer off (or ran out of time).
                    assert!(
                        matches!(failure, Failure::Timeout { .. } | Failure::BrokeOff),
                        "{reason}"
                    );
                }
            }
        }
        // judge: evaluate first, then the admin answer for envoy_* kinds.
        let judged = judge(response, &check, input.timeout_ms, input.elapsed_ms);
        match (&outcome, &judged) {
            (Err(reason), Judgement::Fail(r)) => assert_eq!(reason, r),
            (Err(_), other) => panic!("evaluate failed but judge says {other:?}"),
            (Ok(()), Judgement::Pass) => {}
            (Ok(()), Judgement::Warn(f) | Judgement::Fail(f)) => {
                let r = f.to_string();
                assert_ne!(check.kind, CheckKind::Http, "{r}");
                assert!(!r.trim().is_empty());
                assert!(r.len() <= 1024, "reason of {} bytes", r.len());
            }
        }
        if check.kind != CheckKind::Http && response.body_size as u64 > check.max_body {
            assert!(matches!(judged, Judgement::Fail(_)));
        }
        let report = CheckReport::at("c", input.critical, outcome.clone(), input.elapsed_ms, 0)
            .slow_after(input.warn_after_ms);
        match (&outcome, input.critical) {
            (Err(_), true) => assert_eq!(report.health, Health::Fail),
            (Err(_), false) => assert_eq!(report.health, Health::Warn),
            (Ok(()), _) => {
                let slow = input.warn_after_ms.is_some_and(|w| input.elapsed_ms > w);
                let want = if slow { Health::Warn } else { Health::Pass };
                assert_eq!(report.health, want);
            }
        }
        assert_eq!(report.reason.is_some(), report.health != Health::Pass);
        assert!(report.reason.as_ref().is_none_or(|r| !r.is_empty()));
        // The reason is the typed failure's text, the metric label its label.
        assert_eq!(
            report.reason,
            report.failure.as_ref().map(Failure::to_string)
        );
        let label = metrics::outcome(&report);
        match &outcome {
            Err(f) => assert_eq!(label, f.label()),
            Ok(()) => assert_eq!(label, "pass"),
        }
    }

    let err = if input.dispatch.0 {
        DispatchError::BadArgument
    } else {
        DispatchError::Other(input.dispatch.1)
    };
    assert!(!dispatch_failure(err, &check.cluster).to_string().is_empty());
});
