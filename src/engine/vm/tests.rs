//! The host's bookkeeping ([`Vm`]) and the gRPC probe step, without a host.

use super::super::tests::{engine, Get};
use super::*;
use crate::engine::{Answer, MemStore, Request};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

pub(super) const ROOT: Ctx = 1;

fn vm(store: &mut MemStore) -> Vm {
    Vm::new(engine(42, 0, store), ROOT)
}

/// A probe of /readyz from `ctx`, made to wait.
fn wait(vm: &mut Vm, store: &mut MemStore, ctx: Ctx, now: u64) -> u64 {
    match vm
        .engine
        .on_request(|| now, store, ctx, "/readyz", &mut Get(Some("s3cret")))
    {
        Request::Answer(Answer::Waiting { deadline_ms }) => {
            vm.wait(ctx, deadline_ms);
            deadline_ms
        }
        other => panic!("not waiting: {other:?}"),
    }
}

fn is_dispatch(e: &Effect) -> bool {
    matches!(e, Effect::Dispatch(_))
}

#[test]
fn a_reply_to_another_request_made_in_a_request_s_callback_waits_for_the_root() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store);
    let deadline = wait(&mut vm, &mut store, 9, 0);
    vm.effects(ROOT);
    let reply = |ctx| Effect::Reply {
        ctx,
        reply: Reply::plain(200, "ok\n"),
        source: Source::Local,
    };
    // Whatever makes it: here, the VM's own (as the last resort does).
    vm.ready
        .extend([reply(9), reply(7), Effect::Log(Level::Info, "x".into())]);
    let fx = vm.effects(7);
    assert_eq!(
        fx,
        vec![
            Effect::WakeRoot,
            reply(7),
            Effect::Log(Level::Info, "x".into())
        ],
        "only the current request's own reply, and one wake"
    );
    assert_eq!(vm.holding().2, 1, "9 still waits");
    assert_eq!(vm.effects(8), vec![], "not in another request either");
    assert_eq!(vm.effects(ROOT), vec![reply(9)]);
    assert_eq!(vm.holding().2, 0);
    // Answered: the last resort has nothing left to do for 9.
    vm.on_tick(deadline + 2 * TICK_MS, &mut store, 0);
    let last_resort =
        |e: &Effect| matches!(e, Effect::Log(Level::Warn, l) if l.contains("unanswered"));
    assert!(!vm.effects(ROOT).iter().any(last_resort));
}

#[test]
fn callouts_asked_for_in_a_request_are_kept_for_the_root_with_one_wake() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store);
    wait(&mut vm, &mut store, 7, 0);
    let fx = vm.effects(7);
    assert!(!fx.iter().any(is_dispatch), "{fx:?}");
    assert_eq!(fx.iter().filter(|e| **e == Effect::WakeRoot).count(), 1);
    assert_eq!(vm.holding(), (0, 3, 1));
    assert!(vm.effects(7).is_empty());
    let kept = vm.flush();
    assert_eq!(kept.len(), 3);
    assert!(vm.flush().is_empty());
    // In the root, callouts are the host's to dispatch at once.
    let mut store = MemStore::new();
    let mut vm = super::Vm::new(engine(42, 0, &mut store), ROOT);
    wait(&mut vm, &mut store, 7, 0);
    let fx = vm.effects(ROOT);
    assert_eq!(fx.iter().filter(|e| is_dispatch(e)).count(), 3);
    assert!(!fx.contains(&Effect::WakeRoot));
}

#[test]
fn a_token_answers_once_and_http_and_grpc_tokens_are_apart() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store);
    let (a, b) = (CalloutId { run: 1, slot: 0 }, CalloutId { run: 1, slot: 1 });
    vm.dispatched(Token::Http(5), a);
    vm.dispatched(Token::Grpc(5), b);
    assert_eq!(vm.holding(), (2, 0, 0));
    assert_eq!(vm.answered(Token::Grpc(5)), Some(b));
    assert_eq!(vm.answered(Token::Grpc(5)), None);
    assert_eq!(vm.answered(Token::Http(6)), None);
    assert_eq!(vm.answered(Token::Http(5)), Some(a));
    assert_eq!(vm.holding(), (0, 0, 0));
}

#[test]
fn an_answered_probe_is_no_longer_waiting() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store);
    wait(&mut vm, &mut store, 7, 0);
    let _ = vm.effects(7);
    for d in vm.flush() {
        let ok = crate::outcome::CalloutResponse {
            status: Some("200"),
            body: b"",
            body_size: 0,
        };
        vm.engine.on_callout(30, &mut store, d.id, &ok);
    }
    let fx = vm.effects(ROOT);
    assert!(fx.iter().any(|e| matches!(e, Effect::Reply { ctx: 7, .. })));
    assert_eq!(vm.holding().2, 0);
}

#[test]
fn the_last_resort_answers_503_one_tick_past_the_deadline_only() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store);
    vm.engine.on_probe(0, &mut store, 7, probe()); // answered by the engine
    let _ = vm.effects(7);
    // A probe the engine knows nothing of: only the last resort answers it.
    vm.wait(9, 100);
    vm.on_tick(100 + TICK_MS, &mut store, 65_536);
    let fx = vm.effects(ROOT);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Reply { ctx: 9, .. })),
        "{fx:?}"
    );
    vm.on_tick(101 + TICK_MS, &mut store, 65_536);
    let fx = vm.effects(ROOT);
    let reply = fx.iter().find_map(|e| match e {
        Effect::Reply { ctx: 9, reply, .. } => Some(reply.status),
        _ => None,
    });
    assert_eq!(reply, Some(503));
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Log(Level::Warn, l) if l.contains("probe 9 unanswered"))));
    assert_eq!(vm.holding().2, 0);
}

fn probe() -> crate::classify::Probe {
    crate::classify::Probe {
        endpoint: 0,
        authorized: true,
        details: true,
        format: crate::policy::Format::Text,
        verbose: false,
        checks: None,
        notes: Vec::new(),
    }
}

#[test]
fn a_client_gone_is_forgotten_by_the_vm_and_the_engine() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store);
    wait(&mut vm, &mut store, 7, 0);
    vm.gone(7);
    assert_eq!(vm.holding().2, 0);
    assert_eq!(vm.engine.holding().2, 0);
}

#[test]
fn the_memory_gauge_is_recorded_when_it_moves() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store);
    let gauge = |fx: &[Effect]| {
        fx.iter().find_map(|e| match e {
            Effect::Record(Metric::VmMemory, v) => Some(*v),
            _ => None,
        })
    };
    vm.on_tick(20, &mut store, 131_072);
    assert_eq!(gauge(&vm.effects(ROOT)), Some(131_072));
    vm.on_tick(40, &mut store, 131_072);
    assert_eq!(gauge(&vm.effects(ROOT)), None);
    vm.on_tick(60, &mut store, 196_608);
    assert_eq!(gauge(&vm.effects(ROOT)), Some(196_608));
}

#[test]
fn a_metric_is_defined_once_and_found_again() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store);
    let mut defined = Vec::new();
    let mut define = |kind: MetricKind, name: &str| {
        defined.push((kind, name.to_string()));
        Some(defined.len() as u32)
    };
    assert_eq!(vm.metric(Metric::Runs(1), &mut define), Some(1));
    assert_eq!(vm.metric(Metric::Runs(1), &mut define), Some(1));
    assert_eq!(vm.metric(Metric::Unauthorized(1), &mut define), Some(2));
    assert_eq!(
        vm.metric(Metric::Runs(99), &mut define),
        None,
        "no such endpoint"
    );
    assert_eq!(defined.len(), 2);
    assert_eq!(defined[0].0, MetricKind::Counter);
    assert!(defined[0].1.contains("ready"), "{defined:?}");
    // A metric the host failed to define is asked for again next time.
    assert_eq!(vm.metric(Metric::Runs(2), |_, _| None), None);
    assert_eq!(vm.metric(Metric::Runs(2), |_, _| Some(9)), Some(9));
}

#[test]
fn configure_logs_the_policy_and_names_the_queue_only_when_there_are_checks() {
    let mut store = MemStore::new();
    let bytes = crate::fixtures::POLICY.as_bytes();
    let Ok((mut vm, queue)) = Vm::configure(bytes, &|_| None, 3, 0, &mut store) else {
        panic!("refused")
    };
    let queue = queue.unwrap_or_default();
    assert!(
        queue.starts_with("meshprobe/kick/") && queue.ends_with("/3"),
        "{queue}"
    );
    let line = "meshprobe: policy loaded: 5 endpoint(s), 3 check(s)".to_string();
    assert_eq!(vm.effects(3), vec![Effect::Log(Level::Info, line)]);
    let live = br#"{"endpoints": [{"name": "live", "path": "/livez", "access": "public"}]}"#;
    let Ok((_, queue)) = Vm::configure(live, &|_| None, 3, 0, &mut store) else {
        panic!("refused")
    };
    assert_eq!(queue, None);
    assert!(Vm::configure(b"{", &|_| None, 3, 0, &mut store).is_err());
}

#[test]
fn an_http_answer_reads_status_and_body_only_as_needed() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store);
    wait(&mut vm, &mut store, 7, 0);
    let _ = vm.effects(7);
    let kept = vm.flush();
    for (i, d) in kept.iter().enumerate() {
        vm.dispatched(Token::Http(i as u32 + 10), d.id);
    }
    let no_body = |_: usize| -> Vec<u8> { panic!("no check reads a body here") };
    // A token never given: nothing is read.
    let answer = HttpAnswer {
        headers: 3,
        body_size: 5,
    };
    let never = || -> Option<String> { panic!("read for an unknown token") };
    vm.on_http_answer(5, &mut store, (99, answer), never, no_body);
    // Broke off (no headers): the status is not read, the check fails.
    let broke = HttpAnswer {
        headers: 0,
        body_size: 5,
    };
    let unread = || -> Option<String> { panic!("status read without headers") };
    vm.on_http_answer(5, &mut store, (10, broke), unread, no_body);
    for token in [11, 12] {
        vm.on_http_answer(
            5,
            &mut store,
            (token, answer),
            || Some("200".into()),
            no_body,
        );
    }
    let fx = vm.effects(ROOT);
    let status = fx.iter().find_map(|e| match e {
        Effect::Reply { ctx: 7, reply, .. } => Some(reply.status),
        _ => None,
    });
    assert_eq!(status, Some(503));
    assert_eq!(vm.holding(), (0, 0, 0));
}

#[test]
fn a_refused_dispatch_names_its_cause() {
    let mut store = MemStore::new();
    for (code, grpc, words) in [
        (status::BAD_ARGUMENT, false, "unknown cluster"),
        (status::PARSE_FAILURE, true, "unknown cluster"),
        (status::PARSE_FAILURE, false, "status 4"),
        (status::INTERNAL_FAILURE, false, "no healthy upstream"),
        (12, false, "status 12"),
    ] {
        let mut vm = vm(&mut store);
        let _ = vm.engine.on_request(
            || 0,
            &mut store,
            7,
            "/deep?verbose",
            &mut Get(Some("s3cret")),
        );
        let mut d = vm.effects(ROOT).into_iter().find_map(|e| match e {
            Effect::Dispatch(d) => Some(d),
            _ => None,
        });
        let Some(d) = d.as_mut() else {
            panic!("no dispatch")
        };
        if grpc {
            d.grpc = Some(crate::grpc::GrpcCall {
                upstream: String::new(),
                message: Vec::new(),
            });
        }
        vm.refused(1, &mut store, d, code);
        let body = vm.effects(ROOT).into_iter().find_map(|e| match e {
            Effect::Reply { reply, .. } => Some(String::from_utf8_lossy(&reply.body).into_owned()),
            _ => None,
        });
        let body = body.unwrap_or_default();
        assert!(body.contains(words), "{code} {grpc}: {body}");
        store = MemStore::new();
    }
}

#[test]
fn counters_reach_the_host_added_up_on_the_tick() {
    let mut store = MemStore::new();
    let mut vm = vm(&mut store);
    for endpoint in [1, 1, 2, 1] {
        vm.engine.unauthorized(endpoint);
    }
    assert!(vm.effects(7).is_empty(), "no host call per count");
    // The list the counts came in goes back to the engine, emptied.
    let (out, capacity) = (&vm.engine.out, vm.engine.out.capacity());
    assert!(out.is_empty() && capacity >= 4, "{capacity}");
    vm.engine.unauthorized(1);
    assert_eq!(vm.engine.out.capacity(), capacity, "filled again in place");
    assert!(vm.effects(7).is_empty());
    vm.engine.recycle(vec![Effect::WakeRoot]);
    assert_eq!(vm.engine.out.capacity(), capacity, "its own is kept");
    let mut fresh = engine(42, 0, &mut store);
    fresh.recycle(vec![Effect::WakeRoot]);
    assert!(
        fresh.take_effects().is_empty(),
        "a list with effects is not taken"
    );
    fresh.recycle(Vec::with_capacity(2));
    assert!(fresh.out.capacity() >= 2);
    vm.on_tick(20, &mut store, 0);
    let mut adds: Vec<_> = vm
        .effects(ROOT)
        .into_iter()
        .filter_map(|e| match e {
            Effect::Add(Metric::Unauthorized(e), n) => Some((e, n)),
            _ => None,
        })
        .collect();
    adds.sort_unstable();
    assert_eq!(adds, [(1, 4), (2, 1)]);
    vm.on_tick(40, &mut store, 0);
    assert!(!vm
        .effects(ROOT)
        .iter()
        .any(|e| matches!(e, Effect::Add(..))));
    // A VM without a tick (no checks) hands each count over at once.
    let live = br#"{"endpoints": [{"name": "live", "path": "/livez", "access": "public"}]}"#;
    let Ok((mut vm, None)) = Vm::configure(live, &|_| None, 3, 0, &mut store) else {
        panic!("refused, or a queue without checks")
    };
    let _ = vm.effects(3);
    vm.engine.unauthorized(0);
    assert_eq!(vm.effects(7), vec![Effect::Count(Metric::Unauthorized(0))]);
}

/// A VM whose /deep endpoint has one check, described by `check`; a
/// probe of /deep?verbose dispatched: the VM and its callout.
fn one_check(store: &mut MemStore, check: &str) -> (Vm, Dispatch) {
    let policy = format!(
        r#"{{"authorization": {{"header": "x-health", "secrets": [{{"value": "s3cret"}}]}},
            "endpoints": [{{"name": "deep", "path": "/deep", "checks": ["c"]}}],
            "checks": [{check}]}}"#
    );
    let Ok((mut vm, _)) = Vm::configure(policy.as_bytes(), &|_| None, 1, 0, store) else {
        panic!("refused: {policy}")
    };
    let _ = vm
        .engine
        .on_request(|| 0, store, 7, "/deep?verbose", &mut Get(Some("s3cret")));
    let d = vm.effects(ROOT).into_iter().find_map(|e| match e {
        Effect::Dispatch(d) => Some(d),
        _ => None,
    });
    let Some(d) = d else { panic!("no dispatch") };
    (vm, d)
}

/// The verbose answer to the probe of `one_check`.
fn answer_text(vm: &mut Vm) -> (u16, String) {
    let reply = vm.effects(ROOT).into_iter().find_map(|e| match e {
        Effect::Reply { ctx: 7, reply, .. } => Some(reply),
        _ => None,
    });
    let Some(reply) = reply else {
        panic!("no answer")
    };
    (
        reply.status,
        String::from_utf8_lossy(&reply.body).into_owned(),
    )
}

#[test]
fn an_http_answer_with_headers_is_judged_by_its_status_and_the_body_it_needs() {
    let check = r#"{"name": "c", "cluster": "c", "expect_body": {"contains": "PONG"}}"#;
    for (body, status, words) in [
        (&b"+PONG"[..], 200, "[+]c ok"),
        (&b"nope!"[..], 503, "[-]c failed"),
    ] {
        let mut store = MemStore::new();
        let (mut vm, d) = one_check(&mut store, check);
        vm.dispatched(Token::Http(4), d.id);
        let answer = HttpAnswer {
            headers: 2,
            body_size: body.len(),
        };
        let read = |n: usize| body[..n.min(body.len())].to_vec();
        vm.on_http_answer(5, &mut store, (4, answer), || Some("200".into()), read);
        let (got, text) = answer_text(&mut vm);
        assert_eq!(got, status, "{text}");
        assert!(text.contains(words), "{text}");
    }
}

#[test]
fn a_grpc_answer_is_judged_by_its_message_or_its_status() {
    let check = r#"{"name": "c", "cluster": "h2", "kind": "grpc"}"#;
    // HealthCheckResponse { status: SERVING (1) }, unframed.
    let serving = [0x08, 0x01];
    let mut store = MemStore::new();
    let (mut vm, d) = one_check(&mut store, check);
    vm.dispatched(Token::Grpc(4), d.id);
    let never = || -> String { panic!("message read for an answer") };
    vm.on_grpc_answer(
        5,
        &mut store,
        (4, 0, 2),
        |n| serving[..n.min(2)].to_vec(),
        never,
    );
    assert_eq!(answer_text(&mut vm).0, 200);
    let mut store = MemStore::new();
    let (mut vm, d) = one_check(&mut store, check);
    vm.dispatched(Token::Grpc(4), d.id);
    let unread = |_: usize| -> Vec<u8> { panic!("body read for an error") };
    vm.on_grpc_answer(5, &mut store, (4, 14, 0), unread, || {
        "upstream went away".into()
    });
    let (status, text) = answer_text(&mut vm);
    assert_eq!(status, 503);
    assert!(text.contains("UNAVAILABLE: upstream went away"), "{text}");
}
