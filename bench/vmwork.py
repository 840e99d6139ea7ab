"""The module's work per request inside the VM, counted, not timed, and
by function.

The module runs in V8 under Node (bench/vmhost.mjs: a proxy-wasm host with
the same request, policy and answers as the CPU scenarios), instrumented
by wasm-opt:
  steps         --log-execution: one count each time a logging point runs;
                wasm-opt puts them at function entries, returns and loop
                headers (a call is usually 2 steps or more): a measure of
                the work, not a count of calls;
  loads/stores  --instrument-memory: one count per load and per store
                (not `memory.copy` and `memory.fill`, which it leaves out).
The same module and request give the same counts in every run and on every
machine (readiness within a few steps: its `Age` header's digits), where
CPU time on this machine moves by ±20% between runs; and
a build with a symbol map (the release's code: same cargo profile and
wasm-opt flags, the names kept aside by `--symbolmap`) says which
functions the steps are in. Envoy gives V8 no flags, so inside Envoy the
module's compiled code has no names (bench/cpusplit.py can only say how
much time is in the VM).

Floors (h), (g) and (i) (bench/host_calls.wat) run in the same host: their
steps are what any module entered as meshprobe is costs at least."""
import json, os, re, shutil, subprocess

import cpu
import policies
import size

HERE = os.path.dirname(os.path.abspath(__file__))
# (key, label, vmhost scenario, floor file, the status of every answer)
SCENARIOS = [
    ("app", "pass-through (app traffic)", "app", "host_calls_pass.wat", None),
    ("live", "liveness", "live", "host_calls.wat", 200),
    ("ready", "readiness from cache (5 checks)", "ready", "host_calls_ready.wat", 200),
]
REQUESTS = 500
TOP = 12


def available():
    """None if this part can run here, else why not."""
    for tool in ("node", "wasm-opt", "wasm-dis", "wasm-objdump"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    return None


def host(wasm, policy, scenario, points=None):
    env = dict(os.environ, **({"VMHOST_POINTS": points} if points else {}))
    out = subprocess.run(["node", os.path.join(HERE, "vmhost.mjs"), wasm, policy, scenario, str(REQUESTS), "0"],
                         capture_output=True, text=True, env=env, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"vmhost.mjs {scenario} on {os.path.basename(wasm)}: {out.stderr.strip()[-400:]}")
    return json.loads(out.stdout)


def instrument(wasm, pass_, out, names=False):
    subprocess.run(["wasm-opt", *(["-g"] if names else []), "--enable-bulk-memory", "--enable-sign-ext",
                    pass_, wasm, "-o", out], check=True)
    return out


def counts(wasm, policy, scenario, scratch, answers):
    """{steps, loads, stores} per request of `wasm` on `scenario`, whose
    every request must be answered with status `answers` (None: none is
    answered, it goes on)."""
    base = os.path.join(scratch, os.path.basename(wasm).removesuffix(".wasm"))
    steps = host(instrument(wasm, "--log-execution", base + ".steps.wasm"), policy, scenario)
    mem = host(instrument(wasm, "--instrument-memory", base + ".mem.wasm"), policy, scenario)
    for got in (steps, mem):
        # The requests measured, and the first one before them.
        want = {str(answers): got["requests"] + 1} if answers else {}
        if got["statuses"] != want:
            raise RuntimeError(f"{os.path.basename(wasm)} on {scenario}: answers {got['statuses']}, "
                               f"first {got['first_answer']}; expected {want}")
    return {"steps": steps["per_request"]["steps"], "loads": mem["per_request"]["loads"],
            "stores": mem["per_request"]["stores"], "host_calls": steps["host_calls"],
            "statuses": steps["statuses"]}


def build_named(repo, scratch, log):
    """The release module built again with its symbols (the same code:
    same profile and wasm-opt flags; the names go to a symbol map, not into
    the module): (path, {function index: name})."""
    repo = os.path.abspath(repo)  # cargo runs in it: a relative target would be cargo's
    target = os.path.join(repo, "target", "bench-names")
    log(f"vm work: building the module with a symbol map (cargo, {os.path.relpath(target, repo)})")
    env = dict(os.environ, CARGO_PROFILE_RELEASE_STRIP="false")
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1", "--lib",
                    "--target-dir", target], cwd=repo, env=env, check=True)
    dst, symbols = os.path.join(scratch, "meshprobe-named.wasm"), os.path.join(scratch, "symbols.txt")
    subprocess.run(["wasm-opt", *size.build_flags(repo), "--strip-debug", "--strip-producers",
                    f"--symbolmap={symbols}", os.path.join(target, "wasm32-wasip1", "release", "meshprobe.wasm"),
                    "-o", dst], check=True)
    names = {}
    for line in open(symbols):
        index, _, name = line.rstrip("\n").partition(":")
        names[int(index)] = name
    return dst, names


def readable(names):
    """Demangled, without hashes and crate disambiguators."""
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")
    out = out[:len(names)] if len(out) >= len(names) else names
    return [re.sub(r"::h[0-9a-f]{16}$|\[[0-9a-f]{16}\]", "", n) for n in out]


def objdump(*args):
    return subprocess.run(["wasm-objdump", *args], capture_output=True, text=True, check=True).stdout


def function_sizes(wasm):
    """{function index: bytes of its body} of a module."""
    starts = [(int(m.group(1), 16), int(m.group(2)))
              for m in re.finditer(r"^([0-9a-f]+) func\[(\d+)\]", objdump("-d", wasm), re.M)]
    code_end = int(re.search(r"Code start=0x[0-9a-f]+ end=0x([0-9a-f]+)", objdump("-h", wasm)).group(1), 16)
    return {i: b - a for (a, i), (b, _) in zip(starts, starts[1:] + [(code_end, None)])}


def by_function(named, names, policy, scenario, scratch):
    """([(function, steps per request)] of `scenario`, most first; the
    functions it runs, and their bytes of Wasm: its code footprint)."""
    exec_wasm = instrument(named, "--log-execution", os.path.join(scratch, f"named-{scenario}.wasm"), names=True)
    points = os.path.join(scratch, f"points-{scenario}.json")
    host(exec_wasm, policy, scenario, points)
    imports = sum(1 for line in objdump("-j", "Import", "-x", named).splitlines() if " - func[" in line)
    # wasm-opt -g names the module's own functions $0, $1... by their
    # index among them (after the imports); the symbol map and the
    # disassembly count imports.
    where, func, pending = {}, None, False
    wat = subprocess.run(["wasm-dis", exec_wasm], capture_output=True, text=True, check=True).stdout
    log_call = "(call " + re.search(r'\(import "env" "log_execution" \(func (\$\S+)', wat).group(1)
    for line in wat.splitlines():
        m = re.match(r"\s*\(func \$(\d+)", line)
        if m:
            func = int(m.group(1)) + imports
        if pending:
            n = re.search(r"i32\.const (\d+)", line)
            if n:
                where[int(n.group(1))] = func
            pending = False
        pending = pending or line.strip() == log_call
    # The mapping, checked on an export: its function is the one named so.
    export = re.search(r'\(export "proxy_on_request_headers" \(func \$(\d+)\)\)', wat)
    if not export or names.get(int(export.group(1)) + imports) != "proxy_on_request_headers":
        raise RuntimeError("vmwork: the instrumented module's functions do not match the symbol map")
    total = {}
    for point, n in json.load(open(points)).items():
        if int(point) not in where:
            raise RuntimeError(f"vmwork: logging point {point} is in no function")
        f = where[int(point)]
        total[f] = total.get(f, 0) + n
    top = sorted(total.items(), key=lambda kv: -kv[1])
    sizes = function_sizes(named)
    footprint = {"functions": len(total), "bytes": sum(sizes.get(f, 0) for f in total)}
    return list(zip(readable([names.get(f, str(f)) for f, _ in top]), (n / REQUESTS for _, n in top))), footprint


def run(repo, wasm, scratch, log):
    why = available()
    if why:
        return {"why_not": why}
    os.makedirs(scratch, exist_ok=True)
    policy = os.path.join(scratch, "probes.json")
    with open(policy, "w") as f:
        json.dump(policies.probes(), f)
    floors = cpu.build_floors(scratch)
    named, names = build_named(repo, scratch, log)
    out = {}
    for key, label, scenario, floor, status in SCENARIOS:
        log(f"vm work: {label}")
        row = {"label": label, "release": counts(wasm, policy, scenario, scratch, status),
               "named": counts(named, policy, scenario, scratch, status),
               "floor": counts(floors[floor], policy, scenario, scratch, status),
               "floor_file": floor}
        top, row["footprint"] = by_function(named, names, policy, scenario, scratch)
        row["top"] = top[:TOP]
        out[key] = row
    return {"scenarios": out, "requests": REQUESTS}


def section(res):
    """RESULTS.md's lines for this part."""
    L = ["## The module's work in the VM, counted, by function", ""]
    if not res or "why_not" in res:
        return L + [f"Not measured: {(res or {}).get('why_not', 'not in this run')}.", ""]
    sc = res["scenarios"]
    L += ["The release module run in V8 under Node (bench/vmhost.mjs, a proxy-wasm host: the same policy, "
          "request and answers as the CPU scenarios) and instrumented by wasm-opt, per request: **steps** "
          "are the logging points of `--log-execution` run (at function entries, returns and loop headers: "
          "a measure of the work, not a count of calls), **loads** and **stores** those of "
          "`--instrument-memory` (`memory.copy` and `memory.fill` are not counted). Counts, not time: the "
          "same module gives the same figures in every run (readiness within a few steps: its `Age` "
          "header's digits). The floor is (h) for app traffic, (g) for liveness and (i) for readiness "
          "(bench/host_calls.wat): meshprobe's crossings with none of its logic.", ""]
    L += table(["scenario", ">steps", ">loads", ">stores", ">functions run", ">their bytes of Wasm",
                ">floor steps", ">floor loads + stores", "host calls"],
               [(r["label"], r["release"]["steps"], r["release"]["loads"], r["release"]["stores"],
                 r["footprint"]["functions"], f"{r['footprint']['bytes']:,}",
                 r["floor"]["steps"], r["floor"]["loads"] + r["floor"]["stores"],
                 ", ".join(r["release"]["host_calls"]) or "none") for r in sc.values()])
    L += ["", "Functions run: every function a request enters (from the build with a symbol map); their bytes "
          "of Wasm bound the code a request brings back into the CPU's caches after Envoy's own work between "
          "two requests (a request runs one path through the large ones: `dlmalloc` and `classify` are 5 to "
          "6 KB each).", ""]
    for r in sc.values():
        # Readiness reads the clock: its `age` header can differ by a digit.
        same = abs(r["named"]["steps"] - r["release"]["steps"]) <= r["release"]["steps"] / 100
        L += ["", f"**{r['label']}**: where the steps are, from the build with a symbol map "
              f"({r['named']['steps']} steps per request{'' if same else ', not the release: ' + str(r['release']['steps'])}):", ""]
        L += table([">steps", "function"], [(f"{n:.1f}", f"`{f[:110]}`") for f, n in r["top"]])
    return L + [""]


def table(header, rows):
    import report  # report imports this module: not at the top
    return report.table(header, rows)
