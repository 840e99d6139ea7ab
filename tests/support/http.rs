//! A raw HTTP/1.x client: exactly the bytes we send, exactly the bytes we get.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Bytes after the head, as received (HEAD: must be empty).
    pub raw_body_len: usize,
    pub elapsed: Duration,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` over HTTP/1.1 with `Connection: close` and reads the
/// whole answer.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    request_version(port, method, path, headers, "HTTP/1.1")
}

pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    request(port, "GET", path, headers)
}

pub fn request_version(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    version: &str,
) -> Response {
    try_request(port, method, path, headers, version).expect("an HTTP answer")
}

/// As [`request_version`], `None` when the connection fails or is cut.
pub fn try_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    version: &str,
) -> Option<Response> {
    let start = Instant::now();
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req =
        format!("{method} {path} {version}\r\nhost: 10.1.2.3:8080\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).ok()?;
    let raw = read_response(&mut conn, method == "HEAD")?;
    let elapsed = start.elapsed();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    Some(Response {
        status,
        headers,
        body: if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
        raw_body_len: body.len(),
        elapsed,
    })
}

/// Decodes a chunked body.
fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        raw = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Reads one response: the head, then as much body as it announces
/// (`content-length`, chunked, or until the peer closes). Waiting for the
/// close alone would measure Envoy's delayed-close timeout, not the answer.
fn read_response(conn: &mut TcpStream, head_request: bool) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            return if raw.is_empty() { None } else { Some(raw) };
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_string())
    };
    if head_request {
        // Nothing may follow the head: wait a little for stray body bytes.
        let _ = conn.set_read_timeout(Some(std::time::Duration::from_millis(300)));
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        return Some(raw);
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Some(raw);
    }
    let done = |raw: &[u8]| -> bool {
        let body = &raw[head_end..];
        if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.len() >= len
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            body.ends_with(b"0\r\n\r\n")
        } else {
            false
        }
    };
    while !done(&raw) {
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    Some(raw)
}
