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
su_psql=(psql -X -q -v ON_ERROR_STOP=1 --no-password --username "${POSTGRES_USER:-postgres}")
owner_psql=(psql -X -q -v ON_ERROR_STOP=1 --no-password --username txpipe --dbname txpipe)

"${su_psql[@]}" --dbname postgres -v owner_pw="$TX_PG_OWNER_PASSWORD" \
    -v reader_pw="$TX_PG_READER_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE txpipe' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'txpipe')
\gexec
ALTER ROLE txpipe WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_pw';
SELECT 'CREATE ROLE txreader' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'txreader')
\gexec
ALTER ROLE txreader WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_pw';
SELECT 'CREATE DATABASE txpipe OWNER txpipe ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'txpipe')
\gexec
\connect txpipe
REVOKE ALL ON DATABASE txpipe FROM PUBLIC;
GRANT CONNECT ON DATABASE txpipe TO txreader;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO txreader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO txreader;
ALTER DEFAULT PRIVILEGES FOR ROLE txpipe IN SCHEMA public GRANT SELECT ON TABLES TO txreader;
SQL

"${owner_psql[@]}" -c "SET client_min_messages = warning;
    CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"

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
    "${owner_psql[@]}" -v version="$version" -v file="$f" <<'SQL'
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('txpipe.schema_migrations')) AS tx_locked
\gset
SELECT NOT EXISTS (SELECT FROM schema_migrations WHERE version = :'version') AS tx_todo
\gset
\if :tx_todo
\i :file
INSERT INTO schema_migrations (version, applied_at) VALUES (:'version', now());
\endif
COMMIT;
SQL
    echo "txpipe init: migration $base applied"
done
echo "txpipe init: roles txpipe, txreader and database txpipe ready"
