#!/usr/bin/env bash
# Makes the official Python MCP SDK (PyPI `mcp`) available for the
# integration tests' Python pods and client, and prints the venv's python.
# Usage: ensure-python-mcp.sh 1.25|1.30. Each version lives in its own
# git-ignored venv (.python-mcp/<version>) filled from
# demo/python/requirements-mcp-<version>.txt (pinned; the venv is rebuilt
# when that file changes). Only the test commands call this.
set -euo pipefail
version="${1:?usage: ensure-python-mcp.sh <mcp version: 1.25 or 1.30>}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$root/demo/python/requirements-mcp-$version.txt"
venv="$root/.python-mcp/$version"
[[ -f "$req" ]] || { echo "mcp-pin: no pinned requirements for Python mcp $version ($req)" >&2; exit 2; }
stamp="$venv/.requirements"
if [[ -x "$venv/bin/python" ]] && cmp -s "$req" "$stamp"; then echo "$venv/bin/python"; exit 0; fi
py="$(command -v python3 || true)"
[[ -n "$py" ]] || { echo "mcp-pin: python3 (with venv and pip) is needed for the Python MCP SDK tests" >&2; exit 1; }
echo "mcp-pin: installing Python mcp $version (PyPI) into $venv" >&2
rm -rf "$venv"
# A venv is built beside and renamed into place: two test processes asking at once never see half of one.
tmp="$(mktemp -d "$root/.python-mcp-build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$py" -m venv "$tmp/venv" >&2 || { echo "mcp-pin: python3 -m venv failed; install the venv module (e.g. apt-get install python3-venv)" >&2; exit 1; }
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req" >&2
cp "$req" "$tmp/venv/.requirements"
mkdir -p "$root/.python-mcp"
mv "$tmp/venv" "$venv" 2>/dev/null || true
echo "$venv/bin/python"
