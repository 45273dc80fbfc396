-- The migrations bookkeeping table (the same as storage/db's db_migrate). Run as the owner.
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
