//! Security properties, end to end through a real Envoy: an unauthorized
//! request never causes a callout and never learns a detail; no secret is
//! ever logged by the module, even at trace level; the probe header and
//! the token parameter never reach the application.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;
use support::deps::Mode;
use support::envoy::Options;
use support::http::{request, try_request, Response};
use support::stack::Stack;

const SECRET: &str = "sec-s3cret-from-env";
const INLINE: &str = "sec-s3cret-inline-next";

/// Check names, the version and the service id are distinctive, so that
/// finding them anywhere in an answer means a detail leaked.
const POLICY: &str = r#"{
  "service": {"id": "svc-okapi", "version": "7.7.7-zq", "description": "a service"},
  "authorization": {"header": "x-health", "secrets": [{"env": "TOKEN"}, {"value": "sec-s3cret-inline-next"}],
                    "path_prefix": "/health", "query_param": "health_token", "bearer": true},
  "endpoints": [
    {"name": "live", "path": "/livez", "access": "public"},
    {"name": "ready", "path": "/readyz", "ttl": "0s", "checks": ["zebradb", "quokkacache"]},
    {"name": "deep", "path": "/deepz", "ttl": "0s", "checks": ["zebradb"], "on_unauthorized": "forbidden"},
    {"name": "appz", "path": "/appz", "ttl": "0s", "checks": ["zebradb"], "on_unauthorized": "pass_through"},
    {"name": "status", "path": "/statusz", "ttl": "0s", "checks": ["zebradb", "quokkacache"], "access": "public"},
    {"name": "never", "path": "/neverz", "ttl": "0s", "checks": ["zebradb"], "access": "public", "details": "never"}
  ],
  "checks": [
    {"name": "zebradb", "cluster": "db", "path": "/health"},
    {"name": "quokkacache", "cluster": "cache", "critical": false}
  ]
}"#;

/// What no caller without details may see, in the status line, a header
/// or the body: check names, the version, the service id, reasons,
/// latencies.
const DETAILS: &[&str] = &[
    "zebradb",
    "quokkacache",
    "7.7.7",
    "svc-okapi",
    "unexpected status",
    "latency",
    "observedValue",
    "responseTime",
    " ms<",
];

fn stack_with(options: &Options) -> Stack {
    // Both dependencies fail, so there are reasons to leak.
    Stack::with_options(
        POLICY,
        &[("db", Mode::Status(500)), ("cache", Mode::Status(503))],
        &[("TOKEN", SECRET)],
        1,
        options,
    )
}

fn stack() -> Stack {
    stack_with(&Options::default())
}

/// Everything a caller sees of an answer, lower-cased.
fn seen(r: &Response) -> String {
    let mut all = format!("{}\n", r.status);
    for (k, v) in &r.headers {
        all.push_str(&format!("{k}: {v}\n"));
    }
    all.push_str(&r.body);
    all.to_ascii_lowercase()
}

fn assert_no_detail(r: &Response, what: &str) {
    let all = seen(r);
    for d in DETAILS {
        assert!(!all.contains(d), "{what}: {d:?} leaked:\n{all}");
    }
}

/// Calls `f` on every item, from 8 threads (a HEAD answer takes the
/// client 300 ms to be sure no body follows: run them side by side).
fn on_each<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let chunk = items.len().div_ceil(8).max(1);
    std::thread::scope(|scope| {
        for part in items.chunks(chunk) {
            let f = &f;
            scope.spawn(move || part.iter().for_each(f));
        }
    });
}

/// Every query a probe may carry: each format, verbose, exclude.
const QUERIES: &[&str] = &[
    "",
    "?verbose",
    "?verbose=1",
    "?format=text&verbose",
    "?format=json",
    "?format=health",
    "?format=html",
    "?format=atom",
    "?format=rss",
    "?format=dhc",
    "?format=xml",
    "?exclude=zebradb&verbose",
    "?verbose&format=health&exclude=nope",
];

/// Every way of presenting no valid secret.
fn wrong_credentials() -> Vec<(String, Vec<(&'static str, String)>)> {
    vec![
        ("none".into(), vec![]),
        ("wrong header".into(), vec![("x-health", "guess".into())]),
        (
            "near-miss header".into(),
            vec![("x-health", SECRET.to_uppercase())],
        ),
        (
            "secret in another header".into(),
            vec![("x-healthz", SECRET.into())],
        ),
        (
            "wrong bearer".into(),
            vec![("authorization", "Bearer guess".into())],
        ),
        (
            "secret with another scheme".into(),
            vec![("authorization", format!("Basic {SECRET}"))],
        ),
        (
            "cookie".into(),
            vec![("cookie", format!("x-health={SECRET}"))],
        ),
    ]
}

/// One request and the status it must get.
struct Case {
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, String)>,
    status: u16,
    /// The exact body, when it is known (not for HEAD).
    body: Option<&'static str>,
}

impl Case {
    fn get(target: String, headers: &[(&'static str, String)], status: u16) -> Case {
        Case {
            method: "GET",
            target,
            headers: headers.to_vec(),
            status,
            body: None,
        }
    }

    /// Sends it; asserts the status, the body, and that no detail shows.
    fn run(&self, port: u16) {
        let headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = request(port, self.method, &self.target, &headers);
        let what = format!("{} {} {:?}", self.method, self.target, self.headers);
        assert_eq!(r.status, self.status, "{what}: {}", r.body);
        if let Some(body) = self.body {
            assert_eq!(r.body, body, "{what}");
        }
        if self.method == "HEAD" {
            assert_eq!(r.raw_body_len, 0, "{what}");
        }
        assert!(r.header("allow").is_none(), "{what}: {r:?}");
        assert_no_detail(&r, &what);
    }
}

#[test]
fn unauthorized_requests_never_cause_a_callout_nor_see_a_detail() {
    let s = stack();
    let port = s.envoy.port;
    // (its paths, the answer to an unauthorized request)
    let families: &[(&[&str], u16, &str)] = &[
        (
            &[
                "/readyz",
                "/readyz/zebradb",
                "/health/guess/ready",
                "/health/guess/ready/zebradb",
            ],
            404,
            "",
        ),
        (
            &[
                "/deepz",
                "/deepz/zebradb",
                "/health/guess/deep",
                "/health/guess/deep/zebradb",
            ],
            403,
            "forbidden\n",
        ),
    ];
    let mut cases = Vec::new();
    for (paths, status, body) in families {
        for path in *paths {
            for query in QUERIES {
                let target = format!("{path}{query}");
                // A wrong token parameter on top of each credential.
                let with_token = if query.is_empty() {
                    format!("{path}?health_token=guess")
                } else {
                    format!("{target}&health_token={}", SECRET.to_uppercase())
                };
                for (_, headers) in wrong_credentials() {
                    for t in [&target, &with_token] {
                        let mut c = Case::get(t.clone(), &headers, *status);
                        c.body = Some(body);
                        cases.push(c);
                    }
                }
            }
        }
        // Every method, and content negotiation, changes nothing: no 405
        // with `Allow`, no 406, no 400 before the secret.
        for method in ["HEAD", "POST", "PUT", "DELETE", "OPTIONS"] {
            for accept in ["", "application/health+json", "text/html", "image/png"] {
                let mut headers =
                    vec![("content-length", "0".into()), ("x-health", "guess".into())];
                if !accept.is_empty() {
                    headers.push(("accept", accept.into()));
                }
                cases.push(Case {
                    method,
                    target: format!("{}?verbose", paths[0]),
                    headers,
                    status: *status,
                    body: (method != "HEAD").then_some(*body),
                });
            }
        }
    }
    let t = std::time::Instant::now();
    on_each(&cases, |c| c.run(port));
    println!("{} unauthorized requests in {:?}", cases.len(), t.elapsed());
    assert_eq!(
        s.dependency_hits(),
        0,
        "an unauthorized request caused a callout"
    );
    assert_eq!(s.app.hits(), 0, "an unauthorized probe reached the app");

    // pass_through: the app gets it, the dependencies never hear of it.
    for query in QUERIES {
        for (how, headers) in wrong_credentials() {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = request(port, "GET", &format!("/appz{query}"), &headers);
            assert!(
                r.body.starts_with("GET /appz"),
                "appz{query} ({how}): {}",
                r.body
            );
            assert!(
                !r.body.contains("x-health:"),
                "appz{query} ({how}): {}",
                r.body
            );
        }
    }
    assert_eq!(
        s.dependency_hits(),
        0,
        "an unauthorized request caused a callout"
    );

    // The same requests with the secret do see the details: the search
    // above would have found them.
    let r = request(
        port,
        "GET",
        "/readyz?verbose&format=health",
        &[("x-health", SECRET)],
    );
    assert_eq!(r.status, 503);
    let all = seen(&r);
    for d in [
        "zebradb",
        "quokkacache",
        "7.7.7",
        "svc-okapi",
        "unexpected status",
        "observedvalue",
    ] {
        assert!(
            all.contains(d),
            "{d:?} missing from an authorized answer:\n{all}"
        );
    }
    let r = request(
        port,
        "GET",
        "/deepz?verbose&format=html",
        &[("x-health", INLINE)],
    );
    assert!(
        seen(&r).contains(" ms<") && seen(&r).contains("zebradb"),
        "{r:?}"
    );
    assert_eq!(s.dep("db").hits(), 2);
}

/// Public endpoints answer anyone, with the status only: no name, reason,
/// latency or version, in any view, whatever wrong secret comes along;
/// `details: never` withholds them even from a caller with the secret.
#[test]
fn public_endpoints_show_the_status_only() {
    let s = stack();
    let port = s.envoy.port;
    let mut cases = Vec::new();
    for query in QUERIES {
        let status = match *query {
            "?format=xml" => 400,
            "?format=atom" | "?format=rss" => 200,
            _ => 503,
        };
        for (_, headers) in wrong_credentials() {
            cases.push(Case::get(format!("/statusz{query}"), &headers, status));
        }
        let mut head = Case::get(format!("/statusz{query}"), &[], status);
        head.method = "HEAD";
        cases.push(head);
        let secret = [("x-health", SECRET.to_string())];
        cases.push(Case::get(format!("/neverz{query}"), &secret, status));
    }
    on_each(&cases, |c| c.run(port));
    // Naming a check is for callers allowed details: per-check paths are
    // not there for them, and cause no callout.
    let before = s.dep("db").hits();
    for (path, headers) in [
        ("/statusz/zebradb", vec![]),
        ("/statusz/quokkacache", vec![("x-health", "guess")]),
        ("/neverz/zebradb", vec![]),
        ("/neverz/zebradb", vec![("x-health", SECRET)]),
    ] {
        let r = request(port, "GET", path, &headers);
        assert_eq!((r.status, r.body.as_str()), (404, ""), "{path}");
    }
    assert_eq!(s.dep("db").hits(), before);
    // The secret shows them on the public endpoint (the search can fail).
    let r = request(port, "GET", "/statusz?verbose", &[("x-health", SECRET)]);
    assert!(
        r.body.contains("[-]zebradb failed: unexpected status 500"),
        "{}",
        r.body
    );
}

// ---------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------

/// Tokens presented in the log tests: both secrets and near misses of them.
fn tokens() -> Vec<String> {
    let mut all = Vec::new();
    for s in [SECRET, INLINE] {
        all.push(s.to_string());
        all.push(s.to_uppercase());
        all.push(format!("{s}x"));
        all.push(s[..s.len() - 1].to_string());
    }
    all
}

/// Probes and app requests with every token in every carrier, plus h2c.
fn present_every_token(s: &Stack) {
    let port = s.envoy.port;
    for t in tokens() {
        let bearer = format!("Bearer {t}");
        for (path, headers) in [
            (
                "/readyz?verbose".to_string(),
                vec![("x-health", t.as_str())],
            ),
            (
                "/readyz?format=json".to_string(),
                vec![("authorization", bearer.as_str())],
            ),
            (format!("/readyz?health_token={t}"), vec![]),
            (format!("/health/{t}/ready?verbose"), vec![]),
            (format!("/health/{t}/deep/zebradb"), vec![]),
            (format!("/deepz?health_token={t}&format=health"), vec![]),
            (
                "/statusz?format=html".to_string(),
                vec![("x-health", t.as_str())],
            ),
            // Upstream, the secret must be gone before the router logs
            // the request it sends.
            (
                format!("/orders?health_token={t}&id=7"),
                vec![("x-health", t.as_str())],
            ),
            (
                format!("/appz?health_token={t}"),
                vec![("x-health", t.as_str())],
            ),
        ] {
            let r = try_request(port, "GET", &path, &headers, "HTTP/1.1");
            assert!(r.is_some(), "{path}: no answer");
        }
        let r = try_request(
            port,
            "HEAD",
            "/readyz",
            &[("x-health", t.as_str())],
            "HTTP/1.1",
        );
        assert!(r.is_some());
    }
    let out = std::process::Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-H"])
        .arg(format!("x-health: {SECRET}"))
        .arg(format!(
            "http://127.0.0.1:{port}/orders?health_token={INLINE}"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Stops Envoy through its admin API (so it flushes its log) and returns
/// the log.
fn stop_and_read_log(s: &Stack) -> String {
    let r = try_request(
        s.envoy.admin,
        "POST",
        "/quitquitquit",
        &[("content-length", "0")],
        "HTTP/1.1",
    );
    assert_eq!(r.map(|r| r.status), Some(200));
    let start = std::time::Instant::now();
    while s.envoy.admin_get("/ready").is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "Envoy did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The admin port closes before the process has written its last lines.
    let mut log = String::new();
    for _ in 0..50 {
        log = s.envoy.log_text();
        if log.contains("exiting") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log
}

/// The log as records: a line starting with `[<date>` and its
/// continuation lines (header dumps).
fn records(log: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in log.lines() {
        let starts = line.starts_with("[20") && line.get(11..12) == Some(" ");
        match out.last_mut() {
            Some(last) if !starts => {
                last.push('\n');
                last.push_str(line);
            }
            _ => out.push(line.to_string()),
        }
    }
    out
}

/// Envoy's own dumps of what it was given, which hold whatever a client or
/// the configuration put there; no filter can keep a secret out of them
/// (they run before any filter): (source file, message start).
const ENVOY_DUMPS: &[(&str, &str)] = &[
    // debug: the downstream request headers as received.
    ("conn_manager_impl.cc", "request headers complete"),
    // trace: each header as the HTTP/1 codec parses it.
    ("http1/codec_impl.cc", "completed header: key="),
    // debug: the filter configuration, VM environment included.
    ("filter_chain_helper.h", "config: {"),
    ("listener_manager_impl.cc", "config: {"),
];

/// At trace level Envoy logs every request header it receives and its
/// whole configuration, secrets included (see [`ENVOY_DUMPS`]). Everything
/// else must be free of every token: the module's own lines, and the
/// router's dump of what it sends upstream (so the secret is gone before
/// the router sees the request).
#[test]
fn no_token_is_logged_but_in_envoy_dumps_of_its_input_even_at_trace_level() {
    let s = stack_with(&Options {
        log_level: "trace",
        ..Options::default()
    });
    present_every_token(&s);
    let log = stop_and_read_log(&s);
    // 2.1 MB in a run here: a log that small would mean no trace at all.
    assert!(log.len() > 500_000, "only {} bytes of log", log.len());
    let tokens = tokens();
    let records = records(&log);
    let mut in_dumps = 0;
    let mut leaks = Vec::new();
    for r in &records {
        let Some(token) = tokens.iter().find(|t| r.contains(t.as_str())) else {
            continue;
        };
        let first = r.lines().next().unwrap();
        let dump = ENVOY_DUMPS
            .iter()
            .any(|(file, msg)| first.contains(file) && first.contains(msg));
        if dump {
            in_dumps += 1;
        } else {
            leaks.push(format!("{token:?} in:\n{r}"));
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n\n"));
    // The search finds tokens where they are: each request's header dump.
    assert!(
        in_dumps >= 80,
        "tokens found in only {in_dumps} Envoy dumps"
    );
    // The module logged (its lines were searched), and the router logged
    // each request it sent upstream (the secret already gone).
    let module: Vec<&String> = records
        .iter()
        .filter(|r| r.contains("wasm log meshprobe"))
        .collect();
    assert!(
        module.iter().any(|r| r.contains("policy loaded"))
            && module
                .iter()
                .any(|r| r.contains("check \"zebradb\" of endpoint")),
        "{module:?}"
    );
    let upstream = records
        .iter()
        .filter(|r| r.contains("router decoding headers") && r.contains("'/orders?id=7'"))
        .count();
    assert_eq!(upstream, tokens.len(), "router dumps of /orders?id=7");
}

/// At Envoy's default level no secret is anywhere in the log.
#[test]
fn no_token_is_anywhere_in_the_log_at_info_level() {
    let s = stack();
    present_every_token(&s);
    let log = stop_and_read_log(&s);
    assert!(log.contains("policy loaded"), "{log}");
    assert!(
        log.contains("meshprobe: check \"zebradb\" of endpoint \"ready\": none -> fail: unexpected status 500"),
        "{log}"
    );
    for t in tokens() {
        assert_eq!(log.matches(t.as_str()).count(), 0, "{t:?} is in the log");
    }
}

// ---------------------------------------------------------------------------
// Upstream
// ---------------------------------------------------------------------------

/// The app's view of one request (its echo), checked to hold no secret,
/// no probe header and no token parameter. The request line.
fn app_sees(s: &Stack, path: &str, headers: &[(&str, &str)]) -> String {
    let r = request(s.envoy.port, "GET", path, headers);
    assert_eq!(r.status, 200, "{path}: {r:?}");
    let lower = r.body.to_ascii_lowercase();
    assert!(
        !lower.contains("x-health"),
        "{path} {headers:?}:\n{}",
        r.body
    );
    assert!(
        !lower.contains("health_token"),
        "{path} {headers:?}:\n{}",
        r.body
    );
    for t in [SECRET, INLINE, "guess"] {
        assert!(!r.body.contains(t), "{path} {headers:?}:\n{}", r.body);
    }
    r.body.lines().next().unwrap().to_string()
}

#[test]
fn the_probe_header_and_the_token_parameter_never_reach_the_app() {
    let s = stack();
    let cases: Vec<(String, Vec<(&str, &str)>, &str)> = vec![
        ("/orders".into(), vec![("x-health", SECRET)], "/orders"),
        ("/orders".into(), vec![("X-HEALTH", SECRET)], "/orders"),
        ("/orders".into(), vec![("x-health", "guess")], "/orders"),
        ("/orders".into(), vec![("x-health", "")], "/orders"),
        (
            "/orders".into(),
            vec![
                ("x-health", SECRET),
                ("x-health", INLINE),
                ("x-health", "guess"),
            ],
            "/orders",
        ),
        (format!("/orders?health_token={SECRET}"), vec![], "/orders"),
        (
            format!("/orders?health_token={SECRET}&id=7"),
            vec![],
            "/orders?id=7",
        ),
        (
            format!("/orders?id=7&health_token={SECRET}"),
            vec![],
            "/orders?id=7",
        ),
        (
            format!("/orders?a=1&health_token={SECRET}&b=2&health_token={INLINE}&c=3"),
            vec![],
            "/orders?a=1&b=2&c=3",
        ),
        (
            "/orders?health_token=guess&id=7".into(),
            vec![],
            "/orders?id=7",
        ),
        ("/orders?health_token=&id=7".into(), vec![], "/orders?id=7"),
        ("/orders?health_token&id=7".into(), vec![], "/orders?id=7"),
        (
            format!("/orders?health_token={}", SECRET.replace('-', "%2D")),
            vec![],
            "/orders",
        ),
        // Both at once.
        (
            format!("/orders?health_token={INLINE}&id=7"),
            vec![("x-health", SECRET)],
            "/orders?id=7",
        ),
        // A probe endpoint passed through when unauthorized.
        (
            "/appz?health_token=guess".into(),
            vec![("x-health", "guess")],
            "/appz",
        ),
        (
            "/appz?verbose".into(),
            vec![("x-health", "guess")],
            "/appz?verbose",
        ),
        // Not a probe: the endpoint's path with a suffix.
        (
            format!("/readyz/nosuch?health_token={SECRET}"),
            vec![("x-health", SECRET)],
            "/readyz/nosuch",
        ),
    ];
    for (path, headers, line) in &cases {
        let seen = app_sees(&s, path, headers);
        assert_eq!(seen, format!("GET {line} HTTP/1.1"), "{path} {headers:?}");
    }
    // Other headers are kept (the echo works).
    let r = request(
        s.envoy.port,
        "GET",
        "/orders",
        &[("x-health", SECRET), ("x-other", "kept")],
    );
    assert!(r.body.contains("x-other: kept"), "{}", r.body);
    assert_eq!(s.app.hits(), cases.len() + 1);
    assert_eq!(s.dependency_hits(), 0);
}

/// README: "The probe header is removed from every request that goes
/// upstream, so the secret never reaches the application." A token path
/// that names no endpoint (or no check of it) is no probe: it goes to the
/// app untouched, secret and all.
#[test]
fn a_secret_in_a_token_path_never_reaches_the_app() {
    let s = stack();
    for path in [
        format!("/health/{SECRET}/nosuch"),
        format!("/health/{SECRET}/ready/nosuch"),
        format!("/health/{SECRET}/"),
        format!("/health/{SECRET}"),
    ] {
        let r = request(s.envoy.port, "GET", &path, &[]);
        assert!(!r.body.contains(SECRET), "{path}: the app got {:?}", r.body);
    }
    assert_eq!(s.app.hits(), 0);
}
