# shellcheck shell=bash
# Helpers for ci/stack: messages, timing, ports, pid files, starting and stopping process groups.
# Sourced by ci/stack (bash, set -euo pipefail); expects STATE, RUN_DIR and LOG_DIR to be set.

STACK_STOPPED_PIDS=()

stack_say() { printf 'stack: %s\n' "$*"; }
stack_err() { printf 'stack: error: %s\n' "$*" >&2; }
stack_die() {
    stack_err "$*"
    exit 1
}

# Microseconds since the epoch (bash 5 EPOCHREALTIME, no subprocess).
stack_now_us() {
    local t=$EPOCHREALTIME
    printf '%s' "${t/./}"
}

# Formats a microsecond duration as seconds with two decimals.
stack_fmt_us() {
    local us=$1
    printf '%d.%02d s' $((us / 1000000)) $(((us % 1000000) / 10000))
}

# Fails unless $2 is a TCP port number; $1 names the variable for the message.
stack_check_port_value() {
    local name=$1 value=$2
    if ! [[ $value =~ ^[0-9]+$ ]] || [ "$value" -lt 1 ] || [ "$value" -gt 65535 ]; then
        stack_die "$name=$value is not a TCP port (1-65535)"
    fi
}

# Prints the ss line of whatever listens on TCP port $1 (any address), or nothing.
stack_port_listener() {
    ss -Hltnp "sport = :$1" 2>/dev/null || true
}

# Succeeds when a TCP connection to 127.0.0.1:$1 is accepted within 2 s.
stack_tcp_open() {
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Pid recorded in pid file $1 (first line), or nothing.
stack_read_pid() {
    local file=$1 pid=""
    if [ -r "$file" ]; then
        read -r pid <"$file" || true
    fi
    if [[ $pid =~ ^[0-9]+$ ]]; then
        printf '%s' "$pid"
    fi
}

# Succeeds when pid $1 is alive and its command line contains $2 (guards against pid reuse).
stack_pid_is() {
    local pid=$1 marker=$2 cmdline
    [ -n "$pid" ] || return 1
    stack_alive "$pid" || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$marker"* ]]
}

# Prints pid $1 and all its descendants (some daemons' children leave the process group with
# setsid: PostgreSQL backends, Erlang's erl_child_setup), one per line.
stack_tree() {
    ps -eo pid=,ppid= | awk -v root="$1" '
        { kids[$2] = kids[$2] " " $1 }
        END {
            queue[1] = root; n = 1
            for (i = 1; i <= n; i++) {
                print queue[i]
                m = split(kids[queue[i]], k, " ")
                for (j = 1; j <= m; j++) queue[++n] = k[j]
            }
        }'
}

# Succeeds when pid $1 exists and is not a zombie (here the init process may take a second or
# two to reap an orphan that exited).
stack_alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [ -n "$st" ] && [[ $st != Z* ]]
}

# Succeeds while any of the given pids, or any process of process group $1, exists (zombies do
# not count).
stack_any_alive() {
    local pgid=$1
    ps -eo pid=,pgid=,stat= | awk -v g="$pgid" -v list=" $* " '
        $3 !~ /^Z/ && ($2 == g || index(list, " " $1 " ")) { found = 1 }
        END { exit !found }'
}

# Runs "$@" (a program, not a shell function) in the background in directory $2 as the leader of
# a new session (so the service and all its children form one process group whose id is its pid),
# stdin from /dev/null, stdout and stderr appended to log file $1, and no other inherited file
# descriptor (a caller's pipe must not stay open in a daemon). Sets STACK_SPAWNED_PID.
stack_spawn() {
    local log=$1 dir=$2
    shift 2
    (
        cd "$dir" || exit 1
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then
                eval "exec $fd>&-" 2>/dev/null || true
            fi
        done
        exec setsid "$@" </dev/null >>"$log" 2>&1
    ) &
    # shellcheck disable=SC2034 # read by the caller
    STACK_SPAWNED_PID=$!
}

# Runs "$@" in the foreground with the same file descriptor hygiene as stack_spawn (for commands
# such as pg_ctl that fork a daemon themselves); stdout and stderr go to log file $1.
# "$@" may be a shell function.
stack_run_detached() {
    local log=$1
    shift
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then
                eval "exec $fd>&-" 2>/dev/null || true
            fi
        done
        "$@" </dev/null >>"$log" 2>&1
    )
}

# Stops the service whose process (and process group) is pid $2, name $1: signal $3 to it, wait
# up to $4 seconds until it, its process group and every descendant seen meanwhile are gone, then
# SIGKILL all of them and wait 5 s more. Adds every pid seen to STACK_STOPPED_PIDS.
stack_stop_group() {
    local name=$1 pid=$2 sig=$3 wait_s=$4 i=0 p rc=1 deadline
    local -A seen=()
    for p in $(stack_tree "$pid"); do seen[$p]=1; done
    kill "-$sig" "$pid" 2>/dev/null || true
    deadline=$(($(stack_now_us) + wait_s * 1000000))
    while [ "$(stack_now_us)" -lt "$deadline" ]; do
        if ! stack_any_alive "$pid" "${!seen[@]}"; then
            rc=0
            break
        fi
        i=$((i + 1))
        if ((i % 5 == 0)) && stack_alive "$pid"; then
            for p in $(stack_tree "$pid"); do seen[$p]=1; done
        fi
        sleep 0.1
    done
    if [ "$rc" -ne 0 ]; then
        stack_err "$name (pid $pid) still running after SIG$sig and ${wait_s} s: sending SIGKILL"
        if stack_alive "$pid"; then
            for p in $(stack_tree "$pid"); do seen[$p]=1; done
        fi
        kill -KILL -- "-$pid" 2>/dev/null || true
        for p in "${!seen[@]}"; do
            kill -KILL "$p" 2>/dev/null || true
        done
        deadline=$(($(stack_now_us) + 5000000))
        while [ "$(stack_now_us)" -lt "$deadline" ]; do
            if ! stack_any_alive "$pid" "${!seen[@]}"; then
                rc=0
                break
            fi
            sleep 0.1
        done
        if [ "$rc" -ne 0 ]; then
            stack_err "$name (pid $pid) or one of its processes did not exit after SIGKILL"
        fi
    fi
    STACK_STOPPED_PIDS+=("${!seen[@]}")
    return "$rc"
}

# Waits up to 5 s until no pid in STACK_STOPPED_PIDS exists, not even as a zombie not yet reaped
# by init (so that `pgrep` right after `down` finds nothing).
stack_wait_reaped() {
    local deadline
    [ "${#STACK_STOPPED_PIDS[@]}" -gt 0 ] || return 0
    deadline=$(($(stack_now_us) + 5000000))
    while [ "$(stack_now_us)" -lt "$deadline" ]; do
        if ! ps -p "$(
            IFS=,
            printf '%s' "${STACK_STOPPED_PIDS[*]}"
        )" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
}

# Prints the first few error lines written since byte offset $2 (default 0) and the last 30
# lines of log file $1 (to stderr), or says there is none.
stack_log_tail() {
    local log=$1 since=${2:-0} first
    if [ -s "$log" ]; then
        first=$(tail -c "+$((since + 1))" "$log" |
            grep -m 8 -E '\[error\]|FATAL|PANIC|ERROR:|Error:|error:' || true)
        if [ -n "$first" ]; then
            printf -- '--- first error lines of this attempt in %s ---\n' "$log" >&2
            printf '%s\n' "$first" | sed 's/^/  | /' >&2
        fi
        printf -- '--- last 30 lines of %s ---\n' "$log" >&2
        tail -n 30 "$log" | sed 's/^/  | /' >&2
        printf -- '---\n' >&2
    else
        printf 'stack: (log %s is empty or missing)\n' "$log" >&2
    fi
}
