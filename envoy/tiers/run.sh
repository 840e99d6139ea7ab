#!/usr/bin/env bash
# The tiers example (`just tiers`): node, application and pipeline
# endpoints, every view of the pipeline, then it keeps running until Ctrl-C.
# DEMO_ONCE=1 stops after the answers (the README's outputs come from it).
set -euo pipefail
cd "$(dirname "$0")/../.."
source envoy/lib.sh
start_stack envoy/tiers/envoy.yaml 9911
base=http://127.0.0.1:10100
feed=$base/health/demo-secret/pipeline

# Mixed states: cache (non-critical) answers 500, the payments provider's
# status page reports a major outage (non-critical); later search fails.
mode 18082 fail
mode 18085 statuspage-major

show "node: liveness" "$base/livez"
show "node: Envoy's own state (admin API checks)" -H 'x-health: demo-secret' "$base/proxyz?verbose"
curl -s -X POST 127.0.0.1:9911/healthcheck/fail >/dev/null
show "node: after admin /healthcheck/fail, Envoy is draining" -H 'x-health: demo-secret' "$base/proxyz?verbose"
show "node: liveness is still 200" "$base/livez"
curl -s -X POST 127.0.0.1:9911/healthcheck/ok >/dev/null
show "application, text" -H 'x-health: demo-secret' "$base/readyz"
show "application, text ?verbose (Kubernetes style)" -H 'x-health: demo-secret' "$base/readyz?verbose"
show "application, JSON" -H 'x-health: demo-secret' "$base/readyz?format=json"
show "application, django-health-check map" -H 'x-health: demo-secret' "$base/readyz?format=dhc"
show "application, one check (per-check path)" -H 'x-health: demo-secret' "$base/readyz/db?verbose"
show "application, ?exclude= (an unknown name warns)" -H 'x-health: demo-secret' "$base/readyz?verbose&exclude=cache&exclude=nope"
mode 18083 fail
show "pipeline, application/health+json (search now failing)" -H 'accept: application/health+json' "$feed"
show "pipeline, Atom feed (always 200)" "$feed?format=atom"
show "pipeline, RSS feed" "$feed?format=rss"
show "pipeline, HTML status page" "$feed"
mode 18083 ok
show "HEAD: headers only" -I -H 'x-health: demo-secret' "$base/readyz"
show "Accept nothing can satisfy: 406" -H 'x-health: demo-secret' -H 'accept: image/png' "$base/readyz"
mode 18082 ok
mode 18085 statuspage-none

[ "${DEMO_ONCE:-}" = 1 ] && exit 0
cat <<'MSG'

Envoy is on 127.0.0.1:10100 (admin 127.0.0.1:9911). Open the status page:
  http://127.0.0.1:10100/health/demo-secret/pipeline
Switch a status page: curl -s 127.0.0.1:18084/__mode/statuspage-major  (none | minor | major | critical)
Ctrl-C stops everything.
MSG
wait
