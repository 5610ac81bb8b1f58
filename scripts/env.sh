# Shared defaults for the local stack; every value can be overridden from the environment.
# Sourced by the other scripts; everything listens on 127.0.0.1 only.
MDP_ROOT=${MDP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
MDP_DATA_DIR=${MDP_DATA_DIR:-$MDP_ROOT/.data}
MDP_REDIS_PORT=${MDP_REDIS_PORT:-6379}
# Redis AOF fsync policy: everysec (may lose the last second of accepted events on a host crash)
# or always (loses nothing Redis acknowledged, at a throughput cost; see the README).
MDP_REDIS_FSYNC=${MDP_REDIS_FSYNC:-everysec}
MDP_PG_PORT=${MDP_PG_PORT:-5432}
MDP_TEMPORAL_PORT=${MDP_TEMPORAL_PORT:-7233}
MDP_TEMPORAL_UI_PORT=${MDP_TEMPORAL_UI_PORT:-8233}
MDP_TEMPORAL_VERSION=${MDP_TEMPORAL_VERSION:-v1.5.1}
MDP_TEMPORAL_BIN=${MDP_TEMPORAL_BIN:-$MDP_ROOT/.cache/bin/temporal}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# Node 24 LTS (package.json engines: >=24.6). install.sh unpacks it from the npm registry into
# .cache/node when the machine's node is older; once there it comes first on PATH, so node, npm
# and npx (the system npm is a `#!/usr/bin/env node` script) all run on it.
MDP_NODE_VERSION=${MDP_NODE_VERSION:-24.22.3}
MDP_NODE_DIR=${MDP_NODE_DIR:-$MDP_ROOT/.cache/node}
if [ -x "$MDP_NODE_DIR/bin/node" ]; then
  case ":$PATH:" in *":$MDP_NODE_DIR/bin:"*) ;; *) PATH="$MDP_NODE_DIR/bin:$PATH" ;; esac
  export PATH
fi
# Apache Kafka (KRaft, one combined broker+controller), the other bus: its jars come from Maven
# Central into .cache/kafka (install.sh); stack-start.sh starts it when asked (`kafka`) or when
# MDP_BUS=kafka.
MDP_KAFKA_VERSION=${MDP_KAFKA_VERSION:-4.1.1}
MDP_KAFKA_HOME=${MDP_KAFKA_HOME:-$MDP_ROOT/.cache/kafka}
MDP_KAFKA_PORT=${MDP_KAFKA_PORT:-9092}
MDP_KAFKA_CONTROLLER_PORT=${MDP_KAFKA_CONTROLLER_PORT:-9093}
MDP_KAFKA_RETENTION_HOURS=${MDP_KAFKA_RETENTION_HOURS:-168}
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:$MDP_KAFKA_PORT}
export REDIS_URI=${REDIS_URI:-redis://127.0.0.1:$MDP_REDIS_PORT/0}
export STORE_URL=${STORE_URL:-postgres://mdp:mdp@127.0.0.1:$MDP_PG_PORT/mdp}
export TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-127.0.0.1:$MDP_TEMPORAL_PORT}
export MDP_TEMPORAL_BIN
log() { printf '[mdp] %s\n' "$*" >&2; }

# PostgreSQL runs as the postgres user, which may not be able to reach a checkout under a private
# home directory; then its data lives in a per-checkout folder of its own home instead.
pg_data_dir() {
  if [ -n "${MDP_PG_DATA:-}" ]; then echo "$MDP_PG_DATA"; return; fi
  if id postgres >/dev/null 2>&1 && runuser -u postgres -- test -x "$MDP_ROOT" 2>/dev/null; then
    echo "$MDP_DATA_DIR/postgres"
  else
    echo "/var/lib/postgresql/mdp-$(printf '%s' "$MDP_ROOT" | md5sum | cut -c1-8)"
  fi
}

# Kafka: whether install.sh left a complete copy of the pinned jars, and the pid of the broker that
# stack-start.sh started on this data dir if it still runs (a reused pid is not taken for it).
kafka_libs_ok() { [ "$(cat "$MDP_KAFKA_HOME/libs/.version" 2>/dev/null)" = "$MDP_KAFKA_VERSION" ]; }
kafka_broker_pid() {
  local pid; pid=$(cat "$MDP_DATA_DIR/kafka/kafka.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ' kafka\.Kafka ' && echo "$pid"
}
