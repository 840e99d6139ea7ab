# Shared by the envoy/*/run.sh examples: starts the demo servers
# (examples/demo_deps.rs) and a real Envoy, waits for it by polling its
# admin API, shows curl answers, and stops everything it started (by PID).
# Needs ENVOY (the Envoy binary) and the repository root as the cwd.

: "${ENVOY:?set ENVOY to the Envoy binary (the just recipes do)}"
log_dir=$(mktemp -d)
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$log_dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

# start_stack CONFIG ADMIN_PORT
start_stack() {
    target/debug/examples/demo_deps >"$log_dir/deps.log" 2>&1 &
    pids+=($!)
    "$ENVOY" -c "$1" --concurrency 2 --use-dynamic-base-id -l warning \
        --log-path "$log_dir/envoy.log" &
    pids+=($!)
    for _ in $(seq 1 300); do
        if [ "$(curl -s "127.0.0.1:$2/ready" 2>/dev/null)" = "LIVE" ]; then return 0; fi
        if ! kill -0 "${pids[1]}" 2>/dev/null; then
            echo "Envoy exited; its log:" >&2; cat "$log_dir/envoy.log" >&2; exit 1
        fi
        if ! kill -0 "${pids[0]}" 2>/dev/null; then
            echo "the demo servers exited:" >&2; cat "$log_dir/deps.log" >&2; exit 1
        fi
        sleep 0.1
    done
    echo "Envoy did not become ready" >&2
    exit 1
}

# show "title" curl-args...
show() {
    echo
    echo "== $1"
    shift
    printf '$ curl'; printf " %q" "$@"; echo
    curl -s -w '(HTTP %{http_code}, %{time_total}s)\n' "$@"
}

# mode PORT MODE: switch a demo server (ok, fail, hang, slow, statuspage-major, ...)
mode() { curl -s "127.0.0.1:$1/__mode/$2" >/dev/null; }
