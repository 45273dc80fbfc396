/*
 * txload: the HTTP load generator of ci/bench (libcurl multi, one thread, N keep-alive
 * connections). Every request is a new upload with its own records (unique client ids and
 * e-mail addresses, see bench_body_make), so no Idempotency-Key is needed and no fraud rule fires.
 *
 *   txload http --url URL [--conc N] [--records R] [--duration S] [--warmup S] [--max N]
 *               [--tag T] [--api-key K] [--watch SPEC]...
 *       Closed loop: each connection sends its next upload as soon as the previous answer came.
 *       Counts answers completed inside the measuring window (after the warm-up, until the end);
 *       throughput and latency percentiles are of the 2xx answers in that window. Other statuses
 *       and transport errors are counted apart. Prints one JSON line. --min-ok N keeps the window
 *       open (30 s at most) until N answers were counted, for servers slower than the window.
 *
 *   txload e2e --url URL [--conc N] [--records R] --uploads U [--timeout S] [--tag T]
 *              [--no-email] [--api-key K] [--watch SPEC]...
 *              [--done-redis URL --done-key KEY] [--ids-out FILE]
 *       Sends U uploads of R records (429 and 503 answers are retried after 50 ms), then polls
 *       PostgreSQL (TX_PG_RO_DSN) until every record is persisted and scored, and has its e-mail
 *       row (emails, one per record for benchmark data), or until the timeout. Times are from the
 *       first POST. Samples the depth of tx.fraud, tx.notify and tx.persist (TX_AMQP_URL) on the
 *       way. Prints one JSON line, with a timeline of the counts. With --done-key (the Python
 *       baseline, which has no database) the end is when the Redis counter KEY at URL has grown
 *       by the number of records sent.
 *
 * SPEC watches processes during the measuring window: "name=pid[+pid...][:tree]" (CPU seconds,
 * CPU per record, RSS at start / peak / end; ":tree" adds every descendant process).
 * Everything goes to the URL given (127.0.0.1 in ci/bench); every run is bounded in time.
 */
#include "bench/bench_util.h"

#include "common/tx_buf.h"
#include "storage/cache.h"
#include "storage/db.h"
#include "storage/queue.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PROG        "txload"
#define LAT_CAP     (4u << 20)
#define UPLOAD_ID_N 36

struct opts {
    const char *mode;
    const char *url;
    const char *api_key;
    const char *tag;
    int conc;
    int records;
    double duration_s;
    double warmup_s;
    long max_requests;
    long uploads;
    double timeout_s;
    bool no_email;
    const char *done_redis; /* e2e against the baseline: a Redis counter instead of PostgreSQL */
    const char *done_key;
    const char *ids_out; /* e2e: file to write the accepted upload ids to, one a line */
    long min_ok;         /* http: keep the window open until this many 2xx (at most 30 s more) */
};

struct conn {
    CURL *h;
    struct tx_buf body;
    struct tx_buf resp;
    int64_t t_start;
    bool busy;
};

/* Upload ids of accepted uploads (e2e), shared with the poller thread. */
struct idlist {
    pthread_mutex_t mu;
    char (*ids)[UPLOAD_ID_N + 1];
    size_t n;
    size_t cap;
    long accepted_records;
    int64_t t_last_accept_us;
};

struct e2e_state {
    const struct opts *o;
    struct idlist *idl;
    struct bench_watch *watch;
    int64_t t0_us;
    volatile sig_atomic_t stop; /* set by the main thread: end of run */
    volatile sig_atomic_t done; /* set by the poller: everything observed */
    long target;                /* records expected */
    long persisted, scored, flagged, emailed, email_failed;
    int64_t t_persisted_us, t_scored_us, t_ps_us, t_email_us;
    uint32_t qstart[3];
    uint32_t qmax[3];
    uint32_t qlast[3]; /* depths at the last sample (every 500 ms) */
    json_t *timeline;
    char last_error[300];
};

static const char *const QUEUES[3] = { "tx.fraud", "tx.notify", "tx.persist" };

/* The processes watched (--watch), sampled by the poller thread. */
static struct bench_watch g_watch;

static void usage(void)
{
    fprintf(stderr, "usage: txload http|e2e --url URL [--conc N] [--records R] [--duration S] "
                    "[--warmup S] [--max N] [--uploads U] [--timeout S] [--tag T] [--api-key K] "
                    "[--no-email] [--watch name=pid[+pid][:tree]]... [--done-redis URL "
                    "--done-key KEY] [--ids-out FILE] [--min-ok N]\n");
    exit(2);
}

static size_t collect(char *p, size_t s, size_t n, void *ud)
{
    if (tx_buf_append(ud, p, s * n) != 0)
        return 0;
    return s * n;
}

static double self_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
           (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

/* Prepares c for its next upload (a fresh body) and adds it to the multi handle. */
static void conn_issue(CURLM *m, struct conn *c, const struct opts *o, unsigned long seq)
{
    tx_buf_reset(&c->body);
    tx_buf_reset(&c->resp);
    if (bench_body_make(&c->body, o->tag, seq, o->records) != 0)
        bench_die(PROG, "body", "too large");
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body.data);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) c->body.len);
    c->t_start = bench_now_us();
    c->busy = true;
    curl_multi_add_handle(m, c->h);
}

static void conn_init(struct conn *c, const struct opts *o, struct curl_slist *hdrs)
{
    memset(c, 0, sizeof(*c));
    tx_buf_init(&c->body, 64u << 20);
    tx_buf_init(&c->resp, 1u << 20);
    c->h = curl_easy_init();
    if (c->h == NULL)
        bench_die(PROG, "curl", "curl_easy_init failed");
    curl_easy_setopt(c->h, CURLOPT_URL, o->url);
    curl_easy_setopt(c->h, CURLOPT_POST, 1L);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->resp);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
}

static void conn_cleanup(struct conn *c)
{
    if (c->h != NULL)
        curl_easy_cleanup(c->h);
    tx_buf_cleanup(&c->body);
    tx_buf_cleanup(&c->resp);
}

/* Copies the "upload_id" of a 202 answer into out; 0 or -1. */
static int find_upload_id(const struct tx_buf *resp, char out[UPLOAD_ID_N + 1])
{
    const char *p;

    if (resp->data == NULL)
        return -1;
    p = strstr(resp->data, "\"upload_id\":\"");
    if (p == NULL || strlen(p + 13) < UPLOAD_ID_N)
        return -1;
    memcpy(out, p + 13, UPLOAD_ID_N);
    out[UPLOAD_ID_N] = '\0';
    return 0;
}

static void idlist_add(struct idlist *l, const char *id, long records)
{
    pthread_mutex_lock(&l->mu);
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 1024;
        void *nv = realloc(l->ids, ncap * sizeof(*l->ids));

        if (nv == NULL)
            bench_die(PROG, "ids", "out of memory");
        l->ids = nv;
        l->cap = ncap;
    }
    memcpy(l->ids[l->n++], id, UPLOAD_ID_N + 1);
    l->accepted_records += records;
    l->t_last_accept_us = bench_now_us();
    pthread_mutex_unlock(&l->mu);
}

/* ---- the poller thread (RSS samples; in e2e, PostgreSQL counts and queue depths) ----------- */

static long cell_long(const char *s, int idx)
{
    const char *p = s;

    for (int i = 0; i < idx && p != NULL; i++) {
        p = strchr(p, ' ');
        if (p != NULL)
            p++;
    }
    return p != NULL ? strtol(p, NULL, 10) : 0;
}

/* One round of counts; 0 or -1 (error text in st->last_error). */
static int poll_counts(struct e2e_state *st, struct db_conn *db)
{
    struct idlist *l = st->idl;
    struct tx_buf arr;
    char lo[UPLOAD_ID_N + 1];
    char hi[UPLOAD_ID_N + 2];
    char *out = NULL;
    struct tx_err err = { 0 };
    int rc = 0;

    tx_buf_init(&arr, 64u << 20);
    pthread_mutex_lock(&l->mu);
    if (l->n == 0) {
        pthread_mutex_unlock(&l->mu);
        tx_buf_cleanup(&arr);
        return 0;
    }
    snprintf(lo, sizeof(lo), "%s", l->ids[0]);
    snprintf(hi, sizeof(hi), "%s", l->ids[0]);
    tx_buf_puts(&arr, "{");
    for (size_t i = 0; i < l->n; i++) {
        tx_buf_printf(&arr, "%s%s", i > 0 ? "," : "", l->ids[i]);
        if (strcmp(l->ids[i], lo) < 0)
            memcpy(lo, l->ids[i], sizeof(lo));
        if (strcmp(l->ids[i], hi) > 0)
            memcpy(hi, l->ids[i], UPLOAD_ID_N + 1);
    }
    pthread_mutex_unlock(&l->mu);
    tx_buf_puts(&arr, "}");
    strcat(hi, ";"); /* ';' sorts after ':', so every "<hi>:<index>" is below it */
    {
        const char *p3[3] = { arr.data, lo, hi };

        rc = db_query_text_prepared(
            db, "bench_tx",
            "SELECT count(*) || ' ' || count(scored_at) || ' ' || count(*) FILTER (WHERE "
            "flagged) FROM transactions WHERE event_id > $2 AND event_id < $3 AND upload_id = "
            "ANY($1::text[])",
            p3, 3, &out, NULL, &err);
        if (rc == 0) {
            st->persisted = cell_long(out, 0);
            st->scored = cell_long(out, 1);
            st->flagged = cell_long(out, 2);
            free(out);
            out = NULL;
            rc = db_query_text_prepared(
                db, "bench_email",
                "SELECT count(DISTINCT event_id) FILTER (WHERE status = 'sent') || ' ' || "
                "count(DISTINCT event_id) FILTER (WHERE status = 'failed') FROM emails WHERE "
                "event_id > $2 AND event_id < $3 AND split_part(event_id, ':', 1) = "
                "ANY($1::text[])",
                p3, 3, &out, NULL, &err);
        }
        if (rc == 0) {
            st->emailed = cell_long(out, 0);
            st->email_failed = cell_long(out, 1);
        }
    }
    free(out);
    tx_buf_cleanup(&arr);
    if (rc != 0) {
        snprintf(st->last_error, sizeof(st->last_error), "postgres: %s", err.msg);
        return -1;
    }
    return 0;
}

static void poll_queues(struct e2e_state *st, uint32_t depth[3])
{
    struct queue_config qc = { .url = getenv("TX_AMQP_URL"), .name = "txload-depth" };

    for (int i = 0; i < 3; i++) {
        struct tx_err err = { 0 };

        depth[i] = 0;
        if (qc.url != NULL && queue_declare_passive_count(&qc, QUEUES[i], &depth[i], &err) == 0 &&
            depth[i] > st->qmax[i])
            st->qmax[i] = depth[i];
    }
}

/* Baseline: the growth of the Redis counter since the start counts as persisted and scored. */
static int poll_counter(struct e2e_state *st, struct cache_conn *rc, long long base)
{
    char *val = NULL;
    struct tx_err err = { 0 };
    int r = cache_get(rc, st->o->done_key, &val, NULL, NULL, &err);

    if (r == TX_ENOTFOUND)
        return 0;
    if (r != 0) {
        snprintf(st->last_error, sizeof(st->last_error), "redis: %s", err.msg);
        return -1;
    }
    st->persisted = st->scored = (long) (strtoll(val, NULL, 10) - base);
    free(val);
    return 0;
}

static long long counter_now(const struct opts *o)
{
    struct tx_err err = { 0 };
    struct cache_conn *rc = cache_conn_create(o->done_redis, 5000, &err);
    char *val = NULL;
    long long v = 0;

    if (rc == NULL)
        bench_die(PROG, "redis", err.msg);
    if (cache_get(rc, o->done_key, &val, NULL, NULL, &err) == 0)
        v = strtoll(val, NULL, 10);
    free(val);
    cache_conn_destroy(rc);
    return v;
}

static long long g_counter_base;

static void *poller(void *arg)
{
    struct e2e_state *st = arg;
    bool e2e = strcmp(st->o->mode, "e2e") == 0;
    bool counter = st->o->done_key != NULL;
    struct db_conn *db = NULL;
    struct cache_conn *rc = NULL;
    struct tx_err err = { 0 };
    int64_t last_q = 0;

    if (e2e && counter) {
        rc = cache_conn_create(st->o->done_redis, 5000, &err);
        if (rc == NULL)
            bench_die(PROG, "redis", err.msg);
    }
    else if (e2e) {
        db = db_conn_create(bench_need_env(PROG, "TX_PG_RO_DSN"), 5000, &err);
        if (db == NULL)
            bench_die(PROG, "postgres", err.msg);
    }
    while (!st->stop) {
        int64_t now = bench_now_us();

        bench_watch_sample(st->watch);
        if (e2e && st->idl->n > 0 &&
            (counter ? poll_counter(st, rc, g_counter_base) : poll_counts(st, db)) == 0) {
            uint32_t *depth = st->qlast;
            long accepted;

            now = bench_now_us();
            if (!counter && now - last_q >= 500000) {
                poll_queues(st, depth);
                last_q = now;
            }
            pthread_mutex_lock(&st->idl->mu);
            accepted = st->idl->accepted_records;
            pthread_mutex_unlock(&st->idl->mu);
            /* Nothing is complete before the last upload was accepted (the baseline publishes
             * before its answer, so its worker can finish first). */
            if (accepted < st->target) {
                json_array_append_new(
                    st->timeline,
                    json_pack("[f,I,I,I,I,I,I,I]", (double) (now - st->t0_us) / 1e6,
                              (json_int_t) accepted, (json_int_t) st->persisted,
                              (json_int_t) st->scored, (json_int_t) st->emailed,
                              (json_int_t) depth[0], (json_int_t) depth[1], (json_int_t) depth[2]));
                bench_sleep_ms(100);
                continue;
            }
            if (st->t_persisted_us == 0 && st->persisted >= st->target)
                st->t_persisted_us = now;
            if (st->t_scored_us == 0 && st->scored >= st->target)
                st->t_scored_us = now;
            if (st->t_ps_us == 0 && st->persisted >= st->target && st->scored >= st->target) {
                st->t_ps_us = now;
                if (!st->o->no_email)
                    bench_watch_mark(st->watch); /* CPU of the persist-and-score phase */
            }
            if (st->t_email_us == 0 && st->emailed + st->email_failed >= st->target)
                st->t_email_us = now;
            json_array_append_new(st->timeline,
                                  json_pack("[f,I,I,I,I,I,I,I]", (double) (now - st->t0_us) / 1e6,
                                            (json_int_t) accepted, (json_int_t) st->persisted,
                                            (json_int_t) st->scored, (json_int_t) st->emailed,
                                            (json_int_t) depth[0], (json_int_t) depth[1],
                                            (json_int_t) depth[2]));
            if (st->t_ps_us != 0 && (st->o->no_email || st->t_email_us != 0))
                st->done = 1;
        }
        bench_sleep_ms(e2e ? 100 : 200);
    }
    db_conn_destroy(db);
    cache_conn_destroy(rc);
    return NULL;
}

/* ---- the load loop ------------------------------------------------------------------------- */

struct counts {
    long ok;          /* 2xx in the window (http) or accepted (e2e) */
    long non2xx;      /* other statuses (in the window) */
    long transport;   /* curl errors */
    long outside;     /* answers outside the window (warm-up, drain) */
    long retries;     /* e2e: re-sent after 429/503 */
    json_t *statuses; /* status -> count (all answers) */
};

static void count_status(struct counts *k, long code)
{
    char s[16];
    json_t *v;

    snprintf(s, sizeof(s), "%ld", code);
    v = json_object_get(k->statuses, s);
    json_object_set_new(k->statuses, s, json_integer(v != NULL ? json_integer_value(v) + 1 : 1));
}

static int run(const struct opts *o)
{
    bool e2e = strcmp(o->mode, "e2e") == 0;
    CURLM *m = curl_multi_init();
    bool watch_started = e2e || o->warmup_s <= 0;
    bool sending = true;
    struct curl_slist *hdrs = NULL;
    struct conn *conns = calloc((size_t) o->conc, sizeof(*conns));
    struct bench_lat lat;
    struct counts k = { .statuses = json_object() };
    struct idlist idl = { .mu = PTHREAD_MUTEX_INITIALIZER };
    struct e2e_state st = { 0 };
    pthread_t th;
    unsigned long seq = 0; /* bodies made (unique client ids) */
    long issued = 0;       /* uploads started, not counting re-sends */
    long inflight = 0;
    long bytes_sum = 0;
    long bytes_n = 0;
    int64_t t0, t_warm, t_end, t_hard, t_cap;
    double cpu0;
    char auth[512];
    json_t *outj;

    if (conns == NULL || m == NULL)
        bench_die(PROG, "setup", "out of memory");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->api_key);
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) o->conc);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long) o->conc);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long) o->conc);
    bench_lat_init(&lat, LAT_CAP);
    for (int i = 0; i < o->conc; i++)
        conn_init(&conns[i], o, hdrs);

    st.o = o;
    st.idl = &idl;
    st.target = e2e ? o->uploads * o->records : 0;
    st.timeline = json_array();
    st.watch = &g_watch;

    if (e2e && o->done_key != NULL) {
        g_counter_base = counter_now(o);
    }
    else if (e2e) {
        /* Start from quiet queues (earlier steps or other users may have left a backlog). */
        int64_t until = bench_now_us() + 60000000;

        for (;;) {
            poll_queues(&st, st.qstart);
            if ((st.qstart[0] + st.qstart[1] + st.qstart[2] < 50) || bench_now_us() > until)
                break;
            bench_sleep_ms(250);
        }
        memset(st.qmax, 0, sizeof(st.qmax));
    }

    t0 = bench_now_us();
    t_warm = t0 + (int64_t) (o->warmup_s * 1e6);
    t_end = e2e ? t0 + (int64_t) (o->timeout_s * 1e6) : t_warm + (int64_t) (o->duration_s * 1e6);
    /* In-flight answers after the end are awaited at most 5 s (http) or 30 s (e2e); then the
     * remaining requests are abandoned (they are outside the window anyway). */
    t_hard = t_end + (e2e ? 30000000 : 5000000);
    t_cap = t_end + 30000000; /* --min-ok extends the window by at most 30 s */
    st.t0_us = t0;
    cpu0 = self_cpu();
    if (e2e || o->warmup_s <= 0)
        bench_watch_start(st.watch);
    if (pthread_create(&th, NULL, poller, &st) != 0)
        bench_die(PROG, "thread", "cannot start the poller");

    for (int i = 0; i < o->conc; i++) {
        if ((e2e && issued >= o->uploads) || (o->max_requests > 0 && issued >= o->max_requests))
            break;
        conn_issue(m, &conns[i], o, seq++);
        issued++;
        inflight++;
    }

    while (inflight > 0 || (e2e && !st.done)) {
        int running = 0;
        CURLMsg *msg;
        int left;
        int64_t now = bench_now_us();

        if (!watch_started && now >= t_warm) {
            bench_watch_start(st.watch);
            watch_started = true;
        }
        if (!e2e && sending && now >= t_end && k.ok < o->min_ok && now < t_cap) {
            t_end = now + 100000; /* not enough answers yet: keep the window open */
            t_hard = t_end + 5000000;
        }
        if (now >= t_end)
            sending = false;
        if (now >= t_hard || (e2e && now >= t_end && inflight == 0))
            break;
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct conn *c = NULL;
            long code = 0;
            bool in_window;
            bool resend = false;

            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c);
            curl_multi_remove_handle(m, c->h);
            c->busy = false;
            inflight--;
            now = bench_now_us();
            in_window = e2e || (now >= t_warm && now <= t_end);
            if (msg->data.result != CURLE_OK) {
                k.transport++;
                count_status(&k, 0);
                if (k.transport <= 3)
                    fprintf(stderr, "txload: %s\n", curl_easy_strerror(msg->data.result));
                resend = e2e;
            }
            else {
                curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
                count_status(&k, code);
                if (code / 100 == 2 && in_window) {
                    k.ok++;
                    bench_lat_add(&lat, now - c->t_start);
                    bytes_sum += (long) c->body.len;
                    bytes_n++;
                    if (e2e) {
                        char id[UPLOAD_ID_N + 1];

                        if (o->done_key != NULL)
                            idlist_add(&idl, "00000000-0000-0000-0000-000000000000", o->records);
                        else if (find_upload_id(&c->resp, id) == 0)
                            idlist_add(&idl, id, o->records);
                        else
                            bench_die(PROG, "answer", "2xx without upload_id");
                    }
                }
                else if (code / 100 == 2) {
                    k.outside++;
                }
                else {
                    if (in_window)
                        k.non2xx++;
                    resend = e2e && (code == 429 || code == 503);
                    if (k.non2xx <= 3 && !resend)
                        fprintf(stderr, "txload: HTTP %ld: %.300s\n", code,
                                c->resp.data != NULL ? c->resp.data : "");
                }
            }
            if (resend && sending) {
                k.retries++;
                bench_sleep_ms(50);
                /* The same upload again: a new body and a new upload (nothing was stored). */
                conn_issue(m, c, o, seq++);
                inflight++;
            }
            else if (sending && (!e2e || issued < o->uploads) &&
                     (o->max_requests == 0 || issued < o->max_requests)) {
                conn_issue(m, c, o, seq++);
                issued++;
                inflight++;
            }
        }
        if (e2e && !st.done && inflight == 0 && !sending)
            break;
        curl_multi_poll(m, NULL, 0, inflight > 0 ? 20 : 100, NULL);
    }
    if (!e2e && !watch_started)
        bench_watch_start(st.watch);
    bench_watch_stop(st.watch);
    st.stop = 1;
    pthread_join(th, NULL);

    {
        double window_s =
            e2e ? (double) (bench_now_us() - t0) / 1e6 : (double) (t_end - t_warm) / 1e6;
        double cpu = self_cpu() - cpu0;
        double records = (double) k.ok * o->records;
        json_t *w = bench_watch_json(st.watch, e2e ? (double) st.target : records);

        outj = json_pack("{s:s,s:s,s:i,s:i,s:f,s:I,s:I,s:I,s:I,s:f,s:f,s:o,s:o,s:o,s:f}", "mode",
                         o->mode, "url", o->url, "conc", o->conc, "records_per_upload", o->records,
                         "window_s", window_s, "ok", (json_int_t) k.ok, "non2xx",
                         (json_int_t) k.non2xx, "transport_errors", (json_int_t) k.transport,
                         "outside_window", (json_int_t) k.outside, "body_bytes_avg",
                         bytes_n > 0 ? (double) bytes_sum / (double) bytes_n : 0.0, "client_cpu_s",
                         cpu, "statuses", k.statuses, "lat_ms", bench_lat_json(&lat), "watch", w,
                         "load_avg_1m", st.watch->load1[0]);
        if (!e2e) {
            json_object_set_new(outj, "uploads_per_s",
                                json_real(window_s > 0 ? (double) k.ok / window_s : 0));
            json_object_set_new(outj, "records_per_s",
                                json_real(window_s > 0 ? records / window_s : 0));
        }
        else {
            double up_s = idl.n > 0 ? (double) (idl.t_last_accept_us - t0) / 1e6 : 0;
            double ps_s = st.t_ps_us ? (double) (st.t_ps_us - t0) / 1e6 : 0;
            double em_s = st.t_email_us ? (double) (st.t_email_us - t0) / 1e6 : 0;
            double p_s = st.t_persisted_us ? (double) (st.t_persisted_us - t0) / 1e6 : 0;
            double s_s = st.t_scored_us ? (double) (st.t_scored_us - t0) / 1e6 : 0;
            double n = (double) st.target;

            json_object_set_new(
                outj, "e2e",
                json_pack(
                    "{s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:b,s:b,s:I,s:I,"
                    "s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I},s:{s:I,s:I,s:I},s:s,s:o}",
                    "uploads", (json_int_t) idl.n, "records", (json_int_t) st.target, "retries",
                    (json_int_t) k.retries, "upload_s", up_s, "upload_records_per_s",
                    up_s > 0 ? n / up_s : 0.0, "persisted_s", p_s, "scored_s", s_s,
                    "persisted_scored_s", ps_s, "emailed_s", em_s, "persisted_records_per_s",
                    p_s > 0 ? n / p_s : 0.0, "persisted_scored_records_per_s",
                    ps_s > 0 ? n / ps_s : 0.0, "emailed_records_per_s", em_s > 0 ? n / em_s : 0.0,
                    "timeout_s", o->timeout_s, "complete_persisted_scored", st.t_ps_us != 0,
                    "complete_emailed", st.t_email_us != 0, "persisted", (json_int_t) st.persisted,
                    "scored", (json_int_t) st.scored, "flagged", (json_int_t) st.flagged, "emailed",
                    (json_int_t) st.emailed, "email_failed", (json_int_t) st.email_failed,
                    "accepted_records", (json_int_t) idl.accepted_records, "queue_start", QUEUES[0],
                    (json_int_t) st.qstart[0], QUEUES[1], (json_int_t) st.qstart[1], QUEUES[2],
                    (json_int_t) st.qstart[2], "queue_max", QUEUES[0], (json_int_t) st.qmax[0],
                    QUEUES[1], (json_int_t) st.qmax[1], QUEUES[2], (json_int_t) st.qmax[2],
                    "last_error", st.last_error, "timeline", st.timeline));
            st.timeline = NULL;
            json_object_set_new(outj, "upload_ids_first_last",
                                idl.n > 0 ? json_pack("[s,s]", idl.ids[0], idl.ids[idl.n - 1])
                                          : json_array());
        }
    }
    bench_json_print(outj);
    if (e2e && o->ids_out != NULL) {
        FILE *f = fopen(o->ids_out, "w");

        if (f == NULL)
            bench_die(PROG, o->ids_out, "cannot write");
        for (size_t i = 0; i < idl.n; i++)
            fprintf(f, "%s\n", idl.ids[i]);
        fclose(f);
    }

    {
        int rc = 0;

        if (e2e)
            rc = (st.t_ps_us != 0 && (o->no_email || st.t_email_us != 0)) ? 0 : 3;
        else
            rc = k.ok > 0 ? 0 : 3;
        for (int i = 0; i < o->conc; i++) {
            if (conns[i].busy)
                curl_multi_remove_handle(m, conns[i].h);
            conn_cleanup(&conns[i]);
        }
        free(conns);
        curl_multi_cleanup(m);
        curl_slist_free_all(hdrs);
        bench_lat_cleanup(&lat);
        json_decref(st.timeline);
        free(idl.ids);
        return rc;
    }
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "url", required_argument, NULL, 'u' },
        { "conc", required_argument, NULL, 'c' },
        { "records", required_argument, NULL, 'r' },
        { "duration", required_argument, NULL, 'd' },
        { "warmup", required_argument, NULL, 'w' },
        { "max", required_argument, NULL, 'm' },
        { "uploads", required_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 't' },
        { "tag", required_argument, NULL, 'g' },
        { "api-key", required_argument, NULL, 'k' },
        { "watch", required_argument, NULL, 'W' },
        { "no-email", no_argument, NULL, 'E' },
        { "done-redis", required_argument, NULL, 'R' },
        { "done-key", required_argument, NULL, 'K' },
        { "ids-out", required_argument, NULL, 'I' },
        { "min-ok", required_argument, NULL, 'M' },
        { NULL, 0, NULL, 0 },
    };
    struct opts o = {
        .conc = 1, .records = 1, .duration_s = 5, .warmup_s = 0.5, .timeout_s = 120, .tag = "bench"
    };
    int ch;

    if (argc < 2)
        usage();
    o.mode = argv[1];
    if (strcmp(o.mode, "http") != 0 && strcmp(o.mode, "e2e") != 0)
        usage();
    o.api_key = getenv("TX_API_KEY") != NULL ? getenv("TX_API_KEY") : "";
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'u':
            o.url = optarg;
            break;
        case 'c':
            o.conc = atoi(optarg);
            break;
        case 'r':
            o.records = atoi(optarg);
            break;
        case 'd':
            o.duration_s = atof(optarg);
            break;
        case 'w':
            o.warmup_s = atof(optarg);
            break;
        case 'm':
            o.max_requests = atol(optarg);
            break;
        case 'n':
            o.uploads = atol(optarg);
            break;
        case 't':
            o.timeout_s = atof(optarg);
            break;
        case 'g':
            o.tag = optarg;
            break;
        case 'k':
            o.api_key = optarg;
            break;
        case 'W':
            if (bench_watch_add(&g_watch, optarg) != 0)
                bench_die(PROG, "--watch", optarg);
            break;
        case 'E':
            o.no_email = true;
            break;
        case 'I':
            o.ids_out = optarg;
            break;
        case 'M':
            o.min_ok = atol(optarg);
            break;
        case 'R':
            o.done_redis = optarg;
            break;
        case 'K':
            o.done_key = optarg;
            o.no_email = true;
            break;
        default:
            usage();
        }
    }
    if (o.url == NULL || o.conc < 1 || o.conc > 1024 || o.records < 1 || o.records > 100000 ||
        o.duration_s <= 0 || o.duration_s > 600 || o.warmup_s < 0 || o.timeout_s <= 0 ||
        o.timeout_s > 1800 || (strcmp(o.mode, "e2e") == 0 && o.uploads < 1) ||
        ((o.done_key == NULL) != (o.done_redis == NULL)))
        usage();
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return run(&o);
}
