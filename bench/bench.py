#!/usr/bin/env python3
"""meshprobe benchmark (`just bench`): real Envoy on 127.0.0.1, load from wrk.

One run measures every floor and every goal of issue 13 and writes
bench/RESULTS.md (with bench/NOTES.md appended):
  - size of the module and where its bytes go (size.py, twiggy);
  - CPU per request of the ladder of floors and of meshprobe, interleaved
    rounds (cpu.py), the VM crossings of one request (crossings.py), and
    the instructions per request under callgrind (instr.py);
  - the module's work per request inside the VM, counted, and by function
    (vmwork.py: the module in V8 under Node, instrumented by wasm-opt);
  - on_configure time of a 100-endpoint / 1,000-check policy (scale.py);
  - linear memory per VM after on_configure (demo policy) and after a probe
    storm, the storm's callouts, the fan-out (storm.py).
Every Envoy and server it starts is stopped on the way out, also on failure.

Usage: bench.py ENVOY WASM [--rounds N] [--seconds S] [--storm-seconds S]
                           [--quick] [--out FILE] [--json FILE]
       bench.py --render FILE.json [--out FILE]   (RESULTS.md from saved figures)
--quick (1 round of 2 s, 10 s storm, 1 load round, 5 scenarios counted
under callgrind) is for development; its
output goes to target/bench-quick/RESULTS.md unless --out says otherwise.
bench/baseline.json, when present (the --json of a full run before the work
of issue 13), gives the goal table its "before" column.
"""
import argparse, datetime, hashlib, json, os, shutil, signal, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, HERE)
import cpu, harness, report, scale, size, storm, vmwork  # noqa: E402

REPO = os.path.dirname(HERE)
# The figures of a full run before the work of issue 13 (`--json` of that
# run): RESULTS.md's goal table shows them as "before".
BASELINE = os.path.join(HERE, "baseline.json")


def meta(envoy, wasm, args, mode):
    version = subprocess.run([envoy, "--version"], capture_output=True, text=True).stdout.strip().split("version: ")[-1]
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(), "cpu_model": model,
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "envoy": version, "wasm_sha": hashlib.sha256(open(wasm, "rb").read()).hexdigest(),
            "rounds": args.rounds, "seconds": args.seconds, "mode": mode}


def measure(args):
    wasm = os.path.abspath(args.wasm)
    mode = "quick (development: indicative only, not for the record)" if args.quick else "full"
    res = {"meta": meta(args.envoy, wasm, args, mode)}
    start = time.time()
    log = lambda msg: print(msg, flush=True)
    res["size"] = size.run(REPO, wasm, log)
    # --quick counts the goals' scenarios only, fewer requests each.
    res["cpu"] = cpu.run(args.envoy, wasm, args.rounds, args.seconds, log, REPO,
                         instr_requests=100 if args.quick else 500,
                         instr_keys=("a", "mp_app", "d", "mp_live", "mp_ready") if args.quick else None)
    scratch = tempfile.mkdtemp(prefix="meshprobe-vmwork-")
    try:
        res["vm_work"] = vmwork.run(REPO, wasm, scratch, log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    res["load"] = scale.run(args.envoy, wasm, args.load_rounds, log)
    res["memory"] = {"initial": storm.initial_memory(wasm), "demo": storm.demo_memory(args.envoy, wasm, REPO, log)}
    res["storm"] = storm.storm(args.envoy, wasm, args.storm_seconds, log=log)
    res["fan_out"] = storm.fan_out(args.envoy, wasm, log)
    res["meta"]["elapsed_s"] = time.time() - start
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("envoy", nargs="?")
    ap.add_argument("wasm", nargs="?")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--storm-seconds", type=int, default=60)
    ap.add_argument("--load-rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s, 10 s storm, 1 load round")
    ap.add_argument("--out", help="where to write RESULTS.md")
    ap.add_argument("--json", help="also save the figures as JSON here")
    ap.add_argument("--render", help="only render RESULTS.md from figures saved with --json")
    ap.add_argument("--no-baseline", action="store_true", help="no \"before\" column from bench/baseline.json")
    args = ap.parse_args()
    if args.render:
        res = json.load(open(args.render))
    else:
        if not args.envoy or not args.wasm:
            ap.error("ENVOY and WASM are required")
        if args.quick:
            args.rounds, args.seconds, args.storm_seconds, args.load_rounds = 1, 2, 10, 1
        # A SIGTERM (or Ctrl-C) still runs the finally below.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            res = measure(args)
        finally:
            harness.stop_all()
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
    res["load"] = {int(k): v for k, v in res["load"].items()}
    baseline = None
    if os.path.exists(BASELINE) and not args.no_baseline:
        baseline = json.load(open(BASELINE))
        baseline["load"] = {int(k): v for k, v in baseline["load"].items()}
    quick = res["meta"]["mode"] != "full"
    out = args.out or (os.path.join(REPO, "target", "bench-quick", "RESULTS.md") if quick else os.path.join(HERE, "RESULTS.md"))
    notes_path = os.path.join(HERE, "NOTES.md")
    notes = open(notes_path).read() if os.path.exists(notes_path) else None
    text = report.render(res, notes, baseline)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(text)
    print(f"written: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
