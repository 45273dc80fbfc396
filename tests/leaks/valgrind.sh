#!/usr/bin/env bash
# tests/leaks/valgrind.sh: every txpipe binary under valgrind's memcheck, given real work, then
# stopped with SIGTERM: each must exit 0 with "definitely lost: 0" and no memory error.
#
#   valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 BINARY
#
# On a PRIVATE stack of services (ci/stack on ports 26xxx, state .state/leaks; wiped first): the
# four daemons (txfraud, txnotify, txpersist, txgateway, started like ci/up does, with
# ci/lib/apps.sh's per-service environment) run under valgrind; the work is done by txupload,
# itself under valgrind: --help, the two seed files (the second flags cliente1, so the alert
# templates run too) and an NDJSON file with --wait, a rejected file, status, client; plus curl
# for the other routes and errors (401, 400, 422, 404, multipart, replay, metrics) and a poison
# message (dead-lettered by the consumers). Then SIGTERM, in ci/down's order.
#
# usage: tests/leaks/valgrind.sh [--keep]      (--keep: leave the services running)
# Environment: TX_BUILD_DIR (default build), TX_LEAKS_PORT_PREFIX (26), TX_LEAKS_STATE_DIR,
# TX_SEED_DIR (../shared/seed-data; generated records when missing). Takes about 2-3 minutes.
# Valgrind logs: $TX_LEAKS_STATE_DIR/valgrind/NAME.log.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO" || exit 2
keep=0
[ "${1:-}" = --keep ] && keep=1

BUILD=${TX_BUILD_DIR:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
export TX_BUILD_DIR=$BUILD
pp=${TX_LEAKS_PORT_PREFIX:-26}
export TX_STATE_DIR=${TX_LEAKS_STATE_DIR:-$REPO/.state/leaks}
export TX_REDIS_PORT=${pp}379 TX_AMQP_PORT=${pp}672 TX_RABBIT_MGMT_PORT=${pp}673
export TX_EPMD_PORT=${pp}369 TX_RABBIT_DIST_PORT=${pp}674 TX_RABBIT_PROM_PORT=${pp}693
export TX_PG_PORT=${pp}432 TX_S3_PORT=${pp}000 TX_SMTP_PORT=${pp}025 TX_MAIL_API_PORT=${pp}080
export TX_GATEWAY_PORT=${pp}800 TX_NGINX_PORT=${pp}880 TX_FRAUD_HEALTH_PORT=${pp}101
export TX_NOTIFY_HEALTH_PORT=${pp}102 TX_PERSIST_HEALTH_PORT=${pp}103
unset TX_NGINX_LISTEN

VG=(valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
    --num-callers=40 --track-origins=no)
DAEMONS=(txfraud txnotify txpersist txgateway)
t0=$(date +%s)

say() { printf 'valgrind.sh: %s\n' "$*"; }
die() {
    say "error: $*" >&2
    exit 2
}

command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
for b in consumers/fraud/txfraud consumers/notify/txnotify consumers/persist/txpersist \
    gateway/txgateway cli/txupload; do
    [ -x "$BUILD/$b" ] || die "$BUILD/$b is not built"
done

cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
    done
    if [ "$keep" -eq 0 ]; then
        ci/stack down >/dev/null 2>&1 || ci/stack down || true
    fi
}
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM

ci/stack down >/dev/null 2>&1 || true
rm -rf "$TX_STATE_DIR"
ci/stack up >/dev/null || {
    say "ci/stack up failed; one more try" >&2
    ci/stack down >/dev/null 2>&1
    sleep 3
    ci/stack up >/dev/null || die "ci/stack up failed (ports ${pp}xxx, state $TX_STATE_DIR)"
}
eval "$(ci/stack env)"
# shellcheck source-path=SCRIPTDIR source=../../ci/lib/stack_common.sh
. "$REPO/ci/lib/stack_common.sh"
# shellcheck source-path=SCRIPTDIR source=../../ci/lib/apps.sh
. "$REPO/ci/lib/apps.sh"
VGDIR=$TX_STATE_DIR/valgrind
WORK=$TX_STATE_DIR/work
mkdir -p "$VGDIR" "$WORK"
say "services ready in $(($(date +%s) - t0)) s (state $TX_STATE_DIR)"

# ---- the daemons under valgrind ---------------------------------------------------------------

declare -A PID RC
for name in "${DAEMONS[@]}"; do
    mapfile -t envs < <(app_env "$name")
    [ "$name" = txgateway ] && envs+=(TX_GATEWAY_THREADS=8)
    env "${envs[@]}" TX_LOG_LEVEL=info "${VG[@]}" --log-file="$VGDIR/$name.log" \
        "$(app_binary "$name")" >"$VGDIR/$name.out" 2>&1 </dev/null &
    PID[$name]=$!
    PIDS+=("$!")
    url=$(app_health_url "$name")
    ok=0
    for _ in $(seq 1 600); do
        if ! kill -0 "${PID[$name]}" 2>/dev/null; then
            tail -n 30 "$VGDIR/$name.out" "$VGDIR/$name.log" >&2
            die "$name exited during start-up under valgrind"
        fi
        if curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; then
            ok=1
            break
        fi
        sleep 0.2
    done
    [ "$ok" -eq 1 ] || die "$name not ready under valgrind after 120 s ($url)"
    say "$name ready under valgrind (pid ${PID[$name]})"
done

# ---- the work -----------------------------------------------------------------------------------

GW=$TX_GATEWAY_URL
K="Authorization: Bearer $TX_API_KEY"
seed=${TX_SEED_DIR:-$REPO/../shared/seed-data}
tag=lk$(date +%s)
if [ -f "$seed/Dados.json" ] && [ -f "$seed/Dados - Fraude1.json" ]; then
    cp "$seed/Dados.json" "$WORK/1-dados.json"
    cp "$seed/Dados - Fraude1.json" "$WORK/2-fraude.json"
    flag_client=cliente1
else
    printf '[{"_id":"%s","isActive":true,"cliente":"A","email":"a@example.com","endereco":"Rua 1","datatrasancao":"2024-03-11T12:00:00 +00:00"}]' \
        "${tag}c" >"$WORK/1-dados.json"
    printf '[{"_id":"%s","isActive":true,"cliente":"A","email":"a@example.com","endereco":"Rua 2","datatrasancao":"2024-03-11T12:00:00 +00:00"}]' \
        "${tag}c" >"$WORK/2-fraude.json"
    flag_client=${tag}c
fi
for i in $(seq 1 20); do
    printf '{"_id":"%sr%d","isActive":true,"cliente":"Cliente %d","email":"%sr%d@example.com","endereco":"Rua %d","datatrasancao":"2024-03-11T12:00:00Z","valor":%d,"extra":{"k":[1,2]}}\n' \
        "$tag" "$i" "$i" "$tag" "$i" "$i" "$i"
done >"$WORK/3-batch.ndjson"
printf '[{"_id":"bad id!","isActive":"yes","email":"nope"}]' >"$WORK/bad.json"
records=$((20 + $(grep -o '"_id"' "$WORK/1-dados.json" | wc -l) + $(grep -o '"_id"' "$WORK/2-fraude.json" | wc -l)))

# Runs txupload under valgrind; $1 = expected exit status, $2 = log name, then its arguments.
CLI_FAIL=()
cli() {
    local want=$1 log=$2 rc
    shift 2
    env TX_API_KEY="$TX_API_KEY" TX_ADMIN_API_KEY="$TX_ADMIN_API_KEY" "${VG[@]}" \
        --log-file="$VGDIR/txupload-$log.log" "$BUILD/cli/txupload" --url "$GW" "$@" \
        >"$VGDIR/txupload-$log.out" 2>&1
    rc=$?
    RC[txupload-$log]=$rc
    if [ "$rc" -ne "$want" ]; then
        CLI_FAIL+=("txupload $log: exit $rc, expected $want")
    fi
}

cli 0 help --help
cli 0 upload-seed1 --json --wait --wait-timeout 180 "$WORK/1-dados.json"
cli 0 upload-seed2-and-batch --json --wait --wait-timeout 180 "$WORK/2-fraude.json" "$WORK/3-batch.ndjson"
cli 1 upload-rejected "$WORK/bad.json"
up1=$(sed -n 's/.*"upload_id":"\([^"]*\)".*/\1/p' "$VGDIR/txupload-upload-seed1.out" | head -n 1)
[ -n "$up1" ] || up1=01890000-0000-7000-8000-000000000000
cli 0 status status "$up1"
cli 0 client client "$flag_client"
cli 0 replay replay "$up1"

# The other routes and the error paths of the gateway.
c() { curl -s -o /dev/null -w '%{http_code} ' --max-time 60 "$@"; }
codes=$(
    c "$GW/healthz"
    c "$GW/readyz"
    c "$GW/metrics"
    c -X POST -H 'Content-Type: application/json' --data '[]' "$GW/api/v1/uploads"
    c -X POST -H "X-API-Key: wrong" -H 'Content-Type: application/json' --data '[]' "$GW/api/v1/uploads"
    c -X POST -H "$K" -H 'Content-Type: application/json' --data '[{"_id":' "$GW/api/v1/uploads"
    c -X POST -H "$K" -H 'Content-Type: application/json' --data-binary @"$WORK/bad.json" "$GW/api/v1/uploads"
    c -X POST -H "$K" -H 'Content-Type: text/plain' --data 'x' "$GW/api/v1/uploads"
    c -X POST -H "$K" -H "Idempotency-Key: $tag-mp" -F "file=@$WORK/3-batch.ndjson;type=application/x-ndjson" "$GW/api/v1/uploads"
    c -X POST -H "$K" -H "Idempotency-Key: $tag-mp" -F "file=@$WORK/3-batch.ndjson;type=application/x-ndjson" "$GW/api/v1/uploads"
    c -X POST -F "api_key=$TX_API_KEY" -F "file=@$WORK/1-dados.json;type=application/json" "$GW/upload-json"
    c -H "$K" "$GW/api/v1/uploads/$up1"
    c -H "$K" "$GW/api/v1/uploads/not-an-id"
    c -H "$K" "$GW/api/v1/clients/$flag_client/summary"
    c -H "$K" "$GW/api/v1/clients/$flag_client/fraud"
    c "$GW/api/v1/clients/$flag_client/fraud"
    c -H "X-API-Key: wrong" "$GW/api/v1/uploads/$up1"
    c "$GW/check-fraud?transactionId=$flag_client"
    c "$GW/no-such-route"
    c -X DELETE "$GW/api/v1/uploads"
)
say "gateway routes answered: $codes"
records=$((records + 20 + $(grep -o '"_id"' "$WORK/1-dados.json" | wc -l)))

# A poison message for the consumers (they dead-letter it).
curl -fsS -o /dev/null -u txadmin:txadmin-local -H 'Content-Type: application/json' \
    --data '{"properties":{"message_id":"leaks-poison","content_type":"application/json","delivery_mode":2},"routing_key":"transaction.received","payload":"{not json","payload_encoding":"string"}' \
    "http://127.0.0.1:$TX_RABBIT_MGMT_PORT/api/exchanges/%2f/tx.events/publish" ||
    say "could not publish the poison message" >&2

# Wait until every record is persisted with its e-mail row (bounded).
for _ in $(seq 1 240); do
    n=$(psql "$TX_PG_RO_DSN" -XAtqc "SELECT (SELECT count(*) FROM transactions WHERE scored_at IS NOT NULL) || ' ' || (SELECT count(*) FROM emails)" 2>/dev/null)
    [ "${n%% *}" -ge "$records" ] 2>/dev/null && [ "${n##* }" -ge "$records" ] && break
    sleep 0.5
done
say "processed: $n (scored transactions, e-mail rows; $records records sent)"
sleep 2

# ---- SIGTERM, as ci/down does (gateway first, then the consumers) ------------------------------

for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    name=${DAEMONS[$i]}
    kill -TERM "${PID[$name]}" 2>/dev/null
    rc=124
    for _ in $(seq 1 1200); do
        if ! kill -0 "${PID[$name]}" 2>/dev/null; then
            wait "${PID[$name]}"
            rc=$?
            break
        fi
        sleep 0.1
    done
    if [ "$rc" -eq 124 ]; then
        say "$name did not exit within 120 s of SIGTERM: SIGKILL" >&2
        kill -KILL "${PID[$name]}" 2>/dev/null
    fi
    RC[$name]=$rc
done
PIDS=()

# ---- results ------------------------------------------------------------------------------------

fail=0
printf '\n%-34s %5s %14s %14s %8s\n' binary exit 'definitely' 'possibly' errors
for log in "$VGDIR"/*.log; do
    name=$(basename "$log" .log)
    def=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tr -d , | tail -n 1)
    pos=$(sed -n 's/.*possibly lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tr -d , | tail -n 1)
    err=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tr -d , | tail -n 1)
    grep -q 'All heap blocks were freed' "$log" && def=0 pos=0
    rc=${RC[$name]:-?}
    printf '%-34s %5s %14s %14s %8s\n' "$name" "$rc" "${def:-?}" "${pos:-?}" "${err:-?}"
    want=0
    [ "$name" = txupload-upload-rejected ] && want=1
    if [ "$rc" != "$want" ] || [ "${def:-x}" != 0 ] || [ "${err:-x}" != 0 ]; then
        fail=1
        say "FAILED: $name (exit $rc, definitely lost ${def:-?} bytes, ${err:-?} errors); log $log" >&2
        grep -E -A 30 'definitely lost in|Invalid (read|write)|uninitialised|Mismatched|Invalid free' "$log" |
            head -n 80 >&2
    fi
done
for f in "${CLI_FAIL[@]}"; do
    say "FAILED: $f" >&2
    fail=1
done
vglogs=("$VGDIR"/*.log)
say "${#vglogs[@]} valgrind runs in $(($(date +%s) - t0)) s; logs in $VGDIR"
if [ "$fail" -ne 0 ]; then
    say "FAILED"
    exit 1
fi
say "passed: every binary exited 0 after SIGTERM, definitely lost 0 bytes, 0 errors"
