//! Real HTTP servers on 127.0.0.1 standing in for dependencies and for the
//! application behind Envoy. Standard library only; one thread per
//! connection. Each server counts the requests it saw and can be switched
//! between behaviours while running, in-process or over HTTP
//! (`GET /__mode/<mode>`, used by the demo).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How a server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Answer with this status and a short body.
    Status(u16),
    /// Wait this long, then answer 200.
    Delay(u64),
    /// Never answer (until the server stops).
    Hang,
    /// Answer 200 with the request's head as the body (the application).
    Echo,
    /// Answer with this status and a JSON body.
    Json(u16, String),
    /// Read the request, then close the connection without answering.
    Close,
    /// Write these bytes as they are (a whole response, or not), then
    /// close the connection.
    Raw(Vec<u8>),
    /// Write the first bytes at once, then the second one byte at a time,
    /// this many ms apart, then close.
    Trickle(Vec<u8>, u64, Vec<u8>),
}

/// A raw HTTP/1.1 response with this status line, extra header lines
/// (each ending in CRLF) and body, with its `content-length`.
pub fn raw_response(status: u16, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\n{headers}content-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A Statuspage (`/api/v2/status.json`) answer with this indicator.
pub fn statuspage(indicator: &str) -> Mode {
    let description = match indicator {
        "none" => "All Systems Operational",
        "minor" => "Minor Service Outage",
        "major" => "Partial System Outage",
        _ => "Major System Outage",
    };
    Mode::Json(
        200,
        format!(
            r#"{{"page":{{"id":"demo","name":"Demo","url":"https://status.example"}},"status":{{"indicator":"{indicator}","description":"{description}"}}}}"#
        ),
    )
}

impl Mode {
    /// `ok`, `fail`, `hang`, `slow` (700 ms), `status-<n>`, `delay-<ms>`,
    /// `echo`, `statuspage-<indicator>` (none, minor, major, critical),
    /// `garbage` (200, not JSON).
    pub fn parse(word: &str) -> Option<Mode> {
        Some(match word {
            "ok" => Mode::Status(200),
            "fail" => Mode::Status(500),
            "hang" => Mode::Hang,
            "slow" => Mode::Delay(700),
            "echo" => Mode::Echo,
            "garbage" => Mode::Json(200, "\u{fffd}<html>not json".into()),
            w => {
                if let Some(indicator) = w.strip_prefix("statuspage-") {
                    return Some(statuspage(indicator));
                }
                if let Some(n) = w.strip_prefix("status-") {
                    Mode::Status(n.parse().ok()?)
                } else if let Some(ms) = w.strip_prefix("delay-") {
                    Mode::Delay(ms.parse().ok()?)
                } else {
                    return None;
                }
            }
        })
    }
}

struct Shared {
    mode: Mutex<Mode>,
    hits: AtomicUsize,
    /// Request heads seen (request line and headers), in order.
    seen: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// A running server; stops when dropped.
pub struct DepServer {
    pub port: u16,
    shared: Arc<Shared>,
    accept: Option<thread::JoinHandle<()>>,
}

impl DepServer {
    /// Starts on an ephemeral port of 127.0.0.1.
    pub fn start(mode: Mode) -> DepServer {
        Self::start_on(0, mode).expect("bind 127.0.0.1:0")
    }

    /// Starts on `port` of 127.0.0.1 (0 = any free port).
    pub fn start_on(port: u16, mode: Mode) -> std::io::Result<DepServer> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            hits: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let s = s.clone();
                    thread::spawn(move || serve(conn, &s));
                }
            }
        });
        Ok(DepServer {
            port,
            shared,
            accept: Some(accept),
        })
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Requests answered (control requests not counted).
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// The request heads seen so far.
    pub fn seen(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().clone()
    }
}

impl Drop for DepServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    // Head and body go out as two writes: without this, Nagle holds the
    // body back ~40 ms on a kept-alive connection.
    let _ = conn.set_nodelay(true);
    loop {
        let Some(head) = read_head(&conn) else { return };
        let path = head
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_string();
        if let Some(word) = path.strip_prefix("/__mode/") {
            let (status, body) = match Mode::parse(word) {
                Some(m) => {
                    *shared.mode.lock().unwrap() = m;
                    (200, format!("mode {word}\n"))
                }
                None => (400, format!("unknown mode {word}\n")),
            };
            respond(&mut conn, status, body.as_bytes());
            continue;
        }
        if path == "/__hits" {
            let body = format!("{}\n", shared.hits.load(Ordering::SeqCst));
            respond(&mut conn, 200, body.as_bytes());
            continue;
        }
        shared.hits.fetch_add(1, Ordering::SeqCst);
        shared.seen.lock().unwrap().push(head.clone());
        let mode = shared.mode.lock().unwrap().clone();
        match mode {
            Mode::Status(code) => respond(&mut conn, code, format!("status {code}\n").as_bytes()),
            Mode::Delay(ms) => {
                thread::sleep(Duration::from_millis(ms));
                respond(&mut conn, 200, b"ok\n");
            }
            Mode::Echo => respond(&mut conn, 200, head.as_bytes()),
            Mode::Json(code, body) => respond(&mut conn, code, body.as_bytes()),
            Mode::Close => {
                let _ = conn.shutdown(Shutdown::Both);
                return;
            }
            Mode::Raw(bytes) => {
                let _ = conn.write_all(&bytes);
                let _ = conn.shutdown(Shutdown::Write);
                return;
            }
            Mode::Trickle(head, gap_ms, bytes) => {
                let _ = conn.set_nodelay(true);
                let _ = conn.write_all(&head);
                for b in bytes {
                    if shared.stop.load(Ordering::SeqCst) || conn.write_all(&[b]).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(gap_ms));
                }
                let _ = conn.shutdown(Shutdown::Write);
                return;
            }
            Mode::Hang => {
                while !shared.stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = conn.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Reads a request head and discards any body (by Content-Length).
fn read_head(conn: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).ok()?;
        if n == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let mut sink = Vec::new();
    let _ = reader.by_ref().take(length).read_to_end(&mut sink);
    Some(head)
}

fn respond(conn: &mut TcpStream, status: u16, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}
