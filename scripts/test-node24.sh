#!/usr/bin/env bash
# The whole test suite (npm test) on Node 24: a folder holding only that
# `node` goes first on PATH, so npm, mocha, mcp-pin, the pods and every child
# process the tests start run on it. (Only `node`: the wheel's own npm script
# does not run from where the wheel puts it.) node_modules is shared: it has
# no native addons.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node24="$(bash "$root/scripts/ensure-node24.sh")"
bindir="$root/.node24-venv/path"
mkdir -p "$bindir"
ln -sf "$node24" "$bindir/node"
export PATH="$bindir:$PATH"
echo "mcp-pin: running the tests on $(node --version) ($node24)"
cd "$root"
exec npm test
