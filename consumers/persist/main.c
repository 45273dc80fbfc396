/* txpersist: consumes tx.persist and writes batches of events to PostgreSQL (see persist.h). */
#include "consumers/common/cons.h"
#include "consumers/persist/persist.h"

#include "common/tx_buf.h"
#include "storage/db.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define PROBE_TIMEOUT_MS 2000L

/* The daemon's own settings (TX_PG_*, TX_PERSIST_*). */
struct persist_config {
    char *pg_dsn;
    long long connect_timeout_ms;
    long long statement_timeout_ms;
    long long retry_budget_ms;
    long long max_batch_bytes;
};

#define E(key, type, def, min, max, field, flags, desc)                               \
    {                                                                                 \
        key, type, def, min, max, offsetof(struct persist_config, field), flags, desc \
    }

static const struct tx_config_entry persist_config_table[] = {
    E("TX_PG_DSN", TX_CONFIG_STRING, NULL, 1, 4096, pg_dsn, TX_CONFIG_SECRET,
      "PostgreSQL connection string of the writer role (postgresql://txpipe:...@host/txpipe)"),
    E("TX_PG_CONNECT_TIMEOUT_MS", TX_CONFIG_MS, "5s", 100, 60000, connect_timeout_ms, 0,
      "deadline of one connection attempt to PostgreSQL"),
    E("TX_PG_STATEMENT_TIMEOUT_MS", TX_CONFIG_MS, "10s", 100, 600000, statement_timeout_ms, 0,
      "statement_timeout of the writer's session (the client gives up 2 s later)"),
    E("TX_PERSIST_RETRY_BUDGET_MS", TX_CONFIG_MS, "3s", 0, 600000, retry_budget_ms, 0,
      "how long the writer retries a batch while PostgreSQL fails before it hands it back to "
      "the consumer loop, which holds it in the process and tries again with back-off "
      "(TX_RETRY_*; the broker connection is served meanwhile, nothing is requeued); with the "
      "statement timeout + 2 s and the connect timeout it must stay under 2 x TX_HEARTBEAT_S"),
    E("TX_PERSIST_MAX_BATCH_BYTES", TX_CONFIG_SIZE, "256MiB", 1LL << 20, 4LL << 30, max_batch_bytes,
      0, "staging text of one batch; deliveries beyond it wait for the next"),
};
#undef E

/* What the daemon holds between init and fini. */
struct persist_app {
    struct persist_config cfg;
    struct persist_writer *writer;
    const volatile sig_atomic_t *stop;
    pthread_mutex_t probe_mu;
    struct db_conn *probe; /* readiness: a connection of its own, used by the health thread */
};

static struct persist_app app = { .probe_mu = PTHREAD_MUTEX_INITIALIZER };

static int persist_init(void *ctx, struct cons_ctx *cx, struct tx_err *err)
{
    struct persist_app *a = ctx;
    long long hb_ms = (cx->cfg->heartbeat_s > 0 ? cx->cfg->heartbeat_s : 30) * 1000;
    long long worst =
        a->cfg.retry_budget_ms + a->cfg.statement_timeout_ms + 2000 + a->cfg.connect_timeout_ms;
    struct persist_writer_config wc = {
        .dsn = a->cfg.pg_dsn,
        .connect_timeout_ms = (long) a->cfg.connect_timeout_ms,
        .statement_timeout_ms = (long) a->cfg.statement_timeout_ms,
        .retry_budget_ms = (long) a->cfg.retry_budget_ms,
        .max_batch_bytes = (size_t) a->cfg.max_batch_bytes,
        .metrics_prefix = cx->prog,
    };

    /* A batch handler must return before the broker declares the connection dead. */
    if (worst >= 2 * hb_ms)
        return tx_err_set(err, TX_EINVAL,
                          "TX_PERSIST_RETRY_BUDGET_MS + TX_PG_STATEMENT_TIMEOUT_MS + 2 s + "
                          "TX_PG_CONNECT_TIMEOUT_MS = %lld ms must stay under 2 x "
                          "TX_HEARTBEAT_S = %lld ms",
                          worst, 2 * hb_ms);
    a->stop = cx->stop;
    a->writer = persist_writer_create(&wc, cx->metrics, err);
    return a->writer != NULL ? 0 : (err != NULL ? err->code : TX_EINVAL);
}

static void persist_fini(void *ctx)
{
    struct persist_app *a = ctx;

    persist_writer_destroy(a->writer);
    a->writer = NULL;
    pthread_mutex_lock(&a->probe_mu);
    db_conn_destroy(a->probe);
    a->probe = NULL;
    pthread_mutex_unlock(&a->probe_mu);
}

/* Pipelined: a batch is decoded here while the writer's thread commits the one before it. */
static void persist_submit_batch(void *ctx, const struct queue_delivery *d, size_t n)
{
    struct persist_app *a = ctx;

    persist_writer_submit(a->writer, d, n, a->stop);
}

static void persist_collect_batch(void *ctx, enum queue_disposition *out)
{
    struct persist_app *a = ctx;

    persist_writer_collect(a->writer, out);
}

/* Appends ,"postgres":"up" or the reason it is down. */
static int persist_ready(void *ctx, struct tx_buf *detail)
{
    struct persist_app *a = ctx;
    struct tx_err err = { 0 };
    char why[300];
    int rc;

    pthread_mutex_lock(&a->probe_mu);
    if (a->probe == NULL) {
        a->probe = db_conn_create(a->cfg.pg_dsn, PROBE_TIMEOUT_MS, &err);
        if (a->probe != NULL &&
            db_conn_set_statement_timeout(a->probe, PROBE_TIMEOUT_MS, &err) != 0) {
            db_conn_destroy(a->probe);
            a->probe = NULL;
        }
    }
    rc = a->probe != NULL ? db_ping(a->probe, &err) : (err.code != 0 ? err.code : TX_EUNAVAIL);
    pthread_mutex_unlock(&a->probe_mu);
    tx_buf_puts(detail, ",\"postgres\":");
    if (rc == 0) {
        tx_buf_puts(detail, "\"up\"");
        return 0;
    }
    snprintf(why, sizeof(why), "down: %s", err.msg);
    tx_buf_json_str(detail, why, strlen(why));
    return TX_EUNAVAIL;
}

int main(int argc, char **argv)
{
    static const struct cons_spec spec = {
        .prog = "txpersist",
        .summary = "Writes transaction, verdict and notification events to PostgreSQL in "
                   "batches (one SQL transaction of idempotent upserts per batch, acked after "
                   "COMMIT).",
        .queue = "tx.persist",
        .health_listen = "127.0.0.1:9103",
        .default_prefetch = 1000,
        .config = persist_config_table,
        .nconfig = sizeof(persist_config_table) / sizeof(persist_config_table[0]),
        .app_config = &app.cfg,
        .init = persist_init,
        .fini = persist_fini,
        .submit_batch = persist_submit_batch,
        .collect_batch = persist_collect_batch,
        .ready = persist_ready,
        .app = &app,
    };

    return cons_main(argc, argv, &spec);
}
