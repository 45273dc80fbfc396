#!/bin/sh
# Starts redis-server like redis-stack's /entrypoint.sh: the mounted config, the data directory,
# then REDIS_ARGS word-split (e.g. "--requirepass secret"). exec: redis-server is PID 1 and gets
# SIGTERM (it saves and exits).
set -eu
conf=""
if [ -f /redis-stack.conf ]; then
    conf=/redis-stack.conf
fi
# shellcheck disable=SC2086 # REDIS_ARGS is a list of arguments, split on purpose
exec redis-server $conf --dir "${REDIS_DATA_DIR:-/data}" --protected-mode no --daemonize no \
    ${REDIS_ARGS:-}
