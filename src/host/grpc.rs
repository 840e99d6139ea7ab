//! gRPC calls of the `grpc` checks: dispatched by the root context, their
//! answers read back and handed to the engine.

use super::exec::{now_ms, Host, Shared};
use crate::engine::Dispatch;
use crate::grpc::{GrpcCall, GrpcResponse, CHECK_METHOD, HEALTH_SERVICE};
use crate::outcome::DispatchError;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, Status};
use std::time::Duration;

/// Dispatches the gRPC call of `d`.
pub fn dispatch(host: &mut Host, d: Dispatch, call: &GrpcCall) {
    let metadata = d
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let timeout = Duration::from_millis(d.timeout_ms);
    let result = hostcalls::dispatch_grpc_call(
        &call.upstream,
        HEALTH_SERVICE,
        CHECK_METHOD,
        metadata,
        Some(&call.message),
        timeout,
    );
    match result {
        Ok(token) => host.grpc_tokens.push((token, d.id)),
        Err(status) => {
            // Envoy answers ParseFailure for a cluster it does not know.
            let err = match status {
                Status::ParseFailure | Status::BadArgument => DispatchError::BadArgument,
                Status::InternalFailure => DispatchError::FailedAtOnce,
                other => DispatchError::Other(other as u32),
            };
            host.engine
                .on_dispatch_failed(now_ms(), &mut Shared, d.id, err);
        }
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_status(
        return_code: *mut u32,
        return_message_data: *mut *mut u8,
        return_message_size: *mut usize,
    ) -> Status;
}

/// The status message of the gRPC call that just closed. Not the SDK's
/// `get_grpc_status`, which panics on a message that is not UTF-8.
fn status_message() -> String {
    let mut code: u32 = 0;
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a buffer it allocated through the SDK's
    // `proxy_on_memory_allocate` (a `Vec<u8>` of `size` bytes), whose
    // ownership passes to us.
    unsafe {
        if !matches!(
            proxy_get_status(&mut code, &mut data, &mut size),
            Status::Ok
        ) || data.is_null()
        {
            return String::new();
        }
        let bytes = Vec::from_raw_parts(data, size, size);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// In the root context: a gRPC call answered (`status` 0, the message of
/// `size` bytes in the receive buffer) or closed with an error.
pub fn on_response(host: &mut Host, token: u32, status: u32, size: usize) {
    let Some(pos) = host.grpc_tokens.iter().position(|(t, _)| *t == token) else {
        return;
    };
    let (_, id) = host.grpc_tokens.swap_remove(pos);
    let (message, body) = if status == 0 {
        let body = hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, 0, size.min(4096))
            .ok()
            .flatten()
            .unwrap_or_default();
        (String::new(), body)
    } else {
        (status_message(), Vec::new())
    };
    let response = GrpcResponse {
        code: status,
        message: &message,
        body: &body,
    };
    host.engine.on_grpc(now_ms(), &mut Shared, id, &response);
}
