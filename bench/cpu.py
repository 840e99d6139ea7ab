"""CPU per request: every floor and meshprobe scenario, each in its own Envoy
(one worker pinned to CPU 1; wrk, 1 thread and 16 connections, on CPU 0),
all started at once and measured interleaved, `rounds` rounds of `seconds`.
The figure is Envoy's whole process CPU time (user + system) over the
requests wrk completed. The same scenarios are then counted in instructions
under callgrind (instr.py)."""
import os, statistics, subprocess, tempfile, time

import crossings
import instr
import harness as h
import policies
import cpusplit

HERE = os.path.dirname(os.path.abspath(__file__))

# (key, label, floor module or None, kind, path, auth header?)
#   kind: "none" no Wasm filter, "native" health_check, "wat" a floor module,
#   "mp" meshprobe with policies.probes(), "scoped" meshprobe off on app
#   routes, "scale1" / "scale100" meshprobe with policies.scale(n).
SCENARIOS = [
    ("none", "no filter, app traffic (direct_response)", None, "none", "/app", False),
    ("a", "(a) empty Wasm filter, app traffic", "noop.wat", "wat", "/app", False),
    ("b", "(b) (a) exporting every callback of the Rust SDK, app traffic", "sdk_exports.wat", "wat", "/app", False),
    ("c", "(c) (b) + one `:path` read, app traffic", "path_read.wat", "wat", "/app", False),
    ("h", "(h) meshprobe's host calls, no logic: its exports, all headers in one call, its tick; app traffic", "host_calls_pass.wat", "wat", "/app", False),
    ("mp_app", "meshprobe, app traffic (pass-through)", None, "mp", "/app", False),
    ("mp_scoped", "meshprobe scoped to probe routes, app traffic", None, "scoped", "/app", False),
    ("native", "native `health_check` filter, `/livez`", None, "native", "/livez", False),
    ("d", "(d) minimal Wasm local reply (200 \"ok\")", "local_reply.wat", "wat", "/livez", False),
    ("e", "(e) (d) with meshprobe's body and headers", "local_reply_headers.wat", "wat", "/livez", False),
    ("f", "(f) (b) + (c) + (e): SDK exports, `:path` read, reply with headers", "probe_floor.wat", "wat", "/livez", False),
    ("g", "(g) (h) answering as (e) does", "host_calls.wat", "wat", "/livez", False),
    ("i", "(i) (g) answering as readiness from cache does: the clock read, an `Age` header", "host_calls_ready.wat", "wat", "/readyz", True),
    ("mp_live", "meshprobe liveness", None, "mp", "/livez", False),
    ("mp_ready", "meshprobe readiness from cache (5 checks)", None, "mp", "/readyz", True),
    ("scale1", "meshprobe readiness from cache, 1-endpoint policy (10 checks)", None, "scale1", "/readyz", True),
    ("scale100", "meshprobe readiness from cache, 100-endpoint policy (1,000 checks), last endpoint", None, "scale100", "/readyz", True),
]


def without_answer(text):
    """Floor (h) from floor (g)'s text: no answer, the request continues."""
    lines = [l for l in text.splitlines() if not l.rstrip().endswith(";; answer")]
    return "\n".join("    (i32.const 0)) ;; continue" if ";; answer:" in l else l for l in lines) + "\n"


def with_age(text):
    """Floor (i) from floor (g)'s text: before answering, the clock read in
    the request (what a readiness probe from cache asks of the host beyond
    (g)); the answer carries an `Age` header too (its value a constant
    digit: the answer meshprobe gives from a result under one second old)."""
    edits = [
        ('"\\05\\00\\00\\00"                                  ;; 5 headers',
         '"\\06\\00\\00\\00"                                  ;; 6 headers'),
        (';; x-meshprobe (11), 5\n', ';; x-meshprobe (11), 5\n    "\\03\\00\\00\\00" "\\01\\00\\00\\00" ;; age (3), 1\n'),
        ('"x-meshprobe\\00" "probe\\00")', '"x-meshprobe\\00" "probe\\00"\n    "age\\00" "0\\00")'),
        ("(i32.const 2064) (i32.const 167)", "(i32.const 2064) (i32.const 181)"),
        ("    (drop (call $send", "    (drop (call $now (i32.const 1040)))\n    (drop (call $send"),
    ]
    for old, new in edits:
        if text.count(old) != 1:
            raise ValueError(f"floor (i): {old!r} is not once in host_calls.wat")
        text = text.replace(old, new)
    return text


# Floor modules written from another one's text.
DERIVED = {"host_calls_pass.wat": ("host_calls.wat", without_answer),
           "host_calls_ready.wat": ("host_calls.wat", with_age)}


# Seconds every Envoy idles, measured at once, before the rounds.
IDLE_S = 10


def build_floors(out_dir):
    """wat2wasm every floor module into out_dir: {file.wat: path.wasm}."""
    built = {}
    for _, _, wat, *_ in SCENARIOS:
        if wat and wat not in built:
            src = os.path.join(HERE, wat)
            if wat in DERIVED:
                base, derive = DERIVED[wat]
                src = os.path.join(out_dir, wat)
                with open(src, "w") as f:
                    f.write(derive(open(os.path.join(HERE, base)).read()))
            dst = os.path.join(out_dir, wat.replace(".wat", ".wasm"))
            subprocess.run(["wat2wasm", src, "-o", dst], check=True)
            built[wat] = dst
    return built


def configs(wasm, floors, deps5, deps10, patient=False):
    """{key: Envoy bootstrap} of every scenario; `patient`: meshprobe's
    policies made for an Envoy under valgrind (policies.patient)."""
    dep_clusters = "".join(h.cluster(f"dep{i}", p) for i, p in enumerate(deps5.ports()))
    scale_clusters = "".join(h.cluster(f"c{i}", p) for i, p in enumerate(deps10.ports()))
    pol = policies.patient if patient else (lambda p: p)
    mp = h.wasm_filter(wasm, pol(policies.probes()))
    out = {}
    for key, _, wat, kind, _, _ in SCENARIOS:
        if kind == "none":
            out[key] = h.bootstrap("")
        elif kind == "native":
            out[key] = h.bootstrap(h.NATIVE_HC)
        elif kind == "wat":
            out[key] = h.bootstrap(h.wasm_filter(floors[wat], {}))
        elif kind == "mp":
            out[key] = h.bootstrap(mp, h.APP_ROUTE, dep_clusters)
        elif kind == "scoped":
            out[key] = h.bootstrap(mp, h.SCOPED_ROUTES, dep_clusters)
        else:
            n = 1 if kind == "scale1" else 100
            out[key] = h.bootstrap(h.wasm_filter(wasm, pol(policies.scale(n))), h.APP_ROUTE, scale_clusters)
    return out


def answer_headers(env, key):
    """The headers of scenario `key`'s answer, without those Envoy adds
    itself; an `Age` header's seconds as "N"."""
    status, headers, body = env.get(path_of(key), dict(x.split(": ", 1) for x in headers_of(key)))
    drop = {"date", "server", "content-length", "connection"}
    kept = [(k.lower(), "N" if k.lower() == "age" and v.isdigit() else v) for k, v in headers]
    return status, sorted((k, v) for k, v in kept if k not in drop), body.decode(errors="replace")


def run(envoy, wasm, rounds, seconds, log=print, repo=None, instr_requests=500, instr_keys=None):
    """Measure every scenario; returns {"scenarios": {key: {...}}, "reply_check": {...},
    "crossings": {key: {...}}, "profile": {...}, "instructions": {...}}.
    `instr_keys`: the scenarios counted under callgrind (default: all)."""
    scratch = tempfile.mkdtemp(prefix="meshprobe-floors-")
    floors = build_floors(scratch)
    deps5, deps10 = h.Deps(5), h.Deps(10)
    cfgs = configs(wasm, floors, deps5, deps10)
    envoys = {}
    for key, label, *_ in SCENARIOS:
        envoys[key] = h.Envoy(envoy, cfgs[key], workers=1, cpu=1)
    # Floor (e) must answer with meshprobe's liveness body and headers, and
    # floor (i) with its readiness answer's (from cache: the warm-up's run).
    answers(envoys["mp_ready"], "mp_ready", "meshprobe readiness")
    reply_check = {"meshprobe": answer_headers(envoys["mp_live"], "mp_live"),
                   "floor_e": answer_headers(envoys["e"], "e"),
                   "meshprobe_ready": answer_headers(envoys["mp_ready"], "mp_ready"),
                   "floor_i": answer_headers(envoys["i"], "i")}
    reply_check["same"] = reply_check["meshprobe"] == reply_check["floor_e"]
    reply_check["same_ready"] = reply_check["meshprobe_ready"] == reply_check["floor_i"]
    # Every scenario answers as it should before it is measured.
    for key, label, *_ in SCENARIOS:
        answers(envoys[key], key, label)
    # Warm up (first readiness result cached, V8 tiering, pools).
    for key, *_ in SCENARIOS:
        h.wrk(envoys[key].port, path_of(key), 1, headers_of(key))
    # Idle: every Envoy at once, no load (the timers of a filter's tick).
    before = {key: e.cpu_seconds() for key, e in envoys.items()}
    time.sleep(IDLE_S)
    idle = {key: (e.cpu_seconds() - before[key]) * 1000 / IDLE_S for key, e in envoys.items()}
    results = {key: [] for key, *_ in SCENARIOS}
    for r in range(rounds):
        for key, label, *_ in SCENARIOS:
            e = envoys[key]
            before = e.cpu_seconds()
            res = h.wrk(e.port, path_of(key), seconds, headers_of(key))
            res["cpu_us"] = (e.cpu_seconds() - before) * 1e6 / max(res["requests"], 1)
            results[key].append(res)
            log(f"round {r + 1} {label}: {res['rps']:.0f} rps, {res['cpu_us']:.2f} us/req, "
                f"p50 {res['p50']:.3f} ms, p99 {res['p99']:.3f} ms, non-2xx {res['non2xx']}")
    out = {}
    for key, label, wat, kind, path, auth in SCENARIOS:
        runs = results[key]
        med = {k: statistics.median(x[k] for x in runs) for k in ("rps", "cpu_us", "p50", "p99", "non2xx")}
        cpus = [x["cpu_us"] for x in runs]
        med["spread_pct"] = (max(cpus) - min(cpus)) / med["cpu_us"] * 100 if med["cpu_us"] else 0
        med["rounds_cpu_us"] = cpus
        med["rss_mib"] = envoys[key].rss_kib() / 1024
        med["idle_ms_per_s"] = idle[key]
        med.update(label=label, module=wat, path=path)
        out[key] = med
    why = cpusplit.available()
    variants = {} if why or repo is None else cfgs_for_variants(repo, scratch, floors, deps5, deps10, log)
    prof = split_all(envoy, envoys, seconds, min(rounds, 3), why, variants, log)
    for e in envoys.values():
        e.close()
    # The same Wasm scenarios once more, traced: VM entries and host calls per request.
    cross = crossings.run(envoy, cfgs, SCENARIOS, log)
    # The same scenarios once more under callgrind: instructions per request.
    counted = instr.run(envoy, configs(wasm, floors, deps5, deps10, patient=True),
                        [s for s in SCENARIOS if instr_keys is None or s[0] in instr_keys], headers_of,
                        requests=instr_requests, log=log)
    deps5.close()
    deps10.close()
    return {"scenarios": out, "reply_check": reply_check, "crossings": cross, "profile": prof,
            "instructions": counted}


def headers_of(key):
    """wrk's headers for scenario `key`: the probe secret where it needs one."""
    auth = next(s[5] for s in SCENARIOS if s[0] == key)
    return (policies.AUTH_HEADER,) if auth else ()


def answers(envoy_proc, key, label):
    """Scenario `key` answers 200 before it is measured."""
    status, _, body = envoy_proc.get(path_of(key), dict(x.split(": ", 1) for x in headers_of(key)))
    if status != 200:
        raise RuntimeError(f"scenario {key} ({label}): {path_of(key)} answered {status}: {body[:200]!r}")


def path_of(key):
    return next(s[4] for s in SCENARIOS if s[0] == key)


# The scenarios the module variants (cpusplit.VARIANTS) are sampled in.
VARIANT_SCENARIOS = ("mp_app", "mp_live", "mp_ready")


def cfgs_for_variants(repo, scratch, floors, deps5, deps10, log):
    """{variant: (label, size, {scenario: Envoy bootstrap})}, the modules
    built into `scratch`."""
    out = {}
    for key, (label, path) in cpusplit.build_variants(repo, scratch, log).items():
        cfg = configs(path, floors, deps5, deps10)
        out[key] = (label, os.path.getsize(path), {k: cfg[k] for k in VARIANT_SCENARIOS})
    return out


def split_all(envoy, envoys, seconds, windows, why, variants, log):
    """perf's split of every scenario, the median part by part of `windows`
    interleaved windows (and one window of each variant), or `why` there is
    none."""
    if why:
        log(f"profile: skipped: {why}")
        return {"why_not": why}
    alloc = cpusplit.allocator_ranges(envoy)
    out = {"scenarios": {}, "variants": {}, "windows": windows}
    got = {key: [] for key, *_ in SCENARIOS}
    for w in range(windows):
        for key, label, *_ in SCENARIOS:
            e = envoys[key]
            got[key].append(cpusplit.split(e, e.port, path_of(key), headers_of(key), seconds, alloc))
            log(f"profile {w + 1} {label}: " + ", ".join(f"{p} {got[key][-1][p]:.1f}" for p in cpusplit.PARTS) + " us/req")
    for key, runs in got.items():
        out["scenarios"][key] = {p: statistics.median(r[p] for r in runs) for p in (*cpusplit.PARTS, "cpu_us")}
    for v, (label, size, cfgs) in variants.items():
        row = {"label": label, "size": size}
        for key, cfg in cfgs.items():
            e = h.Envoy(envoy, cfg, workers=1, cpu=1)
            try:
                answers(e, key, label)
                h.wrk(e.port, path_of(key), 1, headers_of(key))
                row[key] = cpusplit.split(e, e.port, path_of(key), headers_of(key), seconds, alloc)
                log(f"profile {label}, {key}: vm {row[key]['vm']:.1f} us/req")
            except (RuntimeError, OSError, subprocess.CalledProcessError) as err:
                # One variant that fails costs its row, not the run.
                row.setdefault("failed", []).append(f"{key}: {err}")
                log(f"profile {label}, {key}: FAILED: {err}")
            finally:
                e.close()
        out["variants"][v] = row
    return out
