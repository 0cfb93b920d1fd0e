#!/usr/bin/env bash
# npm run test:compose: the shipped Dockerfile and docker-compose.yml, built and
# run in a real Docker engine with images made here without any registry
# (scripts/ensure-docker.sh), and the scenarios of test/compose/ against the
# running stack from the host. Stops only what it started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
trap 'bash scripts/ensure-docker.sh down' EXIT
started=$(date +%s)
images="$(bash scripts/ensure-docker.sh up | tail -n1)"
# shellcheck disable=SC2163,SC2086 # NAME=value words from ensure-docker.sh
export $images
echo "mcp-pin compose: engine, Compose and base images ready in $(( $(date +%s) - started )) s ($images)"
npx mocha 'test/compose/**/*.test.ts'
