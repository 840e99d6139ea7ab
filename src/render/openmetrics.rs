//! OpenMetrics text for a scraper: the endpoint's status gauge and, with
//! details, a status and a response-time gauge per check. Always ends in
//! `# EOF`. Gauges read 0 pass, 1 warn, 2 fail, like Envoy's
//! `meshprobe_state`.

use super::View;
use crate::report::{Health, Report};
use std::fmt::Write as _;

fn value(health: Health) -> u8 {
    match health {
        Health::Pass => 0,
        Health::Warn => 1,
        Health::Fail => 2,
    }
}

/// A label value: `\`, `"` and line feeds escaped, as OpenMetrics requires.
fn label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds as seconds with three decimals.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// `meshprobe_endpoint_status{endpoint=".."}`, then with details
/// `meshprobe_check_status` and `meshprobe_check_response_time_seconds`
/// labelled `endpoint` and `check`, then `# EOF`.
pub fn openmetrics(report: &Report, view: &View) -> String {
    let ep = label(&report.endpoint);
    let mut out = String::from(
        "# TYPE meshprobe_endpoint_status gauge\n\
         # HELP meshprobe_endpoint_status Health of the endpoint: 0 pass, 1 warn, 2 fail.\n",
    );
    let _ = writeln!(
        out,
        "meshprobe_endpoint_status{{endpoint=\"{ep}\"}} {}",
        value(report.health)
    );
    if view.details && !report.checks.is_empty() {
        out.push_str(
            "# TYPE meshprobe_check_status gauge\n\
             # HELP meshprobe_check_status Health of the check: 0 pass, 1 warn, 2 fail.\n",
        );
        for c in &report.checks {
            let _ = writeln!(
                out,
                "meshprobe_check_status{{endpoint=\"{ep}\",check=\"{}\"}} {}",
                label(&c.name),
                value(c.health)
            );
        }
        out.push_str(
            "# TYPE meshprobe_check_response_time_seconds gauge\n\
             # UNIT meshprobe_check_response_time_seconds seconds\n\
             # HELP meshprobe_check_response_time_seconds How long the check took.\n",
        );
        for c in &report.checks {
            let _ = writeln!(
                out,
                "meshprobe_check_response_time_seconds{{endpoint=\"{ep}\",check=\"{}\"}} {}",
                label(&c.name),
                seconds(c.latency_ms)
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn escapes_label_values() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(label("db"), "db");
    }

    #[test]
    fn seconds_keep_milliseconds() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(12), "0.012");
        assert_eq!(seconds(1500), "1.500");
    }
}
