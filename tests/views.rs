//! Check semantics and every view, end to end through a real Envoy: the
//! tiers of the `envoy/tiers` example (node, application, pipeline with
//! status pages) against real dependency servers on 127.0.0.1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::deps::{statuspage, Mode};
use support::http::{request, Response};
use support::stack::Stack;

const SECRET: &str = "views-s3cret";

const POLICY: &str = r#"{
  "service": {"id": "orders", "version": "1.4.2", "description": "Orders API"},
  "authorization": {"header": "x-health", "secrets": [{"env": "TOKEN"}], "path_prefix": "/health"},
  "endpoints": [
    {"name": "node", "path": "/livez", "access": "public"},
    {"ttl": "0s", "name": "application", "path": "/readyz", "checks": ["db", "cache", "search"], "degraded_header": true},
    {"ttl": "0s", "name": "pipeline", "path": "/statusz", "include": ["application"], "checks": ["github", "payments"],
     "format": "html", "deadline": "900ms"},
    {"ttl": "0s", "name": "strict", "path": "/strictz", "checks": ["cache"], "warnings_as_errors": true,
     "status_codes": {"fail": 500}},
    {"ttl": "0s", "name": "public", "path": "/publicz", "checks": ["db"], "access": "public"},
    {"ttl": "0s", "name": "never", "path": "/neverz", "checks": ["db"], "details": "never"},
    {"ttl": "0s", "name": "always", "path": "/alwaysz", "checks": ["db"], "access": "public", "details": "always"},
    {"ttl": "0s", "name": "celery", "path": "/celeryz", "checks": ["celery", "small"], "access": "public", "details": "always"}
  ],
  "checks": [
    {"name": "db", "cluster": "db", "path": "/health", "timeout": "400ms", "warn_after": "150ms",
     "component_type": "datastore"},
    {"name": "cache", "cluster": "cache", "path": "/ping", "critical": false},
    {"name": "search", "cluster": "search", "path": "/status"},
    {"name": "github", "cluster": "statuspage", "path": "/api/v2/status.json", "critical": false,
     "expect_body": {"pointer": "/status/indicator", "equals": "none"}, "component_type": "system"},
    {"name": "payments", "cluster": "payments", "path": "/api/v2/status.json", "critical": false,
     "expect_body": {"pointer": "/status/indicator", "one_of": ["none", "minor"]}},
    {"name": "celery", "cluster": "celery", "expect_body": {"pointer": "/ok", "equals": "pong"}},
    {"name": "small", "cluster": "celery", "max_body": 16, "expect_body": {"contains": "pong"}}
  ]
}"#;

fn stack() -> Stack {
    Stack::start(
        POLICY,
        &[
            ("db", Mode::Status(200)),
            ("cache", Mode::Status(200)),
            ("search", Mode::Status(200)),
            ("statuspage", statuspage("none")),
            ("payments", statuspage("none")),
            ("celery", Mode::Json(200, r#"{"ok":"pong"}"#.into())),
        ],
        &[("TOKEN", SECRET)],
    )
}

fn auth() -> (&'static str, &'static str) {
    ("x-health", SECRET)
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

/// Every format by `?format=` and by `Accept`, with GET and HEAD.
#[test]
fn every_format_by_query_and_by_accept_with_get_and_head() {
    let s = stack();
    s.dep("search").set_mode(Mode::Status(500));
    let cases: &[(&str, &str, &str, u16)] = &[
        // (format, Accept, content type, status with search failing)
        ("text", "text/plain", "text/plain; charset=utf-8", 503),
        ("json", "application/json", "application/json", 503),
        (
            "health",
            "application/health+json",
            "application/health+json",
            503,
        ),
        ("html", "text/html", "text/html; charset=utf-8", 503),
        (
            "atom",
            "application/atom+xml",
            "application/atom+xml; charset=utf-8",
            200,
        ),
        (
            "rss",
            "application/rss+xml",
            "application/rss+xml; charset=utf-8",
            200,
        ),
        ("dhc", "", "application/json", 503),
    ];
    for &(format, accept, content_type, status) in cases {
        let mut ways = vec![(format!("/readyz?format={format}"), vec![auth()])];
        if !accept.is_empty() {
            ways.push(("/readyz".to_string(), vec![auth(), ("accept", accept)]));
        }
        for (path, headers) in ways {
            let get = s.get(&path, &headers);
            assert_eq!(get.status, status, "{path} {headers:?}: {}", get.body);
            assert_eq!(
                get.header("content-type"),
                Some(content_type),
                "{path} {headers:?}"
            );
            assert_eq!(get.header("cache-control"), Some("no-store"));
            assert_eq!(get.header("vary"), Some("Accept"));
            assert_eq!(get.header("x-content-type-options"), Some("nosniff"));
            assert!(!get.body.is_empty());
            let head = request(s.envoy.port, "HEAD", &path, &headers);
            assert_eq!(head.status, status, "HEAD {path}");
            assert_eq!(
                head.header("content-type"),
                Some(content_type),
                "HEAD {path}"
            );
            assert_eq!(head.raw_body_len, 0, "HEAD {path} sent a body");
            assert_eq!(
                head.header("content-length").map(str::to_string),
                Some(get.body.len().to_string())
            );
        }
    }
    // The endpoint's default format, and browsers' Accept.
    let r = s.get("/health/views-s3cret/pipeline", &[]);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let r = s.get("/readyz", &[auth(), ("accept", browser)]);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = s.get("/readyz", &[auth(), ("accept", "*/*")]);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    // Nothing acceptable: 406; unknown format: 400; another method: 405;
    // no secret: 404. Every answer carries the same three headers.
    let errors = [
        (s.get("/readyz", &[auth(), ("accept", "image/png")]), 406),
        (s.get("/readyz?format=xml", &[auth()]), 400),
        (request(s.envoy.port, "POST", "/readyz", &[auth()]), 405),
        (s.get("/readyz", &[]), 404),
    ];
    for (r, status) in &errors {
        assert_eq!(r.status, *status, "{r:?}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
        assert_eq!(r.header("vary"), Some("Accept"), "{r:?}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{r:?}");
    }
    assert_eq!(s.app.hits(), 0, "the application saw a probe");
}

#[test]
fn views_hold_what_they_promise() {
    let s = stack();
    s.dep("cache").set_mode(Mode::Status(500));
    s.dep("payments").set_mode(statuspage("major"));
    let p = "/health/views-s3cret/pipeline";

    let r = s.get(&format!("{p}?format=text&verbose"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        "[+]db ok\n[!]cache warn: unexpected status 500 (expected 200-299)\n[+]search ok\n[+]github ok\n\
         [!]payments warn: /status/indicator is \"major\" (expected \"none\" or \"minor\")\npipeline check passed\n"
    );
    let v = json(&s.get(&format!("{p}?format=health"), &[]));
    assert_eq!(v["status"], "warn");
    assert_eq!(
        (v["serviceId"].as_str(), v["version"].as_str()),
        (Some("orders"), Some("1.4.2"))
    );
    let db = &v["checks"]["db:responseTime"][0];
    assert_eq!(
        (
            db["componentType"].as_str(),
            db["observedUnit"].as_str(),
            db["status"].as_str()
        ),
        (Some("datastore"), Some("ms"), Some("pass"))
    );
    assert!(db["observedValue"].is_u64());
    assert!(
        db["time"].as_str().unwrap().ends_with('Z') && db["time"].as_str().unwrap().len() == 24,
        "{db}"
    );
    assert_eq!(
        v["checks"]["cache:responseTime"][0]["output"],
        "unexpected status 500 (expected 200-299)"
    );
    assert_eq!(
        v["checks"]["github:responseTime"][0]["componentType"],
        "system"
    );

    let v = json(&s.get(&format!("{p}?format=dhc"), &[]));
    assert_eq!(v["db"], "working");
    assert_eq!(v["cache"], "unexpected status 500 (expected 200-299)");

    let html = s.get(p, &[]).body;
    assert!(html.contains("<meta name=\"robots\" content=\"noindex\">"));
    assert!(
        html.contains("<td>payments</td><td class=\"st\"><span class=\"state warn\">warn</span>"),
        "{html}"
    );
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));

    let atom = s.get(&format!("{p}?format=atom"), &[]).body;
    assert_eq!(atom.matches("<entry>").count(), 2, "{atom}");
    assert!(atom.contains("<title>payments: warn</title>"));
    let rss = s.get(&format!("{p}?format=rss"), &[]).body;
    assert_eq!(rss.matches("<item>").count(), 2, "{rss}");
    // Stable ids: the same incident has the same id on the next poll.
    let again = s.get(&format!("{p}?format=atom"), &[]).body;
    let ids = |feed: &str| -> Vec<String> {
        feed.split("<entry><id>")
            .skip(1)
            .map(|e| e.split("</id>").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&atom), ids(&again));

    // All operational: one entry.
    s.dep("cache").set_mode(Mode::Status(200));
    s.dep("payments").set_mode(statuspage("minor"));
    let atom = s.get(&format!("{p}?format=atom"), &[]).body;
    assert_eq!(
        ids(&atom),
        vec!["urn:meshprobe:pipeline:operational".to_string()]
    );
}

#[test]
fn include_runs_the_application_checks_plus_the_status_pages() {
    let s = stack();
    let r = s.get("/statusz?format=text&verbose", &[auth()]);
    assert_eq!(r.body, "[+]db ok\n[+]cache ok\n[+]search ok\n[+]github ok\n[+]payments ok\npipeline check passed\n");
    assert_eq!(s.dep("statuspage").hits(), 1);
    assert!(s.dep("statuspage").seen()[0].starts_with("GET /api/v2/status.json HTTP/1.1"));
    // Readiness does not call the status pages.
    let _ = s.get("/readyz", &[auth()]);
    assert_eq!((s.dep("statuspage").hits(), s.dep("db").hits()), (1, 2));
}

#[test]
fn body_expectations_through_envoy() {
    let s = stack();
    let r = s.get("/celeryz?verbose", &[]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "[+]celery ok\n[+]small ok\ncelery check passed\n")
    );
    s.dep("celery")
        .set_mode(Mode::Json(200, r#"{"ok":"not pong at all"}"#.into()));
    let r = s.get("/celeryz?verbose", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        "[-]celery failed: /ok is \"not pong at all\" (expected \"pong\")\n\
         [-]small failed: body of 24 bytes is over max_body 16\ncelery check failed\n"
    );
    s.dep("celery")
        .set_mode(Mode::Json(200, "\u{fffd}<html>".into()));
    let r = s.get("/celeryz/celery?verbose", &[]);
    assert!(
        r.body.starts_with("[-]celery failed: body is not JSON ("),
        "{}",
        r.body
    );
    s.dep("statuspage")
        .set_mode(Mode::Json(200, r#"{"status":{}}"#.into()));
    let r = s.get("/statusz/github?format=text&verbose", &[auth()]);
    assert_eq!(
        r.body,
        "[!]github warn: body has no value at \"/status/indicator\"\npipeline check passed\n"
    );
}

#[test]
fn warn_after_warnings_as_errors_status_codes_and_degraded_header() {
    let s = stack();
    s.dep("db").set_mode(Mode::Delay(250));
    let r = s.get("/readyz/db?verbose", &[auth()]);
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("[!]db warn: slow: took 2"), "{}", r.body);
    assert_eq!(r.header("x-envoy-degraded"), Some("true"));
    s.dep("db").set_mode(Mode::Status(200));
    let r = s.get("/readyz", &[auth()]);
    assert_eq!((r.status, r.header("x-envoy-degraded")), (200, None));

    // A warning fails an endpoint with warnings_as_errors, with its own code.
    assert_eq!(s.get("/strictz", &[auth()]).status, 200);
    s.dep("cache").set_mode(Mode::Status(500));
    let r = s.get("/strictz", &[auth()]);
    assert_eq!((r.status, r.body.as_str()), (500, "fail\n"));
    let r = s.get("/readyz", &[auth()]);
    assert_eq!(
        (r.status, r.body.as_str(), r.header("x-envoy-degraded")),
        (200, "warn\n", Some("true"))
    );
}

#[test]
/// `?exclude=` and per-check paths narrow the answer; the checks still run
/// together as the endpoint's one shared run (see the cache tests), so the
/// cost of probes does not depend on what they ask for.
fn exclude_and_per_check_paths_narrow_the_answer() {
    let s = stack();
    let r = s.get("/readyz?verbose&exclude=cache&exclude=nope", &[auth()]);
    assert_eq!(r.body, "[+]db ok\n[+]search ok\nwarn: unknown check \"nope\" in exclude\napplication check passed\n");
    assert_eq!((s.dep("db").hits(), s.dep("cache").hits()), (1, 1));
    let v = json(&s.get("/readyz?format=json&exclude=nope", &[auth()]));
    assert_eq!(v["warnings"][0], "unknown check \"nope\" in exclude");
    let r = s.get("/readyz/search?verbose", &[auth()]);
    assert_eq!(r.body, "[+]search ok\napplication check passed\n");
    let r = s.get("/health/views-s3cret/application/cache?format=json", &[]);
    assert_eq!(json(&r)["checks"].as_object().unwrap().len(), 1);
    assert_eq!(
        (
            s.dep("db").hits(),
            s.dep("cache").hits(),
            s.dep("search").hits()
        ),
        (4, 4, 4)
    );
    // A failing excluded check does not fail the probe.
    s.dep("search").set_mode(Mode::Status(500));
    assert_eq!(s.get("/readyz?exclude=search", &[auth()]).status, 200);
    assert_eq!(s.get("/readyz", &[auth()]).status, 503);
}

#[test]
fn details_visibility_per_endpoint() {
    let s = stack();
    s.dep("db").set_mode(Mode::Status(500));
    // public + authorized (default): anonymous callers get the status only.
    for (path, headers, detailed) in [
        ("/publicz", vec![], false),
        ("/publicz", vec![auth()], true),
        ("/neverz", vec![auth()], false),
        ("/alwaysz", vec![], true),
    ] {
        for format in ["text&verbose", "json", "health", "html", "atom", "dhc"] {
            let r = s.get(&format!("{path}?format={format}"), &headers);
            let shows = r.body.contains("db") || r.body.contains("unexpected status");
            assert_eq!(shows, detailed, "{path} {format} {headers:?}: {}", r.body);
            assert!(!r.body.contains("1.4.2") || detailed);
        }
    }
    let r = s.get("/publicz?verbose", &[]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "public check failed: reason withheld\n")
    );
    // Per-check paths are not there for callers without details.
    assert_eq!(s.get("/publicz/db", &[]).status, 404);
    assert_eq!(s.get("/neverz/db", &[auth()]).status, 404);
}
