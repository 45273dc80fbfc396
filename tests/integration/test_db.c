/*
 * Integration tests of storage/db against the PostgreSQL of `ci/stack env`: TX_PG_DSN (the
 * owner role, required), TX_PG_RO_DSN (the read-only role, required) and TX_SOURCE_DIR (the
 * checkout, for schemas/sql; set by ctest). Starts no server.
 *
 * What it creates it removes: temporary tables, the schemas txtest_db_<pid>_*, and the database
 * txtest_db_<pid> when the owner role may create databases (otherwise that part is skipped with a
 * message and the same checks run in a scratch schema).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/tx_time.h"
#include "storage/db.h"

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    const char *dsn;
    const char *ro_dsn;
    char sql_dir[4096];
    struct db_conn *c;
    /* What the tests create, removed by teardown also when a test failed half-way. */
    char database[64]; /* "" unless created */
    char schema_s[64];
    char schema_m[64];
    char tmpdir[64]; /* "" unless created */
};

static const char *need_env(const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || v[0] == '\0') {
        fprintf(stderr,
                "test_db: environment variable %s is not set (export the output of `ci/stack "
                "env`; ctest sets TX_SOURCE_DIR)\n",
                name);
        return NULL;
    }
    return v;
}

static int setup(void **state)
{
    static struct fixture f;
    const char *src;
    struct tx_err err = { 0 };

    memset(&f, 0, sizeof(f));
    *state = &f;
    f.dsn = need_env("TX_PG_DSN");
    f.ro_dsn = need_env("TX_PG_RO_DSN");
    src = need_env("TX_SOURCE_DIR");
    if (f.dsn == NULL || f.ro_dsn == NULL || src == NULL)
        return -1;
    snprintf(f.sql_dir, sizeof(f.sql_dir), "%s/schemas/sql", src);
    snprintf(f.schema_s, sizeof(f.schema_s), "txtest_db_%d_s", (int) getpid());
    snprintf(f.schema_m, sizeof(f.schema_m), "txtest_db_%d_m", (int) getpid());
    f.c = db_conn_create(f.dsn, 5000, &err);
    if (f.c == NULL) {
        fprintf(stderr, "test_db: db_conn_create(TX_PG_DSN): %s %s\n", tx_status_name(err.code),
                err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    char sql[256];

    if (f->tmpdir[0] != '\0') {
        DIR *d = opendir(f->tmpdir);
        struct dirent *e;

        while (d != NULL && (e = readdir(d)) != NULL) {
            char path[4096];

            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", f->tmpdir, e->d_name);
            unlink(path);
        }
        if (d != NULL)
            closedir(d);
        rmdir(f->tmpdir);
    }
    if (f->c != NULL) {
        snprintf(sql, sizeof(sql),
                 "DROP SCHEMA IF EXISTS %s CASCADE; DROP SCHEMA IF EXISTS %s CASCADE", f->schema_s,
                 f->schema_m);
        if (db_exec(f->c, sql, NULL, 0, &err) != 0)
            fprintf(stderr, "test_db: cleanup: %s\n", err.msg);
        if (f->database[0] != '\0') {
            snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->database);
            if (db_exec(f->c, sql, NULL, 0, &err) != 0)
                fprintf(stderr, "test_db: cleanup: %s\n", err.msg);
        }
    }
    db_conn_destroy(f->c);
    f->c = NULL;
    return 0;
}

static void must(int rc, const struct tx_err *err, const char *what)
{
    if (rc != 0)
        fail_msg("%s: %s (%s)", what, tx_status_name(rc), err->msg);
}

static struct db_conn *connect_or_fail(const char *dsn)
{
    struct tx_err err = { 0 };
    struct db_conn *c = db_conn_create(dsn, 5000, &err);

    if (c == NULL)
        fail_msg("connect: %s (%s)", tx_status_name(err.code), err.msg);
    return c;
}

/* Runs a query that must return one text cell; returns it malloc'd. */
static char *text_of(struct db_conn *c, const char *sql, const char *const *params, int n)
{
    struct tx_err err = { 0 };
    char *out = NULL;
    size_t len = 0;
    int rc = db_query_text(c, sql, params, n, &out, &len, &err);

    if (rc != 0)
        fail_msg("%s: %s (%s)", sql, tx_status_name(rc), err.msg);
    assert_int_equal(len, strlen(out));
    return out;
}

static void expect_text(struct db_conn *c, const char *sql, const char *const *params, int n,
                        const char *want)
{
    char *got = text_of(c, sql, params, n);

    if (strcmp(got, want) != 0)
        fail_msg("%s: got '%s', want '%s'", sql, got, want);
    free(got);
}

/* Number of NNN_*.sql files in dir, counted here independently of db_migrate. */
static int count_migrations(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);

        if (len >= 8 && e->d_name[3] == '_' && strcmp(e->d_name + len - 4, ".sql") == 0 &&
            e->d_name[0] >= '0' && e->d_name[0] <= '9' && e->d_name[1] >= '0' &&
            e->d_name[1] <= '9' && e->d_name[2] >= '0' && e->d_name[2] <= '9')
            n++;
    }
    closedir(d);
    return n;
}

/* ---- tests ---- */

/* A COPY source handing out fixed pieces, then failing on request. */
struct pieces {
    const char *const *part;
    size_t next;
    int fail_at; /* index of the call that fails, or -1 */
};

static int pieces_next(void *ctx, const char **data, size_t *len)
{
    struct pieces *p = ctx;

    if (p->fail_at >= 0 && (size_t) p->fail_at == p->next)
        return TX_ENOMEM;
    *data = p->part[p->next];
    *len = p->part[p->next] != NULL ? strlen(p->part[p->next]) : 0;
    if (p->part[p->next] != NULL)
        p->next++;
    return 0;
}

/* db_copy_in_stream: rows cut anywhere between chunks arrive whole; a failing source fails the
 * COPY (and only its transaction); db_copy_in is the one-chunk case. */
static void t_copy_stream(void **state)
{
    static const char *const parts[] = { "1\ta", "l", "pha\n2\tbe", "ta\n", "3\t\\N\n", NULL };
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    struct pieces src = { .part = parts, .fail_at = -1 };
    long long rows = -1;

    must(db_copy_in_stream(f->c,
                           "BEGIN; CREATE TEMP TABLE copy_stream (n int, s text) ON COMMIT DROP; "
                           "COPY copy_stream FROM STDIN",
                           pieces_next, &src, &rows, NULL, &err),
         &err, "copy stream");
    assert_int_equal(rows, 3);
    expect_text(
        f->c, "SELECT string_agg(n || '=' || coalesce(s, 'NULL'), ',' ORDER BY n) FROM copy_stream",
        NULL, 0, "1=alpha,2=beta,3=NULL");
    must(db_exec(f->c, "COMMIT", NULL, 0, &err), &err, "commit");

    src.next = 0;
    src.fail_at = 2;
    assert_int_not_equal(db_copy_in_stream(f->c,
                                           "BEGIN; CREATE TEMP TABLE copy_stream (n int, s text) "
                                           "ON COMMIT DROP; COPY copy_stream FROM STDIN",
                                           pieces_next, &src, &rows, NULL, &err),
                         0);
    assert_int_equal(rows, 0);
    assert_non_null(strstr(err.msg, "data source failed"));
    must(db_exec(f->c, "ROLLBACK", NULL, 0, &err), &err, "rollback");
    expect_text(f->c, "SELECT 'usable'", NULL, 0, "usable");

    /* Statements after the COPY in the same round trip; the last row set is the result. */
    {
        char *result = NULL;

        src.next = 0;
        src.fail_at = -1;
        must(db_copy_in_stream(f->c,
                               "BEGIN; CREATE TEMP TABLE copy_stream (n int, s text) ON COMMIT "
                               "DROP; COPY copy_stream FROM STDIN; SELECT 'ignored'; SELECT "
                               "string_agg(s, '+' ORDER BY n) FROM copy_stream; COMMIT",
                               pieces_next, &src, &rows, &result, &err),
             &err, "copy then statements");
        assert_int_equal(rows, 3);
        assert_non_null(result);
        assert_string_equal(result, "alpha+beta"); /* NULL is skipped by string_agg */
        free(result);
        expect_text(f->c, "SELECT 'committed'", NULL, 0, "committed");
        src.next = 0;
        result = (char *) 1;
        assert_int_not_equal(db_copy_in_stream(f->c,
                                               "BEGIN; CREATE TEMP TABLE copy_stream (n int, s "
                                               "text) ON COMMIT DROP; COPY copy_stream FROM "
                                               "STDIN; SELECT 1 / (count(*) - 3) FROM "
                                               "copy_stream; COMMIT",
                                               pieces_next, &src, &rows, &result, &err),
                             0);
        assert_null(result);
        assert_string_equal(db_conn_last_sqlstate(f->c), "22012");
        must(db_exec(f->c, "ROLLBACK", NULL, 0, &err), &err, "rollback");
    }

    rows = -1;
    must(db_copy_in(f->c,
                    "BEGIN; CREATE TEMP TABLE copy_stream (n int, s text) ON COMMIT DROP; COPY "
                    "copy_stream FROM STDIN",
                    "7\tseven\n", 8, &rows, &err),
         &err, "copy once");
    assert_int_equal(rows, 1);
    must(db_exec(f->c, "ROLLBACK", NULL, 0, &err), &err, "rollback");
    assert_int_equal(
        db_copy_in_stream(f->c, "COPY copy_stream FROM STDIN", NULL, NULL, &rows, NULL, &err),
        TX_EINVAL);
}

static void t_ping(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };

    must(db_ping(f->c, &err), &err, "ping");
}

static void t_query_text(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    const char *p3[3] = { "abc \"q\"", "42", NULL };
    char *out = (char *) 1;

    expect_text(f->c,
                "SELECT json_build_object('id', $1::text, 'n', $2::int, 'none', $3::text)::text",
                p3, 3, "{\"id\" : \"abc \\\"q\\\"\", \"n\" : 42, \"none\" : null}");
    expect_text(f->c,
                "SELECT json_agg(json_build_object('v', v) ORDER BY v)::text "
                "FROM generate_series(1, $1::int) AS v",
                (const char *[]){ "3" }, 1, "[{\"v\" : 1}, {\"v\" : 2}, {\"v\" : 3}]");
    /* UTF-8 survives. */
    expect_text(f->c, "SELECT $1::text", (const char *[]){ "S\xc3\xa3o Paulo \xe2\x82\xac" }, 1,
                "S\xc3\xa3o Paulo \xe2\x82\xac");
    /* Zero rows and NULL: TX_ENOTFOUND. */
    assert_int_equal(db_query_text(f->c, "SELECT 'x' WHERE false", NULL, 0, &out, NULL, &err),
                     TX_ENOTFOUND);
    assert_null(out);
    assert_int_equal(db_query_text(f->c, "SELECT NULL::text", NULL, 0, &out, NULL, &err),
                     TX_ENOTFOUND);
    assert_int_equal(
        db_query_text(f->c, "SELECT json_agg(1) WHERE false", NULL, 0, &out, NULL, &err),
        TX_ENOTFOUND);
    /* More than one row or column, or no result set: TX_EINVAL. */
    assert_int_equal(db_query_text(f->c, "SELECT generate_series(1, 2)", NULL, 0, &out, NULL, &err),
                     TX_EINVAL);
    assert_int_equal(db_query_text(f->c, "SELECT 1, 2", NULL, 0, &out, NULL, &err), TX_EINVAL);
    assert_int_equal(db_query_text(f->c, "SET application_name = 'x'", NULL, 0, &out, NULL, &err),
                     TX_EINVAL);
    /* Server errors: TX_EIO with the message and SQLSTATE. */
    assert_int_equal(db_query_text(f->c, "SELEC 1", NULL, 0, &out, NULL, &err), TX_EIO);
    assert_non_null(strstr(err.msg, "42601"));
    assert_non_null(strstr(err.msg, "syntax error"));
    assert_int_equal(
        db_query_text(f->c, "SELECT 1 FROM no_such_table_xyz", NULL, 0, &out, NULL, &err), TX_EIO);
    assert_non_null(strstr(err.msg, "42P01"));
    assert_int_equal(
        db_query_text(f->c, "SELECT $1::int", (const char *[]){ "nope" }, 1, &out, NULL, &err),
        TX_EIO);
    assert_non_null(strstr(err.msg, "22P02"));
    assert_null(out);
    /* Bad arguments. */
    assert_int_equal(db_query_text(f->c, "", NULL, 0, &out, NULL, &err), TX_EINVAL);
    assert_int_equal(db_query_text(f->c, "SELECT $1", NULL, 1, &out, NULL, &err), TX_EINVAL);
    assert_int_equal(db_query_text(f->c, "SELECT 1", NULL, 0, NULL, NULL, &err), TX_EINVAL);
    must(db_ping(f->c, &err), &err, "ping after errors");
}

static void t_read_only_role(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    struct db_conn *ro = connect_or_fail(f->ro_dsn);
    char *n;

    /* It may read ... */
    n = text_of(ro, "SELECT count(*)::text FROM schema_migrations", NULL, 0);
    assert_true(atoi(n) >= 1);
    free(n);
    expect_text(ro, "SELECT count(*)::text FROM uploads WHERE upload_id = $1",
                (const char *[]){ "no-such-upload" }, 1, "0");
    /* ... but not write. */
    assert_int_equal(db_exec(ro,
                             "INSERT INTO schema_migrations (version, applied_at) "
                             "VALUES ($1, now())",
                             (const char *[]){ "txtest" }, 1, &err),
                     TX_EREJECT);
    assert_non_null(strstr(err.msg, "permission denied"));
    assert_non_null(strstr(err.msg, "42501"));
    assert_int_equal(db_exec(ro, "CREATE TABLE txtest_ro (x int)", NULL, 0, &err), TX_EREJECT);
    assert_non_null(strstr(err.msg, "42501"));
    must(db_ping(ro, &err), &err, "ping ro");
    db_conn_destroy(ro);
}

static void t_constraints_and_transactions(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };

    must(db_exec(f->c,
                 "CREATE TEMP TABLE txtest_u (id int PRIMARY KEY, v text NOT NULL CHECK (v <> ''))",
                 NULL, 0, &err),
         &err, "create temp table");
    must(db_exec(f->c, "INSERT INTO txtest_u VALUES ($1, $2)", (const char *[]){ "1", "a" }, 2,
                 &err),
         &err, "insert");
    assert_int_equal(db_exec(f->c, "INSERT INTO txtest_u VALUES ($1, $2)",
                             (const char *[]){ "1", "b" }, 2, &err),
                     TX_EREJECT);
    assert_non_null(strstr(err.msg, "23505"));
    assert_non_null(strstr(err.msg, "(id)=(1)")); /* the detail line */
    assert_int_equal(
        db_exec(f->c, "INSERT INTO txtest_u VALUES ($1, $2)", (const char *[]){ "2", "" }, 2, &err),
        TX_EREJECT);
    assert_non_null(strstr(err.msg, "23514"));
    assert_int_equal(db_exec(f->c, "INSERT INTO txtest_u VALUES ($1, $2)",
                             (const char *[]){ "3", NULL }, 2, &err),
                     TX_EREJECT);
    assert_non_null(strstr(err.msg, "23502"));
    /* A transaction: the failed statement aborts it, ROLLBACK ends it. */
    must(db_exec(f->c, "BEGIN", NULL, 0, &err), &err, "begin");
    must(db_exec(f->c, "INSERT INTO txtest_u VALUES (4, 'd')", NULL, 0, &err), &err, "insert 4");
    assert_int_equal(db_exec(f->c, "INSERT INTO txtest_u VALUES (1, 'x')", NULL, 0, &err),
                     TX_EREJECT);
    assert_int_equal(db_exec(f->c, "INSERT INTO txtest_u VALUES (5, 'e')", NULL, 0, &err),
                     TX_EIO); /* 25P02: current transaction is aborted */
    assert_non_null(strstr(err.msg, "25P02"));
    assert_int_equal(db_conn_set_statement_timeout(f->c, 1000, &err), TX_EINVAL);
    must(db_exec(f->c, "ROLLBACK", NULL, 0, &err), &err, "rollback");
    expect_text(f->c, "SELECT string_agg(id::text, ',' ORDER BY id) FROM txtest_u", NULL, 0, "1");
    /* Several statements in one simple query. */
    must(db_exec(f->c,
                 "BEGIN; INSERT INTO txtest_u VALUES (6, 'f'); INSERT INTO txtest_u VALUES (7, "
                 "'g'); COMMIT",
                 NULL, 0, &err),
         &err, "multi-statement");
    expect_text(f->c, "SELECT string_agg(id::text, ',' ORDER BY id) FROM txtest_u", NULL, 0,
                "1,6,7");
    must(db_exec(f->c, "DROP TABLE txtest_u", NULL, 0, &err), &err, "drop");
}

static void t_statement_timeout(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    struct db_conn *c = connect_or_fail(f->dsn);
    char *pid1;
    char *pid2;
    int64_t t0;
    int64_t dt;

    must(db_conn_set_statement_timeout(c, 200, &err), &err, "set statement timeout");
    expect_text(c, "SHOW statement_timeout", NULL, 0, "200ms");
    pid1 = text_of(c, "SELECT pg_backend_pid()::text", NULL, 0);
    /* The server cancels the statement; the session survives. */
    t0 = tx_time_mono_ms();
    assert_int_equal(db_exec(c, "SELECT pg_sleep(3)", NULL, 0, &err), TX_ETIMEDOUT);
    dt = tx_time_mono_ms() - t0;
    assert_non_null(strstr(err.msg, "57014"));
    if (dt < 150 || dt > 1500)
        fail_msg("statement timeout after %lld ms, want about 200", (long long) dt);
    pid2 = text_of(c, "SELECT pg_backend_pid()::text", NULL, 0);
    assert_string_equal(pid1, pid2);
    free(pid2);
    /* Without the server's timeout the client deadline (200 ms + 2 s) drops the connection ... */
    must(db_exec(c, "SET statement_timeout = 0", NULL, 0, &err), &err, "set 0");
    t0 = tx_time_mono_ms();
    assert_int_equal(db_exec(c, "SELECT pg_sleep(4)", NULL, 0, &err), TX_ETIMEDOUT);
    dt = tx_time_mono_ms() - t0;
    if (dt < 2000 || dt > 3500)
        fail_msg("client deadline after %lld ms, want about 2200", (long long) dt);
    /* ... and the next call reconnects with the statement timeout applied again. */
    expect_text(c, "SHOW statement_timeout", NULL, 0, "200ms");
    pid2 = text_of(c, "SELECT pg_backend_pid()::text", NULL, 0);
    assert_string_not_equal(pid1, pid2);
    free(pid2);
    must(db_conn_set_statement_timeout(c, 0, &err), &err, "set 0");
    expect_text(c, "SHOW statement_timeout", NULL, 0, "0");
    assert_int_equal(db_conn_set_statement_timeout(c, -1, &err), TX_EINVAL);
    free(pid1);
    db_conn_destroy(c);
}

static void t_bad_dsn_and_port(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    int64_t t0 = tx_time_mono_ms();
    char dsn[1024];
    const char *at;
    const char *colon;

    assert_null(db_conn_create("postgresql://txpipe:x@127.0.0.1:1/txpipe", 3000, &err));
    assert_int_equal(err.code, TX_EUNAVAIL);
    assert_true(tx_time_mono_ms() - t0 < 2000);
    assert_null(db_conn_create("host=127.0.0.1 port=1 dbname=txpipe user=txpipe", 3000, &err));
    assert_int_equal(err.code, TX_EUNAVAIL);
    assert_null(db_conn_create("host=/nonexistent/socket/dir dbname=txpipe", 3000, &err));
    assert_int_equal(err.code, TX_EUNAVAIL);
    /* Unparsable DSNs are a configuration error. */
    assert_null(db_conn_create("postgresql://[bad", 3000, &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(db_conn_create("nokeyword", 3000, &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(db_conn_create("host=127.0.0.1 nosuchoption=1", 3000, &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(db_conn_create("", 3000, &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(db_conn_create(f->dsn, -5, &err));
    assert_int_equal(err.code, TX_EINVAL);
    /* A wrong password (URI form "scheme://user:password@host..."). */
    at = strchr(f->dsn, '@');
    colon = strstr(f->dsn, "://");
    if (colon != NULL && at != NULL &&
        (colon = memchr(colon + 3, ':', (size_t) (at - colon - 3)))) {
        snprintf(dsn, sizeof(dsn), "%.*s:wrong-password%s", (int) (colon - f->dsn), f->dsn, at);
        assert_null(db_conn_create(dsn, 3000, &err));
        assert_int_equal(err.code, TX_EUNAVAIL);
        assert_non_null(strstr(err.msg, "password authentication failed"));
        assert_null(strstr(err.msg, "wrong-password"));
    }
    else {
        print_message("skipped the wrong-password check: TX_PG_DSN is not a URI with a "
                      "password\n");
    }
}

struct killer {
    const char *dsn;
    const char *pid;
    int rc;
};

/* Terminates backend k->pid after 300 ms, from its own connection. */
static void *kill_later(void *arg)
{
    struct killer *k = arg;
    struct tx_err err = { 0 };
    struct db_conn *c = db_conn_create(k->dsn, 5000, &err);
    const char *params[1] = { k->pid };
    char *out = NULL;

    k->rc = -1;
    if (c == NULL)
        return NULL;
    usleep(300 * 1000);
    k->rc = db_query_text(c, "SELECT pg_terminate_backend($1::int, 5000)::text", params, 1, &out,
                          NULL, &err);
    if (k->rc == 0 && strcmp(out, "true") != 0)
        k->rc = -2;
    free(out);
    db_conn_destroy(c);
    return NULL;
}

/* pg_terminate_backend of the connection's own backend: the next call reconnects. */
static void t_reconnect_after_terminate(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    struct db_conn *a = connect_or_fail(f->dsn);
    char *pid1;
    char *pid2;

    for (int round = 0; round < 2; round++) {
        pid1 = text_of(a, "SELECT pg_backend_pid()::text", NULL, 0);
        expect_text(f->c, "SELECT pg_terminate_backend($1::int, 5000)::text",
                    (const char *[]){ pid1 }, 1, "true");
        if (round == 0)
            pid2 = text_of(a, "SELECT pg_backend_pid()::text", NULL, 0);
        else {
            must(db_ping(a, &err), &err, "ping after terminate");
            pid2 = text_of(a, "SELECT pg_backend_pid()::text", NULL, 0);
        }
        assert_string_not_equal(pid1, pid2);
        free(pid1);
        free(pid2);
    }
    /* Inside a transaction the loss is reported once, then the connection is replaced. */
    must(db_exec(a, "BEGIN", NULL, 0, &err), &err, "begin");
    pid1 = text_of(a, "SELECT pg_backend_pid()::text", NULL, 0);
    expect_text(f->c, "SELECT pg_terminate_backend($1::int, 5000)::text", (const char *[]){ pid1 },
                1, "true");
    assert_int_equal(db_exec(a, "SELECT 1", NULL, 0, &err), TX_EUNAVAIL);
    assert_non_null(strstr(err.msg, "inside a transaction"));
    pid2 = text_of(a, "SELECT pg_backend_pid()::text", NULL, 0);
    assert_string_not_equal(pid1, pid2);
    /* Not in a transaction any more: each statement gets its own transaction id. */
    {
        char *x1 = text_of(a, "SELECT txid_current()::text", NULL, 0);
        char *x2 = text_of(a, "SELECT txid_current()::text", NULL, 0);

        assert_string_not_equal(x1, x2);
        free(x1);
        free(x2);
    }
    free(pid1);
    free(pid2);
    /* Terminated while a statement runs: that statement fails, the next one works. */
    pid1 = text_of(a, "SELECT pg_backend_pid()::text", NULL, 0);
    {
        struct killer k = { .dsn = f->dsn, .pid = pid1 };
        pthread_t th;

        assert_int_equal(pthread_create(&th, NULL, kill_later, &k), 0);
        assert_int_equal(db_exec(a, "SELECT pg_sleep(5)", NULL, 0, &err), TX_EUNAVAIL);
        pthread_join(th, NULL);
        assert_int_equal(k.rc, 0);
    }
    pid2 = text_of(a, "SELECT pg_backend_pid()::text", NULL, 0);
    assert_string_not_equal(pid1, pid2);
    free(pid1);
    free(pid2);
    db_conn_destroy(a);
}

/* ---- migrations ---- */

static void t_migrate_idempotent(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    int applied = -1;
    char *n;

    must(db_migrate(f->c, f->sql_dir, &applied, &err), &err, "migrate");
    assert_int_equal(applied, 0);
    n = text_of(f->c, "SELECT count(*)::text FROM schema_migrations", NULL, 0);
    assert_int_equal(atoi(n), count_migrations(f->sql_dir));
    free(n);
    must(db_migrate(f->c, f->sql_dir, NULL, &err), &err, "migrate without count");
    assert_int_equal(db_migrate(f->c, "/nonexistent/dir", &applied, &err), TX_EINVAL);
    assert_int_equal(applied, 0);
}

/* Checks a freshly migrated database/schema: every file applied, once, and the tables exist. */
static void check_fresh_migration(struct db_conn *c, const char *dir, const char *schema)
{
    struct tx_err err = { 0 };
    int applied = -1;
    int files = count_migrations(dir);
    char sql[512];
    char *n;

    must(db_migrate(c, dir, &applied, &err), &err, "migrate fresh");
    assert_int_equal(applied, files);
    assert_true(files >= 1);
    snprintf(sql, sizeof(sql), "SELECT count(*)::text FROM %s.schema_migrations", schema);
    n = text_of(c, sql, NULL, 0);
    assert_int_equal(atoi(n), files);
    free(n);
    snprintf(sql, sizeof(sql),
             "SELECT (to_regclass('%s.uploads') IS NOT NULL AND to_regclass('%s.transactions') "
             "IS NOT NULL AND to_regclass('%s.fraud_reasons') IS NOT NULL AND "
             "to_regclass('%s.emails') IS NOT NULL)::text",
             schema, schema, schema, schema);
    expect_text(c, sql, NULL, 0, "true");
    snprintf(sql, sizeof(sql),
             "SELECT (min(version) = '001' AND bool_and(applied_at <= now()))::text "
             "FROM %s.schema_migrations",
             schema);
    expect_text(c, sql, NULL, 0, "true");
    must(db_migrate(c, dir, &applied, &err), &err, "migrate again");
    assert_int_equal(applied, 0);
}

/* Replaces the database name of a URI DSN (or appends dbname= to a keyword DSN). */
static void dsn_with_db(const char *dsn, const char *db, char *out, size_t outlen)
{
    const char *scheme = strstr(dsn, "://");

    if (scheme == NULL) {
        snprintf(out, outlen, "%s dbname=%s", dsn, db);
        return;
    }
    {
        const char *auth = scheme + 3;
        const char *path = auth + strcspn(auth, "/?");
        const char *query = path + strcspn(path, "?");

        snprintf(out, outlen, "%.*s/%s%s", (int) (path - dsn), dsn, db, query);
    }
}

static void t_migrate_scratch_database(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    char name[64];
    char sql[128];
    char dsn[2048];
    struct db_conn *c;
    int rc;

    snprintf(name, sizeof(name), "txtest_db_%d", (int) getpid());
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    rc = db_exec(f->c, sql, NULL, 0, &err);
    if (rc == TX_EREJECT) {
        print_message("skipped the scratch-database migration: the TX_PG_DSN role may not "
                      "create databases (%s); t_migrate_scratch_schema runs the same checks in "
                      "a schema\n",
                      err.msg);
        skip();
    }
    must(rc, &err, "create database");
    snprintf(f->database, sizeof(f->database), "%s", name);
    dsn_with_db(f->dsn, name, dsn, sizeof(dsn));
    c = db_conn_create(dsn, 5000, &err);
    if (c != NULL) {
        check_fresh_migration(c, f->sql_dir, "public");
        db_conn_destroy(c);
    }
    snprintf(sql, sizeof(sql), "DROP DATABASE %s", name);
    must(db_exec(f->c, sql, NULL, 0, &err), &err, "drop database");
    f->database[0] = '\0';
    if (c == NULL)
        fail_msg("connect to %s: %s", name, err.msg);
}

/* Creates schema name and a connection whose search_path is only that schema. */
static struct db_conn *scratch_schema(struct fixture *f, const char *name)
{
    struct tx_err err = { 0 };
    struct db_conn *c = connect_or_fail(f->dsn);
    char sql[256];

    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", name, name);
    must(db_exec(f->c, sql, NULL, 0, &err), &err, "create schema");
    snprintf(sql, sizeof(sql), "SET search_path TO %s", name);
    must(db_exec(c, sql, NULL, 0, &err), &err, "search_path");
    return c;
}

static void drop_schema(struct fixture *f, const char *name)
{
    struct tx_err err = { 0 };
    char sql[256];

    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", name);
    must(db_exec(f->c, sql, NULL, 0, &err), &err, "drop schema");
}

static void t_migrate_scratch_schema(void **state)
{
    struct fixture *f = *state;
    struct db_conn *c = scratch_schema(f, f->schema_s);

    check_fresh_migration(c, f->sql_dir, f->schema_s);
    db_conn_destroy(c);
    drop_schema(f, f->schema_s);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static void remove_file(const char *dir, const char *name)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
}

/* Order, failure in the middle, files that end their transaction, duplicate versions. */
static void t_migrate_rules(void **state)
{
    struct fixture *f = *state;
    static const char *const names[] = { "001_a.sql", "002_b.sql", "003_bad.sql", "003_x.sql",
                                         "004_c.sql", "README.md", "10_x.sql",    "005_d.txt" };
    struct tx_err err = { 0 };
    const char *dir = f->tmpdir;
    struct db_conn *c;
    int applied = -1;

    snprintf(f->tmpdir, sizeof(f->tmpdir), "/tmp/txtest_mig_XXXXXX");
    assert_non_null(mkdtemp(f->tmpdir));
    c = scratch_schema(f, f->schema_m);
    /* 002 depends on 001 (order); not migrations: README.md, 10_x.sql, 005_d.txt. */
    write_file(dir, "002_b.sql",
               "CREATE TABLE b (x int REFERENCES a (x));\n"
               "INSERT INTO b VALUES (1);\n");
    write_file(dir, "001_a.sql",
               "-- first\nCREATE TABLE a (x int PRIMARY KEY);\n"
               "INSERT INTO a VALUES (1);\n");
    write_file(dir, "003_bad.sql", "CREATE TABLE c (x int);\nSELECT no_such_function();\n");
    write_file(dir, "README.md", "not sql");
    write_file(dir, "10_x.sql", "SELECT no_such_function();");
    write_file(dir, "005_d.txt", "SELECT no_such_function();");
    assert_int_equal(db_migrate(c, dir, &applied, &err), TX_EIO);
    assert_int_equal(applied, 2);
    assert_non_null(strstr(err.msg, "003_bad.sql"));
    assert_non_null(strstr(err.msg, "42883"));
    expect_text(c, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations", NULL,
                0, "001,002");
    expect_text(c, "SELECT (to_regclass('c') IS NULL)::text", NULL, 0, "true");
    /* Fixed: only 003 runs. */
    write_file(dir, "003_bad.sql", "CREATE TABLE c (x int);\n");
    must(db_migrate(c, dir, &applied, &err), &err, "migrate fixed");
    assert_int_equal(applied, 1);
    /* Two files with one version. */
    write_file(dir, "003_x.sql", "SELECT 1;");
    assert_int_equal(db_migrate(c, dir, &applied, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "same version"));
    assert_int_equal(applied, 0);
    remove_file(dir, "003_x.sql");
    /* A file that commits by itself is reported and not recorded. */
    write_file(dir, "004_c.sql", "CREATE TABLE d (x int);\nCOMMIT;\n");
    assert_int_equal(db_migrate(c, dir, &applied, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "004_c.sql"));
    expect_text(c, "SELECT count(*)::text FROM schema_migrations", NULL, 0, "3");
    /* An empty (comment-only) file is a valid migration. */
    write_file(dir, "004_c.sql", "-- nothing yet\n");
    must(db_migrate(c, dir, &applied, &err), &err, "migrate empty file");
    assert_int_equal(applied, 1);
    expect_text(c, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations", NULL,
                0, "001,002,003,004");
    /* A read-only role cannot migrate. */
    {
        struct db_conn *ro = connect_or_fail(f->ro_dsn);

        assert_int_equal(db_migrate(ro, f->sql_dir, &applied, &err), TX_EREJECT);
        db_conn_destroy(ro);
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        remove_file(dir, names[i]);
    assert_int_equal(rmdir(dir), 0);
    f->tmpdir[0] = '\0';
    db_conn_destroy(c);
    drop_schema(f, f->schema_m);
}

static void t_null_is_noop(void **state)
{
    (void) state;
    db_conn_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_ping),
        cmocka_unit_test(t_query_text),
        cmocka_unit_test(t_copy_stream),
        cmocka_unit_test(t_read_only_role),
        cmocka_unit_test(t_constraints_and_transactions),
        cmocka_unit_test(t_statement_timeout),
        cmocka_unit_test(t_bad_dsn_and_port),
        cmocka_unit_test(t_reconnect_after_terminate),
        cmocka_unit_test(t_migrate_idempotent),
        cmocka_unit_test(t_migrate_scratch_database),
        cmocka_unit_test(t_migrate_scratch_schema),
        cmocka_unit_test(t_migrate_rules),
        cmocka_unit_test(t_null_is_noop),
    };

    return cmocka_run_group_tests_name("storage/db (libpq)", tests, setup, teardown);
}
