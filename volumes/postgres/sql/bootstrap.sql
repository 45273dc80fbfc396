-- txpipe's PostgreSQL roles and database, idempotent. Run as a superuser connected to the
-- database "postgres", with psql variables owner_pw and reader_pw. Used by ci/stack (pg_bootstrap,
-- the local run) and by volumes/postgres/10-txpipe.sh (compose's first start).
--   txpipe    owner of the database and its tables (txpersist writes with it)
--   txreader  read-only (the gateway's status routes)
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
