//! gRPC health probes: `POST /grpc.health.v1.Health/Check` with
//! `content-type: application/grpc`, whose `service` names an endpoint
//! (its `grpc_service`). The probe is then classified as a `GET` of the
//! endpoint's path would be (the same authorization: the probe header or
//! bearer token as gRPC metadata, `sources`), and answered in
//! [`Format::Grpc`]. A service no endpoint takes goes on to the app.

use super::{classify, Decision, RequestHeaders};
use crate::format::Format;
use crate::grpc::{decode_request, CHECK_PATH};
use crate::policy::Policy;

/// Whether the request may be a gRPC health probe of some endpoint: its
/// body must then be read (`service`). False whenever no endpoint takes
/// gRPC probes, so such policies never hold a request for its body.
pub fn is_candidate(policy: &Policy, path: &str, content_type: Option<&str>) -> bool {
    path == CHECK_PATH
        && content_type.is_some_and(|c| c.starts_with("application/grpc"))
        && policy.endpoints.iter().any(|e| e.grpc_service.is_some())
}

/// The request's headers as a `GET` with no `Accept` (the gRPC request's
/// method and media types do not choose anything here).
struct AsGet<'a>(&'a mut dyn RequestHeaders);

impl RequestHeaders for AsGet<'_> {
    fn get(&mut self, name: &str) -> Option<&str> {
        match name {
            ":method" => Some("GET"),
            "accept" => None,
            _ => self.0.get(name),
        }
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        self.0.property(path)
    }
}

/// Classifies a gRPC health probe from its `HealthCheckRequest` message
/// (unframed). A message that is not one, or a service no endpoint takes,
/// goes on to the app.
pub fn classify_grpc(
    policy: &Policy,
    message: &[u8],
    headers: &mut dyn RequestHeaders,
) -> Decision {
    let pass = Decision::PassThrough { new_path: None };
    let Ok(service) = decode_request(message) else {
        return pass;
    };
    let Some(ep) = policy
        .endpoints
        .iter()
        .find(|e| e.grpc_service.as_deref() == Some(service.as_str()))
    else {
        return pass;
    };
    match classify(policy, &ep.path, &mut AsGet(headers)) {
        Decision::Probe(mut probe) => {
            probe.format = Format::Grpc;
            probe.verbose = false;
            Decision::Probe(probe)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::encode_request;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    struct Headers(Vec<(&'static str, &'static str)>);

    impl RequestHeaders for Headers {
        fn get(&mut self, name: &str) -> Option<&str> {
            self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        }
        fn property(&mut self, path: &[&str]) -> Option<String> {
            (path == ["source", "address"]).then(|| "10.1.2.3:5000".into())
        }
    }

    fn policy() -> Policy {
        let json = r#"{"authorization": {"header": "x-health", "secrets": [{"value": "s3cret"}]},
            "endpoints": [
              {"name": "live", "path": "/livez", "access": "public", "grpc_service": "live"},
              {"name": "ready", "path": "/readyz", "grpc_service": ""},
              {"name": "local", "path": "/localz", "access": "public", "grpc_service": "local", "sources": ["127.0.0.1"]},
              {"name": "http", "path": "/httpz", "access": "public"}]}"#;
        Policy::from_json(json.as_bytes(), &|_| None).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn grpc_headers() -> Headers {
        Headers(vec![
            (":method", "POST"),
            (":path", CHECK_PATH),
            ("content-type", "application/grpc"),
        ])
    }

    #[test]
    fn candidates() {
        let p = policy();
        assert!(is_candidate(&p, CHECK_PATH, Some("application/grpc+proto")));
        assert!(!is_candidate(&p, CHECK_PATH, Some("application/json")));
        assert!(!is_candidate(
            &p,
            "/grpc.health.v1.Health/Watch",
            Some("application/grpc")
        ));
        let http_only = Policy::from_json(
            br#"{"endpoints": [{"name": "r", "path": "/r", "access": "public"}]}"#,
            &|_| None,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!is_candidate(
            &http_only,
            CHECK_PATH,
            Some("application/grpc")
        ));
    }

    #[test]
    fn the_service_selects_the_endpoint() {
        let p = policy();
        let probe = |service: &str, headers: &mut Headers| match classify_grpc(
            &p,
            &encode_request(service),
            headers,
        ) {
            Decision::Probe(probe) => Ok((probe.endpoint, probe.format, probe.details)),
            Decision::PassThrough { .. } => Err("pass"),
            Decision::Unauthorized { reply: Some(r), .. } if r.status == 404 => Err("404"),
            Decision::Unauthorized { .. } => Err("unauthorized"),
            Decision::Reply(_) => Err("reply"),
        };
        assert_eq!(
            probe("live", &mut grpc_headers()),
            Ok((0, Format::Grpc, false))
        );
        // The empty service is the protected `ready`: the secret as metadata.
        assert_eq!(probe("", &mut grpc_headers()), Err("404"));
        let mut with_secret = grpc_headers();
        with_secret.0.push(("x-health", "s3cret"));
        assert_eq!(probe("", &mut with_secret), Ok((1, Format::Grpc, true)));
        // `sources`: the caller is 10.1.2.3.
        assert_eq!(probe("local", &mut grpc_headers()), Err("404"));
        // The app's own services, and endpoints without grpc_service.
        assert_eq!(probe("pay.v1.Payments", &mut grpc_headers()), Err("pass"));
        assert_eq!(probe("http", &mut grpc_headers()), Err("pass"));
        assert!(matches!(
            classify_grpc(&p, &[0xff], &mut grpc_headers()),
            Decision::PassThrough { .. }
        ));
    }
}
