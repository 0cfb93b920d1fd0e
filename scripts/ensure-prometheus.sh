#!/usr/bin/env bash
# Makes Prometheus (server and promtool) available and prints the directory
# holding both, the way scripts/ensure-envoy.sh does for Envoy: $PROMETHEUS_DIR,
# then prometheus and promtool on PATH, then Debian's `prometheus` package
# (needs root and apt). Only the tests call this.
set -euo pipefail
if [[ -n "${PROMETHEUS_DIR:-}" ]]; then
  [[ -x "$PROMETHEUS_DIR/prometheus" && -x "$PROMETHEUS_DIR/promtool" ]] || { echo "PROMETHEUS_DIR=$PROMETHEUS_DIR has no prometheus and promtool" >&2; exit 1; }
  echo "$PROMETHEUS_DIR"; exit 0
fi
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "mcp-pin: installing Debian's prometheus package (server and promtool)" >&2
  apt-get update -qq >&2 || true
  # No daemon is started: there is no init system here, and the tests start their own.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
fi
dirname "$(command -v promtool)"
