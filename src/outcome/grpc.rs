//! What the answer of a `grpc` check's call means.

use crate::failure::{truncate, Failure, Judgement};
use crate::grpc::{decode_response, GrpcResponse};

/// Judges the answer of a `grpc` check's call. Envoy reports its own
/// failures to reach the cluster as gRPC statuses with its local reply
/// text as the message: a timeout as `upstream request timeout`, a refused
/// or reset connection as `upstream connect error ...`, a cluster without
/// healthy hosts as `no healthy upstream`.
pub fn judge(response: &GrpcResponse<'_>, timeout_ms: u64) -> Judgement {
    let message = truncate(response.message.trim(), 256);
    if response.code != 0 {
        return Judgement::Fail(failure(response.code, message, timeout_ms));
    }
    match decode_response(response.body) {
        Ok(Some(1)) => Judgement::Pass,
        Ok(Some(status)) => Judgement::Fail(Failure::GrpcServing { status }),
        Ok(None) => Judgement::Fail(Failure::GrpcNoStatus),
        Err(detail) => Judgement::Fail(Failure::GrpcBadAnswer {
            detail: detail.into(),
        }),
    }
}

fn failure(code: u32, message: &str, timeout_ms: u64) -> Failure {
    if code == 4 || message.starts_with("upstream request timeout") {
        return Failure::Timeout {
            after_ms: timeout_ms,
        };
    }
    if message.starts_with("no healthy upstream") {
        return Failure::NoHealthyUpstream;
    }
    // Envoy puts its response code details (`via_upstream`) where the
    // answer had no grpc-message.
    let message = if message == "via_upstream" {
        ""
    } else {
        message
    };
    // INTERNAL without a message: what Envoy makes of an HTTP answer with
    // no grpc-status (a plain HTTP server, behind an HTTP/1 cluster, say).
    if code == 13 && message.is_empty() {
        return Failure::GrpcNotHttp2 {
            detail: "grpc status INTERNAL without a message: a plain HTTP answer?".into(),
        };
    }
    if message.starts_with("upstream connect error") {
        // "... reset reason: <reason>{<Envoy's response code details>}".
        let reason = super::after(message, "reset reason: ")
            .map(|d| d.split('{').next().unwrap_or(d).trim())
            .filter(|d| !d.is_empty())
            .unwrap_or("upstream connect error");
        if reason.starts_with("protocol error") {
            // An HTTP/1 cluster in front of an HTTP/2-only gRPC server.
            return Failure::GrpcNotHttp2 {
                detail: reason.into(),
            };
        }
        return Failure::ConnectionFailed {
            detail: reason.into(),
        };
    }
    Failure::GrpcStatus {
        code,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn reason(code: u32, message: &str, body: &[u8]) -> Result<(), String> {
        let r = GrpcResponse {
            code,
            message,
            body,
        };
        match judge(&r, 500) {
            Judgement::Pass => Ok(()),
            Judgement::Warn(f) | Judgement::Fail(f) => Err(f.to_string()),
        }
    }

    #[test]
    fn answers_and_reasons() {
        let connect = "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused";
        let cases: &[(u32, &str, &[u8], Result<(), &str>)] = &[
            (0, "", &[0x08, 1], Ok(())),
            (0, "", &[0x08, 2], Err("grpc health status NOT_SERVING")),
            (0, "", &[0x08, 0], Err("grpc health status UNKNOWN")),
            (0, "", &[0x08, 3], Err("grpc health status SERVICE_UNKNOWN")),
            (
                0,
                "",
                &[],
                Err("grpc health answer has no status (UNKNOWN)"),
            ),
            (
                0,
                "",
                &[0x0f],
                Err("grpc answer is not a HealthCheckResponse (unsupported wire type)"),
            ),
            (
                5,
                "unknown service",
                &[],
                Err("grpc status NOT_FOUND: service unknown"),
            ),
            (14, "db down", &[], Err("grpc status UNAVAILABLE: db down")),
            (12, "", &[], Err("grpc status UNIMPLEMENTED")),
            (4, "deadline", &[], Err("timeout after 500ms")),
            (
                14,
                "upstream request timeout",
                &[],
                Err("timeout after 500ms"),
            ),
            (14, "no healthy upstream", &[], Err("no healthy upstream")),
        ];
        for (code, message, body, want) in cases {
            assert_eq!(
                reason(*code, message, body),
                want.map_err(String::from),
                "{code} {message:?}"
            );
        }
        assert_eq!(
            reason(14, connect, &[]),
            Err("connection failed: remote connection failure, transport failure reason: delayed connect error: Connection refused".into())
        );
        // What Envoy 1.40 says (the message is Envoy's local reply and its
        // response code details).
        let seen: &[(u32, &str, &str)] = &[
            (14, "upstream connect error or disconnect/reset before headers. reset reason: connection termination{upstream_reset_before_response_started{connection_termination}}", "connection failed: connection termination"),
            (14, "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure{upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}}", "connection failed: remote connection failure"),
            (14, "upstream connect error or disconnect/reset before headers. reset reason: protocol error{upstream_reset_before_response_started{protocol_error}}", "no gRPC answer over HTTP/2 (protocol error): the cluster needs http2_protocol_options and a gRPC server"),
            (13, "via_upstream", "no gRPC answer over HTTP/2 (grpc status INTERNAL without a message: a plain HTTP answer?): the cluster needs http2_protocol_options and a gRPC server"),
            (5, "via_upstream", "grpc status NOT_FOUND: service unknown"),
            (12, "via_upstream", "grpc status UNIMPLEMENTED"),
        ];
        for (code, message, want) in seen {
            assert_eq!(reason(*code, message, &[]), Err(want.to_string()));
        }
    }

    #[test]
    fn labels() {
        let fail = |code, message: &str| failure(code, message, 500).label();
        assert_eq!(fail(14, "x"), "fail");
        assert_eq!(fail(4, ""), "timeout");
        assert_eq!(fail(14, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"), "refused");
        assert_eq!(
            Failure::GrpcBadAnswer {
                detail: String::new()
            }
            .label(),
            "protocol_error"
        );
    }
}
