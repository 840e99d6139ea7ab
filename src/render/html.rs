//! A self-contained status page: no script, no external asset, inline CSS,
//! readable on a phone; every piece of text escaped.

use super::time::rfc3339;
use super::{escape_markup as esc, View};
use crate::report::{Health, Report};
use std::fmt::Write as _;

const STYLE: &str = "body{font:16px/1.4 system-ui,sans-serif;margin:0 auto;max-width:48rem;padding:1rem;color:#1b1b1b}\
h1{font-size:1.4rem;margin:.2rem 0}.state{display:inline-block;padding:.15rem .6rem;border-radius:.3rem;font-weight:600;color:#fff}\
.pass{background:#1a7f37}.warn{background:#9a6700}.fail{background:#cf222e}\
table{width:100%;border-collapse:collapse;margin-top:1rem}th,td{text-align:left;padding:.45rem .3rem;border-bottom:1px solid #ddd;vertical-align:top;overflow-wrap:break-word}\
td.num,td.st{white-space:nowrap}td.num{text-align:right}td.why{word-break:break-word}footer{margin-top:1rem;color:#555;font-size:.85rem}";

fn label(health: Health) -> &'static str {
    match health {
        Health::Pass => "operational",
        Health::Warn => "degraded",
        Health::Fail => "failing",
    }
}

pub fn page(report: &Report, view: &View) -> String {
    let name = esc(&report.endpoint);
    let state = report.health.as_str();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{name}: {state}</title>\
<style>{STYLE}</style></head><body>\n<h1>{name} <span class=\"state {state}\">{}</span></h1>\n",
        label(report.health)
    );
    if view.details {
        out.push_str("<table><thead><tr><th>check</th><th>state</th><th>latency</th><th>reason</th></tr></thead><tbody>\n");
        for c in &report.checks {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"st\"><span class=\"state {}\">{}</span></td><td class=\"num\">{} ms</td><td class=\"why\">{}</td></tr>",
                esc(&c.name),
                c.health.as_str(),
                c.health.as_str(),
                c.latency_ms,
                esc(c.reason.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</tbody></table>\n");
        for note in &report.notes {
            let _ = writeln!(out, "<p>warn: {}</p>", esc(note));
        }
    }
    let time = rfc3339(report.at_ms);
    let _ = write!(
        out,
        "<footer>Result of <time datetime=\"{time}\">{time}</time>.</footer>\n</body></html>\n"
    );
    out
}
