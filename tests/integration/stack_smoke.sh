#!/usr/bin/env bash
# Smoke test of ci/stack itself, on its own state directory and its own ports (so it does not
# touch a stack someone else runs on the default ports):
#   up from a clean state (timed) -> status -> a second up is a fast no-op -> test_stack passes
#   (when a build directory is given) -> a killed service is restarted by up -> a port held by a
#   foreign process makes up fail, naming the port and the process -> down leaves no process and
#   no listener -> `up redis` starts only redis -> down.
#
# usage: tests/integration/stack_smoke.sh [BUILD_DIR]
#        TX_SMOKE_PORT_BASE (default 30000) moves every port.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-}
base=${TX_SMOKE_PORT_BASE:-30000}
stack=$repo/ci/stack

export TX_STATE_DIR=$repo/.state/stack-smoke-$$
export TX_REDIS_PORT=$((base + 379)) TX_AMQP_PORT=$((base + 672)) TX_RABBIT_MGMT_PORT=$((base + 1672))
export TX_RABBIT_DIST_PORT=$((base + 2672)) TX_EPMD_PORT=$((base + 4369)) TX_PG_PORT=$((base + 432))
export TX_S3_PORT=$((base + 9000)) TX_SMTP_PORT=$((base + 1025)) TX_MAIL_API_PORT=$((base + 1080))
ports=("$TX_REDIS_PORT" "$TX_AMQP_PORT" "$TX_RABBIT_MGMT_PORT" "$TX_RABBIT_DIST_PORT" "$TX_EPMD_PORT"
    "$TX_PG_PORT" "$TX_S3_PORT" "$TX_SMTP_PORT" "$TX_MAIL_API_PORT")

failures=0
foreign_pid=""
say() { printf 'smoke: %s\n' "$*"; }
fail() {
    printf 'smoke: FAIL: %s\n' "$*" >&2
    failures=$((failures + 1))
}
now_ms() {
    local t=$EPOCHREALTIME
    t=${t/./}
    printf '%s' $((t / 1000))
}

cleanup() {
    if [ -n "$foreign_pid" ]; then
        kill "$foreign_pid" 2>/dev/null || true
    fi
    "$stack" down >/dev/null 2>&1 || true
    rm -rf "$TX_STATE_DIR"
}
trap cleanup EXIT

for p in "${ports[@]}"; do
    if [ -n "$(ss -Hltn "sport = :$p")" ]; then
        printf 'smoke: port %s is in use; set TX_SMOKE_PORT_BASE\n' "$p" >&2
        exit 2
    fi
done

# 1. Clean up.
t0=$(now_ms)
"$stack" up || {
    fail "up from a clean state"
    exit 1
}
say "full up from a clean state: $(($(now_ms) - t0)) ms"
"$stack" status >/dev/null || fail "status after up is not all ready"

# 2. Second up is a no-op.
t0=$(now_ms)
out=$("$stack" up)
ms=$(($(now_ms) - t0))
say "second up: $ms ms"
[ "$(grep -c 'already running' <<<"$out")" -eq 5 ] || fail "second up restarted something: $out"
[ "$ms" -lt 3000 ] || fail "second up took $ms ms"

# 3. The integration test against this stack.
if [ -n "$build" ]; then
    (eval "$("$stack" env)" && "$build/tests/test_stack") >/dev/null 2>&1 ||
        fail "test_stack against the smoke stack"
fi

# 4. A service killed behind the script's back is restarted.
kill -KILL "$(cat "$TX_STATE_DIR/run/redis.pid")"
sleep 0.5
"$stack" status redis >/dev/null && fail "status says redis is ready after kill -9"
"$stack" up redis >/dev/null || fail "up redis after kill -9"
redis-cli -p "$TX_REDIS_PORT" ping | grep PONG >/dev/null || fail "redis not answering after restart"

# 5. A foreign listener on a service port: up fails naming the port and the process.
"$stack" down s3 >/dev/null
python3 -m http.server --bind 127.0.0.1 "$TX_S3_PORT" >/dev/null 2>&1 &
foreign_pid=$!
for _ in $(seq 50); do
    [ -n "$(ss -Hltn "sport = :$TX_S3_PORT")" ] && break
    sleep 0.1
done
if err=$("$stack" up s3 2>&1); then
    fail "up s3 succeeded although port $TX_S3_PORT is taken"
else
    if ! grep -q "port $TX_S3_PORT" <<<"$err" || ! grep -q python3 <<<"$err"; then
        fail "up s3 error does not name the port and the process: $err"
    fi
fi
kill "$foreign_pid"
wait "$foreign_pid" 2>/dev/null || true
foreign_pid=""

# 6. down leaves nothing behind.
pids=$({ "$stack" status || true; } | awk 'NR > 1 && $2 ~ /^[0-9]+$/ {print $2}')
"$stack" down >/dev/null || fail "down"
for p in $pids; do
    if ps -p "$p" >/dev/null 2>&1; then
        fail "process $p still exists after down: $(ps -o pid=,stat=,cmd= -p "$p")"
    fi
done
for p in "${ports[@]}"; do
    [ -z "$(ss -Hltn "sport = :$p")" ] || fail "port $p still listening after down"
done

# 7. up NAME starts only that service.
"$stack" up redis >/dev/null || fail "up redis"
running=$({ "$stack" status || true; } | awk 'NR > 1 && $2 ~ /^[0-9]+$/ {print $1}' | tr '\n' ' ')
[ "$running" = "redis " ] || fail "up redis started: $running"
"$stack" down >/dev/null || fail "final down"

if [ "$failures" -gt 0 ]; then
    say "$failures failure(s)"
    exit 1
fi
say "all checks passed"
