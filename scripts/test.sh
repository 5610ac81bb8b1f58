#!/usr/bin/env bash
# Runs the test suite against real services: install what is missing, start the local stack,
# lint, then mocha (unit + integration).
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash "$MDP_ROOT/scripts/install.sh"
source "$MDP_ROOT/scripts/env.sh" # again: install.sh may just have unpacked Node 24 into .cache/node
# Kafka too: the integration suite runs against both buses (Redis Streams and Kafka).
bash "$MDP_ROOT/scripts/stack-start.sh" redis postgres temporal kafka
cd "$MDP_ROOT"
npm run lint --silent
# With no arguments, the whole suite; otherwise the given files (the spec list is not in
# .mocharc.json, or mocha would add it to the files given).
# The fault matrix (test/faults) starts private Redis, PostgreSQL and Temporal servers per file.
if [ $# -eq 0 ]; then set -- 'dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js' 'dist/test/faults/**/*.test.js'; fi
npx mocha "$@"
