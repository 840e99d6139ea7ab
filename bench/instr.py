"""Instructions per request: every scenario of cpu.SCENARIOS in its own Envoy
(one worker) under valgrind's callgrind, which counts the instructions the
process executes, V8's generated code included (`--smc-check=all-non-file`).
The count does not depend on what else the machine does, so its ratios
resolve differences far below the CPU rounds' noise. It is not time: a cache
miss costs no instruction.

Per scenario: warm-up requests, then the idle rate (counters zeroed, no load
for IDLE_S, dumped: the timers of the filter and of Envoy), then `reps`
times `requests` sequential requests on one keep-alive connection, dumped
each time. A request's count is the dump's total less the idle rate times
the load's wall time (under valgrind the timers keep firing while requests
are slow), over the requests. The split by where the instructions ran
(PARTS) tells Envoy's own code from the code V8 generated and from libc."""
import collections, concurrent.futures, glob, http.client, os, re, shutil, statistics, subprocess, sys, time

import harness as h

IDLE_S = 3
WARM = 200
# Where an instruction ran, for the split: "envoy" Envoy's binary; "nofile"
# code with no file below VM_CODE (next to Envoy's binary; it runs in an
# Envoy with no Wasm filter too); "vm" code with no file above it, where V8
# puts the code it generates (the module compiled, its stubs); "libc".
PARTS = ("envoy", "nofile", "vm", "libc", "other")
SHOWN = PARTS[:4]
VM_CODE = 0x1000_0000


def available():
    """None when callgrind can run, else why not."""
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            return f"{tool} is not installed (Debian package valgrind)"
    return None


def part_of(obj, fn):
    if obj == "???":
        try:
            return "vm" if int(fn, 16) >= VM_CODE else "nofile"
        except (TypeError, ValueError):
            return "nofile"
    base = os.path.basename(obj)
    if base == "envoy":
        return "envoy"
    if base.startswith(("libc.so", "libc-", "libm.so", "libpthread")):
        return "libc"
    return "other"


def parse(path):
    """{part: self instructions} of one callgrind dump (its cost lines;
    the inclusive cost after each `calls=` line is skipped)."""
    names, out = {}, collections.Counter()
    ob = fn_ob = fn = None
    skip = False

    def name(kind, v):
        m = re.match(r"\((\d+)\)(?: (.*))?$", v)
        if not m:
            return v
        if m.group(2) is not None:
            names[(kind, m.group(1))] = m.group(2)
        return names.get((kind, m.group(1)), v)

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("ob="):
                ob = name("ob", line[3:])
            elif line.startswith("fn="):
                fn_ob, fn = ob, name("fn", line[3:])
            elif line.startswith("cob="):
                name("ob", line[4:])
            elif line.startswith("cfn="):
                name("fn", line[4:])
            elif line.startswith("calls="):
                skip = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip:
                    skip = False
                    continue
                parts = line.split()
                if len(parts) >= 2 and fn_ob is not None:
                    out[part_of(fn_ob, fn)] += int(parts[1])
    return out


def dump(pid, out_dir, tag):
    """Dump the counters since the last zeroing; {part: instructions}."""
    before = set(glob.glob(os.path.join(out_dir, "cg.out.*")))
    subprocess.run(["callgrind_control", "-d", tag, str(pid)], check=True, capture_output=True, timeout=120)
    deadline = time.time() + 60
    while time.time() < deadline:
        new = set(glob.glob(os.path.join(out_dir, "cg.out.*"))) - before
        if new:
            path = max(new, key=os.path.getmtime)
            time.sleep(0.2)  # the dump is written by the time control returns; be safe
            return parse(path)
        time.sleep(0.1)
    raise RuntimeError(f"callgrind wrote no dump for {tag}")


def zero(pid):
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True, timeout=120)


def load(port, path, headers, n):
    """n sequential requests on one connection; the seconds they took."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t = time.perf_counter()
    for _ in range(n):
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{path} answered {r.status}")
    took = time.perf_counter() - t
    conn.close()
    return took


def one(envoy, cfg, path, headers, requests, reps):
    """{"per_request": [instructions per request, one a rep], "parts": {part:
    per request, median rep}, "idle_per_s": instructions per second idle}."""
    out_dir = h.tempfile.mkdtemp(prefix="meshprobe-callgrind-")
    wrap = ["valgrind", "--tool=callgrind", "--smc-check=all-non-file",
            f"--callgrind-out-file={os.path.join(out_dir, 'cg.out')}"]
    e = h.Envoy(envoy, cfg, workers=1, wrap=wrap, ready_s=300)
    try:
        pid = e.proc.pid
        load(e.port, path, headers, WARM)
        zero(pid)
        t = time.perf_counter()
        time.sleep(IDLE_S)
        idle = dump(pid, out_dir, "idle")
        idle_s = time.perf_counter() - t
        rate = {p: v / idle_s for p, v in idle.items()}
        per, parts = [], []
        for r in range(reps):
            zero(pid)
            took = load(e.port, path, headers, requests)
            got = dump(pid, out_dir, f"load{r}")
            split = {p: (got.get(p, 0) - rate.get(p, 0) * took) / requests for p in PARTS}
            parts.append(split)
            per.append(sum(split.values()))
        mid = sorted(range(reps), key=lambda i: per[i])[reps // 2]
        return {"per_request": per, "parts": parts[mid], "idle_per_s": sum(rate.values())}
    finally:
        e.close()
        shutil.rmtree(out_dir, ignore_errors=True)


def run(envoy, cfgs, scenarios, headers_of, requests=500, reps=3, log=print):
    """{key: one()} of every scenario, two Envoys at a time (one a CPU), or
    {"why_not": reason}."""
    why = available()
    if why:
        log(f"instructions: skipped: {why}")
        return {"why_not": why}
    t0 = time.time()

    def job(s):
        key, label, _, _, path, _ = s
        hdrs = dict(x.split(": ", 1) for x in headers_of(key))
        res = one(envoy, cfgs[key], path, hdrs, requests, reps)
        log(f"instructions {label}: " + ", ".join(f"{x:,.0f}" for x in res["per_request"]) + " per request")
        return key, res

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        out = dict(pool.map(job, scenarios))
    return {"scenarios": out, "requests": requests, "reps": reps, "seconds": time.time() - t0}


# ---------------------------------------------------------------- report
# The CPU goals of issue 13 as instruction ratios: (goal, scenario, floor, target).
GOALS = [("app traffic: meshprobe pass-through / (a) empty filter", "mp_app", "a", 1.05),
         ("liveness: meshprobe / (d) minimal local reply", "mp_live", "d", 1.10),
         ("readiness from cache (5 checks): meshprobe / (d) minimal local reply", "mp_ready", "d", 1.15),
         ("readiness from cache / native `health_check` (the first target)", "mp_ready", "native", 1.5),
         ("per-probe cost: readiness 100-endpoint / 1-endpoint policy", "scale100", "scale1", 1.05)]


def per(sc, key):
    """The median rep's instructions per request of scenario `key`."""
    return statistics.median(sc[key]["per_request"])


def goal_ratio(counted, a, b):
    """(ratio, text) of a's instructions / b's, or None when not counted."""
    sc = (counted or {}).get("scenarios") or {}
    if a not in sc or b not in sc:
        return None
    r = per(sc, a) / per(sc, b)
    return r, f"{r:.3f}"


def goal_cell(counted, goal):
    """The goal table's cell for `goal` counted in instructions: "" when it
    is not a CPU goal or was not counted."""
    for g, a, b, target in GOALS:
        got = goal_ratio(counted, a, b) if g == goal else None
        if got:
            return f"{got[1]} ({'met' if got[0] <= target else 'missed'})"
    return ""


def section(counted, labels, table):
    """RESULTS.md's section on instructions per request; `labels` {key: label},
    `table` report.table."""
    L = ["## Instructions per request (callgrind)", ""]
    if not counted or "why_not" in counted:
        return L + [f"Not measured: {(counted or {}).get('why_not', 'not in this run')}.", ""]
    sc, n, reps = counted["scenarios"], counted["requests"], counted["reps"]
    fmt = lambda x: f"{x:,.0f}"
    L += [f"Each scenario of the CPU table in its own Envoy (one worker) under `valgrind --tool=callgrind "
          f"--smc-check=all-non-file`, which counts every instruction the process executes, V8's generated "
          f"code included. {reps} × {n} sequential requests on one keep-alive connection after {WARM} warm-up "
          f"requests; a request's count is the process's instructions over those requests less its idle rate "
          f"(measured over {IDLE_S} s just before: timers keep firing while valgrind slows the requests), "
          f"median of the {reps}. The count does not depend on the machine's other load: the spread is the "
          "figure's noise within the run (the idle subtraction's); two runs of the same module differ by up to "
          "2% (each Envoy is a new process: its hash seeds and addresses differ). It is not time (a cache miss costs no instruction), so "
          "it shows where the work is, and the CPU rounds above what it costs. Counted in "
          f"{counted['seconds'] / 60:.1f} min, two Envoys at a time.", "",
          "The split, by where the instructions ran: **envoy** Envoy's binary (HTTP, the Wasm host, V8's "
          "runtime and builtins, tcmalloc; stripped, so no finer); **no file** code valgrind finds in no file, "
          "next to Envoy's binary (below 256 MiB; it runs in the Envoy with no filter too, so it is Envoy's); "
          "**vm** code in no file above that, where V8 puts the code it generates: the module compiled, and "
          "V8's stubs into and out of it; **libc**.", ""]
    rows = []
    for k, v in sc.items():
        xs = v["per_request"]
        spread = (max(xs) - min(xs)) / per(sc, k) * 100
        rows.append((labels.get(k, k), fmt(per(sc, k)), f"{spread:.1f}%",
                     *(fmt(v["parts"].get(p, 0)) for p in SHOWN), fmt(v["idle_per_s"])))
    L += table(["scenario", ">instructions/request", ">spread", ">envoy", ">no file", ">vm", ">libc",
                ">idle instructions/s"], rows)
    L += ["", "The CPU goals counted in instructions (same run):", ""]
    grows = []
    for goal, a, b, target in GOALS:
        got = goal_ratio(counted, a, b)
        if got:
            grows.append((goal, got[1], f"≤ {target:.2f}", "**met**" if got[0] <= target else "**missed**"))
    L += table(["goal", ">instructions ratio", "target", "verdict"], grows)
    for keys, title in ((["none", "a", "b", "c", "h", "mp_app"], "App traffic (pass-through)"),
                        (["native", "d", "e", "f", "g", "mp_live"], "Probe answers"),
                        (["g", "i", "mp_ready"], "Readiness from cache")):
        keys = [k for k in keys if k in sc]
        L += ["", f"### Ladder in instructions: {title}", ""]
        rows, prev = [], None
        for k in keys:
            d = lambda p: sc[k]["parts"].get(p, 0) - sc[prev]["parts"].get(p, 0)
            rows.append((labels.get(k, k), fmt(per(sc, k)),
                         "" if prev is None else f"{per(sc, k) / per(sc, prev):.3f}",
                         "" if prev is None else f"{per(sc, k) - per(sc, prev):+,.0f}",
                         *(("",) * len(SHOWN) if prev is None else (f"{d(p):+,.0f}" for p in SHOWN)),
                         f"{per(sc, k) / per(sc, keys[0]):.3f}"))
            prev = k
        L += table(["step", ">instructions", ">× previous", ">Δ", ">Δ envoy", ">Δ no file", ">Δ vm", ">Δ libc",
                    ">× first"], rows)
    return L + [""]



def main():
    """python3 bench/instr.py ENVOY WASM [KEY,KEY...]: count scenarios of
    cpu.SCENARIOS (all by default) alone, without the rest of the bench."""
    import json, tempfile
    import cpu  # cpu imports this module
    envoy, wasm = sys.argv[1], os.path.abspath(sys.argv[2])
    keys = sys.argv[3].split(",") if len(sys.argv) > 3 else None
    deps5, deps10 = h.Deps(5), h.Deps(10)
    try:
        cfgs = cpu.configs(wasm, cpu.build_floors(tempfile.mkdtemp(prefix="meshprobe-floors-")), deps5, deps10, patient=True)
        res = run(envoy, cfgs, [s for s in cpu.SCENARIOS if keys is None or s[0] in keys], cpu.headers_of,
                  log=lambda m: print(m, file=sys.stderr, flush=True))
        print(json.dumps(res, indent=1))
    finally:
        h.stop_all()


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
