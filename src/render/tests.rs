//! Golden files: every view of a few reports, compared byte for byte with
//! `tests/golden/`. `MESHPROBE_BLESS=1 cargo test --lib render` rewrites
//! them (then read the diff).

use super::*;
use crate::failure::Failure;
use crate::policy::Service;
use crate::report::CheckReport;
use std::path::PathBuf;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const AT: u64 = 1_795_221_601_123; // 2026-11-21T00:40:01.123Z

/// A check result failed with this reason text. The renderers show
/// `reason` as it is, whatever it says (hostile text included), so the
/// typed cause behind it is a stand-in here.
fn check(name: &str, critical: bool, outcome: Result<(), &str>, latency: u64) -> CheckReport {
    let stand_in = Failure::NoResultYet;
    let mut c = CheckReport::at(name, critical, outcome.map_err(|_| stand_in), latency, AT);
    if let Err(text) = outcome {
        c.reason = Some(text.into());
    }
    if name == "db" {
        c.component_type = "datastore".into();
    }
    c
}

/// One passing, one warning, one failing check, a hostile name and reason.
fn mixed() -> Report {
    let mut r = Report::new(
        "ready",
        vec![
            check("db", true, Ok(()), 12),
            check("cache", false, Err("timeout after 300ms"), 300),
            check(
                "search",
                true,
                Err("unexpected status 500 (expected 200-299)"),
                4,
            ),
            check(
                "<script>alert(1)</script>",
                true,
                Err("body has \"quotes\" & <tags>\nand a line break"),
                1,
            ),
        ],
    );
    r.at_ms = AT;
    r.notes = vec!["unknown check \"nope\" in exclude".into()];
    r
}

fn passing() -> Report {
    let mut r = Report::new(
        "ready",
        vec![
            check("db", true, Ok(()), 3),
            check("cache", false, Ok(()), 5),
        ],
    );
    r.at_ms = AT;
    r
}

fn service() -> Service {
    Service {
        id: Some("orders".into()),
        version: Some("1.4.2".into()),
        description: Some("Orders API".into()),
    }
}

/// Lists every golden file. Natively the files are read from disk (blessing
/// writes them there); wasm32 under Node has no filesystem, so there they
/// are compiled in. The view test checks that this list is exactly the set
/// of files it compares, so a new golden cannot be skipped on wasm32.
macro_rules! goldens {
    ($($name:literal)*) => {
        const GOLDEN_NAMES: &[&str] = &[$($name),*];
        #[cfg(target_arch = "wasm32")]
        const GOLDEN_TEXTS: &[&str] = &[$(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/", $name))
        ),*];
    };
}

goldens! {
    "mixed-atom-anonymous.xml"
    "mixed-atom-details.xml"
    "mixed-dhc-anonymous.json"
    "mixed-dhc-details.json"
    "mixed-health-anonymous.json"
    "mixed-health-details.json"
    "mixed-html-anonymous.html"
    "mixed-html-details.html"
    "mixed-json-anonymous.json"
    "mixed-json-details.json"
    "mixed-openmetrics-anonymous.txt"
    "mixed-openmetrics-details.txt"
    "mixed-rss-anonymous.xml"
    "mixed-rss-details.xml"
    "mixed-text-anonymous.txt"
    "mixed-text-details.txt"
    "mixed-text-verbose-anonymous.txt"
    "mixed-text-verbose-details.txt"
    "passing-atom-anonymous.xml"
    "passing-atom-details.xml"
    "passing-dhc-anonymous.json"
    "passing-dhc-details.json"
    "passing-health-anonymous.json"
    "passing-health-details.json"
    "passing-html-anonymous.html"
    "passing-html-details.html"
    "passing-json-anonymous.json"
    "passing-json-details.json"
    "passing-openmetrics-anonymous.txt"
    "passing-openmetrics-details.txt"
    "passing-rss-anonymous.xml"
    "passing-rss-details.xml"
    "passing-text-anonymous.txt"
    "passing-text-details.txt"
    "passing-text-verbose-anonymous.txt"
    "passing-text-verbose-details.txt"
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// `MESHPROBE_BLESS=1`, native only: wasm32 can neither see the variable
/// nor write the files.
fn blessing() -> bool {
    std::env::var("MESHPROBE_BLESS").is_ok()
}

#[cfg(not(target_arch = "wasm32"))]
fn read_golden(name: &str) -> Option<String> {
    std::fs::read_to_string(golden_dir().join(name)).ok()
}

#[cfg(target_arch = "wasm32")]
fn read_golden(name: &str) -> Option<String> {
    let i = GOLDEN_NAMES.iter().position(|n| *n == name)?;
    GOLDEN_TEXTS.get(i).map(|text| text.to_string())
}

fn assert_golden(name: &str, got: &str) {
    let path = golden_dir().join(name);
    if blessing() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = read_golden(name).unwrap_or_else(|| {
        panic!(
            "{} is missing: MESHPROBE_BLESS=1 cargo test --lib render",
            path.display()
        )
    });
    assert_eq!(got, want, "{name} differs from its golden file");
}

fn body(r: &Reply) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

#[test]
fn every_view_matches_its_golden_file() {
    let ext = |f: Format| match f {
        Format::Text | Format::OpenMetrics => "txt",
        Format::Json | Format::Dhc | Format::Health => "json",
        Format::Html => "html",
        Format::Atom | Format::Rss => "xml",
        Format::Grpc => "grpc", // not in Format::ALL: no body, no golden file
    };
    let mut compared = Vec::new();
    for (report_name, report) in [("mixed", mixed()), ("passing", passing())] {
        for &(fname, format) in Format::ALL {
            for (who, details) in [("details", true), ("anonymous", false)] {
                for verbose in [false, true] {
                    if verbose && format != Format::Text {
                        continue; // ?verbose only changes the text view
                    }
                    let v = if verbose { "-verbose" } else { "" };
                    let reply = render(&report, &View::new(format, verbose, details), &service());
                    let name = format!("{report_name}-{fname}{v}-{who}.{}", ext(format));
                    assert_golden(&name, body(&reply));
                    compared.push(name);
                }
            }
        }
    }
    if !blessing() {
        compared.sort();
        let mut listed = GOLDEN_NAMES.to_vec();
        listed.sort_unstable();
        assert_eq!(
            compared, listed,
            "the goldens! list in src/render/tests.rs must name exactly the files compared"
        );
    }
}

#[test]
fn json_views_are_valid_json() {
    for report in [mixed(), passing()] {
        for format in [Format::Json, Format::Dhc, Format::Health] {
            for details in [true, false] {
                let reply = render(&report, &View::new(format, false, details), &service());
                let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
                assert!(v.is_object());
            }
        }
    }
    let v: serde_json::Value = serde_json::from_slice(
        &render(&mixed(), &View::new(Format::Json, false, true), &service()).body,
    )
    .unwrap();
    assert_eq!(
        v["checks"]["<script>alert(1)</script>"]["reason"],
        "body has \"quotes\" & <tags>\nand a line break"
    );
}

#[test]
fn anonymous_views_name_no_check_and_no_version() {
    for &(_, format) in Format::ALL {
        for verbose in [false, true] {
            let reply = render(&mixed(), &View::new(format, verbose, false), &service());
            let text = body(&reply);
            for secret in [
                "db", "cache", "search", "alert", "timeout", "1.4.2", "nope", "orders",
            ] {
                assert!(
                    !text.contains(secret),
                    "{format:?} shows {secret:?}: {text}"
                );
            }
        }
    }
}

#[test]
fn markup_is_escaped() {
    for format in [Format::Html, Format::Atom, Format::Rss] {
        let reply = render(&mixed(), &View::new(format, false, true), &service());
        let text = body(&reply);
        assert!(!text.contains("<script>"), "{format:?}");
        assert!(!text.contains("<tags>"), "{format:?}");
    }
    assert_eq!(
        escape_markup("a<b>&\"'\u{1}"),
        "a&lt;b&gt;&amp;&quot;&#39;\u{fffd}"
    );
}

#[test]
fn text_lines_cannot_be_forged_through_a_reason() {
    let reply = render(&mixed(), &View::new(Format::Text, true, true), &service());
    assert!(body(&reply)
        .lines()
        .all(|l| !l.starts_with("and a line break")));
}

#[test]
fn statuses_and_headers() {
    let fail = render(&mixed(), &View::new(Format::Json, false, true), &service());
    assert_eq!(fail.status, 503);
    assert!(fail
        .headers
        .contains(&("content-type", "application/json".into())));
    assert!(fail.headers.contains(&("cache-control", "no-store".into())));
    assert!(fail.headers.contains(&("vary", "Accept".into())));
    assert!(fail
        .headers
        .contains(&("x-content-type-options", "nosniff".into())));
    // Feeds and OpenMetrics always answer 200.
    for format in [Format::Atom, Format::Rss, Format::OpenMetrics] {
        assert_eq!(
            render(&mixed(), &View::new(format, false, true), &service()).status,
            200
        );
    }
    // Status-code mapping and the degraded header.
    let mut warn = passing();
    warn.checks[1] = check("cache", false, Err("down"), 5);
    warn.health = crate::report::aggregate(&warn.checks);
    let view = View {
        codes: StatusCodes {
            pass: 200,
            warn: 299,
            fail: 500,
        },
        degraded_header: true,
        ..View::new(Format::Text, false, true)
    };
    let reply = render(&warn, &view, &service());
    assert_eq!(reply.status, 299);
    assert!(reply.headers.contains(&("x-envoy-degraded", "true".into())));
    assert_eq!(render(&mixed(), &view, &service()).status, 500);
    let ok = render(&passing(), &view, &service());
    assert!(!ok.headers.iter().any(|(k, _)| *k == "x-envoy-degraded"));
    let html = render(
        &passing(),
        &View::new(Format::Html, false, true),
        &service(),
    );
    assert!(html
        .headers
        .contains(&("content-type", "text/html; charset=utf-8".into())));
    assert!(html
        .headers
        .iter()
        .any(|(k, v)| *k == "content-security-policy" && v.contains("default-src 'none'")));
}

#[test]
fn feed_ids_are_stable_across_latency_changes() {
    let slow = |ms: u64| {
        let mut r = Report::new(
            "ready",
            vec![check("db", true, Ok(()), ms).slow_after(Some(100))],
        );
        r.at_ms = AT + ms;
        body(&render(
            &r,
            &View::new(Format::Atom, false, true),
            &service(),
        ))
        .lines()
        .find(|l| l.starts_with("<entry>"))
        .map(|l| l[..l.find("</id>").unwrap()].to_string())
        .unwrap()
    };
    assert_eq!(slow(351), slow(349));
}

#[test]
fn probe_answers_carry_the_answer_header() {
    for &(_, format) in Format::ALL {
        let reply = render(&mixed(), &View::new(format, false, false), &service());
        assert!(
            reply.headers.contains(&(ANSWER_HEADER, "probe".into())),
            "{format:?}"
        );
    }
    // Refusals (404, 405...) do not carry it: they stay in access logs.
    assert!(!Reply::plain(404, "")
        .headers
        .iter()
        .any(|(k, _)| *k == ANSWER_HEADER));
}

#[test]
fn openmetrics_view() {
    let details = render(
        &mixed(),
        &View::new(Format::OpenMetrics, false, true),
        &service(),
    );
    assert_eq!(details.status, 200);
    assert!(details.headers.contains(&(
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8".into()
    )));
    let text = body(&details);
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    assert!(text.contains("meshprobe_endpoint_status{endpoint=\"ready\"} 2\n"));
    assert!(text.contains("meshprobe_check_status{endpoint=\"ready\",check=\"cache\"} 1\n"));
    assert!(text.contains(
        "meshprobe_check_response_time_seconds{endpoint=\"ready\",check=\"cache\"} 0.300\n"
    ));
    // Every sample is on one line: a reason or name cannot add one.
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples, 1 + 2 * mixed().checks.len());
    let anonymous = render(
        &passing(),
        &View::new(Format::OpenMetrics, false, false),
        &service(),
    );
    assert_eq!(
        body(&anonymous),
        "# TYPE meshprobe_endpoint_status gauge\n\
         # HELP meshprobe_endpoint_status Health of the endpoint: 0 pass, 1 warn, 2 fail.\n\
         meshprobe_endpoint_status{endpoint=\"ready\"} 0\n\
         # EOF\n"
    );
}

/// What `Reply::sent` gives its `send` for `reply`, with the calls to
/// serialize and age counted in `calls` (serialize: the header names'
/// lengths; age: the map and the seconds).
fn sent(reply: &Reply, calls: &std::cell::Cell<(u32, u32)>) -> Vec<u8> {
    let serialize = |headers: &[Header]| {
        calls.set((calls.get().0 + 1, calls.get().1));
        headers.iter().map(|(k, _)| k.len() as u8).collect()
    };
    let age = |map: &[u8], secs: u64| {
        calls.set((calls.get().0, calls.get().1 + 1));
        [map, &[100 + secs as u8]].concat()
    };
    reply.sent(serialize, age, |map| map.to_vec())
}

#[test]
fn a_reply_is_shared_serialized_once_and_aged_apart() {
    let reply = Reply::plain(200, "ok\n");
    let copy = reply.clone();
    let calls = std::cell::Cell::new((0, 0));
    let once = sent(&reply, &calls);
    assert_eq!(
        once,
        [12, 13, 4, 22],
        "content-type, cache-control, vary, x-content-type-options"
    );
    assert_eq!(sent(&copy, &calls), once, "the copy shares it");
    assert_eq!(calls.get(), (1, 0));
    // The age is the copy's own: the headers stay shared and unchanged.
    let aged = copy.with_age(7);
    assert_eq!((aged.age(), reply.age()), (Some(7), None));
    assert_eq!(sent(&aged, &calls), [12, 13, 4, 22, 107]);
    assert_eq!(calls.get(), (1, 1));
    assert_eq!(aged.headers, reply.headers);
    assert_ne!(aged, reply, "an age is part of the reply");
    assert_eq!(aged.clone().with_age(7), aged);
    // A reply equals itself whether or not it was serialized.
    assert_eq!(reply, Reply::plain(200, "ok\n"));
    let shown = format!("{reply:?}");
    assert_eq!(shown, format!("{:?}", Reply::plain(200, "ok\n")));
    assert!(shown.contains("map: Memo"), "{shown}");
}

#[test]
fn an_aged_map_is_made_once_per_age_and_a_copy_of_the_parts_starts_anew() {
    let calls = std::cell::Cell::new((0, 0));
    let reply = Reply::plain(200, "ok\n");
    let at = |secs| reply.clone().with_age(secs);
    assert_eq!(sent(&at(3), &calls), [12, 13, 4, 22, 103]);
    assert_eq!(sent(&at(3), &calls), [12, 13, 4, 22, 103]);
    assert_eq!(calls.get(), (1, 1), "the same age: the kept map");
    assert_eq!(sent(&at(4), &calls), [12, 13, 4, 22, 104]);
    assert_eq!(sent(&at(4), &calls), [12, 13, 4, 22, 104]);
    assert_eq!(calls.get(), (1, 2), "a new age: aged once more");
    assert_eq!(sent(&reply, &calls), [12, 13, 4, 22], "no age: the map");
    // Parts copied out of a reply keep none of its maps.
    let parts: Parts = (*at(4)).clone();
    assert_eq!(
        sent(&Reply::from(parts).with_age(4), &calls),
        [12, 13, 4, 22, 104]
    );
    assert_eq!(calls.get(), (2, 3));
}

#[test]
fn a_reply_sent_while_it_is_being_sent_is_aged_without_the_memo() {
    let calls = std::cell::Cell::new((0, 0));
    let reply = Reply::plain(200, "ok\n").with_age(5);
    let serialize = |headers: &[Header]| headers.iter().map(|(k, _)| k.len() as u8).collect();
    let inner = reply.sent(
        serialize,
        |map, secs| [map, &[100 + secs as u8]].concat(),
        |_| sent(&reply, &calls),
    );
    assert_eq!(inner, [12, 13, 4, 22, 105]);
    assert_eq!(calls.get(), (0, 1), "aged apart, the map already made");
}
