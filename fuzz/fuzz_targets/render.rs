//! Every view of an arbitrary report: names, reasons, notes and service
//! fields with any Unicode (markup and JSON metacharacters, controls,
//! U+FFFE), any health, latency and time, in every format, verbose or not,
//! with details or not.
//!
//! Invariants:
//! - the JSON views parse and say what the report says;
//! - HTML, Atom and RSS have exactly the tags of the same report with
//!   neutral text (no text turns into markup), every `&` starts an entity,
//!   and Atom and RSS are well-formed XML whose text reads back;
//! - without details nothing about the checks or notes shows (the answer is
//!   the same as for a report without them);
//! - the status and headers follow the view.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use meshprobe::format::Format;
use meshprobe::policy::{Service, StatusCodes};
use meshprobe::render::time::rfc3339;
use meshprobe::render::{render, View};
use meshprobe::report::{CheckReport, Health, Report};
use serde_json::Value;

#[derive(Arbitrary, Debug)]
struct Input {
    endpoint: Text,
    health: u8,
    checks: Vec<Check>,
    at_ms: u64,
    notes: Vec<Text>,
    service: [Option<Text>; 3],
    codes: (u16, u16, u16),
    degraded_header: bool,
}

#[derive(Arbitrary, Debug)]
struct Check {
    name: Text,
    health: u8,
    critical: bool,
    reason: Option<Text>,
    latency_ms: u64,
    at_ms: u64,
    component_type: Text,
}

/// Text from the fuzzer, or with markup and JSON metacharacters around it.
#[derive(Arbitrary, Debug)]
enum Text {
    Raw(String),
    Marked(String),
}

impl Text {
    fn get(&self) -> String {
        match self {
            Text::Raw(s) => s.clone(),
            Text::Marked(s) => format!("<x a=\"1\" b='2'>&amp;{s}</x>\"\\\u{0}\u{fffe}&"),
        }
    }
}

fn health(h: u8) -> Health {
    match h % 3 {
        0 => Health::Pass,
        1 => Health::Warn,
        _ => Health::Fail,
    }
}

fn report(input: &Input) -> Report {
    Report {
        endpoint: input.endpoint.get(),
        health: health(input.health),
        checks: input
            .checks
            .iter()
            .map(|c| CheckReport {
                name: c.name.get(),
                health: health(c.health),
                critical: c.critical,
                reason: c.reason.as_ref().map(Text::get),
                failure: None,
                latency_ms: c.latency_ms,
                at_ms: c.at_ms,
                component_type: c.component_type.get(),
            })
            .collect(),
        at_ms: input.at_ms,
        notes: input.notes.iter().map(Text::get).collect(),
    }
}

/// The same report with every piece of text replaced by a plain word.
fn neutral(r: &Report) -> Report {
    let mut n = r.clone();
    n.endpoint = "n".into();
    for c in &mut n.checks {
        c.name = "n".into();
        c.reason = c.reason.as_ref().map(|_| "n".into());
        c.component_type = "n".into();
    }
    n.notes = n.notes.iter().map(|_| "n".into()).collect();
    n
}

/// Every `<...>` of a markup document, in order.
fn tags(doc: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find('<') {
        let tail = &rest[start..];
        let end = tail.find('>').map_or(tail.len(), |e| e + 1);
        out.push(&tail[..end]);
        rest = &tail[end..];
    }
    out
}

/// Every `&` starts one of the entities the escaper writes.
fn entities_only(doc: &str) {
    for (i, _) in doc.match_indices('&') {
        let after = &doc[i + 1..];
        assert!(
            ["amp;", "lt;", "gt;", "quot;", "#39;"]
                .iter()
                .any(|e| after.starts_with(e)),
            "raw & at {i}: {:?}",
            &doc[i..doc.len().min(i + 20)]
        );
    }
}

/// What an XML parser reads back for `s` written through the escaper:
/// forbidden characters become U+FFFD and line ends are normalized.
fn xml_text(s: &str) -> String {
    let replaced: String = s
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 => '\u{fffd}',
            '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect();
    replaced.replace("\r\n", "\n").replace('\r', "\n")
}

/// The text of `node`'s child `name`, line ends normalized (parsers
/// differ on a lone CR; XML says it reads as LF).
fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    node.children()
        .find(|n| n.has_tag_name(name))
        .map(|n| {
            n.text()
                .unwrap_or("")
                .replace("\r\n", "\n")
                .replace('\r', "\n")
        })
        .unwrap_or_else(|| panic!("no <{name}>"))
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn unique_names(r: &Report) -> bool {
    r.checks
        .iter()
        .enumerate()
        .all(|(i, c)| r.checks[..i].iter().all(|o| o.name != c.name))
}

fn check_json(r: &Report, view: &View, service: &Service, body: &str) {
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{:?} is not JSON: {e}: {body:?}", view.format));
    let status = r.health.as_str();
    match view.format {
        Format::Json => {
            assert_eq!(v["status"], status);
            if !view.details {
                assert_eq!(keys(&v), ["status"]);
                return;
            }
            let checks = &v["checks"];
            assert!(checks.is_object());
            if r.notes.is_empty() {
                assert!(v.get("warnings").is_none());
            } else {
                assert_eq!(v["warnings"], serde_json::json!(r.notes));
            }
            if unique_names(r) {
                assert_eq!(keys(checks).len(), r.checks.len());
                for c in &r.checks {
                    let o = &checks[&c.name];
                    assert_eq!(o["status"], c.health.as_str());
                    assert_eq!(o["latency_ms"].as_u64(), Some(c.latency_ms));
                    assert_eq!(o.get("reason").and_then(Value::as_str), c.reason.as_deref());
                }
            }
        }
        Format::Dhc => {
            let map = v.as_object().expect("dhc is an object");
            if !view.details {
                let want = if r.health == Health::Pass {
                    "working"
                } else {
                    "reason withheld"
                };
                assert_eq!(map.len(), 1);
                assert_eq!(v[&r.endpoint], want);
                return;
            }
            if unique_names(r) {
                assert_eq!(map.len(), r.checks.len());
                for c in &r.checks {
                    let want = match (c.health, &c.reason) {
                        (Health::Pass, _) => "working",
                        (_, Some(reason)) => reason.as_str(),
                        (_, None) => "unavailable",
                    };
                    assert_eq!(v[&c.name], want);
                }
            }
        }
        Format::Health => {
            assert_eq!(v["status"], status);
            if !view.details {
                assert_eq!(keys(&v), ["status"]);
                return;
            }
            for (key, value) in [
                ("serviceId", &service.id),
                ("version", &service.version),
                ("description", &service.description),
            ] {
                assert_eq!(v.get(key).and_then(Value::as_str), value.as_deref());
            }
            if r.notes.is_empty() {
                assert!(v.get("notes").is_none());
            } else {
                assert_eq!(v["notes"], serde_json::json!(r.notes));
            }
            if unique_names(r) {
                let checks = &v["checks"];
                for c in &r.checks {
                    let key = format!("{}:responseTime", c.name);
                    let o = &checks[&key][0];
                    assert_eq!(o["componentType"], c.component_type.as_str());
                    assert_eq!(o["observedValue"].as_u64(), Some(c.latency_ms));
                    assert_eq!(o["observedUnit"], "ms");
                    assert_eq!(o["status"], c.health.as_str());
                    assert_eq!(o["time"], rfc3339(c.at_ms).as_str());
                    assert_eq!(o.get("output").and_then(Value::as_str), c.reason.as_deref());
                }
            }
        }
        _ => {}
    }
}

fn check_xml(r: &Report, view: &View, body: &str) {
    let doc = roxmltree::Document::parse(body)
        .unwrap_or_else(|e| panic!("{:?} is not XML: {e}: {body:?}", view.format));
    let root = doc.root_element();
    let want_title = format!("{} status", xml_text(&r.endpoint));
    let (channel, entry_tag, text_tag, id_tag) = match view.format {
        Format::Atom => {
            assert!(root.has_tag_name("feed"));
            (root, "entry", "content", "id")
        }
        _ => {
            assert!(root.has_tag_name("rss"));
            let channel = root
                .children()
                .find(|n| n.has_tag_name("channel"))
                .expect("<channel>");
            (channel, "item", "description", "guid")
        }
    };
    assert_eq!(child_text(channel, "title"), want_title);
    let entries: Vec<_> = channel
        .children()
        .filter(|n| n.has_tag_name(entry_tag))
        .collect();
    let failing: Vec<&CheckReport> = r
        .checks
        .iter()
        .filter(|c| c.health != Health::Pass)
        .collect();
    if view.details && !failing.is_empty() {
        assert_eq!(entries.len(), failing.len());
        for (e, c) in entries.iter().zip(&failing) {
            assert_eq!(
                child_text(*e, "title"),
                xml_text(&format!("{}: {}", c.name, c.health.as_str()))
            );
            assert_eq!(
                child_text(*e, text_tag),
                xml_text(c.reason.as_deref().unwrap_or(""))
            );
        }
    } else {
        assert_eq!(entries.len(), 1);
    }
    for e in &entries {
        assert!(child_text(*e, id_tag).starts_with("urn:meshprobe:"));
    }
}

fn check_text(r: &Report, view: &View, body: &str) {
    let lines = body.matches('\n').count();
    let breaks = |s: &str| s.matches('\n').count();
    let word = match r.health {
        Health::Pass => "ok\n",
        Health::Warn => "warn\n",
        Health::Fail => "fail\n",
    };
    let last = if r.health != Health::Fail {
        format!("{} check passed\n", r.endpoint)
    } else if view.details {
        format!("{} check failed\n", r.endpoint)
    } else {
        format!("{} check failed: reason withheld\n", r.endpoint)
    };
    match (view.verbose, view.details) {
        (false, false) => assert_eq!(body, word),
        (false, true) => {
            assert!(body.starts_with(word));
            assert_eq!(lines, 1 + r.notes.len());
        }
        (true, false) => assert_eq!(body, last),
        (true, true) => {
            assert!(body.ends_with(&last));
            // Reasons and notes are kept on one line each.
            let names: usize = r.checks.iter().map(|c| breaks(&c.name)).sum();
            assert_eq!(
                lines,
                r.checks.len() + r.notes.len() + 1 + names + breaks(&r.endpoint)
            );
        }
    }
}

/// One sample line per gauge and check, `# EOF` last, and every label value
/// reads back (escapes undone) to the name it came from.
fn check_openmetrics(r: &Report, view: &View, body: &str) {
    assert!(body.ends_with("\n# EOF\n"), "no # EOF: {body:?}");
    let samples: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
    let per_check = if view.details { r.checks.len() } else { 0 };
    assert_eq!(samples.len(), 1 + 2 * per_check, "{body:?}");
    let unescape = |v: &str| {
        let mut out = String::new();
        let mut chars = v.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(e) => out.push(e),
                    None => panic!("dangling escape in {v:?}"),
                }
            } else {
                assert_ne!(c, '"', "raw quote in {v:?}");
                out.push(c);
            }
        }
        out
    };
    // The first label value of a sample: `name{endpoint="..."...`.
    let first_value = |line: &str| {
        let start = line.find("=\"").expect("a label") + 2;
        let rest = &line[start..];
        let mut end = 0;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        unescape(&rest[..end])
    };
    for line in &samples {
        assert_eq!(first_value(line), r.endpoint, "{line:?}");
    }
}

fuzz_target!(|input: Input| {
    let r = report(&input);
    let service = Service {
        id: input.service[0].as_ref().map(Text::get),
        version: input.service[1].as_ref().map(Text::get),
        description: input.service[2].as_ref().map(Text::get),
    };
    let plain = Service {
        id: service.id.as_ref().map(|_| "n".into()),
        version: service.version.as_ref().map(|_| "n".into()),
        description: service.description.as_ref().map(|_| "n".into()),
    };
    let bare = Report {
        checks: Vec::new(),
        notes: Vec::new(),
        ..r.clone()
    };
    let n = neutral(&r);
    let codes = StatusCodes {
        pass: input.codes.0,
        warn: input.codes.1,
        fail: input.codes.2,
    };
    for &(_, format) in Format::ALL {
        // Only the text view reads `verbose`.
        let verbosity: &[bool] = if format == Format::Text {
            &[false, true]
        } else {
            &[false]
        };
        for &verbose in verbosity {
            for details in [false, true] {
                let view = View {
                    format,
                    verbose,
                    details,
                    codes,
                    degraded_header: input.degraded_header,
                };
                let reply = render(&r, &view, &service);
                let body = std::str::from_utf8(&reply.body).expect("UTF-8");

                let want_status = if format.always_ok() {
                    200
                } else {
                    r.health.http_status(&codes)
                };
                assert_eq!(reply.status, want_status);
                let header = |name: &str| {
                    reply
                        .headers
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.as_ref())
                };
                assert_eq!(header("content-type"), Some(format.content_type()));
                assert_eq!(header("cache-control"), Some("no-store"));
                assert_eq!(
                    header("x-envoy-degraded").is_some(),
                    input.degraded_header && r.health == Health::Warn
                );

                if !details {
                    let hidden = render(&bare, &view, &service);
                    assert_eq!(reply, hidden, "{format:?} shows checks without details");
                }

                match format {
                    Format::Json | Format::Dhc | Format::Health => {
                        check_json(&r, &view, &service, body)
                    }
                    Format::Html | Format::Atom | Format::Rss => {
                        let reference = render(&n, &view, &plain);
                        let reference = std::str::from_utf8(&reference.body).expect("UTF-8");
                        assert_eq!(
                            tags(body),
                            tags(reference),
                            "{format:?}: text became markup"
                        );
                        assert!(!body.contains("<x"));
                        entities_only(body);
                        if format != Format::Html {
                            check_xml(&r, &view, body);
                        }
                    }
                    Format::Text => check_text(&r, &view, body),
                    Format::OpenMetrics => check_openmetrics(&r, &view, body),
                    // Not in Format::ALL: the gRPC probe answer (headers only)
                    // is never negotiated, so never rendered here.
                    Format::Grpc => {}
                }
            }
        }
    }
});
