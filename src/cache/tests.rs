use super::*;
use crate::failure::Failure;
use crate::fixtures::policy;
use crate::report::CheckReport;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn cfg(ttl: u64, refresh: bool, on_miss: OnMiss) -> CachePolicy {
    CachePolicy {
        ttl_ms: ttl,
        refresh,
        max_stale_ms: 10_000,
        on_stale: on_miss,
        on_startup: on_miss,
    }
}

const ME: u64 = 1;
const OTHER: u64 = 2;

fn held(expires: u64) -> Option<Lease> {
    Some(Lease {
        owner: OTHER,
        expires_ms: expires,
    })
}

#[test]
fn plan_table() {
    let plain = cfg(2_000, false, OnMiss::Run);
    let refresh = cfg(2_000, true, OnMiss::Run);
    let strict = cfg(2_000, true, OnMiss::Fail);
    let none = cfg(0, false, OnMiss::Run);
    let now = 100_000;
    let cases: &[(&CachePolicy, Option<u64>, Option<Lease>, bool, Plan)] = &[
        // Fresh: served, whatever else.
        (
            &plain,
            Some(now - 1_999),
            held(now + 500),
            true,
            Plan::Serve,
        ),
        // Expired: run, unless this worker runs already or another does.
        (&plain, Some(now - 2_000), None, false, Plan::Run),
        (&plain, Some(now - 2_000), None, true, Plan::Join),
        (
            &plain,
            Some(now - 2_000),
            held(now + 500),
            false,
            Plan::Serve,
        ),
        (
            &plain,
            Some(now - 20_000),
            held(now + 500),
            false,
            Plan::Wait,
        ),
        (&plain, None, held(now + 500), false, Plan::Wait),
        // An expired lease or my own lease does not block.
        (&plain, None, held(now), false, Plan::Run),
        (
            &plain,
            None,
            Some(Lease {
                owner: ME,
                expires_ms: now + 500,
            }),
            false,
            Plan::Run,
        ),
        // No cache: every probe runs (or joins the run in flight).
        (&none, Some(now), None, false, Plan::Run),
        (&none, Some(now), None, true, Plan::Join),
        (&none, Some(now), held(now + 500), false, Plan::Wait),
        // Background refresh: served up to max_stale, then on_stale.
        (&refresh, Some(now - 9_000), None, false, Plan::Serve),
        (&refresh, Some(now - 11_000), None, false, Plan::Run),
        (&refresh, None, None, false, Plan::Run),
        (
            &strict,
            Some(now - 11_000),
            None,
            false,
            Plan::Fail("stale result (11000ms old, max_stale 10000ms)".into()),
        ),
        (
            &strict,
            None,
            None,
            false,
            Plan::Fail("no result yet".into()),
        ),
    ];
    for (i, (c, at, lease, local, want)) in cases.iter().enumerate() {
        assert_eq!(plan(c, *at, *lease, ME, *local, now), *want, "case {i}");
    }
}

#[test]
fn leases_and_entries_round_trip() {
    let l = Lease {
        owner: 0xdead_beef,
        expires_ms: 1_795_221_601_123,
    };
    assert_eq!(Lease::decode(&l.encode()), Some(l));
    assert_eq!(Lease::decode(b"garbage"), None);
    assert_eq!(Lease::decode(b"zz:1"), None);
    let mut r = Report::new(
        "ready",
        vec![CheckReport::new(
            "db",
            true,
            Err(Failure::BodyLacks {
                text: "x \"y\"".into(),
            }),
            3,
        )],
    );
    r.at_ms = 42;
    // The typed cause stays with the worker that ran the check (its
    // metrics); the shared result carries the reason.
    let mut shared = r.clone();
    shared.checks[0].failure = None;
    assert_eq!(decode(&encode(&r)), Some(shared));
    assert_eq!(decode(b"{"), None);
    assert_ne!(result_key(1, "ready"), result_key(2, "ready"));
    assert_ne!(result_key(1, "ready"), lease_key(1, "ready"));
}

#[test]
fn selection_narrows_and_aggregates_again() {
    let p = policy();
    let mut full = Report::new(
        "ready",
        vec![
            CheckReport::new("db", true, Err(Failure::NoHealthyUpstream), 3),
            CheckReport::new("cache", false, Ok(()), 3),
            CheckReport::new("search", true, Ok(()), 3),
        ],
    );
    full.at_ms = 7;
    assert_eq!(full.health, Health::Fail);
    let notes = vec!["unknown check \"x\" in exclude".to_string()];
    let r = select(&p, 1, &[1, 2], &full, &notes);
    assert_eq!((r.health, r.checks.len(), r.at_ms), (Health::Pass, 2, 7));
    assert_eq!(r.notes, notes);
    let all = select(&p, 1, &[0, 1, 2], &full, &[]);
    assert_eq!(all, full);
}

#[test]
fn state_changes_are_logged_once() {
    let r = |h: Result<(), u64>| {
        let timeout = |after_ms| Failure::Timeout { after_ms };
        Report::new(
            "ready",
            vec![CheckReport::new("db", true, h.map_err(timeout), 1)],
        )
    };
    assert_eq!(changes(None, &r(Ok(()))), Vec::<String>::new());
    assert_eq!(
        changes(None, &r(Err(300))),
        vec!["check \"db\" of endpoint \"ready\": none -> fail: timeout after 300ms"]
    );
    assert_eq!(changes(Some(&r(Ok(()))), &r(Ok(()))), Vec::<String>::new());
    assert_eq!(
        changes(Some(&r(Ok(()))), &r(Err(500))),
        vec!["check \"db\" of endpoint \"ready\": pass -> fail: timeout after 500ms"]
    );
    assert_eq!(
        changes(Some(&r(Err(1))), &r(Ok(()))),
        vec!["check \"db\" of endpoint \"ready\": fail -> pass"]
    );
}

#[test]
fn age_in_whole_seconds() {
    assert_eq!(age_secs(1_000, 2_999), 1);
    assert_eq!(age_secs(5_000, 1_000), 0);
}

#[test]
fn stored_results_keep_the_format_serde_derive_wrote() {
    let mut r = Report::new(
        "ready",
        vec![
            CheckReport::at("db", true, Ok(()), 3, 7),
            CheckReport::at(
                "c\"x",
                false,
                Err(Failure::Slow {
                    took_ms: 5,
                    limit_ms: 4,
                }),
                5,
                8,
            ),
        ],
    );
    r.at_ms = 9;
    r.notes = vec!["unknown \"zz\"".into()];
    let reason = r.checks[1].reason.clone().unwrap();
    let text = String::from_utf8(encode(&r)).unwrap();
    assert_eq!(
        text,
        format!(
            "{{\"endpoint\":\"ready\",\"health\":\"Warn\",\"checks\":[\
             {{\"name\":\"db\",\"health\":\"Pass\",\"critical\":true,\"reason\":null,\"latency_ms\":3,\"at_ms\":7,\"component_type\":\"component\"}},\
             {{\"name\":\"c\\\"x\",\"health\":\"Warn\",\"critical\":false,\"reason\":\"{reason}\",\"latency_ms\":5,\"at_ms\":8,\"component_type\":\"component\"}}],\
             \"at_ms\":9,\"notes\":[\"unknown \\\"zz\\\"\"]}}"
        )
    );
    let mut back = r.clone();
    back.checks[1].failure = None;
    assert_eq!(decode(text.as_bytes()), Some(back));
    // Fields in any order, as serde's derive read them.
    let reordered = br#"{"notes":[],"at_ms":1,"checks":[],"health":"Fail","endpoint":"e"}"#;
    assert_eq!(decode(reordered).map(|r| r.health), Some(Health::Fail));
}
