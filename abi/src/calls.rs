//! Calls into the host (wasm32 only: the host provides them as imports).

use super::{serialize_map, serialize_path, status, Buffer, LogLevel, Map, MetricType};
use std::ptr::{null, null_mut};

type Status = u32;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: LogLevel, data: *const u8, size: usize) -> Status;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> Status;
    fn proxy_set_tick_period_milliseconds(period: u32) -> Status;
    fn proxy_get_buffer_bytes(
        b: Buffer,
        at: usize,
        max: usize,
        d: *mut *mut u8,
        n: *mut usize,
    ) -> Status;
    fn proxy_set_buffer_bytes(b: Buffer, at: usize, size: usize, d: *const u8, n: usize) -> Status;
    fn proxy_get_header_map_value(
        m: Map,
        k: *const u8,
        kn: usize,
        d: *mut *mut u8,
        n: *mut usize,
    ) -> Status;
    fn proxy_get_header_map_pairs(m: Map, d: *mut *mut u8, n: *mut usize) -> Status;
    fn proxy_replace_header_map_value(
        m: Map,
        k: *const u8,
        kn: usize,
        v: *const u8,
        vn: usize,
    ) -> Status;
    fn proxy_remove_header_map_value(m: Map, k: *const u8, kn: usize) -> Status;
    fn proxy_get_property(p: *const u8, pn: usize, d: *mut *mut u8, n: *mut usize) -> Status;
    fn proxy_get_shared_data(
        k: *const u8,
        kn: usize,
        d: *mut *mut u8,
        n: *mut usize,
        cas: *mut u32,
    ) -> Status;
    fn proxy_set_shared_data(k: *const u8, kn: usize, v: *const u8, vn: usize, cas: u32) -> Status;
    fn proxy_register_shared_queue(name: *const u8, n: usize, id: *mut u32) -> Status;
    fn proxy_dequeue_shared_queue(id: u32, d: *mut *mut u8, n: *mut usize) -> Status;
    fn proxy_enqueue_shared_queue(id: u32, v: *const u8, n: usize) -> Status;
    fn proxy_continue_stream(stream: u32) -> Status;
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        code: u32,
        details: *const u8,
        details_n: usize,
        body: *const u8,
        body_n: usize,
        headers: *const u8,
        headers_n: usize,
        grpc_status: i32,
    ) -> Status;
    #[allow(clippy::too_many_arguments)]
    fn proxy_http_call(
        cluster: *const u8,
        cluster_n: usize,
        headers: *const u8,
        headers_n: usize,
        body: *const u8,
        body_n: usize,
        trailers: *const u8,
        trailers_n: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> Status;
    #[allow(clippy::too_many_arguments)]
    fn proxy_grpc_call(
        cluster: *const u8,
        cluster_n: usize,
        service: *const u8,
        service_n: usize,
        method: *const u8,
        method_n: usize,
        metadata: *const u8,
        metadata_n: usize,
        message: *const u8,
        message_n: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> Status;
    fn proxy_get_status(code: *mut u32, d: *mut *mut u8, n: *mut usize) -> Status;
    fn proxy_set_effective_context(context: u32) -> Status;
    fn proxy_define_metric(kind: MetricType, name: *const u8, n: usize, id: *mut u32) -> Status;
    fn proxy_increment_metric(id: u32, offset: i64) -> Status;
    fn proxy_record_metric(id: u32, value: u64) -> Status;
}

fn ok(s: Status) -> Result<(), Status> {
    if s == status::OK {
        Ok(())
    } else {
        Err(s)
    }
}

/// Runs a call that returns a host-allocated buffer: `Ok(None)` when the
/// call succeeded without one (e.g. an empty header value).
fn take(call: impl FnOnce(*mut *mut u8, *mut usize) -> Status) -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    ok(call(&mut data, &mut size))?;
    if data.is_null() {
        return Ok(None);
    }
    // SAFETY: the host allocated `size` bytes at `data` through
    // `proxy_on_memory_allocate` (a Vec<u8> of that capacity) and wrote
    // them; ownership passes to us.
    Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) }))
}

pub fn log(level: LogLevel, line: &str) {
    // SAFETY (every call below): pointers and sizes of live Rust values.
    unsafe { proxy_log(level, line.as_ptr(), line.len()) };
}

/// Milliseconds of the host's clock since the Unix epoch.
pub fn now_ms() -> u64 {
    let mut ns = 0u64;
    unsafe { proxy_get_current_time_nanoseconds(&mut ns) };
    ns / 1_000_000
}

pub fn set_tick_period(ms: u32) -> Result<(), Status> {
    ok(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

/// Up to `max` bytes of a buffer from its start (empty when it has none;
/// not asked for when `max` is 0: e.g. a request body has no buffer yet in
/// the headers phase).
pub fn buffer(b: Buffer, max: usize) -> Vec<u8> {
    if max == 0 {
        return Vec::new();
    }
    let bytes = take(|d, n| unsafe { proxy_get_buffer_bytes(b, 0, max, d, n) });
    bytes.ok().flatten().unwrap_or_default()
}

/// Replaces `size` bytes at `at` of a buffer with `data`.
pub fn set_buffer(b: Buffer, at: usize, size: usize, data: &[u8]) -> Result<(), Status> {
    ok(unsafe { proxy_set_buffer_bytes(b, at, size, data.as_ptr(), data.len()) })
}

/// A header's value (`None` when absent).
pub fn header(m: Map, name: &str) -> Option<Vec<u8>> {
    let (k, kn) = (name.as_ptr(), name.len());
    // Present and empty: the host gives no buffer.
    let value = take(|d, n| unsafe { proxy_get_header_map_value(m, k, kn, d, n) });
    value.ok().map(Option::unwrap_or_default)
}

/// The current request's headers, serialized (read [`super::map_value`]),
/// all in one host call; empty when the host has none to give.
pub fn request_headers() -> Vec<u8> {
    let m = Map::HttpRequestHeaders;
    let map = take(|d, n| unsafe { proxy_get_header_map_pairs(m, d, n) });
    map.ok().flatten().unwrap_or_default()
}

/// Sets a header, or removes it (`None`).
pub fn set_header(m: Map, name: &str, value: Option<&str>) -> Result<(), Status> {
    let (k, kn) = (name.as_ptr(), name.len());
    ok(match value {
        Some(v) => unsafe { proxy_replace_header_map_value(m, k, kn, v.as_ptr(), v.len()) },
        None => unsafe { proxy_remove_header_map_value(m, k, kn) },
    })
}

pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    let path = serialize_path(path);
    take(|d, n| unsafe { proxy_get_property(path.as_ptr(), path.len(), d, n) })
        .ok()
        .flatten()
}

/// A shared-data value and its version (0: none).
pub fn shared_get(key: &str) -> (Option<Vec<u8>>, u32) {
    let mut cas = 0u32;
    let (k, kn) = (key.as_ptr(), key.len());
    let value = take(|d, n| unsafe { proxy_get_shared_data(k, kn, d, n, &mut cas) });
    (value.ok().flatten(), cas)
}

/// Sets a shared-data value if its version is still `cas` (0: any).
pub fn shared_set(key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
    let (k, kn) = (key.as_ptr(), key.len());
    ok(unsafe { proxy_set_shared_data(k, kn, value.as_ptr(), value.len(), cas) })
}

pub fn register_queue(name: &str) -> Result<u32, Status> {
    let mut id = 0u32;
    ok(unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) }).map(|_| id)
}

/// Takes one item off a queue (`None` when it is empty).
pub fn dequeue(queue: u32) -> Option<Vec<u8>> {
    take(|d, n| unsafe { proxy_dequeue_shared_queue(queue, d, n) })
        .ok()
        .flatten()
}

pub fn enqueue(queue: u32, item: &[u8]) -> Result<(), Status> {
    ok(unsafe { proxy_enqueue_shared_queue(queue, item.as_ptr(), item.len()) })
}

/// Lets the current request go on to the next filter.
pub fn resume_request() -> Result<(), Status> {
    ok(unsafe { proxy_continue_stream(0) })
}

/// Answers the current request locally. `grpc_status` -1: not gRPC; else
/// a gRPC answer with that status, `body` as its message.
pub fn send<K: AsRef<str>, V: AsRef<str>>(
    code: u32,
    headers: &[(K, V)],
    body: &[u8],
    grpc: i32,
) -> Result<(), Status> {
    send_map(code, &serialize_map(headers), body, grpc)
}

/// [`send`] with its headers serialized already ([`serialize_map`]).
pub fn send_map(code: u32, map: &[u8], body: &[u8], grpc: i32) -> Result<(), Status> {
    let (b, bn, h, hn) = (body.as_ptr(), body.len(), map.as_ptr(), map.len());
    ok(unsafe { proxy_send_local_response(code, null(), 0, b, bn, h, hn, grpc) })
}

pub fn http_call(
    cluster: &str,
    headers: &[(String, String)],
    timeout_ms: u32,
) -> Result<u32, Status> {
    let no_trailers: &[(&str, &str)] = &[];
    let (h, t, mut token) = (serialize_map(headers), serialize_map(no_trailers), 0u32);
    let (c, cn) = (cluster.as_ptr(), cluster.len());
    ok(unsafe {
        let (hp, hn, tp, tn) = (h.as_ptr(), h.len(), t.as_ptr(), t.len());
        proxy_http_call(c, cn, hp, hn, null(), 0, tp, tn, timeout_ms, &mut token)
    })
    .map(|_| token)
}

/// A unary gRPC call: (cluster, service, method), metadata, message.
pub fn grpc_call(
    to: (&str, &str, &str),
    metadata: &[(String, String)],
    message: &[u8],
    timeout_ms: u32,
) -> Result<u32, Status> {
    let (m, mut token) = (serialize_map(metadata), 0u32);
    let ((c, cn), (s, sn), (me, men)) = (parts(to.0), parts(to.1), parts(to.2));
    ok(unsafe {
        let (mp, mn, msg, msgn) = (m.as_ptr(), m.len(), message.as_ptr(), message.len());
        proxy_grpc_call(
            c, cn, s, sn, me, men, mp, mn, msg, msgn, timeout_ms, &mut token,
        )
    })
    .map(|_| token)
}

fn parts(s: &str) -> (*const u8, usize) {
    (s.as_ptr(), s.len())
}

/// The status message of the gRPC call that just closed (lossy UTF-8).
pub fn grpc_status_message() -> String {
    let mut code = 0u32;
    let message = take(|d, n| unsafe { proxy_get_status(&mut code, d, n) });
    String::from_utf8_lossy(&message.ok().flatten().unwrap_or_default()).into_owned()
}

/// Makes `context` the one later calls act on (replies, resuming).
pub fn set_effective_context(context: u32) -> Result<(), Status> {
    ok(unsafe { proxy_set_effective_context(context) })
}

pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, Status> {
    let mut id = 0u32;
    ok(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) }).map(|_| id)
}

pub fn increment_metric(id: u32, offset: i64) -> Result<(), Status> {
    ok(unsafe { proxy_increment_metric(id, offset) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), Status> {
    ok(unsafe { proxy_record_metric(id, value) })
}
