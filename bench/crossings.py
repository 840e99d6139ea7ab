"""VM crossings per request, counted from Envoy's own trace log: each Wasm
scenario runs once more in an Envoy whose wasm component logs at trace
level, which logs every callback Envoy makes into the VM (`[host->vm]`) and
every host call the module makes (`[vm->host]`). After a few requests of
warm-up, the callbacks of the last stream (its context id is their first
argument) and the host calls made inside them are counted."""
import re

import harness as h
import policies

LINE = re.compile(r"^\[[^\]]+\]\[(\d+)\]\[\w+\]\[wasm\] \[(host->vm|host<-vm|vm->host|vm<-host)\] ([\w.]+)(.*)$")
ARGS = re.compile(r"^\((\d+)")


def parse(log):
    """[(callback, context id, [host calls])] of the top-level VM entries, in order."""
    # Per thread: its stack of VM entries, and its current top-level one
    # (another thread's entries, e.g. the main thread's tick, interleave
    # in the log).
    stacks, current, calls = {}, {}, []
    for line in log.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        thread, kind, name, rest = m.groups()
        stack = stacks.setdefault(thread, [])
        if kind == "host->vm":
            if not stack:
                a = ARGS.match(rest or "")
                current[thread] = [name, int(a.group(1)) if a else None, []]
                calls.append(current[thread])
            else:  # e.g. proxy_on_memory_allocate inside a host call
                current[thread][2].append("↳ " + name)
            stack.append(name)
        elif kind == "host<-vm":
            if stack:
                stack.pop()
        elif kind == "vm->host" and stack:
            current[thread][2].append(name.replace("env.", "").replace("wasi_snapshot_preview1.", "wasi."))
    return calls


def last_stream(calls):
    """The callbacks of the last stream (the highest context id created
    with a root context) and their host calls."""
    created = [c[1] for c in calls if c[0] == "proxy_on_context_create" and c[1] is not None]
    streams = [ctx for ctx in created if ctx != 1]
    if not streams:
        return []
    ctx = max(streams)
    return [(name, hc) for name, c, hc in calls if c == ctx and name != "proxy_on_memory_allocate"]


def count(envoy, config, path, auth, warm=3):
    e = h.Envoy(envoy, config, workers=1, trace_wasm=True)
    try:
        hdrs = dict([policies.AUTH_HEADER.split(": ", 1)]) if auth else {}
        for _ in range(warm + 1):
            status, _, _ = e.get(path, hdrs)
        e.stop_gracefully()  # flushes the log
        log = e.log()
    finally:
        e.close()
    stream = last_stream(parse(log))
    return {"status": status, "callbacks": [n for n, _ in stream],
            "host_calls": [c for _, hc in stream for c in hc]}


def run(envoy, configs, scenarios, log=print):
    """{key: {"callbacks": [...], "host_calls": [...]}} of every Wasm scenario."""
    out = {}
    for key, label, wat, kind, path, auth in scenarios:
        if kind in ("none", "native", "scoped", "scale1", "scale100"):
            continue
        out[key] = count(envoy, configs[key], path, auth)
        log(f"crossings {key}: {len(out[key]['callbacks'])} callbacks, {len(out[key]['host_calls'])} host calls")
    return out
