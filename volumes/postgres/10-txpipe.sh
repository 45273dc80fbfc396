#!/usr/bin/env bash
# compose's PostgreSQL, first start only (the image runs /docker-entrypoint-initdb.d/* when the
# data volume is empty, against a temporary server on the Unix socket): the roles, the database
# and the migrations, exactly as ci/stack's pg_bootstrap and pg_migrate do for the local run.
#   txpipe    owner of the database and its tables (txpersist writes with it), password
#             TX_PG_OWNER_PASSWORD
#   txreader  read-only (the gateway's status routes), password TX_PG_READER_PASSWORD
# Migrations: /txpipe/migrations/NNN_*.sql (schemas/sql mounted read-only), in order, each in
# one transaction with its schema_migrations row, as the owner (the bookkeeping of storage/db's
# db_migrate). This runs on the first start only: migrations added later are applied to an
# existing volume by db_migrate or by hand (docs/deployment.md).
# Changing a password after the first start: ALTER ROLE ... PASSWORD (docs/deployment.md).
set -Eeo pipefail

: "${TX_PG_OWNER_PASSWORD:?TX_PG_OWNER_PASSWORD must be set}"
: "${TX_PG_READER_PASSWORD:?TX_PG_READER_PASSWORD must be set}"
migrations=${TX_PG_MIGRATIONS_DIR:-/txpipe/migrations}
# The SQL shared with ci/stack (this file may be sourced by the image's entrypoint: BASH_SOURCE).
sql=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sql
su_psql=(psql -X -q -v ON_ERROR_STOP=1 --no-password --username "${POSTGRES_USER:-postgres}")
owner_psql=(psql -X -q -v ON_ERROR_STOP=1 --no-password --username txpipe --dbname txpipe)

"${su_psql[@]}" --dbname postgres -v owner_pw="$TX_PG_OWNER_PASSWORD" \
    -v reader_pw="$TX_PG_READER_PASSWORD" -f "$sql/bootstrap.sql"
"${owner_psql[@]}" -f "$sql/migrations-table.sql"

seen=" "
for f in "$migrations"/[0-9][0-9][0-9]_*.sql; do
    [ -e "$f" ] || continue
    base=${f##*/}
    version=${base%%_*}
    if [[ $seen == *" $version "* ]]; then
        echo "txpipe init: two migrations with version $version in $migrations" >&2
        exit 1
    fi
    seen="$seen$version "
    "${owner_psql[@]}" -v version="$version" -v file="$f" -f "$sql/migrate-one.sql"
    echo "txpipe init: migration $base applied"
done
echo "txpipe init: roles txpipe, txreader and database txpipe ready"
