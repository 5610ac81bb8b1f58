#!/usr/bin/env bash
# Starts Redis (AOF on), PostgreSQL 15 and the Temporal dev server on 127.0.0.1, each with its data
# under .data/ so state survives restarts. Idempotent: a service already answering is left alone.
# Apache Kafka (KRaft, one node) too when named (`stack-start.sh kafka`) or when MDP_BUS=kafka.
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
  # SQLite file so workflows survive a restart of the dev server; UI on its own port. mdp's search
  # attributes (workflows/search-attributes.ts: MdpRole, MdpShard, MdpProvider, MdpDataset) and the
  # namespaces of the tests and the bench exist from the start.
  nohup "$MDP_TEMPORAL_BIN" server start-dev --ip 127.0.0.1 --port "$MDP_TEMPORAL_PORT" \
    --ui-ip 127.0.0.1 --ui-port "$MDP_TEMPORAL_UI_PORT" --db-filename "$MDP_DATA_DIR/temporal/temporal.db" \
    --search-attribute MdpRole=Keyword --search-attribute MdpShard=Int \
    --search-attribute MdpProvider=Keyword --search-attribute MdpDataset=Keyword \
    --namespace mdp-test --namespace mdp-bench \
    --log-level warn >"$MDP_DATA_DIR/temporal/server.log" 2>&1 &
  echo $! >"$MDP_DATA_DIR/temporal/temporal.pid"
  wait_for temporal 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MDP_TEMPORAL_PORT"
  log "temporal up on 127.0.0.1:$MDP_TEMPORAL_PORT, Web UI http://127.0.0.1:$MDP_TEMPORAL_UI_PORT"
}

# One node that is both broker and controller (KRaft, no ZooKeeper), from the jars install.sh put in
# .cache/kafka: PLAINTEXT on MDP_KAFKA_PORT, the controller quorum on MDP_KAFKA_CONTROLLER_PORT, data
# and logs under .data/kafka. server.properties is written anew at each start, so a changed port or
# retention applies to existing data; the storage is formatted once.
start_kafka() {
  local dir="$MDP_DATA_DIR/kafka"
  if (exec 3<>"/dev/tcp/127.0.0.1/$MDP_KAFKA_PORT") 2>/dev/null; then log "kafka already up on :$MDP_KAFKA_PORT"; return; fi
  kafka_libs_ok || { log "Kafka $MDP_KAFKA_VERSION jars missing in $MDP_KAFKA_HOME: run scripts/install.sh"; exit 1; }
  command -v java >/dev/null || { log "java missing: run scripts/install.sh"; exit 1; }
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
# Written by scripts/stack-start.sh at each start: edit the script or its MDP_KAFKA_* variables.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$MDP_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$MDP_KAFKA_PORT,CONTROLLER://127.0.0.1:$MDP_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$MDP_KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
# One node: every internal topic has a single replica; topics are created on purpose only.
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
log.retention.hours=$MDP_KAFKA_RETENTION_HOURS
# After a SIGKILL the restarted broker can register only once its previous registration's session
# expired: 4 s (heartbeats each second) instead of 9 s brings it back in about 5 s, not 14 s.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
# A small footprint: fewer threads and internal-topic partitions than a production broker, and a
# 16 MB (not 128 MB) compaction buffer for __consumer_offsets.
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
EOF
  if [ ! -f "$dir/data/meta.properties" ]; then
    # A cluster id is 16 random bytes, base64url without padding.
    local cluster_id; cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    java -Xmx256m -XX:+UseSerialGC -cp "$MDP_KAFKA_HOME/libs/*" \
      -Dlog4j2.configurationFile="$MDP_KAFKA_HOME/config/log4j2-tools.properties" \
      kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; log "formatting Kafka storage in $dir/data failed"; exit 1; }
    log "kafka storage formatted in $dir/data (cluster id $cluster_id)"
  fi
  local pid
  if pid=$(kafka_broker_pid); then
    log "kafka (pid $pid) is still starting; waiting for it"
  else
    # server.log (log4j2, rolled) holds the broker's log; kafka.out the JVM's own output.
    local from=$(( $(cat "$dir/server.log" 2>/dev/null | wc -l) + 1 ))
    # shellcheck disable=SC2086 # MDP_KAFKA_HEAP_OPTS is a list of JVM flags
    nohup java ${MDP_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
      -Xlog:gc*:file="$dir/gc.log":time,tags:filecount=3,filesize=10M \
      -Djava.awt.headless=true -Dkafka.logs.dir="$dir" \
      -Dlog4j2.configurationFile="$MDP_KAFKA_HOME/config/log4j2-broker.properties" \
      -cp "$MDP_KAFKA_HOME/libs/*" kafka.Kafka "$dir/server.properties" >"$dir/kafka.out" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/kafka.pid"
  fi
  # Ready when the broker logs that it started (it is unfenced and serves metadata by then), not
  # merely when the port accepts connections.
  for _ in $(seq 1 600); do
    if tail -n +"${from:-1}" "$dir/server.log" 2>/dev/null | grep -q 'Kafka Server started'; then
      log "kafka up on 127.0.0.1:$MDP_KAFKA_PORT (KRaft controller :$MDP_KAFKA_CONTROLLER_PORT, data $dir/data)"
      return
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 30 "$dir/server.log" "$dir/kafka.out" >&2 2>/dev/null
  log "kafka did not come up within 60s (logs: $dir/server.log, $dir/kafka.out)"
  exit 1
}

services="redis postgres temporal"
[ "${MDP_BUS:-}" = kafka ] && services="$services kafka"
for svc in "${@:-$services}"; do
  for s in $svc; do "start_$s"; done
done
