#!/usr/bin/env bash
# RabbitMQ password hash (rabbit_password_hashing_sha256), as used by "password_hash" in
# volumes/rabbitmq/definitions.json: base64(salt || sha256(salt || password)), 4-byte salt.
#
# Sourced: defines rabbit_password_hash PASSWORD [SALT_HEX].
# Run:     ci/lib/rabbitmq_hash.sh PASSWORD [SALT_HEX]   (random salt when SALT_HEX is omitted)

rabbit_password_hash() {
    local password=$1 salt_hex=${2:-}
    if [ -z "$salt_hex" ]; then
        salt_hex=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
    fi
    if ! [[ $salt_hex =~ ^[0-9a-fA-F]{8}$ ]]; then
        printf 'rabbit_password_hash: salt must be 8 hex digits, got "%s"\n' "$salt_hex" >&2
        return 2
    fi
    # The salt bytes never pass through a shell variable (they may contain NUL): printf emits them.
    local salt_esc
    salt_esc=$(printf '%s' "$salt_hex" | sed 's/../\\x&/g')
    {
        printf '%b' "$salt_esc"
        {
            printf '%b' "$salt_esc"
            printf '%s' "$password"
        } | openssl dgst -sha256 -binary
    } | base64 -w0
    printf '\n'
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    if [ $# -lt 1 ] || [ $# -gt 2 ]; then
        printf 'usage: %s PASSWORD [SALT_HEX]\n' "$0" >&2
        exit 2
    fi
    rabbit_password_hash "$@"
fi
