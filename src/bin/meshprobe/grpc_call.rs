//! The gRPC call of a `grpc` check in `meshprobe run`:
//! `grpc.health.v1.Health/Check` over HTTP/2 cleartext (h2c) with `tonic`,
//! on a current-thread tokio runtime of its own thread. Its answer is
//! handed to the core as the module hands Envoy's (status code, message,
//! response message); a failure to reach the server is worded as Envoy
//! words it to the module, so the reasons are the module's.

use std::error::Error as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::Endpoint;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A gRPC answer as the module reads it from Envoy.
pub struct GrpcAnswer {
    pub code: u32,
    pub message: String,
    /// The `HealthCheckResponse` (protobuf) when `code` is 0.
    pub body: Vec<u8>,
}

/// What to call.
pub struct GrpcTarget {
    /// `http://HOST:PORT` of the cluster.
    pub url: String,
    /// The `:authority`; `None` for the URL's.
    pub authority: Option<String>,
    pub service: String,
    pub metadata: Vec<(String, String)>,
    pub timeout_ms: u64,
}

/// gRPC UNAVAILABLE, and DEADLINE_EXCEEDED.
const UNAVAILABLE: u32 = 14;
pub const DEADLINE_EXCEEDED: u32 = 4;

fn envoy_reset(reason: &str) -> GrpcAnswer {
    GrpcAnswer {
        code: UNAVAILABLE,
        message: format!(
            "upstream connect error or disconnect/reset before headers. reset reason: {reason}"
        ),
        body: Vec::new(),
    }
}

/// `HealthCheckResponse { status = 1 }` as the server sent it (proto3
/// leaves UNKNOWN, 0, out).
fn encode_response(status: i32) -> Vec<u8> {
    let mut out = Vec::new();
    if status != 0 {
        out.push(0x08);
        // An enum is a varint of its i64 value (10 bytes when negative).
        let mut n = i64::from(status) as u64;
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    out
}

/// Why a call failed below gRPC.
enum Transport {
    Refused,
    TimedOut,
    /// Closed or reset, or no HTTP/2 from the server.
    Closed,
}

/// The transport failure under `status`, if any.
fn transport_failure(status: &tonic::Status) -> Option<Transport> {
    let mut source = status.source();
    let mut transport = false;
    while let Some(err) = source {
        transport = true;
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(match io.kind() {
                ErrorKind::ConnectionRefused => Transport::Refused,
                ErrorKind::TimedOut => Transport::TimedOut,
                _ => Transport::Closed,
            });
        }
        source = err.source();
    }
    transport.then_some(Transport::Closed)
}

/// Whether the server at `http://HOST:PORT` answers the HTTP/2 preface
/// with something other than a SETTINGS frame (an HTTP/1 error page, say).
/// The client's own errors against such a server race (a broken pipe, or
/// the answer read as a bad frame), so a failure is told from a reset by
/// asking once more.
fn speaks_no_http2(url: &str, timeout: Duration) -> bool {
    let Some(addr) = url
        .strip_prefix("http://")
        .and_then(|a| a.to_socket_addrs().ok())
        .and_then(|mut a| a.next())
    else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    if stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .is_err()
    {
        return false;
    }
    // A frame header: length (3 bytes), type (SETTINGS is 4), ...
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).is_ok() && head.get(3) != Some(&4)
}

/// How Envoy words a transport failure to the module.
fn envoy_words(failure: Transport, url: &str, timeout: Duration) -> GrpcAnswer {
    match failure {
        Transport::Refused => envoy_reset(
            "remote connection failure, transport failure reason: delayed connect error: Connection refused",
        ),
        Transport::TimedOut => GrpcAnswer {
            code: DEADLINE_EXCEEDED,
            message: "upstream request timeout".into(),
            body: Vec::new(),
        },
        // Envoy's word for a server that speaks no HTTP/2 to an HTTP/2
        // client (and for an HTTP/1 cluster in front of a gRPC server).
        Transport::Closed if speaks_no_http2(url, timeout) => envoy_reset("protocol error"),
        Transport::Closed => envoy_reset("connection termination"),
    }
}

async fn check(target: GrpcTarget) -> GrpcAnswer {
    let timeout = Duration::from_millis(target.timeout_ms);
    let url = target.url.clone();
    let mut endpoint = match Endpoint::from_shared(target.url) {
        Ok(e) => e.connect_timeout(timeout),
        Err(_) => return envoy_reset("protocol error"),
    };
    if let Some(authority) = target.authority {
        if let Ok(uri) = format!("http://{authority}").parse() {
            endpoint = endpoint.origin(uri);
        }
    }
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: target.service,
    });
    request.set_timeout(timeout);
    for (k, v) in &target.metadata {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(k.as_bytes()),
            MetadataValue::try_from(v.as_str()),
        ) {
            request.metadata_mut().append(key, value);
        }
    }
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(err) => {
            let status = tonic::Status::from_error(Box::new(err));
            let failure = transport_failure(&status).unwrap_or(Transport::Closed);
            return envoy_words(failure, &url, timeout);
        }
    };
    match HealthClient::new(channel).check(request).await {
        Ok(answer) => GrpcAnswer {
            code: 0,
            message: String::new(),
            body: encode_response(answer.into_inner().status),
        },
        Err(status) => match transport_failure(&status) {
            Some(failure) => envoy_words(failure, &url, timeout),
            None => GrpcAnswer {
                code: status.code() as u32,
                message: status.message().to_string(),
                body: Vec::new(),
            },
        },
    }
}

/// One call, on the calling thread. `None` when it did not end in time
/// (the run reports the check's timeout itself).
pub fn call(target: GrpcTarget) -> Option<GrpcAnswer> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    // The run enforces the timeout itself; this only ends the thread.
    let limit = Duration::from_millis(target.timeout_ms.saturating_add(1000));
    runtime
        .block_on(async { tokio::time::timeout(limit, check(target)).await })
        .ok()
}
