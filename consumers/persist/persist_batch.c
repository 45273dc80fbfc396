/* The batch writer: staging rows -> COPY -> one upsert statement -> COMMIT, with bisection. */
#include "consumers/persist/persist.h"

#include "common/tx_log.h"
#include "common/tx_time.h"
#include "storage/db.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_FIRST_MS 100L
#define BACKOFF_MAX_MS   5000L
#define SLEEP_SLICE_MS   100L
#define STREAM_CHUNK     (64u * 1024u) /* staging bytes per COPY chunk of a first attempt */

/* Session-local staging table, created with each connection (ensure_conn); emptied by every
 * COMMIT. */
#define STAGE_DDL                                                                              \
    "CREATE TEMP TABLE IF NOT EXISTS persist_stage ("                                          \
    "seq integer NOT NULL, kind text NOT NULL, event_id text COLLATE \"C\" NOT NULL, "         \
    "upload_id text COLLATE \"C\", "                                                           \
    "idx integer, object_key text, received_at timestamptz, client_id text, cliente text, "    \
    "email text, endereco text, datatrasancao text, datatrasancao_at timestamptz, "            \
    "is_active boolean, raw json, flagged boolean, score numeric, reasons jsonb, "             \
    "template text COLLATE \"C\", to_addr text, status text, message_id text, error text, at " \
    "timestamptz, "                                                                            \
    "records integer, sha256 text, idempotency_key text, valor numeric"                        \
    ") ON COMMIT DELETE ROWS"

#define STAGE_COPY "COPY persist_stage (" PERSIST_STAGE_COLUMNS ") FROM STDIN"

/* The first attempt at a batch: one transaction, one COPY. */
#define SQL_BEGIN_COPY "BEGIN; " STAGE_COPY
/* Bisection: every part under a savepoint, staging emptied of the previous part's rows. */
#define SQL_BEGIN     "BEGIN"
#define SQL_PART_COPY "SAVEPOINT persist_part; DELETE FROM persist_stage; " STAGE_COPY
#define SQL_PART_OK   "RELEASE SAVEPOINT persist_part"
#define SQL_PART_UNDO "ROLLBACK TO SAVEPOINT persist_part; RELEASE SAVEPOINT persist_part"

/*
 * Upserts every table from the staging rows in one statement and returns the number of rows
 * inserted or changed per table as "uploads transactions fraud_reasons emails".
 *
 * - uploads: the first event of an upload creates the row; the upload's facts (records, sha256,
 *   Idempotency-Key) are filled from the first event that carries them; nothing else changes it.
 * - transactions: per event_id the scored row wins over the received one (it carries the same
 *   record plus the verdict). A received event never touches an existing row, so it cannot erase
 *   a verdict that arrived first; a scored event sets the verdict when there is none yet or when
 *   it differs. valor is the number's text in the raw JSON (persist_row_append), exact.
 * - fraud_reasons: upsert by (event_id, code).
 * - emails: upsert by (event_id, template); "sent" is final: a later "failed" never replaces it.
 * Updates that would change nothing are skipped (WHERE ... IS DISTINCT FROM), so a redelivered
 * batch writes no row. DISTINCT ON orders each insert by its key: concurrent writers take row
 * locks in the same order.
 */
/* The parts of the statement, by the kinds of staging rows they read (see upsert_build). */
static const char upsert_tx[] =
    "up AS ("
    " INSERT INTO uploads AS u (upload_id, object_key, received_at, records, sha256,"
    "  idempotency_key)"
    " SELECT DISTINCT ON (upload_id) upload_id, object_key, received_at, records, sha256,"
    "  idempotency_key"
    " FROM persist_stage WHERE kind IN ('r', 's') ORDER BY upload_id, records IS NULL, seq"
    " ON CONFLICT (upload_id) DO UPDATE SET records = EXCLUDED.records,"
    "  sha256 = EXCLUDED.sha256, idempotency_key = EXCLUDED.idempotency_key"
    " WHERE u.records IS NULL AND EXCLUDED.records IS NOT NULL RETURNING 1"
    "), tx AS ("
    " INSERT INTO transactions AS t (event_id, upload_id, idx, client_id, cliente, email,"
    "  endereco, datatrasancao, datatrasancao_at, is_active, valor, raw, received_at, scored_at,"
    "  flagged, score)"
    " SELECT DISTINCT ON (event_id) event_id, upload_id, idx, client_id, cliente, email,"
    "  endereco, datatrasancao, datatrasancao_at, is_active, valor, raw,"
    "  received_at, CASE WHEN kind = 's' THEN now() END, flagged, score"
    " FROM persist_stage WHERE kind IN ('r', 's') ORDER BY event_id, kind DESC, seq DESC"
    " ON CONFLICT (event_id) DO UPDATE"
    " SET scored_at = now(), flagged = EXCLUDED.flagged, score = EXCLUDED.score"
    " WHERE EXCLUDED.flagged IS NOT NULL AND (t.scored_at IS NULL"
    "  OR (t.flagged, t.score) IS DISTINCT FROM (EXCLUDED.flagged, EXCLUDED.score))"
    " RETURNING 1"
    ")";
static const char upsert_fr[] =
    "fr AS ("
    " INSERT INTO fraud_reasons AS f (event_id, code, detail)"
    " SELECT DISTINCT ON (s.event_id, r.code COLLATE \"C\") s.event_id, r.code, r.detail"
    " FROM persist_stage s"
    " CROSS JOIN LATERAL jsonb_to_recordset(s.reasons) AS r(code text, detail text)"
    " WHERE s.kind = 's' ORDER BY s.event_id, r.code COLLATE \"C\", s.seq DESC"
    " ON CONFLICT (event_id, code) DO UPDATE SET detail = EXCLUDED.detail"
    " WHERE f.detail IS DISTINCT FROM EXCLUDED.detail"
    " RETURNING 1"
    ")";
static const char upsert_em[] =
    "em AS ("
    " INSERT INTO emails AS e (event_id, template, to_addr, status, message_id, error, data)"
    " SELECT DISTINCT ON (event_id, template) event_id, template, to_addr, status, message_id,"
    "  error, at"
    " FROM persist_stage WHERE kind = 'n'"
    " ORDER BY event_id, template, status = 'sent' DESC, seq DESC"
    " ON CONFLICT (event_id, template) DO UPDATE"
    " SET to_addr = EXCLUDED.to_addr, status = EXCLUDED.status,"
    "  message_id = EXCLUDED.message_id, error = EXCLUDED.error, data = EXCLUDED.data"
    " WHERE (e.status = 'failed' OR EXCLUDED.status = 'sent')"
    "  AND (e.to_addr, e.status, e.message_id, e.error, e.data) IS DISTINCT FROM"
    "  (EXCLUDED.to_addr, EXCLUDED.status, EXCLUDED.message_id, EXCLUDED.error, EXCLUDED.data)"
    " RETURNING 1"
    ")";

/* Kinds of staging rows in a batch (struct slot.kinds): which parts the statement needs. */
#define KIND_TX     1u /* received or scored */
#define KIND_SCORED 2u
#define KIND_NOTIFY 4u
#define KIND_MASKS  8u

/*
 * The upsert for a batch holding the kinds in mask: only the parts that have rows to read (a
 * batch of received events alone skips the fraud_reasons and emails scans), and the counts of
 * the others as 0. Returns a string to free, or NULL (out of memory).
 */
static char *upsert_build(unsigned mask)
{
    struct tx_buf b;
    const char *sep = "WITH ";
    int rc = 0;

    tx_buf_init(&b, 1u << 16);
    if (mask & KIND_TX) {
        rc = tx_buf_printf(&b, "%s%s", sep, upsert_tx);
        sep = ", ";
    }
    if (rc == 0 && (mask & KIND_SCORED)) {
        rc = tx_buf_printf(&b, "%s%s", sep, upsert_fr);
        sep = ", ";
    }
    if (rc == 0 && (mask & KIND_NOTIFY))
        rc = tx_buf_printf(&b, "%s%s", sep, upsert_em);
    if (rc == 0)
        rc = tx_buf_printf(&b, " SELECT %s || ' ' || %s || ' ' || %s || ' ' || %s",
                           mask & KIND_TX ? "(SELECT count(*) FROM up)" : "0",
                           mask & KIND_TX ? "(SELECT count(*) FROM tx)" : "0",
                           mask & KIND_SCORED ? "(SELECT count(*) FROM fr)" : "0",
                           mask & KIND_NOTIFY ? "(SELECT count(*) FROM em)" : "0");
    if (rc != 0) {
        tx_buf_cleanup(&b);
        return NULL;
    }
    return tx_buf_steal(&b, NULL);
}

enum {
    T_UPLOADS,
    T_TRANSACTIONS,
    T_FRAUD_REASONS,
    T_EMAILS,
    NTABLES
};

static const char *const table_names[NTABLES] = { "uploads", "transactions", "fraud_reasons",
                                                  "emails" };

/* One decodable delivery of the batch in hand. */
struct row_ref {
    size_t delivery;   /* index into the batch */
    size_t start, end; /* its line in the staging text */
    enum queue_disposition disp;
    char event_id[TX_EVENT_ID_MAX + 1];
    char upload_id[40];
    char why[256]; /* the server's message when the row was refused */
};

/* One batch: its deliveries, staging text, rows and dispositions. */
struct slot {
    enum {
        SLOT_FREE = 0,
        SLOT_STAGED,
        SLOT_WRITING,
        SLOT_DONE
    } state;
    unsigned long long seq; /* submission order (pipelined mode) */
    struct tx_buf stage;
    struct row_ref *rows;
    size_t nrows;
    size_t cap;
    const struct queue_delivery *batch;
    size_t batch_n;
    enum queue_disposition *out;     /* batch_n dispositions (the caller's array in handle) */
    enum queue_disposition *own_out; /* cap entries: out in pipelined mode */
    unsigned kinds;                  /* KIND_* of the rows staged */
    size_t staged;                   /* deliveries staged so far */
    size_t sent;                     /* bytes of stage handed to the streaming COPY */
    bool full_logged;                /* the staging-full warning was logged for this batch */
    int64_t start_ms;                /* when the batch was handed over */
};

struct persist_writer {
    char *dsn;
    long connect_timeout_ms;
    long statement_timeout_ms;
    long retry_budget_ms;
    struct db_conn *db;           /* NULL until connected (and after a failed rollback) */
    char *upsert_sql[KIND_MASKS]; /* by mask of kinds; [0] unused */
    char *session_sql;            /* the staging table and PREPARE of every upsert */
    struct slot slots[2];
    struct slot *ws;            /* the batch being written (by the writing thread only) */
    long long pending[NTABLES]; /* rows written by the transaction in progress */
    int64_t deadline_ms;        /* no statement of the batch in hand starts after this */
    struct tx_counter *written[NTABLES];
    struct tx_histogram *batch_size;
    struct tx_histogram *commit_seconds;
    /* Pipelined mode: a worker thread writes the staged slots in submission order. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t worker;
    bool worker_started;
    bool quit;
    unsigned long long next_seq;  /* of the next submit */
    unsigned long long collected; /* submits collected so far */
    const volatile sig_atomic_t *stop;
};

/* ---- life cycle ---- */

static int register_metrics(struct persist_writer *w, struct tx_metrics *m, const char *prefix,
                            struct tx_err *err)
{
    static const double sizes[] = { 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000 };
    static const double lat[] = { TX_METRICS_LATENCY_BUCKETS };
    static const char *const labels[] = { "table" };
    struct tx_metric_desc desc = { 0 };
    struct tx_metric_family *f;
    char name[128];
    char help[160];

    snprintf(name, sizeof(name), "%s_rows_written_total", prefix);
    desc.type = TX_METRIC_COUNTER;
    desc.name = name;
    desc.help = "Rows inserted or changed in PostgreSQL, by table (no-op upserts not counted)";
    desc.labels = labels;
    desc.nlabels = 1;
    desc.max_series = NTABLES;
    f = tx_metrics_family(m, &desc, err);
    if (f == NULL)
        return err != NULL ? err->code : TX_EINVAL;
    for (int t = 0; t < NTABLES; t++) {
        w->written[t] = tx_metric_family_counter(f, &table_names[t], 1);
        if (w->written[t] == NULL)
            return tx_err_set(err, TX_ENOMEM, "out of memory");
    }
    snprintf(name, sizeof(name), "%s_batch_size", prefix);
    snprintf(help, sizeof(help), "Deliveries per batch handed to the writer");
    w->batch_size =
        tx_metrics_histogram(m, name, help, sizes, sizeof(sizes) / sizeof(sizes[0]), err);
    if (w->batch_size == NULL)
        return err != NULL ? err->code : TX_EINVAL;
    snprintf(name, sizeof(name), "%s_commit_seconds", prefix);
    snprintf(help, sizeof(help), "Time from BEGIN to COMMIT of a batch that committed");
    w->commit_seconds = tx_metrics_histogram(m, name, help, lat, TX_METRICS_LATENCY_BUCKETS_N, err);
    if (w->commit_seconds == NULL)
        return err != NULL ? err->code : TX_EINVAL;
    return 0;
}

/* Connects (when not connected) and sets the session's statement timeout. */
static int ensure_conn(struct persist_writer *w, struct tx_err *err)
{
    int rc;

    if (w->db != NULL)
        return 0;
    w->db = db_conn_create(w->dsn, w->connect_timeout_ms, err);
    if (w->db == NULL)
        return err != NULL && err->code != 0 ? err->code : TX_EUNAVAIL;
    rc = db_conn_set_statement_timeout(w->db, w->statement_timeout_ms, err);
    /* The staging table and the upserts, created with every session (also after db.c's own
     * reconnects), so that a batch's whole transaction can be one round trip (write_once). */
    if (rc == 0)
        rc = db_conn_set_session_sql(w->db, w->session_sql, err);
    if (rc != 0) {
        db_conn_destroy(w->db);
        w->db = NULL;
    }
    return rc;
}

struct persist_writer *persist_writer_create(const struct persist_writer_config *cfg,
                                             struct tx_metrics *m, struct tx_err *err)
{
    struct persist_writer *w = NULL;
    struct persist_writer *ret = NULL;
    struct tx_err cerr = { 0 };
    int rc;

    if (cfg == NULL || cfg->dsn == NULL || cfg->dsn[0] == '\0' || cfg->connect_timeout_ms < 1 ||
        cfg->statement_timeout_ms < 0 || cfg->retry_budget_ms < 0 || cfg->max_batch_bytes < 1024) {
        tx_err_set(err, TX_EINVAL, "persist writer: DSN, timeouts and batch bytes are required");
        goto out;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    w->connect_timeout_ms = cfg->connect_timeout_ms;
    w->statement_timeout_ms = cfg->statement_timeout_ms;
    w->retry_budget_ms = cfg->retry_budget_ms;
    for (int k = 0; k < 2; k++)
        tx_buf_init(&w->slots[k].stage, cfg->max_batch_bytes);
    {
        struct tx_buf ss;
        int brc;

        tx_buf_init(&ss, 1u << 20);
        brc = tx_buf_puts(&ss, STAGE_DDL);
        for (unsigned k = 1; brc == 0 && k < KIND_MASKS; k++) {
            w->upsert_sql[k] = upsert_build(k);
            brc = w->upsert_sql[k] == NULL ? TX_ENOMEM
                                           : tx_buf_printf(&ss, "; PREPARE persist_upsert_%u AS %s",
                                                           k, w->upsert_sql[k]);
        }
        w->session_sql = brc == 0 ? tx_buf_steal(&ss, NULL) : NULL;
        tx_buf_cleanup(&ss);
        if (w->session_sql == NULL) {
            tx_err_set(err, TX_ENOMEM, "out of memory");
            goto out;
        }
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->dsn = strdup(cfg->dsn);
    if (w->dsn == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    if (m != NULL &&
        register_metrics(w, m, cfg->metrics_prefix != NULL ? cfg->metrics_prefix : "txpersist",
                         err) != 0)
        goto out;
    /* Connect now to refuse a bad DSN early; an unreachable server is fine (retried later). */
    rc = ensure_conn(w, &cerr);
    if (rc == TX_EINVAL || rc == TX_ENOMEM) {
        tx_err_set(err, rc, "%s", cerr.msg);
        goto out;
    }
    ret = w;
    w = NULL;
out:
    persist_writer_destroy(w);
    return ret;
}

void persist_writer_destroy(struct persist_writer *w)
{
    if (w == NULL)
        return;
    if (w->worker_started) {
        pthread_mutex_lock(&w->mu);
        w->quit = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->worker, NULL);
    }
    db_conn_destroy(w->db);
    if (w->dsn != NULL) {
        memset(w->dsn, 0, strlen(w->dsn)); /* it may hold a password */
        free(w->dsn);
    }
    for (unsigned k = 0; k < KIND_MASKS; k++)
        free(w->upsert_sql[k]);
    free(w->session_sql);
    for (int k = 0; k < 2; k++) {
        tx_buf_cleanup(&w->slots[k].stage);
        free(w->slots[k].rows);
        free(w->slots[k].own_out);
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- staging ---- */

/* Decodes delivery sl->staged of batch sl into a staging row; a poison one is rejected
 * here, one that does not fit the staging text is left for a later batch. */
static void stage_one(struct slot *sl)
{
    size_t i = sl->staged++;
    const struct queue_delivery *d = &sl->batch[i];
    struct tx_event *ev = NULL;
    struct tx_err err = { 0 };
    struct row_ref *r;
    size_t start = sl->stage.len;
    int rc;

    sl->out[i] = QUEUE_RETRY;
    rc = tx_event_decode(d->body, d->len, &ev, &err);
    if (rc == 0)
        rc = persist_row_append(&sl->stage, (unsigned) i, ev, &err);
    if (rc == TX_ETOOBIG || rc == TX_ENOMEM) {
        /* Held for another attempt (QUEUE_RETRY): the staging text reached its limit. */
        if (!sl->full_logged)
            tx_log_warn(TX_KV("event_id", d->message_id),
                        "batch staging full (%zu bytes); the rest of the batch waits for the next",
                        sl->stage.len);
        sl->full_logged = true;
        tx_event_destroy(ev);
        return;
    }
    if (rc != 0) {
        sl->out[i] = QUEUE_REJECT;
        tx_log_warn(TX_KV("event_id", ev != NULL ? ev->event_id : d->message_id, "upload_id",
                          d->correlation_id),
                    "poison message dead-lettered: %s: %s", tx_status_name(rc), err.msg);
        tx_event_destroy(ev);
        return;
    }
    sl->kinds |= ev->type == TX_EVENT_RECEIVED ? KIND_TX
                 : ev->type == TX_EVENT_SCORED ? KIND_TX | KIND_SCORED
                                               : KIND_NOTIFY;
    r = &sl->rows[sl->nrows++];
    r->delivery = i;
    r->start = start;
    r->end = sl->stage.len;
    r->disp = QUEUE_RETRY;
    r->why[0] = '\0';
    snprintf(r->event_id, sizeof(r->event_id), "%s", ev->event_id);
    snprintf(r->upload_id, sizeof(r->upload_id), "%s", ev->upload_id);
    tx_event_destroy(ev);
}

static void stage_rest(struct slot *sl)
{
    while (sl->staged < sl->batch_n)
        stage_one(sl);
}

/* db_copy_source_fn of the first attempt: stages deliveries until STREAM_CHUNK new bytes (or the
 * end of the batch) and hands them to the COPY, so PostgreSQL parses them while the next ones are
 * decoded. */
static int stage_stream_next(void *ctx, const char **data, size_t *len)
{
    struct slot *sl = ctx;

    while (sl->staged < sl->batch_n && sl->stage.len - sl->sent < STREAM_CHUNK)
        stage_one(sl);
    *data = sl->stage.data + sl->sent;
    *len = sl->stage.len - sl->sent;
    sl->sent = sl->stage.len;
    return 0;
}

/* ---- one transaction ---- */

static int out_of_time(const struct persist_writer *w, struct tx_err *err)
{
    if (tx_time_mono_ms() < w->deadline_ms)
        return 0;
    return tx_err_set(err, TX_ETIMEDOUT, "the batch's retry budget (%ld ms) is spent",
                      w->retry_budget_ms);
}

/* Ends a failed transaction: ROLLBACK, or drop the session when that is quicker or fails. */
static void abort_tx(struct persist_writer *w, int rc)
{
    const char *state = db_conn_last_sqlstate(w->db);

    memset(w->pending, 0, sizeof(w->pending));
    if (w->db == NULL)
        return;
    /* A lost link or a missed deadline already dropped the session (and its transaction). */
    if ((rc == TX_EUNAVAIL || rc == TX_ETIMEDOUT) && state[0] == '\0' && out_of_time(w, NULL) == 0)
        return;
    if (out_of_time(w, NULL) != 0 || db_exec(w->db, "ROLLBACK", NULL, 0, NULL) != 0) {
        db_conn_destroy(w->db);
        w->db = NULL;
    }
}

/* Adds the upsert's "uploads transactions fraud_reasons emails" row counts (and frees them). */
static int add_counts(struct persist_writer *w, char *counts, struct tx_err *err)
{
    long long n[NTABLES] = { 0 };
    int rc = 0;

    if (counts == NULL ||
        sscanf(counts, "%lld %lld %lld %lld", &n[0], &n[1], &n[2], &n[3]) != NTABLES)
        rc = tx_err_set(err, TX_EIO, "upsert returned \"%.40s\"", counts != NULL ? counts : "");
    free(counts);
    if (rc != 0)
        return rc;
    for (int t = 0; t < NTABLES; t++)
        w->pending[t] += n[t];
    return 0;
}

/* COPYs rows [lo, hi) after prefix statements, then runs the upsert; adds to w->pending. */
static int load_and_upsert(struct persist_writer *w, const char *copy_sql, size_t lo, size_t hi,
                           struct tx_err *err)
{
    const char *data = w->ws->stage.data + w->ws->rows[lo].start;
    size_t len = w->ws->rows[hi - 1].end - w->ws->rows[lo].start;
    char *counts = NULL;
    char sql[40];
    int rc;

    rc = out_of_time(w, err);
    if (rc == 0)
        rc = db_copy_in(w->db, copy_sql, data, len, NULL, err);
    if (rc == 0)
        rc = out_of_time(w, err);
    if (rc != 0)
        return rc;
    /* Prepared with the session (ensure_conn). */
    snprintf(sql, sizeof(sql), "EXECUTE persist_upsert_%u", w->ws->kinds);
    rc = db_query_text(w->db, sql, NULL, 0, &counts, NULL, err);
    return rc != 0 ? rc : add_counts(w, counts, err);
}

/* The first attempt at a staged batch in one round trip: BEGIN, COPY, the upsert, COMMIT. */
static int write_once(struct persist_writer *w, struct tx_err *err)
{
    struct slot *sl = w->ws;
    char sql[sizeof(SQL_BEGIN_COPY) + 96];
    char *counts = NULL;
    int rc;

    /* Streamed (decoded while copied): the kinds are not known yet, every part runs. */
    snprintf(sql, sizeof(sql), "%s; EXECUTE persist_upsert_%u; COMMIT", SQL_BEGIN_COPY,
             sl->staged < sl->batch_n ? KIND_MASKS - 1 : sl->kinds);
    rc = out_of_time(w, err);
    sl->sent = 0; /* a retry sends again what an earlier attempt sent */
    if (rc == 0)
        rc = db_copy_in_stream(w->db, sql, stage_stream_next, sl, NULL, &counts, err);
    return rc != 0 ? rc : add_counts(w, counts, err);
}

static void decide(struct persist_writer *w, size_t lo, size_t hi, enum queue_disposition d)
{
    for (size_t i = lo; i < hi; i++)
        w->ws->rows[i].disp = d;
}

static int bisect(struct persist_writer *w, size_t lo, size_t hi, struct tx_err *err);

/* Rows [lo, hi) failed together with a row error (perr): a single row is refused, a larger range
 * is split in two and each half tried on its own. */
static int split(struct persist_writer *w, size_t lo, size_t hi, const struct tx_err *perr,
                 struct tx_err *err)
{
    size_t mid;
    int rc;

    if (hi - lo == 1) {
        /* The server's message up to its SQLSTATE: the detail line that follows may quote the
         * row (names, e-mail addresses), which stays out of the logs. */
        const char *end = strstr(perr->msg, "(SQLSTATE ");
        int len = end != NULL ? (int) (end - perr->msg) + 16 : (int) strlen(perr->msg);

        w->ws->rows[lo].disp = QUEUE_REJECT;
        snprintf(w->ws->rows[lo].why, sizeof(w->ws->rows[lo].why), "%.*s", len, perr->msg);
        return 0;
    }
    mid = lo + (hi - lo) / 2;
    rc = bisect(w, lo, mid, err);
    if (rc == 0)
        rc = bisect(w, mid, hi, err);
    return rc;
}

/* Writes rows [lo, hi) under a savepoint, splitting the range on a row error. Returns 0 or the
 * first error that is not a row's (the transaction is then to be rolled back). */
static int bisect(struct persist_writer *w, size_t lo, size_t hi, struct tx_err *err)
{
    struct tx_err perr = { 0 };
    int rc;

    rc = load_and_upsert(w, SQL_PART_COPY, lo, hi, &perr);
    if (rc == 0) {
        rc = db_exec(w->db, SQL_PART_OK, NULL, 0, err);
        if (rc == 0)
            decide(w, lo, hi, QUEUE_ACK);
        return rc;
    }
    if (persist_error_class(rc, db_conn_last_sqlstate(w->db)) != PERSIST_ERR_ROW) {
        if (err != NULL)
            *err = perr;
        return rc;
    }
    rc = out_of_time(w, err);
    if (rc == 0)
        rc = db_exec(w->db, SQL_PART_UNDO, NULL, 0, err);
    if (rc == 0)
        rc = split(w, lo, hi, &perr, err);
    return rc;
}

/* One attempt at the whole batch; sets every row's disposition on success. On failure *cls says
 * what kind of error ended it. */
static int write_rows(struct persist_writer *w, enum persist_error_class *cls, struct tx_err *err)
{
    struct tx_err first = { 0 };
    int64_t t0 = tx_time_mono_ms();
    int rc;

    memset(w->pending, 0, sizeof(w->pending));
    rc = ensure_conn(w, err);
    if (rc != 0) {
        *cls = persist_error_class(rc, "");
        return rc;
    }
    if (w->ws->staged == w->ws->batch_n && w->ws->nrows == 0)
        return 0; /* every delivery was poison or did not fit: nothing to write */
    /* The whole transaction in one round trip (staged while copied when not staged yet). The
     * rows are all staged afterwards (also when the COPY failed half-way): the retries and the
     * bisection need them. */
    rc = write_once(w, &first);
    stage_rest(w->ws);
    if (rc == 0) {
        decide(w, 0, w->ws->nrows, QUEUE_ACK);
        goto committed;
    }
    *cls = persist_error_class(rc, db_conn_last_sqlstate(w->db));
    if (*cls != PERSIST_ERR_ROW) {
        if (err != NULL)
            *err = first;
        abort_tx(w, rc);
        return rc;
    }
    /* Some row is refused: find it in a new transaction, part by part. */
    abort_tx(w, rc);
    rc = ensure_conn(w, err);
    if (rc == 0)
        rc = out_of_time(w, err);
    if (rc == 0)
        rc = db_exec(w->db, SQL_BEGIN, NULL, 0, err);
    if (rc == 0)
        rc = split(w, 0, w->ws->nrows, &first, err);
    if (rc == 0)
        rc = db_exec(w->db, "COMMIT", NULL, 0, err);
    if (rc != 0)
        goto failed;
committed:
    tx_histogram_observe(w->commit_seconds, (double) (tx_time_mono_ms() - t0) / 1000.0);
    for (int t = 0; t < NTABLES; t++)
        tx_counter_add(w->written[t], (uint64_t) w->pending[t]);
    memset(w->pending, 0, sizeof(w->pending));
    return 0;
failed:
    *cls = persist_error_class(rc, db_conn_last_sqlstate(w->db));
    if (*cls == PERSIST_ERR_ROW)
        *cls = PERSIST_ERR_SYSTEMIC; /* a row error outside a part: not expected */
    abort_tx(w, rc);
    return rc;
}

/* ---- one batch ---- */

static void sleep_unless_stopped(long ms, const volatile sig_atomic_t *stop)
{
    while (ms > 0 && (stop == NULL || !*stop)) {
        long slice = ms < SLEEP_SLICE_MS ? ms : SLEEP_SLICE_MS;
        struct timespec ts = { 0, slice * 1000000L };

        nanosleep(&ts, NULL);
        ms -= slice;
    }
}

static int slot_reserve(struct slot *sl, size_t n)
{
    struct row_ref *p;
    enum queue_disposition *o;

    if (n <= sl->cap)
        return 0;
    p = realloc(sl->rows, n * sizeof(*p));
    if (p == NULL)
        return TX_ENOMEM;
    sl->rows = p;
    o = realloc(sl->own_out, n * sizeof(*o));
    if (o == NULL)
        return TX_ENOMEM;
    sl->own_out = o;
    sl->cap = n;
    return 0;
}

/* Readies slot sl for the batch d[0..n) with dispositions into out; 0 or TX_ENOMEM (then every
 * delivery is QUEUE_RETRY). */
static int slot_begin(struct persist_writer *w, struct slot *sl, const struct queue_delivery *d,
                      size_t n, enum queue_disposition *out)
{
    tx_histogram_observe(w->batch_size, (double) n);
    sl->batch = d;
    sl->batch_n = n;
    sl->staged = 0;
    sl->sent = 0;
    sl->kinds = 0;
    sl->nrows = 0;
    sl->full_logged = false;
    sl->start_ms = tx_time_mono_ms();
    tx_buf_reset(&sl->stage);
    if (slot_reserve(sl, n) != 0) {
        sl->out = out; /* NULL in pipelined mode: the collector's QUEUE_RETRY stays */
        for (size_t i = 0; out != NULL && i < n; i++)
            out[i] = QUEUE_RETRY;
        sl->staged = n; /* nothing to stage or write */
        tx_log_error(TX_NOKV, "out of memory for a batch of %zu; held for another attempt", n);
        return TX_ENOMEM;
    }
    sl->out = out != NULL ? out : sl->own_out;
    return 0;
}

/* Writes slot sl (staged, or staged while copying on the first attempt): one transaction,
 * retried with backoff while PostgreSQL fails, within the retry budget; sets sl->out. */
static void write_batch(struct persist_writer *w, struct slot *sl,
                        const volatile sig_atomic_t *stop)
{
    struct tx_err err = { 0 };
    long backoff = BACKOFF_FIRST_MS;
    unsigned attempts = 0;
    int rc;

    w->ws = sl;
    w->deadline_ms = sl->start_ms + w->retry_budget_ms;
    for (;;) {
        enum persist_error_class cls = PERSIST_ERR_SYSTEMIC;
        int64_t now;

        tx_err_clear(&err);
        attempts++;
        rc = write_rows(w, &cls, &err);
        stage_rest(sl); /* when the first attempt could not even connect */
        if (sl->nrows == 0)
            rc = 0; /* every delivery was poison or waits for the next batch: nothing to write */
        if (rc == 0)
            break;
        if (attempts == 1) {
            if (cls == PERSIST_ERR_TRANSIENT)
                tx_log_warn(TX_NOKV, "cannot write a batch of %zu rows, retrying: %s", sl->nrows,
                            err.msg);
            else
                tx_log_error(TX_NOKV, "cannot write a batch of %zu rows, retrying: %s: %s",
                             sl->nrows, tx_status_name(rc), err.msg);
        }
        now = tx_time_mono_ms();
        if ((stop != NULL && *stop) || now >= w->deadline_ms)
            break;
        /* The last attempt starts when the budget ends. */
        sleep_unless_stopped(
            now + backoff < w->deadline_ms ? backoff : (long) (w->deadline_ms - now), stop);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    w->ws = NULL;
    if (rc != 0) {
        tx_log_warn(TX_NOKV,
                    "batch of %zu rows held for another attempt after %u attempts in %lld "
                    "ms: %s",
                    sl->nrows, attempts, (long long) (tx_time_mono_ms() - sl->start_ms), err.msg);
        return; /* every row stays QUEUE_RETRY */
    }
    if (attempts > 1)
        tx_log_info(TX_NOKV, "batch of %zu rows written after %u attempts", sl->nrows, attempts);
    for (size_t i = 0; i < sl->nrows; i++) {
        struct row_ref *r = &sl->rows[i];

        sl->out[r->delivery] = r->disp;
        if (r->disp == QUEUE_REJECT)
            tx_log_error(TX_KV("event_id", r->event_id, "upload_id", r->upload_id),
                         "row refused by PostgreSQL, dead-lettered: %s", r->why);
    }
}

void persist_writer_handle(struct persist_writer *w, const struct queue_delivery *d, size_t n,
                           enum queue_disposition *out, const volatile sig_atomic_t *stop)
{
    if (n == 0)
        return;
    /* Decoded while the COPY streams (write_rows' first attempt). */
    if (slot_begin(w, &w->slots[0], d, n, out) != 0)
        return;
    write_batch(w, &w->slots[0], stop);
}

/* ---- pipelined mode ---- */

/* The staged slot submitted first, or NULL. Under w->mu. */
static struct slot *oldest(struct persist_writer *w, int state)
{
    struct slot *best = NULL;

    for (int k = 0; k < 2; k++) {
        struct slot *sl = &w->slots[k];

        if ((int) sl->state == state && (best == NULL || sl->seq < best->seq))
            best = sl;
    }
    return best;
}

/* The worker: writes staged slots in submission order until told to quit. */
static void *worker_main(void *arg)
{
    struct persist_writer *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct slot *sl = oldest(w, SLOT_STAGED);

        if (sl == NULL) {
            if (w->quit)
                break;
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        sl->state = SLOT_WRITING;
        pthread_mutex_unlock(&w->mu);
        write_batch(w, sl, w->stop);
        pthread_mutex_lock(&w->mu);
        sl->state = SLOT_DONE;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void persist_writer_submit(struct persist_writer *w, const struct queue_delivery *d, size_t n,
                           const volatile sig_atomic_t *stop)
{
    struct slot *sl;

    pthread_mutex_lock(&w->mu);
    w->stop = stop;
    if (!w->worker_started && pthread_create(&w->worker, NULL, worker_main, w) == 0)
        w->worker_started = true;
    sl = oldest(w, SLOT_FREE);
    pthread_mutex_unlock(&w->mu);
    if (sl == NULL) {
        /* A caller error (two batches already outstanding): the batch is kept back. */
        tx_log_error(TX_NOKV, "persist writer: a third batch was submitted before a collect");
        return;
    }
    /* Decoded here, while the worker writes the batch before it. */
    slot_begin(w, sl, d, n, NULL);
    stage_rest(sl);
    pthread_mutex_lock(&w->mu);
    sl->seq = w->next_seq++;
    sl->state = w->worker_started ? SLOT_STAGED : SLOT_WRITING;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (!w->worker_started) {
        /* No thread could be started: write it here (no overlap, same result). */
        tx_log_warn(TX_NOKV, "persist writer: no worker thread; writing in the caller's thread");
        write_batch(w, sl, stop);
        pthread_mutex_lock(&w->mu);
        sl->state = SLOT_DONE;
        pthread_mutex_unlock(&w->mu);
    }
}

void persist_writer_collect(struct persist_writer *w, enum queue_disposition *out)
{
    struct slot *sl = NULL;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        for (int k = 0; k < 2; k++) {
            if (w->slots[k].state != SLOT_FREE && w->slots[k].seq == w->collected)
                sl = &w->slots[k];
        }
        if (sl == NULL || sl->state == SLOT_DONE)
            break;
        pthread_cond_wait(&w->cv, &w->mu);
        sl = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    if (sl == NULL)
        return; /* nothing was submitted (or it could not be): out stays as the caller set it */
    if (sl->out != NULL)
        memcpy(out, sl->out, sl->batch_n * sizeof(*out));
    pthread_mutex_lock(&w->mu);
    sl->state = SLOT_FREE;
    w->collected++;
    pthread_mutex_unlock(&w->mu);
}
