"""Policy scale: the wall time of `proxy_on_configure`, read from Envoy's own
log. Envoy runs with the wasm component at trace level and microsecond
timestamps: it logs `[host->vm] proxy_on_configure(...)` when it enters the
VM and `[host<-vm] proxy_on_configure return: 1` when the call returns, on
the thread that made it. The time between the two is the whole
on_configure (reading the configuration, decoding and validating the
policy, building the engine, defining metrics), plus the trace logging of
each host call made meanwhile (counted), so it is an upper bound."""
import json, re, statistics, time
from datetime import datetime

import harness as h
import policies

ENTER = re.compile(r"^\[([\d-]+ [\d:.]+)\]\[(\d+)\]\[\w+\]\[wasm\] \[host->vm\] proxy_on_configure\(")
LEAVE = re.compile(r"^\[([\d-]+ [\d:.]+)\]\[(\d+)\]\[\w+\]\[wasm\] \[host<-vm\] proxy_on_configure return: (\d+)")
HOSTCALL = re.compile(r"^\[[^\]]+\]\[(\d+)\]\[\w+\]\[wasm\] \[vm->host\] ")


def stamp(text):
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")


def configure_calls(log):
    """[(ms, returned, host calls)] of every proxy_on_configure in the log."""
    open_calls, calls = {}, []
    for line in log.splitlines():
        m = ENTER.match(line)
        if m:
            open_calls[m.group(2)] = [stamp(m.group(1)), 0]
            continue
        m = HOSTCALL.match(line)
        if m and m.group(1) in open_calls:
            open_calls[m.group(1)][1] += 1
            continue
        m = LEAVE.match(line)
        if m and m.group(2) in open_calls:
            start, n = open_calls.pop(m.group(2))
            calls.append(((stamp(m.group(1)) - start).total_seconds() * 1000, int(m.group(3)), n))
    return calls


def memory_gauges(env, wait_s=3.0):
    """{stat name: bytes} of every VM's meshprobe_vm_memory_bytes gauge.
    It is published on the tick (20 ms): wait for the first, then 0.3 s
    more so every VM has ticked."""
    def read():
        return {k: v for k, v in env.stats().items() if k.endswith("vm_memory_bytes")}
    deadline = time.time() + wait_s
    while not read() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return read()


def run(envoy, wasm, rounds, log=print):
    """Load the 1-endpoint and the 100-endpoint policy `rounds` times each,
    interleaved (one worker: three on_configure calls per start)."""
    deps = h.Deps(10)
    clusters = "".join(h.cluster(f"c{i}", p) for i, p in enumerate(deps.ports()))
    out = {n: {"calls": [], "max_ms": [], "memory": {}} for n in (1, 100)}
    for r in range(rounds):
        for n in (1, 100):
            policy = policies.scale(n)
            e = h.Envoy(envoy, h.bootstrap(h.wasm_filter(wasm, policy), h.APP_ROUTE, clusters),
                        workers=1, trace_wasm=True)
            try:
                out[n]["memory"] = memory_gauges(e)
            finally:
                e.stop_gracefully()  # flushes the log
                text = e.log()
                e.close()
            calls = configure_calls(text)
            loaded = f"policy loaded: {n} endpoint(s), {n * 10} check(s)" in text
            if not calls or not loaded or any(ret != 1 for _, ret, _ in calls):
                raise RuntimeError(f"{n}-endpoint policy: no successful on_configure in the log (loaded: {loaded})")
            out[n]["calls"].append(calls)
            out[n]["max_ms"].append(max(ms for ms, _, _ in calls))
            log(f"load round {r + 1}, {n} endpoint(s): on_configure "
                + ", ".join(f"{ms:.1f} ms ({k} host calls)" for ms, _, k in calls))
    deps.close()
    for n in out:
        out[n]["median_max_ms"] = statistics.median(out[n]["max_ms"])
        out[n]["host_calls"] = max(k for calls in out[n]["calls"] for _, _, k in calls)
        out[n]["policy_bytes"] = len(json.dumps(policies.scale(n)))
    return out
