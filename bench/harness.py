"""The benchmark's real components: dependency servers on 127.0.0.1, Envoy
bootstraps, an Envoy process, wrk. Every Envoy and server started here is
registered and stopped by `stop_all()` (bench.py calls it in a `finally`)."""
import http.server, json, os, re, shutil, socketserver, subprocess, sys, tempfile
import threading, time, urllib.error, urllib.request

_LIVE = []  # every Envoy and Deps not stopped yet


def stop_all():
    """Stop every Envoy and dependency server still running (by PID)."""
    while _LIVE:
        _LIVE.pop().close()


# ---------------------------------------------------------------- deps
class Quiet(socketserver.ThreadingTCPServer):
    """A server that says nothing when a client (an Envoy being stopped)
    resets its connection; any other error is printed as usual."""
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionResetError):
            super().handle_error(request, client_address)


class Deps:
    """Threaded HTTP servers on 127.0.0.1 that count requests and can delay."""
    def __init__(self, n, delay_ms=0):
        self.servers, self.hits, self.delay = [], [0] * n, delay_ms / 1000
        _LIVE.append(self)
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
            s = Quiet(("127.0.0.1", 0), H)
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, daemon=True).start()
            self.servers.append(s)

    def ports(self):
        return [s.server_address[1] for s in self.servers]

    def close(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()
        self.servers = []
        if self in _LIVE:
            _LIVE.remove(self)


# ---------------------------------------------------------------- bootstraps
def cluster(name, port):
    return f"""    - name: {name}
      connect_timeout: 0.25s
      load_assignment:
        cluster_name: {name}
        endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }} }}] }}]
"""


def wasm_filter(wasm, policy, env=None):
    """The Wasm HTTP filter `meshprobe` running `wasm` with `policy` (a dict)."""
    env_yaml = ""
    if env:
        pairs = ", ".join(f"{k}: {json.dumps(v)}" for k, v in env.items())
        env_yaml = f"\n                          environment_variables: {{ key_values: {{ {pairs} }} }}"
    return f"""                  - name: meshprobe
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      config:
                        name: meshprobe
                        root_id: meshprobe
                        failure_policy: FAIL_RELOAD
                        vm_config:
                          vm_id: meshprobe
                          runtime: envoy.wasm.runtime.v8
                          code: {{ local: {{ filename: "{wasm}" }} }}{env_yaml}
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


def bootstrap(filters, routes=APP_ROUTE, clusters=""):
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


# ---------------------------------------------------------------- envoy
class Envoy:
    """One Envoy process on ephemeral ports, ready (/ready LIVE) once built.
    `trace_wasm` logs the wasm component at trace level with microsecond
    timestamps (every VM entry and host call, see `log()`). `wrap` is a
    command that runs Envoy (valgrind, say), `ready_s` how long it may take
    to be ready."""
    def __init__(self, envoy, config, workers=1, cpu=None, trace_wasm=False, wrap=(), ready_s=60):
        self.dir = tempfile.mkdtemp(prefix="meshprobe-bench-")
        self.proc = None
        path = os.path.join(self.dir, "envoy.yaml")
        with open(path, "w") as f:
            f.write(config)
        self.log_path = os.path.join(self.dir, "envoy.log")
        admin_file = os.path.join(self.dir, "admin")
        cmd = [envoy, "-c", path, "--concurrency", str(workers), "--use-dynamic-base-id",
               "--admin-address-path", admin_file, "--log-path", self.log_path]
        if trace_wasm:
            cmd += ["-l", "warning", "--component-log-level", "wasm:trace",
                    "--log-format", "[%Y-%m-%d %T.%f][%t][%l][%n] %v"]
        else:
            cmd += ["-l", "error"]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        cmd = list(wrap) + cmd
        _LIVE.append(self)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + ready_s
        self.admin = self.port = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                log = self.log()
                self.close()
                raise RuntimeError("Envoy exited:\n" + log[-4000:])
            try:
                if self.admin is None:
                    self.admin = int(open(admin_file).read().strip().rsplit(":", 1)[1])
                ls = json.loads(self.get_admin("/listeners?format=json"))
                self.port = ls["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
                if self.port and self.get_admin("/ready").strip() == "LIVE":
                    self.ready_s = time.perf_counter() - self.started
                    return
            except (OSError, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.02)
        self.close()
        raise RuntimeError(f"Envoy not ready in {ready_s} s")

    def get_admin(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}{path}", timeout=5) as r:
            return r.read().decode()

    def get(self, path, headers=None):
        """(status, [(name, value)], body) of one request to the listener."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.getheaders(), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.items(), e.read()

    def stats(self):
        """Envoy's stats as {name: value} (counters and gauges)."""
        doc = json.loads(self.get_admin("/stats?format=json"))
        return {s["name"]: s["value"] for s in doc.get("stats", []) if "value" in s}

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cpu_seconds(self):
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop_gracefully(self):
        """SIGTERM (Envoy flushes its log), SIGKILL after 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        if self in _LIVE:
            _LIVE.remove(self)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- load
def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def wrk(port, path, seconds, headers=(), connections=16, threads=1, cpu="0"):
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu] + cmd
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         check=True, timeout=seconds + 60).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = dict(re.findall(r"\s+(50|99)(?:\.000)?%\s+(\S+)", out))
    return {"requests": requests, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": to_ms(lat["50"]), "p99": to_ms(lat["99"]),
            "non2xx": int(non2xx.group(1)) if non2xx else 0}
