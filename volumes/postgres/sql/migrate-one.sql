-- Applies one migration file (psql variables: version, file) unless schema_migrations has it,
-- in one transaction with its schema_migrations row; concurrent runners (another ci/stack, the
-- storage/db migrator) wait on the advisory lock and then see the version applied. Run as the
-- owner role txpipe. Used by ci/stack (pg_migrate) and volumes/postgres/10-txpipe.sh.
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
