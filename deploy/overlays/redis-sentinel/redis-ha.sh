#!/bin/sh
# Starts one member of the Redis set behind mcp-pin's store: `redis-ha.sh
# redis` (the data server) or `redis-ha.sh sentinel` (its Sentinel). Every
# member asks the Sentinels who the master is now and follows it; only when
# no Sentinel answers (the very first start) is member 0 the master. So a
# member that comes back after a failover rejoins as a replica of the new
# master instead of starting a second one.
#
# Environment (the StatefulSet sets it; tests set it too):
#   SELF_HOST       the name (or IP) others reach this member by
#   FIRST_HOST      member 0's name (the master of a first start)
#   SENTINEL_HOSTS  every member's name, space-separated
#   MASTER_NAME     the name the Sentinels monitor (in mcp-pin's store URL)
#   REDIS_PASSWORD  the password of every Redis (and of the Sentinels' view of them)
#   QUORUM, DOWN_AFTER_MS, DATA_DIR, REDIS_PORT, SENTINEL_PORT, BIND: defaults below
set -eu
: "${QUORUM:=2}" "${DOWN_AFTER_MS:=5000}" "${DATA_DIR:=/data}" "${REDIS_PORT:=6379}" "${SENTINEL_PORT:=26379}" "${BIND:=* -::*}"

# The master the Sentinels agree on now (host of the first that answers), or nothing.
current_master() {
  for h in $SENTINEL_HOSTS; do
    m=$(redis-cli -h "$h" -p "$SENTINEL_PORT" --raw sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | head -n 1) || true
    if [ -n "$m" ]; then
      echo "$m"
      return 0
    fi
  done
  return 0
}

master=$(current_master)
if [ -z "$master" ]; then
  # No Sentinel knows one: a first start. Member 0 leads.
  master=$FIRST_HOST
fi

case "${1:-}" in
redis)
  set -- --port "$REDIS_PORT" --bind "$BIND" --dir "$DATA_DIR" --appendonly yes --appendfsync everysec \
    --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD" --replica-announce-ip "$SELF_HOST"
  if [ "$master" != "$SELF_HOST" ]; then
    set -- "$@" --replicaof "$master" "$REDIS_PORT"
  fi
  exec redis-server "$@"
  ;;
sentinel)
  # Sentinel rewrites its config file: a writable copy of its own.
  conf="$DATA_DIR/sentinel.conf"
  cat >"$conf" <<CONF
port $SENTINEL_PORT
bind $BIND
dir $DATA_DIR
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $SELF_HOST
sentinel monitor $MASTER_NAME $master $REDIS_PORT $QUORUM
sentinel auth-pass $MASTER_NAME $REDIS_PASSWORD
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS
sentinel failover-timeout $MASTER_NAME 60000
sentinel parallel-syncs $MASTER_NAME 1
CONF
  exec redis-server "$conf" --sentinel
  ;;
*)
  echo "usage: redis-ha.sh redis|sentinel" >&2
  exit 2
  ;;
esac
