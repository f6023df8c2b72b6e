#!/usr/bin/env bash
# Installs promtool (from Debian's prometheus package) when missing, for `make rules`. Idempotent.
# Installing the package may try to start a prometheus service; nothing here relies on it.
set -euo pipefail
command -v promtool >/dev/null && exit 0
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "promtool: installing Debian's prometheus package (it provides promtool)" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >&2
command -v promtool >/dev/null || { echo "promtool: still missing after apt-get install prometheus" >&2; exit 1; }
