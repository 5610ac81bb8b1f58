#!/usr/bin/env bash
# The npm packages of package-lock.json, installed only when they are not there already (install.sh).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$MDP_ROOT"

# npm ci when node_modules is missing or was installed from another lock file: a hash of
# package-lock.json is recorded in node_modules/.mdp-lock-sha256 after a good install (without that
# record, an install older than the lock file). A node_modules that is a symbolic link (a git
# worktree sharing another checkout's packages) is never installed from here: npm ci through the
# link would empty the folder every checkout shares.
lock_sha=$(sha256sum package-lock.json | cut -d' ' -f1)
lock_stamp=node_modules/.mdp-lock-sha256
if [ -L node_modules ]; then
  shared=$(readlink -f node_modules)
  if [ ! -f node_modules/.package-lock.json ]; then
    log "node_modules links to $shared, which has no packages installed: run npm ci there"
    exit 1
  fi
  if [ -f "$lock_stamp" ] && [ "$(cat "$lock_stamp")" != "$lock_sha" ]; then
    log "warning: node_modules links to $shared, installed from another package-lock.json (not reinstalled from here)"
  fi
elif [ ! -d node_modules ] \
  || { [ -f "$lock_stamp" ] && [ "$(cat "$lock_stamp")" != "$lock_sha" ]; } \
  || { [ ! -f "$lock_stamp" ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  log "installing npm packages"
  # npm ci insists that the lock lists every platform's optional binaries (@swc/core-*); a registry
  # mirror that serves only this platform's leaves them out, so fall back to an install that still
  # takes every version from the lock and writes nothing.
  npm ci --no-audit --no-fund --loglevel=error 2>/dev/null \
    || npm install --no-save --no-audit --no-fund --loglevel=error
  echo "$lock_sha" >"$lock_stamp"
fi
