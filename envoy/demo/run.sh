#!/usr/bin/env bash
# The meshprobe demo: starts the demo dependencies and application
# (examples/demo_deps.rs) and a real Envoy with the module
# (envoy/demo/envoy.yaml), shows live probe answers, and keeps running until
# Ctrl-C. Run it with `just demo` from the repository root.
# DEMO_ONCE=1 stops after the answers (used to check the demo itself).
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${ENVOY:?set ENVOY to the Envoy binary (just demo does)}"
log_dir=$(mktemp -d)
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$log_dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

target/debug/examples/demo_deps >"$log_dir/deps.log" 2>&1 &
pids+=($!)
"$ENVOY" -c envoy/demo/envoy.yaml --concurrency 2 --use-dynamic-base-id -l warning \
    --log-path "$log_dir/envoy.log" &
pids+=($!)

# Wait for Envoy's admin API to say LIVE (polling, no fixed sleep).
for _ in $(seq 1 300); do
    if [ "$(curl -s 127.0.0.1:9901/ready 2>/dev/null)" = "LIVE" ]; then break; fi
    if ! kill -0 "${pids[1]}" 2>/dev/null; then
        echo "Envoy exited; its log:" >&2; cat "$log_dir/envoy.log" >&2; exit 1
    fi
    sleep 0.1
done
[ "$(curl -s 127.0.0.1:9901/ready)" = "LIVE" ] || { echo "Envoy did not become ready" >&2; exit 1; }

show() { # show "title" curl-args...
    echo
    echo "== $1"
    shift
    printf '$ curl'; printf " %q" "$@"; echo
    curl -s -w '(HTTP %{http_code}, %{time_total}s)\n' "$@"
}
mode() { curl -s "127.0.0.1:$1/__mode/$2" >/dev/null; }

show "Liveness: public, answered by the filter with zero callouts" \
    http://127.0.0.1:10000/livez
show "Readiness: three dependencies called in parallel, all pass" \
    -H 'x-health: demo-secret' 'http://127.0.0.1:10000/readyz?verbose'
mode 18081 fail   # db answers 500
mode 18082 hang   # cache (non-critical) never answers
show "Readiness failing: db answers 500 (critical), cache hangs (non-critical: warn)" \
    -H 'x-health: demo-secret' 'http://127.0.0.1:10000/readyz?verbose'
show "The same as JSON" \
    -H 'x-health: demo-secret' -H 'accept: application/json' 'http://127.0.0.1:10000/readyz'
mode 18081 ok
mode 18082 ok
show "Unauthorized: wrong secret, answered 404 as if nothing were there; no callout made" \
    -i -H 'x-health: guess' 'http://127.0.0.1:10000/readyz'
show "Everything else goes to the application; the probe header is removed" \
    -H 'x-health: demo-secret' 'http://127.0.0.1:10000/orders?id=7'

[ "${DEMO_ONCE:-}" = 1 ] && exit 0
cat <<'MSG'

Envoy is on 127.0.0.1:10000 (admin 127.0.0.1:9901). Try:
  curl -s -H 'x-health: demo-secret' 'http://127.0.0.1:10000/readyz?verbose'
  curl -s 'http://127.0.0.1:10000/health/demo-secret/ready?format=json'
  curl -s 127.0.0.1:18081/__mode/hang     # db: ok | fail | hang | slow | status-<n> | delay-<ms>
Ctrl-C stops everything.
MSG
wait
