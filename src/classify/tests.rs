use super::*;
use crate::fixtures::policy;
use std::collections::HashMap;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Headers from a list; remembers which ones the classifier read.
struct Headers {
    map: HashMap<String, String>,
    read: Vec<String>,
}

impl Headers {
    fn new(list: &[(&str, &str)]) -> Self {
        Headers {
            map: list
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            read: Vec::new(),
        }
    }
}

impl RequestHeaders for Headers {
    fn get(&mut self, name: &str) -> Option<&str> {
        self.read.push(name.to_string());
        self.map.get(name).map(String::as_str)
    }

    /// Properties are given as `"@source.address"` entries.
    fn property(&mut self, path: &[&str]) -> Option<String> {
        let key = format!("@{}", path.join("."));
        self.read.push(key.clone());
        self.map.get(&key).cloned()
    }
}

fn decide(path: &str, headers: &[(&str, &str)]) -> Decision {
    let mut all = vec![(":method", "GET")];
    all.extend_from_slice(headers);
    classify(&policy(), path, &mut Headers::new(&all))
}

fn probe(endpoint: usize, authorized: bool, format: Format, verbose: bool) -> Decision {
    Decision::Probe(Probe {
        endpoint,
        authorized,
        details: authorized,
        format,
        verbose,
        checks: None,
        notes: Vec::new(),
    })
}

fn probe_of(endpoint: usize, checks: Vec<usize>, notes: Vec<&str>) -> Decision {
    Decision::Probe(Probe {
        endpoint,
        authorized: true,
        details: true,
        format: Format::Text,
        verbose: false,
        checks: Some(checks),
        notes: notes.into_iter().map(String::from).collect(),
    })
}

fn status(d: &Decision) -> Option<u16> {
    match d {
        Decision::Reply(r) => Some(r.status),
        Decision::Unauthorized { reply: Some(r), .. } => Some(r.status),
        _ => None,
    }
}

fn unauth(endpoint: usize, status: u16) -> Decision {
    let reply = match status {
        404 => Some(Reply::plain(404, "")),
        403 => Some(Reply::plain(403, "forbidden\n")),
        _ => None,
    };
    Decision::Unauthorized {
        endpoint,
        reply,
        new_path: None,
    }
}

const PASS: Decision = Decision::PassThrough { new_path: None };

#[test]
#[allow(clippy::type_complexity)]
fn classification_table() {
    use Format::{Json, Text};
    let cases: Vec<(&str, Vec<(&str, &str)>, Decision)> = vec![
        // Public liveness: anyone; details only with a secret.
        ("/livez", vec![], probe(0, false, Text, false)),
        (
            "/livez?verbose",
            vec![("x-health", "s3cret")],
            probe(0, true, Text, true),
        ),
        // Protected readiness: each way of presenting a secret.
        (
            "/readyz",
            vec![("x-health", "s3cret")],
            probe(1, true, Text, false),
        ),
        (
            "/readyz",
            vec![("x-health", "n+xt/1")],
            probe(1, true, Text, false),
        ),
        ("/readyz?token=s3cret", vec![], probe(1, true, Text, false)),
        (
            "/readyz?token=n%2Bxt%2F1",
            vec![],
            probe(1, true, Text, false),
        ),
        (
            "/readyz",
            vec![("authorization", "Bearer s3cret")],
            probe(1, true, Text, false),
        ),
        (
            "/readyz",
            vec![("authorization", "bearer s3cret")],
            probe(1, true, Text, false),
        ),
        ("/health/s3cret/ready", vec![], probe(1, true, Text, false)),
        (
            "/health/n+xt%2F1/ready?format=json",
            vec![],
            probe(1, true, Json, false),
        ),
        (
            "/readyz?format=json&verbose=1",
            vec![("x-health", "s3cret")],
            probe(1, true, Json, true),
        ),
        (
            "/readyz",
            vec![("x-health", "s3cret"), ("accept", "application/json")],
            probe(1, true, Json, false),
        ),
        (
            "/deep",
            vec![("x-health", "s3cret")],
            probe(2, true, Json, false),
        ),
        // Unauthorized: default 404, forbidden 403, pass_through upstream.
        ("/readyz", vec![], unauth(1, 404)),
        ("/readyz", vec![("x-health", "S3cret")], unauth(1, 404)),
        ("/readyz", vec![("x-health", "s3cret ")], unauth(1, 404)),
        ("/readyz", vec![("x-health", "s3cre")], unauth(1, 404)),
        ("/readyz", vec![("x-health", "")], unauth(1, 404)),
        (
            "/readyz",
            vec![("x-health", "s3cret,s3cret")],
            unauth(1, 404),
        ),
        ("/readyz?token=", vec![], unauth(1, 404)),
        (
            "/readyz",
            vec![("authorization", "Basic s3cret")],
            unauth(1, 404),
        ),
        (
            "/readyz",
            vec![("authorization", "Bearer  s3cret")],
            unauth(1, 404),
        ),
        ("/health/wrong/ready", vec![], unauth(1, 404)),
        ("/deep", vec![], unauth(2, 403)),
        ("/appz", vec![("x-health", "nope")], unauth(3, 0)),
        (
            "/appz?token=nope&x=1",
            vec![],
            Decision::Unauthorized {
                endpoint: 3,
                reply: None,
                new_path: Some("/appz?x=1".into()),
            },
        ),
        // Public endpoint with checks: anonymous callers get the status only.
        ("/openz?verbose", vec![], probe(4, false, Text, true)),
        // Not probes.
        ("/", vec![], PASS),
        ("/readyz/", vec![("x-health", "s3cret")], PASS),
        ("/READYZ", vec![("x-health", "s3cret")], PASS),
        // Below path_prefix nothing goes upstream: it may carry a secret.
        (
            "/health/s3cret/unknown",
            vec![],
            Decision::Reply(Reply::plain(404, "")),
        ),
        (
            "/health/s3cret",
            vec![],
            Decision::Reply(Reply::plain(404, "")),
        ),
        (
            "/health//ready",
            vec![],
            Decision::Reply(Reply::plain(404, "")),
        ),
        (
            "/health/s3cret/ready/nosuch",
            vec![],
            Decision::Reply(Reply::plain(404, "")),
        ),
        ("/health", vec![], PASS),
        ("/healthz", vec![], PASS),
        (
            "/api?token=s3cret&a=b",
            vec![],
            Decision::PassThrough {
                new_path: Some("/api?a=b".into()),
            },
        ),
    ];
    for (path, headers, want) in cases {
        assert_eq!(decide(path, &headers), want, "{path} {headers:?}");
    }
}

#[test]
fn methods_other_than_get_and_head_get_405_with_allow() {
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
        let mut h = Headers::new(&[(":method", method), ("x-health", "s3cret")]);
        let d = classify(&policy(), "/readyz", &mut h);
        let Decision::Reply(r) = d else {
            panic!("{method}: {d:?}")
        };
        assert_eq!(r.status, 405, "{method}");
        assert!(r.headers.contains(&("allow", "GET, HEAD".into())));
    }
    let mut h = Headers::new(&[(":method", "HEAD"), ("x-health", "s3cret")]);
    assert_eq!(
        classify(&policy(), "/readyz", &mut h),
        probe(1, true, Format::Text, false)
    );
}

#[test]
fn unauthorized_method_is_not_revealed() {
    // A POST without a secret is answered as if nothing were there.
    let mut h = Headers::new(&[(":method", "POST")]);
    assert_eq!(status(&classify(&policy(), "/readyz", &mut h)), Some(404));
}

/// README: every answer on a probe endpoint carries these, the error
/// answers included.
fn assert_every_answer_headers(d: &Decision) {
    let reply = match d {
        Decision::Reply(r) | Decision::Unauthorized { reply: Some(r), .. } => r,
        other => panic!("not a reply: {other:?}"),
    };
    for header in [
        ("cache-control", "no-store"),
        ("vary", "Accept"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert!(
            reply.headers.contains(&(header.0, header.1.into())),
            "{} lacks {header:?}: {:?}",
            reply.status,
            reply.headers
        );
    }
}

#[test]
fn error_answers_carry_the_headers_of_every_answer() {
    let post = [(":method", "POST"), ("x-health", "s3cret")];
    let cases = [
        (decide("/livez?format=xml", &[]), 400),
        (decide("/livez", &[("accept", "image/png")]), 406),
        (
            classify(&policy(), "/readyz", &mut Headers::new(&post)),
            405,
        ),
        (decide("/readyz", &[]), 404),
        (decide("/deep", &[]), 403),
    ];
    for (d, want) in &cases {
        assert_eq!(status(d), Some(*want), "{d:?}");
        assert_every_answer_headers(d);
    }
}

#[test]
fn format_errors() {
    assert_eq!(status(&decide("/livez?format=xml", &[])), Some(400));
    assert_eq!(
        status(&decide("/livez", &[("accept", "image/png")])),
        Some(406)
    );
}

#[test]
fn ordinary_traffic_reads_no_header() {
    let mut h = Headers::new(&[(":method", "GET"), ("x-health", "s3cret")]);
    assert_eq!(classify(&policy(), "/api/orders?id=1", &mut h), PASS);
    assert!(h.read.is_empty(), "read {:?}", h.read);
}

#[test]
fn per_check_paths_and_exclude() {
    let secret = [("x-health", "s3cret")];
    let cases: Vec<(&str, Decision)> = vec![
        ("/readyz/cache", probe_of(1, vec![1], vec![])),
        ("/health/s3cret/ready/search", probe_of(1, vec![2], vec![])),
        ("/readyz?exclude=cache", probe_of(1, vec![0, 2], vec![])),
        (
            "/readyz?exclude=cache&exclude=db",
            probe_of(1, vec![2], vec![]),
        ),
        (
            "/readyz?exclude=nope",
            probe_of(1, vec![0, 1, 2], vec!["unknown check \"nope\" in exclude"]),
        ),
        // A check of another endpoint is not a per-check path of this one.
        ("/deep/cache", PASS),
        ("/readyz/cache/more", PASS),
    ];
    for (path, want) in cases {
        assert_eq!(decide(path, &secret), want, "{path}");
    }
    // Without details, check names are not served: 404, and ?exclude= is ignored.
    assert_eq!(status(&decide("/openz/db", &[])), Some(404));
    assert_eq!(
        decide("/openz?exclude=db", &[]),
        probe(4, false, Format::Text, false)
    );
    // An unauthorized per-check path of a protected endpoint: 404 as usual.
    assert_eq!(status(&decide("/readyz/db", &[])), Some(404));
}

#[test]
fn details_follow_the_endpoint_setting() {
    let json = |details: &str| {
        format!(
            r#"{{"authorization": {{"header": "x-h", "secrets": [{{"value": "s"}}]}},
                "endpoints": [{{"name": "r", "path": "/r", "access": "public", "details": "{details}"}}]}}"#
        )
    };
    for (details, anonymous, authorized) in [
        ("never", false, false),
        ("authorized", false, true),
        ("always", true, true),
    ] {
        let p = Policy::from_json(json(details).as_bytes(), &|_| None).unwrap();
        for (headers, want) in [
            (vec![(":method", "GET")], anonymous),
            (vec![(":method", "GET"), ("x-h", "s")], authorized),
        ] {
            let Decision::Probe(probe) = classify(&p, "/r", &mut Headers::new(&headers)) else {
                panic!()
            };
            assert_eq!(probe.details, want, "{details} {headers:?}");
        }
    }
}

const GATED: &str = r#"{
  "authorization": {"header": "x-health", "secrets": [{"value": "s3cret"}],
                    "sources": ["10.0.0.0/8", "fd00::/8"],
                    "detail_peers": ["spiffe://cluster.local/ns/monitoring/*", "spiffe://cluster.local/ns/ops/sa/oncall"]},
  "endpoints": [
    {"name": "ready", "path": "/readyz", "checks": ["db"]},
    {"name": "live", "path": "/livez", "access": "public", "details": "always"},
    {"name": "anywhere", "path": "/anyz", "access": "public", "sources": ["0.0.0.0/0", "::/0"]}
  ],
  "checks": [{"name": "db", "cluster": "db"}]
}"#;

fn gated(path: &str, headers: &[(&str, &str)]) -> (Decision, Vec<String>) {
    let policy = Policy::from_json(GATED.as_bytes(), &|_| None).unwrap();
    let mut all = vec![(":method", "GET")];
    all.extend_from_slice(headers);
    let mut h = Headers::new(&all);
    let d = classify(&policy, path, &mut h);
    (d, h.read)
}

fn details_of(d: &Decision) -> Option<bool> {
    match d {
        Decision::Probe(p) => Some(p.details),
        _ => None,
    }
}

#[test]
fn probes_are_accepted_only_from_configured_sources() {
    let secret = ("x-health", "s3cret");
    let inside = ("@source.address", "10.1.2.3:40000");
    let inside6 = ("@source.address", "[fd00::7]:40000");
    let outside = ("@source.address", "192.168.1.1:40000");
    // Inside, with the secret: a probe.
    for from in [inside, inside6] {
        let (d, _) = gated("/readyz", &[secret, from]);
        assert!(matches!(d, Decision::Probe(_)), "{from:?}: {d:?}");
    }
    // Outside: refused as unauthorized, secret or not, public or not.
    for (path, headers) in [
        ("/readyz", vec![secret, outside]),
        ("/readyz", vec![secret]),
        ("/livez", vec![outside]),
        ("/livez", vec![secret, ("@source.address", "/var/run/pipe")]),
    ] {
        let (d, _) = gated(path, &headers);
        assert!(
            matches!(&d, Decision::Unauthorized { reply: Some(r), .. } if r.status == 404),
            "{path} {headers:?}: {d:?}"
        );
    }
    // An endpoint's own sources override the policy's.
    let (d, _) = gated("/anyz", &[outside]);
    assert!(matches!(d, Decision::Probe(_)), "{d:?}");
    // Ordinary traffic never reads the source address.
    let (d, read) = gated("/orders", &[outside]);
    assert_eq!(d, Decision::PassThrough { new_path: None });
    assert!(!read.iter().any(|r| r.starts_with('@')), "{read:?}");
}

#[test]
fn details_only_for_configured_peer_identities() {
    let base = [("x-health", "s3cret"), ("@source.address", "10.0.0.9:1")];
    let with = |san: Option<&'static str>| {
        let mut h = base.to_vec();
        if let Some(s) = san {
            h.push(("@connection.uri_san_peer_certificate", s));
        }
        h
    };
    let cases = [
        (
            Some("spiffe://cluster.local/ns/monitoring/sa/prometheus"),
            true,
        ),
        (Some("spiffe://cluster.local/ns/ops/sa/oncall"), true),
        (Some("spiffe://cluster.local/ns/ops/sa/oncall2"), false),
        (Some("spiffe://cluster.local/ns/monitoringx/sa/a"), false),
        (None, false),
    ];
    for (san, want) in cases {
        // An authorized caller on an endpoint with details for the authorized.
        let (d, _) = gated("/readyz", &with(san));
        assert_eq!(details_of(&d), Some(want), "ready, {san:?}");
        // details: always, public: still only for those peers.
        let (d, _) = gated("/livez", &with(san));
        assert_eq!(details_of(&d), Some(want), "live, {san:?}");
    }
}

#[test]
fn per_check_paths_below_the_prefix_never_go_upstream() {
    // Found by the `classify` fuzz target: an endpoint whose path is the
    // path_prefix itself has per-check paths below the prefix; unauthorized
    // with pass_through they went upstream.
    let p = Policy::from_json(
        br#"{"authorization": {"path_prefix": "/_/probe/", "secrets": [{"value": "s3cret"}],
                               "on_unauthorized": "pass_through"},
             "endpoints": [{"name": "ready", "path": "/_/probe", "checks": ["x"]},
                           {"name": "app", "path": "/app", "checks": ["x"]}],
             "checks": [{"name": "x", "cluster": "x"}]}"#,
        &|_| None,
    )
    .unwrap();
    let decide = |path: &str| classify(&p, path, &mut Headers::new(&[(":method", "GET")]));
    assert_eq!(decide("/_/probe/x"), unauth(0, 404));
    assert_eq!(decide("/_/probe/s3cre/ready"), unauth(0, 404));
    // Elsewhere pass_through still passes through.
    assert_eq!(decide("/_/probe"), unauth(0, 0));
    assert_eq!(decide("/app/x"), unauth(1, 0));
}
