#!/usr/bin/env bash
# The Temporal CLI with its output (the dev server's start-up banner and its own log lines, e.g. the
# "deployment client error" of a worker stopped mid-registration) appended to a log file, for the
# test helpers: a green test run prints test names and a summary only.
exec "${MDP_TEMPORAL_REAL_BIN:?MDP_TEMPORAL_REAL_BIN names the Temporal CLI}" "$@" >>"${MDP_TEMPORAL_CLI_LOG:-/dev/null}" 2>&1
