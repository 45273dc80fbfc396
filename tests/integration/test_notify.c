/*
 * Integration test of the txnotify daemon (the real binary, TXNOTIFY_BIN) against the services of
 * `ci/stack`: RabbitMQ, Redis and maildev, plus a fake SMTP server on 127.0.0.1 written here
 * (tests/unit/notify_fake_smtp.h) for the replies maildev never gives (550, 451) and for "SMTP
 * down". Starts no service of the stack.
 *
 * Needs (eval "$(ci/stack env)"): TX_AMQP_URL (an administrator: the test declares its own
 * queues and the daemons consume them), TX_RABBIT_MGMT_URL, TX_REDIS_URL, TX_SMTP_URL,
 * TX_MAIL_API_URL; TX_SOURCE_DIR (set by ctest) for the templates.
 *
 * Isolation: every queue is "txtest.notify.<pid>.*" (deleted at the end); every e-mail goes to a
 * unique address "<case>-<run>@example.test" and mail is only ever looked up by those addresses,
 * never deleted in bulk; the outcome events are read from a private queue bound to tx.events and
 * filtered by this run's event ids. The daemons run on free ports and are stopped at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/tx_buf.h"
#include "common/tx_id.h"
#include "common/tx_time.h"
#include "consumers/notify/notify_header.h"
#include "storage/cache.h"
#include "storage/queue.h"

#include "../unit/notify_fake_smtp.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TXNOTIFY_BIN
#error "TXNOTIFY_BIN must name the txnotify binary"
#endif

#define WAIT_MS 20000

struct daemon {
    pid_t pid;
    int port;
    char queue[128];
    char log[256];
};

struct env {
    const char *amqp_url;
    const char *mgmt_url;
    const char *redis_url;
    const char *daemon_redis_url; /* txnotify's own ACL user when the stack has it */
    const char *smtp_url;
    const char *mail_api;
    const char *src_dir;
    char run[48];
    char prefix[64];
    char out_queue[128];
    char ops_addr[128];
    struct queue_publisher *pub;
    struct daemon mail;    /* against maildev */
    struct daemon fake;    /* against the fake SMTP server */
    struct fake_smtp smtp; /* the fake server */
    int fake_port;
    json_t *outcomes; /* every outcome event of this run seen so far: {body, props, key} */
};

static struct env E;

/* ---- HTTP helpers -------------------------------------------------------------------------- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct tx_buf *b = ud;

    return tx_buf_append(b, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

/* One HTTP request; returns the status (0 on transport failure). out may be NULL. */
static long http(const char *method, const char *url, const char *body, struct tx_buf *out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    struct tx_buf sink;
    long status = 0;

    assert_non_null(h);
    tx_buf_init(&sink, 64u << 20);
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

static long mgmt(const char *method, const char *path, const char *body, struct tx_buf *out)
{
    char url[1024];

    snprintf(url, sizeof(url), "%s%s", E.mgmt_url, path);
    return http(method, url, body, out);
}

static void declare_queue(const char *name)
{
    char path[256];
    long st;

    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", name);
    st = mgmt("PUT", path,
              "{\"durable\":true,\"auto_delete\":false,\"arguments\":{\"x-queue-type\":"
              "\"quorum\"}}",
              NULL);
    if (st / 100 != 2)
        fail_msg("declare %s: HTTP %ld", name, st);
}

static void bind_queue(const char *exchange, const char *queue, const char *key)
{
    char path[512];
    char body[256];
    long st;

    snprintf(path, sizeof(path), "/api/bindings/%%2F/e/%s/q/%s", exchange, queue);
    snprintf(body, sizeof(body), "{\"routing_key\":\"%s\"}", key);
    st = mgmt("POST", path, body, NULL);
    if (st / 100 != 2)
        fail_msg("bind %s: HTTP %ld", queue, st);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* ---- events ---------------------------------------------------------------------------------- */

struct event {
    char upload_id[TX_UUID_STR_LEN + 1];
    char event_id[80];
    char body[8192];
};

/* A transaction.scored event for one record; flagged events carry two reasons. */
static void make_event(struct event *ev, const char *email, const char *cliente, bool flagged)
{
    struct tx_buf b;
    char ts[TX_TIME_FORMAT_LEN];

    assert_int_equal(tx_uuid7_make(tx_time_now_ms(), ev->upload_id), 0);
    snprintf(ev->event_id, sizeof(ev->event_id), "%s:3", ev->upload_id);
    tx_time_format_ms(tx_time_now_ms(), ts, sizeof(ts));
    tx_buf_init(&b, sizeof(ev->body) - 1);
    assert_int_equal(tx_buf_printf(&b,
                                   "{\"type\":\"transaction.scored\",\"schema_version\":1,"
                                   "\"event_id\":\"%s\",\"upload_id\":\"%s\",\"index\":3,"
                                   "\"object\":\"raw/2024/03/11/%s.json\",\"received_at\":\"%s\","
                                   "\"transaction\":{\"_id\":\"c-%s\",\"isActive\":true,"
                                   "\"cliente\":",
                                   ev->event_id, ev->upload_id, ev->upload_id, ts, E.run),
                     0);
    assert_int_equal(tx_buf_json_str(&b, cliente, strlen(cliente)), 0);
    assert_int_equal(tx_buf_puts(&b, ",\"email\":"), 0);
    assert_int_equal(tx_buf_json_str(&b, email, strlen(email)), 0);
    assert_int_equal(
        tx_buf_printf(&b,
                      ",\"endereco\":\"Rua das Flores, 10 <apto & 2>\","
                      "\"datatrasancao\":\"2024-03-11T12:00:00 +00:00\",\"valor\":1234.5},"
                      "\"verdict\":{\"flagged\":%s,\"score\":%s,\"reasons\":%s}}",
                      flagged ? "true" : "false", flagged ? "0.9" : "0",
                      flagged
                          ? "[{\"code\":\"ADDRESS_CHANGE\",\"detail\":\"endereco mudou em 60 s\"},"
                            "{\"code\":\"VELOCITY\",\"detail\":\"6 em 60 s\"}]"
                          : "[]"),
        0);
    memcpy(ev->body, b.data, b.len + 1);
    tx_buf_cleanup(&b);
}

static void publish_raw(const char *queue, const char *body, const char *message_id,
                        const char *correlation_id)
{
    struct queue_msg m;
    struct tx_err err = { 0 };

    memset(&m, 0, sizeof(m));
    m.routing_key = queue;
    m.message_id = message_id;
    m.correlation_id = correlation_id;
    m.body = body;
    m.len = strlen(body);
    /* The broker is shared: ride out a restart by another developer's test. */
    for (int64_t until = tx_time_mono_ms() + WAIT_MS;;) {
        int rc = queue_publish_confirmed(E.pub, "", &m, 1, &err);

        if (rc == 0)
            return;
        if ((rc != TX_EUNAVAIL && rc != TX_ETIMEDOUT) || tx_time_mono_ms() > until)
            fail_msg("publish to %s: %s", queue, err.msg);
        sleep_ms(250);
    }
}

static void publish(const char *queue, const struct event *ev)
{
    publish_raw(queue, ev->body, ev->event_id, ev->upload_id);
}

/* Moves every message of the outcome queue into E.outcomes. */
static void drain_outcomes(void)
{
    char path[256];
    struct tx_buf out;
    json_t *arr;
    size_t i;
    json_t *m;

    snprintf(path, sizeof(path), "/api/queues/%%2F/%s/get", E.out_queue);
    for (;;) {
        tx_buf_init(&out, 64u << 20);
        if (mgmt("POST", path,
                 "{\"count\":500,\"ackmode\":\"ack_requeue_false\",\"encoding\":\"auto\"}",
                 &out) != 200)
            fail_msg("get from %s failed", E.out_queue);
        arr = json_loadb(out.data, out.len, 0, NULL);
        tx_buf_cleanup(&out);
        assert_true(json_is_array(arr));
        json_array_foreach(arr, i, m)
        {
            const char *payload = json_string_value(json_object_get(m, "payload"));
            json_t *body = payload != NULL ? json_loads(payload, 0, NULL) : NULL;
            json_t *rec;

            if (body == NULL)
                continue;
            rec =
                json_pack("{s:o,s:O,s:O}", "body", body, "props", json_object_get(m, "properties"),
                          "key", json_object_get(m, "routing_key"));
            json_array_append_new(E.outcomes, rec);
        }
        if (json_array_size(arr) == 0) {
            json_decref(arr);
            break;
        }
        json_decref(arr);
    }
}

/* Number of outcome events (type "notification.sent" or ".failed") for (event_id, template);
 * *last (when not NULL) gets the last one's record (borrowed). */
static int outcomes(const char *event_id, const char *tpl, const char *type, json_t **last)
{
    size_t i;
    json_t *rec;
    int n = 0;

    drain_outcomes();
    json_array_foreach(E.outcomes, i, rec)
    {
        json_t *b = json_object_get(rec, "body");

        if (strcmp(json_string_value(json_object_get(b, "event_id")), event_id) == 0 &&
            strcmp(json_string_value(json_object_get(b, "template")), tpl) == 0 &&
            strcmp(json_string_value(json_object_get(b, "type")), type) == 0) {
            n++;
            if (last != NULL)
                *last = rec;
        }
    }
    return n;
}

/* Waits until outcomes() reaches want; fails after WAIT_MS. */
static json_t *await_outcomes(const char *event_id, const char *tpl, const char *type, int want)
{
    int64_t until = tx_time_mono_ms() + WAIT_MS;
    json_t *last = NULL;
    int n = 0;

    while (tx_time_mono_ms() < until) {
        n = outcomes(event_id, tpl, type, &last);
        if (n >= want)
            return last;
        sleep_ms(100);
    }
    fail_msg("%d of %d %s events for %s/%s after %d ms", n, want, type, event_id, tpl, WAIT_MS);
    return NULL;
}

/* ---- maildev --------------------------------------------------------------------------------- */

/* Every e-mail whose envelope recipient is addr (a new reference). */
static json_t *mails_to(const char *addr)
{
    char url[512];
    struct tx_buf out;
    json_t *all;
    json_t *res = json_array();
    size_t i;
    json_t *m;

    snprintf(url, sizeof(url), "%s/api/email", E.mail_api);
    tx_buf_init(&out, 512u << 20);
    if (http("GET", url, NULL, &out) != 200)
        fail_msg("maildev API %s not answering", url);
    all = json_loadb(out.data, out.len, 0, NULL);
    tx_buf_cleanup(&out);
    assert_true(json_is_array(all));
    json_array_foreach(all, i, m)
    {
        json_t *env_to = json_object_get(json_object_get(m, "envelope"), "to");
        size_t k;
        json_t *t;

        json_array_foreach(env_to, k, t)
        {
            const char *a = json_string_value(json_object_get(t, "address"));

            if (a != NULL && strcmp(a, addr) == 0) {
                json_array_append(res, m);
                break;
            }
        }
    }
    json_decref(all);
    return res;
}

/* Waits until addr has want e-mails, then makes sure no more arrive for a moment. */
static json_t *await_mails(const char *addr, size_t want)
{
    int64_t until = tx_time_mono_ms() + WAIT_MS;
    json_t *ms = NULL;

    while (tx_time_mono_ms() < until) {
        json_decref(ms);
        ms = mails_to(addr);
        if (json_array_size(ms) >= want)
            break;
        sleep_ms(100);
    }
    if (json_array_size(ms) != want)
        fail_msg("%zu e-mails to %s, expected %zu", json_array_size(ms), addr, want);
    return ms;
}

static char *mail_source(json_t *mail)
{
    char url[512];
    struct tx_buf out;

    snprintf(url, sizeof(url), "%s/api/email/%s/source", E.mail_api,
             json_string_value(json_object_get(mail, "id")));
    tx_buf_init(&out, 16u << 20);
    assert_int_equal(http("GET", url, NULL, &out), 200);
    return tx_buf_steal(&out, NULL);
}

static const char *str_at(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);

    if (b != NULL)
        v = json_object_get(v, b);
    return json_string_value(v) != NULL ? json_string_value(v) : "";
}

/* Deletes, one by one, the e-mails this run sent (recipients holding E.run); never the rest of
 * the shared mailbox. */
static void delete_run_mails(void)
{
    char url[512];
    struct tx_buf out;
    json_t *all;
    json_t *m;
    size_t i;

    snprintf(url, sizeof(url), "%s/api/email", E.mail_api);
    tx_buf_init(&out, 512u << 20);
    if (http("GET", url, NULL, &out) != 200) {
        tx_buf_cleanup(&out);
        return;
    }
    all = json_loadb(out.data, out.len, 0, NULL);
    tx_buf_cleanup(&out);
    json_array_foreach(all, i, m)
    {
        json_t *env_to = json_object_get(json_object_get(m, "envelope"), "to");
        size_t k;
        json_t *t;

        json_array_foreach(env_to, k, t)
        {
            const char *a = json_string_value(json_object_get(t, "address"));

            if (a != NULL && strstr(a, E.run) != NULL) {
                snprintf(url, sizeof(url), "%s/api/email/%s", E.mail_api,
                         json_string_value(json_object_get(m, "id")));
                http("DELETE", url, NULL, NULL);
                break;
            }
        }
    }
    json_decref(all);
}

/* ---- the daemons ----------------------------------------------------------------------------- */

static void start_daemon(struct daemon *d, const char *name, const char *smtp_url,
                         const char *budget)
{
    char port[16];
    char listen[64];
    char templates[4096];
    char url[256];
    int64_t until;

    d->port = fake_free_port();
    assert_true(d->port > 0);
    snprintf(d->queue, sizeof(d->queue), "%s%s", E.prefix, name);
    snprintf(d->log, sizeof(d->log), "/tmp/txtest-notify-%ld-%s.log", (long) getpid(), name);
    declare_queue(d->queue);
    snprintf(port, sizeof(port), "%d", d->port);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->port);
    snprintf(templates, sizeof(templates), "%s/volumes/notify/templates", E.src_dir);
    d->pid = fork();
    assert_true(d->pid >= 0);
    if (d->pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        /* Inherit nothing else (the fake server's listening socket above all). */
        for (fd = 3; fd < 1024; fd++)
            close(fd);
        unsetenv("TX_QUEUE");
        setenv("TX_AMQP_URL", E.amqp_url, 1);
        setenv("TX_NOTIFY_QUEUE", d->queue, 1);
        setenv("TX_HEALTH_LISTEN", listen, 1);
        setenv("TX_REDIS_URL", E.daemon_redis_url, 1);
        setenv("TX_SMTP_URL", smtp_url, 1);
        setenv("TX_SMTP_TLS", "none", 1);
        setenv("TX_TEMPLATES_DIR", templates, 1);
        setenv("TX_ALERT_EMAIL", E.ops_addr, 1);
        setenv("TX_NOTIFY_RETRY_BUDGET_MS", budget, 1);
        setenv("TX_SMTP_CONNECT_TIMEOUT_MS", "1s", 1);
        setenv("TX_SMTP_TIMEOUT_MS", "5s", 1);
        setenv("TX_NOTIFY_SENT_TTL_MS", "30m", 1); /* test markers need not live 7 days */
        setenv("TX_LOG_LEVEL", "debug", 1);
        execl(TXNOTIFY_BIN, "txnotify", (char *) NULL);
        _exit(127);
    }
    snprintf(url, sizeof(url), "http://%s/readyz", listen);
    until = tx_time_mono_ms() + WAIT_MS;
    while (tx_time_mono_ms() < until) {
        int status;

        if (http("GET", url, NULL, NULL) == 200)
            return;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            fail_msg("txnotify exited at start (status %d), see %s", status, d->log);
        }
        sleep_ms(100);
    }
    fail_msg("txnotify not ready on %s after %d ms, see %s", listen, WAIT_MS, d->log);
}

/* SIGTERM, then the exit status must be 0 within 20 s (SIGKILL otherwise). */
static int stop_daemon(struct daemon *d)
{
    int64_t until = tx_time_mono_ms() + 20000;
    int status = -1;

    if (d->pid <= 0)
        return 0;
    kill(d->pid, SIGTERM);
    while (tx_time_mono_ms() < until) {
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(50);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &status, 0);
    d->pid = 0;
    return -1;
}

/* The value of one series in the daemon's /metrics (-1 when absent). */
static double metric(const struct daemon *d, const char *series)
{
    char url[128];
    struct tx_buf out;
    const char *p;
    double v = -1;
    size_t len = strlen(series);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", d->port);
    tx_buf_init(&out, 4u << 20);
    assert_int_equal(http("GET", url, NULL, &out), 200);
    for (p = out.data; p != NULL && *p != '\0';
         p = strchr(p, '\n') != NULL ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, len) == 0 && p[len] == ' ') {
            v = strtod(p + len + 1, NULL);
            break;
        }
    }
    tx_buf_cleanup(&out);
    return v;
}

static void addr_of(char *out, size_t len, const char *what)
{
    snprintf(out, len, "%s-%s@example.test", what, E.run);
}

/* ---- tests: the daemon against maildev ------------------------------------------------------- */

static void test_receipt(void **state)
{
    struct event ev;
    char addr[128];
    char bcc[128];
    char cliente[256];
    char msgid[NOTIFY_MSGID_MAX];
    json_t *out;
    json_t *ms;
    json_t *m;
    json_t *body;
    char *src;

    (void) state;
    addr_of(addr, sizeof(addr), "receipt");
    addr_of(bcc, sizeof(bcc), "injected-bcc");
    snprintf(cliente, sizeof(cliente), "Zoë <b>Ünïcødé</b>\r\nBcc: %s", bcc);
    make_event(&ev, addr, cliente, false);
    publish(E.mail.queue, &ev);

    out = await_outcomes(ev.event_id, "receipt", "notification.sent", 1);
    assert_int_equal(notify_message_id(ev.event_id, "receipt", "txpipe.local", msgid), 0);
    body = json_object_get(out, "body");
    assert_string_equal(str_at(body, "to", NULL), addr);
    assert_string_equal(str_at(body, "message_id", NULL), msgid);
    assert_true(json_is_null(json_object_get(body, "error")));
    assert_string_equal(str_at(out, "key", NULL), "notification.sent");
    {
        char want[160];

        snprintf(want, sizeof(want), "%s:receipt", ev.event_id);
        assert_string_equal(str_at(out, "props", "message_id"), want);
        assert_string_equal(str_at(out, "props", "correlation_id"), ev.upload_id);
    }
    /* Only the receipt: no alert for a clean transaction. */
    assert_int_equal(outcomes(ev.event_id, "alert_client", "notification.sent", NULL), 0);

    ms = await_mails(addr, 1);
    m = json_array_get(ms, 0);
    assert_string_equal(str_at(m, "headers", "message-id"), msgid);
    assert_string_equal(str_at(json_array_get(json_object_get(m, "from"), 0), "address", NULL),
                        "no-reply@txpipe.local");
    /* The subject decodes to UTF-8 with the client's name; the CR/LF became spaces. */
    {
        const char *subj = str_at(m, "subject", NULL);
        char want[256];

        snprintf(want, sizeof(want), "Zoë <b>Ünïcødé</b>  Bcc: %s", bcc);
        if (strstr(subj, want) == NULL || strstr(subj, "Recibo da sua transação") == NULL)
            fail_msg("subject \"%s\"", subj);
    }
    /* Text part as is, HTML part escaped. */
    assert_non_null(strstr(str_at(m, "text", NULL), "Olá, Zoë <b>Ünïcødé</b>"));
    assert_non_null(strstr(str_at(m, "text", NULL), "1234.50"));
    assert_non_null(strstr(str_at(m, "html", NULL), "Zoë &lt;b&gt;Ünïcødé&lt;/b&gt;"));
    assert_non_null(strstr(str_at(m, "html", NULL), "Rua das Flores, 10 &lt;apto &amp; 2&gt;"));
    assert_null(strstr(str_at(m, "html", NULL), "<b>Ünïcødé</b>"));

    /* The raw message: headers in place, RFC 2047 subject, no injected header. */
    src = mail_source(m);
    assert_non_null(strstr(src, "\r\nSubject: =?UTF-8?B?"));
    assert_non_null(strstr(src, "\r\nMIME-Version: 1.0\r\n"));
    assert_non_null(strstr(src, "\r\nDate: "));
    assert_non_null(strstr(src, "multipart/alternative"));
    assert_non_null(strstr(src, "Content-Type: text/plain; charset=utf-8"));
    assert_non_null(strstr(src, "Content-Type: text/html; charset=utf-8"));
    /* Only the header block: the text part legitimately shows the name with its "Bcc:". */
    assert_non_null(strstr(src, "\r\n\r\n"));
    *strstr(src, "\r\n\r\n") = '\0';
    {
        const char *l;

        for (l = src; l != NULL; l = strstr(l, "\r\n") != NULL ? strstr(l, "\r\n") + 2 : NULL) {
            if (strncasecmp(l, "bcc", 3) == 0)
                fail_msg("a Bcc header line was created: %.60s", l);
        }
    }
    free(src);
    json_decref(ms);
    /* Nothing reached the address the injection tried to add. */
    ms = mails_to(bcc);
    assert_int_equal(json_array_size(ms), 0);
    json_decref(ms);
}

static void test_flagged_alerts(void **state)
{
    struct event ev;
    char addr[128];
    json_t *ms;
    json_t *m;

    (void) state;
    addr_of(addr, sizeof(addr), "flagged");
    make_event(&ev, addr, "Mallory Silva", true);
    publish(E.mail.queue, &ev);
    await_outcomes(ev.event_id, "alert_client", "notification.sent", 1);
    await_outcomes(ev.event_id, "alert_ops", "notification.sent", 1);
    assert_int_equal(outcomes(ev.event_id, "receipt", "notification.sent", NULL), 0);

    /* The client: exactly one e-mail, the alert (no receipt). */
    ms = await_mails(addr, 1);
    m = json_array_get(ms, 0);
    assert_non_null(strstr(str_at(m, "subject", NULL), "Alerta de segurança"));
    assert_non_null(strstr(str_at(m, "text", NULL), "- ADDRESS_CHANGE: endereco mudou em 60 s"));
    assert_non_null(strstr(str_at(m, "html", NULL), "<li><strong>VELOCITY</strong>"));
    json_decref(ms);

    /* Operations: one alert about this transaction, naming the reasons and the client. */
    {
        int64_t until = tx_time_mono_ms() + WAIT_MS;
        size_t i;
        int found = 0;

        while (found == 0 && tx_time_mono_ms() < until) {
            ms = mails_to(E.ops_addr);
            json_array_foreach(ms, i, m)
            {
                if (strstr(str_at(m, "text", NULL), ev.event_id) != NULL) {
                    found++;
                    assert_non_null(strstr(str_at(m, "subject", NULL), "ADDRESS_CHANGE, VELOCITY"));
                    assert_non_null(strstr(str_at(m, "text", NULL), addr));
                }
            }
            json_decref(ms);
            if (found == 0)
                sleep_ms(100);
        }
        assert_int_equal(found, 1);
    }
}

static void test_redelivery_sends_nothing_more(void **state)
{
    struct event ev;
    char addr[128];
    double skipped0 = metric(&E.mail, "txnotify_skipped_total{template=\"receipt\"}");
    json_t *ms;

    (void) state;
    addr_of(addr, sizeof(addr), "redelivered");
    make_event(&ev, addr, "Rita", false);
    /* Twice back to back (a duplicate publish), then once more after it was sent. */
    publish(E.mail.queue, &ev);
    publish(E.mail.queue, &ev);
    await_outcomes(ev.event_id, "receipt", "notification.sent", 2);
    publish(E.mail.queue, &ev);
    await_outcomes(ev.event_id, "receipt", "notification.sent", 3);
    sleep_ms(500);
    ms = await_mails(addr, 1);
    json_decref(ms);
    assert_true(metric(&E.mail, "txnotify_skipped_total{template=\"receipt\"}") >= skipped0 + 2);
}

static void test_unusable_address_fails(void **state)
{
    struct event ev;
    char addr[128];
    json_t *out;
    json_t *ms;

    (void) state;
    /* Valid for the transaction schema, unusable in RCPT TO / To. */
    snprintf(addr, sizeof(addr), "bad<addr-%s@example.test", E.run);
    make_event(&ev, addr, "Bad Address", false);
    publish(E.mail.queue, &ev);
    out = await_outcomes(ev.event_id, "receipt", "notification.failed", 1);
    assert_non_null(
        strstr(str_at(json_object_get(out, "body"), "error", NULL), "invalid recipient address"));
    assert_string_equal(str_at(json_object_get(out, "body"), "to", NULL), addr);
    ms = mails_to(addr);
    assert_int_equal(json_array_size(ms), 0);
    json_decref(ms);
}

static void test_poison_rejected(void **state)
{
    double rej0 = metric(&E.mail, "txnotify_rejected_total");
    int64_t until;
    struct event ev;
    char addr[128];

    (void) state;
    publish_raw(E.mail.queue, "{not json", "poison-1", "");
    publish_raw(E.mail.queue,
                "{\"type\":\"notification.sent\",\"schema_version\":1,\"event_id\":\"x\"}",
                "poison-2", "");
    until = tx_time_mono_ms() + WAIT_MS;
    while (metric(&E.mail, "txnotify_rejected_total") < rej0 + 2 && tx_time_mono_ms() < until)
        sleep_ms(100);
    assert_true(metric(&E.mail, "txnotify_rejected_total") >= rej0 + 2);
    /* And the daemon keeps working. */
    addr_of(addr, sizeof(addr), "after-poison");
    make_event(&ev, addr, "Ana", false);
    publish(E.mail.queue, &ev);
    await_outcomes(ev.event_id, "receipt", "notification.sent", 1);
}

/* Sets the daemon's marker for (event_id, template) directly in Redis. */
static void redis_set(const char *key, const char *val, int ttl_s)
{
    struct tx_err err = { 0 };
    struct cache_conn *c = cache_conn_create(E.redis_url, 2000, &err);

    if (c == NULL)
        fail_msg("redis: %s", err.msg);
    if (cache_set(c, key, val, strlen(val), ttl_s, &err) != 0)
        fail_msg("redis SET %s: %s", key, err.msg);
    cache_conn_destroy(c);
}

static void set_marker(const char *event_id, const char *tpl, const char *val, int ttl_s)
{
    char key[256];

    snprintf(key, sizeof(key), "tx:notify:sent:{%s}:%s", event_id, tpl);
    redis_set(key, val, ttl_s);
}

/* A restart after the e-mail went out: the "sent" marker is there, so nothing is sent, but the
 * outcome is published (again). */
static void test_sent_marker_skips_sending(void **state)
{
    struct event ev;
    char addr[128];
    json_t *out;
    json_t *ms;

    (void) state;
    addr_of(addr, sizeof(addr), "marked");
    make_event(&ev, addr, "Marcada", false);
    set_marker(ev.event_id, "receipt", "sent", 600);
    publish(E.mail.queue, &ev);
    out = await_outcomes(ev.event_id, "receipt", "notification.sent", 1);
    assert_true(json_is_null(json_object_get(json_object_get(out, "body"), "error")));
    sleep_ms(300);
    ms = mails_to(addr);
    assert_int_equal(json_array_size(ms), 0);
    json_decref(ms);
}

/*
 * A claim "sending" of a live instance (its heartbeat key is there): the daemon holds the
 * delivery in the process (never requeued) while the heartbeat lasts (3 s), then takes the claim
 * over long before the claim's own 60 s TTL, and sends exactly once.
 */
static void test_claim_held_elsewhere_waits(void **state)
{
    static const char owner[] = "00000000-0000-7000-8000-00000000c1a1";
    struct event ev;
    char addr[128];
    char claim[128];
    char alive[128];
    int64_t t0;
    int64_t took;
    json_t *ms;
    double requeued0 = metric(&E.mail, "txnotify_requeued_total");

    (void) state;
    addr_of(addr, sizeof(addr), "claimed");
    make_event(&ev, addr, "Reservada", false);
    snprintf(claim, sizeof(claim), "sending %s", owner);
    snprintf(alive, sizeof(alive), "tx:notify:alive:%s", owner);
    redis_set(alive, "1", 3);
    set_marker(ev.event_id, "receipt", claim, 60);
    t0 = tx_time_mono_ms();
    publish(E.mail.queue, &ev);
    await_outcomes(ev.event_id, "receipt", "notification.sent", 1);
    took = tx_time_mono_ms() - t0;
    print_message("claim of a live instance: sent after %lld ms\n", (long long) took);
    assert_true(took >= 2000); /* waited while the owner was alive */
    assert_true(took < 20000); /* did not wait for the claim's TTL */
    ms = await_mails(addr, 1);
    json_decref(ms);
    assert_true(metric(&E.mail, "txnotify_requeued_total") == requeued0);
}

/* The claim of an instance that died during its send (no heartbeat): taken over at once. */
static void test_claim_of_dead_instance_taken_over(void **state)
{
    struct event ev;
    char addr[128];
    int64_t t0;
    int64_t took;
    json_t *ms;

    (void) state;
    addr_of(addr, sizeof(addr), "deadclaim");
    make_event(&ev, addr, "Orfa", false);
    set_marker(ev.event_id, "receipt", "sending 00000000-0000-7000-8000-0000000dead1", 60);
    t0 = tx_time_mono_ms();
    publish(E.mail.queue, &ev);
    await_outcomes(ev.event_id, "receipt", "notification.sent", 1);
    took = tx_time_mono_ms() - t0;
    print_message("claim of a dead instance: sent after %lld ms\n", (long long) took);
    assert_true(took < 5000);
    ms = await_mails(addr, 1);
    assert_int_equal(json_array_size(ms), 1);
    json_decref(ms);
}

/* A burst of events is handled in batches whose e-mails go out over several SMTP connections in
 * parallel (TX_SMTP_CONNECTIONS, 4 by default): every e-mail once, every outcome published. */
static void test_batch_sends_in_parallel(void **state)
{
    enum {
        N = 24
    };
    struct event ev[N];
    char addr[N][128];
    double conns;
    int i;

    (void) state;
    for (i = 0; i < N; i++) {
        char what[32];

        snprintf(what, sizeof(what), "burst%d", i);
        addr_of(addr[i], sizeof(addr[i]), what);
        make_event(&ev[i], addr[i], "Rajada", false);
    }
    for (i = 0; i < N; i++)
        publish(E.mail.queue, &ev[i]);
    for (i = 0; i < N; i++)
        (void) await_outcomes(ev[i].event_id, "receipt", "notification.sent", 1);
    for (i = 0; i < N; i++) {
        json_t *ms = await_mails(addr[i], 1);

        assert_int_equal(json_array_size(ms), 1);
        json_decref(ms);
    }
    conns = metric(&E.mail, "txnotify_smtp_connections_total");
    print_message("burst of %d: %g SMTP connections opened by the daemon so far\n", N, conns);
    assert_true(conns >= 2);
}

/* ---- tests: the daemon against the fake SMTP server ------------------------------------------ */

static void test_permanent_550(void **state)
{
    struct event ev;
    char addr[128];
    json_t *out;
    const char *error;

    (void) state;
    addr_of(addr, sizeof(addr), "reject");
    make_event(&ev, addr, "Rejeitado", false);
    publish(E.fake.queue, &ev);
    out = await_outcomes(ev.event_id, "receipt", "notification.failed", 1);
    error = str_at(json_object_get(out, "body"), "error", NULL);
    if (strstr(error, "550 5.1.1") == NULL || strstr(error, "user unknown") == NULL)
        fail_msg("error \"%s\"", error);
    assert_int_equal(fake_smtp_accepted(&E.smtp, addr), 0);
    assert_true(metric(&E.fake, "txnotify_failed_total{template=\"receipt\"}") >= 1);

    /* Redelivered: the recorded failure is published again; the server is not asked again. */
    publish(E.fake.queue, &ev);
    out = await_outcomes(ev.event_id, "receipt", "notification.failed", 2);
    assert_string_equal(str_at(json_object_get(out, "body"), "error", NULL), error);
    pthread_mutex_lock(&E.smtp.mu);
    {
        int i;
        int seen = -1;

        for (i = 0; i < E.smtp.naddrs; i++) {
            if (strcmp(E.smtp.addrs[i].addr, addr) == 0)
                seen = E.smtp.addrs[i].rcpt_seen;
        }
        pthread_mutex_unlock(&E.smtp.mu);
        assert_int_equal(seen, 1);
    }
    assert_int_equal(outcomes(ev.event_id, "receipt", "notification.sent", NULL), 0);
}

static void test_transient_451_retried(void **state)
{
    struct event ev;
    char addr[128];
    double tr0 = metric(&E.fake, "txnotify_smtp_transient_total");

    (void) state;
    addr_of(addr, sizeof(addr), "tempfail");
    make_event(&ev, addr, "Temporario", false);
    publish(E.fake.queue, &ev);
    await_outcomes(ev.event_id, "receipt", "notification.sent", 1);
    assert_int_equal(outcomes(ev.event_id, "receipt", "notification.failed", NULL), 0);
    assert_int_equal(fake_smtp_accepted(&E.smtp, addr), 1);
    assert_true(metric(&E.fake, "txnotify_smtp_transient_total") >= tr0 + FAKE_TEMPFAILS);
}

static void test_smtp_down_is_retried_not_failed(void **state)
{
    struct event ev;
    char addr[128];
    char url[128];
    double retried0 = metric(&E.fake, "txnotify_retried_total");
    double requeued0 = metric(&E.fake, "txnotify_requeued_total");
    int64_t until;
    struct tx_buf out;

    (void) state;
    fake_smtp_stop(&E.smtp); /* nothing listens on the port now: connection refused */
    addr_of(addr, sizeof(addr), "smtpdown");
    make_event(&ev, addr, "Sem Servidor", false);
    publish(E.fake.queue, &ev);

    /* The handler backs off for its budget (2 s), then the loop holds the delivery and retries
     * it: retried, never failed, never requeued. */
    until = tx_time_mono_ms() + WAIT_MS;
    while (metric(&E.fake, "txnotify_retried_total") < retried0 + 2 && tx_time_mono_ms() < until)
        sleep_ms(200);
    assert_true(metric(&E.fake, "txnotify_retried_total") >= retried0 + 2);
    assert_int_equal(outcomes(ev.event_id, "receipt", "notification.failed", NULL), 0);
    assert_int_equal(outcomes(ev.event_id, "receipt", "notification.sent", NULL), 0);
    /* Readiness says why. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", E.fake.port);
    tx_buf_init(&out, 65536);
    assert_int_equal(http("GET", url, NULL, &out), 503);
    assert_non_null(strstr(out.data, "\"smtp\":\"down"));
    assert_non_null(strstr(out.data, "\"held\":\"1 deliveries"));
    tx_buf_cleanup(&out);

    /* The server comes back: the e-mail goes out, once. */
    assert_int_equal(fake_smtp_start(&E.smtp, E.fake_port), 0);
    await_outcomes(ev.event_id, "receipt", "notification.sent", 1);
    assert_int_equal(fake_smtp_accepted(&E.smtp, addr), 1);
    assert_int_equal(outcomes(ev.event_id, "receipt", "notification.failed", NULL), 0);
    assert_true(metric(&E.fake, "txnotify_requeued_total") == requeued0);
}

/* A template with an unknown placeholder: the daemon refuses to start and names the file. */
static void test_refuses_bad_template(void **state)
{
    char dir[] = "/tmp/txtest-notify-tpl-XXXXXX";
    char path[4096];
    char log[256];
    char want[4200];
    static const char *const names[] = { "receipt", "alert_client", "alert_ops" };
    static const char *const exts[] = { "subject", "txt", "html" };
    struct tx_buf out;
    FILE *f;
    pid_t pid;
    int status = 0;
    int i;
    int k;

    (void) state;
    assert_non_null(mkdtemp(dir));
    for (i = 0; i < 3; i++) {
        for (k = 0; k < 3; k++) {
            snprintf(path, sizeof(path), "%s/%s.%s", dir, names[i], exts[k]);
            f = fopen(path, "w");
            assert_non_null(f);
            fputs(i == 2 && k == 2 ? "<p>\n{{cliente}} {{nome_do_cliente}}</p>\n" : "x {{_id}}\n",
                  f);
            fclose(f);
        }
    }
    snprintf(log, sizeof(log), "%s/stderr.log", dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        for (fd = 3; fd < 1024; fd++)
            close(fd);
        unsetenv("TX_QUEUE");
        setenv("TX_AMQP_URL", E.amqp_url, 1);
        setenv("TX_TEMPLATES_DIR", dir, 1);
        setenv("TX_HEALTH_LISTEN", "127.0.0.1:1", 1);
        execl(TXNOTIFY_BIN, "txnotify", (char *) NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    f = fopen(log, "r");
    assert_non_null(f);
    tx_buf_init(&out, 1 << 20);
    while (fgets(path, sizeof(path), f) != NULL)
        tx_buf_puts(&out, path);
    fclose(f);
    snprintf(want, sizeof(want), "%s/alert_ops.html:2:13: unknown placeholder {{nome_do_cliente}}",
             dir);
    if (out.data == NULL || strstr(out.data, want) == NULL)
        fail_msg("stderr does not name the file: %s", out.data != NULL ? out.data : "");
    tx_buf_cleanup(&out);
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

static void test_graceful_stop(void **state)
{
    (void) state;
    assert_int_equal(stop_daemon(&E.fake), 0);
    assert_int_equal(stop_daemon(&E.mail), 0);
}

/* ---- setup ------------------------------------------------------------------------------------
 */

static int group_setup(void **state)
{
    struct queue_config qc;
    struct tx_err err = { 0 };
    char url[128];

    (void) state;
    E.amqp_url = getenv("TX_AMQP_URL");
    E.mgmt_url = getenv("TX_RABBIT_MGMT_URL");
    E.redis_url = getenv("TX_REDIS_URL");
    E.smtp_url = getenv("TX_SMTP_URL");
    E.mail_api = getenv("TX_MAIL_API_URL");
    E.src_dir = getenv("TX_SOURCE_DIR");
    if (E.amqp_url == NULL || E.mgmt_url == NULL || E.redis_url == NULL || E.smtp_url == NULL ||
        E.mail_api == NULL || E.src_dir == NULL) {
        fprintf(stderr, "test_notify: needs TX_AMQP_URL, TX_RABBIT_MGMT_URL, TX_REDIS_URL, "
                        "TX_SMTP_URL, TX_MAIL_API_URL (eval \"$(ci/stack env)\") and "
                        "TX_SOURCE_DIR\n");
        return -1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* The daemons run as txnotify's least-privilege Redis user (only tx:notify:* keys, no
     * scripting) when the stack defines it, as in production; else as the test's user. */
    E.daemon_redis_url = E.redis_url;
    if (getenv("TX_REDIS_URL_NOTIFY") != NULL) {
        struct cache_conn *rc = cache_conn_create(getenv("TX_REDIS_URL_NOTIFY"), 2000, &err);

        if (rc != NULL && cache_ping(rc, &err) == 0)
            E.daemon_redis_url = getenv("TX_REDIS_URL_NOTIFY");
        else
            fprintf(stderr,
                    "test_notify: TX_REDIS_URL_NOTIFY unusable (%s): the daemons use "
                    "TX_REDIS_URL\n",
                    err.msg);
        cache_conn_destroy(rc);
    }
    {
        int64_t until = tx_time_mono_ms() + 60000;

        while (mgmt("GET", "/api/overview", NULL, NULL) != 200) {
            if (tx_time_mono_ms() > until) {
                fprintf(stderr, "test_notify: RabbitMQ management API not answering\n");
                return -1;
            }
            sleep_ms(500);
        }
    }
    snprintf(E.run, sizeof(E.run), "%ld-%lld", (long) getpid(), (long long) tx_time_now_ms());
    snprintf(E.prefix, sizeof(E.prefix), "txtest.notify.%ld.", (long) getpid());
    snprintf(E.ops_addr, sizeof(E.ops_addr), "ops-%s@example.test", E.run);
    E.outcomes = json_array();

    /* The outcome events of every daemon, through the real tx.events exchange. */
    snprintf(E.out_queue, sizeof(E.out_queue), "%soutcomes", E.prefix);
    declare_queue(E.out_queue);
    bind_queue("tx.events", E.out_queue, "notification.*");

    memset(&qc, 0, sizeof(qc));
    qc.url = E.amqp_url;
    qc.name = "txtest-notify";
    E.pub = queue_publisher_create(&qc, &err);
    if (E.pub == NULL) {
        fprintf(stderr, "test_notify: %s\n", err.msg);
        return -1;
    }

    if (fake_smtp_start(&E.smtp, 0) != 0) {
        fprintf(stderr, "test_notify: cannot start the fake SMTP server\n");
        return -1;
    }
    E.fake_port = E.smtp.port;
    start_daemon(&E.mail, "maildev", E.smtp_url, "3s");
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d/txtest.local", E.fake_port);
    start_daemon(&E.fake, "fake", url, "2s");
    return 0;
}

static int group_teardown(void **state)
{
    char path[256];

    (void) state;
    stop_daemon(&E.mail);
    stop_daemon(&E.fake);
    fake_smtp_stop(&E.smtp);
    queue_publisher_destroy(E.pub);
    if (E.mail.queue[0] != '\0') {
        snprintf(path, sizeof(path), "/api/queues/%%2F/%s", E.mail.queue);
        mgmt("DELETE", path, NULL, NULL);
    }
    if (E.fake.queue[0] != '\0') {
        snprintf(path, sizeof(path), "/api/queues/%%2F/%s", E.fake.queue);
        mgmt("DELETE", path, NULL, NULL);
    }
    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", E.out_queue);
    mgmt("DELETE", path, NULL, NULL);
    delete_run_mails();
    json_decref(E.outcomes);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receipt),
        cmocka_unit_test(test_flagged_alerts),
        cmocka_unit_test(test_redelivery_sends_nothing_more),
        cmocka_unit_test(test_unusable_address_fails),
        cmocka_unit_test(test_poison_rejected),
        cmocka_unit_test(test_sent_marker_skips_sending),
        cmocka_unit_test(test_claim_held_elsewhere_waits),
        cmocka_unit_test(test_claim_of_dead_instance_taken_over),
        cmocka_unit_test(test_batch_sends_in_parallel),
        cmocka_unit_test(test_permanent_550),
        cmocka_unit_test(test_transient_451_retried),
        cmocka_unit_test(test_smtp_down_is_retried_not_failed),
        cmocka_unit_test(test_refuses_bad_template),
        cmocka_unit_test(test_graceful_stop),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
