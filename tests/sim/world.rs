//! The simulated world: N workers (VMs) of one Envoy, each with real
//! engines, sharing one in-memory store; a clock; a seeded schedule of
//! probes, callout answers, clients leaving, VM restarts, policy swaps and
//! ticks. The host is modelled as it behaves: every callout answer goes to
//! the root context (the engine), whatever became of the probe; Envoy
//! answers a timed-out callout at its timeout with 504.

use super::deps::{self, Fate, Mode};
use super::oracle::{Oracle, ProbeRec};
use super::rng::Rng;
use meshprobe::cache;
use meshprobe::classify::{classify, Decision, RequestHeaders};
use meshprobe::engine::{
    generation, Answer, CalloutId, Effect, Engine, MemStore, Metric, Store, StoreError, TICK_MS,
};
use meshprobe::outcome::CalloutResponse;
use meshprobe::policy::Policy;
use meshprobe::report::Report;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::rc::Rc;

/// The store, recording every result written (for the oracle).
#[derive(Default)]
pub struct RecStore {
    pub mem: MemStore,
    /// Every result written, by key and time (two runs may complete in
    /// the same millisecond).
    pub results: HashMap<(String, u64), Vec<Report>>,
}

impl Store for RecStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.mem.get(key)
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        self.mem.set(key, value, cas)?;
        if key.contains("/result/") {
            if let Some(r) = cache::decode(value) {
                self.results
                    .entry((key.to_string(), r.at_ms))
                    .or_default()
                    .push(r);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    Tick(usize),
    Probe(usize),
    Answer(usize),
    Leave(u32),
    Restart(usize),
    Swap,
    Mode(usize),
}

pub struct Inst {
    pub uid: u64,
    pub me: u64,
    pub gen: u64,
    pub policy: Rc<Policy>,
    pub engine: Engine,
}

struct Call {
    worker: usize,
    uid: u64,
    id: CalloutId,
    fate: Fate,
}

/// What a seed's schedule contains.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub workers: usize,
    pub load_ms: u64,
    pub probes: u64,
    pub leave_pct: u64,
    pub restarts: u64,
    pub swap: bool,
    pub never: bool,
}

impl Params {
    pub fn random(rng: &mut Rng) -> Params {
        Params {
            workers: 1 + rng.below(4) as usize,
            load_ms: 500 + rng.below(2500),
            probes: 5 + rng.below(120),
            leave_pct: *rng.pick(&[0, 10, 30]),
            restarts: if rng.pct(25) { 1 + rng.below(2) } else { 0 },
            swap: rng.pct(20),
            never: rng.pct(20),
        }
    }
}

struct Headers<'a>(&'a [(&'static str, String)]);

impl RequestHeaders for Headers<'_> {
    fn get(&mut self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct World {
    pub now: u64,
    rng: Rng,
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Ev>,
    pub workers: Vec<Vec<Inst>>,
    pub store: RecStore,
    policy: (Rc<Policy>, u64),
    calls: Vec<Option<Call>>,
    modes: [Mode; 3],
    next_ctx: u32,
    next_uid: u64,
    pub dead: Vec<u64>,
    last_start: HashMap<(u64, usize), (u64, u64)>,
    pub oracle: Oracle,
    pub trace: Option<Vec<String>>,
    pub params: Params,
}

fn load(json: &str) -> (Rc<Policy>, u64) {
    match Policy::from_json(json.as_bytes(), &|_| None) {
        Ok(p) => (Rc::new(p), generation(json.as_bytes())),
        Err(e) => panic!("simulator policy refused: {e:?}\n{json}"),
    }
}

impl World {
    pub fn new(seed: u64, trace: bool) -> World {
        let mut rng = Rng::new(seed);
        let params = Params::random(&mut rng);
        let json = super::policies::random(&mut rng);
        let policy = load(&json);
        let never = params.never;
        let modes = [0, 1, 2].map(|_| deps::random_mode(&mut rng, never));
        let mut w = World {
            now: 0,
            rng,
            heap: BinaryHeap::new(),
            events: Vec::new(),
            workers: Vec::new(),
            store: RecStore::default(),
            policy,
            calls: Vec::new(),
            modes,
            next_ctx: 1,
            next_uid: 1,
            dead: Vec::new(),
            last_start: HashMap::new(),
            oracle: Oracle::default(),
            trace: trace.then(Vec::new),
            params,
        };
        w.log(format!("seed {seed}: {params:?}, modes {modes:?}\n{json}"));
        for i in 0..params.workers {
            let inst = w.inst();
            w.workers.push(vec![inst]);
            let phase = w.rng.below(TICK_MS);
            w.at(phase, Ev::Tick(i));
        }
        for _ in 0..params.probes {
            let t = w.rng.below(params.load_ms);
            let worker = w.rng.below(params.workers as u64) as usize;
            w.at(t, Ev::Probe(worker));
        }
        for _ in 0..params.restarts {
            let t = w.rng.below(params.load_ms);
            let worker = w.rng.below(params.workers as u64) as usize;
            w.at(t, Ev::Restart(worker));
        }
        if params.swap {
            let t = w.rng.below(params.load_ms);
            w.at(t, Ev::Swap);
        }
        for d in 0..3 {
            let t = w.rng.below(params.load_ms);
            w.at(t, Ev::Mode(d));
        }
        w
    }

    fn log(&mut self, line: String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{:>6} {line}", self.now));
        }
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.events.push(ev);
        self.heap.push(Reverse((
            t,
            self.events.len() as u64,
            self.events.len() - 1,
        )));
    }

    fn inst(&mut self) -> Inst {
        let (policy, gen) = self.policy.clone();
        let me = self.rng.u64() | 1;
        let engine = Engine::new(policy.clone(), gen, me, self.now, &mut self.store);
        self.next_uid += 1;
        Inst {
            uid: self.next_uid,
            me,
            gen,
            policy,
            engine,
        }
    }

    /// Runs until `end`; false when the oracle found a violation.
    pub fn run(&mut self, end: u64) -> bool {
        while let Some(Reverse((t, _, i))) = self.heap.peek().copied() {
            if t > end {
                break;
            }
            self.heap.pop();
            self.now = t;
            let ev = self.events[i];
            self.step(ev);
            self.oracle.overdue(self.now);
            if !self.oracle.violations.is_empty() {
                return false;
            }
        }
        self.now = end;
        true
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Tick(w) => {
                self.at(self.now + TICK_MS, Ev::Tick(w));
                self.log(format!("worker {w}: tick"));
                for k in 0..self.workers[w].len() {
                    let uid = self.workers[w][k].uid;
                    let now = self.now;
                    let e = &mut self.workers[w][k].engine;
                    e.on_tick(now, &mut self.store);
                    let fx = e.take_effects();
                    self.apply(w, uid, fx);
                }
                // A swapped-out policy's engine goes once its probes are
                // answered (its root context is gone with its last stream).
                let n = self.workers[w].len();
                let mut k = 0;
                self.workers[w].retain(|i| {
                    k += 1;
                    k == n || i.engine.holding().2 > 0
                });
            }
            Ev::Probe(w) => self.probe(w),
            Ev::Answer(i) => self.answer(i),
            Ev::Leave(ctx) => {
                if let Some((w, uid)) = self.oracle.leave(ctx) {
                    self.log(format!("client {ctx} leaves"));
                    if let Some(inst) = self.workers[w].iter_mut().find(|i| i.uid == uid) {
                        inst.engine.on_gone(ctx);
                    }
                }
            }
            Ev::Restart(w) => {
                self.log(format!("worker {w}: VM restarts"));
                for i in std::mem::take(&mut self.workers[w]) {
                    self.dead.push(i.me);
                    self.oracle.lost(i.uid);
                }
                let inst = self.inst();
                self.workers[w].push(inst);
            }
            Ev::Swap => {
                let json = super::policies::random(&mut self.rng);
                self.policy = load(&json);
                self.log(format!(
                    "policy swap: generation {:016x}\n{json}",
                    self.policy.1
                ));
                for w in 0..self.workers.len() {
                    let inst = self.inst();
                    self.workers[w].push(inst);
                }
            }
            Ev::Mode(d) => {
                self.modes[d] = deps::random_mode(&mut self.rng, self.params.never);
                self.log(format!("dependency {d}: {:?}", self.modes[d]));
                let t = self.now + 1 + self.rng.below(1500);
                self.at(t, Ev::Mode(d));
            }
        }
    }

    fn probe(&mut self, w: usize) {
        let (path, headers) = super::policies::request(&mut self.rng);
        let Some(inst) = self.workers[w].last_mut() else {
            return;
        };
        let uid = inst.uid;
        let decision = classify(&inst.policy, &path, &mut Headers(&headers));
        let probe = match decision {
            Decision::Probe(p) => p,
            Decision::Unauthorized { endpoint, .. } => {
                inst.engine.unauthorized(endpoint);
                let fx = inst.engine.take_effects();
                return self.apply(w, uid, fx);
            }
            _ => return,
        };
        let ctx = self.next_ctx;
        self.next_ctx += 1;
        let policy = inst.policy.clone();
        let Some(ep) = policy.endpoints.get(probe.endpoint) else {
            return;
        };
        let result_age = self
            .store
            .mem
            .get(&cache::result_key(inst.gen, &ep.name))
            .0
            .and_then(|b| cache::decode(&b))
            .map(|r| self.now.saturating_sub(r.at_ms));
        let rec = ProbeRec::new(
            w,
            uid,
            inst.gen,
            policy.clone(),
            probe.clone(),
            self.now,
            result_age,
        );
        self.oracle.arrived(ctx, rec);
        let now = self.now;
        let answer = inst.engine.on_probe(now, &mut self.store, ctx, probe);
        let fx = inst.engine.take_effects();
        if let Some(t) = &mut self.trace {
            t.push(format!(
                "{now:>6} worker {w}: probe {ctx} {path} -> {answer:?}"
            ));
        }
        match answer {
            Answer::Now(reply, source) => {
                self.oracle
                    .answered(ctx, now, &reply, source, &self.store.results, true)
            }
            Answer::Waiting { deadline_ms } => {
                self.oracle.waiting(ctx, deadline_ms);
                if self.rng.pct(self.params.leave_pct) {
                    let t = now + self.rng.below(deadline_ms - now + 1);
                    self.at(t, Ev::Leave(ctx));
                }
            }
        }
        self.apply(w, uid, fx);
    }

    fn answer(&mut self, i: usize) {
        let Some(call) = self.calls.get_mut(i).and_then(Option::take) else {
            return;
        };
        let Fate::Answer { status, body, .. } = &call.fate else {
            return;
        };
        let Some(inst) = self.workers[call.worker]
            .iter_mut()
            .find(|x| x.uid == call.uid)
        else {
            return; // its VM is gone
        };
        let status = status.map(|s| s.to_string());
        let size = body.len();
        let wanted = inst.engine.body_wanted(call.id, status.as_deref(), size);
        let body = &body[..wanted.min(size)];
        let response = CalloutResponse {
            status: status.as_deref(),
            body,
            body_size: size,
        };
        if let Some(t) = &mut self.trace {
            t.push(format!(
                "{:>6} worker {}: callout {:?} answers {status:?}",
                self.now, call.worker, call.id
            ));
        }
        inst.engine
            .on_callout(self.now, &mut self.store, call.id, &response);
        let fx = inst.engine.take_effects();
        self.apply(call.worker, call.uid, fx);
    }

    /// Executes effects as the host does.
    fn apply(&mut self, w: usize, uid: u64, effects: Vec<Effect>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Dispatch(d) => {
                    let dep = match d.cluster.as_str() {
                        "a" => 0,
                        "b" => 1,
                        _ => 2,
                    };
                    let fate = deps::fate(self.modes[dep], &mut self.rng, self.now, d.timeout_ms);
                    self.log(format!(
                        "worker {w}: dispatch {:?} to {}: {fate:?}",
                        d.id, d.cluster
                    ));
                    if let Fate::Refused(err) = fate {
                        if let Some(inst) = self.workers[w].iter_mut().find(|x| x.uid == uid) {
                            inst.engine
                                .on_dispatch_failed(self.now, &mut self.store, d.id, err);
                            queue.extend(inst.engine.take_effects());
                        }
                        continue;
                    }
                    if let Fate::Answer { at, .. } = fate {
                        self.at(at, Ev::Answer(self.calls.len()));
                    }
                    self.calls.push(Some(Call {
                        worker: w,
                        uid,
                        id: d.id,
                        fate,
                    }));
                }
                Effect::Reply { ctx, reply, source } => {
                    self.log(format!(
                        "worker {w}: reply {ctx}: {} {source:?}",
                        reply.status
                    ));
                    self.oracle
                        .answered(ctx, self.now, &reply, source, &self.store.results, false);
                }
                Effect::Count(Metric::Runs(e)) => self.run_started(w, uid, e),
                _ => {}
            }
        }
    }

    fn run_started(&mut self, w: usize, uid: u64, e: usize) {
        self.log(format!("worker {w}: run of endpoint {e} starts"));
        let Some(inst) = self.workers[w].iter().find(|x| x.uid == uid) else {
            return;
        };
        let (gen, policy) = (inst.gen, inst.policy.clone());
        let others = self
            .workers
            .iter()
            .flatten()
            .any(|x| x.uid != uid && x.gen == gen && x.engine.running(e));
        let Some(ep) = policy.endpoints.get(e) else {
            return;
        };
        let result = self.store.mem.get(&cache::result_key(gen, &ep.name)).0;
        let at = result.and_then(|b| cache::decode(&b)).map(|r| r.at_ms);
        // The previous run's start, unless its VM died (the lease-expiry case).
        let prev = self.last_start.insert((gen, e), (self.now, uid));
        let alive = |u: u64| self.workers.iter().flatten().any(|x| x.uid == u);
        let spacing = prev.filter(|(_, u)| alive(*u)).map(|(t, _)| self.now - t);
        let run = super::oracle::RunStart {
            uid,
            endpoint: e,
            now: self.now,
            others,
            result_at: at,
            spacing,
        };
        self.oracle.run_started(&run, &ep.cache);
    }
}
