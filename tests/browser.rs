//! The HTML status page in a real headless browser (Debian `chromium`):
//! a screenshot of a page with a passing, a warning and a failing check,
//! and hostile text (in a check name, in a dependency's answer) rendered as
//! text, never run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use meshprobe::failure::Failure;
use meshprobe::policy::{Format, Service};
use meshprobe::render::{render, View};
use meshprobe::report::{CheckReport, Report};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::deps::Mode;
use support::envoy::Scratch;
use support::stack::Stack;

fn chromium() -> String {
    let bin = std::env::var("MESHPROBE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&bin).exists(),
        "{bin} is missing: apt-get install chromium (.ci/run does)"
    );
    bin
}

/// Runs headless Chromium on `url` with `args`; returns stdout.
fn browse(url: &str, args: &[&str]) -> String {
    let profile = Scratch::new("chromium");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const POLICY: &str = r#"{
  "endpoints": [{"ttl": "0s", "name": "pipeline", "path": "/statusz", "access": "public", "details": "always",
                 "format": "html", "checks": ["db", "cache", "payments"]}],
  "checks": [
    {"name": "db", "cluster": "db"},
    {"name": "cache", "cluster": "cache", "critical": false},
    {"name": "payments", "cluster": "payments", "expect_body": {"pointer": "/status", "equals": "ok"}}
  ]
}"#;

#[test]
fn screenshot_of_a_page_with_pass_warn_and_fail() {
    let s = Stack::start(
        POLICY,
        &[
            ("db", Mode::Status(200)),
            ("cache", Mode::Status(500)),
            (
                "payments",
                Mode::Json(
                    200,
                    r#"{"status":"<script>alert(1)</script><img src=x onerror=alert(2)>"}"#.into(),
                ),
            ),
        ],
        &[],
    );
    let url = format!("http://127.0.0.1:{}/statusz", s.envoy.port);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=420,640",
        ],
    );
    let png = std::fs::read(&shot).expect("no screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 5_000,
        "screenshot suspiciously small: {} bytes",
        png.len()
    );

    // The same page as the browser built it: the dependency's hostile
    // answer is text in a cell, no element came from it.
    let dom = browse(&url, &["--dump-dom"]);
    assert!(
        dom.contains("<td>db</td><td class=\"st\"><span class=\"state pass\">pass</span>"),
        "{dom}"
    );
    assert!(
        dom.contains("<span class=\"state warn\">warn</span>"),
        "{dom}"
    );
    assert!(
        dom.contains("<span class=\"state fail\">fail</span>"),
        "{dom}"
    );
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"),
        "{dom}"
    );
    assert!(
        !dom.contains("<script") && !dom.contains("<img"),
        "markup from a dependency became DOM: {dom}"
    );
}

#[test]
fn a_hostile_check_name_renders_as_text() {
    // Policy names cannot hold markup; the renderer must not depend on that.
    let mut report = Report::new(
        "ready",
        vec![
            CheckReport {
                // The page shows `reason` as it is, whatever it says.
                reason: Some("<b>bold</b> & \"quoted\"".into()),
                ..CheckReport::new(
                    "<script>alert(1)</script>",
                    true,
                    Err(Failure::NoResultYet),
                    3,
                )
            },
            CheckReport::new("db", true, Ok(()), 2),
        ],
    );
    report.at_ms = 1_795_221_601_123;
    let reply = render(
        &report,
        &View::new(Format::Html, false, true),
        &Service::default(),
    );
    let dir = Scratch::new("page");
    let file = dir.0.join("page.html");
    std::fs::write(&file, &reply.body).unwrap();
    let dom = browse(&format!("file://{}", file.display()), &["--dump-dom"]);
    assert!(
        dom.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("&lt;b&gt;bold&lt;/b&gt; &amp; \"quoted\""),
        "{dom}"
    );
    assert!(!dom.contains("<script") && !dom.contains("<b>"), "{dom}");
}
