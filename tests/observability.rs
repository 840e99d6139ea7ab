//! Observability with real components: a real Prometheus scrapes a real
//! Envoy with the module, with failing dependencies behind it, and is asked
//! for meshprobe's series by their documented names and labels; the alert
//! rules of `observability/alerts.yaml` are checked and unit-tested by
//! promtool and evaluated live by that Prometheus; every expression of the
//! Grafana dashboard parses and returns data from the real scrape. (The
//! OpenMetrics view: tests/openmetrics.rs.)
//!
//! The Envoy bootstrap carries exactly the `stats_tags` block of
//! `docs/observability.md`, so the recipe there is what makes the labels.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::deps::Mode;
use support::envoy::wasm_path;
use support::http::{get, try_request};
use support::observed::{
    alerts_with_short_for, drive, envoy_job, hooks_module, read, start_envoy, until, value,
};
use support::prometheus::{output_text, promtool, Prometheus};

/// The documented Prometheus names (docs/observability.md, the metric
/// table) and the labels each carries besides job and instance.
const DOCUMENTED: &[(&str, &[&str])] = &[
    (
        "meshprobe_probes",
        &["meshprobe_endpoint", "meshprobe_code"],
    ),
    ("meshprobe_unauthorized", &["meshprobe_endpoint"]),
    ("meshprobe_cache_hits", &["meshprobe_endpoint"]),
    ("meshprobe_cache_misses", &["meshprobe_endpoint"]),
    ("meshprobe_runs", &["meshprobe_endpoint"]),
    (
        "meshprobe_callouts",
        &["meshprobe_check", "meshprobe_outcome"],
    ),
    ("meshprobe_state", &["meshprobe_check"]),
    ("meshprobe_latency_ms_bucket", &["meshprobe_check", "le"]),
    ("meshprobe_latency_ms_sum", &["meshprobe_check"]),
    ("meshprobe_latency_ms_count", &["meshprobe_check"]),
    ("meshprobe_vm_memory_bytes", &["meshprobe_vm"]),
];

/// The dashboard's expressions (panels and variables), Grafana's
/// variables replaced by what Prometheus can evaluate.
fn dashboard_exprs() -> Vec<(String, String)> {
    let dash: Value = serde_json::from_str(&read("observability/grafana-dashboard.json"))
        .expect("the dashboard is not JSON");
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push((
                format!("panel {:?} {}", p["title"], t["refId"]),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        // label_values(<selector>, <label>): the selector must be real.
        let q = v["definition"].as_str().unwrap();
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.rsplit_once(','))
            .map(|(sel, _)| sel.to_string())
            .unwrap_or_else(|| panic!("variable query {q:?} is not label_values(...)"));
        out.push((format!("variable {}", v["name"]), inner));
    }
    out.into_iter()
        .map(|(what, e)| {
            let e = e
                .replace("$__rate_interval", "1m")
                .replace("$__range", "5m")
                .replace("$job", ".*")
                .replace("$instance", ".*")
                .replace("$check", ".*");
            assert!(!e.contains('$'), "{what}: unknown variable in {e}");
            (what, e)
        })
        .collect()
}

/// Metric names in a PromQL expression: identifiers that start with
/// `meshprobe_` or `envoy_` and are not one of the documented labels.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let labels = [
        "meshprobe_endpoint",
        "meshprobe_code",
        "meshprobe_check",
        "meshprobe_outcome",
        "meshprobe_vm",
    ];
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("meshprobe_") || t.starts_with("envoy_"))
        .filter(|t| !labels.contains(t))
        .map(String::from)
        .collect()
}

#[test]
fn promtool_checks_the_alert_rules_and_their_unit_tests_pass() {
    let check = promtool(&["check", "rules", "observability/alerts.yaml"], None);
    let text = output_text(&check);
    assert!(check.status.success(), "{text}");
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");
    let test = promtool(&["test", "rules", "observability/alerts_test.yaml"], None);
    let text = output_text(&test);
    assert!(test.status.success(), "{text}");
    // Every alert has a unit test.
    let rules = read("observability/alerts.yaml");
    let tests = read("observability/alerts_test.yaml");
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            assert!(
                tests.contains(&format!("alertname: {name}\n")),
                "{name} has no unit test"
            );
        }
    }
}

#[test]
fn the_dashboard_is_importable_and_every_expression_parses() {
    let dash: Value = serde_json::from_str(&read("observability/grafana-dashboard.json")).unwrap();
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dash["__inputs"][0]["pluginId"], "prometheus");
    assert!(dash["uid"].is_string() && dash["title"].is_string());
    let panels = dash["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id {}",
            p["id"]
        );
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
        for k in ["x", "y", "w", "h"] {
            assert!(p["gridPos"][k].is_u64(), "{} gridPos.{k}", p["title"]);
        }
        let kind = p["type"].as_str().unwrap();
        assert!(
            [
                "timeseries",
                "bargauge",
                "state-timeline",
                "heatmap",
                "stat"
            ]
            .contains(&kind),
            "{kind}"
        );
    }
    // The panels the issue asks for, by the metric each shows.
    let all: Vec<String> = dashboard_exprs().into_iter().map(|(_, e)| e).collect();
    for (kind, needle) in [
        ("timeseries", "rate(meshprobe_probes"),
        ("bargauge", "increase(meshprobe_probes"),
        ("state-timeline", "meshprobe_state"),
        ("heatmap", "meshprobe_latency_ms_bucket"),
        ("timeseries", "meshprobe_cache_hits"),
        ("timeseries", "meshprobe_unauthorized"),
    ] {
        assert!(
            panels.iter().any(|p| p["type"] == kind
                && p["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["expr"].as_str().unwrap().contains(needle))),
            "no {kind} panel over {needle}"
        );
    }
    // promtool parses each expression, as a recording rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in all.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: {}\n",
            serde_json::to_string(e).unwrap()
        ));
    }
    let dir = support::envoy::Scratch::new("dashboard-rules");
    let file = dir.0.join("dashboard.rules.yaml");
    std::fs::write(&file, &rules).unwrap();
    let out = promtool(&["check", "rules", file.to_str().unwrap()], None);
    assert!(out.status.success(), "{}\n{rules}", output_text(&out));
    assert!(output_text(&out).contains(&format!("SUCCESS: {} rules found", all.len())));
    // And a broken expression would have been refused.
    std::fs::write(&file, rules.replace("sum by (", "sum by ((")).unwrap();
    assert!(!promtool(&["check", "rules", file.to_str().unwrap()], None)
        .status
        .success());
}

#[test]
fn prometheus_finds_the_documented_series_the_alerts_fire_and_the_dashboard_has_data() {
    let started = Instant::now();
    let rig = start_envoy(&wasm_path(), Mode::Status(500));
    let envoy = &rig.envoy;
    let rules = alerts_with_short_for();
    let prom = Prometheus::start(&[envoy_job(envoy)], &[("alerts.yaml", &rules)]);
    let within = Duration::from_secs(30);

    // 1. The documented series, by name and labels.
    for (promql, want) in [
        (
            r#"meshprobe_probes{meshprobe_endpoint="live",meshprobe_code="200"}"#,
            None,
        ),
        (
            r#"meshprobe_probes{meshprobe_endpoint="ready",meshprobe_code="503"}"#,
            None,
        ),
        (
            r#"meshprobe_unauthorized{meshprobe_endpoint="ready"}"#,
            None,
        ),
        (
            r#"meshprobe_cache_hits{meshprobe_endpoint="cached"} > 0"#,
            None,
        ),
        (
            r#"meshprobe_cache_misses{meshprobe_endpoint="cached"}"#,
            None,
        ),
        (r#"meshprobe_runs{meshprobe_endpoint="ready"}"#, None),
        (
            r#"meshprobe_callouts{meshprobe_check="db",meshprobe_outcome="fail"}"#,
            None,
        ),
        (
            r#"meshprobe_callouts{meshprobe_check="cache",meshprobe_outcome="timeout"}"#,
            None,
        ),
        (
            r#"meshprobe_callouts{meshprobe_check="search",meshprobe_outcome="refused"}"#,
            None,
        ),
        (r#"meshprobe_state{meshprobe_check="db"}"#, Some(2.0)),
        (r#"meshprobe_state{meshprobe_check="cache"}"#, Some(1.0)),
        (r#"meshprobe_state{meshprobe_check="search"}"#, Some(2.0)),
        (
            r#"meshprobe_latency_ms_count{meshprobe_check="cache"} > 0"#,
            None,
        ),
        (
            r#"meshprobe_latency_ms_bucket{meshprobe_check="cache",le="250"} > 0"#,
            None,
        ),
        (r#"envoy_wasm_meshprobe_vm_reload_success"#, Some(0.0)),
        (r#"envoy_wasm_meshprobe_vm_reload_failure"#, Some(0.0)),
    ] {
        let r = until(&prom, envoy, promql, within);
        assert_eq!(r.len(), 1, "{promql}: {r:?}");
        if let Some(v) = want {
            assert_eq!(value(&r[0]), v, "{promql}");
        }
    }
    // Nothing else under meshprobe_, and no label beyond the documented.
    let names = prom.api("/api/v1/label/__name__/values")["data"].clone();
    let names: BTreeSet<String> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    for n in names.iter().filter(|n| n.starts_with("meshprobe")) {
        assert!(
            DOCUMENTED.iter().any(|(d, _)| d == n),
            "{n} is exported but not documented (a stats_tags regex missed it?)"
        );
    }
    for series in prom.query(r#"{__name__=~"meshprobe_.*"}"#).unwrap() {
        let name = series["metric"]["__name__"].as_str().unwrap();
        let (_, labels) = DOCUMENTED.iter().find(|(d, _)| *d == name).unwrap();
        for key in series["metric"].as_object().unwrap().keys() {
            assert!(
                ["__name__", "job", "instance"].contains(&key.as_str())
                    || labels.contains(&key.as_str()),
                "{name} carries {key}"
            );
        }
    }
    eprintln!("documented series found after {:?}", started.elapsed());

    // 2. The dashboard: each expression returns data from this scrape and
    // names only metrics the module (or Envoy's wasm stats) exports.
    for (what, expr) in dashboard_exprs() {
        for m in metric_names(&expr) {
            assert!(names.contains(&m), "{what} uses {m}, which nobody exports");
        }
        until(&prom, envoy, &expr, within);
    }
    eprintln!("dashboard answered after {:?}", started.elapsed());

    // 3. The real rules, evaluated by Prometheus on this data.
    let want = [
        "MeshprobeCalloutErrors",
        "MeshprobeCheckFailing",
        "MeshprobeEndpointFailing",
        "MeshprobeUnauthorizedSpike",
    ];
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut guesses = 0;
    let firing = loop {
        drive(envoy);
        // Someone guessing the secret: ten wrong ones per round.
        for i in 0..10 {
            let guess = format!("guess-{i}");
            let _ = try_request(
                envoy.port,
                "GET",
                "/readyz",
                &[("x-health", &guess)],
                "HTTP/1.1",
            );
            guesses += 1;
        }
        let firing = prom.firing();
        if want.iter().all(|w| firing.iter().any(|f| f == w)) {
            break firing;
        }
        assert!(
            Instant::now() < deadline,
            "not all of {want:?} fire; firing {firing:?}; unauthorized/s {:?}; alerts {:?}",
            prom.query("sum by (meshprobe_endpoint) (rate(meshprobe_unauthorized[5m]))"),
            prom.alerts(),
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!(
        "alerts firing after {:?} ({guesses} guesses): {firing:?}",
        started.elapsed()
    );
    // Runs happen (ttl 0) and the VM never failed: these two stay quiet.
    assert!(
        !firing.iter().any(|f| f == "MeshprobeResultsStale"),
        "{firing:?}"
    );
    assert!(
        !firing.iter().any(|f| f == "MeshprobeVmFailing"),
        "{firing:?}"
    );
    let alerts = prom.alerts();
    let checks: BTreeSet<&str> = alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == "MeshprobeCheckFailing" && a["state"] == "firing")
        .map(|a| a["labels"]["meshprobe_check"].as_str().unwrap())
        .collect();
    // cache only warns (non-critical, state 1): not failing.
    assert_eq!(checks, BTreeSet::from(["db", "search"]));
    let callouts: BTreeSet<&str> = alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == "MeshprobeCalloutErrors" && a["state"] == "firing")
        .map(|a| a["labels"]["meshprobe_check"].as_str().unwrap())
        .collect();
    // db answers 500: a failure, not a timeout or refusal.
    assert_eq!(callouts, BTreeSet::from(["cache", "search"]));
}

#[test]
fn the_vm_alert_fires_when_envoy_reloads_a_failed_vm() {
    let rig = start_envoy(&hooks_module(), Mode::Status(200));
    let envoy = &rig.envoy;
    let rules = alerts_with_short_for();
    let prom = Prometheus::start(&[envoy_job(envoy)], &[("alerts.yaml", &rules)]);
    // Two samples of the reload counters at 0 first, so that the increase
    // is seen.
    until(
        &prom,
        envoy,
        "count_over_time(envoy_wasm_meshprobe_vm_reload_success[1m]) >= 2",
        Duration::from_secs(30),
    );
    assert!(!prom.firing().iter().any(|f| f == "MeshprobeVmFailing"));
    let crashed = try_request(
        envoy.port,
        "GET",
        "/livez",
        &[("x-meshprobe-test-hook", "panic")],
        "HTTP/1.1",
    );
    assert!(crashed.is_none_or(|r| r.status >= 500));
    let start = Instant::now();
    loop {
        // Envoy reloads the VM when a request needs it.
        drive(envoy);
        if prom.firing().iter().any(|f| f == "MeshprobeVmFailing") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "MeshprobeVmFailing did not fire; alerts {:?}; reloads {:?}\n{}",
            prom.alerts(),
            prom.query("envoy_wasm_meshprobe_vm_reload_success"),
            envoy.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "MeshprobeVmFailing fired {:?} after the VM failed",
        start.elapsed()
    );
    // The reloaded VM answers again.
    assert_eq!(get(envoy.port, "/livez", &[]).body, "ok\n");
}
