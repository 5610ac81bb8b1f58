#!/usr/bin/env bash
# Starts Redis (AOF on), PostgreSQL 15 and the Temporal dev server on 127.0.0.1, each with its data
# under .data/ so state survives restarts. Idempotent: a service already answering is left alone.
set -euo pipefail
source "$(dirname "$0")/env.sh"
mkdir -p "$MDP_DATA_DIR"

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "$name did not come up within ${secs}s"; return 1
}

start_redis() {
  if redis-cli -h 127.0.0.1 -p "$MDP_REDIS_PORT" ping >/dev/null 2>&1; then log "redis already up on :$MDP_REDIS_PORT"; return; fi
  mkdir -p "$MDP_DATA_DIR/redis"
  redis-server --bind 127.0.0.1 --port "$MDP_REDIS_PORT" --dir "$MDP_DATA_DIR/redis" \
    --appendonly yes --appendfsync "$MDP_REDIS_FSYNC" --save 60 1000 --daemonize yes \
    --logfile "$MDP_DATA_DIR/redis/redis.log" --pidfile "$MDP_DATA_DIR/redis/redis.pid"
  wait_for redis 10 redis-cli -h 127.0.0.1 -p "$MDP_REDIS_PORT" ping
  log "redis up on 127.0.0.1:$MDP_REDIS_PORT (AOF $MDP_REDIS_FSYNC)"
}

start_postgres() {
  local dir; dir=$(pg_data_dir)
  if "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$MDP_PG_PORT" -q; then
    if ! PGPASSWORD=mdp psql -h 127.0.0.1 -p "$MDP_PG_PORT" -U mdp -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
      log "a PostgreSQL server on :$MDP_PG_PORT does not accept user mdp (password mdp): another cluster holds the port."
      log "stop it (e.g. pg_ctlcluster 15 main stop) or pick a free port: MDP_PG_PORT=55432 bash scripts/live.sh"
      exit 1
    fi
    log "postgres already up on :$MDP_PG_PORT"
  else
    if [ ! -f "$dir/PG_VERSION" ]; then
      mkdir -p "$dir"
      local pw; pw=$(mktemp); echo mdp >"$pw"
      # PostgreSQL refuses to run as root; the data directory belongs to the postgres user.
      chown -R postgres:postgres "$dir" "$pw"
      runuser -u postgres -- "$PG_BIN/initdb" -D "$dir" -U mdp --pwfile="$pw" --auth=scram-sha-256 -E UTF8 >/dev/null
      rm -f "$pw"
    fi
    chown -R postgres:postgres "$dir"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $MDP_PG_PORT -k /tmp -c fsync=on -c max_connections=200" start >/dev/null
    log "postgres up on 127.0.0.1:$MDP_PG_PORT"
  fi
  PGPASSWORD=mdp psql -h 127.0.0.1 -p "$MDP_PG_PORT" -U mdp -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='mdp'" | grep -q 1 \
    || PGPASSWORD=mdp psql -h 127.0.0.1 -p "$MDP_PG_PORT" -U mdp -d postgres -qc "CREATE DATABASE mdp" 
}

start_temporal() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$MDP_TEMPORAL_PORT") 2>/dev/null; then log "temporal already up on :$MDP_TEMPORAL_PORT"; return; fi
  [ -x "$MDP_TEMPORAL_BIN" ] || { log "temporal CLI missing at $MDP_TEMPORAL_BIN: run scripts/install.sh"; exit 1; }
  mkdir -p "$MDP_DATA_DIR/temporal"
  # SQLite file so workflows survive a restart of the dev server; UI on its own port.
  nohup "$MDP_TEMPORAL_BIN" server start-dev --ip 127.0.0.1 --port "$MDP_TEMPORAL_PORT" \
    --ui-ip 127.0.0.1 --ui-port "$MDP_TEMPORAL_UI_PORT" --db-filename "$MDP_DATA_DIR/temporal/temporal.db" \
    --log-level warn >"$MDP_DATA_DIR/temporal/server.log" 2>&1 &
  echo $! >"$MDP_DATA_DIR/temporal/temporal.pid"
  wait_for temporal 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MDP_TEMPORAL_PORT"
  log "temporal up on 127.0.0.1:$MDP_TEMPORAL_PORT, Web UI http://127.0.0.1:$MDP_TEMPORAL_UI_PORT"
}

for svc in "${@:-redis postgres temporal}"; do
  for s in $svc; do "start_$s"; done
done
