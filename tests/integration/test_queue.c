/*
 * Integration tests of storage/queue against the RabbitMQ of `ci/stack`. Starts no server.
 *
 * Needs TX_AMQP_URL (an administrator: the tests declare their own exchanges and queues) and
 * TX_RABBIT_MGMT_URL (the management API, used to declare and delete that temporary topology,
 * purge queues and close connections from the broker side). Every name starts with
 * "txtest.queue.<pid>." and is deleted at the end, so the real tx.* topology is left alone and
 * concurrent runs do not meet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/tx_buf.h"
#include "common/tx_time.h"
#include "storage/queue.h"

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CREATED 64
#define WATCHDOG_S  90 /* longest a consumer run may take before the test fails */

struct env {
    const char *amqp_url;
    const char *mgmt_url;
    char prefix[64];
    char created_q[MAX_CREATED][128];
    int nq;
    char created_x[MAX_CREATED][128];
    int nx;
};

static struct env E;

/* ---- small helpers ---- */

static volatile sig_atomic_t *watched_stop;
static volatile sig_atomic_t watchdog_fired;

static void on_alarm(int sig)
{
    (void) sig;
    watchdog_fired = 1;
    if (watched_stop != NULL)
        *watched_stop = 1;
}

/* Sets *stop after WATCHDOG_S seconds, so a consumer whose stop condition never comes fails. */
static void watch(volatile sig_atomic_t *stop)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    watchdog_fired = 0;
    watched_stop = stop;
    alarm(WATCHDOG_S);
}

static void unwatch(void)
{
    alarm(0);
    watched_stop = NULL;
    if (watchdog_fired)
        fail_msg("the consumer did not reach its stop condition within %d s", WATCHDOG_S);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static const char *name_of(char *buf, size_t len, const char *suffix)
{
    snprintf(buf, len, "%s%s", E.prefix, suffix);
    return buf;
}

static struct queue_config config(const char *url)
{
    struct queue_config cfg = {
        .url = url != NULL ? url : E.amqp_url,
        .name = "txtest-queue",
        .connect_timeout_ms = 5000,
        .confirm_timeout_ms = 15000,
    };

    return cfg;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct tx_buf *b = ud;

    return tx_buf_append(b, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

/* One management API request; returns the HTTP status (0 on transport failure). */
static long mgmt(const char *method, const char *path, const char *body, struct tx_buf *out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    struct tx_buf sink;
    char url[1024];
    long status = 0;

    assert_non_null(h);
    tx_buf_init(&sink, 8u << 20);
    snprintf(url, sizeof(url), "%s%s", E.mgmt_url, path);
    hdrs = curl_slist_append(hdrs, "content-type: application/json");
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

static void mgmt_ok(const char *method, const char *path, const char *body)
{
    long st = mgmt(method, path, body, NULL);

    if (st < 200 || st > 299)
        fail_msg("management API %s %s answered %ld", method, path, st);
}

static void declare_exchange(const char *name, const char *type)
{
    char path[256];
    char body[128];

    snprintf(path, sizeof(path), "/api/exchanges/%%2F/%s", name);
    snprintf(body, sizeof(body), "{\"type\":\"%s\",\"durable\":false,\"auto_delete\":false}", type);
    mgmt_ok("PUT", path, body);
    assert_true(E.nx < MAX_CREATED);
    snprintf(E.created_x[E.nx++], sizeof(E.created_x[0]), "%s", name);
}

/* A durable quorum queue; extra is more JSON members of "arguments" (or ""). */
static void declare_queue(const char *name, const char *extra)
{
    char path[256];
    char body[512];

    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", name);
    snprintf(body, sizeof(body),
             "{\"durable\":true,\"auto_delete\":false,"
             "\"arguments\":{\"x-queue-type\":\"quorum\"%s%s}}",
             extra[0] != '\0' ? "," : "", extra);
    mgmt_ok("PUT", path, body);
    assert_true(E.nq < MAX_CREATED);
    snprintf(E.created_q[E.nq++], sizeof(E.created_q[0]), "%s", name);
}

static void bind_queue(const char *exchange, const char *queue, const char *key)
{
    char path[512];
    char body[256];

    snprintf(path, sizeof(path), "/api/bindings/%%2F/e/%s/q/%s", exchange, queue);
    snprintf(body, sizeof(body), "{\"routing_key\":\"%s\"}", key);
    mgmt_ok("POST", path, body);
}

static void purge(const char *queue)
{
    char path[256];

    snprintf(path, sizeof(path), "/api/queues/%%2F/%s/contents", queue);
    mgmt_ok("DELETE", path, NULL);
}

/* Closes, from the broker side, every connection whose connection_name is name. */
static int close_connections_named(const char *name)
{
    struct tx_buf out;
    json_t *arr = NULL;
    size_t i;
    json_t *conn;
    int closed = 0;
    CURL *h = curl_easy_init();

    tx_buf_init(&out, 8u << 20);
    assert_int_equal(mgmt("GET", "/api/connections?columns=name,client_properties", NULL, &out),
                     200);
    arr = json_loadb(out.data, out.len, 0, NULL);
    assert_non_null(arr);
    json_array_foreach(arr, i, conn)
    {
        const char *cname = json_string_value(json_object_get(conn, "name"));
        json_t *props = json_object_get(conn, "client_properties");
        const char *cn = json_string_value(json_object_get(props, "connection_name"));
        char path[512];
        char *esc;

        if (cname == NULL || cn == NULL || strcmp(cn, name) != 0)
            continue;
        esc = curl_easy_escape(h, cname, 0);
        snprintf(path, sizeof(path), "/api/connections/%s", esc);
        curl_free(esc);
        if (mgmt("DELETE", path, NULL, NULL) / 100 == 2)
            closed++;
    }
    json_decref(arr);
    tx_buf_cleanup(&out);
    curl_easy_cleanup(h);
    return closed;
}

static uint32_t depth(const char *queue)
{
    struct queue_config cfg = config(NULL);
    struct tx_err err;
    uint32_t n = UINT32_MAX;
    int rc;

    tx_err_clear(&err);
    rc = queue_declare_passive_count(&cfg, queue, &n, &err);
    if (rc != 0)
        fail_msg("passive declare of %s: %s", queue, err.msg);
    return n;
}

/* Polls until queue holds want messages (quorum queues apply asynchronously), up to 10 s. */
static void expect_depth(const char *queue, uint32_t want)
{
    int64_t until = tx_time_mono_ms() + 10000;
    uint32_t got;

    for (;;) {
        got = depth(queue);
        if (got == want || tx_time_mono_ms() > until)
            break;
        sleep_ms(50);
    }
    if (got != want)
        fail_msg("queue %s holds %u messages, expected %u", queue, got, want);
}

/* Publishes n messages "<tag>:<i>" with a JSON body to exchange/key; asserts success. */
static void publish_n(struct queue_publisher *p, const char *exchange, const char *key,
                      const char *tag, size_t n, size_t pad)
{
    struct queue_msg *msgs = calloc(n, sizeof(*msgs));
    char **ids = calloc(n, sizeof(*ids));
    char **bodies = calloc(n, sizeof(*bodies));
    struct tx_err err;
    int rc;

    assert_non_null(msgs);
    for (size_t i = 0; i < n; i++) {
        ids[i] = malloc(64);
        bodies[i] = malloc(pad + 64);
        snprintf(ids[i], 64, "%s:%zu", tag, i);
        snprintf(bodies[i], pad + 64, "{\"i\":%zu,\"pad\":\"%*s\"}", i, (int) pad, "");
        msgs[i].routing_key = key;
        msgs[i].message_id = ids[i];
        msgs[i].correlation_id = tag;
        msgs[i].body = bodies[i];
        msgs[i].len = strlen(bodies[i]);
    }
    tx_err_clear(&err);
    rc = queue_publish_confirmed(p, exchange, msgs, n, &err);
    if (rc != 0)
        fail_msg("publishing %zu messages: %s (%s)", n, tx_status_name(rc), err.msg);
    assert_int_equal(queue_publisher_last_confirmed(p), n);
    for (size_t i = 0; i < n; i++) {
        free(ids[i]);
        free(bodies[i]);
    }
    free(ids);
    free(bodies);
    free(msgs);
}

/* The index after the last ':' of a message id, or -1. */
static long id_index(const char *id)
{
    const char *colon = strrchr(id, ':');

    return colon != NULL ? strtol(colon + 1, NULL, 10) : -1;
}

/* ---- consumer bookkeeping shared by several tests ---- */

struct seen {
    size_t n;          /* messages published */
    unsigned *handled; /* times each index was handed to the handler */
    size_t distinct;
    size_t total;
    size_t redelivered; /* deliveries flagged redelivered or with a delivery count */
    size_t counted;     /* deliveries with x-delivery-count > 0 */
    size_t stop_at;     /* set *stop after this many distinct (0: never) */
    size_t stop_total;  /* set *stop after this many deliveries (0: never) */
    volatile sig_atomic_t stop;
    const char *tag; /* expected correlation id */
    int bad;         /* a delivery failed a check */
    char why[256];
    /* events */
    int connected;
    int disconnected;
    int connect_failed;
    int stopped;
    int last_code;
    char last_err[256];
    bool saw_406;
    char stop_err[256]; /* the graceful stop failed */
    int held;           /* QUEUE_EVENT_HELD */
    int resumed;        /* QUEUE_EVENT_RESUMED */
    int requeued;       /* QUEUE_EVENT_REQUEUED */
    int paused_events;  /* HELD events with paused set */
};

static void seen_init(struct seen *s, size_t n, const char *tag)
{
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->tag = tag;
    s->handled = calloc(n, sizeof(*s->handled));
    assert_non_null(s->handled);
}

static void seen_cleanup(struct seen *s)
{
    free(s->handled);
    s->handled = NULL;
}

/* Checks a delivery published by publish_n and counts it. */
static void seen_record(struct seen *s, const struct queue_delivery *d)
{
    long i = id_index(d->message_id);
    char want[128];

    if (i < 0 || (size_t) i >= s->n) {
        s->bad = 1;
        snprintf(s->why, sizeof(s->why), "unexpected message id '%s'", d->message_id);
        return;
    }
    snprintf(want, sizeof(want), "{\"i\":%ld,", i);
    if (strncmp(d->body, want, strlen(want)) != 0 || ((const char *) d->body)[d->len] != '\0' ||
        strcmp(d->correlation_id, s->tag) != 0) {
        s->bad = 1;
        snprintf(s->why, sizeof(s->why), "delivery %s: wrong body or correlation id",
                 d->message_id);
    }
    if (d->redelivered || d->delivery_count > 0)
        s->redelivered++;
    if (d->delivery_count > 0)
        s->counted++;
    if (s->handled[i]++ == 0)
        s->distinct++;
    s->total++;
    if ((s->stop_at > 0 && s->distinct >= s->stop_at) ||
        (s->stop_total > 0 && s->total >= s->stop_total))
        s->stop = 1;
}

static void on_event(void *ctx, const struct queue_event *ev)
{
    struct seen *s = ctx;

    switch (ev->type) {
    case QUEUE_EVENT_CONNECTED:
        s->connected++;
        break;
    case QUEUE_EVENT_DISCONNECTED:
        s->disconnected++;
        break;
    case QUEUE_EVENT_CONNECT_FAILED:
        s->connect_failed++;
        break;
    case QUEUE_EVENT_STOPPED:
        s->stopped++;
        if (ev->err != NULL)
            snprintf(s->stop_err, sizeof(s->stop_err), "%s", ev->err->msg);
        break;
    case QUEUE_EVENT_TOO_BIG:
        break;
    case QUEUE_EVENT_HELD:
        s->held++;
        if (ev->paused)
            s->paused_events++;
        break;
    case QUEUE_EVENT_RESUMED:
        s->resumed++;
        break;
    case QUEUE_EVENT_REQUEUED:
        s->requeued++;
        break;
    }
    if (ev->err != NULL) {
        s->last_code = ev->err->code;
        snprintf(s->last_err, sizeof(s->last_err), "%s", ev->err->msg);
        if (strstr(ev->err->msg, "406") != NULL)
            s->saw_406 = true;
    }
}

static enum queue_disposition ack_all(void *ctx, const struct queue_delivery *d)
{
    seen_record(ctx, d);
    return QUEUE_ACK;
}

/* Runs a consumer of queue until the handler sets s->stop; asserts a clean return. */
static void consume(const char *queue, unsigned prefetch, const char *conn_name,
                    queue_handler_fn fn, struct seen *s)
{
    struct queue_config cfg = config(NULL);
    struct queue_consumer *c;
    struct tx_err err;
    int rc;

    cfg.name = conn_name;
    tx_err_clear(&err);
    c = queue_consumer_create(&cfg, queue, prefetch, &err);
    if (c == NULL)
        fail_msg("consumer: %s", err.msg);
    queue_consumer_set_event_fn(c, on_event, s);
    watch(&s->stop);
    rc = queue_consumer_run(c, fn, s, &s->stop, &err);
    unwatch();
    assert_int_equal(rc, 0);
    assert_false(queue_consumer_is_connected(c));
    queue_consumer_destroy(c);
    if (s->bad)
        fail_msg("%s", s->why);
    assert_int_equal(s->stopped, 1);
    if (s->stop_err[0] != '\0')
        fail_msg("graceful stop failed: %s", s->stop_err);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    E.amqp_url = getenv("TX_AMQP_URL");
    E.mgmt_url = getenv("TX_RABBIT_MGMT_URL");
    if (E.amqp_url == NULL || E.mgmt_url == NULL) {
        fprintf(stderr, "test_queue: TX_AMQP_URL and TX_RABBIT_MGMT_URL must be set "
                        "(start the broker with `ci/stack up rabbitmq`, then "
                        "eval \"$(ci/stack env)\")\n");
        return -1;
    }
    snprintf(E.prefix, sizeof(E.prefix), "txtest.queue.%ld.", (long) getpid());
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (mgmt("GET", "/api/overview", NULL, NULL) != 200) {
        fprintf(stderr, "test_queue: management API at TX_RABBIT_MGMT_URL is not answering\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    char path[256];

    for (int i = 0; i < E.nq; i++) {
        snprintf(path, sizeof(path), "/api/queues/%%2F/%s", E.created_q[i]);
        (void) mgmt("DELETE", path, NULL, NULL);
    }
    for (int i = 0; i < E.nx; i++) {
        snprintf(path, sizeof(path), "/api/exchanges/%%2F/%s", E.created_x[i]);
        (void) mgmt("DELETE", path, NULL, NULL);
    }
    curl_global_cleanup();
    return 0;
}

/* ---- publisher ---- */

/* 1,000 events to a copy of the tx.events routing: both transaction.received queues get all. */
static void test_publish_routes_exactly(void **state)
{
    char x[128], qf[128], qp[128], qn[128];
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct tx_err err;
    struct seen s;

    name_of(x, sizeof(x), "events");
    name_of(qf, sizeof(qf), "fraud");
    name_of(qp, sizeof(qp), "persist");
    name_of(qn, sizeof(qn), "notify");
    declare_exchange(x, "topic");
    declare_queue(qf, "");
    declare_queue(qp, "");
    declare_queue(qn, "");
    bind_queue(x, qf, "transaction.received");
    bind_queue(x, qp, "transaction.received");
    bind_queue(x, qn, "transaction.scored");
    bind_queue(x, qp, "transaction.scored");

    tx_err_clear(&err);
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    publish_n(p, x, "transaction.received", "up1", 1000, 200);
    queue_publisher_destroy(p);

    assert_int_equal(depth(qf), 1000);
    assert_int_equal(depth(qp), 1000);
    assert_int_equal(depth(qn), 0);

    /* Read tx.fraud's copy back: every message once, with its id, correlation id and body. */
    seen_init(&s, 1000, "up1");
    s.stop_at = 1000;
    consume(qf, 64, "txtest-queue-routes", ack_all, &s);
    assert_int_equal(s.distinct, 1000);
    assert_int_equal(s.total, 1000);
    seen_cleanup(&s);
    assert_int_equal(depth(qf), 0);
    purge(qp);
    expect_depth(qp, 0);
}

/* A mandatory message nobody is bound for is a failure, even though the broker acks it. */
static void test_unroutable_is_rejected(void **state)
{
    char x[128], q[128];
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct queue_msg msgs[10];
    char ids[10][16];
    struct tx_err err;
    int rc;

    name_of(x, sizeof(x), "unbound");
    name_of(q, sizeof(q), "good");
    declare_exchange(x, "topic");
    declare_queue(q, "");
    bind_queue(x, q, "good");

    cfg.window = 4; /* smaller than the batch: the window wraps */
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);

    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof(ids[i]), "m:%d", i);
        msgs[i].routing_key = i == 3 ? "nobody.listens" : "good";
        msgs[i].message_id = ids[i];
        msgs[i].body = "{}";
        msgs[i].len = 2;
    }
    /* One unroutable message alone. */
    tx_err_clear(&err);
    rc = queue_publish_confirmed(p, x, &msgs[3], 1, &err);
    assert_int_equal(rc, TX_EREJECT);
    assert_int_equal(err.code, TX_EREJECT);
    assert_non_null(strstr(err.msg, "message 0 of 1"));
    assert_non_null(strstr(err.msg, "NO_ROUTE"));
    assert_int_equal(queue_publisher_last_confirmed(p), 0);

    /* In the middle of a batch: the index is reported, the prefix is confirmed. */
    tx_err_clear(&err);
    rc = queue_publish_confirmed(p, x, msgs, 10, &err);
    assert_int_equal(rc, TX_EREJECT);
    assert_non_null(strstr(err.msg, "message 3 of 10"));
    assert_int_equal(queue_publisher_last_confirmed(p), 3);
    expect_depth(q, 3); /* sending stopped at the failure; 0..2 arrived */

    /* The same publisher (and connection) keeps working. */
    msgs[3].routing_key = "good";
    tx_err_clear(&err);
    rc = queue_publish_confirmed(p, x, msgs, 10, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    expect_depth(q, 13);
    queue_publisher_destroy(p);
    purge(q);
}

static void test_missing_exchange(void **state)
{
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct queue_msg m = { .routing_key = "k", .body = "{}", .len = 2 };
    char x[128], q[128];
    struct tx_err err;
    int rc;

    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    tx_err_clear(&err);
    rc = queue_publish_confirmed(p, name_of(x, sizeof(x), "no-such-exchange"), &m, 1, &err);
    assert_int_equal(rc, TX_ENOTFOUND);
    assert_non_null(strstr(err.msg, "NOT_FOUND"));

    /* Next use reconnects (the channel was closed by the broker). */
    name_of(q, sizeof(q), "after-missing");
    declare_queue(q, "");
    m.routing_key = q; /* the default exchange routes by queue name */
    tx_err_clear(&err);
    rc = queue_publish_confirmed(p, "", &m, 1, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    expect_depth(q, 1);
    queue_publisher_destroy(p);
}

static void test_connection_refused_is_fast(void **state)
{
    struct queue_config cfg = config("amqp://txadmin:x@127.0.0.1:1/%2f");
    struct queue_msg m = { .routing_key = "k", .body = "{}", .len = 2 };
    struct queue_publisher *p;
    struct tx_err err;
    uint32_t n;
    int64_t t0;
    int rc;

    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    t0 = tx_time_mono_ms();
    rc = queue_publish_confirmed(p, "tx.events", &m, 1, &err);
    assert_int_equal(rc, TX_EUNAVAIL);
    assert_true(tx_time_mono_ms() - t0 < 1000);
    assert_non_null(strstr(err.msg, "message 0 of 1"));
    /* Within the back-off: fails without touching the network. */
    rc = queue_publish_confirmed(p, "tx.events", &m, 1, &err);
    assert_int_equal(rc, TX_EUNAVAIL);
    assert_non_null(strstr(err.msg, "next attempt"));
    rc = queue_publisher_ping(p, &err);
    assert_int_equal(rc, TX_EUNAVAIL);
    queue_publisher_destroy(p);

    rc = queue_declare_passive_count(&cfg, "tx.fraud", &n, &err);
    assert_int_equal(rc, TX_EUNAVAIL);
    assert_true(tx_time_mono_ms() - t0 < 2000);
}

static void test_bad_password_is_rejected(void **state)
{
    struct queue_url u;
    char url[600];
    struct queue_config cfg;
    struct queue_publisher *p;
    struct tx_err err;
    int rc;

    assert_int_equal(queue_url_parse(E.amqp_url, &u, &err), 0);
    snprintf(url, sizeof(url), "amqp://%s:wrong-password@%s:%d/%%2f", u.user, u.host, u.port);
    cfg = config(url);
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    tx_err_clear(&err);
    rc = queue_publisher_ping(p, &err);
    assert_int_equal(rc, TX_EREJECT);
    assert_non_null(strstr(err.msg, "ACCESS_REFUSED"));
    assert_null(strstr(err.msg, "wrong-password"));
    queue_publisher_destroy(p);
}

/* The broker drops the publisher's connection between calls: the next call repairs it. */
static void test_publisher_survives_broker_close(void **state)
{
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct tx_err err;
    char q[128];
    int closed = 0;

    name_of(q, sizeof(q), "pubclose");
    declare_queue(q, "");
    cfg.name = "txtest-queue-pubclose";
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    assert_int_equal(queue_publisher_ping(p, &err), 0);
    publish_n(p, "", q, "pc", 10, 10);
    for (int i = 0; i < 100 && closed == 0; i++) {
        closed = close_connections_named(cfg.name);
        if (closed == 0)
            sleep_ms(100);
    }
    assert_int_equal(closed, 1);
    sleep_ms(200);
    publish_n(p, "", q, "pc", 10, 10);
    expect_depth(q, 20);
    queue_publisher_destroy(p);
}

/* An idle publisher misses heartbeats and is closed by the broker; the next call repairs it. */
static void test_publisher_idle_past_heartbeat(void **state)
{
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct tx_err err;
    char q[128];

    name_of(q, sizeof(q), "idle");
    declare_queue(q, "");
    cfg.heartbeat_s = 1;
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    publish_n(p, "", q, "idle", 5, 10);
    sleep_ms(4500); /* the broker gives up after about two missed heartbeats */
    publish_n(p, "", q, "idle", 5, 10);
    assert_int_equal(queue_publisher_ping(p, &err), 0);
    expect_depth(q, 10);
    queue_publisher_destroy(p);
}

static void test_bad_arguments(void **state)
{
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct queue_msg m = { .routing_key = NULL, .body = "{}", .len = 2 };
    struct tx_err err;
    uint32_t n;

    cfg.window = 70000;
    assert_null(queue_publisher_create(&cfg, &err));
    assert_int_equal(err.code, TX_EINVAL);
    cfg = config("http://127.0.0.1/");
    assert_null(queue_publisher_create(&cfg, &err));
    assert_int_equal(err.code, TX_EINVAL);
    cfg = config(NULL);
    assert_null(queue_consumer_create(&cfg, "q", 0, &err));
    assert_null(queue_consumer_create(&cfg, "", 10, &err));
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    assert_int_equal(queue_publish_confirmed(p, "x", &m, 1, &err), TX_EINVAL);
    queue_publisher_destroy(p);
    assert_int_equal(queue_declare_passive_count(&cfg, "txtest.queue.no-such-queue", &n, &err),
                     TX_ENOTFOUND);
    assert_non_null(strstr(err.msg, "NOT_FOUND"));
}

/* ---- consumer ---- */

struct disp_ctx {
    struct seen s;
    unsigned limit;
    bool acked, retried_once, retry_acked, rejected;
    unsigned poison_max_count;
    unsigned poison_deliveries;
    unsigned retry_count_on_redelivery;
    int retry_redelivered;
};

static enum queue_disposition disp_handler(void *ctx, const struct queue_delivery *d)
{
    struct disp_ctx *x = ctx;
    enum queue_disposition r = QUEUE_ACK;

    if (strcmp(d->body, "ack") == 0) {
        x->acked = true;
    }
    else if (strcmp(d->body, "retry") == 0) {
        if (d->delivery_count == 0 && !x->retried_once) {
            x->retried_once = true;
            r = QUEUE_REQUEUE;
        }
        else {
            x->retry_acked = true;
            x->retry_count_on_redelivery = d->delivery_count;
            x->retry_redelivered = d->redelivered;
        }
    }
    else if (strcmp(d->body, "reject") == 0) {
        x->rejected = true;
        r = QUEUE_REJECT;
    }
    else if (strcmp(d->body, "poison") == 0) {
        x->poison_deliveries++;
        if (d->delivery_count > x->poison_max_count)
            x->poison_max_count = d->delivery_count;
        r = QUEUE_REQUEUE;
    }
    if (x->acked && x->retry_acked && x->rejected && x->poison_max_count >= x->limit)
        x->s.stop = 1;
    return r;
}

static void test_consumer_ack_retry_reject(void **state)
{
    char q[128], dlx[128], dlq[128], args[256];
    const char *bodies[] = { "ack", "retry", "reject", "poison" };
    struct queue_msg msgs[4];
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct queue_consumer *c;
    struct disp_ctx x;
    struct tx_err err;
    int rc;

    name_of(q, sizeof(q), "work");
    name_of(dlx, sizeof(dlx), "dlx");
    name_of(dlq, sizeof(dlq), "work.dlq");
    declare_exchange(dlx, "topic");
    declare_queue(dlq, "");
    bind_queue(dlx, dlq, "#");
    snprintf(args, sizeof(args),
             "\"x-delivery-limit\":2,\"x-dead-letter-exchange\":\"%s\","
             "\"x-dead-letter-routing-key\":\"work.dlq\"",
             dlx);
    declare_queue(q, args);

    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < 4; i++) {
        msgs[i].routing_key = q;
        msgs[i].message_id = bodies[i];
        msgs[i].correlation_id = "disp";
        msgs[i].body = bodies[i];
        msgs[i].len = strlen(bodies[i]);
    }
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    rc = queue_publish_confirmed(p, "", msgs, 4, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    queue_publisher_destroy(p);

    memset(&x, 0, sizeof(x));
    x.limit = 2;
    c = queue_consumer_create(&cfg, q, 10, &err);
    assert_non_null(c);
    queue_consumer_set_event_fn(c, on_event, &x.s);
    watch(&x.s.stop);
    assert_int_equal(queue_consumer_run(c, disp_handler, &x, &x.s.stop, &err), 0);
    unwatch();
    queue_consumer_destroy(c);

    assert_true(x.acked);
    assert_true(x.rejected);
    assert_true(x.retry_acked);
    assert_int_equal(x.retry_count_on_redelivery, 1); /* one requeue counted */
    assert_true(x.retry_redelivered);
    assert_int_equal(x.poison_max_count, 2);
    assert_int_equal(x.poison_deliveries, 3); /* deliveries 0, 1, 2; then the limit */
    expect_depth(q, 0);
    expect_depth(dlq, 2); /* "reject" at once, "poison" past the delivery limit */
}

struct dlq_seen {
    volatile sig_atomic_t stop;
    int reject, poison, other;
};

static enum queue_disposition dlq_handler(void *ctx, const struct queue_delivery *d)
{
    struct dlq_seen *s = ctx;

    if (strcmp(d->body, "reject") == 0)
        s->reject++;
    else if (strcmp(d->body, "poison") == 0)
        s->poison++;
    else
        s->other++;
    if (s->reject + s->poison + s->other >= 2)
        s->stop = 1;
    return QUEUE_ACK;
}

static void test_consumer_dead_letters_reach_dlq(void **state)
{
    struct queue_config cfg = config(NULL);
    struct queue_consumer *c;
    struct dlq_seen s = { 0 };
    struct tx_err err;
    char dlq[128];

    /* Runs after test_consumer_ack_retry_reject, which fills this DLQ. */
    name_of(dlq, sizeof(dlq), "work.dlq");
    c = queue_consumer_create(&cfg, dlq, 10, &err);
    assert_non_null(c);
    watch(&s.stop);
    assert_int_equal(queue_consumer_run(c, dlq_handler, &s, &s.stop, &err), 0);
    unwatch();
    queue_consumer_destroy(c);
    assert_int_equal(s.reject, 1);
    assert_int_equal(s.poison, 1);
    assert_int_equal(s.other, 0);
    expect_depth(dlq, 0);
}

/* Stop in the middle: what was handled is acked, the rest stays queued, nothing is lost. */
static void test_consumer_stop_loses_nothing(void **state)
{
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct tx_err err;
    struct seen s;
    unsigned *first;
    size_t handled;
    int64_t t0;
    char q[128];
    uint32_t left;

    name_of(q, sizeof(q), "stop");
    declare_queue(q, "");
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    publish_n(p, "", q, "stop", 2000, 100);
    queue_publisher_destroy(p);
    expect_depth(q, 2000);

    seen_init(&s, 2000, "stop");
    s.stop_at = 500; /* the stop also takes in and handles what the broker has in flight to it
                        (up to the prefetch, 100), so nothing is returned unhandled */
    consume(q, 100, "txtest-queue-stop", ack_all, &s);
    handled = s.total;
    assert_true(handled >= 500);
    assert_true(handled <= 600);
    assert_int_equal(s.distinct, handled);
    /* Deliveries the broker had in flight to the cancelled consumer return to the queue
     * asynchronously after the close, so poll: a lost message would never come back, a
     * dropped ack would leave one too many. */
    t0 = tx_time_mono_ms();
    expect_depth(q, (uint32_t) (2000 - handled));
    left = (uint32_t) (2000 - handled);
    print_message("stop: %zu handled and acked, %u left queued (settled after %lld ms)\n", handled,
                  left, (long long) (tx_time_mono_ms() - t0));

    /* A second consumer gets exactly the others. */
    first = malloc(2000 * sizeof(*first));
    assert_non_null(first);
    memcpy(first, s.handled, 2000 * sizeof(*first));
    memset(s.handled, 0, 2000 * sizeof(*s.handled));
    s.distinct = s.total = 0;
    s.stopped = 0;
    s.stop = 0;
    s.stop_at = left;
    s.redelivered = 0;
    s.counted = 0;
    consume(q, 100, "txtest-queue-stop", ack_all, &s);
    assert_int_equal(s.total, left);
    print_message("stop: the second consumer got the %u others, %zu of them marked redelivered "
                  "(%zu with x-delivery-count > 0)\n",
                  left, s.redelivered, s.counted);
    /* The first stop drained what was in flight: nothing came back counted as a failed try. */
    assert_int_equal(s.counted, 0);
    for (size_t i = 0; i < 2000; i++)
        assert_int_equal(first[i] + s.handled[i], 1);
    free(first);
    seen_cleanup(&s);
    assert_int_equal(depth(q), 0);
}

struct kill_ctx {
    struct seen s;
    size_t kill_at;
    int killed;
    const char *conn_name;
    size_t redelivered_dupes; /* duplicates flagged redelivered or counted by the queue */
};

static enum queue_disposition kill_handler(void *ctx, const struct queue_delivery *d)
{
    struct kill_ctx *k = ctx;
    long i = id_index(d->message_id);

    if (i >= 0 && (size_t) i < k->s.n && k->s.handled[i] > 0 &&
        (d->redelivered || d->delivery_count > 0))
        k->redelivered_dupes++;
    seen_record(&k->s, d);
    if (k->killed == 0 && k->s.total == k->kill_at) {
        /* Close our own connection from the broker side, with this message still unacked. */
        for (int t = 0; t < 150 && k->killed == 0; t++) {
            k->killed = close_connections_named(k->conn_name);
            if (k->killed == 0)
                sleep_ms(100);
        }
    }
    return QUEUE_ACK;
}

/* The broker closes the consumer's connection mid-stream: it resumes, nothing is acked twice. */
static void test_consumer_reconnects(void **state)
{
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct tx_err err;
    struct kill_ctx k;
    size_t dupes;
    char q[128];
    uint32_t left;

    name_of(q, sizeof(q), "reconnect");
    declare_queue(q, "");
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    publish_n(p, "", q, "rc", 3000, 100);
    queue_publisher_destroy(p);

    memset(&k, 0, sizeof(k));
    seen_init(&k.s, 3000, "rc");
    k.s.stop_at = 3000;
    k.kill_at = 1000;
    k.conn_name = "txtest-queue-reconnect";
    consume(q, 50, k.conn_name, kill_handler, &k.s);
    assert_int_equal(k.killed, 1);
    assert_true(k.s.disconnected >= 1);
    assert_true(k.s.connected >= 2);
    assert_false(k.s.saw_406); /* an ack of an unknown tag (double ack) closes the channel */

    /* Messages whose ack died with the connection come back: drain them (all duplicates). */
    left = depth(q);
    if (left > 0) {
        size_t before = k.s.distinct;

        k.s.stop = 0;
        k.s.stopped = 0;
        k.s.stop_at = 0;
        k.s.stop_total = k.s.total + left;
        consume(q, 50, "txtest-queue-reconnect-drain", kill_handler, &k.s);
        assert_int_equal(k.s.distinct, before);
    }
    assert_int_equal(depth(q), 0);
    dupes = k.s.total - 3000;
    print_message("reconnect: %zu deliveries for 3000 messages, %zu redelivered after the "
                  "forced close (%d disconnect(s): %s)\n",
                  k.s.total, dupes, k.s.disconnected, k.s.last_err);
    for (size_t i = 0; i < 3000; i++)
        assert_true(k.s.handled[i] >= 1);
    /* The message in the handler when the connection died was unacked: it must come back, and
     * every duplicate must be marked as a redelivery. At most prefetch were in hand. */
    assert_true(dupes >= 1);
    assert_true(dupes <= 50);
    assert_int_equal(k.redelivered_dupes, dupes);
    seen_cleanup(&k.s);
}

/* A quorum queue "<prefix>" (delivery limit 5) dead-lettering to "<prefix>.dlq", filled with
 * 1,000 messages "batch-<i>"; the names go to q and dlq (128 bytes each). */
static void batch_queue_1000(const char *prefix, char *q, char *dlq)
{
    char dlx[128], args[256], name[64];
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct tx_err err;

    name_of(q, 128, prefix);
    snprintf(name, sizeof(name), "%s.dlx", prefix);
    name_of(dlx, sizeof(dlx), name);
    snprintf(name, sizeof(name), "%s.dlq", prefix);
    name_of(dlq, 128, name);
    declare_exchange(dlx, "fanout");
    declare_queue(dlq, "");
    bind_queue(dlx, dlq, "");
    snprintf(args, sizeof(args), "\"x-delivery-limit\":5,\"x-dead-letter-exchange\":\"%s\"", dlx);
    declare_queue(q, args);
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    publish_n(p, "", q, "batch", 1000, 50);
    queue_publisher_destroy(p);
}

struct batch_ctx {
    struct seen s;
    size_t batches;
    size_t max_batch;
    size_t acked;
    int rejected;
    int retried;
};

static void batch_handler(void *ctx, const struct queue_delivery *d, size_t n,
                          enum queue_disposition *out)
{
    struct batch_ctx *b = ctx;

    b->batches++;
    if (n > b->max_batch)
        b->max_batch = n;
    for (size_t i = 0; i < n; i++) {
        long idx = id_index(d[i].message_id);

        if (idx == 500) {
            out[i] = QUEUE_REJECT;
            b->rejected++;
        }
        else if (idx % 97 == 0 && idx >= 0 && (size_t) idx < b->s.n && b->s.handled[idx] == 0) {
            out[i] = QUEUE_RETRY; /* held in the process and handed over again */
            b->retried++;
        }
        else {
            out[i] = QUEUE_ACK;
            b->acked++;
        }
        seen_record(&b->s, &d[i]);
    }
    if (b->acked == 999 && b->rejected == 1)
        b->s.stop = 1;
}

/* txpersist's mode: batches, mixed dispositions, acks grouped per batch. */
static void test_consumer_batches(void **state)
{
    char q[128], dlq[128];
    struct queue_config cfg = config(NULL);
    struct queue_consumer *c;
    struct batch_ctx b;
    struct tx_err err;

    batch_queue_1000("batch", q, dlq);

    memset(&b, 0, sizeof(b));
    seen_init(&b.s, 1000, "batch");
    c = queue_consumer_create(&cfg, q, 128, &err);
    assert_non_null(c);
    assert_int_equal(queue_consumer_set_retry(c, &(struct queue_retry){ 20, 100, 0 }, &err), 0);
    queue_consumer_set_event_fn(c, on_event, &b.s);
    watch(&b.s.stop);
    assert_int_equal(queue_consumer_run_batch(c, batch_handler, &b, 64, 50, &b.s.stop, &err), 0);
    unwatch();
    queue_consumer_destroy(c);
    if (b.s.bad)
        fail_msg("%s", b.s.why);
    assert_true(b.max_batch <= 64);
    assert_true(b.max_batch > 1);
    assert_int_equal(b.acked, 999);
    assert_int_equal(b.rejected, 1);
    assert_int_equal(b.retried, 11); /* 0, 97, ..., 970 */
    assert_int_equal(b.s.distinct, 1000);
    /* The retries were held in the process: none went back to the broker. */
    if (b.s.counted != 0 || b.s.disconnected != 0)
        fail_msg("%zu deliveries came back from the broker, %d disconnect(s), %d held, %d "
                 "requeued: %s",
                 b.s.counted, b.s.disconnected, b.s.held, b.s.requeued, b.s.last_err);
    assert_int_equal(b.s.held, 11);
    assert_int_equal(b.s.requeued, 0);
    assert_false(b.s.saw_406);
    expect_depth(q, 0);
    expect_depth(dlq, 1);
    seen_cleanup(&b.s);
}

/* Pipelined mode: the batch_handler's decisions made at submit, handed back at collect. */
struct pipe_ctx {
    struct batch_ctx b;
    struct {
        const struct queue_delivery *d; /* must stay valid until collected */
        size_t n;
        enum queue_disposition out[64];
        char first_id[64];
    } fl[3];
    size_t nfl;
    size_t submits;
    size_t overlapped; /* submits made while an earlier batch was outstanding */
    int order_bad;
};

static void pipe_submit(void *ctx, const struct queue_delivery *d, size_t n)
{
    struct pipe_ctx *p = ctx;

    p->submits++;
    if (p->nfl > 0)
        p->overlapped++;
    if (p->nfl >= 2 || n > 64) {
        p->order_bad = 1; /* more than one batch in flight besides this one */
        return;
    }
    p->fl[p->nfl].d = d;
    p->fl[p->nfl].n = n;
    snprintf(p->fl[p->nfl].first_id, sizeof(p->fl[p->nfl].first_id), "%s", d[0].message_id);
    batch_handler(&p->b, d, n, p->fl[p->nfl].out);
    p->nfl++;
}

static void pipe_collect(void *ctx, enum queue_disposition *out)
{
    struct pipe_ctx *p = ctx;

    if (p->nfl == 0) {
        p->order_bad = 1;
        return;
    }
    /* The oldest batch, its deliveries still intact. */
    if (strcmp(p->fl[0].d[0].message_id, p->fl[0].first_id) != 0)
        p->order_bad = 1;
    memcpy(out, p->fl[0].out, p->fl[0].n * sizeof(*out));
    p->fl[0] = p->fl[1];
    p->nfl--;
}

/* txpersist's pipelined mode: the same outcome as batches, with batches overlapping. */
static void test_consumer_pipelined(void **state)
{
    char q[128], dlq[128];
    struct queue_config cfg = config(NULL);
    struct queue_consumer *c;
    struct pipe_ctx *p = calloc(1, sizeof(*p));
    struct tx_err err;

    (void) state;
    assert_non_null(p);
    batch_queue_1000("pipe", q, dlq);

    seen_init(&p->b.s, 1000, "batch");
    c = queue_consumer_create(&cfg, q, 256, &err);
    assert_non_null(c);
    assert_int_equal(queue_consumer_set_retry(c, &(struct queue_retry){ 20, 100, 0 }, &err), 0);
    queue_consumer_set_event_fn(c, on_event, &p->b.s);
    watch(&p->b.s.stop);
    assert_int_equal(
        queue_consumer_run_pipelined(c, pipe_submit, pipe_collect, p, 64, 50, &p->b.s.stop, &err),
        0);
    unwatch();
    queue_consumer_destroy(c);
    if (p->b.s.bad)
        fail_msg("%s", p->b.s.why);
    assert_false(p->order_bad);
    assert_int_equal(p->nfl, 0); /* everything submitted was collected */
    assert_true(p->overlapped > 0);
    assert_int_equal(p->b.acked, 999);
    assert_int_equal(p->b.rejected, 1);
    assert_int_equal(p->b.retried, 11);
    assert_int_equal(p->b.s.distinct, 1000);
    if (p->b.s.counted != 0 || p->b.s.disconnected != 0)
        fail_msg("%zu deliveries came back from the broker, %d disconnect(s): %s", p->b.s.counted,
                 p->b.s.disconnected, p->b.s.last_err);
    assert_int_equal(p->b.s.held, 11);
    expect_depth(q, 0);
    expect_depth(dlq, 1);
    seen_cleanup(&p->b.s);
    free(p);
}

struct big_ctx {
    volatile sig_atomic_t stop;
    size_t big_len;
    int big_ok;
    int small_ok;
    int too_big_events;
    char too_big_msg[256];
};

static enum queue_disposition big_handler(void *ctx, const struct queue_delivery *d)
{
    struct big_ctx *b = ctx;
    const unsigned char *p = d->body;
    bool ok = true;

    if (strcmp(d->message_id, "big") == 0) {
        ok = d->len == b->big_len && p[d->len] == '\0';
        for (size_t i = 0; ok && i < d->len; i++)
            ok = p[i] == (unsigned char) ('a' + i % 26);
        b->big_ok = ok ? 1 : -1;
    }
    else if (strcmp(d->message_id, "small") == 0) {
        b->small_ok = 1;
    }
    if (b->big_ok != 0 && b->small_ok != 0 && b->too_big_events > 0)
        b->stop = 1;
    return QUEUE_ACK;
}

static void big_event(void *ctx, const struct queue_event *ev)
{
    struct big_ctx *b = ctx;

    if (ev->type == QUEUE_EVENT_TOO_BIG) {
        b->too_big_events++;
        snprintf(b->too_big_msg, sizeof(b->too_big_msg), "%s", ev->err->msg);
    }
}

/* Bodies spanning many frames arrive intact; bodies above max_body are dead-lettered. */
static void test_consumer_large_bodies(void **state)
{
    char q[128], dlx[128], dlq[128], args[256];
    struct queue_config cfg = config(NULL);
    struct queue_publisher *p;
    struct queue_consumer *c;
    struct queue_msg msgs[3];
    struct big_ctx b;
    struct tx_err err;
    char *big, *huge;
    int rc;

    name_of(q, sizeof(q), "big");
    name_of(dlx, sizeof(dlx), "big.dlx");
    name_of(dlq, sizeof(dlq), "big.dlq");
    declare_exchange(dlx, "fanout");
    declare_queue(dlq, "");
    bind_queue(dlx, dlq, "");
    snprintf(args, sizeof(args), "\"x-dead-letter-exchange\":\"%s\"", dlx);
    declare_queue(q, args);

    memset(&b, 0, sizeof(b));
    b.big_len = 300 * 1024; /* about three frames of 128 KiB */
    big = malloc(b.big_len);
    huge = malloc(2u << 20);
    assert_non_null(big);
    assert_non_null(huge);
    for (size_t i = 0; i < b.big_len; i++)
        big[i] = (char) ('a' + i % 26);
    memset(huge, 'h', 2u << 20);
    memset(msgs, 0, sizeof(msgs));
    msgs[0] =
        (struct queue_msg){ .routing_key = q, .message_id = "huge", .body = huge, .len = 2u << 20 };
    msgs[1] =
        (struct queue_msg){ .routing_key = q, .message_id = "big", .body = big, .len = b.big_len };
    msgs[2] = (struct queue_msg){ .routing_key = q, .message_id = "small", .body = "{}", .len = 2 };
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    rc = queue_publish_confirmed(p, "", msgs, 3, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    queue_publisher_destroy(p);

    cfg.max_body = 1u << 20;
    c = queue_consumer_create(&cfg, q, 10, &err);
    assert_non_null(c);
    queue_consumer_set_event_fn(c, big_event, &b);
    watch(&b.stop);
    assert_int_equal(queue_consumer_run(c, big_handler, &b, &b.stop, &err), 0);
    unwatch();
    queue_consumer_destroy(c);
    assert_int_equal(b.big_ok, 1);
    assert_int_equal(b.small_ok, 1);
    assert_int_equal(b.too_big_events, 1);
    assert_non_null(strstr(b.too_big_msg, "2097152 bytes"));
    expect_depth(q, 0);
    expect_depth(dlq, 1);
    free(big);
    free(huge);
}

static void stop_on_failure(void *ctx, const struct queue_event *ev)
{
    struct seen *s = ctx;

    on_event(ctx, ev);
    if (ev->type == QUEUE_EVENT_CONNECT_FAILED && s->connect_failed >= 2)
        s->stop = 1;
}

static enum queue_disposition never_called(void *ctx, const struct queue_delivery *d)
{
    fail_msg("handler called for %s", d->message_id);
    return QUEUE_RETRY;
}

/* A missing queue or an unreachable broker: the loop reports and retries until stopped. */
static void test_consumer_reports_connect_failures(void **state)
{
    struct queue_config cfg = config(NULL);
    struct queue_consumer *c;
    struct tx_err err;
    struct seen s;

    memset(&s, 0, sizeof(s));
    c = queue_consumer_create(&cfg, "txtest.queue.no-such-queue", 10, &err);
    assert_non_null(c);
    queue_consumer_set_event_fn(c, stop_on_failure, &s);
    watch(&s.stop);
    assert_int_equal(queue_consumer_run(c, never_called, NULL, &s.stop, &err), 0);
    unwatch();
    queue_consumer_destroy(c);
    assert_int_equal(s.connect_failed, 2);
    assert_int_equal(s.connected, 0);
    assert_int_equal(s.last_code, TX_ENOTFOUND);
    assert_non_null(strstr(s.last_err, "NOT_FOUND"));

    memset(&s, 0, sizeof(s));
    cfg = config("amqp://u:p@127.0.0.1:1/%2f");
    c = queue_consumer_create(&cfg, "tx.fraud", 10, &err);
    assert_non_null(c);
    queue_consumer_set_event_fn(c, stop_on_failure, &s);
    watch(&s.stop);
    assert_int_equal(queue_consumer_run(c, never_called, NULL, &s.stop, &err), 0);
    unwatch();
    queue_consumer_destroy(c);
    assert_int_equal(s.last_code, TX_EUNAVAIL);
    assert_int_equal(s.stopped, 1);
}

/* ---- held deliveries (QUEUE_RETRY, QUEUE_DEFER) ---- */

struct hold_ctx {
    struct seen s;
    int64_t t0;
    long dep_down_ms;   /* "dep" fails with QUEUE_RETRY until this long after t0 */
    unsigned dep_tries; /* attempts at "dep" */
    unsigned defer_left;
    unsigned defer_tries;
    bool dep_done;
    bool defer_done;
    int64_t dep_done_ms;
    int64_t other_first_ms; /* first "other" handed over */
    unsigned other_done;
    unsigned others;
    unsigned max_count; /* highest x-delivery-count seen */
    bool always_retry;
    unsigned stop_after_tries;
};

static enum queue_disposition hold_handler(void *ctx, const struct queue_delivery *d)
{
    struct hold_ctx *x = ctx;
    int64_t now = tx_time_mono_ms();

    if (d->delivery_count > x->max_count)
        x->max_count = d->delivery_count;
    if (strcmp(d->body, "dep") == 0) {
        x->dep_tries++;
        if (x->stop_after_tries > 0 && x->dep_tries >= x->stop_after_tries)
            x->s.stop = 1;
        if (x->always_retry || now - x->t0 < x->dep_down_ms)
            return QUEUE_RETRY;
        x->dep_done = true;
        x->dep_done_ms = now;
    }
    else if (strcmp(d->body, "defer") == 0) {
        x->defer_tries++;
        if (x->defer_left > 0) {
            x->defer_left--;
            return QUEUE_DEFER;
        }
        x->defer_done = true;
    }
    else {
        if (x->other_first_ms == 0)
            x->other_first_ms = now;
        x->other_done++;
    }
    if ((x->dep_done || x->defer_done) && x->other_done == x->others)
        x->s.stop = 1;
    return QUEUE_ACK;
}

static void publish_bodies(const char *q, const char *const *bodies, size_t n)
{
    struct queue_config cfg = config(NULL);
    struct queue_msg msgs[16];
    struct queue_publisher *p;
    struct tx_err err;

    assert_true(n <= 16);
    memset(msgs, 0, sizeof(msgs));
    for (size_t i = 0; i < n; i++) {
        msgs[i].routing_key = q;
        msgs[i].message_id = bodies[i];
        msgs[i].body = bodies[i];
        msgs[i].len = strlen(bodies[i]);
    }
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    if (queue_publish_confirmed(p, "", msgs, n, &err) != 0)
        fail_msg("%s", err.msg);
    queue_publisher_destroy(p);
}

/* Runs one consumer of q (prefetch 10, heartbeat 1 s) with the given retry settings. */
static void run_hold(const char *q, struct hold_ctx *x, const struct queue_retry *rq)
{
    struct queue_config cfg = config(NULL);
    struct queue_consumer *c;
    struct tx_err err;

    cfg.name = "txtest-queue-hold";
    cfg.heartbeat_s = 1; /* the broker closes a connection silent for ~2 heartbeats */
    c = queue_consumer_create(&cfg, q, 10, &err);
    assert_non_null(c);
    assert_int_equal(queue_consumer_set_retry(c, rq, &err), 0);
    queue_consumer_set_event_fn(c, on_event, &x->s);
    x->t0 = tx_time_mono_ms();
    watch(&x->s.stop);
    assert_int_equal(queue_consumer_run(c, hold_handler, x, &x->s.stop, &err), 0);
    unwatch();
    assert_int_equal(queue_consumer_held(c, NULL), 0);
    queue_consumer_destroy(c);
}

/*
 * A dependency down for 4 s (twice the heartbeat timeout): the delivery is held in the process
 * and retried with back-off on one connection that stays up (heartbeats answered while holding),
 * is never returned to the broker (x-delivery-limit 1 would dead-letter it on the 2nd return),
 * and the deliveries behind it wait for it (paused), then all go through.
 */
static void test_consumer_holds_retry(void **state)
{
    char q[128], dlx[128], dlq[128], args[256];
    const char *bodies[] = { "dep", "o1", "o2", "o3" };
    struct hold_ctx x;

    (void) state;
    name_of(q, sizeof(q), "hold");
    name_of(dlx, sizeof(dlx), "hold.dlx");
    name_of(dlq, sizeof(dlq), "hold.dlq");
    declare_exchange(dlx, "fanout");
    declare_queue(dlq, "");
    bind_queue(dlx, dlq, "");
    snprintf(args, sizeof(args), "\"x-delivery-limit\":1,\"x-dead-letter-exchange\":\"%s\"", dlx);
    declare_queue(q, args);
    publish_bodies(q, bodies, 4);

    memset(&x, 0, sizeof(x));
    x.dep_down_ms = 4000;
    x.others = 3;
    run_hold(q, &x, &(struct queue_retry){ 100, 800, 60000 });
    print_message("hold: \"dep\" done after %u attempts, %lld ms; %d held events, %d "
                  "disconnects\n",
                  x.dep_tries, (long long) (x.dep_done_ms - x.t0), x.s.held, x.s.disconnected);
    assert_true(x.dep_done);
    assert_int_equal(x.other_done, 3);
    assert_int_equal(x.s.disconnected, 0); /* heartbeats kept the connection */
    assert_int_equal(x.s.connected, 1);
    assert_int_equal(x.max_count, 0); /* never returned to the broker */
    /* 100, 200, 400, 800, 800, ... ms: about 7-9 attempts in 4 s, not a busy loop */
    assert_true(x.dep_tries >= 5);
    assert_true(x.dep_tries <= 12);
    assert_int_equal(x.s.held, (int) x.dep_tries - 1);
    assert_int_equal(x.s.paused_events, x.s.held);
    assert_int_equal(x.s.resumed, 1);
    assert_int_equal(x.s.requeued, 0);
    /* Paused: nothing behind it was handed over before it succeeded. */
    assert_true(x.other_first_ms >= x.dep_done_ms);
    expect_depth(q, 0);
    expect_depth(dlq, 0);
}

/* QUEUE_DEFER holds one delivery but lets the others through meanwhile. */
static void test_consumer_defer_lets_others_pass(void **state)
{
    char q[128];
    const char *bodies[] = { "defer", "o1", "o2" };
    struct hold_ctx x;

    (void) state;
    name_of(q, sizeof(q), "defer");
    declare_queue(q, "");
    publish_bodies(q, bodies, 3);
    memset(&x, 0, sizeof(x));
    x.defer_left = 3;
    x.others = 2;
    run_hold(q, &x, &(struct queue_retry){ 100, 400, 60000 });
    assert_true(x.defer_done);
    assert_int_equal(x.defer_tries, 4);
    assert_int_equal(x.other_done, 2);
    assert_int_equal(x.s.held, 3);
    assert_int_equal(x.s.paused_events, 0);
    assert_int_equal(x.s.resumed, 1);
    assert_int_equal(x.max_count, 0);
    assert_int_equal(x.s.disconnected, 0);
    expect_depth(q, 0);
}

/* Held longer than hold_ms: requeued once (x-delivery-count 1), then handled. */
static void test_consumer_hold_limit_requeues(void **state)
{
    char q[128];
    const char *bodies[] = { "dep" };
    struct hold_ctx x;

    (void) state;
    name_of(q, sizeof(q), "holdlimit");
    declare_queue(q, "");
    publish_bodies(q, bodies, 1);
    memset(&x, 0, sizeof(x));
    x.dep_down_ms = 1200;
    run_hold(q, &x, &(struct queue_retry){ 100, 200, 500 });
    assert_true(x.dep_done);
    assert_true(x.s.requeued >= 1);
    assert_true(x.max_count >= 1);
    assert_int_equal(x.s.disconnected, 0);
    expect_depth(q, 0);
}

/* A stop while a delivery is held: the loop ends at once, the delivery is not acked (it is back
 * in the queue), and the deliveries behind it were never handed over. */
static void test_consumer_stop_during_hold(void **state)
{
    char q[128];
    const char *bodies[] = { "dep", "o1" };
    struct hold_ctx x;
    int64_t t0;

    (void) state;
    name_of(q, sizeof(q), "holdstop");
    declare_queue(q, "");
    publish_bodies(q, bodies, 2);
    memset(&x, 0, sizeof(x));
    x.always_retry = true;
    x.stop_after_tries = 3;
    x.others = 1;
    t0 = tx_time_mono_ms();
    run_hold(q, &x, &(struct queue_retry){ 100, 200, 60000 });
    assert_true(tx_time_mono_ms() - t0 < 5000);
    assert_int_equal(x.dep_tries, 3);
    assert_int_equal(x.other_done, 0);
    assert_int_equal(x.s.stopped, 1);
    if (x.s.stop_err[0] != '\0')
        fail_msg("graceful stop failed: %s", x.s.stop_err);
    expect_depth(q, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_connection_refused_is_fast),
        cmocka_unit_test(test_bad_password_is_rejected),
        cmocka_unit_test(test_publish_routes_exactly),
        cmocka_unit_test(test_unroutable_is_rejected),
        cmocka_unit_test(test_missing_exchange),
        cmocka_unit_test(test_publisher_survives_broker_close),
        cmocka_unit_test(test_publisher_idle_past_heartbeat),
        cmocka_unit_test(test_consumer_ack_retry_reject),
        cmocka_unit_test(test_consumer_dead_letters_reach_dlq),
        cmocka_unit_test(test_consumer_stop_loses_nothing),
        cmocka_unit_test(test_consumer_reconnects),
        cmocka_unit_test(test_consumer_batches),
        cmocka_unit_test(test_consumer_pipelined),
        cmocka_unit_test(test_consumer_holds_retry),
        cmocka_unit_test(test_consumer_defer_lets_others_pass),
        cmocka_unit_test(test_consumer_hold_limit_requeues),
        cmocka_unit_test(test_consumer_stop_during_hold),
        cmocka_unit_test(test_consumer_large_bodies),
        cmocka_unit_test(test_consumer_reports_connect_failures),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
