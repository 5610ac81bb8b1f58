#!/usr/bin/env bash
# The main job: install what is missing, start the local stack, and run the live synthetic
# pipeline with progress in this terminal. Ctrl-C stops it; running it again resumes.
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash "$MDP_ROOT/scripts/install.sh"
source "$MDP_ROOT/scripts/env.sh" # again: install.sh may just have unpacked Node 24 into .cache/node
bash "$MDP_ROOT/scripts/stack-start.sh"
cd "$MDP_ROOT"
exec node dist/client/cli.js up --config "${MDP_CONFIG:-configs/streaming.yaml}"
