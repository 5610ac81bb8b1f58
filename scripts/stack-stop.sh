#!/usr/bin/env bash
# Stops what stack-start.sh started (data is kept under .data/).
set -uo pipefail
source "$(dirname "$0")/env.sh"
if [ -f "$MDP_DATA_DIR/temporal/temporal.pid" ]; then
  kill "$(cat "$MDP_DATA_DIR/temporal/temporal.pid")" 2>/dev/null && log "temporal stopped"; rm -f "$MDP_DATA_DIR/temporal/temporal.pid"
fi
pg_dir=$(pg_data_dir)
if [ -f "$pg_dir/PG_VERSION" ]; then
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg_dir" -m fast stop >/dev/null 2>&1 && log "postgres stopped"
fi
redis-cli -h 127.0.0.1 -p "$MDP_REDIS_PORT" shutdown >/dev/null 2>&1 && log "redis stopped"
exit 0
