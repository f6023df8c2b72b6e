#!/usr/bin/env bash
# build.sh — the console's tools and bundle, idempotent.
#
#   console/build.sh deps     Node's packages (npm ci, when package-lock.json changed) and Debian's
#                             chromium for the browser journeys (when /usr/bin/chromium is missing)
#   console/build.sh build    the bundle: web/ → dist/ (embedded in the binary by console.go)
#
# Node (v20 or later) and npm must be installed; the npm registry must be reachable for deps.
set -euo pipefail
cd "$(dirname "$0")"

need_node() {
  command -v node >/dev/null && command -v npm >/dev/null || {
    echo "console: node and npm are needed to build the console and run its browser journeys (apt-get install nodejs npm)" >&2
    exit 1
  }
}

deps() {
  need_node
  # npm ci only when the lock file changed since the last install.
  if [[ ! -f node_modules/.package-lock.json ]] || ! cmp -s <(sed 1,3d package-lock.json) <(sed 1,3d node_modules/.mw-lock 2>/dev/null); then
    npm ci --no-audit --no-fund --loglevel=error >&2
    cp package-lock.json node_modules/.mw-lock
  fi
  if [[ ! -x /usr/bin/chromium || ! -d /usr/share/fonts/truetype/wqy ]]; then
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    echo "console: installing Debian's chromium (and a CJK font for its screenshots) for the browser journeys" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-wqy-microhei >&2
    [[ -x /usr/bin/chromium ]] || { echo "console: /usr/bin/chromium still missing after apt-get install" >&2; exit 1; }
  fi
}

build() {
  need_node
  [[ -d node_modules/maplibre-gl ]] || deps
  node build.mjs
}

case "${1:-}" in
  deps) deps ;;
  build) build ;;
  *) echo "usage: console/build.sh deps|build" >&2; exit 2 ;;
esac
