#!/usr/bin/env bash
# Stops what stack-start.sh started (data is kept under .data/).
set -uo pipefail
source "$(dirname "$0")/env.sh"
if [ -f "$MDP_DATA_DIR/temporal/temporal.pid" ]; then
  kill "$(cat "$MDP_DATA_DIR/temporal/temporal.pid")" 2>/dev/null && log "temporal stopped"; rm -f "$MDP_DATA_DIR/temporal/temporal.pid"
fi
# Kafka: SIGTERM for a controlled shutdown (it flushes and closes its logs cleanly, so the next
# start skips log recovery), SIGKILL if it is still there after 30 s.
if pid=$(kafka_broker_pid); then
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; log "kafka killed (no clean shutdown within 30s)"; else log "kafka stopped"; fi
fi
rm -f "$MDP_DATA_DIR/kafka/kafka.pid"
pg_dir=$(pg_data_dir)
if [ -f "$pg_dir/PG_VERSION" ]; then
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg_dir" -m fast stop >/dev/null 2>&1 && log "postgres stopped"
fi
redis-cli -h 127.0.0.1 -p "$MDP_REDIS_PORT" shutdown >/dev/null 2>&1 && log "redis stopped"
exit 0
