//! Unit tests of the engine's flows, one worker or two, with an in-memory
//! store and a clock that moves only when told. (The simulator in
//! `tests/sim` runs the same engine over thousands of random schedules;
//! these pin each promise down one by one.)

use super::*;
use crate::classify::RequestHeaders;
use crate::fixtures::POLICY;
use crate::outcome::{CalloutResponse, DispatchError};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// A request's headers: the method and the secret.
pub(super) struct Get(pub(super) Option<&'static str>);

impl RequestHeaders for Get {
    fn get(&mut self, name: &str) -> Option<&str> {
        match name {
            ":method" => Some("GET"),
            "x-health" => self.0,
            _ => None,
        }
    }

    fn property(&mut self, _: &[&str]) -> Option<String> {
        None
    }
}

pub(super) fn engine(me: u64, now: u64, store: &mut MemStore) -> Engine {
    match Engine::configure(POLICY.as_bytes(), &|_| None, me, now, store) {
        Ok((engine, line)) => {
            assert_eq!(line, "meshprobe: policy loaded: 5 endpoint(s), 3 check(s)");
            engine
        }
        Err(lines) => panic!("fixture refused: {lines:?}"),
    }
}

/// A request with the secret at `now`.
fn request(e: &mut Engine, store: &mut MemStore, now: u64, ctx: Ctx, path: &str) -> Request {
    e.on_request(|| now, store, ctx, path, &mut Get(Some("s3cret")))
}

/// The fixture policy, its `ready` endpoint taking gRPC probes as
/// service "ready".
pub(super) fn grpc_policy() -> String {
    POLICY.replace(
        r#""deadline": "800ms"}"#,
        r#""deadline": "800ms", "grpc_service": "ready"}"#,
    )
}

/// A request body: the framed `HealthCheckRequest` of `service`.
pub(super) fn framed(service: &str) -> Vec<u8> {
    let message = crate::grpc::encode_request(service);
    let mut body = vec![0];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    body
}

fn dispatches(fx: &[Effect]) -> Vec<Dispatch> {
    let each = |f: &Effect| match f {
        Effect::Dispatch(d) => Some(d.clone()),
        _ => None,
    };
    fx.iter().filter_map(each).collect()
}

fn replies(fx: &[Effect]) -> Vec<(Ctx, u16, Source)> {
    let each = |f: &Effect| match f {
        Effect::Reply { ctx, reply, source } => Some((*ctx, reply.status, *source)),
        _ => None,
    };
    fx.iter().filter_map(each).collect()
}

fn ok(status: &str) -> CalloutResponse<'_> {
    CalloutResponse {
        status: Some(status),
        body: b"",
        body_size: 0,
    }
}

/// Answers every callout of `fx` with `status`.
fn answer_all(e: &mut Engine, store: &mut MemStore, now: u64, fx: &[Effect], status: &str) {
    for d in dispatches(fx) {
        e.on_callout(now, store, d.id, &ok(status));
    }
}

#[test]
fn liveness_is_answered_at_once_without_a_callout() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    let r = e.on_request(|| 0, &mut store, 7, "/livez", &mut Get(None));
    assert!(
        matches!(r, Request::Answer(Answer::Now(ref reply, Source::Local)) if reply.status == 200)
    );
    assert!(dispatches(&e.take_effects()).is_empty());
    assert_eq!(e.tick_ms(), Some(TICK_MS));
}

#[test]
fn ordinary_traffic_passes_and_an_unauthorized_probe_is_counted() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    // App traffic costs no clock read (a host call).
    let clock = || -> u64 { panic!("the clock was read for app traffic") };
    let r = e.on_request(clock, &mut store, 7, "/orders", &mut Get(Some("s3cret")));
    assert_eq!(r, Request::Pass { new_path: None });
    let r = e.on_request(|| 0, &mut store, 8, "/readyz", &mut Get(Some("wrong")));
    assert!(
        matches!(r, Request::Answer(Answer::Now(ref reply, Source::Local)) if reply.status == 404)
    );
    let fx = e.take_effects();
    assert_eq!(fx, vec![Effect::Count(Metric::Unauthorized(1))]);
    // Configured pass_through: goes on, counted, no callout.
    let r = e.on_request(|| 0, &mut store, 9, "/appz", &mut Get(None));
    assert_eq!(r, Request::Pass { new_path: None });
    assert_eq!(
        e.take_effects(),
        vec![Effect::Count(Metric::Unauthorized(3))]
    );
}

#[test]
fn a_first_probe_runs_every_check_and_waits_for_them() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    let r = request(&mut e, &mut store, 0, 7, "/readyz");
    assert_eq!(r, Request::Answer(Answer::Waiting { deadline_ms: 800 }));
    let fx = e.take_effects();
    let d = dispatches(&fx);
    let clusters: Vec<_> = d.iter().map(|d| d.cluster.as_str()).collect();
    assert_eq!(clusters, ["db", "cache", "search"]);
    assert!(fx.contains(&Effect::Count(Metric::Runs(1))));
    assert!(e.running(1));
    assert_eq!(e.holding(), (1, 3, 1));
    answer_all(&mut e, &mut store, 40, &fx[..], "200");
    let fx = e.take_effects();
    assert_eq!(replies(&fx), vec![(7, 200, Source::Result { at_ms: 40 })]);
    assert!(!e.running(1));
    assert_eq!(e.holding(), (0, 0, 0));
    let key = cache::result_key(generation(POLICY.as_bytes()), "ready");
    let shared = store.get(&key).0.and_then(|b| cache::decode(&b));
    assert_eq!(shared.map(|r| r.at_ms), Some(40));
}

#[test]
fn a_failing_critical_check_makes_503_and_a_non_critical_one_does_not() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    request(&mut e, &mut store, 0, 7, "/readyz");
    let d = dispatches(&e.take_effects());
    e.on_callout(5, &mut store, d[0].id, &ok("200"));
    e.on_callout(5, &mut store, d[1].id, &ok("500")); // cache: not critical
    e.on_callout(5, &mut store, d[2].id, &ok("200"));
    assert_eq!(replies(&e.take_effects())[0].1, 200);
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    request(&mut e, &mut store, 0, 7, "/readyz");
    let d = dispatches(&e.take_effects());
    e.on_callout(5, &mut store, d[0].id, &ok("503"));
    e.on_callout(5, &mut store, d[1].id, &ok("200"));
    e.on_callout(5, &mut store, d[2].id, &ok("200"));
    assert_eq!(replies(&e.take_effects())[0].1, 503);
}

#[test]
fn probes_during_a_run_join_it_and_later_ones_hit_the_cache() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    request(&mut e, &mut store, 0, 7, "/readyz");
    let fx = e.take_effects();
    assert_eq!(
        request(&mut e, &mut store, 10, 8, "/readyz"),
        Request::Answer(Answer::Waiting { deadline_ms: 810 })
    );
    assert!(dispatches(&e.take_effects()).is_empty(), "one run, not two");
    answer_all(&mut e, &mut store, 40, &fx[..], "200");
    let mut answered: Vec<_> = replies(&e.take_effects()).iter().map(|r| r.0).collect();
    answered.sort_unstable();
    assert_eq!(answered, [7, 8]);
    // Within the TTL (the fixture's default): from the cache, at once.
    let r = request(&mut e, &mut store, 500, 9, "/readyz");
    assert!(
        matches!(r, Request::Answer(Answer::Now(ref reply, Source::Result { at_ms: 40 })) if reply.status == 200)
    );
    let fx = e.take_effects();
    assert!(dispatches(&fx).is_empty());
    assert!(fx.contains(&Effect::Count(Metric::Cache(1, true))));
}

#[test]
fn a_client_that_leaves_is_never_answered_and_its_run_goes_on() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    request(&mut e, &mut store, 0, 7, "/readyz");
    let fx = e.take_effects();
    e.on_gone(7);
    assert_eq!(e.holding(), (1, 3, 0));
    answer_all(&mut e, &mut store, 40, &fx[..], "200");
    assert!(replies(&e.take_effects()).is_empty());
    // The run completed for the next probe: no second callout.
    let r = request(&mut e, &mut store, 100, 8, "/readyz");
    assert!(matches!(r, Request::Answer(Answer::Now(..))));
    assert!(dispatches(&e.take_effects()).is_empty());
}

#[test]
fn a_callout_that_never_answers_fails_at_its_timeout() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    request(&mut e, &mut store, 0, 7, "/readyz?verbose");
    let d = dispatches(&e.take_effects());
    e.on_callout(5, &mut store, d[0].id, &ok("200"));
    e.on_callout(5, &mut store, d[1].id, &ok("200"));
    // search: the default timeout, 500 ms.
    e.on_tick(499, &mut store);
    assert!(
        replies(&e.take_effects()).is_empty(),
        "not before its timeout"
    );
    e.on_tick(500, &mut store);
    let fx = e.take_effects();
    let r = replies(&fx);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].0, r[0].1), (7, 503));
    let body = fx.iter().find_map(|f| match f {
        Effect::Reply { reply, .. } => Some(String::from_utf8_lossy(&reply.body).into_owned()),
        _ => None,
    });
    assert!(body
        .unwrap_or_default()
        .contains("search failed: timeout after 500ms"));
    // A late answer to the finished run changes nothing.
    e.on_callout(900, &mut store, d[2].id, &ok("200"));
    assert!(replies(&e.take_effects()).is_empty());
    assert_eq!(e.holding(), (0, 0, 0));
}

#[test]
fn a_dispatch_that_fails_fails_its_check_with_the_cause() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    request(&mut e, &mut store, 0, 7, "/readyz?verbose");
    let d = dispatches(&e.take_effects());
    e.on_dispatch_failed(1, &mut store, d[0].id, DispatchError::BadArgument);
    e.on_callout(5, &mut store, d[1].id, &ok("200"));
    e.on_callout(5, &mut store, d[2].id, &ok("200"));
    let fx = e.take_effects();
    let body = fx.iter().find_map(|f| match f {
        Effect::Reply { reply, .. } => Some(String::from_utf8_lossy(&reply.body).into_owned()),
        _ => None,
    });
    let body = body.unwrap_or_default();
    assert!(body.contains("[-]db failed"), "{body}");
    assert!(body.contains("[+]cache ok"), "{body}");
}

#[test]
fn a_second_worker_waits_for_the_first_ones_run_and_never_runs_its_own() {
    let mut store = MemStore::new();
    let mut a = engine(1, 0, &mut store);
    let mut b = engine(2, 0, &mut store);
    request(&mut a, &mut store, 0, 7, "/readyz");
    let fx = a.take_effects();
    let r = request(&mut b, &mut store, 10, 70, "/readyz");
    assert_eq!(r, Request::Answer(Answer::Waiting { deadline_ms: 810 }));
    assert!(dispatches(&b.take_effects()).is_empty(), "the lease is a's");
    answer_all(&mut a, &mut store, 50, &fx[..], "200");
    assert_eq!(replies(&a.take_effects()).len(), 1);
    b.on_tick(60, &mut store);
    assert_eq!(
        replies(&b.take_effects()),
        vec![(70, 200, Source::Result { at_ms: 50 })]
    );
    assert_eq!(b.holding(), (0, 0, 0));
}

#[test]
fn a_probe_waiting_on_another_worker_is_answered_503_at_its_deadline() {
    let mut store = MemStore::new();
    let mut a = engine(1, 0, &mut store);
    let mut b = engine(2, 0, &mut store);
    request(&mut a, &mut store, 0, 7, "/readyz");
    request(&mut b, &mut store, 10, 70, "/readyz");
    b.on_tick(800, &mut store);
    assert!(replies(&b.take_effects()).is_empty());
    b.on_tick(810, &mut store);
    let r = replies(&b.take_effects());
    assert_eq!(r, vec![(70, 503, Source::Local)]);
}

#[test]
fn a_new_policy_is_a_new_generation_and_shares_nothing_with_the_old() {
    let other = POLICY.replace("800ms", "700ms");
    assert_ne!(generation(POLICY.as_bytes()), generation(other.as_bytes()));
    assert_eq!(generation(b""), 0xcbf2_9ce4_8422_2325);
    let mut store = MemStore::new();
    let mut a = engine(1, 0, &mut store);
    request(&mut a, &mut store, 0, 7, "/readyz");
    let fx = a.take_effects();
    answer_all(&mut a, &mut store, 40, &fx[..], "200");
    let Ok((mut b, _)) = Engine::configure(other.as_bytes(), &|_| None, 2, 50, &mut store) else {
        panic!("valid policy")
    };
    let r = b.on_request(|| 60, &mut store, 8, "/readyz", &mut Get(Some("s3cret")));
    assert_eq!(r, Request::Answer(Answer::Waiting { deadline_ms: 760 }));
    assert_eq!(dispatches(&b.take_effects()).len(), 3);
}

#[test]
fn a_refused_policy_says_why_line_by_line() {
    let mut store = MemStore::new();
    let Err(lines) = Engine::configure(br#"{"endpoints": 3}"#, &|_| None, 1, 0, &mut store) else {
        panic!("refused policy accepted")
    };
    assert!(
        lines[0].starts_with("meshprobe: invalid policy: "),
        "{lines:?}"
    );
    assert!(lines[0].contains("endpoints"), "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("meshprobe: policy refused (1 error(s))")
    );
    assert!(store.entries().next().is_none(), "nothing written");
}

#[test]
fn body_wanted_only_for_a_callout_awaited() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    request(&mut e, &mut store, 0, 7, "/readyz");
    let d = dispatches(&e.take_effects());
    let unknown = CalloutId { run: 99, slot: 0 };
    assert_eq!(e.body_wanted(unknown, Some("200"), 10), 0);
    // db: no body check, a status alone decides.
    assert_eq!(e.body_wanted(d[0].id, Some("200"), 10), 0);
}

#[test]
fn liveness_is_rendered_once_per_view_unless_the_view_shows_the_time() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    let mut live = |e: &mut Engine, now: u64, path: &str| match e.on_request(
        || now,
        &mut store,
        7,
        path,
        &mut Get(None),
    ) {
        Request::Answer(Answer::Now(reply, Source::Local)) => reply,
        other => panic!("{other:?}"),
    };
    let first = live(&mut e, 0, "/livez?format=json");
    assert_eq!(live(&mut e, 5_000, "/livez?format=json"), first);
    assert_eq!(e.rendered.first().map(Vec::len), Some(1));
    // Answered as rendered, it costs no clock read (a host call), and
    // counts as a probe all the same.
    e.take_effects();
    let clock = || -> u64 { panic!("the clock was read for a rendered liveness answer") };
    let r = e.on_request(
        clock,
        &mut MemStore::new(),
        8,
        "/livez?format=json",
        &mut Get(None),
    );
    assert_eq!(
        r,
        Request::Answer(Answer::Now(first.clone(), Source::Local))
    );
    assert_eq!(
        e.take_effects(),
        vec![Effect::Count(Metric::Probes(0, 200))]
    );
    assert_eq!(live(&mut e, 5_000, "/livez").body, b"ok\n");
    assert_eq!(e.rendered.first().map(Vec::len), Some(2));
    // The page shows when it was made: made anew each time.
    let page = |r: Reply| String::from_utf8_lossy(&r.body).into_owned();
    let a = page(live(&mut e, 0, "/livez?format=html"));
    let b = page(live(&mut e, 5_000, "/livez?format=html"));
    assert!(
        a.contains("1970-01-01T00:00:00") && b.contains("1970-01-01T00:00:05"),
        "{a}\n{b}"
    );
    assert_eq!(e.rendered.first().map(Vec::len), Some(2));
}

#[test]
fn a_probe_from_the_cache_shows_only_its_checks_and_leaves_the_full_answer_whole() {
    let mut store = MemStore::new();
    let mut e = engine(1, 0, &mut store);
    request(&mut e, &mut store, 0, 7, "/readyz");
    let fx = e.take_effects();
    answer_all(&mut e, &mut store, 40, &fx, "200");
    e.take_effects();
    let body = |e: &mut Engine, store: &mut MemStore, ctx: Ctx, path: &str| {
        let r = request(e, store, 500, ctx, path);
        let Request::Answer(Answer::Now(reply, Source::Result { at_ms: 40 })) = r else {
            panic!("{path}: {r:?}");
        };
        String::from_utf8_lossy(&reply.body).into_owned()
    };
    let names = |text: &str| ["\"db\"", "\"cache\"", "\"search\""].map(|n| text.contains(n));
    let full = body(&mut e, &mut store, 8, "/readyz?format=json");
    assert_eq!(names(&full), [true; 3], "{full}");
    let narrowed = body(&mut e, &mut store, 9, "/readyz?format=json&exclude=cache");
    assert_eq!(names(&narrowed), [true, false, true], "{narrowed}");
    let one = body(&mut e, &mut store, 10, "/readyz/search?format=json");
    assert_eq!(names(&one), [false, false, true], "{one}");
    // The full answer, rendered once for this result, is still whole.
    assert_eq!(body(&mut e, &mut store, 11, "/readyz?format=json"), full);
}
