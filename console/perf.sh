#!/usr/bin/env bash
# perf.sh PERFSERVE — starts the synthetic-fleet server, measures the command centre in
# Chromium (e2e/perf.mjs) and stops the server.
set -euo pipefail
out=$(mktemp)
"$1" -trucks "${MW_TRUCKS:-15000}" >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q '^token=' "$out" && break; sleep 0.1; done
MW_URL=$(sed -n 's/^url=//p' "$out") MW_TOKEN_SUPERVISOR=$(sed -n 's/^token=//p' "$out") MW_TRUCKS="${MW_TRUCKS:-15000}" \
  node "$(dirname "$0")/e2e/perf.mjs"
