#!/usr/bin/env bash
# npm run bench:compare -- <before-ref> [<after-ref>]: one change's
# before/after in one run. Each ref is checked out in a temporary worktree
# (sharing this checkout's node_modules) and built; without <after-ref>, this
# checkout as it is is the "after". bench/run.ts then runs each build with
# its own Envoy template, taking turns (BENCH_BEFORE, BENCH_AFTER). The
# worktrees are removed afterwards, also on failure or Ctrl-C.
set -euo pipefail
before_ref=${1:?usage: npm run bench:compare -- <before-ref> [<after-ref>]}
after_ref=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
trees=()
cleanup() {
  for t in "${trees[@]}"; do git -C "$root" worktree remove --force "$t" >/dev/null 2>&1 || rm -rf "$t"; done
  git -C "$root" worktree prune
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap too.
trap 'exit 130' INT TERM
checkout() {
  local tree
  tree=$(mktemp -d "${TMPDIR:-/tmp}/mcp-pin-bench-XXXXXX")
  trees+=("$tree")
  git -C "$root" worktree add --quiet --detach "$tree" "$1"
  ln -s "$root/node_modules" "$tree/node_modules"
  (cd "$tree" && npm run --silent build)
  echo "$tree"
}
before=$(checkout "$before_ref" | tail -1)
if [ -n "$after_ref" ]; then after=$(checkout "$after_ref" | tail -1); else (cd "$root" && npm run --silent build); after=$root; fi
bash "$root/scripts/ensure-envoy.sh" >/dev/null
cd "$root"
BENCH_BEFORE="$before" BENCH_AFTER="$after" node --import tsx bench/run.ts
