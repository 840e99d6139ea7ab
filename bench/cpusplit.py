"""Where a request's CPU goes: Envoy sampled with `perf record -e cpu-clock`
(a software clock: no hardware counters needed) while wrk loads it, each
sample put in one part by where it fell:

  vm      code V8 generated at run time ([JIT]): the module's compiled Wasm
          (and V8's stubs into and out of it);
  malloc  Envoy's allocator (tcmalloc: the binary's `google_malloc` section);
  envoy   the rest of the Envoy binary (HTTP, the Wasm host, V8's runtime);
  kernel  system calls, TCP;
  libc    libc, libm, vdso.

A part's µs per request is its share of the samples times the CPU µs per
request measured over the same window (Envoy's user + system time)."""
import os, re, shutil, subprocess, tempfile

import harness as h
import size

PARTS = ("vm", "malloc", "envoy", "kernel", "libc")


def available():
    """None if perf can sample here, else why not."""
    if not shutil.which("perf"):
        return "perf is not installed (Debian: linux-perf)"
    out = tempfile.mktemp(prefix="meshprobe-perf-")
    try:
        p = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", out, "--", "true"],
                           capture_output=True, text=True)
        return None if p.returncode == 0 else "perf record failed: " + p.stderr.strip()[-200:]
    finally:
        if os.path.exists(out):
            os.remove(out)


def allocator_ranges(envoy):
    """[(start, end)] of the binary's allocator sections (Envoy is stripped,
    but tcmalloc lives in sections of its own)."""
    out = subprocess.run(["readelf", "-SW", os.path.realpath(envoy)], capture_output=True, text=True).stdout
    ranges = []
    for m in re.finditer(r"\]\s+(google_malloc|malloc_hook)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", out):
        start = int(m.group(2), 16)
        ranges.append((start, start + int(m.group(3), 16)))
    return ranges


def shares(data, alloc):
    """{part: % of samples} of one perf.data."""
    out = subprocess.run(["perf", "report", "-i", data, "--sort", "dso,sym", "--stdio"],
                         capture_output=True, text=True).stdout
    parts = dict.fromkeys(PARTS, 0.0)
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(.+?)\s+\[[.k]\]\s+(\S+)", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2).strip(), m.group(3)
        if dso.startswith("[JIT]"):
            parts["vm"] += pct
        elif dso == "envoy":
            addr = int(sym, 16) if sym.startswith("0x") else -1
            parts["malloc" if any(a <= addr < b for a, b in alloc) else "envoy"] += pct
        elif dso.startswith("[kernel"):
            parts["kernel"] += pct
        else:
            parts["libc"] += pct
    total = sum(parts.values()) or 1.0
    return {k: v * 100 / total for k, v in parts.items()}


def split(envoy_proc, port, path, headers, seconds, alloc):
    """{part: µs per request, "cpu_us": total} over `seconds` of wrk load."""
    data = tempfile.mktemp(prefix="meshprobe-perf-", suffix=".data")
    rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000", "-p", str(envoy_proc.proc.pid),
                            "-o", data, "--", "sleep", str(seconds)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        before = envoy_proc.cpu_seconds()
        res = h.wrk(port, path, seconds, headers)
        cpu_us = (envoy_proc.cpu_seconds() - before) * 1e6 / max(res["requests"], 1)
        rec.wait(timeout=seconds + 60)
        pct = shares(data, alloc)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
        if os.path.exists(data):
            os.remove(data)
    out = {k: pct[k] * cpu_us / 100 for k in PARTS}
    out["cpu_us"] = cpu_us
    return out


# The same module built for speed instead of size (what inlining would save
# inside the VM, and what it would cost in bytes).
# (key, label, opt-level, wasm-opt level in place of -Oz)
VARIANTS = [
    ("s", "opt-level \"s\", wasm-opt as `just build`", "s", None),
    ("3", "opt-level 3, wasm-opt -O3 (else as `just build`)", "3", "-O3"),
]


def build_variants(repo, out_dir, log):
    """{key: (label, path)} of the module built with each of VARIANTS."""
    built = {}
    for key, label, level, opt in VARIANTS:
        target = os.path.join(repo, "target", f"bench-opt-{key}")
        log(f"profile: building the module with {label} (cargo, {os.path.relpath(target, repo)})")
        env = dict(os.environ, CARGO_PROFILE_RELEASE_OPT_LEVEL=level)
        subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1", "--lib",
                        "--target-dir", target], cwd=repo, env=env, check=True)
        dst = os.path.join(out_dir, f"meshprobe-opt-{key}.wasm")
        flags = [opt if f == "-Oz" and opt else f for f in size.build_flags(repo)]
        subprocess.run(["wasm-opt", *flags, "--strip-debug", "--strip-producers",
                        os.path.join(target, "wasm32-wasip1", "release", "meshprobe.wasm"), "-o", dst], check=True)
        built[key] = (label, dst)
    return built
