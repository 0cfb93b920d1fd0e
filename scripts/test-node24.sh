#!/usr/bin/env bash
# The tests on Node 24 (what users run; the machines run Node 20, and the
# README's npm test runs everything there): a folder holding only that
# `node` goes first on PATH, so mocha, mcp-pin, the pods and every child
# process the tests start run on it. (Only `node`: the wheel's own npm script
# does not run from where the wheel puts it.) node_modules is shared: it has
# no native addons.
#
# Which tests: the unit and protocol suites, and the integration files
# whose subject is what the Node runtime runs: mcp-pin's gRPC server
# (grpc-js, HTTP/2, Unix sockets) and its HTTP client (undici, relays and
# re-initializes), the SDK pods and clients on Node 24, under pinning,
# recovery, relays, redirects, replica loss and session-less traffic. The
# rest (Envoy's own behaviour, operator tools, Python pods, the long-call
# waits) runs on Node 20 in npm test; both together keep .ci/run within its
# 30 minutes on the 2-core CI machine. NODE24_ALL=1 runs everything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/node24-path.sh
source "$root/scripts/node24-path.sh"
echo "mcp-pin: running the tests on $(node --version) ($node24)"
cd "$root"
if [[ "${NODE24_ALL:-}" == 1 ]]; then exec npm test; fi
# What npm test sets up first: Envoy (the Python SDK is not needed by these files).
bash "$root/scripts/ensure-envoy.sh" >/dev/null
core=()
for f in pinning recovery recovery-protocol sessionless replica-loss control-plane; do core+=("test/integration/$f.test.ts"); done
exec npx mocha 'test/unit/**/*.test.ts' 'test/protocol/**/*.test.ts' "${core[@]}"
