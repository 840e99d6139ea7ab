//! Real gRPC servers (Python `grpcio` + `grpcio-health-checking`, installed
//! into `.venv` by `just setup`) on 127.0.0.1, driven from the tests, and a
//! real gRPC health client. See `grpc_health_server.py`.
//!
//! A server is started as a child process, prints its ephemeral port, takes
//! commands on stdin (switching states at run time) and is stopped by PID
//! when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/grpc_health_server.py")
}

/// The venv's Python (`MESHPROBE_PYTHON` overrides it).
pub fn python() -> String {
    std::env::var("MESHPROBE_PYTHON").unwrap_or_else(|_| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        assert!(
            p.exists(),
            "{} is missing: run `just setup` (it installs grpcio)",
            p.display()
        );
        p.display().to_string()
    })
}

/// What a server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `grpc.health.v1`, the overall health ("") SERVING.
    Health,
    /// A gRPC server without the health service.
    NoHealth,
    /// Reads the request and resets the connection.
    Reset,
}

pub struct GrpcServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub port: u16,
}

impl GrpcServer {
    pub fn start(kind: Kind) -> GrpcServer {
        let word = match kind {
            Kind::Health => "health",
            Kind::NoHealth => "nohealth",
            Kind::Reset => "reset",
        };
        let mut child = Command::new(python())
            .arg(script())
            .args(["serve", word])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the gRPC server");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        let (Some(stdin), Some(mut stdout)) = (stdin, stdout) else {
            let _ = child.kill();
            panic!("no pipes to the gRPC server");
        };
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok());
        let mut server = GrpcServer {
            child,
            stdin: Some(stdin),
            stdout,
            port: 0,
        };
        server.port = port.unwrap_or_else(|| panic!("gRPC server did not start: {line:?}"));
        server
    }

    /// Sends a command and returns its answer line.
    fn command(&mut self, words: &str) -> String {
        let stdin = self.stdin.as_mut().expect("server stdin");
        writeln!(stdin, "{words}").expect("write to the gRPC server");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the answer");
        assert!(line.starts_with("OK"), "{words}: {line}");
        line.trim().to_string()
    }

    /// Sets the health of `service` ("" = the server's overall health):
    /// `SERVING`, `NOT_SERVING` or `UNKNOWN`.
    pub fn set(&mut self, service: &str, status: &str) {
        let s = if service.is_empty() { "-" } else { service };
        self.command(&format!("set {s} {status}"));
    }

    /// `Check` waits (until `hang(false)`).
    pub fn hang(&mut self, on: bool) {
        self.command(if on { "hang on" } else { "hang off" });
    }

    /// How many `Check` calls the server saw.
    pub fn hits(&mut self) -> usize {
        let line = self.command("hits");
        line.trim_start_matches("OK").trim().parse().unwrap_or(0)
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first answer of a `grpc.health.v1.Health/Watch` stream.
pub fn watch(port: u16, service: &str) -> String {
    let s = if service.is_empty() { "-" } else { service };
    let out = Command::new(python())
        .arg(script())
        .args(["watch", &format!("127.0.0.1:{port}"), s])
        .stdin(Stdio::null())
        .output()
        .expect("run the gRPC health client");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One `grpc.health.v1.Health/Check` over h2c to 127.0.0.1:`port` with a
/// real gRPC client: `SERVING` (or the status name), or
/// `ERROR <CODE>: <details>`.
pub fn check(port: u16, service: &str, metadata: &[(&str, &str)]) -> String {
    let s = if service.is_empty() { "-" } else { service };
    let pairs: Vec<String> = metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let out = Command::new(python())
        .arg(script())
        .args(["check", &format!("127.0.0.1:{port}"), s])
        .args(&pairs)
        .stdin(Stdio::null())
        .output()
        .expect("run the gRPC health client");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !text.is_empty(),
        "the gRPC health client said nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
