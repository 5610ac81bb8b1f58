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
