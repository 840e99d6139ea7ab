//! A request's phases through [`Stream`], without a host.

use super::*;
use crate::engine::tests::{framed, grpc_policy};
use crate::engine::MemStore;
use crate::grpc::CHECK_PATH;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Headers from a list.
struct List(Vec<(&'static str, &'static str)>);

impl RequestHeaders for List {
    fn get(&mut self, name: &str) -> Option<&str> {
        let found = self.0.iter().find(|(k, _)| *k == name);
        found.map(|(_, v)| *v)
    }

    fn property(&mut self, _: &[&str]) -> Option<String> {
        None
    }
}

fn vm(store: &mut MemStore, policy: &str) -> Vm {
    match Vm::configure(policy.as_bytes(), &|_| None, 1, 0, store) {
        Ok((vm, _)) => vm,
        Err(lines) => panic!("{lines:?}"),
    }
}

fn get(secret: bool) -> List {
    let mut list = vec![(":method", "GET")];
    if secret {
        list.push(("x-health", "s3cret"));
    }
    List(list)
}

/// Go on, less the probe header.
fn on_less_the_secret() -> Step {
    Step {
        strip: true,
        path: None,
        then: Then::Continue,
    }
}

#[test]
fn ordinary_traffic_goes_on_less_the_probe_header_and_its_body_is_not_read() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store, crate::fixtures::POLICY);
    let mut s = Stream::new(7);
    assert_eq!(s.ctx(), 7);
    let step = s.on_headers(&mut vm, || 0, &mut store, "/orders", &mut get(true), false);
    let expected = on_less_the_secret();
    assert_eq!(step, expected);
    assert!(!s.reads_body());
    assert!(!s.held());
    assert!(!s.kept(), "the host need not keep app traffic");
    s.on_end(&mut vm);
    assert_eq!(vm.holding(), (0, 0, 0));
}

#[test]
fn a_probe_answered_at_once_is_held_with_its_reply() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store, crate::fixtures::POLICY);
    let mut s = Stream::new(7);
    let step = s.on_headers(&mut vm, || 0, &mut store, "/livez", &mut get(false), true);
    assert!(
        matches!(step.then, Then::Reply(ref r) if r.status == 200),
        "{step:?}"
    );
    assert_eq!((step.strip, step.path), (false, None));
    assert!(s.held() && !s.kept(), "no body to come: nothing to keep");
    // With a body to come, its chunks are held too.
    let mut s = Stream::new(8);
    let step = s.on_headers(&mut vm, || 0, &mut store, "/livez", &mut get(false), false);
    assert!(matches!(step.then, Then::Reply(_)), "{step:?}");
    assert!(s.held() && s.kept());
    let body = (Vec::new, false);
    let (step, empty) = s.on_body(&mut vm, || 0, &mut store, body, &mut get(false));
    assert_eq!((step, empty), (Step::then(Then::Pause), false));
    assert!(s.kept(), "until its body ends");
    let body = (Vec::new, true);
    let (step, _) = s.on_body(&mut vm, || 0, &mut store, body, &mut get(false));
    assert_eq!(step, Step::then(Then::Pause));
    assert!(!s.kept());
}

#[test]
fn a_waiting_probe_is_held_and_its_end_tells_the_vm() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store, crate::fixtures::POLICY);
    let mut s = Stream::new(7);
    let step = s.on_headers(&mut vm, || 0, &mut store, "/readyz", &mut get(true), true);
    assert_eq!(step, Step::then(Then::Pause));
    assert_eq!(vm.holding().2, 1);
    assert!(s.kept());
    s.on_end(&mut vm);
    assert_eq!(vm.holding().2, 0);
    assert_eq!(vm.engine.holding().2, 0);
    s.on_end(&mut vm); // once only
}

fn grpc(secret: bool) -> List {
    let mut list = get(secret);
    list.0.push(("content-type", "application/grpc"));
    list
}

#[test]
fn a_grpc_probe_goes_on_less_the_secret_and_is_decided_on_its_body() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store, &grpc_policy());
    let mut s = Stream::new(7);
    let step = s.on_headers(
        &mut vm,
        || 0,
        &mut store,
        CHECK_PATH,
        &mut grpc(true),
        false,
    );
    let on = on_less_the_secret();
    assert_eq!(step, on);
    assert!(
        s.reads_body() && !s.held() && s.kept(),
        "kept to read its body"
    );
    let body = framed("ready");
    // The headers are gone: the secret comes from what was captured.
    let gone = &mut List(Vec::new());
    let part = s.on_body(
        &mut vm,
        || 0,
        &mut store,
        (|| body[..2].to_vec(), false),
        gone,
    );
    assert_eq!(part, (Step::then(Then::Pause), false));
    let whole = s.on_body(&mut vm, || 0, &mut store, (|| body.clone(), true), gone);
    assert_eq!(whole, (Step::then(Then::Pause), true));
    assert!(!s.reads_body());
    assert_eq!(vm.holding().2, 1, "waiting for the run");
    assert!(s.held());
}

#[test]
fn a_grpc_call_for_another_service_goes_on_untouched() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store, &grpc_policy());
    let mut s = Stream::new(7);
    s.on_headers(
        &mut vm,
        || 0,
        &mut store,
        CHECK_PATH,
        &mut grpc(true),
        false,
    );
    let body = framed("orders");
    let step = s.on_body(
        &mut vm,
        || 0,
        &mut store,
        (|| body, true),
        &mut List(Vec::new()),
    );
    assert_eq!(step, (Step::then(Then::Continue), false));
    assert!(!s.held() && !s.kept());
}

#[test]
fn a_grpc_probe_without_a_body_is_decided_with_its_headers() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store, &grpc_policy());
    let mut s = Stream::new(7);
    // No body: no message, so the app's to answer; the secret still goes.
    let step = s.on_headers(&mut vm, || 0, &mut store, CHECK_PATH, &mut grpc(true), true);
    let on = on_less_the_secret();
    assert_eq!(step, on);
    assert!(!s.reads_body());
}
