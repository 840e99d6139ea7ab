// A proxy-wasm host in Node (V8, the engine Envoy embeds), enough to run
// meshprobe's request path outside Envoy: the module's time per request,
// and, under `node --cpu-prof`, which of its functions spend it (Envoy
// gives V8 no flags, so inside Envoy the module's code has no names).
//
//   node bench/vmhost.mjs MODULE POLICY.json SCENARIO REQUESTS EVICT_KIB
//
// SCENARIO: app (/app, pass-through), live (/livez), ready (/readyz with
// the bench's secret, from cache: the first request runs the checks, each
// answered 200 at once). Between two requests the host reads EVICT_KIB of
// other memory, as Envoy's own work between two requests does (0: the
// module stays in the CPU's caches). Prints one JSON line: the module's
// median ns per request (the 4 VM entries Envoy makes: context create,
// request headers, the header map's allocation, delete), the answers'
// statuses (and the first answer), and the host calls of one request.
import { readFileSync, writeFileSync } from "node:fs";
import { webcrypto } from "node:crypto";

const [modulePath, policyPath, scenario, requestsArg, evictArg] = process.argv.slice(2);
const REQUESTS = Number(requestsArg);
const EVICT = Number(evictArg) * 1024;
const SECRET = JSON.parse(readFileSync(policyPath, "utf8")).authorization?.secrets?.[0]?.value;
const PATHS = { app: "/app", live: "/livez", ready: "/readyz" };

const OK = 0, NOT_FOUND = 1, BAD_ARGUMENT = 2, EMPTY = 7, CAS_MISMATCH = 8;
let ex; // the instance's exports
const mem = () => new DataView(ex.memory.buffer);
const bytes = (p, n) => new Uint8Array(ex.memory.buffer, p, n);
const text = (p, n) => new TextDecoder().decode(bytes(p, n));
const enc = (s) => new TextEncoder().encode(s);

// Hands `data` to the module as the host does: in memory the module
// allocated (proxy_on_memory_allocate), its address and size at pp / np.
function give(data, pp, np) {
  const p = ex.proxy_on_memory_allocate(data.length);
  bytes(p, data.length).set(data);
  mem().setUint32(pp, p, true);
  mem().setUint32(np, data.length, true);
  return OK;
}

function serialize(pairs) {
  const kv = pairs.map(([k, v]) => [enc(k), enc(v)]);
  const size = 4 + kv.reduce((n, [k, v]) => n + 8 + k.length + v.length + 2, 0);
  const out = new Uint8Array(size), dv = new DataView(out.buffer);
  dv.setUint32(0, kv.length, true);
  let at = 4;
  for (const [k, v] of kv) { dv.setUint32(at, k.length, true); dv.setUint32(at + 4, v.length, true); at += 8; }
  for (const [k, v] of kv) { out.set(k, at); at += k.length + 1; out.set(v, at); at += v.length + 1; }
  return out;
}

function parse(p, n) {
  const b = bytes(p, n).slice(), dv = new DataView(b.buffer), count = dv.getUint32(0, true);
  const sizes = [...Array(count)].map((_, i) => [dv.getUint32(4 + 8 * i, true), dv.getUint32(8 + 8 * i, true)]);
  let at = 4 + 8 * count;
  return sizes.map(([k, v]) => {
    const key = new TextDecoder().decode(b.slice(at, at + k)); at += k + 1;
    const value = new TextDecoder().decode(b.slice(at, at + v)); at += v + 1;
    return [key, value];
  });
}

const world = {
  config: enc(readFileSync(policyPath, "utf8")),
  request: [], callHeaders: [], callBody: new Uint8Array(),
  shared: new Map(), cas: 1, queue: [], calls: [], token: 0, metrics: 0,
  replies: [], hostCalls: [], logs: [],
};
const host = (name, f) => (...args) => { world.hostCalls.push(name); return f(...args); };
const maps = { 0: () => world.request, 6: () => world.callHeaders };

const env = {
  proxy_log: host("log", (level, p, n) => { world.logs.push([level, text(p, n)]); return OK; }),
  proxy_get_current_time_nanoseconds: host("clock", (p) => { mem().setBigUint64(p, BigInt(Date.now()) * 1000000n, true); return OK; }),
  proxy_set_tick_period_milliseconds: host("tick_period", () => OK),
  proxy_get_buffer_bytes: host("buffer", (kind, start, max, pp, np) => {
    const b = { 7: world.config, 4: world.callBody }[kind];
    return b ? give(b.subarray(start, start + max), pp, np) : NOT_FOUND;
  }),
  proxy_set_buffer_bytes: host("set_buffer", () => OK),
  proxy_get_header_map_pairs: host("headers", (m, pp, np) => give(m === 0 ? world.requestMap : serialize(maps[m]?.() ?? []), pp, np)),
  proxy_get_header_map_value: host("header", (m, kp, kn, pp, np) => {
    const hit = (maps[m]?.() ?? []).find(([k]) => k === text(kp, kn));
    return hit ? give(enc(hit[1]), pp, np) : NOT_FOUND;
  }),
  proxy_replace_header_map_value: host("replace_header", () => OK),
  proxy_remove_header_map_value: host("remove_header", () => OK),
  proxy_get_property: host("property", () => NOT_FOUND),
  proxy_get_shared_data: host("shared_get", (kp, kn, pp, np, casp) => {
    const v = world.shared.get(text(kp, kn));
    if (!v) return NOT_FOUND;
    mem().setUint32(casp, v.cas, true);
    return give(v.value, pp, np);
  }),
  proxy_set_shared_data: host("shared_set", (kp, kn, vp, vn, cas) => {
    const key = text(kp, kn), old = world.shared.get(key);
    if (cas !== 0 && old && old.cas !== cas) return CAS_MISMATCH;
    world.shared.set(key, { value: bytes(vp, vn).slice(), cas: ++world.cas });
    return OK;
  }),
  proxy_register_shared_queue: host("register_queue", (p, n, idp) => { mem().setUint32(idp, 1, true); return OK; }),
  proxy_enqueue_shared_queue: host("enqueue", (id, p, n) => { world.queue.push(bytes(p, n).slice()); return OK; }),
  proxy_dequeue_shared_queue: host("dequeue", (id, pp, np) => world.queue.length ? give(world.queue.shift(), pp, np) : EMPTY),
  proxy_continue_stream: host("continue", () => OK),
  proxy_send_local_response: host("send", (status, dp, dn, bp, bn, hp, hn) => {
    world.replies.push(status);
    if (world.replies.length === 1) world.first = { status, body: text(bp, bn), headers: parse(hp, hn) };
    return OK;
  }),
  proxy_http_call: host("http_call", (cp, cn, hp, hn, bp, bn, tp, tn, timeout, tokp) => {
    world.calls.push(++world.token);
    mem().setUint32(tokp, world.token, true);
    return OK;
  }),
  proxy_grpc_call: host("grpc_call", () => BAD_ARGUMENT),
  proxy_get_status: host("status", () => NOT_FOUND),
  proxy_set_effective_context: host("effective_context", () => OK),
  proxy_define_metric: host("define_metric", (kind, p, n, idp) => { mem().setUint32(idp, ++world.metrics, true); return OK; }),
  proxy_increment_metric: host("increment_metric", () => OK),
  proxy_record_metric: host("record_metric", () => OK),
};
const wasi = {
  random_get: (p, n) => { webcrypto.getRandomValues(bytes(p, n)); return 0; },
  environ_sizes_get: (cp, sp) => { mem().setUint32(cp, 0, true); mem().setUint32(sp, 0, true); return 0; },
  environ_get: () => 0,
  fd_write: (fd, iovs, n, wp) => {
    let total = 0;
    for (let i = 0; i < n; i++) total += mem().getUint32(iovs + 8 * i + 4, true);
    mem().setUint32(wp, total, true);
    return 0;
  },
  proc_exit: (code) => { throw new Error(`proc_exit(${code})`); },
};

// A module instrumented by wasm-opt (--log-execution: every function entry
// and loop iteration; --instrument-memory: every load and store) counts
// its work here: the same for every run, where time is not.
const work = { steps: 0, loads: 0, stores: 0 };
let byPoint = null; // per log point, when asked for (VMHOST_POINTS: a file)
let counting = false; // only the measured requests count, not the ticks
Object.assign(env, {
  log_execution: (id) => { if (counting) { work.steps++; if (byPoint) byPoint[id] = (byPoint[id] ?? 0) + 1; } },
  load_ptr: (id, size, offset, ptr) => { if (counting) work.loads++; return ptr; },
  store_ptr: (id, size, offset, ptr) => { if (counting) work.stores++; return ptr; },
});
for (const t of ["i32", "i64", "f32", "f64"]) {
  env[`load_val_${t}`] = (id, value) => value;
  env[`store_val_${t}`] = (id, value) => value;
}
const { instance } = await WebAssembly.instantiate(readFileSync(modulePath), { env, wasi_snapshot_preview1: wasi });
ex = instance.exports;
ex._initialize?.();
const ROOT = 1;
ex.proxy_on_context_create(ROOT, 0);
ex.proxy_on_vm_start(ROOT, 0);
if (!ex.proxy_on_configure(ROOT, world.config.length)) {
  throw new Error("on_configure refused the policy: " + JSON.stringify(world.logs));
}

// The root's work Envoy would schedule: the shared queue, then the
// callouts' answers (200, at once).
function settle() {
  for (let rounds = 0; rounds < 10 && (world.queue.length || world.calls.length); rounds++) {
    if (world.queue.length) ex.proxy_on_queue_ready(ROOT, 1);
    for (const token of world.calls.splice(0)) {
      world.callHeaders = [[":status", "200"]];
      world.callBody = enc("ok");
      ex.proxy_on_http_call_response(ROOT, token, 1, 2, 0);
    }
  }
}

const evicted = new Uint8Array(Math.max(EVICT, 64));
let sink = 0;
function evict() {
  for (let i = 0; i < EVICT; i += 64) sink += evicted[i]++;
}

let ctx = 100;
// The request's headers as Envoy presents wrk's (wrk sends only `Host`
// and the bench's own headers; Envoy adds the last two), serialized once.
world.request = [[":authority", "127.0.0.1:10000"], [":path", PATHS[scenario]], [":method", "GET"],
  [":scheme", "http"], ["x-forwarded-proto", "http"], ["x-request-id", "8f7c1b9e-5b7a-4c6e-9d2f-3a1b0c9d8e7f"]];
if (scenario === "ready") world.request.push(["x-health", SECRET]);
world.requestMap = serialize(world.request);
function request(done = true) {
  const id = ++ctx, t0 = process.hrtime.bigint();
  ex.proxy_on_context_create(id, ROOT);
  ex.proxy_on_request_headers(id, world.request.length, 1);
  if (done) ex.proxy_on_delete(id);
  return Number(process.hrtime.bigint() - t0);
}

// The first request (a readiness probe's first run) stays until the
// checks' answers have answered it.
request(false);
settle();
ex.proxy_on_delete(ctx);
const ns = [];
Object.assign(work, { steps: 0, loads: 0, stores: 0 });
if (process.env.VMHOST_POINTS) byPoint = {};
counting = true;
let last = [];
for (let i = 0; i < REQUESTS; i++) {
  evict();
  world.hostCalls = [];
  ns.push(request());
  last = [...world.hostCalls];
  if (i % 100 === 99) {
    // The tick, every 100 requests (not by the clock: the counts are the
    // same in every run), counted apart from them.
    counting = false;
    ex.proxy_on_tick(ROOT);
    settle();
    counting = true;
  }
}
if (byPoint) writeFileSync(process.env.VMHOST_POINTS, JSON.stringify(byPoint));
const statuses = {};
for (const r of world.replies) statuses[r] = (statuses[r] ?? 0) + 1;
// The fastest batch's mean: noise from the rest of the machine only ever
// adds time, so the least disturbed batch is the module's own cost.
const BATCH = 1000;
let best = Infinity;
for (let i = 0; i + BATCH <= ns.length; i += BATCH) {
  best = Math.min(best, ns.slice(i, i + BATCH).reduce((a, b) => a + b, 0) / BATCH);
}
ns.sort((a, b) => a - b);
console.log(JSON.stringify({
  scenario, requests: REQUESTS, evict_kib: EVICT / 1024, best_batch_ns: Math.round(best), median_ns: ns[ns.length >> 1],
  p90_ns: ns[Math.floor(ns.length * 0.9)], statuses, first_answer: world.first ?? null, host_calls: last,
  per_request: Object.fromEntries(Object.entries(work).map(([k, v]) => [k, Math.round(v / REQUESTS)])), sink: sink & 1,
}));
