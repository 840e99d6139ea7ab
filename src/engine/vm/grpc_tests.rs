//! gRPC health probes through the core ([`crate::engine::GrpcStep`]):
//! the body read, the captured headers, the answer.

use super::super::tests::{framed, grpc_policy, Get};
use super::tests::ROOT;
use super::*;
use crate::engine::{Answer, GrpcStep, MemStore, Request, BODY_READ, EMPTY_REQUEST};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
/// A policy whose `ready` endpoint takes gRPC probes as service "ready".
fn grpc_vm(store: &mut MemStore) -> Vm {
    let policy = grpc_policy();
    let (engine, _) = match Engine::configure(policy.as_bytes(), &|_| None, 42, 0, store) {
        Ok(e) => e,
        Err(lines) => panic!("{lines:?}"),
    };
    Vm::new(engine, ROOT)
}

#[test]
fn a_grpc_probe_is_read_to_its_whole_message_then_handled() {
    let mut store = MemStore::new();
    let mut vm = grpc_vm(&mut store);
    let path = crate::grpc::CHECK_PATH;
    let grpc = || Some("application/grpc".to_string());
    assert!(vm.engine.wants_body(path, grpc));
    assert!(!vm.engine.wants_body(path, || None));
    assert!(!vm.engine.wants_body("/readyz", grpc));
    let captured = vm.engine.capture(&mut Get(Some("s3cret")));
    let body = framed("ready");
    let mut step = |vm: &mut Vm, body: &[u8], end| {
        vm.engine
            .on_grpc_request(0, &mut store, 7, (body, end), &captured, &mut Get(None))
    };
    assert_eq!(step(&mut vm, &body[..3], false), None, "incomplete");
    let done = step(&mut vm, &body, true);
    assert_eq!(
        done,
        Some(GrpcStep {
            empty_body: true,
            request: Request::Answer(Answer::Waiting { deadline_ms: 800 }),
        })
    );
    assert_eq!(EMPTY_REQUEST, [0, 0, 0, 0, 0]);
    // A service no endpoint takes, or no message: the app's to answer.
    let pass = Some(GrpcStep {
        empty_body: false,
        request: Request::Pass { new_path: None },
    });
    assert_eq!(step(&mut vm, &framed("other"), true), pass);
    assert_eq!(step(&mut vm, &body[..3], true), pass);
    assert_eq!(step(&mut vm, &[1, 0, 0, 0, 0], true), pass, "compressed");
}

#[test]
fn a_grpc_probe_without_the_secret_is_refused_and_counted() {
    let mut store = MemStore::new();
    let mut vm = grpc_vm(&mut store);
    let captured = vm.engine.capture(&mut Get(Some("wrong")));
    let step = vm.engine.on_grpc_request(
        0,
        &mut store,
        7,
        (&framed("ready"), true),
        &captured,
        &mut Get(None),
    );
    let Some(GrpcStep {
        request: Request::Answer(Answer::Now(reply, _)),
        empty_body: false,
    }) = step
    else {
        panic!("not refused: {step:?}")
    };
    assert_eq!(reply.status, 404);
    assert_eq!(
        vm.engine.take_effects(),
        vec![Effect::Count(Metric::Unauthorized(1))]
    );
}

#[test]
fn a_grpc_probe_reads_the_largest_request_whole() {
    use crate::grpc::MAX_SERVICE;
    // The frame header (5 bytes) and a message of the longest service
    // (its tag and a 2-byte length) fit in what the host reads.
    let largest = framed(&"s".repeat(MAX_SERVICE));
    assert!(
        largest.len() <= BODY_READ,
        "{} > {BODY_READ}",
        largest.len()
    );
    assert!(
        std::hint::black_box(BODY_READ) <= MAX_SERVICE + 64,
        "reads far more than a request"
    );
}

/// Peer address from the host, as `source.address`.
struct Peer(&'static str);

impl crate::classify::RequestHeaders for Peer {
    fn get(&mut self, _: &str) -> Option<&str> {
        None
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        (path == ["source", "address"]).then(|| self.0.to_string())
    }
}

#[test]
fn a_grpc_probe_is_judged_on_its_captured_bearer_and_the_hosts_peer() {
    let mut store = MemStore::new();
    let policy = crate::fixtures::POLICY.replace(
        r#""deadline": "800ms"}"#,
        r#""deadline": "800ms", "grpc_service": "ready", "sources": ["10.0.0.0/8"]}"#,
    );
    let Ok((mut vm, _)) = Vm::configure(policy.as_bytes(), &|_| None, 1, 0, &mut store) else {
        panic!("refused")
    };
    struct Bearer;
    impl crate::classify::RequestHeaders for Bearer {
        fn get(&mut self, name: &str) -> Option<&str> {
            (name == "authorization").then_some("Bearer s3cret")
        }
        fn property(&mut self, _: &[&str]) -> Option<String> {
            None
        }
    }
    let captured = vm.engine.capture(&mut Bearer);
    let body = framed("ready");
    let mut step = |peer: &'static str| {
        let r =
            vm.engine
                .on_grpc_request(0, &mut store, 7, (&body, true), &captured, &mut Peer(peer));
        r.map(|s| s.request)
    };
    assert_eq!(
        step("10.1.2.3:4000"),
        Some(Request::Answer(Answer::Waiting { deadline_ms: 800 })),
        "the bearer token, captured, authorizes it from inside"
    );
    let outside = step("192.168.1.1:4000");
    assert!(
        matches!(outside, Some(Request::Answer(Answer::Now(ref r, _))) if r.status == 404),
        "{outside:?}"
    );
}

#[test]
fn a_grpc_probe_that_passes_goes_on_to_the_app_and_one_that_fails_is_answered() {
    for (status, passes) in [("200", true), ("503", false)] {
        let mut store = MemStore::new();
        let mut vm = grpc_vm(&mut store);
        let captured = vm.engine.capture(&mut Get(Some("s3cret")));
        let body = framed("ready");
        let first =
            vm.engine
                .on_grpc_request(0, &mut store, 7, (&body, true), &captured, &mut Get(None));
        assert!(matches!(
            first.map(|s| s.request),
            Some(Request::Answer(Answer::Waiting { .. }))
        ));
        for d in vm
            .flush()
            .into_iter()
            .chain(vm.effects(ROOT).into_iter().filter_map(|e| match e {
                Effect::Dispatch(d) => Some(d),
                _ => None,
            }))
        {
            let r = crate::outcome::CalloutResponse {
                status: Some(status),
                body: b"",
                body_size: 0,
            };
            vm.engine.on_callout(10, &mut store, d.id, &r);
        }
        let _ = vm.effects(ROOT);
        // From the cached result: at once.
        let again =
            vm.engine
                .on_grpc_request(20, &mut store, 8, (&body, true), &captured, &mut Get(None));
        let request = again.map(|s| s.request);
        if passes {
            assert_eq!(request, Some(Request::Pass { new_path: None }));
        } else {
            let Some(Request::Answer(Answer::Now(reply, _))) = request else {
                panic!("not answered: {request:?}")
            };
            let grpc = crate::render::grpc::action(&reply);
            assert!(
                matches!(grpc, Some(crate::render::grpc::Action::Error(14, _))),
                "{grpc:?}"
            );
        }
    }
}
