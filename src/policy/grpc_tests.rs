//! The `grpc` check kind in the policy.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn parse(json: &str) -> Result<Policy, Vec<String>> {
    Policy::from_json(json.as_bytes(), &|_| None)
        .map_err(|errs| errs.iter().map(ToString::to_string).collect())
}

fn policy(check: &str) -> String {
    format!(
        r#"{{"endpoints": [{{"name": "r", "path": "/r", "access": "public", "checks": ["g"]}}],
            "checks": [{check}]}}"#
    )
}

#[test]
fn a_grpc_check_decodes() {
    let p = parse(&policy(
        r#"{"name": "g", "cluster": "dep_h2", "kind": "grpc", "service": "pay", "metadata": {"X-Key": "v"}, "timeout": "200ms", "warn_after": "50ms", "critical": false}"#,
    ))
    .unwrap_or_else(|e| panic!("{e:?}"));
    let c = &p.checks[0];
    assert_eq!(
        c.kind,
        CheckKind::Grpc {
            service: "pay".into(),
            upstream: crate::grpc::service_config("dep_h2", "").unwrap_or_default()
        }
    );
    assert_eq!(c.headers, vec![("x-key".to_string(), "v".to_string())]);
    assert_eq!(
        (c.method.as_str(), c.path.as_str()),
        ("POST", crate::grpc::CHECK_PATH)
    );
    assert_eq!(
        (c.timeout_ms, c.warn_after_ms, c.critical),
        (Some(200), Some(50), false)
    );
    let plain = parse(&policy(r#"{"name": "g", "cluster": "c", "kind": "grpc"}"#))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        plain.checks[0].kind,
        CheckKind::Grpc {
            service: String::new(),
            upstream: crate::grpc::service_config("c", "").unwrap_or_default()
        }
    );
}

#[test]
fn an_authority_makes_a_grpc_service_proto() {
    let p = parse(&policy(
        r#"{"name": "g", "cluster": "outbound|50051||db.svc", "kind": "grpc", "authority": "db.svc:50051"}"#,
    ))
    .unwrap_or_else(|e| panic!("{e:?}"));
    let want = crate::grpc::service_config("outbound|50051||db.svc", "db.svc:50051");
    assert!(
        matches!(&p.checks[0].kind, CheckKind::Grpc { upstream, .. } if Some(upstream) == want.as_ref())
    );
}

#[test]
fn http_fields_are_refused_naming_the_field() {
    let errs = parse(&policy(
        r#"{"name": "g", "cluster": "c", "kind": "grpc", "expect_status": [200], "expect_body": {"contains": "x"}, "path": "/x", "method": "GET", "headers": {"a": "b"}, "max_body": 10}"#,
    ))
    .unwrap_err();
    for field in [
        "method",
        "path",
        "headers",
        "expect_status",
        "expect_body",
        "max_body",
    ] {
        let want = format!("checks[0].{field}: does not go with kind \"grpc\" (HTTP checks only)");
        assert!(errs.contains(&want), "missing {want:?} in {errs:#?}");
    }
    let errs = parse(&policy(
        r#"{"name": "g", "cluster": "c", "service": "s", "metadata": {"a": "b"}}"#,
    ))
    .unwrap_err();
    assert_eq!(
        errs,
        vec![
            "checks[0].service: does not go with kind \"http\"".to_string(),
            "checks[0].metadata: goes with kind \"grpc\" only".to_string()
        ]
    );
    let errs = parse(&policy(
        r#"{"name": "g", "cluster": "c", "kind": "grpc", "authority": "a b"}"#,
    ))
    .unwrap_err();
    assert_eq!(
        errs,
        vec!["checks[0].authority: \"a b\" is not a valid :authority".to_string()]
    );
}
