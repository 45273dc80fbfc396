#ifndef PERSIST_H
#define PERSIST_H

/*
 * txpersist: the only writer to PostgreSQL (ARCHITECTURE §5, §7). It turns batches of events from
 * tx.persist (transaction.received, transaction.scored, notification.sent|failed) into one SQL
 * transaction of idempotent upserts:
 *
 *   1. every decodable event becomes one line of a staging table in COPY text format (the pure
 *      part below, unit-tested);
 *   2. each session creates the temporary staging table and prepares the upsert statements once
 *      (db_conn_set_session_sql, again after every reconnect);
 *   3. a batch is one round trip: "BEGIN; COPY persist_stage FROM STDIN; EXECUTE upsert; COMMIT",
 *      the COPY data streamed as the rows are staged. The upsert is one statement of up to four
 *      data-modifying CTEs (uploads, transactions, fraud_reasons, emails; only those the batch's
 *      kinds of rows need), deduplicated per key, so a batch may hold the same event twice, or
 *      the received and the scored event of one transaction;
 *   4. only after COMMIT is the batch acked.
 *
 * In the daemon the work is pipelined (persist_writer_submit/collect): a worker thread writes one
 * batch while the consumer loop reads and decodes the next.
 *
 * A batch the database refuses because of one row's data (SQLSTATE class 22 or 23) is bisected
 * under savepoints, so only the offending deliveries are dead-lettered and the rest commit.
 */

#include "common/tx_buf.h"
#include "common/tx_event.h"
#include "common/tx_metrics.h"
#include "common/tx_status.h"
#include "storage/queue.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- staging rows (pure: no I/O) ---- */

/* The staging table's columns, in the order persist_row_append writes them. */
#define PERSIST_STAGE_COLUMNS                                                                   \
    "seq, kind, event_id, upload_id, idx, object_key, received_at, client_id, cliente, email, " \
    "endereco, datatrasancao, datatrasancao_at, is_active, raw, flagged, score, reasons, "      \
    "template, to_addr, status, message_id, error, at, records, sha256, idempotency_key, valor"
#define PERSIST_STAGE_NCOLUMNS 28

/* Kind column of a staging row. */
#define PERSIST_KIND_RECEIVED 'r'
#define PERSIST_KIND_SCORED   's'
#define PERSIST_KIND_NOTIFY   'n'

/**
 * Appends len bytes of s to out as one field of PostgreSQL's COPY text format: backslash, tab,
 * newline and carriage return are escaped (\\, \t, \n, \r); every other byte is copied. Returns 0;
 * TX_EINVAL when s holds a NUL byte or is not valid UTF-8 (out unchanged); TX_ETOOBIG or
 * TX_ENOMEM from the buffer (out may hold part of the field: callers roll back to a saved
 * length). Thread-safe (touches only out).
 */
int persist_copy_field(struct tx_buf *out, const char *s, size_t len);

/**
 * Appends the staging row of a decoded event ev, with sequence number seq (its position in the
 * batch), to out: PERSIST_STAGE_NCOLUMNS tab-separated fields, \N for NULL, ending in a newline.
 * Timestamps are written as UTC "YYYY-MM-DDTHH:MM:SS.mmmZ"; the record goes in raw as its JSON
 * text and its valor in valor as the number's text in that JSON (exact, no double in between);
 * the verdict's reasons as a JSON array of {"code","detail"}.
 *
 * Checks what PostgreSQL would otherwise refuse as a data error, so such an event is treated as a
 * poison message before the database sees it: TX_EINVAL with the reason in err for an index above
 * 2^31-1, a timestamp that cannot be written, a notification "at" that is not an RFC 3339
 * date-time, a non-finite score, a record JSON holding \u0000, a NUL byte or invalid UTF-8 in a
 * string. Constraint checks (such as the reason code pattern) are left to the database. On any
 * error out is restored to its length before the call. TX_ETOOBIG or TX_ENOMEM from the buffer.
 * Thread-safe.
 */
int persist_row_append(struct tx_buf *out, unsigned seq, const struct tx_event *ev,
                       struct tx_err *err);

/* What a failed database call means for the batch (see persist_error_class). */
enum persist_error_class {
    PERSIST_ERR_ROW = 0,       /* one row's data: bisect and dead-letter the offending row */
    PERSIST_ERR_TRANSIENT = 1, /* connection, deadline, serialization: wait and retry */
    PERSIST_ERR_SYSTEMIC = 2,  /* anything else (SQL, privileges): wait and retry, log as error */
};

/**
 * Classifies the status rc of a failed db_* call with the SQLSTATE from db_conn_last_sqlstate:
 * class 22 (data exception) or 23 (integrity constraint) is a row error; TX_EUNAVAIL and
 * TX_ETIMEDOUT are transient; the rest (permission denied, undefined table, ...) systemic.
 */
enum persist_error_class persist_error_class(int rc, const char *sqlstate);

/* ---- the batch writer ---- */

struct persist_writer_config {
    const char *dsn;            /* libpq connection string of the writer role; copied */
    long connect_timeout_ms;    /* per connection attempt */
    long statement_timeout_ms;  /* session statement_timeout (the client deadline adds 2 s) */
    long retry_budget_ms;       /* no new attempt starts this long after the batch began: the
                                   batch is then QUEUE_RETRY (held by the loop) */
    size_t max_batch_bytes;     /* staging text of one batch; the deliveries past it wait */
    const char *metrics_prefix; /* "txpersist": names of the metrics registered */
};

struct persist_writer;

/**
 * Creates a writer. Does not connect (the first batch does, and every batch after a failure), so
 * a daemon can start while PostgreSQL is down; a DSN libpq cannot parse is still refused here.
 * When m is not NULL registers <prefix>_rows_written_total{table} (rows inserted or changed per
 * table: upserts that change nothing do not count), <prefix>_batch_size (deliveries per batch)
 * and <prefix>_commit_seconds (BEGIN to COMMIT of a batch that committed). Returns NULL with
 * TX_EINVAL (bad config), TX_EEXIST (metric names taken) or TX_ENOMEM in err. Free with
 * persist_writer_destroy.
 */
struct persist_writer *persist_writer_create(const struct persist_writer_config *cfg,
                                             struct tx_metrics *m, struct tx_err *err);

/** Closes the connection (an open transaction is rolled back) and frees w. NULL is a no-op. */
void persist_writer_destroy(struct persist_writer *w);

/**
 * Handles one batch of n deliveries and writes one disposition per delivery into out[0..n):
 * - a body that does not decode as an event (or fails persist_row_append's checks) is
 *   QUEUE_REJECT at once, with a log line naming the event id and the reason;
 * - the other events are written in one transaction; after COMMIT they are QUEUE_ACK;
 * - a row PostgreSQL refuses (constraint, bad data) is found by bisection under savepoints and is
 *   QUEUE_REJECT alone, logged with its event id and the server's message; the rest commit;
 * - when PostgreSQL is unreachable or fails otherwise, the batch is retried with backoff (100 ms
 *   doubling to 5 s) until *stop is set or retry_budget_ms has passed, then every delivery still
 *   unwritten is QUEUE_RETRY (nothing is acked before its COMMIT).
 * Returns within about retry_budget_ms + statement_timeout_ms + 2 s. stop may be NULL. Not
 * thread-safe: one batch at a time per writer.
 */
void persist_writer_handle(struct persist_writer *w, const struct queue_delivery *d, size_t n,
                           enum queue_disposition *out, const volatile sig_atomic_t *stop);

/*
 * Pipelined mode (queue_consumer_run_pipelined): a worker thread of the writer writes one batch
 * while the caller decodes the next. Use either persist_writer_handle or this pair on a writer,
 * never both.
 */

/**
 * Decodes and stages the batch d[0..n) (poison deliveries are dead-lettered as in
 * persist_writer_handle) and queues it for the worker, which writes batches in submission order
 * exactly as persist_writer_handle does (same transaction, bisection, retries within the budget,
 * stop). Returns without waiting for the database. At most two batches may be outstanding (not
 * yet collected). The deliveries must stay valid until the batch is collected. Called from one
 * thread (the consumer loop's).
 */
void persist_writer_submit(struct persist_writer *w, const struct queue_delivery *d, size_t n,
                           const volatile sig_atomic_t *stop);

/**
 * Waits until the oldest submitted batch that is not collected yet is written (or given up) and
 * writes its n dispositions into out[0..n). Nothing is written to out when no batch is
 * outstanding or its memory could not be had (the caller's QUEUE_RETRY stays). Same thread as
 * persist_writer_submit.
 */
void persist_writer_collect(struct persist_writer *w, enum queue_disposition *out);

#endif
