//! meshprobe's OpenMetrics view as a scraper sees it: a real Prometheus
//! scrapes a probe endpoint of a real Envoy with the module (with the
//! secret as a bearer token and `?format=openmetrics`, and anonymously with
//! its own `Accept` header), and `promtool check metrics` accepts the body.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::Value;
use std::time::Duration;
use support::deps::Mode;
use support::envoy::wasm_path;
use support::http::get;
use support::observed::{start_envoy, value, SECRET};
use support::prometheus::{output_text, promtool, Job, Prometheus};

#[test]
fn prometheus_scrapes_the_openmetrics_view_and_promtool_accepts_it() {
    let rig = start_envoy(&wasm_path(), Mode::Status(200));
    let envoy = &rig.envoy;
    let bearer = format!("Bearer {SECRET}");
    // What a scraper gets: 200 although search fails, # EOF at the end.
    let r = get(
        envoy.port,
        "/statusz?format=openmetrics",
        &[("authorization", &bearer)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(r.body.ends_with("\n# EOF\n"), "{}", r.body);
    assert!(r.body.contains("check=\"search\"} 2\n"), "{}", r.body);
    let check = promtool(&["check", "metrics"], Some(&r.body));
    assert!(
        check.status.success(),
        "{}\n{}",
        output_text(&check),
        r.body
    );
    // Without the secret: the endpoint's status only.
    let anonymous = get(envoy.port, "/statusz?format=openmetrics", &[]);
    assert_eq!(anonymous.status, 200);
    assert!(!anonymous.body.contains("check="), "{}", anonymous.body);
    assert!(anonymous.body.ends_with("\n# EOF\n"));
    let check = promtool(&["check", "metrics"], Some(&anonymous.body));
    assert!(check.status.success(), "{}", output_text(&check));

    // Prometheus scrapes it: with ?format=openmetrics and the secret as a
    // bearer token, and anonymously, chosen by its own Accept header.
    let target = format!("127.0.0.1:{}", envoy.port);
    let prom = Prometheus::start(
        &[
            Job {
                name: "details",
                target: target.clone(),
                metrics_path: "/statusz",
                params: &[("format", "openmetrics")],
                bearer: Some(SECRET),
            },
            Job {
                name: "anonymous",
                target,
                metrics_path: "/statusz",
                params: &[],
                bearer: None,
            },
        ],
        &[],
    );
    let within = Duration::from_secs(30);
    for (promql, want) in [
        (r#"up{job="details"}"#, 1.0),
        (r#"up{job="anonymous"}"#, 1.0),
        (
            r#"meshprobe_endpoint_status{job="details",endpoint="status"}"#,
            2.0,
        ),
        (
            r#"meshprobe_endpoint_status{job="anonymous",endpoint="status"}"#,
            2.0,
        ),
        (r#"meshprobe_check_status{job="details",check="db"}"#, 0.0),
        (
            r#"meshprobe_check_status{job="details",check="cache"}"#,
            1.0,
        ),
        (
            r#"meshprobe_check_status{job="details",check="search"}"#,
            2.0,
        ),
    ] {
        let r = prom.wait_for(promql, within);
        assert_eq!(value(&r[0]), want, "{promql}");
    }
    let timeout = prom.wait_for(
        r#"meshprobe_check_response_time_seconds{job="details",check="cache"}"#,
        within,
    );
    // The 200 ms timeout, as measured by the host clock.
    assert!(value(&timeout[0]) >= 0.15, "{timeout:?}");
    for (job, health, error) in prom.targets() {
        assert_eq!(health, "up", "{job}: {error}");
    }
    assert_eq!(
        prom.query(r#"{job="anonymous",__name__=~"meshprobe_check_.*"}"#)
            .unwrap(),
        Vec::<Value>::new(),
        "the anonymous scrape sees checks"
    );
}
