#!/usr/bin/env bash
# Stops what stack-start.sh started (data is kept under .data/).
set -uo pipefail
source "$(dirname "$0")/env.sh"
if [ -f "$MDP_DATA_DIR/temporal/temporal.pid" ]; then
  kill "$(cat "$MDP_DATA_DIR/temporal/temporal.pid")" 2>/dev/null && log "temporal stopped"; rm -f "$MDP_DATA_DIR/temporal/temporal.pid"
fi
if [ -f "$MDP_DATA_DIR/postgres/PG_VERSION" ]; then
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$MDP_DATA_DIR/postgres" -m fast stop >/dev/null 2>&1 && log "postgres stopped"
fi
redis-cli -h 127.0.0.1 -p "$MDP_REDIS_PORT" shutdown >/dev/null 2>&1 && log "redis stopped"
exit 0
