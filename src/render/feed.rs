//! Atom and RSS feeds of an endpoint: one entry per check that is not
//! passing, or one "all operational" entry. Entry ids are stable for the
//! same incident (endpoint, check, state and reason with its digits left
//! out, so "took 351ms" and "took 349ms" are one incident), so a feed reader
//! (Slack, Matrix) shows each incident once.

use super::time::{rfc2822, rfc3339};
use super::{escape_markup as esc, View};
use crate::report::{Health, Report};
use std::fmt::Write as _;

struct Entry {
    id: String,
    title: String,
    text: String,
}

/// FNV-1a, 64 bits: short stable ids, no dependency.
fn fnv(s: &str) -> u64 {
    s.bytes()
        .filter(|b| !b.is_ascii_digit())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

fn entries(report: &Report, view: &View) -> Vec<Entry> {
    let ep = &report.endpoint;
    if !view.details {
        let title = match report.health {
            Health::Pass => format!("{ep}: all operational"),
            Health::Warn => format!("{ep}: degraded"),
            Health::Fail => format!("{ep}: failing"),
        };
        return vec![Entry {
            id: format!("urn:meshprobe:{ep}:{}", report.health.as_str()),
            text: title.clone(),
            title,
        }];
    }
    let mut out: Vec<Entry> = report
        .checks
        .iter()
        .filter(|c| c.health != Health::Pass)
        .map(|c| {
            let reason = c.reason.as_deref().unwrap_or("");
            Entry {
                id: format!(
                    "urn:meshprobe:{ep}:{}:{}:{:016x}",
                    c.name,
                    c.health.as_str(),
                    fnv(reason)
                ),
                title: format!("{}: {}", c.name, c.health.as_str()),
                text: reason.to_string(),
            }
        })
        .collect();
    if out.is_empty() {
        out.push(Entry {
            id: format!("urn:meshprobe:{ep}:operational"),
            title: format!("{ep}: all operational"),
            text: format!("{} checks passing", report.checks.len()),
        });
    }
    out
}

pub fn atom(report: &Report, view: &View) -> String {
    let ep = esc(&report.endpoint);
    let updated = rfc3339(report.at_ms);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
<title>{ep} status</title>\n<id>urn:meshprobe:{ep}</id>\n<updated>{updated}</updated>\n<author><name>meshprobe</name></author>\n"
    );
    for e in entries(report, view) {
        let _ = writeln!(
            out,
            "<entry><id>{}</id><title>{}</title><updated>{updated}</updated><content type=\"text\">{}</content></entry>",
            esc(&e.id),
            esc(&e.title),
            esc(&e.text)
        );
    }
    out.push_str("</feed>\n");
    out
}

pub fn rss(report: &Report, view: &View) -> String {
    let ep = esc(&report.endpoint);
    let date = rfc2822(report.at_ms);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>\n\
<title>{ep} status</title>\n<description>Health of {ep}, by meshprobe</description>\n<lastBuildDate>{date}</lastBuildDate>\n"
    );
    for e in entries(report, view) {
        let _ = writeln!(
            out,
            "<item><guid isPermaLink=\"false\">{}</guid><title>{}</title><description>{}</description><pubDate>{date}</pubDate></item>",
            esc(&e.id),
            esc(&e.title),
            esc(&e.text)
        );
    }
    out.push_str("</channel></rss>\n");
    out
}
