/*
 * Integration tests of txpersist against the PostgreSQL and RabbitMQ of `ci/stack env`:
 * TX_PG_DSN (the writer role, a postgresql:// URI), TX_AMQP_URL (an administrator) and
 * TX_RABBIT_MGMT_URL (to declare and delete a temporary queue). Starts no server.
 *
 * Every case writes rows of a fresh upload id (UUIDv7) and checks exactly those rows; nothing is
 * truncated or deleted, so other tests reading the shared tables are not disturbed.
 *
 * - storage/db's COPY support (db_copy_in, db_conn_last_sqlstate) on temporary tables;
 * - the batch writer (persist_writer_handle) called directly: exact rows, exact valor, scored
 *   before received, redelivery writes nothing new, a refused row dead-lettered alone while its
 *   batch-mates commit, poison messages;
 * - PostgreSQL unreachable: the writer talks to PostgreSQL through a TCP relay in this process
 *   that can cut every connection and refuse new ones (the shared server keeps running), so an
 *   outage is simulated without touching ci/stack;
 * - the daemon (TXPERSIST_BIN, set by CMake) on a temporary quorum queue txtest.persist.<pid>
 *   with its own dead-letter queue: rows, DLQ, /readyz, metrics, nothing acked while PostgreSQL is
 *   away, recovery without restart, SIGTERM drain during an outage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/tx_buf.h"
#include "common/tx_id.h"
#include "common/tx_metrics.h"
#include "common/tx_time.h"
#include "consumers/persist/persist.h"
#include "storage/db.h"
#include "storage/queue.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TXPERSIST_BIN
#define TXPERSIST_BIN ""
#endif

#define RECEIVED_AT "2024-03-11T12:00:00.123Z"

struct env {
    const char *dsn;
    const char *amqp_url;
    const char *mgmt_url;
    char pg_host[64];
    int pg_port;
    struct db_conn *db; /* for checks */
};

static struct env E;

/* ---- small helpers ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void new_upload(char out[TX_UUID_STR_LEN + 1])
{
    assert_int_equal(tx_uuid7_make(tx_time_now_ms(), out), 0);
}

/* One text cell of a query with up to 3 parameters; NULL for no row or a NULL cell. */
static char *q(const char *sql, const char *p1, const char *p2)
{
    const char *params[2] = { p1, p2 };
    int np = p2 != NULL ? 2 : p1 != NULL ? 1 : 0;
    struct tx_err err = { 0 };
    char *out = NULL;
    int rc = db_query_text(E.db, sql, params, np, &out, NULL, &err);

    if (rc == TX_ENOTFOUND)
        return NULL;
    if (rc != 0)
        fail_msg("query failed: %s: %s\n%s", tx_status_name(rc), err.msg, sql);
    return out;
}

static long q_long(const char *sql, const char *p1, const char *p2)
{
    char *s = q(sql, p1, p2);
    long v;

    assert_non_null(s);
    v = strtol(s, NULL, 10);
    free(s);
    return v;
}

static void assert_q(const char *want, const char *sql, const char *p1, const char *p2)
{
    char *got = q(sql, p1, p2);

    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(want, got) != 0)
        fail_msg("query %s\n  expected: %s\n  got:      %s", sql, want != NULL ? want : "(null)",
                 got != NULL ? got : "(null)");
    free(got);
}

/* ---- events ---- */

/* The record of index idx; valor is JSON number text or NULL (absent). */
static void record_json(struct tx_buf *b, const char *upload, int idx, const char *valor)
{
    (void) upload;
    assert_int_equal(tx_buf_printf(b,
                                   "{\"_id\":\"client-%d\",\"cliente\":\"Cliente\\t%d\","
                                   "\"email\":\"c%d@example.com\",\"endereco\":\"Rua %d\\\\n\","
                                   "\"datatrasancao\":\"2024-03-11T12:00:%02d +02:00\","
                                   "\"isActive\":%s",
                                   idx, idx, idx, idx, idx % 60, idx % 2 == 0 ? "true" : "false"),
                     0);
    if (valor != NULL)
        assert_int_equal(tx_buf_printf(b, ",\"valor\":%s", valor), 0);
    assert_int_equal(tx_buf_puts(b, ",\"extra\":{\"tags\":[\"a\",1]}}"), 0);
}

/* transaction.received (verdict NULL) or transaction.scored (verdict: the JSON object). */
static char *tx_event(const char *upload, int idx, const char *valor, const char *verdict)
{
    struct tx_buf b;

    tx_buf_init(&b, 1u << 20);
    assert_int_equal(tx_buf_printf(&b,
                                   "{\"type\":\"%s\",\"schema_version\":1,\"event_id\":\"%s:%d\","
                                   "\"upload_id\":\"%s\",\"index\":%d,"
                                   "\"object\":\"raw/2024/03/11/%s.json\","
                                   "\"received_at\":\"" RECEIVED_AT "\",\"transaction\":",
                                   verdict != NULL ? "transaction.scored" : "transaction.received",
                                   upload, idx, upload, idx, upload),
                     0);
    record_json(&b, upload, idx, valor);
    if (verdict != NULL)
        assert_int_equal(tx_buf_printf(&b, ",\"verdict\":%s", verdict), 0);
    assert_int_equal(tx_buf_puts(&b, "}"), 0);
    return tx_buf_steal(&b, NULL);
}

static char *notify_event(bool sent, const char *event_id, const char *tmpl, const char *msgid,
                          const char *at, const char *error)
{
    struct tx_buf b;

    tx_buf_init(&b, 1u << 16);
    assert_int_equal(tx_buf_printf(&b,
                                   "{\"type\":\"notification.%s\",\"schema_version\":1,"
                                   "\"event_id\":\"%s\",\"template\":\"%s\","
                                   "\"to\":\"ana@example.com\",\"message_id\":\"%s\","
                                   "\"at\":\"%s\",\"error\":",
                                   sent ? "sent" : "failed", event_id, tmpl, msgid, at),
                     0);
    if (error == NULL)
        assert_int_equal(tx_buf_puts(&b, "null}"), 0);
    else
        assert_int_equal(tx_buf_printf(&b, "\"%s\"}", error), 0);
    return tx_buf_steal(&b, NULL);
}

/* A batch of bodies handed to the writer as deliveries; out gets the dispositions. */
struct batch {
    char *body[600];
    size_t n;
};

static void add(struct batch *b, char *body)
{
    assert_true(b->n < sizeof(b->body) / sizeof(b->body[0]));
    b->body[b->n++] = body;
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->body[i]);
    b->n = 0;
}

static void run_batch(struct persist_writer *w, const struct batch *b, enum queue_disposition *out,
                      const volatile sig_atomic_t *stop)
{
    struct queue_delivery d[600];

    memset(d, 0, sizeof(d));
    for (size_t i = 0; i < b->n; i++) {
        d[i].routing_key = "transaction.received";
        d[i].message_id = "";
        d[i].correlation_id = "";
        d[i].body = b->body[i];
        d[i].len = strlen(b->body[i]);
        d[i].tag = i + 1;
    }
    persist_writer_handle(w, d, b->n, out, stop);
}

static void expect_all(const enum queue_disposition *out, size_t n, enum queue_disposition want)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] != want)
            fail_msg("delivery %zu: disposition %d, expected %d", i, (int) out[i], (int) want);
}

static struct persist_writer *writer_for(const char *dsn, struct tx_metrics *m, long budget_ms)
{
    struct persist_writer_config cfg = {
        .dsn = dsn,
        .connect_timeout_ms = 2000,
        .statement_timeout_ms = 5000,
        .retry_budget_ms = budget_ms,
        .max_batch_bytes = 64u << 20,
        .metrics_prefix = "txpersist",
    };
    struct tx_err err = { 0 };
    struct persist_writer *w = persist_writer_create(&cfg, m, &err);

    if (w == NULL)
        fail_msg("persist_writer_create: %s", err.msg);
    return w;
}

/* Value of one series in a rendered registry ("name{labels}"), -1 when absent. */
static long long metric(struct tx_metrics *m, const char *series)
{
    struct tx_buf out;
    long long v = -1;
    const char *p;

    tx_buf_init(&out, 1u << 20);
    assert_int_equal(tx_metrics_render(m, &out), 0);
    p = out.data;
    while (p != NULL && (p = strstr(p, series)) != NULL) {
        if ((p == out.data || p[-1] == '\n') && p[strlen(series)] == ' ') {
            v = strtoll(p + strlen(series) + 1, NULL, 10);
            break;
        }
        p += strlen(series);
    }
    tx_buf_cleanup(&out);
    return v;
}

#define ROWS_SQL                                                                                 \
    "SELECT string_agg(concat_ws('|', event_id, idx, client_id, cliente, email, endereco,"       \
    " datatrasancao, to_char(datatrasancao_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')," \
    " is_active, coalesce(valor::text, '-'),"                                                    \
    " to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'),"                  \
    " scored_at IS NOT NULL, coalesce(flagged::text, '-'), coalesce(score::text, '-')),"         \
    " E'\\n' ORDER BY idx) FROM transactions WHERE upload_id = $1"

/* Everything persisted for an upload, persisted_at/scored_at/created_at/ids included. */
#define SNAPSHOT_SQL                                                                             \
    "SELECT md5(coalesce((SELECT string_agg(t::text, ',' ORDER BY event_id) FROM transactions t" \
    " WHERE upload_id = $1), '') || coalesce((SELECT string_agg(u::text, ',') FROM uploads u"    \
    " WHERE upload_id = $1), '') || coalesce((SELECT string_agg(f::text, ',' ORDER BY event_id," \
    " code) FROM fraud_reasons f WHERE event_id LIKE $1 || ':%'), '') ||"                        \
    " coalesce((SELECT string_agg(e::text, ',' ORDER BY event_id, template) FROM emails e"       \
    " WHERE event_id LIKE $1 || ':%'), ''))"

/* ---- fixture ---- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct tx_buf *b = ud;

    return tx_buf_append(b, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

/* One HTTP request; returns the status (0 on transport failure); body into out when not NULL. */
static long http(const char *method, const char *url, const char *body, struct tx_buf *out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "content-type: application/json");
    struct tx_buf sink;
    long status = 0;

    tx_buf_init(&sink, 1u << 20);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out != NULL ? out : &sink);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    tx_buf_cleanup(&sink);
    return status;
}

static long mgmt(const char *method, const char *path, const char *body)
{
    char url[1024];

    snprintf(url, sizeof(url), "%s%s", E.mgmt_url, path);
    return http(method, url, body, NULL);
}

/* Host and port of a postgresql:// URI. */
static int parse_pg_uri(const char *dsn, char *host, size_t hostlen, int *port)
{
    const char *at = strchr(dsn, '@');
    const char *end;
    const char *colon;

    if (strncmp(dsn, "postgresql://", 13) != 0 && strncmp(dsn, "postgres://", 11) != 0)
        return -1;
    if (at == NULL)
        return -1;
    end = strchr(at, '/');
    colon = memchr(at, ':', end != NULL ? (size_t) (end - at) : strlen(at));
    if (end == NULL || colon == NULL || (size_t) (colon - at - 1) >= hostlen)
        return -1;
    memcpy(host, at + 1, (size_t) (colon - at - 1));
    host[colon - at - 1] = '\0';
    *port = atoi(colon + 1);
    return *port > 0 ? 0 : -1;
}

/* TX_PG_DSN with its port replaced (the relay) and an application_name added. */
static void dsn_via(int port, const char *app, char *out, size_t outlen)
{
    const char *at = strchr(E.dsn, '@');
    const char *slash = strchr(at, '/');
    const char *qm = strchr(slash, '?');

    snprintf(out, outlen, "%.*s@127.0.0.1:%d%s%sapplication_name=%s", (int) (at - E.dsn), E.dsn,
             port, slash, qm != NULL ? "&" : "?", app);
}

static int setup(void **state)
{
    struct tx_err err = { 0 };

    (void) state;
    E.dsn = getenv("TX_PG_DSN");
    E.amqp_url = getenv("TX_AMQP_URL");
    E.mgmt_url = getenv("TX_RABBIT_MGMT_URL");
    if (E.dsn == NULL || E.amqp_url == NULL || E.mgmt_url == NULL) {
        fprintf(stderr, "test_persist: export the output of `ci/stack env` (TX_PG_DSN, "
                        "TX_AMQP_URL, TX_RABBIT_MGMT_URL)\n");
        return -1;
    }
    if (parse_pg_uri(E.dsn, E.pg_host, sizeof(E.pg_host), &E.pg_port) != 0) {
        fprintf(stderr, "test_persist: TX_PG_DSN must be a postgresql://user:pass@host:port/db "
                        "URI\n");
        return -1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    E.db = db_conn_create(E.dsn, 5000, &err);
    if (E.db == NULL) {
        fprintf(stderr, "test_persist: cannot connect: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void daemon_cleanup(void);
static void relay_cleanup(void);

static int teardown(void **state)
{
    (void) state;
    relay_cleanup();
    daemon_cleanup();
    db_conn_destroy(E.db);
    curl_global_cleanup();
    return 0;
}

/* ---- a TCP relay to PostgreSQL that can cut and refuse connections ---- */

#define RELAY_PAIRS 64

struct relay {
    int port;
    int target_port;
    int lfd;
    int fds[RELAY_PAIRS][2]; /* client, server; -1 when free */
    atomic_int down;         /* 1: cut every connection and refuse new ones */
    atomic_int quit;
    atomic_int accepted;
    pthread_t th;
};

static int relay_listen(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *) &a, sizeof(a)) != 0 || listen(fd, 64) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK); /* accepted sockets stay blocking (Linux) */
    return fd;
}

static void relay_cut(struct relay *r, int i)
{
    close(r->fds[i][0]);
    close(r->fds[i][1]);
    r->fds[i][0] = r->fds[i][1] = -1;
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    char buf[65536];

    while (!atomic_load(&r->quit)) {
        struct pollfd pfd[1 + 2 * RELAY_PAIRS];
        int map[1 + 2 * RELAY_PAIRS];
        int n = 0;

        if (atomic_load(&r->down)) {
            for (int i = 0; i < RELAY_PAIRS; i++)
                if (r->fds[i][0] >= 0)
                    relay_cut(r, i);
            if (r->lfd >= 0) {
                close(r->lfd);
                r->lfd = -1;
            }
            sleep_ms(10);
            continue;
        }
        if (r->lfd < 0) {
            r->lfd = relay_listen(r->port);
            if (r->lfd < 0) {
                sleep_ms(10);
                continue;
            }
        }
        pfd[n] = (struct pollfd){ .fd = r->lfd, .events = POLLIN };
        map[n++] = -1;
        for (int i = 0; i < RELAY_PAIRS; i++) {
            if (r->fds[i][0] < 0)
                continue;
            for (int s = 0; s < 2; s++) {
                pfd[n] = (struct pollfd){ .fd = r->fds[i][s], .events = POLLIN };
                map[n++] = i * 2 + s;
            }
        }
        if (poll(pfd, (nfds_t) n, 20) <= 0)
            continue;
        /* Data first; new connections last, so a slot cut and reused within one round is
         * never read through a stale poll entry. */
        for (int k = 1; k < n; k++) {
            int i = map[k] / 2;
            int from = map[k] % 2;
            ssize_t got;

            if (pfd[k].revents == 0 || r->fds[i][from] != pfd[k].fd)
                continue;
            got = recv(r->fds[i][from], buf, sizeof(buf), MSG_DONTWAIT);
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                continue;
            if (got <= 0) {
                relay_cut(r, i);
                continue;
            }
            for (ssize_t off = 0; off < got;) {
                ssize_t w = write(r->fds[i][1 - from], buf + off, (size_t) (got - off));

                if (w <= 0) {
                    relay_cut(r, i);
                    break;
                }
                off += w;
            }
        }
        if (pfd[0].revents != 0) {
            int c = accept(r->lfd, NULL, NULL); /* non-blocking listener */
            struct sockaddr_in a = { .sin_family = AF_INET,
                                     .sin_port = htons((uint16_t) r->target_port) };
            int slot = -1;
            int s;

            if (c < 0)
                continue;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            s = socket(AF_INET, SOCK_STREAM, 0);
            for (int i = 0; i < RELAY_PAIRS && slot < 0; i++)
                if (r->fds[i][0] < 0)
                    slot = i;
            if (slot < 0 || connect(s, (struct sockaddr *) &a, sizeof(a)) != 0) {
                close(c);
                close(s);
                continue;
            }
            r->fds[slot][0] = c;
            r->fds[slot][1] = s;
            atomic_fetch_add(&r->accepted, 1);
        }
    }
    for (int i = 0; i < RELAY_PAIRS; i++)
        if (r->fds[i][0] >= 0)
            relay_cut(r, i);
    if (r->lfd >= 0)
        close(r->lfd);
    return NULL;
}

/* The one relay (static: its thread must never see a dead stack frame after a failed test). */
static struct relay R;
static bool relay_running;

static void relay_stop(struct relay *r);

static void relay_start(struct relay *r)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);

    if (relay_running)
        relay_stop(r);
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < RELAY_PAIRS; i++)
        r->fds[i][0] = r->fds[i][1] = -1;
    r->target_port = E.pg_port;
    r->lfd = relay_listen(0);
    assert_true(r->lfd >= 0);
    assert_int_equal(getsockname(r->lfd, (struct sockaddr *) &a, &alen), 0);
    r->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&r->th, NULL, relay_main, r), 0);
    relay_running = true;
}

/* Thread: ends the relay's outage 600 ms from now. */
static void *relay_up_later(void *arg)
{
    struct relay *r = arg;

    sleep_ms(600);
    atomic_store(&r->down, 0);
    return NULL;
}

static void relay_stop(struct relay *r)
{
    if (!relay_running)
        return;
    atomic_store(&r->quit, 1);
    pthread_join(r->th, NULL);
    relay_running = false;
}

static void relay_cleanup(void)
{
    relay_stop(&R);
}

/* ---- storage/db: COPY ---- */

static void t_db_copy_in(void **state)
{
    struct tx_err err = { 0 };
    struct tx_buf data;
    long long rows = -1;
    char *s = NULL;
    const char *text = "1\ttab\\there\n2\t\\N\n3\tnl\\nback\\\\slash\n";

    (void) state;
    /* Escapes and NULL in text format; the statements before the COPY run too. */
    assert_int_equal(db_copy_in(E.db,
                                "BEGIN; CREATE TEMP TABLE txtest_copy (a int, b text) ON COMMIT "
                                "DROP; COPY txtest_copy (a, b) FROM STDIN",
                                text, strlen(text), &rows, &err),
                     0);
    assert_int_equal(rows, 3);
    assert_int_equal(db_query_text(E.db,
                                   "SELECT string_agg(coalesce(b, 'NULL'), '|' ORDER BY a) FROM "
                                   "txtest_copy",
                                   NULL, 0, &s, NULL, &err),
                     0);
    assert_string_equal(s, "tab\there|NULL|nl\nback\\slash");
    free(s);

    /* Bad data: class 22, the transaction is left aborted for the caller to roll back. */
    assert_int_equal(
        db_copy_in(E.db, "COPY txtest_copy (a, b) FROM STDIN", "x\ty\n", 4, &rows, &err), TX_EIO);
    assert_string_equal(db_conn_last_sqlstate(E.db), "22P02");
    assert_int_equal(rows, 0);
    assert_int_equal(db_exec(E.db, "ROLLBACK", NULL, 0, &err), 0);
    assert_string_equal(db_conn_last_sqlstate(E.db), "");

    /* Not a COPY: refused after running it; the connection stays usable. */
    assert_int_equal(db_copy_in(E.db, "SELECT 1", "", 0, NULL, &err), TX_EINVAL);
    assert_int_equal(db_ping(E.db, &err), 0);

    /* A constraint violation inside COPY is TX_EREJECT with its SQLSTATE. */
    assert_int_equal(
        db_exec(E.db, "CREATE TEMP TABLE txtest_copy2 (a int CHECK (a > 0))", NULL, 0, &err), 0);
    assert_int_equal(db_copy_in(E.db, "COPY txtest_copy2 FROM STDIN", "1\n-1\n", 5, NULL, &err),
                     TX_EREJECT);
    assert_string_equal(db_conn_last_sqlstate(E.db), "23514");

    /* Many megabytes: exercises the non-blocking send path (libpq's buffer fills). */
    tx_buf_init(&data, 64u << 20);
    for (int i = 1; i <= 200000; i++)
        assert_int_equal(tx_buf_printf(&data, "%d\n", i), 0);
    for (int rep = 0; rep < 8; rep++) {
        assert_int_equal(
            db_copy_in(E.db, "COPY txtest_copy2 FROM STDIN", data.data, data.len, &rows, &err), 0);
        assert_int_equal(rows, 200000);
    }
    assert_int_equal(
        db_query_text(E.db, "SELECT count(*) FROM txtest_copy2", NULL, 0, &s, NULL, &err), 0);
    assert_string_equal(s, "1600000");
    free(s);
    tx_buf_cleanup(&data);
    assert_int_equal(db_exec(E.db, "DROP TABLE txtest_copy2", NULL, 0, &err), 0);
}

/* ---- the writer, called directly ---- */

static void t_received_rows_exact(void **state)
{
    char up[TX_UUID_STR_LEN + 1];
    struct tx_metrics *m = tx_metrics_create(TX_METRICS_NO_PROCESS);
    struct persist_writer *w;
    struct batch b = { 0 };
    enum queue_disposition out[8];
    struct tx_buf rec;
    char eid[64];
    char *want;

    (void) state;
    new_upload(up);
    w = writer_for(E.dsn, m, 5000);
    add(&b, tx_event(up, 0, "100.10", NULL));
    add(&b, tx_event(up, 1, "12345678901234567.89", NULL)); /* not representable as a double */
    add(&b, tx_event(up, 2, NULL, NULL));
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);

    tx_buf_init(&rec, 1u << 16);
    assert_int_equal(
        tx_buf_printf(&rec,
                      "%s:0|0|client-0|Cliente\t0|c0@example.com|Rua 0\\n|"
                      "2024-03-11T12:00:00 +02:00|2024-03-11T10:00:00|t|100.10|"
                      "2024-03-11T12:00:00.123|f|-|-\n"
                      "%s:1|1|client-1|Cliente\t1|c1@example.com|Rua 1\\n|"
                      "2024-03-11T12:00:01 +02:00|2024-03-11T10:00:01|f|12345678901234567.89|"
                      "2024-03-11T12:00:00.123|f|-|-\n"
                      "%s:2|2|client-2|Cliente\t2|c2@example.com|Rua 2\\n|"
                      "2024-03-11T12:00:02 +02:00|2024-03-11T10:00:02|t|-|"
                      "2024-03-11T12:00:00.123|f|-|-",
                      up, up, up),
        0);
    want = tx_buf_steal(&rec, NULL);
    assert_q(want, ROWS_SQL, up, NULL);
    free(want);
    /* raw is the record as uploaded, unknown members included. */
    tx_buf_init(&rec, 1u << 16);
    record_json(&rec, up, 1, "12345678901234567.89");
    snprintf(eid, sizeof(eid), "%s:1", up);
    assert_q("true", "SELECT (raw::jsonb = $2::jsonb)::text FROM transactions WHERE event_id = $1",
             eid, rec.data);
    tx_buf_cleanup(&rec);
    assert_q(
        "raw/2024/03/11/|2024-03-11T12:00:00.123|-|-|-",
        "SELECT concat_ws('|', left(object_key, 15), to_char(received_at AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'), coalesce(sha256, '-'), coalesce(records::text, '-'),"
        " coalesce(idempotency_key, '-')) FROM uploads WHERE upload_id = $1",
        up, NULL);
    assert_int_equal(metric(m, "txpersist_rows_written_total{table=\"transactions\"}"), 3);
    assert_int_equal(metric(m, "txpersist_rows_written_total{table=\"uploads\"}"), 1);
    assert_int_equal(metric(m, "txpersist_batch_size_count"), 1);
    assert_int_equal(metric(m, "txpersist_commit_seconds_count"), 1);
    batch_free(&b);
    persist_writer_destroy(w);
    tx_metrics_destroy(m);
}

#define VERDICT_FLAGGED                                                                       \
    "{\"flagged\":true,\"score\":0.75,\"reasons\":[{\"code\":\"VELOCITY\",\"detail\":\"6 in " \
    "60 s\"},{\"code\":\"AMOUNT\",\"detail\":\"valor > 10000\"}]}"
#define VERDICT_CLEAN "{\"flagged\":false,\"score\":0,\"reasons\":[]}"

static void t_scored_before_received(void **state)
{
    char up[TX_UUID_STR_LEN + 1];
    struct persist_writer *w;
    struct batch b = { 0 };
    enum queue_disposition out[8];

    (void) state;
    new_upload(up);
    w = writer_for(E.dsn, NULL, 5000);
    /* Batch 1: the verdicts of 0 and 1 arrive first, with the full record. */
    add(&b, tx_event(up, 0, "20000", VERDICT_FLAGGED));
    add(&b, tx_event(up, 1, "5", VERDICT_CLEAN));
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);
    batch_free(&b);
    assert_q("0|t|0.75|t\n1|f|0|t",
             "SELECT string_agg(concat_ws('|', idx, flagged, score, scored_at IS NOT NULL), E'\\n'"
             " ORDER BY idx) FROM transactions WHERE upload_id = $1",
             up, NULL);
    /* Batch 2: the received events; in the same batch, 2's scored precedes its received. */
    add(&b, tx_event(up, 0, "20000", NULL));
    add(&b, tx_event(up, 1, "5", NULL));
    add(&b, tx_event(up, 2, "7", VERDICT_FLAGGED));
    add(&b, tx_event(up, 2, "7", NULL));
    add(&b, tx_event(up, 3, "8", NULL)); /* and the usual order for 3 */
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);
    batch_free(&b);
    add(&b, tx_event(up, 3, "8", VERDICT_FLAGGED));
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);
    batch_free(&b);
    assert_q("0|t|0.75|t|20000\n1|f|0|t|5\n2|t|0.75|t|7\n3|t|0.75|t|8",
             "SELECT string_agg(concat_ws('|', idx, flagged, score, scored_at IS NOT NULL, valor),"
             " E'\\n' ORDER BY idx) FROM transactions WHERE upload_id = $1",
             up, NULL);
    assert_q("0:AMOUNT:valor > 10000|0:VELOCITY:6 in 60 s|2:AMOUNT:valor > 10000|"
             "2:VELOCITY:6 in 60 s|3:AMOUNT:valor > 10000|3:VELOCITY:6 in 60 s",
             "SELECT string_agg(split_part(event_id, ':', 2) || ':' || code || ':' || detail, '|'"
             " ORDER BY event_id, code) FROM fraud_reasons WHERE event_id LIKE $1 || ':%'",
             up, NULL);
    assert_int_equal(q_long("SELECT count(*) FROM uploads WHERE upload_id = $1", up, NULL), 1);
    persist_writer_destroy(w);
}

static void t_notifications(void **state)
{
    char up[TX_UUID_STR_LEN + 1];
    char e0[64];
    char e1[64];
    struct persist_writer *w;
    struct batch b = { 0 };
    enum queue_disposition out[8];

    (void) state;
    new_upload(up);
    snprintf(e0, sizeof(e0), "%s:0", up);
    snprintf(e1, sizeof(e1), "%s:1", up);
    w = writer_for(E.dsn, NULL, 5000);
    add(&b, notify_event(true, e0, "receipt", "<r0@txpipe>", "2024-03-11T12:00:05+02:00", NULL));
    add(&b, notify_event(false, e1, "alert", "", "2024-03-11T10:00:06Z", "550 no such user"));
    add(&b, notify_event(false, e1, "receipt", "", "2024-03-11T10:00:07Z", "timeout"));
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);
    batch_free(&b);
    /* A later "sent" replaces "failed"; a later "failed" never replaces "sent". */
    add(&b, notify_event(true, e1, "receipt", "<r1@txpipe>", "2024-03-11T10:01:00Z", NULL));
    add(&b, notify_event(false, e0, "receipt", "", "2024-03-11T10:02:00Z", "late failure"));
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);
    batch_free(&b);
    assert_q("0|receipt|ana@example.com|sent|<r0@txpipe>|-|2024-03-11T10:00:05\n"
             "1|alert|ana@example.com|failed|-|550 no such user|2024-03-11T10:00:06\n"
             "1|receipt|ana@example.com|sent|<r1@txpipe>|-|2024-03-11T10:01:00",
             "SELECT string_agg(concat_ws('|', split_part(event_id, ':', 2), template, to_addr,"
             " status, coalesce(message_id, '-'), coalesce(error, '-'),"
             " to_char(data AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')), E'\\n'"
             " ORDER BY event_id, template) FROM emails WHERE event_id LIKE $1 || ':%'",
             up, NULL);
    persist_writer_destroy(w);
}

/* The same events again (and twice in one batch): the same rows, nothing written. */
static void t_redelivery_is_idempotent(void **state)
{
    char up[TX_UUID_STR_LEN + 1];
    char e0[64];
    struct tx_metrics *m = tx_metrics_create(TX_METRICS_NO_PROCESS);
    struct persist_writer *w;
    struct batch b = { 0 };
    enum queue_disposition out[32];
    char *before;
    char *after;

    (void) state;
    new_upload(up);
    snprintf(e0, sizeof(e0), "%s:0", up);
    w = writer_for(E.dsn, m, 5000);
    for (int i = 0; i < 5; i++)
        add(&b, tx_event(up, i, "1.5", NULL));
    for (int i = 0; i < 5; i++)
        add(&b, tx_event(up, i, "1.5", i % 2 == 0 ? VERDICT_FLAGGED : VERDICT_CLEAN));
    add(&b, notify_event(true, e0, "alert", "<a0@txpipe>", "2024-03-11T10:00:05Z", NULL));
    add(&b, notify_event(true, e0, "receipt", "<r0@txpipe>", "2024-03-11T10:00:05Z", NULL));
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);
    assert_int_equal(metric(m, "txpersist_rows_written_total{table=\"transactions\"}"), 5);
    assert_int_equal(metric(m, "txpersist_rows_written_total{table=\"fraud_reasons\"}"), 6);
    assert_int_equal(metric(m, "txpersist_rows_written_total{table=\"emails\"}"), 2);
    before = q(SNAPSHOT_SQL, up, NULL);
    sleep_ms(20); /* now() moves on: a rewritten row would show */

    run_batch(w, &b, out, NULL); /* redelivered as is */
    expect_all(out, b.n, QUEUE_ACK);
    for (size_t i = 0, n = b.n; i < n; i++) /* every event twice in one batch */
        add(&b, strdup(b.body[i]));
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);
    after = q(SNAPSHOT_SQL, up, NULL);
    assert_string_equal(before, after);
    assert_int_equal(metric(m, "txpersist_rows_written_total{table=\"transactions\"}"), 5);
    assert_int_equal(metric(m, "txpersist_rows_written_total{table=\"fraud_reasons\"}"), 6);
    assert_int_equal(metric(m, "txpersist_rows_written_total{table=\"emails\"}"), 2);
    assert_int_equal(metric(m, "txpersist_rows_written_total{table=\"uploads\"}"), 1);
    assert_int_equal(q_long("SELECT count(*) FROM transactions WHERE upload_id = $1", up, NULL), 5);
    assert_int_equal(q_long("SELECT count(*) FROM emails WHERE event_id = $1", e0, NULL), 2);
    free(before);
    free(after);
    batch_free(&b);
    persist_writer_destroy(w);
    tx_metrics_destroy(m);
}

/* Rows the database refuses go to the DLQ alone; poison bodies never reach the database. */
static void t_refused_rows_alone(void **state)
{
    char up[TX_UUID_STR_LEN + 1];
    struct persist_writer *w;
    struct batch b = { 0 };
    enum queue_disposition out[64];
    const char *bad_code = "{\"flagged\":true,\"score\":1,\"reasons\":[{\"code\":\"bad-code\","
                           "\"detail\":\"breaks the CHECK\"}]}";

    (void) state;
    new_upload(up);
    w = writer_for(E.dsn, NULL, 10000);
    for (int i = 0; i < 40; i++)
        add(&b, tx_event(up, i, "3", NULL));
    add(&b, tx_event(up, 40, "3", bad_code));              /* 40: refused, alone */
    add(&b, tx_event(up, 5, "3", VERDICT_FLAGGED));        /* 41: fine */
    add(&b, strdup("{not json"));                          /* 42: poison */
    add(&b, strdup("{\"type\":\"transaction.deleted\"}")); /* 43: poison */
    add(&b, tx_event(up, 13, "3", bad_code));              /* 44: refused, alone */
    add(&b, tx_event(up, 41, "3", NULL));                  /* 45: fine */
    run_batch(w, &b, out, NULL);
    for (size_t i = 0; i < b.n; i++) {
        enum queue_disposition want = QUEUE_ACK;

        if (i == 40 || i == 42 || i == 43 || i == 44)
            want = QUEUE_REJECT;
        if (out[i] != want)
            fail_msg("delivery %zu: disposition %d, expected %d", i, (int) out[i], (int) want);
    }
    /* Everything else committed: 0..39 and 41 received; 5 scored; 13 and 40 without verdict. */
    assert_int_equal(q_long("SELECT count(*) FROM transactions WHERE upload_id = $1", up, NULL),
                     41);
    assert_q("5",
             "SELECT string_agg(idx::text, ',') FROM transactions WHERE upload_id = $1 AND"
             " scored_at IS NOT NULL",
             up, NULL);
    assert_int_equal(
        q_long("SELECT count(*) FROM fraud_reasons WHERE event_id LIKE $1 || ':%'", up, NULL), 2);
    batch_free(&b);

    /* A batch of only the refused row: rejected, nothing else to commit. */
    add(&b, tx_event(up, 40, "3", bad_code));
    run_batch(w, &b, out, NULL);
    expect_all(out, 1, QUEUE_REJECT);
    batch_free(&b);
    persist_writer_destroy(w);
}

/* PostgreSQL unreachable: nothing is acked, the batch is requeued after the budget, and the
 * writer carries on by itself when the server is back. */
static void t_outage_retry_then_recover(void **state)
{
    char up[TX_UUID_STR_LEN + 1];
    char dsn[1024];
    struct persist_writer *w;
    struct batch b = { 0 };
    enum queue_disposition out[16];
    volatile sig_atomic_t stop = 0;
    int64_t t0;
    int64_t took;

    (void) state;
    new_upload(up);
    relay_start(&R);
    dsn_via(R.port, "txtest-persist-writer", dsn, sizeof(dsn));
    w = writer_for(dsn, NULL, 1500);
    for (int i = 0; i < 3; i++)
        add(&b, tx_event(up, i, "2", NULL));
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);
    batch_free(&b);

    /* Down: the open session is cut, new connections are refused. */
    atomic_store(&R.down, 1);
    sleep_ms(100);
    for (int i = 3; i < 6; i++)
        add(&b, tx_event(up, i, "2", NULL));
    t0 = tx_time_mono_ms();
    run_batch(w, &b, out, NULL);
    took = tx_time_mono_ms() - t0;
    expect_all(out, b.n, QUEUE_RETRY);
    if (took < 1000 || took > 1500 + 5000 + 2000)
        fail_msg("the batch was requeued after %lld ms (budget 1500 ms)", (long long) took);
    assert_int_equal(q_long("SELECT count(*) FROM transactions WHERE upload_id = $1", up, NULL), 3);

    /* The stop flag cuts the wait short (graceful drain). */
    stop = 1;
    t0 = tx_time_mono_ms();
    run_batch(w, &b, out, &stop);
    took = tx_time_mono_ms() - t0;
    expect_all(out, b.n, QUEUE_RETRY);
    if (took > 1000)
        fail_msg("with the stop flag set the batch took %lld ms", (long long) took);

    /* Back: the same batch is written without any help. */
    atomic_store(&R.down, 0);
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);
    assert_int_equal(q_long("SELECT count(*) FROM transactions WHERE upload_id = $1", up, NULL), 6);
    batch_free(&b);

    /* The server ends the idle session (pg_terminate_backend): replaced before the next batch. */
    assert_true(q_long("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE"
                       " application_name = $1",
                       "txtest-persist-writer", NULL) >= 1);
    sleep_ms(100);
    add(&b, tx_event(up, 6, "2", NULL));
    run_batch(w, &b, out, NULL);
    expect_all(out, b.n, QUEUE_ACK);
    batch_free(&b);

    /* An outage that ends within the budget costs no requeue at all. */
    atomic_store(&R.down, 1);
    sleep_ms(50);
    add(&b, tx_event(up, 7, "2", NULL));
    {
        pthread_t th;

        assert_int_equal(pthread_create(&th, NULL, relay_up_later, &R), 0);
        t0 = tx_time_mono_ms();
        run_batch(w, &b, out, NULL);
        took = tx_time_mono_ms() - t0;
        pthread_join(th, NULL);
    }
    expect_all(out, b.n, QUEUE_ACK);
    if (took < 500)
        fail_msg("written after %lld ms although the relay was down for 600 ms", (long long) took);
    assert_int_equal(q_long("SELECT count(*) FROM transactions WHERE upload_id = $1", up, NULL), 8);
    batch_free(&b);
    persist_writer_destroy(w);
    relay_stop(&R);
}

/* ---- the daemon on a temporary queue ---- */

struct daemon_env {
    char queue[96];
    char dlq[96];
    char log[128];
    char dsn[1024];
    int health_port;
    pid_t pid;
    struct queue_publisher *pub;
    struct tx_buf hb; /* health server answers */
};

static struct queue_config amqp_cfg(void)
{
    struct queue_config cfg = {
        .url = E.amqp_url,
        .name = "txtest-persist",
        .connect_timeout_ms = 5000,
        .confirm_timeout_ms = 15000,
        .window = 256,
    };

    return cfg;
}

static uint32_t depth(const char *queue)
{
    struct queue_config cfg = amqp_cfg();
    struct tx_err err = { 0 };
    uint32_t n = UINT32_MAX;

    if (queue_declare_passive_count(&cfg, queue, &n, &err) != 0)
        fail_msg("passive declare of %s: %s", queue, err.msg);
    return n;
}

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &alen), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void daemon_start(struct daemon_env *d)
{
    char e[10][1100];
    char *envp[11];
    char *argv[] = { (char *) TXPERSIST_BIN, NULL };
    pid_t pid;

    snprintf(e[0], sizeof(e[0]), "TX_AMQP_URL=%s", E.amqp_url);
    snprintf(e[1], sizeof(e[1]), "TX_QUEUE=%s", d->queue);
    snprintf(e[2], sizeof(e[2]), "TX_PG_DSN=%s", d->dsn);
    snprintf(e[3], sizeof(e[3]), "TX_HEALTH_LISTEN=127.0.0.1:%d", d->health_port);
    snprintf(e[4], sizeof(e[4]), "TX_PERSIST_RETRY_BUDGET_MS=1500");
    snprintf(e[5], sizeof(e[5]), "TX_BATCH_WAIT_MS=20");
    snprintf(e[6], sizeof(e[6]), "TX_PG_CONNECT_TIMEOUT_MS=2000");
    snprintf(e[7], sizeof(e[7]), "TX_PG_STATEMENT_TIMEOUT_MS=5000");
    snprintf(e[8], sizeof(e[8]), "TX_LOG_LEVEL=info");
    snprintf(e[9], sizeof(e[9]), "PATH=/usr/bin:/bin");
    for (int i = 0; i < 10; i++)
        envp[i] = e[i];
    envp[10] = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        /* The relay's sockets must not live on in the daemon: closing them here is what cuts
         * and refuses connections. */
        for (int i = 3; i < 1024; i++)
            close(i);
        execve(TXPERSIST_BIN, argv, envp);
        _exit(127);
    }
    d->pid = pid;
}

/* GET http://127.0.0.1:<health>/<path>; status returned, body into out (reset first). */
static long health_get(const struct daemon_env *d, const char *path, struct tx_buf *out)
{
    char url[128];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", d->health_port, path);
    tx_buf_reset(out);
    return http("GET", url, NULL, out);
}

static void wait_ready(const struct daemon_env *d, long want_status, const char *want_body)
{
    struct tx_buf b;
    int64_t until = tx_time_mono_ms() + 15000;
    long st = 0;

    tx_buf_init(&b, 1u << 16);
    for (;;) {
        int status;

        if (waitpid(d->pid, &status, WNOHANG) == d->pid)
            fail_msg("txpersist exited (status %d); see %s", status, d->log);
        st = health_get(d, "/readyz", &b);
        if (st == want_status && b.data != NULL && strstr(b.data, want_body) != NULL)
            break;
        if (tx_time_mono_ms() > until)
            fail_msg("/readyz answered %ld \"%s\", expected %ld with %s", st,
                     b.data != NULL ? b.data : "", want_status, want_body);
        sleep_ms(100);
    }
    tx_buf_cleanup(&b);
}

/* SIGTERM and wait; returns the exit code (fails after 30 s). */
static int daemon_stop(struct daemon_env *d)
{
    int64_t until = tx_time_mono_ms() + 30000;
    int status = 0;

    kill(d->pid, SIGTERM);
    for (;;) {
        pid_t p = waitpid(d->pid, &status, WNOHANG);

        if (p == d->pid)
            break;
        if (tx_time_mono_ms() > until) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
            d->pid = 0;
            fail_msg("txpersist did not stop within 30 s after SIGTERM");
        }
        sleep_ms(50);
    }
    d->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void publish(struct daemon_env *d, char **bodies, size_t n)
{
    struct queue_msg msgs[512];
    struct tx_err err = { 0 };
    int rc;

    assert_true(n <= 512);
    memset(msgs, 0, sizeof(msgs));
    for (size_t i = 0; i < n; i++) {
        msgs[i].routing_key = d->queue; /* default exchange: straight into the queue */
        msgs[i].body = bodies[i];
        msgs[i].len = strlen(bodies[i]);
    }
    rc = queue_publish_confirmed(d->pub, "", msgs, n, &err);
    if (rc != 0)
        fail_msg("publish: %s", err.msg);
}

/* Publishes received events for indexes [from, to) of upload up. */
static void publish_received(struct daemon_env *d, const char *up, int from, int to)
{
    struct batch b = { 0 };

    for (int i = from; i < to; i++)
        add(&b, tx_event(up, i, "9.99", NULL));
    publish(d, b.body, b.n);
    batch_free(&b);
}

static void wait_rows(const char *up, long want, const struct daemon_env *d)
{
    int64_t until = tx_time_mono_ms() + 30000;
    long got;

    for (;;) {
        got = q_long("SELECT count(*) FROM transactions WHERE upload_id = $1", up, NULL);
        if (got == want)
            return;
        if (tx_time_mono_ms() > until)
            fail_msg("%ld rows for the upload, expected %ld; see %s", got, want, d->log);
        sleep_ms(100);
    }
}

static void wait_depth(const char *queue, uint32_t want)
{
    int64_t until = tx_time_mono_ms() + 15000;
    uint32_t got;

    for (;;) {
        got = depth(queue);
        if (got == want)
            return;
        if (tx_time_mono_ms() > until)
            fail_msg("queue %s holds %u messages, expected %u", queue, got, want);
        sleep_ms(100);
    }
}

static bool log_has(const struct daemon_env *d, const char *a, const char *b)
{
    FILE *f = fopen(d->log, "r");
    char line[8192];
    bool found = false;

    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL);
    fclose(f);
    return found;
}

/* The daemon test's state: the group teardown cleans up after a failed run too. */
static struct daemon_env D;

static void daemon_cleanup(void)
{
    char path[256];
    int status;

    if (D.pid > 0) {
        kill(D.pid, SIGKILL);
        waitpid(D.pid, &status, 0);
        D.pid = 0;
    }
    if (D.queue[0] != '\0') {
        snprintf(path, sizeof(path), "/api/queues/%%2F/%s", D.queue);
        mgmt("DELETE", path, NULL);
        snprintf(path, sizeof(path), "/api/queues/%%2F/%s", D.dlq);
        mgmt("DELETE", path, NULL);
        D.queue[0] = '\0';
    }
    queue_publisher_destroy(D.pub);
    D.pub = NULL;
    tx_buf_cleanup(&D.hb);
}

static void t_daemon(void **state)
{
    char up[TX_UUID_STR_LEN + 1];
    char path[256];
    char body[512];
    char eid[64];
    struct queue_config qc = amqp_cfg();
    struct tx_err err = { 0 };
    char *poison[2];

    (void) state;
    if (TXPERSIST_BIN[0] == '\0' || access(TXPERSIST_BIN, X_OK) != 0)
        fail_msg("the txpersist binary (%s) is not built", TXPERSIST_BIN);
    memset(&D, 0, sizeof(D));
    tx_buf_init(&D.hb, 1u << 20);
    new_upload(up);
    snprintf(D.queue, sizeof(D.queue), "txtest.persist.%d", (int) getpid());
    snprintf(D.dlq, sizeof(D.dlq), "txtest.persist.%d.dlq", (int) getpid());
    snprintf(D.log, sizeof(D.log), "/tmp/txtest-persist-%d.log", (int) getpid());
    unlink(D.log);
    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", D.dlq);
    assert_true(
        mgmt("PUT", path, "{\"durable\":true,\"arguments\":{\"x-queue-type\":\"quorum\"}}") / 100 ==
        2);
    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", D.queue);
    snprintf(body, sizeof(body),
             "{\"durable\":true,\"arguments\":{\"x-queue-type\":\"quorum\","
             "\"x-delivery-limit\":5,\"x-dead-letter-exchange\":\"\","
             "\"x-dead-letter-routing-key\":\"%s\"}}",
             D.dlq);
    assert_true(mgmt("PUT", path, body) / 100 == 2);
    D.pub = queue_publisher_create(&qc, &err);
    assert_non_null(D.pub);
    relay_start(&R);
    dsn_via(R.port, "txtest-persist-daemon", D.dsn, sizeof(D.dsn));
    D.health_port = free_port();

    /* 1. Rows, the DLQ for a refused row and a poison message, readiness, metrics. */
    daemon_start(&D);
    wait_ready(&D, 200, "\"postgres\":\"up\"");
    publish_received(&D, up, 0, 300);
    poison[0] = strdup("this is not an event");
    poison[1] = tx_event(up, 300, "1",
                         "{\"flagged\":true,\"score\":1,\"reasons\":[{\"code\":\"lower\","
                         "\"detail\":\"x\"}]}");
    publish(&D, poison, 2);
    wait_rows(up, 300, &D);
    wait_depth(D.dlq, 2);
    wait_depth(D.queue, 0);
    assert_int_equal(health_get(&D, "/metrics", &D.hb), 200);
    assert_non_null(
        strstr(D.hb.data, "txpersist_rows_written_total{table=\"transactions\"} 300\n"));
    assert_non_null(strstr(D.hb.data, "txpersist_rows_written_total{table=\"uploads\"} 1\n"));
    assert_non_null(strstr(D.hb.data, "txpersist_rejected_total 2\n"));
    assert_non_null(strstr(D.hb.data, "txpersist_batch_size_bucket"));
    assert_non_null(strstr(D.hb.data, "txpersist_commit_seconds_bucket"));
    snprintf(eid, sizeof(eid), "\"event_id\":\"%s:300\"", up);
    assert_true(log_has(&D, "row refused by PostgreSQL", eid));
    assert_true(log_has(&D, "fraud_reasons_code_check", NULL));
    assert_true(log_has(&D, "poison message dead-lettered", NULL));
    free(poison[0]);
    free(poison[1]);

    /* 2. PostgreSQL away: not ready, nothing acked; back: everything written, no restart. */
    atomic_store(&R.down, 1);
    wait_ready(&D, 503, "\"postgres\":\"down");
    publish_received(&D, up, 301, 401);
    sleep_ms(2000);
    assert_int_equal(q_long("SELECT count(*) FROM transactions WHERE upload_id = $1", up, NULL),
                     300);
    atomic_store(&R.down, 0);
    wait_rows(up, 400, &D);
    wait_depth(D.queue, 0);
    wait_ready(&D, 200, "\"postgres\":\"up\"");

    /* 3. SIGTERM while PostgreSQL is away: exits 0 promptly, every message still queued. */
    atomic_store(&R.down, 1);
    publish_received(&D, up, 401, 451);
    sleep_ms(1000);
    assert_int_equal(daemon_stop(&D), 0);
    if (depth(D.queue) != 50)
        fail_msg("after SIGTERM during the outage the queue holds %u messages, expected 50 "
                 "(DLQ: %u, 2 before)",
                 depth(D.queue), depth(D.dlq));
    assert_int_equal(q_long("SELECT count(*) FROM transactions WHERE upload_id = $1", up, NULL),
                     400);
    atomic_store(&R.down, 0);
    daemon_start(&D);
    wait_rows(up, 450, &D);
    wait_depth(D.queue, 0);
    assert_int_equal(daemon_stop(&D), 0);
    assert_int_equal(depth(D.dlq), 2); /* the outages dead-lettered nothing */

    relay_stop(&R);
    daemon_cleanup();
    unlink(D.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_db_copy_in),
        cmocka_unit_test(t_received_rows_exact),
        cmocka_unit_test(t_scored_before_received),
        cmocka_unit_test(t_notifications),
        cmocka_unit_test(t_redelivery_is_idempotent),
        cmocka_unit_test(t_refused_rows_alone),
        cmocka_unit_test(t_outage_retry_then_recover),
        cmocka_unit_test(t_daemon),
    };

    return cmocka_run_group_tests_name("txpersist", tests, setup, teardown);
}
