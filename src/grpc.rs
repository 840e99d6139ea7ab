//! gRPC health checking (`grpc.health.v1`), by hand: no protobuf library.
//!
//! - the `HealthCheckRequest` a `grpc` check sends, and the
//!   `HealthCheckResponse` it reads (one string field, one enum field);
//! - the gRPC frame of a health probe request (`service` selects the
//!   endpoint);
//! - the `GrpcService` proto a check with an `authority` hands to Envoy in
//!   place of a cluster name;
//! - the names of the status codes.
//!
//! It imports nothing of the crate: the judgement of an answer is
//! [`crate::outcome::grpc`].

/// The service and method a `grpc` check calls.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
pub const CHECK_METHOD: &str = "Check";
/// The path of a gRPC health check request (the probe side).
pub const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// The path of the streaming variant, which always goes to the app.
pub const WATCH_PATH: &str = "/grpc.health.v1.Health/Watch";

/// Longest `service` name decoded from a probe request.
pub const MAX_SERVICE: usize = 256;

/// A `grpc.health.v1.Health/Check` call to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    /// The cluster name, or a `GrpcService` proto (see [`service_config`]).
    pub upstream: String,
    /// The `HealthCheckRequest`, unframed.
    pub message: Vec<u8>,
}

/// The answer to a gRPC call as the host read it.
#[derive(Debug, Clone, Copy)]
pub struct GrpcResponse<'a> {
    /// The gRPC status code (0 OK).
    pub code: u32,
    /// The `grpc-message`, if any.
    pub message: &'a str,
    /// The response message (protobuf, unframed) when `code` is 0.
    pub body: &'a [u8],
}

/// The name of a gRPC status code.
pub fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNRECOGNIZED")
}

/// The name of a `HealthCheckResponse.ServingStatus`.
pub fn serving_name(status: u64) -> &'static str {
    match status {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNRECOGNIZED",
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends field `field` (length-delimited) holding `bytes`.
fn put_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(field << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `HealthCheckRequest { string service = 1; }`: empty for the empty
/// service (proto3 leaves defaults out).
pub fn encode_request(service: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !service.is_empty() {
        put_bytes(&mut out, 1, service.as_bytes());
    }
    out
}

/// `GrpcService { envoy_grpc = 1 { cluster_name = 1; authority = 2 } }`
/// (no authority when empty: Envoy then uses the cluster name), which a
/// `grpc` check always hands to Envoy's `proxy_grpc_call`. A bare cluster
/// name is not safe there: Envoy first parses the argument as that proto,
/// and a name that happens to parse (`h1`: field 13, varint 49) leaves the
/// service unset, on which Envoy 1.40 aborts (`panic: unset oneof`). As a
/// string (the SDK's argument): `None` when it is not UTF-8 (a length byte
/// of 128 or more: cluster and authority over [`MAX_UPSTREAM`] bytes).
pub fn service_config(cluster: &str, authority: &str) -> Option<String> {
    let mut inner = Vec::new();
    put_bytes(&mut inner, 1, cluster.as_bytes());
    if !authority.is_empty() {
        put_bytes(&mut inner, 2, authority.as_bytes());
    }
    let mut out = Vec::new();
    put_bytes(&mut out, 1, &inner);
    String::from_utf8(out).ok()
}

/// Longest cluster name and authority together of a `grpc` check.
pub const MAX_UPSTREAM: usize = 123;

/// A protobuf reader over one message.
struct Reader<'a> {
    bytes: &'a [u8],
}

/// A field of a message: its number and value.
enum Field<'a> {
    Varint(u64, u64),
    Bytes(u64, &'a [u8]),
    Other,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first().ok_or("truncated varint")?;
            self.bytes = rest;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err("varint too long")
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], &'static str> {
        let n = usize::try_from(n).map_err(|_| "field too long")?;
        if n > self.bytes.len() {
            return Err("truncated field");
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn next(&mut self) -> Option<Result<Field<'a>, &'static str>> {
        if self.bytes.is_empty() {
            return None;
        }
        Some(self.field())
    }

    fn field(&mut self) -> Result<Field<'a>, &'static str> {
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err("field number 0");
        }
        match key & 7 {
            0 => Ok(Field::Varint(number, self.varint()?)),
            1 => self.take(8).map(|_| Field::Other),
            2 => {
                let len = self.varint()?;
                Ok(Field::Bytes(number, self.take(len)?))
            }
            5 => self.take(4).map(|_| Field::Other),
            _ => Err("unsupported wire type"),
        }
    }
}

/// `HealthCheckResponse { ServingStatus status = 1; }`: the status, `None`
/// when the message leaves it out (proto3: UNKNOWN), `Err` when the bytes
/// are not such a message.
pub fn decode_response(bytes: &[u8]) -> Result<Option<u64>, &'static str> {
    let mut reader = Reader { bytes };
    let mut status = None;
    while let Some(field) = reader.next() {
        match field? {
            Field::Varint(1, v) => status = Some(v),
            Field::Bytes(1, _) => return Err("status is not a varint"),
            _ => {}
        }
    }
    Ok(status)
}

/// The `service` of a `HealthCheckRequest` message.
pub fn decode_request(bytes: &[u8]) -> Result<String, &'static str> {
    let mut reader = Reader { bytes };
    let mut service = String::new();
    while let Some(field) = reader.next() {
        match field? {
            Field::Bytes(1, s) => {
                if s.len() > MAX_SERVICE {
                    return Err("service name too long");
                }
                service = String::from_utf8(s.to_vec()).map_err(|_| "service is not UTF-8")?;
            }
            Field::Varint(1, _) => return Err("service is not a string"),
            _ => {}
        }
    }
    Ok(service)
}

/// What the body of a gRPC request holds so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Not all of the first message yet.
    Incomplete,
    /// The first message, unframed.
    Message(&'a [u8]),
    /// Not an uncompressed gRPC message.
    Invalid(&'static str),
}

/// The first gRPC message of a request body: a flag byte (0: not
/// compressed), a 4-byte big-endian length, the message.
pub fn frame(body: &[u8]) -> Frame<'_> {
    let Some((&flag, rest)) = body.split_first() else {
        return Frame::Incomplete;
    };
    if flag != 0 {
        return Frame::Invalid("compressed or unknown frame flag");
    }
    let Some((len, message)) = rest.split_first_chunk::<4>() else {
        return Frame::Incomplete;
    };
    let len = u32::from_be_bytes(*len) as usize;
    if len > MAX_SERVICE + 16 {
        return Frame::Invalid("message too long for a HealthCheckRequest");
    }
    match message.get(..len) {
        Some(m) => Frame::Message(m),
        None => Frame::Incomplete,
    }
}

#[cfg(test)]
mod tests;
