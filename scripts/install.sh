#!/usr/bin/env bash
# Installs everything mdp needs on a fresh Debian machine, skipping what is already there:
# Debian packages (Redis, PostgreSQL 15), Node 24 (from the npm registry, in .cache/node) when the
# machine's node is older, the Temporal CLI (built from source with Go, cached in .cache/bin), npm
# packages, and the TypeScript build.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$MDP_ROOT"

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
[ -x "$PG_BIN/initdb" ] || need_apt+=(postgresql)
command -v psql >/dev/null || need_apt+=(postgresql-client)
# Prometheus (promtool, and the dashboard query test) and docker-compose 1.29 (validates the
# compose file without an engine).
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
# Chromium drives the Temporal Web UI check (playwright-core, no browser download).
command -v chromium >/dev/null || need_apt+=(chromium)
# npm fetches Node 24 below (Debian's npm runs on the node it brings along until then).
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Node >= 24.6 (package.json engines). The npm registry serves each release's binary as the package
# node-linux-<arch> (bin/node inside); unpacked into .cache/node, which env.sh puts first on PATH.
# Also replaces an unpacked Node whose version is not the pinned one.
node_ok() {
  command -v node >/dev/null && node -e '
    const [major, minor] = process.versions.node.split(".").map(Number);
    process.exit(major > 24 || (major === 24 && minor >= 6) ? 0 : 1);' 2>/dev/null
}
if ! node_ok || { [ -x "$MDP_NODE_DIR/bin/node" ] && [ "$("$MDP_NODE_DIR/bin/node" -v)" != "v$MDP_NODE_VERSION" ]; }; then
  case "$(uname -m)" in
    x86_64) node_arch=x64 ;; aarch64) node_arch=arm64 ;;
    *) log "no Node $MDP_NODE_VERSION package for $(uname -m): install Node >= 24.6 by hand"; exit 1 ;;
  esac
  log "installing Node $MDP_NODE_VERSION from the npm registry into .cache/node"
  node_tmp=$(mktemp -d)
  (cd "$node_tmp" && npm pack --silent "node-linux-$node_arch@$MDP_NODE_VERSION" >/dev/null)
  mkdir -p "$node_tmp/node"
  tar xzf "$node_tmp"/node-linux-*.tgz -C "$node_tmp/node" --strip-components=1
  "$node_tmp/node/bin/node" -v >/dev/null
  rm -rf "$MDP_NODE_DIR" && mkdir -p "$(dirname "$MDP_NODE_DIR")" && mv "$node_tmp/node" "$MDP_NODE_DIR"
  rm -rf "$node_tmp"
  source "$MDP_ROOT/scripts/env.sh" # puts .cache/node/bin first on PATH
  node_ok || { log "node on PATH is $(node -v) after installing Node $MDP_NODE_VERSION"; exit 1; }
fi

if [ ! -x "$MDP_TEMPORAL_BIN" ]; then
  command -v go >/dev/null || { log "Go is required to build the Temporal CLI (go install)"; exit 1; }
  log "building the Temporal CLI $MDP_TEMPORAL_VERSION with go install (first time only, takes a few minutes)"
  mkdir -p "$(dirname "$MDP_TEMPORAL_BIN")"
  GOBIN="$(dirname "$MDP_TEMPORAL_BIN")" GOFLAGS=-mod=mod go install "github.com/temporalio/cli/cmd/temporal@$MDP_TEMPORAL_VERSION"
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  # npm ci insists that the lock lists every platform's optional binaries (@swc/core-*); a registry
  # mirror that serves only this platform's leaves them out, so fall back to an install that still
  # takes every version from the lock and writes nothing.
  npm ci --no-audit --no-fund --loglevel=error 2>/dev/null \
    || npm install --no-save --no-audit --no-fund --loglevel=error
fi
log "building TypeScript"
npx tsc -p tsconfig.json
