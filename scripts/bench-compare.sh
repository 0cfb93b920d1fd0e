#!/usr/bin/env bash
# npm run bench:compare -- <git-ref>: one change's before/after in one run.
# The ref is checked out in a temporary worktree (sharing this checkout's
# node_modules) and built; bench/run.ts then runs that build with its own
# Envoy template against this tree's, taking turns (BENCH_BEFORE). The
# worktree is removed afterwards, also on failure or Ctrl-C.
set -euo pipefail
ref=${1:?usage: npm run bench:compare -- <git-ref>}
root=$(cd "$(dirname "$0")/.." && pwd)
tree=$(mktemp -d "${TMPDIR:-/tmp}/mcp-pin-before-XXXXXX")
cleanup() { git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"; git -C "$root" worktree prune; }
trap cleanup EXIT
git -C "$root" worktree add --quiet --detach "$tree" "$ref"
ln -s "$root/node_modules" "$tree/node_modules"
(cd "$tree" && npm run --silent build)
bash "$root/scripts/ensure-envoy.sh" >/dev/null
cd "$root"
npm run --silent build
BENCH_BEFORE="$tree" node --import tsx bench/run.ts
