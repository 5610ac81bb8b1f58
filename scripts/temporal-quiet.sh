#!/usr/bin/env bash
# The Temporal CLI with its stdout (the dev server's start-up banner) appended to a log file, for the
# test helpers: a green test run prints test names and a summary only.
exec "${MDP_TEMPORAL_REAL_BIN:?MDP_TEMPORAL_REAL_BIN names the Temporal CLI}" "$@" >>"${MDP_TEMPORAL_CLI_LOG:-/dev/null}"
