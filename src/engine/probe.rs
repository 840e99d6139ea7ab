//! Probes: what each gets (the cached result, a run, a wait), and the
//! rendering of answers.

use super::{Answer, Ctx, Effect, Engine, Metric, Source, Store, Waiter};
use crate::cache::{self, Plan};
use crate::classify::{classify, Decision, Probe, RequestHeaders};
use crate::policy::Format;
use crate::render::{render, Reply, View};
use crate::report::{Health, Report};

/// What the host does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Not a probe (or an unauthorized one configured `pass_through`):
    /// send it upstream without the secret header, with `:path` replaced
    /// when `Some`.
    Pass {
        new_path: Option<String>,
    },
    Answer(Answer),
}

impl Engine {
    /// A request from context `ctx`: classified, and when it is a probe,
    /// handled as [`Engine::on_probe`] does. The clock is read for probes
    /// only: app traffic costs no host call for it.
    pub fn on_request(
        &mut self,
        now: impl FnOnce() -> u64,
        store: &mut dyn Store,
        ctx: Ctx,
        raw_path: &str,
        headers: &mut dyn RequestHeaders,
    ) -> Request {
        let policy = self.policy.clone();
        match classify(&policy, raw_path, headers) {
            Decision::PassThrough { new_path } => Request::Pass { new_path },
            Decision::Reply(reply) => Request::Answer(Answer::Now(reply, Source::Local)),
            Decision::Unauthorized {
                endpoint,
                reply,
                new_path,
            } => {
                self.unauthorized(endpoint);
                match reply {
                    Some(reply) => Request::Answer(Answer::Now(reply, Source::Local)),
                    None => Request::Pass { new_path },
                }
            }
            Decision::Probe(probe) => match self.rendered_live(&probe) {
                // A liveness answer as rendered before: no clock read.
                Some(reply) => {
                    let count = Metric::Probes(probe.endpoint, reply.status);
                    self.out.push(Effect::Count(count));
                    Request::Answer(Answer::Now(reply, Source::Local))
                }
                None => Request::Answer(self.on_probe(now(), store, ctx, probe)),
            },
        }
    }

    /// The reply rendered before for a liveness probe's view, when that
    /// view does not show the time: a liveness answer depends on nothing
    /// else.
    fn rendered_live(&self, probe: &Probe) -> Option<Reply> {
        let live = self.policy.endpoints.get(probe.endpoint)?.checks.is_empty();
        let key = (probe.format, probe.verbose, probe.details);
        let rendered = self
            .rendered
            .get(probe.endpoint)
            .filter(|_| live && timeless(probe))?;
        let found = rendered.iter().find(|(k, _)| *k == key);
        found.map(|(_, reply)| reply.clone())
    }

    /// A probe from context `ctx`: answered now, or waiting (then an
    /// [`Effect::Reply`] for `ctx` follows by its deadline plus one tick).
    pub fn on_probe(&mut self, now: u64, store: &mut dyn Store, ctx: Ctx, probe: Probe) -> Answer {
        let mark = self.out.len();
        let deadline_ms = self.handle(now, store, ctx, probe);
        // An answer made at once comes back as the return value.
        let pos = self
            .out
            .iter()
            .skip(mark)
            .position(|e| matches!(e, Effect::Reply { ctx: c, .. } if *c == ctx));
        if let Some(Effect::Reply { reply, source, .. }) = pos.map(|p| self.out.remove(mark + p)) {
            return Answer::Now(reply, source);
        }
        match deadline_ms {
            Some(deadline_ms) => Answer::Waiting { deadline_ms },
            // Unreachable by construction (every path answers or waits);
            // a probe is never left without an answer.
            None => Answer::Now(Reply::plain(503, "meshprobe: no answer\n"), Source::Local),
        }
    }

    /// Answers the probe (an [`Effect::Reply`]) or makes it wait; the
    /// deadline when it waits.
    fn handle(&mut self, now: u64, store: &mut dyn Store, ctx: Ctx, probe: Probe) -> Option<u64> {
        let policy = self.policy.clone();
        let endpoint = probe.endpoint;
        let ep = policy.endpoints.get(endpoint)?;
        if ep.checks.is_empty() {
            // Liveness: answered locally, zero callouts, nothing to share;
            // rendered once per view, unless the view shows the time.
            let reply = match self.rendered_live(&probe) {
                Some(reply) => reply,
                None => {
                    let mut report = Report::new(&ep.name, Vec::new());
                    report.at_ms = now;
                    let reply = self.render(&probe, &report);
                    if let Some(r) = self.rendered.get_mut(endpoint).filter(|_| timeless(&probe)) {
                        let key = (probe.format, probe.verbose, probe.details);
                        r.push((key, reply.clone()));
                    }
                    reply
                }
            };
            self.send_to(ctx, endpoint, reply, Source::Local, now, now);
            return None;
        }
        // Fast path: the result this VM last read is still within its TTL;
        // a newer one elsewhere changes nothing for this probe.
        if let Some(Some((_, memo))) = self.memo.get(endpoint) {
            if now.saturating_sub(memo.at_ms) < ep.cache.ttl_ms {
                self.out.push(Effect::Count(Metric::Cache(endpoint, true)));
                let at = memo.at_ms;
                self.answer_memo(ctx, &probe, at, now);
                return None;
            }
        }
        let result = self.result(store, endpoint);
        let fresh = result
            .as_ref()
            .is_some_and(|r| now.saturating_sub(r.at_ms) < ep.cache.ttl_ms);
        let lease = if fresh {
            None
        } else {
            self.lease(store, endpoint).0
        };
        let local = self.runs.get(endpoint).is_some_and(Option::is_some);
        let deadline_ms = now.saturating_add(ep.deadline_ms);
        let waiter = Waiter {
            ctx,
            deadline_ms,
            seen_at: result.as_ref().map(|r| r.at_ms),
            probe,
        };
        let plan = cache::plan(&ep.cache, waiter.seen_at, lease, self.me, local, now);
        let hit = matches!(plan, Plan::Serve | Plan::Fail(_));
        self.out.push(Effect::Count(Metric::Cache(endpoint, hit)));
        match (plan, result) {
            (Plan::Serve, Some(full)) => {
                self.answer_memo(ctx, &waiter.probe, full.at_ms, now);
                None
            }
            (Plan::Fail(reason), _) => {
                let mut report = Report::new(&ep.name, Vec::new());
                report.health = Health::Fail;
                report.at_ms = now;
                report.notes = vec![reason];
                self.answer(ctx, &waiter.probe, &report, Source::Local, now);
                None
            }
            (Plan::Join, _) => {
                if let Some(Some(run)) = self.runs.get_mut(endpoint) {
                    run.waiters.push(waiter);
                }
                Some(deadline_ms)
            }
            (Plan::Run | Plan::Serve, _) => {
                let seen = waiter.seen_at;
                if let Err(back) = self.try_start(store, endpoint, vec![waiter], seen, now) {
                    // Another worker took it between our read and our swap.
                    self.remote.extend(back);
                }
                Some(deadline_ms)
            }
            (Plan::Wait, _) => {
                self.remote.push(waiter);
                Some(deadline_ms)
            }
        }
    }

    /// Answers a probe from a full report (narrowed to its checks).
    pub(super) fn answer_from(
        &mut self,
        ctx: Ctx,
        probe: &Probe,
        full: &Report,
        source: Source,
        now: u64,
    ) {
        let report = cache::select(
            &self.policy,
            probe.endpoint,
            probe.checks(&self.policy),
            full,
            &probe.notes,
        );
        self.answer(ctx, probe, &report, source, now);
    }

    /// Answers from the memo'd result taken at `at_ms`, rendering each view
    /// once per result.
    fn answer_memo(&mut self, ctx: Ctx, probe: &Probe, at_ms: u64, now: u64) {
        let endpoint = probe.endpoint;
        let source = Source::Result { at_ms };
        let full_set = self
            .policy
            .endpoints
            .get(endpoint)
            .is_some_and(|e| e.checks.len() == probe.checks(&self.policy).len());
        let Some(Some((_, memo))) = self.memo.get(endpoint) else {
            return;
        };
        if !full_set || !probe.notes.is_empty() || memo.at_ms != at_ms {
            let memo = memo.clone();
            self.answer_from(ctx, probe, &memo, source, now);
            return;
        }
        let key = (probe.format, probe.verbose, probe.details);
        let cached = self
            .rendered
            .get(endpoint)
            .and_then(|r| r.iter().find(|(k, _)| *k == key))
            .map(|(_, reply)| reply.clone());
        let reply = match cached {
            Some(reply) => reply,
            None => {
                let reply = self.render(probe, memo);
                if let Some(r) = self.rendered.get_mut(endpoint) {
                    r.push((key, reply.clone()));
                }
                reply
            }
        };
        self.send_to(ctx, endpoint, reply, source, at_ms, now);
    }

    fn render(&self, probe: &Probe, report: &Report) -> Reply {
        let (codes, degraded_header) = self
            .policy
            .endpoints
            .get(probe.endpoint)
            .map(|ep| (ep.status_codes, ep.degraded_header))
            .unwrap_or_default();
        let view = View {
            format: probe.format,
            verbose: probe.verbose,
            details: probe.details,
            codes,
            degraded_header,
        };
        render(report, &view, &self.policy.service)
    }

    pub(super) fn answer(
        &mut self,
        ctx: Ctx,
        probe: &Probe,
        report: &Report,
        source: Source,
        now: u64,
    ) {
        let reply = self.render(probe, report);
        self.send_to(ctx, probe.endpoint, reply, source, report.at_ms, now);
    }

    fn send_to(
        &mut self,
        ctx: Ctx,
        endpoint: usize,
        reply: Reply,
        source: Source,
        at_ms: u64,
        now: u64,
    ) {
        let Some(ep) = self.policy.endpoints.get(endpoint) else {
            return;
        };
        let reply = match ep.checks.is_empty() {
            true => reply,
            false => reply.with_age(cache::age_secs(at_ms, now)),
        };
        self.out
            .push(Effect::Count(Metric::Probes(endpoint, reply.status)));
        self.out.push(Effect::Reply { ctx, reply, source });
    }
}

/// Whether a probe's answer shows nothing of the time (HTML and the feeds
/// do, and so do notes).
fn timeless(probe: &Probe) -> bool {
    probe.notes.is_empty() && !matches!(probe.format, Format::Html | Format::Atom | Format::Rss)
}
