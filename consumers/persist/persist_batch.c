/* The batch writer: staging rows -> COPY -> one upsert statement -> COMMIT, with bisection. */
#include "consumers/persist/persist.h"

#include "common/tx_log.h"
#include "common/tx_time.h"
#include "storage/db.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_FIRST_MS 100L
#define BACKOFF_MAX_MS   5000L
#define SLEEP_SLICE_MS   100L
#define STREAM_CHUNK     (64u * 1024u) /* staging bytes per COPY chunk of a first attempt */

/* Session-local staging table; emptied by every COMMIT. */
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
#define SQL_BEGIN_COPY "BEGIN; " STAGE_DDL "; " STAGE_COPY
/* Bisection: every part under a savepoint, staging emptied of the previous part's rows. */
#define SQL_BEGIN     "BEGIN; " STAGE_DDL
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
static const char upsert_sql[] =
    "WITH up AS ("
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
    "), fr AS ("
    " INSERT INTO fraud_reasons AS f (event_id, code, detail)"
    " SELECT DISTINCT ON (s.event_id, r.code COLLATE \"C\") s.event_id, r.code, r.detail"
    " FROM persist_stage s"
    " CROSS JOIN LATERAL jsonb_to_recordset(s.reasons) AS r(code text, detail text)"
    " WHERE s.kind = 's' ORDER BY s.event_id, r.code COLLATE \"C\", s.seq DESC"
    " ON CONFLICT (event_id, code) DO UPDATE SET detail = EXCLUDED.detail"
    " WHERE f.detail IS DISTINCT FROM EXCLUDED.detail"
    " RETURNING 1"
    "), em AS ("
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
    ") SELECT (SELECT count(*) FROM up) || ' ' || (SELECT count(*) FROM tx) || ' ' ||"
    " (SELECT count(*) FROM fr) || ' ' || (SELECT count(*) FROM em)";

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

struct persist_writer {
    char *dsn;
    long connect_timeout_ms;
    long statement_timeout_ms;
    long retry_budget_ms;
    struct db_conn *db; /* NULL until connected (and after a failed rollback) */
    struct tx_buf stage;
    struct row_ref *rows;
    size_t nrows;
    size_t cap;
    /* Staging of the batch in hand, delivery by delivery (see stage_next). */
    const struct queue_delivery *batch;
    size_t batch_n;
    enum queue_disposition *batch_out;
    size_t staged;              /* deliveries staged so far */
    size_t sent;                /* bytes of w->stage handed to the streaming COPY */
    bool full_logged;           /* the staging-full warning was logged for this batch */
    long long pending[NTABLES]; /* rows written by the transaction in progress */
    int64_t deadline_ms;        /* no statement of the batch in hand starts after this */
    struct tx_counter *written[NTABLES];
    struct tx_histogram *batch_size;
    struct tx_histogram *commit_seconds;
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
    tx_buf_init(&w->stage, cfg->max_batch_bytes);
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
    db_conn_destroy(w->db);
    if (w->dsn != NULL) {
        memset(w->dsn, 0, strlen(w->dsn)); /* it may hold a password */
        free(w->dsn);
    }
    tx_buf_cleanup(&w->stage);
    free(w->rows);
    free(w);
}

/* ---- staging ---- */

/* Decodes delivery w->staged of the batch in hand into a staging row; a poison one is rejected
 * here, one that does not fit the staging text is left for a later batch. */
static void stage_one(struct persist_writer *w)
{
    size_t i = w->staged++;
    const struct queue_delivery *d = &w->batch[i];
    struct tx_event *ev = NULL;
    struct tx_err err = { 0 };
    struct row_ref *r;
    size_t start = w->stage.len;
    int rc;

    w->batch_out[i] = QUEUE_RETRY;
    rc = tx_event_decode(d->body, d->len, &ev, &err);
    if (rc == 0)
        rc = persist_row_append(&w->stage, (unsigned) i, ev, &err);
    if (rc == TX_ETOOBIG || rc == TX_ENOMEM) {
        /* Held for another attempt (QUEUE_RETRY): the staging text reached its limit. */
        if (!w->full_logged)
            tx_log_warn(TX_KV("event_id", d->message_id),
                        "batch staging full (%zu bytes); the rest of the batch waits for the next",
                        w->stage.len);
        w->full_logged = true;
        tx_event_destroy(ev);
        return;
    }
    if (rc != 0) {
        w->batch_out[i] = QUEUE_REJECT;
        tx_log_warn(TX_KV("event_id", ev != NULL ? ev->event_id : d->message_id, "upload_id",
                          d->correlation_id),
                    "poison message dead-lettered: %s: %s", tx_status_name(rc), err.msg);
        tx_event_destroy(ev);
        return;
    }
    r = &w->rows[w->nrows++];
    r->delivery = i;
    r->start = start;
    r->end = w->stage.len;
    r->disp = QUEUE_RETRY;
    r->why[0] = '\0';
    snprintf(r->event_id, sizeof(r->event_id), "%s", ev->event_id);
    snprintf(r->upload_id, sizeof(r->upload_id), "%s", ev->upload_id);
    tx_event_destroy(ev);
}

static void stage_rest(struct persist_writer *w)
{
    while (w->staged < w->batch_n)
        stage_one(w);
}

/* db_copy_source_fn of the first attempt: stages deliveries until STREAM_CHUNK new bytes (or the
 * end of the batch) and hands them to the COPY, so PostgreSQL parses them while the next ones are
 * decoded. */
static int stage_stream_next(void *ctx, const char **data, size_t *len)
{
    struct persist_writer *w = ctx;

    while (w->staged < w->batch_n && w->stage.len - w->sent < STREAM_CHUNK)
        stage_one(w);
    *data = w->stage.data + w->sent;
    *len = w->stage.len - w->sent;
    w->sent = w->stage.len;
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

/* COPYs rows [lo, hi) after prefix statements, then runs the upsert; adds to w->pending. With
 * stream, the batch is staged while it is copied (the first attempt), and [lo, hi) is unused. */
static int load_and_upsert(struct persist_writer *w, const char *copy_sql, bool stream, size_t lo,
                           size_t hi, struct tx_err *err)
{
    const char *data = stream ? NULL : w->stage.data + w->rows[lo].start;
    size_t len = stream ? 0 : w->rows[hi - 1].end - w->rows[lo].start;
    long long n[NTABLES] = { 0 };
    char *counts = NULL;
    int rc;

    rc = out_of_time(w, err);
    if (rc == 0 && stream)
        rc = db_copy_in_stream(w->db, copy_sql, stage_stream_next, w, NULL, err);
    else if (rc == 0)
        rc = db_copy_in(w->db, copy_sql, data, len, NULL, err);
    if (rc == 0)
        rc = out_of_time(w, err);
    if (rc == 0)
        rc = db_query_text_prepared(w->db, "persist_upsert", upsert_sql, NULL, 0, &counts, NULL,
                                    err);
    if (rc != 0)
        return rc;
    if (sscanf(counts, "%lld %lld %lld %lld", &n[0], &n[1], &n[2], &n[3]) != NTABLES)
        rc = tx_err_set(err, TX_EIO, "upsert returned \"%.40s\"", counts);
    free(counts);
    if (rc != 0)
        return rc;
    for (int t = 0; t < NTABLES; t++)
        w->pending[t] += n[t];
    return 0;
}

static void decide(struct persist_writer *w, size_t lo, size_t hi, enum queue_disposition d)
{
    for (size_t i = lo; i < hi; i++)
        w->rows[i].disp = d;
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

        w->rows[lo].disp = QUEUE_REJECT;
        snprintf(w->rows[lo].why, sizeof(w->rows[lo].why), "%.*s", len, perr->msg);
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

    rc = load_and_upsert(w, SQL_PART_COPY, false, lo, hi, &perr);
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
    if (w->staged < w->batch_n) {
        /* The first attempt: stage while copying. The rows are all staged afterwards (also
         * when the COPY failed half-way), as the retries and the bisection need them. */
        rc = load_and_upsert(w, SQL_BEGIN_COPY, true, 0, 0, &first);
        stage_rest(w);
        if (rc == 0 && w->nrows == 0) {
            /* Every delivery was poison or did not fit: nothing to write. */
            abort_tx(w, TX_EINVAL);
            return 0;
        }
    }
    else if (w->nrows > 0) {
        rc = load_and_upsert(w, SQL_BEGIN_COPY, false, 0, w->nrows, &first);
    }
    else {
        return 0;
    }
    if (rc == 0) {
        rc = db_exec(w->db, "COMMIT", NULL, 0, err);
        if (rc == 0) {
            decide(w, 0, w->nrows, QUEUE_ACK);
            goto committed;
        }
        goto failed;
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
        rc = split(w, 0, w->nrows, &first, err);
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

static int rows_reserve(struct persist_writer *w, size_t n)
{
    struct row_ref *p;

    if (n <= w->cap)
        return 0;
    p = realloc(w->rows, n * sizeof(*p));
    if (p == NULL)
        return TX_ENOMEM;
    w->rows = p;
    w->cap = n;
    return 0;
}

void persist_writer_handle(struct persist_writer *w, const struct queue_delivery *d, size_t n,
                           enum queue_disposition *out, const volatile sig_atomic_t *stop)
{
    struct tx_err err = { 0 };
    int64_t start = tx_time_mono_ms();
    long backoff = BACKOFF_FIRST_MS;
    unsigned attempts = 0;
    int rc;

    if (n == 0)
        return;
    tx_histogram_observe(w->batch_size, (double) n);
    if (rows_reserve(w, n) != 0) {
        for (size_t i = 0; i < n; i++)
            out[i] = QUEUE_RETRY;
        tx_log_error(TX_NOKV, "out of memory for a batch of %zu; requeued", n);
        return;
    }
    w->batch = d;
    w->batch_n = n;
    w->batch_out = out;
    w->staged = 0;
    w->sent = 0;
    w->nrows = 0;
    w->full_logged = false;
    tx_buf_reset(&w->stage);
    w->deadline_ms = start + w->retry_budget_ms;
    for (;;) {
        enum persist_error_class cls = PERSIST_ERR_SYSTEMIC;
        int64_t now;

        tx_err_clear(&err);
        attempts++;
        rc = write_rows(w, &cls, &err);
        stage_rest(w); /* when the first attempt could not even connect */
        if (w->nrows == 0)
            rc = 0; /* every delivery was poison or waits for the next batch: nothing to write */
        if (rc == 0)
            break;
        if (attempts == 1) {
            if (cls == PERSIST_ERR_TRANSIENT)
                tx_log_warn(TX_NOKV, "cannot write a batch of %zu rows, retrying: %s", w->nrows,
                            err.msg);
            else
                tx_log_error(TX_NOKV, "cannot write a batch of %zu rows, retrying: %s: %s",
                             w->nrows, tx_status_name(rc), err.msg);
        }
        now = tx_time_mono_ms();
        if ((stop != NULL && *stop) || now >= w->deadline_ms)
            break;
        /* The last attempt starts when the budget ends. */
        sleep_unless_stopped(
            now + backoff < w->deadline_ms ? backoff : (long) (w->deadline_ms - now), stop);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    if (rc != 0) {
        tx_log_warn(TX_NOKV, "batch of %zu rows requeued after %u attempts in %lld ms: %s",
                    w->nrows, attempts, (long long) (tx_time_mono_ms() - start), err.msg);
        return; /* every row stays QUEUE_RETRY */
    }
    if (attempts > 1)
        tx_log_info(TX_NOKV, "batch of %zu rows written after %u attempts", w->nrows, attempts);
    for (size_t i = 0; i < w->nrows; i++) {
        struct row_ref *r = &w->rows[i];

        out[r->delivery] = r->disp;
        if (r->disp == QUEUE_REJECT)
            tx_log_error(TX_KV("event_id", r->event_id, "upload_id", r->upload_id),
                         "row refused by PostgreSQL, dead-lettered: %s", r->why);
    }
}
