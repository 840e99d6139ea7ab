"""bench/RESULTS.md from one run's figures (bench.py's `results` dict).
Every value, ratio and verdict here is computed from the measurements."""
import statistics

import instr
import vmwork

FLOOR_FILES = [
    ("(a)", "bench/noop.wat", "every callback returns \"continue\"; only the exports Envoy needs"),
    ("(b)", "bench/sdk_exports.wat", "(a) exporting every callback the Rust proxy-wasm SDK 0.2.5 exports, each returning at once"),
    ("(c)", "bench/path_read.wat", "(b) + one `:path` read (`proxy_get_header_map_value`) per request"),
    ("(d)", "bench/local_reply.wat", "the exports of (a); `proxy_on_request_headers` sends `proxy_send_local_response(200, \"ok\")`, no header"),
    ("(e)", "bench/local_reply_headers.wat", "(d) with meshprobe's liveness body and headers (checked at run time, below)"),
    ("(f)", "bench/probe_floor.wat", "(b) + (c) + (e): what a probe answer of a filter built on the Rust SDK cannot avoid"),
    ("(g)", "bench/host_calls.wat", "meshprobe's own traffic with the host and none of its logic: its exports, every request header in one call, the answer of (e), a 20 ms tick reading the clock"),
    ("(h)", "(g) less its answer (bench/cpu.py writes it)", "(g) for app traffic: the request continues"),
    ("(i)", "(g) with a clock read and an `Age` header (bench/cpu.py writes it)", "(g) answering as readiness from cache does: the clock read in the request, meshprobe's readiness headers (checked at run time, below)"),
]


def kib(n):
    return f"{n / 1024:.1f} KiB"


def verdict(ok):
    return "**met**" if ok else "**missed**"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if h.startswith(">") else "---" for h in header) + "|"]
    out[0] = out[0].replace("| >", "| ")
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def paired(cpu, a, b):
    """(median, lowest, highest) over the rounds of a's CPU / b's in the same
    round: the rounds are interleaved, so each pair was measured within
    seconds of each other, and drift of the machine's load between rounds
    cancels out."""
    ra, rb = cpu[a]["rounds_cpu_us"], cpu[b]["rounds_cpu_us"]
    rs = [x / y for x, y in zip(ra, rb) if y]
    return statistics.median(rs), min(rs), max(rs)


def fmt_ratio(r):
    med, lo, hi = r
    return f"{med:.2f}" if lo == hi else f"{med:.2f} ({lo:.2f}–{hi:.2f})"


def goal_rows(res):
    """[(goal, measured, target, met)] of one run, always in this order."""
    cpu = res["cpu"]["scenarios"]
    ratio = lambda a, b: paired(cpu, a, b)[0]
    rtext = lambda a, b: fmt_ratio(paired(cpu, a, b))
    size, mem, load, storm, fan = res["size"], res["memory"], res["load"], res["storm"], res["fan_out"]
    init = mem["initial"]
    mem_max = lambda gauges: max(gauges.values()) if gauges else None
    demo_max, before_max, after_max = mem_max(mem["demo"]), mem_max(storm["memory_before"]), mem_max(storm["memory_after"])
    storm_max = max(storm["hits"].values())
    goals = [
        ("app traffic: meshprobe pass-through / (a) empty filter", rtext("mp_app", "a"), "≤ 1.05", ratio("mp_app", "a") <= 1.05),
        ("liveness: meshprobe / (d) minimal local reply", rtext("mp_live", "d"), "≤ 1.10", ratio("mp_live", "d") <= 1.10),
        ("readiness from cache (5 checks): meshprobe / (d) minimal local reply", rtext("mp_ready", "d"), "≤ 1.15", ratio("mp_ready", "d") <= 1.15),
        ("readiness from cache / native `health_check` (the first target)", rtext("mp_ready", "native"), "≤ 1.5", ratio("mp_ready", "native") <= 1.5),
        ("dist/meshprobe.wasm size", f"{size['bytes']:,} bytes ({kib(size['bytes'])})", f"≤ {size['limit']:,} bytes (200 KiB)", size["bytes"] <= size["limit"]),
    ]
    for label, v in (("after on_configure, demo policy", demo_max), ("after on_configure, storm policy", before_max),
                     (f"after the {storm['seconds']} s storm", after_max)):
        goals.append((f"linear memory per VM (largest VM) {label}",
                      "no gauge" if v is None else f"{v:,} bytes (initial + {kib(v - init)})",
                      f"≤ initial + 1 MiB ({init + 2**20:,} bytes)", v is not None and v <= init + 2**20))
    l100 = load[100]["median_max_ms"]
    goals += [
        ("on_configure, 100 endpoints / 1,000 checks (slowest call of a start, median of starts)", f"{l100:.1f} ms", "< 50 ms", l100 < 50),
        ("per-probe cost: readiness 100-endpoint / 1-endpoint policy", rtext("scale100", "scale1"), "≤ 1.05 (≈ 1.0)", ratio("scale100", "scale1") <= 1.05),
        (f"storm: callouts per dependency in {storm['seconds']} s at TTL {storm['ttl_s']} s (most of a, b, c)", f"{storm_max}", f"≤ {storm['limit']}", storm_max <= storm["limit"]),
        ("fan-out: p50 of a probe over 10 dependencies of 100 ms each", f"{fan['p50_ms']:.1f} ms", "≤ 120 ms", fan["p50_ms"] <= 120),
    ]
    return goals


SPLIT_PAIRS = [("mp_app", "a", "app traffic: meshprobe pass-through − (a) empty filter"),
               ("mp_app", "c", "app traffic: meshprobe pass-through − (c) `:path` read"),
               ("h", "a", "app traffic: (h) meshprobe's host calls − (a)"),
               ("mp_app", "h", "app traffic: meshprobe pass-through − (h): its logic"),
               ("g", "d", "liveness: (g) meshprobe's host calls − (d)"),
               ("mp_live", "g", "liveness: meshprobe − (g): its logic"),
               ("i", "g", "readiness from cache: (i) the clock and `Age` − (g)"),
               ("mp_ready", "i", "readiness from cache: meshprobe − (i): its logic"),
               ("mp_live", "d", "liveness: meshprobe − (d) minimal local reply"),
               ("mp_live", "f", "liveness: meshprobe − (f)"),
               ("mp_ready", "d", "readiness from cache: meshprobe − (d) minimal local reply"),
               ("mp_ready", "f", "readiness from cache: meshprobe − (f)")]


def split_section(res_cpu, cpu, size_bytes):
    """Where a request's CPU goes (bench/cpusplit.py), per scenario and per
    part, and meshprobe's difference to its floors part by part."""
    prof = res_cpu.get("profile") or {"why_not": "not measured in this run"}
    L = ["## Where a request's CPU goes", ""]
    if "why_not" in prof:
        return L + [f"Not measured: {prof['why_not']}.", ""]
    parts = ("vm", "malloc", "envoy", "kernel", "libc")
    sc = prof["scenarios"]
    L += [f"Envoy sampled by `perf record -e cpu-clock -F 4000` in more windows of each scenario "
          f"(after the rounds above; the median part by part of {prof.get('windows', 1)} interleaved windows), each sample put where it fell: **vm** the code V8 generated (the module's "
          "compiled Wasm and V8's stubs into and out of it), **malloc** Envoy's allocator (tcmalloc, the "
          "binary's `google_malloc` section), **envoy** the rest of the Envoy binary (HTTP, the Wasm host, "
          "V8's runtime; the binary is stripped, so no finer), **kernel**, **libc** (with vdso). µs per "
          "request: the part's share of the samples × the CPU µs per request of that window. Other windows "
          "than the rounds above, so totals differ from those medians by the run's noise; the vm part is "
          "the steadiest.", ""]
    L += table(["scenario"] + [f">{p} µs" for p in parts] + [">total µs"],
               [(cpu[k]["label"], *(f"{v[p]:.1f}" for p in parts), f"{v['cpu_us']:.1f}") for k, v in sc.items()])
    L += ["", "meshprobe minus its floors, part by part (µs per request, same windows):", ""]
    L += table(["difference"] + [f">{p}" for p in parts] + [">total"],
               [(label, *(f"{sc[a][p] - sc[b][p]:+.1f}" for p in parts), f"{sc[a]['cpu_us'] - sc[b]['cpu_us']:+.1f}")
                for a, b, label in SPLIT_PAIRS if a in sc and b in sc])
    var = prof.get("variants") or {}
    keys = ["mp_app", "mp_live", "mp_ready"]
    if var and keys:
        names = {"mp_app": "pass-through", "mp_live": "liveness", "mp_ready": "readiness"}
        L += ["", "The module built otherwise (bench/cpusplit.py `VARIANTS`), one window each, sampled the same way: "
              "built for speed instead of size (what inlining saves inside the VM, and what it costs in bytes).", ""]
        rows = [("dist/meshprobe.wasm: opt-level \"z\", `just build` (the release)", f"{size_bytes:,}",
                 *(f"{sc[k]['vm']:.1f}" for k in keys))]
        rows += [(v["label"], f"{v['size']:,}", *(f"{v[k]['vm']:.1f}" if k in v else "failed" for k in keys))
                 for v in var.values()]
        L += table(["module", ">bytes"] + [f">vm µs, {names[k]}" for k in keys], rows)
        L += [f"- {v['label']}: " + "; ".join(v["failed"]) for v in var.values() if v.get("failed")]
    return L + [""]


def render(res, notes=None, baseline=None):
    cpu = res["cpu"]["scenarios"]
    us = lambda k: cpu[k]["cpu_us"]
    ratio = lambda a, b: paired(cpu, a, b)[0]
    size, mem, load, storm, fan = res["size"], res["memory"], res["load"], res["storm"], res["fan_out"]
    init = mem["initial"]
    m = res["meta"]
    L = ["# meshprobe benchmark results", "",
         f"Written by `just bench` (bench/bench.py) on {m['date']}; every figure, ratio and verdict below is "
         "computed by that run. The analysis of missed goals is bench/NOTES.md, appended at the end.", "",
         f"- machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB; load average before the run: {m['load_before']}",
         f"- Envoy: {m['envoy']}, V8",
         f"- module: dist/meshprobe.wasm, {size['bytes']} bytes ({kib(size['bytes'])}), sha256 {m['wasm_sha'][:16]}…",
         f"- CPU per request: each scenario in its own Envoy, one worker pinned to CPU 1, wrk (1 thread, "
         f"16 connections) on CPU 0; {m['rounds']} rounds of {m['seconds']} s per scenario, interleaved; medians. "
         "CPU is the Envoy process's user + system time over the requests served. A CPU ratio is the median over "
         "the rounds of the ratio within each round, with the lowest and the highest in brackets.",
         f"- mode: {m['mode']}; the whole run took {m['elapsed_s'] / 60:.1f} min", ""]

    goals = goal_rows(res)
    counted = res["cpu"].get("instructions")
    L += ["## Goals (issue 13)", ""]
    if baseline:
        before = goal_rows(baseline)
        L += [f"Before: the figures of the baseline run in bench/baseline.json ({baseline['meta']['date']}, "
              f"module sha256 {baseline['meta']['wasm_sha'][:16]}…, {baseline['meta']['mode']} mode, load average before "
              f"that run {baseline['meta']['load_before']}), same bench. Ratios of two runs compare; their µs do not.", ""]
        L += table(["goal", ">before", ">now", "target", "verdict", ">instructions (callgrind)"],
                   [(g, b[1], v, t, verdict(ok), instr.goal_cell(counted, g))
                    for (g, v, t, ok), b in zip(goals, before)])
    else:
        L += table(["goal", ">measured", "target", "verdict", ">instructions (callgrind)"],
                   [(g, v, t, verdict(ok), instr.goal_cell(counted, g)) for g, v, t, ok in goals])
    met = sum(ok for *_, ok in goals)
    by_instr = [instr.goal_cell(counted, g) for g, *_ in goals]
    L += ["", f"{met} of {len(goals)} goals met (CPU time for the ratios; the verdict column)."]
    if any(by_instr):
        L += [f"Counted in instructions instead (exact, no noise; not time: section \"Instructions per request\"): "
              f"{sum(c.endswith('(met)') for c in by_instr)} of the {sum(bool(c) for c in by_instr)} CPU ratios "
              "met."]
    L += [""]

    # ------------------------------------------------------------ cpu table
    L += ["## CPU per request", ""]
    rows = []
    for k, r in cpu.items():
        spread = f"{r['spread_pct']:.0f}%" if len(r["rounds_cpu_us"]) > 1 else "n/a"
        rows.append((r["label"], f"`{r['path']}`", f"{r['rps']:.0f}", f"{r['cpu_us']:.2f}", spread,
                     f"{r['p50']:.3f}", f"{r['p99']:.3f}", f"{r['non2xx']:.0f}", f"{r['rss_mib']:.0f}",
                     f"{r['idle_ms_per_s']:.1f}" if "idle_ms_per_s" in r else "n/a"))
    L += table(["scenario", "path", ">requests/s", ">CPU µs/request", ">spread", ">p50 ms", ">p99 ms", ">non-2xx",
                ">Envoy RSS MiB", ">idle CPU ms/s"], rows)
    L += ["", "spread: (slowest − fastest round) / median, the noise of that figure in this run. idle CPU: "
          "the Envoy's CPU time per second over 10 s without load, before the rounds (a 1 ms/s resolution: "
          "the kernel's clock ticks), what a filter's timers cost a proxy that serves nothing.", ""]

    # ------------------------------------------------------------ ladder
    def ladder(keys, title):
        keys = [k for k in keys if k in cpu]  # a run from before a floor was added
        rows, prev = [], None
        first = keys[0]
        for k in keys:
            step = "" if prev is None else fmt_ratio(paired(cpu, k, prev))
            delta = "" if prev is None else f"{us(k) - us(prev):+.2f}"
            rows.append((cpu[k]["label"], f"{us(k):.2f}", step, delta, f"{ratio(k, first):.2f}"))
            prev = k
        return [f"### {title}", ""] + table(["step", ">µs/request", ">× previous step", ">Δ µs", f">× first step"], rows) + [""]
    L += ["## The ladder of floors", "",
          "Each step adds one thing to the one before; its ratio and µs difference are what that thing costs "
          "(same run). The floor modules:", ""]
    L += table(["floor", "module", "what it does"], FLOOR_FILES)
    rc = res["cpu"]["reply_check"]
    L += ["", "Floor (e) answers with the same status, body and headers as meshprobe's liveness (Envoy's own "
          f"`date`, `server`, `content-length` aside): **{'yes' if rc['same'] else 'NO'}**"
          + ("." if rc["same"] else f": meshprobe {rc['meshprobe']}, floor (e) {rc['floor_e']}."), ""]
    if "same_ready" in rc:
        L += ["Floor (i) answers with the same status, body and headers as meshprobe's readiness from cache "
              f"(the `Age` header's seconds aside): **{'yes' if rc['same_ready'] else 'NO'}**"
              + ("." if rc["same_ready"] else f": meshprobe {rc['meshprobe_ready']}, floor (i) {rc['floor_i']}."), ""]
    L += ladder(["none", "a", "b", "c", "h", "mp_app"], "App traffic (pass-through)")
    L += ladder(["native", "d", "e", "f", "g", "mp_live"], "Probe answers")
    L += ladder([k for k in ("g", "i", "mp_ready") if k in cpu], "Readiness from cache")
    cross = res["cpu"].get("crossings", {})
    if cross:
        L += ["VM crossings of one request, counted from Envoy's trace log (a separate, traced Envoy per "
              "scenario; the callbacks Envoy makes into the VM for the stream, and the host calls the module "
              "makes inside them; ↳ a callback into the VM during a host call):", ""]
        def calls(names):
            counts = {}
            for n in names:
                counts[n] = counts.get(n, 0) + 1
            return ", ".join(f"`{n}`" + (f" ×{c}" if c > 1 else "") for n, c in counts.items()) or "none"
        L += table(["scenario", ">VM entries", ">host calls", "callbacks", "host calls"],
                   [(cpu[k]["label"], len(v["callbacks"]) + sum(c.startswith("↳") for c in v["host_calls"]),
                     sum(not c.startswith("↳") for c in v["host_calls"]),
                     calls([c.replace("proxy_on_", "") for c in v["callbacks"]]), calls(v["host_calls"]))
                    for k, v in cross.items()])
        L += [""]
    L += ["Other ratios (same run):", ""]
    other = [("(d) minimal local reply / (a) empty filter passing to a direct_response", "d", "a"),
             ("(a) empty filter / no filter: any Wasm filter on app traffic", "a", "none"),
             ("meshprobe pass-through / no filter", "mp_app", "none"),
             ("meshprobe scoped to probe routes / no filter (app traffic)", "mp_scoped", "none"),
             ("(d) minimal local reply / native `health_check`", "d", "native"),
             ("meshprobe liveness / (f) everything a Rust SDK probe answer cannot avoid", "mp_live", "f"),
             ("meshprobe readiness from cache / (f)", "mp_ready", "f"),
             ("(h) meshprobe's host calls / (a) empty filter (app traffic)", "h", "a"),
             ("meshprobe pass-through / (h): meshprobe's logic on app traffic", "mp_app", "h"),
             ("(g) meshprobe's host calls / (d) minimal local reply", "g", "d"),
             ("meshprobe liveness / (g): meshprobe's logic on a liveness probe", "mp_live", "g"),
             ("(i) readiness's host calls / (d) minimal local reply", "i", "d"),
             ("meshprobe readiness from cache / (i): meshprobe's logic on a readiness probe", "mp_ready", "i"),
             ("meshprobe liveness / native `health_check`", "mp_live", "native")]
    L += table(["ratio", ">value"], [(n, fmt_ratio(paired(cpu, a, b))) for n, a, b in other if a in cpu and b in cpu]) + [""]
    L += split_section(res["cpu"], cpu, res["size"]["bytes"])
    L += instr.section(counted, {k: v["label"] for k, v in cpu.items()}, table)
    L += vmwork.section(res.get("vm_work"))

    # ------------------------------------------------------------ size
    L += ["## Size", "",
          f"dist/meshprobe.wasm: {size['bytes']:,} bytes ({kib(size['bytes'])}); goal ≤ {size['limit']:,} bytes: "
          f"{verdict(size['bytes'] <= size['limit'])}.", "",
          f"Exports ({len(size['exports'])}): " + ", ".join(f"`{e}`" for e in size["exports"]), ""]
    tw = size.get("twiggy")
    if tw:
        t = size["twin"]
        diff = t["stripped_bytes"] - size["bytes"]
        L += [f"Where the bytes go: `twiggy top` ({tw['version']}) on a named twin of the module, built with "
              f"`{t['command']}`. Without its custom sections (names) the twin is {t['stripped_bytes']:,} bytes, "
              + ("byte for byte dist/meshprobe.wasm." if t["identical"] else
                 f"{abs(diff):,} bytes {'more' if diff > 0 else 'less'} than dist/meshprobe.wasm (the linker's output "
                 "with symbols is not byte for byte the one without): the items are the module's, to within that.")
              + " Custom sections are left out; % is of dist/meshprobe.wasm. An item bears the name of the function "
              "the optimizers kept: code inlined into it counts under that name (e.g. the policy's decoding under "
              "`on_configure`).", ""]
        pct = lambda b: f"{b / size['bytes'] * 100:.2f}%"
        name = lambda r: "`" + r["name"].replace("|", "\\|").replace("`", "'")[:110] + "`"
        L += ["Top 15 by shallow size (the item's own bytes):", ""]
        L += table([">shallow bytes", ">%", "item"], [(f"{r['shallow_size']:,}", pct(r["shallow_size"]), name(r)) for r in tw["shallow"]])
        L += ["", "Top 15 by retained size (the item and everything only it reaches; the indirect-call "
              "table `table[0]` / `elem[0]`, which reaches most of the code, left out):", ""]
        L += table([">retained bytes", ">%", ">shallow bytes", "item"],
                   [(f"{r['retained_size']:,}", pct(r["retained_size"]), f"{r['shallow_size']:,}", name(r)) for r in tw["retained"]])
        L += ["", "Shallow bytes per crate (meshprobe: per module), summed over every item, top 15:", ""]
        L += table(["crate or module", ">bytes", ">%"],
                   [(o.replace("|", "\\|"), f"{b:,}", pct(b)) for o, b in tw["owners"][:15]])
        L += [""]
    else:
        L += [size.get("twiggy_note", "no twiggy table"), ""]

    # ------------------------------------------------------------ memory
    def gauge_row(label, gauges):
        if not gauges:
            return (label, "0", "no gauge", "")
        v = max(gauges.values())
        return (label, len(gauges), f"{v:,}", f"{kib(v - init)}")
    L += ["## Linear memory per VM", "",
          f"The module's gauge `meshprobe_vm_memory_bytes` (one per VM, from Envoy's `/stats`), largest VM. "
          f"Initial memory: {init // 65536} pages = {init:,} bytes (wasm-objdump, memory section). Goal: ≤ 1 MiB above it.", ""]
    L += table(["when", ">VMs", ">bytes (largest VM)", ">above initial"],
               [gauge_row("after on_configure, demo policy (`envoy/demo/envoy.yaml`, 2 workers)", mem["demo"]),
                gauge_row("after on_configure, storm policy (2 workers)", storm["memory_before"]),
                gauge_row(f"after the {storm['seconds']} s storm ({storm['probes']:,} probes)", storm["memory_after"]),
                gauge_row("after on_configure, 100 endpoints / 1,000 checks (1 worker; for reference)", load[100]["memory"])])
    L += [""]

    # ------------------------------------------------------------ scale
    L += ["## Policy scale", "",
          "on_configure wall time, from Envoy's own log: Envoy runs with the wasm component at trace level "
          "and microsecond timestamps, and logs `[host->vm] proxy_on_configure(...)` when it enters the VM and "
          "`[host<-vm] proxy_on_configure return: 1` when the call returns, on the same thread. The time between "
          "is the whole on_configure: reading the configuration, decoding and validating the policy, building "
          "the engine. It includes the trace logging of every host call made meanwhile (counted below), so it is "
          "an upper bound. Envoy calls on_configure once per VM it configures (three with one worker: two on "
          "the main thread, one on the worker); the figure is the slowest call of each start, median of "
          f"{len(load[100]['max_ms'])} starts.", ""]
    rows = []
    for n in (1, 100):
        calls = load[n]["calls"]
        per_start = ["/".join(f"{ms:.1f}" for ms, _, _ in c) for c in calls]
        rows.append((f"{n} endpoint(s), {n * 10:,} checks", f"{load[n]['policy_bytes']:,}", "; ".join(per_start),
                     f"{load[n]['median_max_ms']:.1f}", load[n]["host_calls"]))
    L += table(["policy", ">JSON bytes", "on_configure calls per start, ms", ">slowest (median)", ">host calls in one call"], rows)
    L += ["", f"Per-probe cost (readiness from cache, same request and 10 checks): 1-endpoint policy {us('scale1'):.2f} µs, "
          f"100-endpoint policy, last endpoint {us('scale100'):.2f} µs: ratio {fmt_ratio(paired(cpu, 'scale100', 'scale1'))} "
          f"(spreads {cpu['scale1']['spread_pct']:.0f}% and {cpu['scale100']['spread_pct']:.0f}% in this run).", ""]

    # ------------------------------------------------------------ storm, fan-out
    L += ["## Storm", "",
          f"wrk, 2 threads, 64 connections, {storm['seconds']} s on `/readyz` (3 checks, TTL {storm['ttl_s']} s, "
          f"2 Envoy workers): {storm['probes']:,} probes, {storm['non2xx']} non-2xx.", ""]
    L += table(["dependency", ">requests seen by the server", ">Envoy `upstream_rq_total`", "target"],
               [(n, storm["hits"][n], storm["upstream_rq_total"][n], f"≤ {storm['limit']}") for n in "abc"])
    L += ["", "## Fan-out", "",
          f"10 dependencies that each answer after 100 ms, no cache, {fan['probes']} sequential probes: "
          f"p50 {fan['p50_ms']:.1f} ms, max {fan['max_ms']:.1f} ms (target p50 ≤ 120 ms; sequential would be 1000 ms).", ""]
    if notes:
        L += [notes.rstrip(), ""]
    return "\n".join(L)
