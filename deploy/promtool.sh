#!/usr/bin/env bash
# Installs Debian's prometheus package when promtool or prometheus is missing: promtool for
# `make rules`, the server for the pipeline's test that scrapes a running pipeline and evaluates
# the rules (pipeline/prometheus_test.go). Idempotent. Installing the package may try to start a
# prometheus service; nothing here relies on it (the test starts its own, on a port of its own).
set -euo pipefail
command -v promtool >/dev/null && command -v prometheus >/dev/null && exit 0
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "promtool: installing Debian's prometheus package (promtool and the prometheus server)" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >&2
for bin in promtool prometheus; do
	command -v "$bin" >/dev/null || { echo "promtool: $bin still missing after apt-get install prometheus" >&2; exit 1; }
done
