#!/usr/bin/env python3
"""meshprobe benchmark (`just bench`): real Envoy on 127.0.0.1, load from wrk.

All scenarios run in one sitting, interleaved, for ROUNDS rounds; the table
reports medians. Envoy runs one worker pinned to CPU 1 (wrk on CPU 0) for the
per-request figures; the storm uses 2 workers. Writes bench/RESULTS.md.

Usage: bench.py ENVOY WASM [--rounds N] [--seconds S]
"""
import argparse, http.server, json, os, re, socket, socketserver, statistics
import subprocess, sys, tempfile, threading, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------- deps
class Deps:
    """Threaded HTTP servers on 127.0.0.1 that count requests and can delay."""
    def __init__(self, n, delay_ms=0):
        self.servers, self.hits, self.delay = [], [0] * n, delay_ms / 1000
        for i in range(n):
            deps = self
            class H(http.server.BaseHTTPRequestHandler):
                idx = i
                protocol_version = "HTTP/1.1"
                disable_nagle_algorithm = True
                def do_GET(self):
                    deps.hits[self.idx] += 1
                    if deps.delay:
                        time.sleep(deps.delay)
                    self.send_response(200)
                    self.send_header("content-length", "3")
                    self.end_headers()
                    self.wfile.write(b"ok\n")
                def log_message(self, *a):
                    pass
            s = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, daemon=True).start()
            self.servers.append(s)
    def ports(self):
        return [s.server_address[1] for s in self.servers]
    def close(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()

# ---------------------------------------------------------------- envoy
def cluster(name, port):
    return f"""    - name: {name}
      connect_timeout: 0.25s
      load_assignment:
        cluster_name: {name}
        endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }} }}] }}]
"""

def wasm_filter(wasm, policy, disabled=False):
    return f"""                  - name: meshprobe
                    disabled: {str(disabled).lower()}
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      config:
                        name: meshprobe
                        root_id: meshprobe
                        failure_policy: FAIL_RELOAD
                        vm_config:
                          vm_id: meshprobe
                          runtime: envoy.wasm.runtime.v8
                          code: {{ local: {{ filename: "{wasm}" }} }}
                        configuration:
                          "@type": type.googleapis.com/google.protobuf.StringValue
                          value: {json.dumps(json.dumps(policy))}
"""

NATIVE_HC = """                  - name: envoy.filters.http.health_check
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck
                      pass_through_mode: false
                      headers: [{ name: ":path", string_match: { exact: "/livez" } }]
"""

ROUTER = """                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""

def bootstrap(filters, routes, clusters=""):
    return f"""admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
static_resources:
  listeners:
    - name: main
      address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress
                route_config:
                  virtual_hosts:
                    - name: app
                      domains: ["*"]
                      routes:
{routes}
                http_filters:
{filters}{ROUTER}
  clusters:
{clusters or cluster("unused", 9)}"""

APP_ROUTE = """                        - match: { prefix: "/" }
                          direct_response: { status: 200, body: { inline_string: "hello from the app\\n" } }
"""

SCOPED_ROUTES = """                        - match: { prefix: "/livez" }
                          direct_response: { status: 404 }
                        - match: { prefix: "/readyz" }
                          direct_response: { status: 404 }
                        - match: { prefix: "/" }
                          direct_response: { status: 200, body: { inline_string: "hello from the app\\n" } }
                          typed_per_filter_config:
                            meshprobe:
                              "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                              disabled: true
"""

class Envoy:
    def __init__(self, envoy, config, workers=1, cpu=None):
        self.dir = tempfile.mkdtemp(prefix="meshprobe-bench-")
        path = os.path.join(self.dir, "envoy.yaml")
        with open(path, "w") as f:
            f.write(config)
        self.admin_file = os.path.join(self.dir, "admin")
        cmd = [envoy, "-c", path, "--concurrency", str(workers), "--use-dynamic-base-id",
               "-l", "error", "--admin-address-path", self.admin_file,
               "--log-path", os.path.join(self.dir, "envoy.log")]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        self.admin = self.port = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("Envoy exited:\n" + open(os.path.join(self.dir, "envoy.log")).read())
            try:
                if self.admin is None:
                    self.admin = int(open(self.admin_file).read().strip().rsplit(":", 1)[1])
                ls = json.loads(self.get_admin("/listeners?format=json"))
                self.port = ls["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
                if self.port and self.get_admin("/ready").strip() == "LIVE":
                    return
            except (OSError, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.05)
        raise SystemExit("Envoy not ready")

    def get_admin(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}{path}", timeout=5) as r:
            return r.read().decode()

    def cpu_seconds(self):
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.kill()
        self.proc.wait()

# ---------------------------------------------------------------- load
def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

def wrk(port, path, seconds, headers=(), connections=16):
    cmd = ["taskset", "-c", "0", "wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = dict(re.findall(r"\s+(50|99)(?:\.000)?%\s+(\S+)", out))
    return {"requests": requests, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": to_ms(lat["50"]), "p99": to_ms(lat["99"]),
            "non2xx": int(non2xx.group(1)) if non2xx else 0}

# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("envoy"); ap.add_argument("wasm")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    wasm = os.path.abspath(args.wasm)
    deps = Deps(5)
    dep_clusters = "".join(cluster(f"dep{i}", p) for i, p in enumerate(deps.ports()))
    policy = {
        "authorization": {"header": "x-health", "secrets": [{"value": "bench-secret"}]},
        "endpoints": [
            {"name": "live", "path": "/livez", "access": "public"},
            {"name": "ready", "path": "/readyz", "checks": [f"dep{i}" for i in range(5)], "ttl": "1m"},
        ],
        "checks": [{"name": f"dep{i}", "cluster": f"dep{i}", "path": "/health"} for i in range(5)],
    }
    mp = wasm_filter(wasm, policy)
    scoped_filter = mp
    noop = os.path.join(tempfile.mkdtemp(prefix="meshprobe-noop-"), "noop.wasm")
    subprocess.run(["wat2wasm", os.path.join(HERE, "noop.wat"), "-o", noop], check=True)
    scenarios = [
        ("1. no filter, direct_response", bootstrap("", APP_ROUTE), "/app", ()),
        ("0. empty proxy-wasm filter (floor), pass-through", bootstrap(wasm_filter(noop, {}), APP_ROUTE), "/app", ()),
        ("2. meshprobe, pass-through traffic", bootstrap(mp, APP_ROUTE, dep_clusters), "/app", ()),
        ("3. meshprobe, liveness", bootstrap(mp, APP_ROUTE, dep_clusters), "/livez", ()),
        ("4. native health_check filter", bootstrap(NATIVE_HC, APP_ROUTE), "/livez", ()),
        ("5. meshprobe, readiness from cache (5 checks)", bootstrap(mp, APP_ROUTE, dep_clusters), "/readyz", ("x-health: bench-secret",)),
        ("6. meshprobe scoped to probe routes, app traffic", bootstrap(scoped_filter, SCOPED_ROUTES, dep_clusters), "/app", ()),
    ]
    envoys = [Envoy(args.envoy, cfg, workers=1, cpu=1) for _, cfg, _, _ in scenarios]
    # Warm up (first result cached for scenario 5, V8 tiering, pools).
    for (name, _, path, headers), e in zip(scenarios, envoys):
        wrk(e.port, path, 1, headers)
    results = {name: [] for name, *_ in scenarios}
    for r in range(args.rounds):
        for (name, _, path, headers), e in zip(scenarios, envoys):
            before = e.cpu_seconds()
            res = wrk(e.port, path, args.seconds, headers)
            res["cpu_us"] = (e.cpu_seconds() - before) * 1e6 / max(res["requests"], 1)
            results[name].append(res)
            print(f"round {r + 1} {name}: {res['rps']:.0f} rps, {res['cpu_us']:.1f} us/req, p50 {res['p50']:.3f} ms, p99 {res['p99']:.3f} ms, non-2xx {res['non2xx']}", flush=True)
    rss = {name: e.rss_kib() for (name, *_), e in zip(scenarios, envoys)}
    for e in envoys:
        e.stop()
    med = {n: {k: statistics.median(x[k] for x in v) for k in ("rps", "cpu_us", "p50", "p99", "non2xx")} for n, v in results.items()}

    # Storm: max rate on readiness for 20 s, TTL 1 s, 2 workers.
    storm_deps = Deps(3)
    storm_policy = {
        "endpoints": [{"name": "ready", "path": "/readyz", "access": "public", "ttl": "1s",
                       "checks": ["a", "b", "c"]}],
        "checks": [{"name": n, "cluster": n} for n in "abc"],
    }
    clusters = "".join(cluster(n, p) for n, p in zip("abc", storm_deps.ports()))
    e = Envoy(args.envoy, bootstrap(wasm_filter(wasm, storm_policy), APP_ROUTE, clusters), workers=2)
    storm = subprocess.run(["wrk", "-t", "2", "-c", "64", "-d", "20s", f"http://127.0.0.1:{e.port}/readyz"],
                           capture_output=True, text=True, check=True).stdout
    storm_requests = int(re.search(r"(\d+) requests in", storm).group(1))
    stats = e.get_admin("/stats?filter=upstream_rq_total")
    envoy_counts = {n: int(re.search(rf"cluster\.{n}\.upstream_rq_total: (\d+)", stats).group(1)) for n in "abc"}
    e.stop()
    storm_hits = dict(zip("abc", storm_deps.hits))
    storm_deps.close()

    # Fan-out: 10 dependencies answering after 100 ms each, no cache.
    fan = Deps(10, delay_ms=100)
    fan_policy = {
        "endpoints": [{"name": "ready", "path": "/readyz", "access": "public", "ttl": "0s",
                       "checks": [f"d{i}" for i in range(10)]}],
        "checks": [{"name": f"d{i}", "cluster": f"d{i}", "timeout": "500ms"} for i in range(10)],
    }
    clusters = "".join(cluster(f"d{i}", p) for i, p in enumerate(fan.ports()))
    e = Envoy(args.envoy, bootstrap(wasm_filter(wasm, fan_policy), APP_ROUTE, clusters), workers=1)
    lat = []
    for i in range(25):
        t = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{e.port}/readyz", timeout=5) as r:
            r.read()
            assert r.status == 200
        if i >= 5:  # after warm-up (connection pools)
            lat.append((time.perf_counter() - t) * 1000)
    e.stop()
    fan.close()
    deps.close()

    version = subprocess.run([args.envoy, "--version"], capture_output=True, text=True).stdout.strip().split("version: ")[-1]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    size = os.path.getsize(wasm)
    m = lambda i: med[scenarios[i][0]]
    ratio = lambda a, b: m(a)["cpu_us"] / m(b)["cpu_us"]
    fan_p50 = statistics.median(lat)
    lines = [
        "# meshprobe benchmark results", "",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB",
        f"- Envoy: {version}, V8; one worker pinned to CPU 1, wrk (1 thread, 16 connections) on CPU 0",
        f"- module: dist/meshprobe.wasm, {size} bytes ({size // 1024} KiB)",
        f"- {args.rounds} rounds of {args.seconds} s per scenario, interleaved; medians", "",
        "| scenario | requests/s | CPU µs/request | p50 ms | p99 ms | non-2xx | Envoy RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, *_ in scenarios:
        r = med[name]
        lines.append(f"| {name} | {r['rps']:.0f} | {r['cpu_us']:.2f} | {r['p50']:.3f} | {r['p99']:.3f} | {r['non2xx']:.0f} | {rss[name] / 1024:.0f} |")
    targets = [
        ("(2) / (1) CPU per request", ratio(2, 0), "≤ 1.10"),
        ("(5) / (4) CPU per request", ratio(5, 4), "≤ 1.5"),
        ("(6) / (1) CPU per request", ratio(6, 0), "within noise of 1.0"),
        ("(3) / (4) CPU per request", ratio(3, 4), "(for reference)"),
        ("(0) / (1) CPU per request: any Wasm filter", ratio(1, 0), "(the floor)"),
        ("(2) / (0) CPU per request: meshprobe over the floor", ratio(2, 1), "(for reference)"),
    ]
    lines += ["", "| ratio (same run) | value | target |", "|---|---:|---|"]
    lines += [f"| {n} | {v:.2f} | {t} |" for n, v, t in targets]
    lines += ["", "## Storm", "",
              f"wrk, 2 threads, 64 connections, 20 s on `/readyz` (TTL 1 s, 2 Envoy workers): {storm_requests} probes.", "",
              "| dependency | requests seen by the server | Envoy `upstream_rq_total` | target |", "|---|---:|---:|---|"]
    lines += [f"| {n} | {storm_hits[n]} | {envoy_counts[n]} | ≤ 21 |" for n in "abc"]
    lines += ["", "## Fan-out", "",
              f"10 dependencies that each answer after 100 ms, no cache, 20 sequential probes: p50 {fan_p50:.1f} ms, max {max(lat):.1f} ms (target p50 ≤ 120 ms; sequential would be 1000 ms).", ""]
    out = os.path.join(HERE, "RESULTS.md")
    notes = os.path.join(HERE, "NOTES.md")
    if os.path.exists(notes):
        lines += [open(notes).read()]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

if __name__ == "__main__":
    main()
