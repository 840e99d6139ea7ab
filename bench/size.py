"""Where the module's bytes go: its size, its exports, and `twiggy top`.

dist/meshprobe.wasm has no name section (the release profile strips
symbols, wasm-opt --strip-debug the rest), so twiggy would only show
`code[N]`. The tables are taken from a named twin: the same cargo build with
`strip = false` (CARGO_PROFILE_RELEASE_STRIP=false, own target directory
target/bench-names) through the same wasm-opt optimizations as `just build`,
keeping the names (-g; the debug info of std is dropped first, as it would
hold back some optimizations). The twin, stripped of its custom sections
(wasm-strip), is compared with dist/meshprobe.wasm: RESULTS.md gives both
sizes (they differ by a few hundred bytes: the linker's output with symbols
is not byte for byte the one without).
"""
import hashlib, json, os, re, shutil, subprocess, tempfile

LIMIT = 200 * 1024
def build_flags(repo):
    """`just build`'s wasm-opt optimizations (the Justfile's `wasm_opt`)."""
    return subprocess.run(["just", "--evaluate", "wasm_opt"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.split()


def opt_flags(repo):
    """`just build`'s optimizations, DWARF dropped first, names kept."""
    return ["--strip-dwarf", *build_flags(repo), "-g"]
NAMES_DIR = os.path.join("target", "bench-names")
CARGO_OUT = os.path.join(NAMES_DIR, "wasm32-wasip1", "release", "meshprobe.wasm")


def build_named(repo, log):
    """The release build with its symbols (name section) kept."""
    env = dict(os.environ, CARGO_PROFILE_RELEASE_STRIP="false")
    log("size: building the named twin (cargo, target/bench-names)")
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1", "--lib",
                    "--target-dir", NAMES_DIR], cwd=repo, env=env, check=True)


def exports(wasm):
    out = subprocess.run(["wasm-objdump", "-x", "-j", "Export", wasm], capture_output=True,
                         text=True, check=True).stdout
    return re.findall(r'-> "([^"]+)"', out)


def twiggy_bin():
    found = shutil.which("twiggy") or os.path.expanduser("~/.cargo/bin/twiggy")
    return found if os.path.exists(found) else None


def clean(name):
    """A twiggy item's name without the symbol hash and crate disambiguators."""
    return re.sub(r"::h[0-9a-f]{16}$", "", re.sub(r"\[[0-9a-f]{16}\]", "", name))


def twiggy_top(twiggy, wasm, n, retained):
    """The top n items, without custom sections (not in dist)."""
    cmd = [twiggy, "top", "-n", str(n + 5), "-f", "json", wasm]
    if retained:
        cmd.insert(2, "--retained")
    rows = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    rows = [dict(r, name=clean(r["name"])) for r in rows
            if not r["name"].startswith("... and ") and "subsection" not in r["name"]
            and not r["name"].startswith("custom section")]
    return rows[:n]


LIBC = {"dlmalloc", "dlfree", "dlrealloc", "dispose_chunk", "malloc", "free", "calloc", "realloc",
        "posix_memalign", "aligned_alloc", "internal_memalign", "getenv", "strlen", "strncmp",
        "memcpy", "memmove", "memset", "memcmp", "abort", "sbrk", "__wasi_init_tp", "_initialize"}


def owner(name):
    """The crate (meshprobe: the module) an item of twiggy's belongs to."""
    if name.startswith("data segment") or name.startswith("data["):
        return "data segments (constants, strings, tables)"
    if name.startswith("proxy_on_") or name.startswith("proxy_abi_"):
        return "the exported callbacks (src/host and abi/, with the core code inlined into them)"
    if name in LIBC or name.startswith("__"):
        return "wasi-libc (allocator, getenv, mem*)"
    if name.startswith("import ") or name.startswith("export "):
        return "imports and exports"
    if re.match(r"^<(char|str|u8|\[u8\]|bool|f64|f32|[iu](8|16|32|64|128|size))>::", name):
        return "core"  # inherent methods of primitives
    n = name
    m = re.match(r"^<+&?(?:mut |dyn |const )?([^ <>]+)(?:<[^>]*>)? as ([^ <>]+)", n)
    if m:  # <Type as Trait>::f: the type's crate, or the trait's for a primitive
        n = m.group(1) if "::" in m.group(1) else m.group(2)
    n = n.lstrip("<&*[(")
    if "::" not in n:
        return "other (sections, tables, unnamed)"
    parts = n.split("::")
    return "::".join(parts[:2]) if parts[0] == "meshprobe" else parts[0]


def by_owner(twiggy, wasm):
    """Shallow bytes summed per crate (meshprobe: per top module)."""
    rows = twiggy_top(twiggy, wasm, 1_000_000, False)
    sums = {}
    for r in rows:
        o = owner(r["name"])
        sums[o] = sums.get(o, 0) + r["shallow_size"]
    return sorted(sums.items(), key=lambda kv: -kv[1])


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def run(repo, wasm, log=print):
    size = os.path.getsize(wasm)
    out = {"bytes": size, "limit": LIMIT, "exports": exports(wasm), "twiggy": None}
    twiggy = twiggy_bin()
    cargo_out = os.path.join(repo, CARGO_OUT)
    if twiggy is None:
        out["twiggy_note"] = "twiggy not installed (`cargo install twiggy --locked`): no table"
    else:
        build_named(repo, log)
        tmp = tempfile.mkdtemp(prefix="meshprobe-size-")
        named = os.path.join(tmp, "named.wasm")
        stripped = os.path.join(tmp, "stripped.wasm")
        flags = opt_flags(repo)
        subprocess.run(["wasm-opt", *flags, cargo_out, "-o", named], check=True)
        shutil.copy(named, stripped)
        subprocess.run(["wasm-strip", stripped], check=True)  # every custom section, nothing else
        out["twin"] = {"named_bytes": os.path.getsize(named), "stripped_bytes": os.path.getsize(stripped),
                       "dist_bytes": size,
                       "identical": sha(stripped) == sha(wasm),
                       "command": f"CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --target wasm32-wasip1 --lib "
                                  f"--target-dir {NAMES_DIR}; wasm-opt {' '.join(flags)} {CARGO_OUT}"}
        out["twiggy"] = {"shallow": twiggy_top(twiggy, named, 15, False),
                         "retained": [r for r in twiggy_top(twiggy, named, 17, True)
                                      if not re.match(r"^(table|elem)\[\d+\]$", r["name"])][:15],
                         "owners": by_owner(twiggy, named),
                         "version": subprocess.run([twiggy, "--version"], capture_output=True,
                                                   text=True).stdout.strip()}
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"size: {size} bytes, {len(out['exports'])} exports")
    return out
