#!/usr/bin/env bash
# The meshprobe demo (`just demo`): the demo dependencies and application,
# a real Envoy with the module (envoy/demo/envoy.yaml), live probe answers,
# then it keeps running until Ctrl-C. DEMO_ONCE=1 stops after the answers.
set -euo pipefail
cd "$(dirname "$0")/../.."
source envoy/lib.sh
start_stack envoy/demo/envoy.yaml 9901

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
