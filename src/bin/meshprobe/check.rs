//! `meshprobe check URL`: a probe client for containers without curl
//! (Docker `HEALTHCHECK`, distroless images). Exit 0 on 2xx, 1 on 5xx or a
//! `fail` status in a JSON body, 2 when the server is unreachable, times
//! out or answers anything else. Header values (secrets) never appear in
//! what it prints.

use serde_json::{json, Value};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Largest body read and printed.
const MAX_BODY: u64 = 1024 * 1024;

/// The answer, or why there is none.
enum Outcome {
    Answer { status: u16, body: Vec<u8> },
    Unreachable(String),
}

/// The URL without its query (which may carry a token).
fn shown(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// Words for a transport error, never holding a header value.
pub fn error_words(err: &ureq::Error, timeout_ms: u64) -> String {
    match err {
        ureq::Error::Timeout(_) => format!(
            "timeout after {}",
            meshprobe::duration::format_millis(timeout_ms)
        ),
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".into()
        }
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            format!(
                "timeout after {}",
                meshprobe::duration::format_millis(timeout_ms)
            )
        }
        ureq::Error::Io(e) => format!("connection failed: {e}"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::BadUri(_) => "not a usable URL".into(),
        ureq::Error::Http(_) => "invalid request (a header name or value?)".into(),
        ureq::Error::Protocol(e) => format!("not an HTTP answer: {e}"),
        other => format!("{other}"),
    }
}

/// An agent for one request: no proxy, no redirects, statuses as answers.
pub fn agent(timeout_ms: u64) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(timeout_ms)))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build()
        .into()
}

fn fetch(url: &str, headers: &[(String, String)], timeout_ms: u64) -> Outcome {
    let mut req = agent(timeout_ms).get(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.call() {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            match resp.body_mut().with_config().limit(MAX_BODY).read_to_vec() {
                Ok(body) => Outcome::Answer { status, body },
                Err(e) => Outcome::Unreachable(format!(
                    "status {status}, then the body failed: {}",
                    error_words(&e, timeout_ms)
                )),
            }
        }
        Err(e) => Outcome::Unreachable(error_words(&e, timeout_ms)),
    }
}

/// The exit code for an answer: 0 (2xx), 1 (5xx, or a JSON body whose
/// `status` is `fail`), 2 (anything else).
fn code_for(status: u16, body: &[u8]) -> u8 {
    let says_fail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("status").and_then(Value::as_str).map(|s| s == "fail"))
        .unwrap_or(false);
    match status {
        200..=299 if says_fail => 1,
        200..=299 => 0,
        500..=599 => 1,
        _ => 2,
    }
}

pub fn check(url: &str, headers: &[(String, String)], timeout: &str, json_out: bool) -> ExitCode {
    let timeout_ms = match meshprobe::duration::parse_millis(timeout) {
        Ok(ms) if ms > 0 => ms,
        Ok(_) => {
            eprintln!("meshprobe: --timeout must be greater than zero");
            return ExitCode::from(2);
        }
        Err(why) => {
            eprintln!("meshprobe: --timeout {timeout:?}: {why}");
            return ExitCode::from(2);
        }
    };
    let outcome = fetch(url, headers, timeout_ms);
    let (code, status, body, error) = match outcome {
        Outcome::Answer { status, body } => (code_for(status, &body), Some(status), body, None),
        Outcome::Unreachable(why) => (2, None, Vec::new(), Some(why)),
    };
    if json_out {
        let out = json!({
            "url": shown(url),
            "status": status,
            "exit": code,
            "body": String::from_utf8_lossy(&body),
            "error": error,
        });
        println!("{out}");
    } else {
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(&body);
        if !body.is_empty() && !body.ends_with(b"\n") {
            let _ = stdout.write_all(b"\n");
        }
        match (&error, status) {
            (Some(why), _) => eprintln!("meshprobe check: {}: {why}", shown(url)),
            (None, Some(s)) if code == 2 => {
                eprintln!(
                    "meshprobe check: {}: status {s} is neither 2xx nor 5xx",
                    shown(url)
                );
            }
            _ => {}
        }
    }
    ExitCode::from(code)
}
