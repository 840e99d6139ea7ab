"""Under load: linear memory per VM (the module's own gauge), the probe storm
(callouts per dependency per TTL) and the fan-out (10 slow dependencies in
parallel)."""
import re, statistics, subprocess, time, urllib.request

import harness as h
import policies
from scale import memory_gauges


def initial_memory(wasm):
    """The module's initial linear memory in bytes (memory section's initial
    pages x 64 KiB, read with wasm-objdump)."""
    out = subprocess.run(["wasm-objdump", "-x", "-j", "Memory", wasm], capture_output=True,
                         text=True, check=True).stdout
    return int(re.search(r"pages: initial=(\d+)", out).group(1)) * 65536


def demo_memory(envoy, wasm, repo, log=print):
    """The gauge right after on_configure with the policy of `just demo`
    (2 workers; the checks' clusters served by local servers)."""
    policy, env = policies.demo(repo)
    names = policies.clusters_of(policy)
    deps = h.Deps(len(names))
    clusters = "".join(h.cluster(n, p) for n, p in zip(names, deps.ports()))
    e = h.Envoy(envoy, h.bootstrap(h.wasm_filter(wasm, policy, env), h.APP_ROUTE, clusters), workers=2)
    try:
        gauges = memory_gauges(e)
    finally:
        e.close()
        deps.close()
    log(f"memory after on_configure, demo policy: {sorted(gauges.values())}")
    return gauges


def storm(envoy, wasm, seconds, ttl_s=1, log=print):
    """wrk, 2 threads, 64 connections, `seconds` on /readyz of the storm
    policy (3 checks, TTL `ttl_s`, 2 Envoy workers); the memory gauges
    after on_configure and after the storm."""
    deps = h.Deps(3)
    clusters = "".join(h.cluster(n, p) for n, p in zip("abc", deps.ports()))
    e = h.Envoy(envoy, h.bootstrap(h.wasm_filter(wasm, policies.storm(ttl_s)), h.APP_ROUTE, clusters), workers=2)
    try:
        before = memory_gauges(e)
        res = h.wrk(e.port, "/readyz", seconds, connections=64, threads=2, cpu=None)
        after = memory_gauges(e)
        stats = e.stats()
    finally:
        e.close()
        deps.close()
    envoy_counts = {n: int(stats.get(f"cluster.{n}.upstream_rq_total", -1)) for n in "abc"}
    out = {"seconds": seconds, "ttl_s": ttl_s, "probes": res["requests"], "non2xx": res["non2xx"],
           "hits": dict(zip("abc", deps.hits)), "upstream_rq_total": envoy_counts,
           "limit": seconds // ttl_s + 1, "memory_before": before, "memory_after": after}
    log(f"storm: {res['requests']} probes in {seconds} s, callouts {out['hits']}, "
        f"memory {sorted(before.values())} -> {sorted(after.values())}")
    return out


def fan_out(envoy, wasm, log=print):
    """10 dependencies that each answer after 100 ms, no cache: 20
    sequential probes after 5 of warm-up; wall time per probe."""
    fan = h.Deps(10, delay_ms=100)
    clusters = "".join(h.cluster(f"d{i}", p) for i, p in enumerate(fan.ports()))
    e = h.Envoy(envoy, h.bootstrap(h.wasm_filter(wasm, policies.fan_out(10)), h.APP_ROUTE, clusters), workers=1)
    lat = []
    try:
        for i in range(25):
            t = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{e.port}/readyz", timeout=5) as r:
                r.read()
                if r.status != 200:
                    raise RuntimeError(f"fan-out probe answered {r.status}")
            if i >= 5:  # after warm-up (connection pools)
                lat.append((time.perf_counter() - t) * 1000)
    finally:
        e.close()
        fan.close()
    out = {"p50_ms": statistics.median(lat), "max_ms": max(lat), "probes": len(lat)}
    log(f"fan-out: p50 {out['p50_ms']:.1f} ms, max {out['max_ms']:.1f} ms")
    return out
