#!/usr/bin/env bash
# Installs the OpenAPI linter `make test` runs (@redocly/cli, pinned in package-lock.json) under
# tools/openapi-lint/node_modules. Idempotent: does nothing when the installed tree matches the
# lock file. Needs Node.js >= 20.19 with npm; installs Debian's nodejs and npm when they are missing.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v npm >/dev/null 2>&1; then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "openapi-lint: installing Debian's nodejs and npm" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >&2
fi
node -e 'const [a, b] = process.versions.node.split(".").map(Number); if (a < 20 || (a === 20 && b < 19)) { console.error("openapi-lint: Node.js " + process.versions.node + " is too old; @redocly/cli needs >= 20.19"); process.exit(1) }'

# npm ci writes node_modules/.package-lock.json; when it matches the lock file, the tree is current.
if [[ -f node_modules/.package-lock.json ]] && [[ -x node_modules/.bin/redocly ]] &&
  node -e 'const a = require("./package-lock.json").packages, b = require("./node_modules/.package-lock.json").packages; for (const k of Object.keys(a)) { if (k && (!b[k] || b[k].version !== a[k].version)) process.exit(1) }'; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
