//! The engine (sans-IO) driven by arbitrary event sequences: probes on any
//! of a few workers sharing one in-memory store (any path, with or without
//! the secret), callout answers (any status or none, any body) or
//! dispatch failures for any callout asked for, in any order, twice or
//! never; clients leaving; ticks; time jumps; VM restarts.
//!
//! Invariants: no panic; a probe is answered at most once, never after
//! its client left, and exactly once if the engine said `Now`; a probe the
//! engine keeps is answered once time passes its deadline and a tick
//! comes (given a tick per 20 ms of time); nothing is left waiting.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use meshprobe::classify::RequestHeaders;
use meshprobe::engine::{Answer, CalloutId, Effect, Engine, MemStore, Request, TICK_MS};
use meshprobe::outcome::{CalloutResponse, DispatchError};
use std::collections::HashMap;

const POLICIES: &[&str] = &[
    r#"{"authorization": {"header": "x-health", "secrets": [{"value": "s3cret"}]},
  "endpoints": [{"name": "live", "path": "/livez", "access": "public"},
    {"name": "ready", "path": "/readyz", "checks": ["a", "b", "c"], "deadline": "300ms", "ttl": "200ms"},
    {"name": "deep", "path": "/deep", "checks": ["c"], "ttl": "0s", "deadline": "450ms"}],
  "checks": [{"name": "a", "cluster": "a", "timeout": "100ms"},
    {"name": "b", "cluster": "b", "critical": false},
    {"name": "c", "cluster": "c", "expect_status": [200, 204], "expect_body": {"contains": "ok"}}]}"#,
    r#"{"authorization": {"header": "x-health", "secrets": [{"value": "s3cret"}]},
  "endpoints": [{"name": "ready", "path": "/readyz", "checks": ["a", "b"], "deadline": "300ms",
    "ttl": "400ms", "refresh": true, "max_stale": "600ms", "on_stale": "fail", "on_startup": "fail"},
    {"name": "deep", "path": "/deep", "checks": ["b"], "ttl": "1s", "refresh": true, "max_stale": "1s"}],
  "checks": [{"name": "a", "cluster": "a"}, {"name": "b", "cluster": "b", "critical": false}]}"#,
];

const PATHS: &[&str] = &[
    "/readyz",
    "/readyz?verbose",
    "/readyz?format=json",
    "/readyz/a",
    "/readyz?exclude=b",
    "/deep",
    "/livez",
    "/x",
];

#[derive(Arbitrary, Debug)]
enum Event {
    Probe {
        worker: u8,
        path: u8,
        secret: bool,
    },
    Answer {
        pick: u16,
        status: Option<u16>,
        body: Vec<u8>,
    },
    Refused {
        pick: u16,
        unknown: bool,
    },
    Leave {
        pick: u16,
    },
    Tick {
        worker: u8,
    },
    Advance {
        ms: u16,
    },
    Restart {
        worker: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    policy: u8,
    workers: u8,
    events: Vec<Event>,
}

struct Headers(bool);

impl RequestHeaders for Headers {
    fn get(&mut self, name: &str) -> Option<&str> {
        match name {
            ":method" => Some("GET"),
            "x-health" if self.0 => Some("s3cret"),
            _ => None,
        }
    }
}

#[derive(PartialEq, Debug)]
enum State {
    Waiting(u64),
    Answered,
    Gone,
    Lost,
}

fuzz_target!(|input: Input| {
    let json = POLICIES[usize::from(input.policy) % POLICIES.len()];
    let Ok((first, _)) = Engine::configure(json.as_bytes(), &|_| None, 1, 0, &mut MemStore::new())
    else {
        panic!("policy refused");
    };
    let policy = first.policy().clone();
    let gen = meshprobe::engine::generation(json.as_bytes());
    let mut store = MemStore::new();
    let n = usize::from(input.workers % 3) + 1;
    let mut next_me = 1u64;
    let mut engines: Vec<Engine> = (0..n)
        .map(|_| {
            next_me += 1;
            Engine::new(policy.clone(), gen, next_me, 0, &mut store)
        })
        .collect();
    let mut now = 0u64;
    let mut probes: HashMap<u32, (usize, State)> = HashMap::new();
    let mut calls: Vec<(usize, CalloutId)> = Vec::new();
    let mut next_ctx = 1u32;

    let apply = |w: usize,
                 effects: Vec<Effect>,
                 now: u64,
                 probes: &mut HashMap<u32, (usize, State)>,
                 calls: &mut Vec<(usize, CalloutId)>| {
        for e in effects {
            match e {
                Effect::Dispatch(d) => calls.push((w, d.id)),
                Effect::Reply { ctx, .. } => {
                    let p = probes.get_mut(&ctx).expect("reply to an unknown probe");
                    match p.1 {
                        State::Waiting(_) => {
                            assert!(p.0 == w, "answered by another worker");
                            p.1 = State::Answered;
                        }
                        ref s => panic!("probe {ctx} answered in state {s:?} at {now}"),
                    }
                }
                _ => {}
            }
        }
    };

    for event in input.events.into_iter().take(400) {
        match event {
            Event::Probe {
                worker,
                path,
                secret,
            } => {
                let w = usize::from(worker) % n;
                let ctx = next_ctx;
                next_ctx += 1;
                let path = PATHS[usize::from(path) % PATHS.len()];
                let r = engines[w].on_request(|| now, &mut store, ctx, path, &mut Headers(secret));
                match r {
                    Request::Answer(Answer::Now(..)) => {
                        probes.insert(ctx, (w, State::Answered));
                    }
                    Request::Answer(Answer::Waiting { deadline_ms }) => {
                        assert!(deadline_ms > now);
                        probes.insert(ctx, (w, State::Waiting(deadline_ms)));
                    }
                    Request::Pass { .. } => {}
                }
                let fx = engines[w].take_effects();
                apply(w, fx, now, &mut probes, &mut calls);
            }
            Event::Answer { .. } | Event::Refused { .. } if calls.is_empty() => {}
            Event::Answer { pick, status, body } => {
                let (w, id) = calls[usize::from(pick) % calls.len()];
                let status = status.map(|s| s.to_string());
                let want = engines[w].body_wanted(id, status.as_deref(), body.len());
                let r = CalloutResponse {
                    status: status.as_deref(),
                    body: &body[..want.min(body.len())],
                    body_size: body.len(),
                };
                engines[w].on_callout(now, &mut store, id, &r);
                let fx = engines[w].take_effects();
                apply(w, fx, now, &mut probes, &mut calls);
            }
            Event::Refused { pick, unknown } => {
                let (w, id) = calls[usize::from(pick) % calls.len()];
                let err = if unknown {
                    DispatchError::BadArgument
                } else {
                    DispatchError::FailedAtOnce
                };
                engines[w].on_dispatch_failed(now, &mut store, id, err);
                let fx = engines[w].take_effects();
                apply(w, fx, now, &mut probes, &mut calls);
            }
            Event::Leave { pick } => {
                let mut waiting: Vec<u32> = probes
                    .iter()
                    .filter(|(_, p)| matches!(p.1, State::Waiting(_)))
                    .map(|(c, _)| *c)
                    .collect();
                waiting.sort_unstable();
                if let Some(&ctx) = waiting.get(usize::from(pick) % waiting.len().max(1)) {
                    let w = probes[&ctx].0;
                    probes.get_mut(&ctx).expect("known").1 = State::Gone;
                    engines[w].on_gone(ctx);
                }
            }
            Event::Tick { worker } => {
                let w = usize::from(worker) % n;
                engines[w].on_tick(now, &mut store);
                let fx = engines[w].take_effects();
                apply(w, fx, now, &mut probes, &mut calls);
            }
            Event::Advance { ms } => {
                // Time passes with a tick per TICK_MS on every worker.
                let end = now + u64::from(ms % 2_000);
                while now < end {
                    now = (now + TICK_MS).min(end);
                    for w in 0..n {
                        engines[w].on_tick(now, &mut store);
                        let fx = engines[w].take_effects();
                        apply(w, fx, now, &mut probes, &mut calls);
                    }
                    for (ctx, p) in &probes {
                        if let State::Waiting(deadline) = p.1 {
                            assert!(
                                now <= deadline + TICK_MS,
                                "probe {ctx} unanswered at {now}, deadline {deadline}"
                            );
                        }
                    }
                }
            }
            Event::Restart { worker } => {
                let w = usize::from(worker) % n;
                for p in probes
                    .values_mut()
                    .filter(|p| p.0 == w && matches!(p.1, State::Waiting(_)))
                {
                    p.1 = State::Lost;
                }
                calls.retain(|(cw, _)| *cw != w);
                next_me += 1;
                engines[w] = Engine::new(policy.clone(), gen, next_me, now, &mut store);
            }
        }
    }
    // Enough time for every deadline: nothing is left waiting.
    for _ in 0..60 {
        now += TICK_MS;
        for w in 0..n {
            engines[w].on_tick(now, &mut store);
            let fx = engines[w].take_effects();
            apply(w, fx, now, &mut probes, &mut calls);
        }
    }
    for (ctx, p) in &probes {
        assert!(
            !matches!(p.1, State::Waiting(_)),
            "probe {ctx} never answered"
        );
    }
    for e in &engines {
        assert_eq!(e.holding().2, 0, "waiters left");
    }
});
