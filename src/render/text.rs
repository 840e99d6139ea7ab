//! Plain text: `ok` / `warn` / `fail`; Kubernetes style with `?verbose`.

use super::View;
use crate::report::{Health, Report};
use std::fmt::Write as _;

fn word(health: Health) -> &'static str {
    match health {
        Health::Pass => "ok",
        Health::Warn => "warn",
        Health::Fail => "fail",
    }
}

/// `ok` / `warn` / `fail`. With `?verbose` and details: one line per check
/// (`[+]db ok`, `[!]cache warn: <reason>`, `[-]db failed: <reason>`), then
/// `<endpoint> check passed|failed`; without details only that last line,
/// with `reason withheld` when it failed. Notes follow as `warn:` lines.
pub fn text(report: &Report, view: &View) -> String {
    let mut out = String::new();
    let failed = report.health == Health::Fail;
    if !view.verbose {
        out.push_str(word(report.health));
        out.push('\n');
    } else if view.details {
        for c in &report.checks {
            let reason = c.reason.as_deref().unwrap_or("");
            let _ = match c.health {
                Health::Pass => writeln!(out, "[+]{} ok", c.name),
                Health::Warn => writeln!(out, "[!]{} warn: {}", c.name, one_line(reason)),
                Health::Fail => writeln!(out, "[-]{} failed: {}", c.name, one_line(reason)),
            };
        }
    }
    if view.details {
        for note in &report.notes {
            let _ = writeln!(out, "warn: {}", one_line(note));
        }
    }
    if view.verbose {
        let _ = match (failed, view.details) {
            (false, _) => writeln!(out, "{} check passed", report.endpoint),
            (true, true) => writeln!(out, "{} check failed", report.endpoint),
            (true, false) => writeln!(out, "{} check failed: reason withheld", report.endpoint),
        };
    }
    out
}

/// A reason on one line: line breaks would forge `[+]` lines.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}
