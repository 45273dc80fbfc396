#!/usr/bin/env bash
# tests/chaos/fault.sh: one crash of one part of a txpipe stack started by ci/up, and its restart.
#
# usage: tests/chaos/fault.sh kill  NAME   SIGKILL NAME and every process of it, wait until gone
#        tests/chaos/fault.sh start NAME   start NAME again (ci/stack up NAME / app_start NAME)
#        tests/chaos/fault.sh crash NAME   kill, then start; prints one JSON line with timings
#        tests/chaos/fault.sh pid   NAME   the pid that `kill` would target (empty if not running)
# NAME: redis rabbitmq postgres s3 mail (ci/stack services) or txfraud txnotify txpersist
# txgateway nginx (ci/lib/apps.sh).
#
# "kill" is what a container runtime's kill or the OOM killer does: SIGKILL to the daemon and
# every process it started (PostgreSQL backends, Erlang's helpers), no shutdown code runs. The
# pid comes from the state directory's pid file. Needs the environment of the stack
# (TX_STATE_DIR and the TX_*_PORT variables, as for ci/up); refuses the default state directory
# unless TX_CHAOS_ALLOW_DEFAULT_STATE=1, so that a shared stack is never crashed by mistake.
#
# mail: before the SMTP sink is started again, the .eml files it stored are moved to
# $TX_STATE_DIR/mail-archive/ (kept for the checks; maildev would otherwise parse every stored
# message again at start, which takes minutes after a long run).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"

cmd=${1:-}
name=${2:-}
case $name in
redis | rabbitmq | postgres | s3 | mail) kind=service ;;
txfraud | txnotify | txpersist | txgateway | nginx) kind=app ;;
*)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac

if [ -z "${TX_STATE_DIR:-}" ]; then
    echo "fault.sh: TX_STATE_DIR is not set: this script crashes services; run it on a private stack" >&2
    exit 2
fi
if [ "$(realpath -m "$TX_STATE_DIR")" = "$(realpath -m "$REPO/.state/stack")" ] &&
    [ "${TX_CHAOS_ALLOW_DEFAULT_STATE:-0}" != 1 ]; then
    echo "fault.sh: refusing to crash the default (shared) stack in $TX_STATE_DIR" >&2
    exit 2
fi

eval "$(ci/stack env)"
# shellcheck source-path=SCRIPTDIR source=../../ci/lib/stack_common.sh
. "$REPO/ci/lib/stack_common.sh"
# shellcheck source-path=SCRIPTDIR source=../../ci/lib/apps.sh
. "$REPO/ci/lib/apps.sh"
RUN_DIR=$TX_STATE_DIR/run

now_ms() { echo $(($(stack_now_us) / 1000)); }

target_pid() {
    local pid=""
    case $name in
    redis | s3 | mail) pid=$(stack_read_pid "$RUN_DIR/$name.pid") ;;
    rabbitmq) pid=$(stack_read_pid "$RUN_DIR/rabbitmq.pid") ;; # the wrapper; beam is its child
    postgres) pid=$(stack_read_pid "$TX_STATE_DIR/postgres/data/postmaster.pid") ;;
    *) pid=$(stack_read_pid "$(app_pidfile "$name")") ;;
    esac
    if [ -n "$pid" ] && stack_alive "$pid"; then
        printf '%s' "$pid"
    fi
}

# SIGKILL to the process, its process group and every descendant (all at once), then waits up to
# 15 s until none of them exists any more.
do_kill() {
    local pid pids p deadline
    pid=$(target_pid)
    if [ -z "$pid" ]; then
        echo "fault.sh: $name is not running" >&2
        return 1
    fi
    pids=$(stack_tree "$pid")
    if [ "$name" = rabbitmq ]; then
        p=$(stack_read_pid "$RUN_DIR/rabbitmq.beam.pid")
        [ -n "$p" ] && pids="$pids $(stack_tree "$p")"
    fi
    # shellcheck disable=SC2086 # word splitting wanted
    kill -KILL $pids 2>/dev/null || true
    kill -KILL -- "-$pid" 2>/dev/null || true
    deadline=$(($(stack_now_us) + 15000000))
    # shellcheck disable=SC2086
    while stack_any_alive "$pid" $pids; do
        if [ "$(stack_now_us)" -ge "$deadline" ]; then
            echo "fault.sh: $name (pid $pid) still alive 15 s after SIGKILL" >&2
            return 1
        fi
        sleep 0.05
    done
    # Then until they are reaped too: PostgreSQL refuses to start while the pid in its stale
    # postmaster.pid exists, even as a zombie not yet reaped by init.
    # shellcheck disable=SC2086
    while ps -p "$(echo $pid $pids | tr ' ' ,)" >/dev/null 2>&1; do
        if [ "$(stack_now_us)" -ge "$deadline" ]; then
            echo "fault.sh: $name (pid $pid) not reaped 15 s after SIGKILL" >&2
            return 1
        fi
        sleep 0.05
    done
    KILLED_PID=$pid
}

archive_mail() {
    local dir=$TX_STATE_DIR/mail/data dest
    dest=$TX_STATE_DIR/mail-archive/$(date +%s%N)
    mkdir -p "$dest"
    find "$dir" -maxdepth 1 -name '*.eml' -exec mv -t "$dest" {} + 2>/dev/null || true
}

# Starts NAME again. Up to three tries: the private stack's ports (47xxx by default) lie in
# Linux's ephemeral range, so an outgoing connection of anything on the machine can hold one for
# a moment (RabbitMQ then fails with "could not bind to distribution port").
do_start() {
    local try
    [ "$kind" = service ] && [ "$name" = mail ] && archive_mail
    for try in 1 2 3; do
        if [ "$kind" = service ]; then
            ci/stack up "$name" >/dev/null && return 0
        else
            app_start "$name" >/dev/null && return 0
            app_stop "$name" >/dev/null 2>&1 || true
        fi
        echo "fault.sh: starting $name failed (try $try of 3)" >&2
        sleep 2
    done
    return 1
}

case $cmd in
pid) target_pid ;;
kill) do_kill ;;
start) do_start ;;
crash)
    t0=$(now_ms)
    KILLED_PID=
    do_kill
    t1=$(now_ms)
    do_start
    t2=$(now_ms)
    printf '{"target":"%s","killed_pid":%s,"new_pid":%s,"kill_ms":%s,"restart_ms":%s}\n' \
        "$name" "$KILLED_PID" "$(target_pid || echo 0)" $((t1 - t0)) $((t2 - t1))
    ;;
*)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
