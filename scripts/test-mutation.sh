#!/usr/bin/env bash
# npm run test:mutation: StrykerJS over src/recovery, src/extproc and
# src/sessions (stryker.config.json), each mutant run against the unit and
# protocol tests that reach it. StrykerJS 10 needs Node 22 or newer; the
# machines run Node 20, so it runs on Node 24 (scripts/ensure-node24.sh, as
# npm run test:node24 does). The protocol simulations run PROTOCOL_RUNS
# schedules per mutant (300 here; 10,000 in npm test), the real-store one
# PROTOCOL_STORE_RUNS (100 here; 1,000 in npm test), the wider world
# PROTOCOL_WIDER_RUNS (300 here; 10,000 in npm test). Reports go to
# reports/mutation/ (git-ignored); the score's break threshold is in the config.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/node24-path.sh
source "$root/scripts/node24-path.sh"
cd "$root"
echo "mcp-pin: mutation testing on $(node --version)"
export PROTOCOL_RUNS="${PROTOCOL_RUNS:-300}"
export PROTOCOL_STORE_RUNS="${PROTOCOL_STORE_RUNS:-100}"
export PROTOCOL_WIDER_RUNS="${PROTOCOL_WIDER_RUNS:-300}"
exec npx stryker run "$@"
