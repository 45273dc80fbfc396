/*
 * txceiling: the ceilings of ci/bench, measured without HTTP and without txpipe's daemons.
 *
 *   txceiling deps --conc N --records R [--duration S] [--warmup S] [--head] --amqp-url URL
 *                  [--exchange X] [--tag T] [--ttl S] [--watch SPEC]...
 *       The raw dependency work of one upload, in N threads for S seconds: S3 PUT of the upload's
 *       bytes (storage/s3, shared client, like the gateway), one Redis pipeline of R
 *       "SET txbench:client:<id> <summary> EX <ttl>" (storage/cache, a connection per thread;
 *       --ttl, default 60 like the gateway's summaries), and R persistent
 *       confirmed publishes with the mandatory flag to exchange X with routing key
 *       transaction.received (storage/queue, a publisher per thread), the events being real
 *       transaction.received events of the upload's records. --head adds the gateway's S3 HEAD
 *       before the PUT. Reads TX_S3_*, TX_REDIS_URL.
 *
 *   txceiling broker --count N [--per-call R] --amqp-url URL [--prefetch P]
 *       Broker ceiling: one thread publishes N messages (a transaction.received event each, the
 *       size the gateway sends) with confirms, R per call, to a new quorum queue while another
 *       consumes and acks them (storage/queue consumer loop); the rate is N over the time from
 *       the first publish to the last delivery handled. The queue is created and deleted through
 *       the management API (TX_RABBIT_MGMT_URL) in the vhost of URL.
 *
 *   txceiling smtp --count N [--conns K] [--tag T]
 *       The SMTP sink (TX_SMTP_URL): N messages of the size of a txnotify receipt (about 2.5 KB,
 *       multipart text + HTML), sent by K threads, each over one reused connection (libcurl), to
 *       "<tag>-<i>@example.com". Tells a serial sender's limit from the sink's own.
 *
 *   txceiling pg --rows N [--batch B]
 *       PostgreSQL (TX_PG_DSN) into a temporary table created LIKE transactions INCLUDING ALL
 *       (same columns, checks and indexes; temporary tables write no WAL): COPY in batches of B,
 *       a batched upsert (INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE) of B rows
 *       per statement, and txpersist's pattern (COPY into a staging table, then one INSERT ...
 *       SELECT ... ON CONFLICT per batch). One transaction per batch. Rows per second of each.
 *
 * Each mode prints one JSON line. Everything talks to the local stack (127.0.0.1).
 */
#include "bench/bench_util.h"

#include "common/tx_buf.h"
#include "common/tx_event.h"
#include "common/tx_id.h"
#include "common/tx_record.h"
#include "common/tx_time.h"
#include "storage/cache.h"
#include "storage/db.h"
#include "storage/queue.h"
#include "storage/s3.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG    "txceiling"
#define LAT_CAP (1u << 20)

struct opts {
    const char *mode;
    int conc;
    int records;
    double duration_s;
    double warmup_s;
    bool head;
    const char *amqp_url;
    const char *exchange;
    const char *tag;
    long count;
    int per_call;
    int prefetch;
    long rows;
    int batch;
    int conns;
    int ttl_s;
};

static struct bench_watch g_watch;

static void usage(void)
{
    fprintf(stderr,
            "usage: txceiling deps --conc N --records R [--duration S] [--warmup S] [--head] "
            "--amqp-url URL [--exchange X] [--tag T] [--ttl S] [--watch SPEC]...\n"
            "       txceiling broker --count N [--per-call R] --amqp-url URL [--prefetch P]\n"
            "       txceiling smtp --count N [--conns K] [--tag T]\n"
            "       txceiling pg --rows N [--batch B]\n");
    exit(2);
}

/* Events of one upload: every record's transaction.received body, back to back. */
struct events {
    struct tx_buf buf;
    size_t *off; /* n + 1 offsets */
    size_t n;
};

/* Builds the events of an upload of `records` records like the gateway encodes them. */
static void events_make(struct events *ev, const char *tag, int records)
{
    struct tx_buf body;
    struct tx_batch *b = NULL;
    struct tx_err err = { 0 };
    char up[TX_UUID_STR_LEN + 1];
    char sha[TX_SHA256_HEX_LEN + 1];
    char object[96];
    struct tx_event_head h = { 0 };

    tx_buf_init(&body, 64u << 20);
    if (bench_body_make(&body, tag, 0, records) != 0 ||
        tx_batch_parse(body.data, body.len, TX_FORMAT_JSON, NULL, &b, &err) != 0)
        bench_die(PROG, "events", err.msg[0] ? err.msg : "cannot build a body");
    tx_uuid7_make(tx_time_now_ms(), up);
    tx_sha256_hex(body.data, body.len, sha);
    snprintf(object, sizeof(object), "raw/2026/01/01/%s.json", up);
    h.upload_id = up;
    h.object = object;
    h.received_ms = tx_time_now_ms();
    h.records = b->nrecords;
    h.sha256 = sha;
    tx_buf_init(&ev->buf, 256u << 20);
    ev->n = b->nrecords;
    ev->off = calloc(ev->n + 1, sizeof(*ev->off));
    for (size_t i = 0; i < b->nrecords; i++) {
        h.index = i;
        ev->off[i] = ev->buf.len;
        if (tx_event_encode_tx(&h, &b->records[i], NULL, &ev->buf) != 0)
            bench_die(PROG, "events", "encode");
    }
    ev->off[ev->n] = ev->buf.len;
    tx_batch_destroy(b);
    tx_buf_cleanup(&body);
}

static void events_cleanup(struct events *ev)
{
    tx_buf_cleanup(&ev->buf);
    free(ev->off);
}

/* ---- deps ---------------------------------------------------------------------------------- */

struct deps_shared {
    const struct opts *o;
    struct s3_client *s3;
    int64_t t_warm;
    int64_t t_end;
    atomic_long seq;
};

struct deps_worker {
    struct deps_shared *sh;
    pthread_t th;
    int id;
    long ok;
    long failed;
    double s3_us, redis_us, pub_us;
    struct bench_lat lat;
    char first_error[300];
};

static void deps_fail(struct deps_worker *w, const char *what, const struct tx_err *err)
{
    if (w->failed++ == 0)
        snprintf(w->first_error, sizeof(w->first_error), "%s: %s", what, err->msg);
}

static void *deps_work(void *arg)
{
    struct deps_worker *w = arg;
    const struct opts *o = w->sh->o;
    struct tx_err err = { 0 };
    struct queue_config qc = {
        .url = o->amqp_url, .name = "txceiling", .window = 256, .confirm_timeout_ms = 10000
    };
    struct cache_conn *redis = cache_conn_create(getenv("TX_REDIS_URL"), 5000, &err);
    struct queue_publisher *pub = queue_publisher_create(&qc, &err);
    struct events ev;
    struct queue_msg *msgs = calloc((size_t) o->records, sizeof(*msgs));
    char(*ids)[TX_EVENT_ID_MAX + 1] = calloc((size_t) o->records, sizeof(*ids));
    struct cache_kv *kv = calloc((size_t) o->records, sizeof(*kv));
    char(*keys)[128] = calloc((size_t) o->records, sizeof(*keys));
    struct tx_buf body;
    struct tx_buf vals;
    size_t *voff = calloc((size_t) o->records + 1, sizeof(*voff));

    if (redis == NULL || pub == NULL || msgs == NULL || ids == NULL || kv == NULL || keys == NULL ||
        voff == NULL)
        bench_die(PROG, "worker", err.msg[0] ? err.msg : "out of memory");
    events_make(&ev, o->tag, o->records);
    tx_buf_init(&body, 64u << 20);
    tx_buf_init(&vals, 256u << 20);
    while (bench_now_us() < w->sh->t_end) {
        long seq = atomic_fetch_add(&w->sh->seq, 1);
        char up[TX_UUID_STR_LEN + 1];
        char sha[TX_SHA256_HEX_LEN + 1];
        char key[160];
        struct s3_meta meta = { .records = o->records, .content_type = "application/json" };
        int64_t t0 = bench_now_us();
        int64_t t1, t2, t3;
        bool in_window;

        tx_buf_reset(&body);
        tx_buf_reset(&vals);
        bench_body_make(&body, o->tag, (unsigned long) seq + 1000000000UL, o->records);
        tx_uuid7_make(tx_time_now_ms(), up);
        tx_sha256_hex(body.data, body.len, sha);
        meta.sha256_hex = sha;
        snprintf(key, sizeof(key), "bench/%s/%s.json", o->tag, up);
        if (o->head) {
            int rc = s3_object_head(w->sh->s3, key, NULL, &err);

            if (rc != TX_ENOTFOUND) {
                deps_fail(w, "s3 head", &err);
                continue;
            }
        }
        if (s3_object_put(w->sh->s3, key, body.data, body.len, &meta, &err) != 0) {
            deps_fail(w, "s3 put", &err);
            continue;
        }
        t1 = bench_now_us();
        for (int i = 0; i < o->records; i++) {
            snprintf(keys[i], sizeof(keys[i]), "txbench:client:%s-%ld-%d", o->tag, seq, i);
            voff[i] = vals.len;
            tx_buf_printf(&vals,
                          "{\"_id\":\"%s-%ld-%d\",\"record\":%.*s,\"count\":1,"
                          "\"last_upload_id\":\"%s\",\"last_index\":%d,"
                          "\"updated_at\":\"2026-01-01T00:00:00.000Z\"}",
                          o->tag, seq, i, 230, ev.buf.data + ev.off[i], up, i);
        }
        voff[o->records] = vals.len;
        for (int i = 0; i < o->records; i++) {
            kv[i].key = keys[i];
            kv[i].val = vals.data + voff[i];
            kv[i].len = voff[i + 1] - voff[i];
        }
        if (cache_set_many(redis, kv, (size_t) o->records, o->ttl_s, &err) != 0) {
            deps_fail(w, "redis", &err);
            continue;
        }
        t2 = bench_now_us();
        for (int i = 0; i < o->records; i++) {
            tx_event_id_format(up, (size_t) i, ids[i]);
            msgs[i].routing_key = "transaction.received";
            msgs[i].message_id = ids[i];
            msgs[i].correlation_id = up;
            msgs[i].body = ev.buf.data + ev.off[i];
            msgs[i].len = ev.off[i + 1] - ev.off[i];
        }
        if (queue_publish_confirmed(pub, o->exchange, msgs, (size_t) o->records, &err) != 0) {
            deps_fail(w, "publish", &err);
            continue;
        }
        t3 = bench_now_us();
        in_window = t3 >= w->sh->t_warm && t3 <= w->sh->t_end;
        if (in_window) {
            w->ok++;
            w->s3_us += (double) (t1 - t0);
            w->redis_us += (double) (t2 - t1);
            w->pub_us += (double) (t3 - t2);
            bench_lat_add(&w->lat, t3 - t0);
        }
    }
    tx_buf_cleanup(&body);
    tx_buf_cleanup(&vals);
    events_cleanup(&ev);
    free(msgs);
    free(ids);
    free(kv);
    free(keys);
    free(voff);
    queue_publisher_destroy(pub);
    cache_conn_destroy(redis);
    return NULL;
}

static int run_deps(const struct opts *o)
{
    struct s3_config sc = { .endpoint = bench_need_env(PROG, "TX_S3_ENDPOINT"),
                            .access_key = bench_need_env(PROG, "TX_S3_ACCESS_KEY"),
                            .secret_key = bench_need_env(PROG, "TX_S3_SECRET_KEY"),
                            .bucket = bench_need_env(PROG, "TX_S3_BUCKET"),
                            .region = getenv("TX_S3_REGION"),
                            .signature = 2,
                            .timeout_ms = 10000 };
    struct tx_err err = { 0 };
    struct deps_shared sh = { .o = o };
    struct deps_worker *w = calloc((size_t) o->conc, sizeof(*w));
    struct bench_lat all;
    long ok = 0;
    long failed = 0;
    double s3 = 0, redis = 0, pub = 0;
    const char *first_error = "";
    double window;
    json_t *out;

    bench_need_env(PROG, "TX_REDIS_URL");
    sh.s3 = s3_client_create(&sc, &err);
    if (sh.s3 == NULL || w == NULL)
        bench_die(PROG, "s3", err.msg);
    sh.t_warm = bench_now_us() + (int64_t) (o->warmup_s * 1e6);
    sh.t_end = sh.t_warm + (int64_t) (o->duration_s * 1e6);
    for (int i = 0; i < o->conc; i++) {
        w[i].sh = &sh;
        w[i].id = i;
        bench_lat_init(&w[i].lat, LAT_CAP / (size_t) o->conc + 1024);
        if (pthread_create(&w[i].th, NULL, deps_work, &w[i]) != 0)
            bench_die(PROG, "thread", "cannot create");
    }
    while (bench_now_us() < sh.t_warm)
        bench_sleep_ms(20);
    bench_watch_start(&g_watch);
    while (bench_now_us() < sh.t_end) {
        bench_watch_sample(&g_watch);
        bench_sleep_ms(200);
    }
    bench_watch_stop(&g_watch);
    bench_lat_init(&all, LAT_CAP);
    for (int i = 0; i < o->conc; i++) {
        pthread_join(w[i].th, NULL);
        ok += w[i].ok;
        failed += w[i].failed;
        s3 += w[i].s3_us;
        redis += w[i].redis_us;
        pub += w[i].pub_us;
        if (first_error[0] == '\0' && w[i].first_error[0] != '\0')
            first_error = w[i].first_error;
        for (size_t j = 0; j < w[i].lat.n; j++)
            bench_lat_add(&all, w[i].lat.us[j]);
    }
    window = (double) (sh.t_end - sh.t_warm) / 1e6;
    out = json_pack(
        "{s:s,s:i,s:i,s:b,s:f,s:I,s:I,s:f,s:f,s:o,s:{s:f,s:f,s:f},s:s,s:o}", "mode", "deps", "conc",
        o->conc, "records_per_upload", o->records, "head", o->head, "window_s", window, "ok",
        (json_int_t) ok, "failed", (json_int_t) failed, "uploads_per_s", (double) ok / window,
        "records_per_s", (double) ok * o->records / window, "lat_ms", bench_lat_json(&all),
        "steps_mean_ms", "s3", ok ? s3 / (double) ok / 1000 : 0.0, "redis",
        ok ? redis / (double) ok / 1000 : 0.0, "publish", ok ? pub / (double) ok / 1000 : 0.0,
        "first_error", first_error, "watch", bench_watch_json(&g_watch, (double) ok * o->records));
    bench_json_print(out);
    for (int i = 0; i < o->conc; i++)
        bench_lat_cleanup(&w[i].lat);
    bench_lat_cleanup(&all);
    free(w);
    s3_client_destroy(sh.s3);
    return ok > 0 && failed == 0 ? 0 : 3;
}

/* ---- broker -------------------------------------------------------------------------------- */

struct broker_consume {
    long want;
    atomic_long got;
    int64_t t_last_us;
    volatile sig_atomic_t stop;
};

static enum queue_disposition broker_count(void *ctx, const struct queue_delivery *d)
{
    struct broker_consume *c = ctx;

    (void) d;
    if (atomic_fetch_add(&c->got, 1) + 1 >= c->want) {
        c->t_last_us = bench_now_us();
        c->stop = 1;
    }
    return QUEUE_ACK;
}

struct broker_run {
    struct queue_consumer *cons;
    struct broker_consume *cc;
    int rc;
    struct tx_err err;
};

static void *broker_consumer(void *arg)
{
    struct broker_run *r = arg;

    r->rc = queue_consumer_run(r->cons, broker_count, r->cc, &r->cc->stop, &r->err);
    return NULL;
}

/* The vhost of an amqp URL, percent-encoded as the management API wants it ("%2F" for "/"). */
static void url_vhost(const char *url, char *out, size_t len)
{
    const char *p = strstr(url, "://");
    const char *slash = p != NULL ? strchr(p + 3, '/') : NULL;

    if (slash == NULL || slash[1] == '\0' || strcmp(slash + 1, "%2f") == 0 ||
        strcmp(slash + 1, "%2F") == 0)
        snprintf(out, len, "%%2F");
    else
        snprintf(out, len, "%s", slash + 1);
}

static int run_broker(const struct opts *o)
{
    struct queue_config qc = {
        .url = o->amqp_url, .name = "txceiling-broker", .window = 256, .confirm_timeout_ms = 30000
    };
    struct tx_err err = { 0 };
    struct queue_publisher *pub = NULL;
    struct broker_consume cc = { .want = o->count };
    struct broker_run br = { .cc = &cc };
    struct events ev;
    struct queue_msg *msgs = calloc((size_t) o->per_call, sizeof(*msgs));
    char vhost[256];
    char path[512];
    char queue[96];
    pthread_t th;
    int64_t t0, t_pub = 0, deadline;
    long sent = 0;
    json_t *out;
    int rc = 0;

    url_vhost(o->amqp_url, vhost, sizeof(vhost));
    snprintf(queue, sizeof(queue), "txbench.broker.%d", (int) getpid());
    snprintf(path, sizeof(path), "/api/queues/%s/%s", vhost, queue);
    if (bench_mgmt("PUT", path, "{\"durable\":true,\"arguments\":{\"x-queue-type\":\"quorum\"}}",
                   NULL) /
            100 !=
        2)
        bench_die(PROG, "broker", "cannot declare the queue (management API)");
    events_make(&ev, "brokerbench", 1);
    pub = queue_publisher_create(&qc, &err);
    br.cons = queue_consumer_create(&qc, queue, (unsigned) o->prefetch, &err);
    if (pub == NULL || br.cons == NULL || msgs == NULL)
        bench_die(PROG, "broker", err.msg);
    for (int i = 0; i < o->per_call; i++) {
        msgs[i].routing_key = queue;
        msgs[i].body = ev.buf.data;
        msgs[i].len = ev.off[1];
    }
    /* Connect the publisher before the clock starts. */
    if (queue_publisher_ping(pub, &err) != 0)
        bench_die(PROG, "broker", err.msg);
    bench_watch_start(&g_watch);
    t0 = bench_now_us();
    if (pthread_create(&th, NULL, broker_consumer, &br) != 0)
        bench_die(PROG, "thread", "cannot create");
    while (sent < o->count) {
        size_t k = (size_t) (o->count - sent < o->per_call ? o->count - sent : o->per_call);

        if (queue_publish_confirmed(pub, "", msgs, k, &err) != 0) {
            fprintf(stderr, "%s: publish: %s\n", PROG, err.msg);
            rc = 3;
            break;
        }
        sent += (long) k;
    }
    t_pub = bench_now_us();
    deadline = t_pub + 120000000;
    while (!cc.stop && bench_now_us() < deadline && rc == 0) {
        bench_watch_sample(&g_watch);
        bench_sleep_ms(20);
    }
    if (!cc.stop) {
        rc = 3;
        cc.stop = 1;
    }
    bench_watch_stop(&g_watch);
    pthread_join(th, NULL);
    {
        double total = cc.t_last_us > 0 ? (double) (cc.t_last_us - t0) / 1e6 : 0;
        double pub_s = (double) (t_pub - t0) / 1e6;

        out = json_pack("{s:s,s:I,s:I,s:i,s:i,s:f,s:f,s:f,s:f,s:I,s:o}", "mode", "broker", "count",
                        (json_int_t) o->count, "message_bytes", (json_int_t) ev.off[1], "per_call",
                        o->per_call, "prefetch", o->prefetch, "publish_s", pub_s, "total_s", total,
                        "publish_msgs_per_s", pub_s > 0 ? (double) sent / pub_s : 0.0, "msgs_per_s",
                        total > 0 ? (double) o->count / total : 0.0, "consumed",
                        (json_int_t) atomic_load(&cc.got), "watch",
                        bench_watch_json(&g_watch, (double) o->count));
    }
    bench_json_print(out);
    bench_mgmt("DELETE", path, NULL, NULL);
    queue_consumer_destroy(br.cons);
    queue_publisher_destroy(pub);
    events_cleanup(&ev);
    free(msgs);
    return rc;
}

/* ---- smtp ---------------------------------------------------------------------------------- */

struct smtp_worker {
    const struct opts *o;
    pthread_t th;
    int id;
    long count;
    long ok;
    char first_error[256];
    struct bench_lat lat;
};

struct smtp_read {
    const char *data;
    size_t len;
    size_t off;
};

static size_t smtp_source(char *buf, size_t size, size_t n, void *ud)
{
    struct smtp_read *r = ud;
    size_t k = r->len - r->off < size * n ? r->len - r->off : size * n;

    memcpy(buf, r->data + r->off, k);
    r->off += k;
    return k;
}

/* A receipt-sized MIME message (text and HTML alternatives, quoted-printable). */
static void smtp_message(struct tx_buf *b, const char *to, long i)
{
    tx_buf_printf(b,
                  "From: txpipe <no-reply@txpipe.local>\r\nTo: <%s>\r\n"
                  "Subject: Recibo da sua transacao %s\r\n"
                  "Message-ID: <bench-%ld-%s>\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: multipart/alternative; boundary=bench-boundary\r\n\r\n"
                  "--bench-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                  to, to, i, to);
    for (int k = 0; k < 8; k++)
        tx_buf_puts(b, "Recebemos a sua transa=C3=A7=C3=A3o; data 2024-03-11T12:00:00 +00:00, "
                       "endere=C3=A7o Cidade A, Estado A, 1000.\r\n");
    tx_buf_puts(b, "--bench-boundary\r\nContent-Type: text/html; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: quoted-printable\r\n\r\n<html><body>");
    for (int k = 0; k < 8; k++)
        tx_buf_puts(b, "<p>Recebemos a sua transa=C3=A7=C3=A3o; data 2024-03-11T12:00:00 "
                       "+00:00.</p>\r\n");
    tx_buf_puts(b, "</body></html>\r\n--bench-boundary--\r\n");
}

static void *smtp_work(void *arg)
{
    struct smtp_worker *w = arg;
    CURL *h = curl_easy_init();
    struct tx_buf msg;

    tx_buf_init(&msg, 1u << 20);
    curl_easy_setopt(h, CURLOPT_URL, getenv("TX_SMTP_URL"));
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, "<no-reply@txpipe.local>");
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, smtp_source);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    for (long i = 0; i < w->count; i++) {
        char to[160];
        struct curl_slist *rcpt;
        struct smtp_read rd = { 0 };
        int64_t t0 = bench_now_us();
        CURLcode rc;

        snprintf(to, sizeof(to), "%s-%d-%ld@example.com", w->o->tag, w->id, i);
        tx_buf_reset(&msg);
        smtp_message(&msg, to, i);
        rd.data = msg.data;
        rd.len = msg.len;
        rcpt = curl_slist_append(NULL, to);
        curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(h, CURLOPT_READDATA, &rd);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) msg.len);
        rc = curl_easy_perform(h);
        curl_slist_free_all(rcpt);
        if (rc == CURLE_OK) {
            w->ok++;
            bench_lat_add(&w->lat, bench_now_us() - t0);
        }
        else if (w->first_error[0] == '\0') {
            snprintf(w->first_error, sizeof(w->first_error), "%s", curl_easy_strerror(rc));
        }
    }
    tx_buf_cleanup(&msg);
    curl_easy_cleanup(h);
    return NULL;
}

static int run_smtp(const struct opts *o)
{
    struct smtp_worker *w = calloc((size_t) o->conns, sizeof(*w));
    struct bench_lat all;
    long ok = 0;
    const char *first_error = "";
    int64_t t0;
    double secs;

    bench_need_env(PROG, "TX_SMTP_URL");
    if (w == NULL)
        bench_die(PROG, "smtp", "out of memory");
    bench_watch_start(&g_watch);
    t0 = bench_now_us();
    for (int i = 0; i < o->conns; i++) {
        w[i].o = o;
        w[i].id = i;
        w[i].count = o->count / o->conns + (i < o->count % o->conns ? 1 : 0);
        bench_lat_init(&w[i].lat, (size_t) w[i].count + 1);
        if (pthread_create(&w[i].th, NULL, smtp_work, &w[i]) != 0)
            bench_die(PROG, "thread", "cannot create");
    }
    bench_lat_init(&all, (size_t) o->count + 1);
    for (int i = 0; i < o->conns; i++) {
        pthread_join(w[i].th, NULL);
        ok += w[i].ok;
        if (first_error[0] == '\0' && w[i].first_error[0] != '\0')
            first_error = w[i].first_error;
        for (size_t j = 0; j < w[i].lat.n; j++)
            bench_lat_add(&all, w[i].lat.us[j]);
    }
    secs = (double) (bench_now_us() - t0) / 1e6;
    bench_watch_stop(&g_watch);
    bench_json_print(json_pack("{s:s,s:I,s:i,s:I,s:f,s:f,s:o,s:s,s:o}", "mode", "smtp", "count",
                               (json_int_t) o->count, "conns", o->conns, "sent", (json_int_t) ok,
                               "seconds", secs, "msgs_per_s", (double) ok / secs, "lat_ms",
                               bench_lat_json(&all), "first_error", first_error, "watch",
                               bench_watch_json(&g_watch, (double) ok)));
    for (int i = 0; i < o->conns; i++)
        bench_lat_cleanup(&w[i].lat);
    bench_lat_cleanup(&all);
    free(w);
    return ok == o->count ? 0 : 3;
}

/* ---- pg ------------------------------------------------------------------------------------ */

#define PG_COLS                                                                      \
    "event_id, upload_id, idx, client_id, cliente, email, endereco, datatrasancao, " \
    "datatrasancao_at, is_active, raw, received_at"

/* Row i of upload up as COPY text (12 columns). */
static void pg_row_copy(struct tx_buf *b, const char *up, long i)
{
    tx_buf_printf(b,
                  "%s:%ld\t%s\t%ld\tpg-%ld\tCliente pg-%ld\tpg-%ld@example.com\tCidade A, Estado "
                  "A, %ld\t2024-03-11T12:00:00 +00:00\t2024-03-11 12:00:00+00\tt\t{\"_id\": "
                  "\"pg-%ld\", \"isActive\": true, \"cliente\": \"Cliente pg-%ld\", \"email\": "
                  "\"pg-%ld@example.com\", \"endereco\": \"Cidade A, Estado A, %ld\", "
                  "\"datatrasancao\": \"2024-03-11T12:00:00 +00:00\"}\t2026-01-01 00:00:00+00\n",
                  up, i, up, i, i, i, i, 1000 + i % 9000, i, i, i, 1000 + i % 9000);
}

/* Appends s as one element of a PostgreSQL array literal (quoted, \ and " escaped). */
static void arr_elem(struct tx_buf *b, bool first, const char *s)
{
    tx_buf_puts(b, first ? "{\"" : ",\"");
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            tx_buf_append(b, "\\", 1);
        tx_buf_append(b, s, 1);
    }
    tx_buf_puts(b, "\"");
}

static double pg_exec_timed(struct db_conn *db, const char *sql, const char *const *params, int n)
{
    struct tx_err err = { 0 };
    int64_t t0 = bench_now_us();

    if (db_exec(db, sql, params, n, &err) != 0)
        bench_die(PROG, "postgres", err.msg);
    return (double) (bench_now_us() - t0);
}

static int run_pg(const struct opts *o)
{
    struct tx_err err = { 0 };
    struct db_conn *db = db_conn_create(bench_need_env(PROG, "TX_PG_DSN"), 10000, &err);
    char up[TX_UUID_STR_LEN + 1];
    struct tx_buf data;
    struct tx_buf arr[12];
    double copy_us = 0, upsert_us = 0, stage_us = 0;
    long long rows = 0;
    json_t *out;

    if (db == NULL)
        bench_die(PROG, "postgres", err.msg);
    tx_buf_init(&data, 512u << 20);
    for (int c = 0; c < 12; c++)
        tx_buf_init(&arr[c], 256u << 20);
    pg_exec_timed(db,
                  "CREATE TEMP TABLE bench_tx (LIKE transactions INCLUDING ALL); "
                  "CREATE TEMP TABLE bench_stage (LIKE transactions INCLUDING DEFAULTS) "
                  "ON COMMIT DELETE ROWS",
                  NULL, 0);
    bench_watch_start(&g_watch);

    /* (a) COPY, one transaction per batch. */
    tx_uuid7_make(tx_time_now_ms(), up);
    for (long i = 0; i < o->rows; i += o->batch) {
        long n = o->rows - i < o->batch ? o->rows - i : o->batch;
        int64_t t0;

        tx_buf_reset(&data);
        for (long j = i; j < i + n; j++)
            pg_row_copy(&data, up, j);
        t0 = bench_now_us();
        if (db_copy_in(db, "BEGIN; COPY bench_tx (" PG_COLS ") FROM STDIN", data.data, data.len,
                       &rows, &err) != 0 ||
            db_exec(db, "COMMIT", NULL, 0, &err) != 0)
            bench_die(PROG, "copy", err.msg);
        copy_us += (double) (bench_now_us() - t0);
    }

    /* (b) batched upsert of new rows: INSERT ... SELECT FROM unnest ... ON CONFLICT. */
    tx_uuid7_make(tx_time_now_ms(), up);
    for (long i = 0; i < o->rows; i += o->batch) {
        long n = o->rows - i < o->batch ? o->rows - i : o->batch;
        const char *p[12];

        for (int c = 0; c < 12; c++)
            tx_buf_reset(&arr[c]);
        for (long j = i; j < i + n; j++) {
            char s[12][400];
            bool first = j == i;

            snprintf(s[0], sizeof(s[0]), "%s:%ld", up, j);
            snprintf(s[1], sizeof(s[1]), "%s", up);
            snprintf(s[2], sizeof(s[2]), "%ld", j);
            snprintf(s[3], sizeof(s[3]), "pg-%ld", j);
            snprintf(s[4], sizeof(s[4]), "Cliente pg-%ld", j);
            snprintf(s[5], sizeof(s[5]), "pg-%ld@example.com", j);
            snprintf(s[6], sizeof(s[6]), "Cidade A, Estado A, %ld", 1000 + j % 9000);
            snprintf(s[7], sizeof(s[7]), "2024-03-11T12:00:00 +00:00");
            snprintf(s[8], sizeof(s[8]), "2024-03-11 12:00:00+00");
            snprintf(s[9], sizeof(s[9]), "t");
            snprintf(s[10], sizeof(s[10]),
                     "{\"_id\": \"pg-%ld\", \"isActive\": true, \"cliente\": \"Cliente pg-%ld\", "
                     "\"email\": \"pg-%ld@example.com\", \"endereco\": \"Cidade A, Estado A, "
                     "%ld\", \"datatrasancao\": \"2024-03-11T12:00:00 +00:00\"}",
                     j, j, j, 1000 + j % 9000);
            snprintf(s[11], sizeof(s[11]), "2026-01-01 00:00:00+00");
            for (int c = 0; c < 12; c++)
                arr_elem(&arr[c], first, s[c]);
        }
        for (int c = 0; c < 12; c++) {
            tx_buf_puts(&arr[c], "}");
            p[c] = arr[c].data;
        }
        upsert_us += pg_exec_timed(
            db,
            "INSERT INTO bench_tx AS t (" PG_COLS ") SELECT * FROM unnest($1::text[], "
            "$2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], "
            "$9::timestamptz[], $10::bool[], $11::jsonb[], $12::timestamptz[]) ON CONFLICT "
            "(event_id) DO UPDATE SET scored_at = now(), flagged = EXCLUDED.flagged, score = "
            "EXCLUDED.score WHERE t.scored_at IS NULL",
            p, 12);
    }

    /* (c) txpersist's pattern: COPY into staging, one INSERT ... SELECT ... ON CONFLICT. */
    tx_uuid7_make(tx_time_now_ms(), up);
    for (long i = 0; i < o->rows; i += o->batch) {
        long n = o->rows - i < o->batch ? o->rows - i : o->batch;
        int64_t t0;

        tx_buf_reset(&data);
        for (long j = i; j < i + n; j++)
            pg_row_copy(&data, up, j);
        t0 = bench_now_us();
        if (db_copy_in(db, "BEGIN; COPY bench_stage (" PG_COLS ") FROM STDIN", data.data, data.len,
                       &rows, &err) != 0 ||
            db_exec(db,
                    "INSERT INTO bench_tx AS t (" PG_COLS ") SELECT " PG_COLS
                    " FROM bench_stage ON CONFLICT (event_id) DO UPDATE SET scored_at = now() "
                    "WHERE t.scored_at IS NULL; COMMIT",
                    NULL, 0, &err) != 0)
            bench_die(PROG, "copy+upsert", err.msg);
        stage_us += (double) (bench_now_us() - t0);
    }
    bench_watch_stop(&g_watch);

    out = json_pack("{s:s,s:I,s:i,s:f,s:f,s:f,s:o}", "mode", "pg", "rows", (json_int_t) o->rows,
                    "batch", o->batch, "copy_rows_per_s", (double) o->rows / (copy_us / 1e6),
                    "upsert_rows_per_s", (double) o->rows / (upsert_us / 1e6),
                    "copy_upsert_rows_per_s", (double) o->rows / (stage_us / 1e6), "watch",
                    bench_watch_json(&g_watch, (double) o->rows * 3));
    bench_json_print(out);
    tx_buf_cleanup(&data);
    for (int c = 0; c < 12; c++)
        tx_buf_cleanup(&arr[c]);
    db_conn_destroy(db); /* drops the temporary tables */
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "conc", required_argument, NULL, 'c' },
        { "records", required_argument, NULL, 'r' },
        { "duration", required_argument, NULL, 'd' },
        { "warmup", required_argument, NULL, 'w' },
        { "head", no_argument, NULL, 'H' },
        { "amqp-url", required_argument, NULL, 'a' },
        { "exchange", required_argument, NULL, 'x' },
        { "tag", required_argument, NULL, 'g' },
        { "count", required_argument, NULL, 'n' },
        { "per-call", required_argument, NULL, 'p' },
        { "prefetch", required_argument, NULL, 'f' },
        { "rows", required_argument, NULL, 'R' },
        { "batch", required_argument, NULL, 'b' },
        { "watch", required_argument, NULL, 'W' },
        { "conns", required_argument, NULL, 'C' },
        { "ttl", required_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 },
    };
    struct opts o = { .conc = 1,
                      .records = 1,
                      .duration_s = 5,
                      .warmup_s = 0.5,
                      .exchange = "tx.events",
                      .tag = "ceil",
                      .count = 20000,
                      .per_call = 100,
                      .prefetch = 256,
                      .rows = 50000,
                      .batch = 500,
                      .conns = 1,
                      .ttl_s = 60 };
    int ch;

    if (argc < 2)
        usage();
    o.mode = argv[1];
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
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
        case 'H':
            o.head = true;
            break;
        case 'a':
            o.amqp_url = optarg;
            break;
        case 'x':
            o.exchange = optarg;
            break;
        case 'g':
            o.tag = optarg;
            break;
        case 'n':
            o.count = atol(optarg);
            break;
        case 'p':
            o.per_call = atoi(optarg);
            break;
        case 'f':
            o.prefetch = atoi(optarg);
            break;
        case 'R':
            o.rows = atol(optarg);
            break;
        case 'b':
            o.batch = atoi(optarg);
            break;
        case 'C':
            o.conns = atoi(optarg);
            break;
        case 'T':
            o.ttl_s = atoi(optarg);
            break;
        case 'W':
            if (bench_watch_add(&g_watch, optarg) != 0)
                bench_die(PROG, "--watch", optarg);
            break;
        default:
            usage();
        }
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(o.mode, "deps") == 0) {
        if (o.amqp_url == NULL || o.conc < 1 || o.conc > 256 || o.records < 1 || o.ttl_s < 1 ||
            o.records > 10000 || o.duration_s <= 0 || o.duration_s > 600 || o.warmup_s < 0)
            usage();
        return run_deps(&o);
    }
    if (strcmp(o.mode, "broker") == 0) {
        if (o.amqp_url == NULL || o.count < 1 || o.per_call < 1 || o.per_call > 100000 ||
            o.prefetch < 1 || o.prefetch > 65535)
            usage();
        return run_broker(&o);
    }
    if (strcmp(o.mode, "smtp") == 0) {
        if (o.count < 1 || o.count > 1000000 || o.conns < 1 || o.conns > 64)
            usage();
        return run_smtp(&o);
    }
    if (strcmp(o.mode, "pg") == 0) {
        if (o.rows < 1 || o.batch < 1 || o.batch > 100000)
            usage();
        return run_pg(&o);
    }
    usage();
}
