#include "consumers/notify/notify_daemon.h"

#include "common/tx_event.h"
#include "common/tx_id.h"
#include "common/tx_log.h"
#include "common/tx_time.h"
#include "consumers/notify/notify_header.h"
#include "consumers/notify/notify_smtp.h"
#include "consumers/notify/notify_template.h"
#include "storage/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define C(key, type, def, min, max, field, flags, desc)                              \
    {                                                                                \
        key, type, def, min, max, offsetof(struct notify_config, field), flags, desc \
    }

const struct tx_config_entry notify_config_table[] = {
    C("TX_NOTIFY_QUEUE", TX_CONFIG_STRING, "tx.notify", 1, 255, queue, 0,
      "queue of transaction.scored events to consume"),
    C("TX_REDIS_URL", TX_CONFIG_STRING, "redis://127.0.0.1:6379/0", 1, 300, redis_url,
      TX_CONFIG_SECRET, "Redis URL (the sent/claim markers)"),
    C("TX_REDIS_TIMEOUT_MS", TX_CONFIG_MS, "2s", 50, 60000, redis_timeout_ms, 0,
      "Redis connect and command timeout"),
    C("TX_SMTP_URL", TX_CONFIG_STRING, "smtp://127.0.0.1:1025/localhost", 8, 300, smtp_url, 0,
      "SMTP server, smtp://host:port/ehlo-domain (smtps:// with TX_SMTP_TLS=tls)"),
    C("TX_SMTP_TLS", TX_CONFIG_STRING, "none", 3, 8, smtp_tls, 0,
      "none, starttls (required) or tls (implicit, smtps://)"),
    C("TX_SMTP_USER", TX_CONFIG_STRING, "", 0, 256, smtp_user, 0,
      "SMTP AUTH user (empty: no AUTH)"),
    C("TX_SMTP_PASSWORD", TX_CONFIG_STRING, "", 0, 256, smtp_password, TX_CONFIG_SECRET,
      "SMTP AUTH password"),
    C("TX_SMTP_CONNECT_TIMEOUT_MS", TX_CONFIG_MS, "5s", 100, 60000, smtp_connect_timeout_ms, 0,
      "SMTP connect (TCP and TLS) timeout"),
    C("TX_SMTP_TIMEOUT_MS", TX_CONFIG_MS, "10s", 100, 120000, smtp_timeout_ms, 0,
      "longest time one message may take to send"),
    C("TX_SMTP_REUSE", TX_CONFIG_BOOL, "true", 0, 0, smtp_reuse, 0,
      "keep the SMTP connection open between messages (false: one connection per message)"),
    C("TX_MAIL_FROM", TX_CONFIG_STRING, "txpipe <no-reply@txpipe.local>", 3, 300, mail_from, 0,
      "sender, \"Name <addr>\" or \"addr\""),
    C("TX_ALERT_EMAIL", TX_CONFIG_STRING, "fraud-alerts@txpipe.local", 3, 254, alert_email, 0,
      "where the alert_ops copy of every fraud alert goes"),
    C("TX_TEMPLATES_DIR", TX_CONFIG_STRING, "volumes/notify/templates", 1, 1000, templates_dir, 0,
      "directory of <name>.subject/.txt/.html for receipt, alert_client, alert_ops"),
    C("TX_NOTIFY_MSGID_DOMAIN", TX_CONFIG_STRING, "txpipe.local", 1, 200, msgid_domain, 0,
      "right-hand side of the deterministic Message-ID"),
    C("TX_NOTIFY_RETRY_BUDGET_MS", TX_CONFIG_MS, "15s", 0, 600000, retry_budget_ms, 0,
      "longest in-handler backoff for transient failures before a delivery is requeued"),
    C("TX_NOTIFY_CLAIM_TTL_MS", TX_CONFIG_MS, "60s", 1000, 3600000, claim_ttl_ms, 0,
      "lifetime of a \"sending\" claim (must exceed one send)"),
    C("TX_NOTIFY_SENT_TTL_MS", TX_CONFIG_MS, "7d", 1000, 31536000000LL, sent_ttl_ms, 0,
      "how long \"sent\"/\"failed\" markers keep redeliveries from sending again"),
};
const size_t notify_config_table_len = sizeof(notify_config_table) / sizeof(notify_config_table[0]);

#define NTPL          3
#define BACKOFF_FIRST 200
#define BACKOFF_MAX   3200
#define UNRECORDED    256 /* sent e-mails whose "sent" marker could not be written */
#define KEY_MAX       (TX_EVENT_ID_MAX + NOTIFY_TEMPLATE_NAME_MAX + 32)
#define PART_MAX      ((size_t) 1 << 20)
#define ERROR_MAX     300

static const char *const tpl_names[NTPL] = { NOTIFY_TPL_RECEIPT, NOTIFY_TPL_ALERT_CLIENT,
                                             NOTIFY_TPL_ALERT_OPS };

struct notify_state {
    const struct notify_config *cfg;
    struct queue_publisher *pub;
    const volatile sig_atomic_t *stop;
    struct notify_template *tpl[NTPL];
    struct notify_smtp *smtp;
    struct cache_conn *cache; /* the handler's; (re)created on demand */
    char from_hdr[600];
    char from_addr[NOTIFY_ADDR_MAX + 1];
    char claim[64]; /* "sending <instance uuid>" */
    int claim_ttl_s;
    int sent_ttl_s;
    /* Sent e-mails whose "sent" marker could not be written: a ring of keys. */
    char unrecorded[UNRECORDED][KEY_MAX];
    size_t nunrec;
    size_t unrec_next;
    /* Metrics. */
    struct tx_counter *sent[NTPL];
    struct tx_counter *failed[NTPL];
    struct tx_counter *skipped[NTPL];
    struct tx_counter *transient;
    struct tx_counter *connections;
    struct tx_histogram *smtp_seconds;
    uint64_t connections_seen;
    /* Readiness (health thread). */
    pthread_mutex_t ready_mu;
    struct cache_conn *ready_cache;
    atomic_int smtp_down;
};

/* One e-mail of an event. */
struct job {
    int tpl;                      /* index in tpl_names */
    const char *to;               /* recipient address */
    const char *to_name;          /* display name, may be "" */
    char key[KEY_MAX];            /* Redis marker */
    char msgid[NOTIFY_MSGID_MAX]; /* Message-ID */
    /* Outcome. */
    bool done;
    bool failed;
    char error[ERROR_MAX];
};

enum attempt {
    ATTEMPT_SENT,   /* sent now or before */
    ATTEMPT_FAILED, /* permanent failure (now or before) */
    ATTEMPT_AGAIN,  /* transient: back off and try again */
};

/* ---- helpers -------------------------------------------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* Sleeps ms in small steps; returns false (early) when the daemon is asked to stop. */
static bool pause_ms(struct notify_state *st, long ms)
{
    int64_t until = tx_time_mono_ms() + ms;

    while (!*st->stop) {
        int64_t left = until - tx_time_mono_ms();

        if (left <= 0)
            return true;
        sleep_ms(left < 50 ? (long) left : 50);
    }
    return false;
}

static int ttl_seconds(long long ms)
{
    long long s = (ms + 999) / 1000;

    return s > 0x7fffffffLL ? 0x7fffffff : (int) (s < 1 ? 1 : s);
}

static void remember_unrecorded(struct notify_state *st, const char *key)
{
    snprintf(st->unrecorded[st->unrec_next], KEY_MAX, "%s", key);
    st->unrec_next = (st->unrec_next + 1) % UNRECORDED;
    if (st->nunrec < UNRECORDED)
        st->nunrec++;
}

/* Index of key in the ring of unrecorded sends, or -1. */
static int find_unrecorded(const struct notify_state *st, const char *key)
{
    size_t i;

    for (i = 0; i < st->nunrec; i++) {
        if (strcmp(st->unrecorded[i], key) == 0)
            return (int) i;
    }
    return -1;
}

static struct cache_conn *cache_of(struct notify_state *st, struct tx_err *err)
{
    if (st->cache == NULL)
        st->cache = cache_conn_create(st->cfg->redis_url, (long) st->cfg->redis_timeout_ms, err);
    return st->cache;
}

/* Writes "sent" (or "failed:<why>") for key, a few quick tries. */
static int mark(struct notify_state *st, const char *key, const char *val, struct tx_err *err)
{
    int tries;
    int rc = TX_EUNAVAIL;

    for (tries = 0; tries < 3; tries++) {
        struct cache_conn *c = cache_of(st, err);

        if (c != NULL) {
            rc = cache_set(c, key, val, strlen(val), st->sent_ttl_s, err);
            if (rc == 0)
                return 0;
        }
        if (!pause_ms(st, 100 << tries))
            break;
    }
    return rc;
}

/* ---- one attempt at one e-mail -------------------------------------------------------------- */

struct rendered {
    struct tx_buf subject; /* encoded header value */
    struct tx_buf to;      /* To header value */
    struct tx_buf text;
    struct tx_buf html;
};

static enum attempt attempt(struct notify_state *st, const struct tx_event *ev, struct job *j,
                            const struct rendered *r)
{
    struct tx_err err = { 0 };
    struct cache_conn *c;
    char *old = NULL;
    char date[NOTIFY_DATE_MAX];
    struct notify_smtp_msg m;
    int64_t t0;
    uint64_t conns;
    enum attempt res = ATTEMPT_AGAIN;
    const char *kv_tpl = tpl_names[j->tpl];
    int rc;

    if (find_unrecorded(st, j->key) >= 0) {
        /* Sent by this process earlier; try to record it again, but never resend. */
        if (mark(st, j->key, "sent", &err) == 0)
            st->unrecorded[find_unrecorded(st, j->key)][0] = '\0';
        tx_counter_inc(st->skipped[j->tpl]);
        return ATTEMPT_SENT;
    }
    c = cache_of(st, &err);
    if (c == NULL) {
        snprintf(j->error, sizeof(j->error), "redis: %s", err.msg);
        return ATTEMPT_AGAIN;
    }
    rc = cache_set_nx(c, j->key, st->claim, strlen(st->claim), st->claim_ttl_s, &old, NULL, &err);
    if (rc == TX_EEXIST && old != NULL) {
        if (strcmp(old, "sent") == 0) {
            tx_counter_inc(st->skipped[j->tpl]);
            tx_log_info(TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id, "template",
                              kv_tpl, "message_id", j->msgid),
                        "e-mail already sent, not sending again");
            res = ATTEMPT_SENT;
            goto out;
        }
        if (strncmp(old, "failed:", 7) == 0) {
            tx_counter_inc(st->skipped[j->tpl]);
            snprintf(j->error, sizeof(j->error), "%s", old[7] != '\0' ? old + 7 : "failed");
            res = ATTEMPT_FAILED;
            goto out;
        }
        if (strcmp(old, st->claim) != 0) {
            snprintf(j->error, sizeof(j->error), "being sent by another attempt (%.80s)", old);
            goto out;
        }
        /* Our own claim, left by an attempt of this process that could not release it: no
         * send of it is in progress (one thread), so take it over. */
        rc = cache_set(c, j->key, st->claim, strlen(st->claim), st->claim_ttl_s, &err);
    }
    if (rc != 0) {
        snprintf(j->error, sizeof(j->error), "redis: %s", err.msg);
        goto out;
    }

    notify_date_format(tx_time_now_ms(), date, sizeof(date));
    memset(&m, 0, sizeof(m));
    m.rcpt = j->to;
    m.from = st->from_hdr;
    m.to = r->to.data;
    m.subject = r->subject.data;
    m.date = date;
    m.message_id = j->msgid;
    m.text = r->text.data != NULL ? r->text.data : "";
    m.html = r->html.data != NULL ? r->html.data : "";
    t0 = tx_time_mono_ms();
    rc = notify_smtp_send(st->smtp, &m, &err);
    tx_histogram_observe(st->smtp_seconds, (double) (tx_time_mono_ms() - t0) / 1000.0);
    conns = notify_smtp_connections(st->smtp);
    tx_counter_add(st->connections, conns - st->connections_seen);
    st->connections_seen = conns;

    if (rc == 0) {
        atomic_store(&st->smtp_down, 0);
        tx_counter_inc(st->sent[j->tpl]);
        if (mark(st, j->key, "sent", &err) != 0) {
            remember_unrecorded(st, j->key);
            tx_log_error(TX_KV("event_id", ev->event_id, "template", kv_tpl),
                         "e-mail sent but the \"sent\" marker could not be written: %s", err.msg);
        }
        tx_log_info(TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id, "template", kv_tpl,
                          "message_id", j->msgid),
                    "e-mail sent (%ld ms)", (long) (tx_time_mono_ms() - t0));
        res = ATTEMPT_SENT;
    }
    else if (rc == TX_EREJECT || rc == TX_EINVAL) {
        char val[ERROR_MAX + 8];

        atomic_store(&st->smtp_down, 0);
        tx_counter_inc(st->failed[j->tpl]);
        snprintf(j->error, sizeof(j->error), "%s", err.msg[0] != '\0' ? err.msg : "refused");
        snprintf(val, sizeof(val), "failed:%s", j->error);
        if (mark(st, j->key, val, &err) != 0)
            tx_log_warn(TX_KV("event_id", ev->event_id, "template", kv_tpl),
                        "cannot record the permanent failure: %s", err.msg);
        tx_log_warn(TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id, "template", kv_tpl,
                          "message_id", j->msgid),
                    "e-mail refused permanently: %s", j->error);
        res = ATTEMPT_FAILED;
    }
    else {
        struct tx_err derr = { 0 };
        long code = notify_smtp_last_code(st->smtp);

        /* No answer at all, or 421 (service closing): the server is down, not just busy with
         * this recipient (a 4xx to RCPT such as greylisting says nothing about the others). */
        atomic_store(&st->smtp_down, (code == 0 || code == 421) ? 1 : 0);
        tx_counter_inc(st->transient);
        snprintf(j->error, sizeof(j->error), "smtp: %s", err.msg);
        /* Release the claim so the next attempt (here or elsewhere) may send. If this fails the
         * claim stays ours and this process takes it over on its next attempt. */
        if (cache_del(c, j->key, &derr) != 0 && derr.code != TX_ENOTFOUND)
            tx_log_debug(TX_KV("event_id", ev->event_id, "template", kv_tpl),
                         "cannot release the claim: %s", derr.msg);
        res = ATTEMPT_AGAIN;
    }
out:
    free(old);
    return res;
}

/* ---- one e-mail, with backoff --------------------------------------------------------------- */

static void rendered_init(struct rendered *r)
{
    tx_buf_init(&r->subject, PART_MAX);
    tx_buf_init(&r->to, 4096);
    tx_buf_init(&r->text, PART_MAX);
    tx_buf_init(&r->html, PART_MAX);
}

static void rendered_cleanup(struct rendered *r)
{
    tx_buf_cleanup(&r->subject);
    tx_buf_cleanup(&r->to);
    tx_buf_cleanup(&r->text);
    tx_buf_cleanup(&r->html);
}

static int render(struct notify_state *st, const struct tx_event *ev, const struct job *j,
                  struct rendered *r)
{
    const struct notify_template *t = st->tpl[j->tpl];
    struct notify_vars v;
    struct tx_buf subj;
    int rc;

    notify_vars_from_event(ev, &v);
    tx_buf_init(&subj, PART_MAX);
    rc = notify_template_render(t, NOTIFY_PART_SUBJECT, &v, &subj);
    if (rc == 0)
        rc = notify_header_encode(&r->subject, subj.data != NULL ? subj.data : "",
                                  strlen("Subject: "));
    if (rc == 0)
        rc = notify_template_render(t, NOTIFY_PART_TEXT, &v, &r->text);
    if (rc == 0)
        rc = notify_template_render(t, NOTIFY_PART_HTML, &v, &r->html);
    if (rc == 0)
        rc = notify_header_mailbox(&r->to, j->to_name, j->to);
    if (rc == 0 && (r->subject.data == NULL || r->to.data == NULL))
        rc = TX_EINVAL;
    tx_buf_cleanup(&subj);
    return rc;
}

/* Sends one e-mail, retrying transient failures until deadline. Returns false when the delivery
 * must be requeued. */
static bool run_job(struct notify_state *st, const struct tx_event *ev, struct job *j,
                    int64_t deadline)
{
    struct rendered r;
    struct tx_err err = { 0 };
    long backoff = BACKOFF_FIRST;
    bool ok = false;
    unsigned attempts = 0;

    rendered_init(&r);
    if (notify_addr_check(j->to, &err) != 0) {
        j->done = true;
        j->failed = true;
        snprintf(j->error, sizeof(j->error), "invalid recipient address: %s", err.msg);
        tx_counter_inc(st->failed[j->tpl]);
        tx_log_warn(TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id, "template",
                          tpl_names[j->tpl]),
                    "not sending: %s", j->error);
        ok = true;
        goto out;
    }
    if (render(st, ev, j, &r) != 0) {
        j->done = true;
        j->failed = true;
        snprintf(j->error, sizeof(j->error), "cannot render template %s", tpl_names[j->tpl]);
        tx_counter_inc(st->failed[j->tpl]);
        tx_log_error(TX_KV("event_id", ev->event_id, "template", tpl_names[j->tpl]), "%s",
                     j->error);
        ok = true;
        goto out;
    }
    for (;;) {
        enum attempt a;

        if (*st->stop)
            break;
        attempts++;
        a = attempt(st, ev, j, &r);
        if (a != ATTEMPT_AGAIN) {
            j->done = true;
            j->failed = a == ATTEMPT_FAILED;
            if (!j->failed)
                j->error[0] = '\0';
            ok = true;
            break;
        }
        if (tx_time_mono_ms() + backoff > deadline) {
            tx_log_warn(TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id, "template",
                              tpl_names[j->tpl]),
                        "transient failure after %u attempt(s), requeueing: %s", attempts,
                        j->error);
            break;
        }
        tx_log_debug(TX_KV("event_id", ev->event_id, "template", tpl_names[j->tpl]),
                     "transient failure, retrying in %ld ms: %s", backoff, j->error);
        if (!pause_ms(st, backoff))
            break;
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
out:
    rendered_cleanup(&r);
    return ok;
}

/* ---- publishing the outcomes ---------------------------------------------------------------- */

static bool publish(struct notify_state *st, const struct tx_event *ev, struct job *jobs, size_t n,
                    int64_t deadline)
{
    struct tx_buf body[NTPL];
    struct queue_msg msgs[NTPL];
    char mid[NTPL][KEY_MAX];
    struct tx_err err = { 0 };
    long backoff = BACKOFF_FIRST;
    bool ok = false;
    size_t i;
    int rc = 0;

    for (i = 0; i < n; i++)
        tx_buf_init(&body[i], 64 * 1024);
    for (i = 0; i < n && rc == 0; i++) {
        enum tx_event_type type = jobs[i].failed ? TX_EVENT_NOTIFY_FAILED : TX_EVENT_NOTIFY_SENT;

        rc = tx_event_encode_notification(type, ev->event_id, tpl_names[jobs[i].tpl], jobs[i].to,
                                          jobs[i].msgid, tx_time_now_ms(),
                                          jobs[i].failed ? jobs[i].error : NULL, &body[i]);
        snprintf(mid[i], sizeof(mid[i]), "%s:%s", ev->event_id, tpl_names[jobs[i].tpl]);
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].routing_key = tx_event_type_name(type);
        msgs[i].message_id = mid[i];
        msgs[i].correlation_id = ev->upload_id;
        msgs[i].body = body[i].data;
        msgs[i].len = body[i].len;
    }
    if (rc != 0) {
        tx_log_error(TX_KV("event_id", ev->event_id), "cannot encode the outcome events: %s",
                     tx_status_name(rc));
        goto out;
    }
    for (;;) {
        rc = queue_publish_confirmed(st->pub, "tx.events", msgs, n, &err);
        if (rc == 0) {
            ok = true;
            break;
        }
        /* Always at least one try, even when sending used the whole budget. */
        if (*st->stop || tx_time_mono_ms() + backoff > deadline) {
            tx_log_warn(TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id),
                        "cannot publish the outcome events, requeueing: %s", err.msg);
            break;
        }
        if (!pause_ms(st, backoff))
            break;
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
out:
    for (i = 0; i < n; i++)
        tx_buf_cleanup(&body[i]);
    return ok;
}

/* ---- the handler ---------------------------------------------------------------------------- */

enum queue_disposition notify_daemon_handle(void *app, const struct queue_delivery *d)
{
    struct notify_daemon *nd = app;
    struct notify_state *st = nd->st;
    struct tx_event *ev = NULL;
    struct tx_err err = { 0 };
    struct job jobs[NTPL];
    size_t n = 0;
    size_t i;
    int64_t deadline = tx_time_mono_ms() + st->cfg->retry_budget_ms;
    enum queue_disposition disp = QUEUE_RETRY;
    int rc;

    rc = tx_event_decode(d->body, d->len, &ev, &err);
    if (rc != 0 || ev->type != TX_EVENT_SCORED) {
        tx_log_error(TX_KV("message_id", d->message_id, "routing_key", d->routing_key),
                     "poison message dead-lettered: %s",
                     rc != 0 ? err.msg : "not a transaction.scored event");
        disp = QUEUE_REJECT;
        goto out;
    }
    memset(jobs, 0, sizeof(jobs));
    if (!ev->verdict.flagged) {
        jobs[n].tpl = 0;
        jobs[n].to = ev->record.email;
        jobs[n].to_name = ev->record.cliente;
        n++;
    }
    else {
        jobs[n].tpl = 1;
        jobs[n].to = ev->record.email;
        jobs[n].to_name = ev->record.cliente;
        n++;
        jobs[n].tpl = 2;
        jobs[n].to = st->cfg->alert_email;
        jobs[n].to_name = "";
        n++;
    }
    for (i = 0; i < n; i++) {
        snprintf(jobs[i].key, sizeof(jobs[i].key), "tx:notify:sent:{%s}:%s", ev->event_id,
                 tpl_names[jobs[i].tpl]);
        /* The domain was checked at start, so this cannot fail. */
        notify_message_id(ev->event_id, tpl_names[jobs[i].tpl], st->cfg->msgid_domain,
                          jobs[i].msgid);
    }
    for (i = 0; i < n; i++) {
        if (!run_job(st, ev, &jobs[i], deadline))
            goto out;
    }
    if (!publish(st, ev, jobs, n, deadline))
        goto out;
    disp = QUEUE_ACK;
out:
    tx_event_destroy(ev);
    return disp;
}

/* ---- start-up and readiness ----------------------------------------------------------------- */

static int register_metrics(struct notify_state *st, struct tx_metrics *m, struct tx_err *err)
{
    static const char *const labels[] = { "template" };
    static const double secs[] = { TX_METRICS_LATENCY_BUCKETS };
    struct tx_metric_desc d;
    struct tx_metric_family *f[3];
    static const char *const names[3] = { "txnotify_sent_total", "txnotify_failed_total",
                                          "txnotify_skipped_total" };
    static const char *const helps[3] = {
        "E-mails accepted by the SMTP server",
        "E-mails that failed permanently (5xx reply or unusable address)",
        "E-mails not sent again because a redelivery found them sent or failed",
    };
    int k;
    int i;

    for (k = 0; k < 3; k++) {
        memset(&d, 0, sizeof(d));
        d.type = TX_METRIC_COUNTER;
        d.name = names[k];
        d.help = helps[k];
        d.labels = labels;
        d.nlabels = 1;
        f[k] = tx_metrics_family(m, &d, err);
        if (f[k] == NULL)
            return TX_EINVAL;
    }
    for (i = 0; i < NTPL; i++) {
        const char *v[1] = { tpl_names[i] };

        st->sent[i] = tx_metric_family_counter(f[0], v, 1);
        st->failed[i] = tx_metric_family_counter(f[1], v, 1);
        st->skipped[i] = tx_metric_family_counter(f[2], v, 1);
    }
    st->transient = tx_metrics_counter(m, "txnotify_smtp_transient_total",
                                       "SMTP attempts that failed transiently (retried)", err);
    st->connections =
        tx_metrics_counter(m, "txnotify_smtp_connections_total", "SMTP connections opened", err);
    st->smtp_seconds =
        tx_metrics_histogram(m, "txnotify_smtp_seconds", "Time to send one e-mail over SMTP", secs,
                             TX_METRICS_LATENCY_BUCKETS_N, err);
    if (st->transient == NULL || st->connections == NULL || st->smtp_seconds == NULL)
        return TX_EINVAL;
    return 0;
}

int notify_daemon_init(void *app, struct cons_ctx *cx, struct tx_err *err)
{
    struct notify_daemon *nd = app;
    const struct notify_config *cfg = &nd->cfg;
    struct notify_state *st;
    struct notify_smtp_config sc;
    enum notify_smtp_tls tls;
    char from_name[256];
    char uuid[TX_UUID_STR_LEN + 1];
    char probe[NOTIFY_MSGID_MAX];
    struct tx_buf from;
    struct tx_err e2 = { 0 };
    int rc;
    int i;

    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    pthread_mutex_init(&st->ready_mu, NULL);
    nd->st = st;
    st->cfg = cfg;
    st->pub = cx->pub;
    st->stop = cx->stop;
    st->claim_ttl_s = ttl_seconds(cfg->claim_ttl_ms);
    st->sent_ttl_s = ttl_seconds(cfg->sent_ttl_ms);

    if (notify_smtp_tls_parse(cfg->smtp_tls, &tls) != 0)
        return tx_err_set(err, TX_EINVAL, "TX_SMTP_TLS must be none, starttls or tls, got \"%s\"",
                          cfg->smtp_tls);
    if (notify_mailbox_parse(cfg->mail_from, from_name, sizeof(from_name), st->from_addr,
                             sizeof(st->from_addr), &e2) != 0)
        return tx_err_set(err, TX_EINVAL, "TX_MAIL_FROM \"%s\": %s", cfg->mail_from, e2.msg);
    if (notify_addr_check(cfg->alert_email, &e2) != 0)
        return tx_err_set(err, TX_EINVAL, "TX_ALERT_EMAIL \"%s\": %s", cfg->alert_email, e2.msg);
    if (notify_message_id("x", "x", cfg->msgid_domain, probe) != 0)
        return tx_err_set(err, TX_EINVAL,
                          "TX_NOTIFY_MSGID_DOMAIN \"%s\" is not usable in a Message-ID",
                          cfg->msgid_domain);
    if (cfg->claim_ttl_ms <= cfg->smtp_timeout_ms + cfg->smtp_connect_timeout_ms)
        return tx_err_set(err, TX_EINVAL,
                          "TX_NOTIFY_CLAIM_TTL_MS (%lld ms) must exceed TX_SMTP_TIMEOUT_MS + "
                          "TX_SMTP_CONNECT_TIMEOUT_MS (%lld ms), or a slow send could be claimed "
                          "and sent twice",
                          cfg->claim_ttl_ms, cfg->smtp_timeout_ms + cfg->smtp_connect_timeout_ms);
    if (cfg->smtp_user[0] != '\0' && tls == NOTIFY_SMTP_TLS_NONE)
        tx_log_warn(TX_NOKV, "TX_SMTP_USER is set with TX_SMTP_TLS=none: the password crosses "
                             "the network in clear text");
    if (cx->cfg->heartbeat_s > 0 &&
        cfg->retry_budget_ms + cfg->smtp_timeout_ms >= cx->cfg->heartbeat_s * 1000)
        tx_log_warn(TX_NOKV,
                    "TX_NOTIFY_RETRY_BUDGET_MS + TX_SMTP_TIMEOUT_MS (%lld ms) is not below the "
                    "AMQP heartbeat (%lld s): a slow handler may lose the broker connection",
                    cfg->retry_budget_ms + cfg->smtp_timeout_ms, cx->cfg->heartbeat_s);

    tx_buf_init(&from, sizeof(st->from_hdr) - 1);
    rc = notify_header_mailbox(&from, from_name, st->from_addr);
    if (rc == 0)
        snprintf(st->from_hdr, sizeof(st->from_hdr), "%s", from.data);
    tx_buf_cleanup(&from);
    if (rc != 0)
        return tx_err_set(err, TX_EINVAL, "TX_MAIL_FROM is too long");

    for (i = 0; i < NTPL; i++) {
        st->tpl[i] = notify_template_load(cfg->templates_dir, tpl_names[i], err);
        if (st->tpl[i] == NULL)
            return err != NULL ? err->code : TX_EINVAL;
    }

    memset(&sc, 0, sizeof(sc));
    sc.url = cfg->smtp_url;
    sc.tls = tls;
    sc.user = cfg->smtp_user;
    sc.password = cfg->smtp_password;
    sc.mail_from = st->from_addr;
    sc.connect_timeout_ms = (long) cfg->smtp_connect_timeout_ms;
    sc.timeout_ms = (long) cfg->smtp_timeout_ms;
    sc.fresh_connection = !cfg->smtp_reuse;
    st->smtp = notify_smtp_create(&sc, &e2);
    if (st->smtp == NULL)
        return tx_err_set(err, e2.code, "TX_SMTP_*: %s", e2.msg);

    if (tx_uuid7_make(tx_time_now_ms(), uuid) != 0)
        return tx_err_set(err, TX_EIO, "no randomness for the instance id");
    snprintf(st->claim, sizeof(st->claim), "sending %s", uuid);

    rc = register_metrics(st, cx->metrics, err);
    if (rc != 0)
        return rc;
    tx_log_info(TX_KV("instance", uuid), "templates loaded from %s; SMTP %s (%s, %s)",
                cfg->templates_dir, cfg->smtp_url, cfg->smtp_tls,
                cfg->smtp_reuse ? "connection reused" : "connection per message");
    return 0;
}

void notify_daemon_fini(void *app)
{
    struct notify_daemon *nd = app;
    struct notify_state *st = nd->st;
    int i;

    if (st == NULL)
        return;
    for (i = 0; i < NTPL; i++)
        notify_template_destroy(st->tpl[i]);
    notify_smtp_destroy(st->smtp);
    cache_conn_destroy(st->cache);
    cache_conn_destroy(st->ready_cache);
    pthread_mutex_destroy(&st->ready_mu);
    free(st);
    nd->st = NULL;
}

int notify_daemon_ready(void *app, struct tx_buf *detail)
{
    struct notify_daemon *nd = app;
    struct notify_state *st = nd->st;
    struct tx_err err = { 0 };
    int rc = 0;

    pthread_mutex_lock(&st->ready_mu);
    if (st->ready_cache == NULL)
        st->ready_cache = cache_conn_create(st->cfg->redis_url, 1000, &err);
    if (st->ready_cache == NULL || cache_ping(st->ready_cache, &err) != 0) {
        char why[300];

        snprintf(why, sizeof(why), "down: %s", err.msg);
        tx_buf_puts(detail, ",\"redis\":");
        tx_buf_json_str(detail, why, strlen(why));
        rc = TX_EUNAVAIL;
    }
    else {
        tx_buf_puts(detail, ",\"redis\":\"up\"");
    }
    pthread_mutex_unlock(&st->ready_mu);
    if (atomic_load(&st->smtp_down)) {
        tx_buf_puts(detail, ",\"smtp\":\"down: the last send failed transiently\"");
        rc = TX_EUNAVAIL;
    }
    else {
        tx_buf_puts(detail, ",\"smtp\":\"up\"");
    }
    return rc;
}
