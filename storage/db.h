#ifndef STORAGE_DB_H
#define STORAGE_DB_H

#include <stddef.h>

#include "common/tx_status.h"

/*
 * PostgreSQL client (libpq) for the gateway's read-only status routes, the txpersist writer and
 * the schema migrations.
 *
 * A struct db_conn is one connection. It is not thread-safe: one thread uses it at a time. It
 * survives failures: when the link breaks (server restart, pg_terminate_backend, network) the
 * call that notices reports TX_EUNAVAIL and the next call connects again with the same DSN and
 * settings. A connection the server closed while it sat idle is replaced before anything is sent,
 * so that costs no failed call, except inside a transaction: a connection lost between BEGIN and
 * COMMIT always fails the next call (the transaction is gone) and only the call after it
 * reconnects, so a writer never continues a transaction on a fresh session. Nothing is ever resent
 * after it was written, except db_ping's "SELECT 1".
 *
 * Every call runs asynchronously under a deadline: connects under connect_timeout_ms, queries
 * under the statement timeout (if set, see db_conn_set_statement_timeout) plus a grace period,
 * after which the connection is dropped (so a hung server or network cannot block the thread).
 * Server notices and warnings are discarded (never printed).
 *
 * Errors (negative enum tx_status; err->msg holds the server's primary message and, for server
 * errors, "(SQLSTATE xxxxx)" and the detail line):
 *   TX_EINVAL    bad argument, unparsable DSN, a query_text query that returns several rows or
 *                columns, a migration file that is unreadable or ends its own transaction
 *   TX_EUNAVAIL  cannot connect (refused, bad host/port, authentication failed, too many
 *                connections), connection lost, server shutting down (SQLSTATE classes 08, 53,
 *                57P0x), serialization failure or deadlock (40001, 40P01): all retryable
 *   TX_ETIMEDOUT deadline passed: connect timeout, statement timeout or lock timeout (57014,
 *                55P03), or no answer within the client deadline (connection dropped)
 *   TX_EREJECT   integrity constraint violated (class 23: unique, foreign key, check, not null),
 *                permission denied (42501), read-only transaction (25006)
 *   TX_ENOTFOUND db_query_text: no row, or a NULL cell
 *   TX_EIO       any other server error (syntax, undefined table, ...)
 *   TX_ENOMEM
 * The wrapper does not log.
 */

struct db_conn;

/**
 * Connects with dsn, a libpq connection string or URI ("postgresql://user:pass@host:port/db" or
 * "host=... dbname=..."; its options, such as options=-c statement_timeout=5000, apply), within
 * connect_timeout_ms (1..600000; 0 means 10000). The session uses client_encoding UTF8 unless the
 * DSN says otherwise. Returns NULL with TX_EINVAL (bad DSN or timeout), TX_EUNAVAIL,
 * TX_ETIMEDOUT or TX_ENOMEM in err. Free with db_conn_destroy. Thread-safe.
 */
struct db_conn *db_conn_create(const char *dsn, long connect_timeout_ms, struct tx_err *err);

/** Closes the connection (an open transaction is rolled back by the server) and frees c. NULL is
 * a no-op. */
void db_conn_destroy(struct db_conn *c);

/**
 * Sets the session's statement_timeout to ms (0: no limit) now and again after every reconnect,
 * and the client deadline of each query to ms plus 2 s (none when ms is 0). Overrides a
 * statement_timeout from the DSN. Must be called outside a transaction (TX_EINVAL otherwise).
 */
int db_conn_set_statement_timeout(struct db_conn *c, long ms, struct tx_err *err);

/**
 * Runs sql (statements separated by ';', no parameters: temporary tables, PREPARE ...) now and
 * again at the start of every new session after a reconnect, so that what it creates is always
 * there. A failure at a reconnect fails the statement that needed the session. Replaces the SQL
 * of an earlier call. Must be called outside a transaction (TX_EINVAL otherwise).
 */
int db_conn_set_session_sql(struct db_conn *c, const char *sql, struct tx_err *err);

/**
 * Readiness probe: runs "SELECT 1". If the link broke, reconnects and tries once more (outside a
 * transaction only). 0 when the server answered.
 */
int db_ping(struct db_conn *c, struct tx_err *err);

/**
 * Runs one parameterised statement (params: nparams text values, NULL for SQL NULL, referred to
 * as $1..$n) that returns at most one row of one column, and copies that cell as text. On success
 * *out is malloc'd and NUL-terminated (caller frees), *len its length (len may be NULL).
 * TX_ENOTFOUND for zero rows or a NULL cell; TX_EINVAL when the statement returns no result set,
 * more than one column or more than one row. On failure *out is NULL.
 */
int db_query_text(struct db_conn *c, const char *sql, const char *const *params, int nparams,
                  char **out, size_t *len, struct tx_err *err);

/* Limits of db_query_text_prepared: statements per session, bytes of a name. */
#define DB_PREPARED_MAX      16
#define DB_PREPARED_NAME_MAX 63

/**
 * As db_query_text, but sql is prepared (parsed and planned) as the named statement name (1-63
 * bytes) the first time it is used in a session and run by name afterwards, which saves the
 * server's parse and plan on every later call. The same name must always come with the same
 * sql. A reconnect starts a new session, where the statement is prepared again; at most
 * DB_PREPARED_MAX names per connection (TX_EINVAL beyond). Errors as db_query_text; a failed
 * prepare is retried on the next call. The plan follows PostgreSQL's plan cache rules (a
 * statement without parameters keeps its generic plan; schema changes replan it).
 */
int db_query_text_prepared(struct db_conn *c, const char *name, const char *sql,
                           const char *const *params, int nparams, char **out, size_t *len,
                           struct tx_err *err);

/**
 * Runs one parameterised statement (as db_query_text) and discards any rows. With nparams == 0
 * it is sent as a simple query, so sql may also hold several statements separated by ';'
 * (BEGIN, COMMIT, SET, DDL). Transactions are the caller's: "BEGIN" ... "COMMIT" on the same
 * connection.
 */
int db_exec(struct db_conn *c, const char *sql, const char *const *params, int nparams,
            struct tx_err *err);

/**
 * Bulk load: runs sql as a simple query (one or more statements separated by ';', the last one
 * "COPY ... FROM STDIN", e.g. "BEGIN; CREATE TEMP TABLE IF NOT EXISTS t (...); COPY t FROM
 * STDIN") and streams len bytes of data as that COPY's input, in the format the COPY statement
 * names (text by default: the caller escapes backslash, tab, newline and carriage return, writes
 * \N for NULL and ends each row with a newline). The whole call runs under the query deadline of
 * db_exec. *rows (may be NULL) receives the number of rows copied (0 on failure).
 *
 * Errors as db_exec; a single bad row fails the whole COPY, typically with TX_EIO and an SQLSTATE
 * of class 22 (invalid input syntax, value out of range, invalid byte sequence: see
 * db_conn_last_sqlstate) or TX_EREJECT for a constraint of the target table. TX_EINVAL when
 * data is NULL with len > 0, or when the statements did not start a COPY FROM STDIN (the ones
 * before it did run). A second COPY in sql is refused with an error from the server. Not
 * thread-safe (one thread per connection); transactions are the caller's, as with db_exec.
 */
int db_copy_in(struct db_conn *c, const char *sql, const void *data, size_t len, long long *rows,
               struct tx_err *err);

/**
 * Source of db_copy_in_stream: sets *data and *len to the next bytes of COPY input (valid until
 * the next call), *len == 0 at the end. A non-zero return ends the COPY with an error from the
 * server (the statement fails; the transaction is to be rolled back).
 */
typedef int (*db_copy_source_fn)(void *ctx, const char **data, size_t *len);

/**
 * db_copy_in with the input produced as it is sent: each chunk is handed to the server as soon as
 * next returns it, so the server parses rows while the caller produces the following ones. sql
 * may go on after the COPY with more statements (e.g. "...; COPY t FROM STDIN; EXECUTE upsert;
 * COMMIT": one round trip for a whole transaction); the first statement that fails ends it and
 * is the error. *result (may be NULL) receives the first column of the first row of the last
 * statement that returned rows, as text to free (NULL when none, and on failure). Same
 * statements, errors, deadline and thread-safety as db_copy_in.
 */
int db_copy_in_stream(struct db_conn *c, const char *sql, db_copy_source_fn next, void *ctx,
                      long long *rows, char **result, struct tx_err *err);

/**
 * The SQLSTATE ("23514", "22P02") of the server error that made the last call on c fail, or ""
 * when that call succeeded or failed without a server error (connection, deadline, libpq). Valid
 * until the next call on c. Lets a caller tell a row's bad data (class 22, mapped to TX_EIO)
 * from other TX_EIO errors. c NULL gives "".
 */
const char *db_conn_last_sqlstate(const struct db_conn *c);

/**
 * Applies the migrations in dir: every file named NNN_<name>.sql (NNN three digits, the version),
 * in file-name order, that is not yet recorded in schema_migrations(version text primary key,
 * applied_at timestamptz), each file in its own transaction together with its schema_migrations
 * row, under the advisory lock pg_advisory_xact_lock(hashtext('txpipe.schema_migrations')) that
 * ci/stack's psql runner also takes, so concurrent runners apply each version once. Creates the
 * table if it is missing. Files are plain SQL (no psql meta-commands, no BEGIN/COMMIT), at most
 * 16 MiB; they run without statement timeout. *applied (may be NULL) is the number of files
 * applied by this call, also when it fails. Must be called outside a transaction. Errors: TX_EINVAL
 * (unreadable dir or file, two files with one version, a file that commits or rolls back itself),
 * or the failing file's SQL error (the message names the file); that file's changes are rolled
 * back, the earlier ones stay applied.
 */
int db_migrate(struct db_conn *c, const char *dir, int *applied, struct tx_err *err);

#endif
