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
    C("TX_SMTP_CONNECTIONS", TX_CONFIG_INT, "4", 1, 16, smtp_connections, 0,
      "SMTP connections (each with a thread and a Redis connection) that send a batch's "
      "e-mails in parallel"),
    C("TX_MAIL_FROM", TX_CONFIG_STRING, "txpipe <no-reply@txpipe.local>", 3, 300, mail_from, 0,
      "sender, \"Name <addr>\" or \"addr\""),
    C("TX_ALERT_EMAIL", TX_CONFIG_STRING, "fraud-alerts@txpipe.local", 3, 254, alert_email, 0,
      "where the alert_ops copy of every fraud alert goes"),
    C("TX_TEMPLATES_DIR", TX_CONFIG_STRING, "volumes/notify/templates", 1, 1000, templates_dir, 0,
      "directory of <name>.subject/.txt/.html for receipt, alert_client, alert_ops"),
    C("TX_NOTIFY_MSGID_DOMAIN", TX_CONFIG_STRING, "txpipe.local", 1, 200, msgid_domain, 0,
      "right-hand side of the deterministic Message-ID"),
    C("TX_NOTIFY_RETRY_BUDGET_MS", TX_CONFIG_MS, "0", 0, 600000, retry_budget_ms, 0,
      "longest in-handler backoff for transient failures before the delivery is handed back "
      "to the consumer loop, which holds it and retries (TX_RETRY_*); 0: one attempt"),
    C("TX_NOTIFY_CLAIM_TTL_MS", TX_CONFIG_MS, "60s", 1000, 3600000, claim_ttl_ms, 0,
      "lifetime of a \"sending\" claim (must exceed one send)"),
    C("TX_NOTIFY_SENT_TTL_MS", TX_CONFIG_MS, "7d", 1000, 31536000000LL, sent_ttl_ms, 0,
      "how long \"sent\"/\"failed\" markers keep redeliveries from sending again"),
    C("TX_NOTIFY_ALIVE_TTL_MS", TX_CONFIG_MS, "5s", 2000, 600000, alive_ttl_ms, 0,
      "lifetime of this instance's heartbeat key in Redis (refreshed 4 times per lifetime); a "
      "\"sending\" claim whose owner has no heartbeat is taken over at once"),
};
const size_t notify_config_table_len = sizeof(notify_config_table) / sizeof(notify_config_table[0]);

#define NTPL          3
#define WORKERS_MAX   16
#define BACKOFF_FIRST 200
#define BACKOFF_MAX   3200
#define UNRECORDED    256 /* sent e-mails whose "sent" marker could not be written */
#define KEY_MAX       (TX_EVENT_ID_MAX + NOTIFY_TEMPLATE_NAME_MAX + 32)
#define PART_MAX      ((size_t) 1 << 20)
#define ERROR_MAX     300
#define ALIVE_PREFIX  "tx:notify:alive:"
#define CLAIM_PREFIX  "sending "

static const char *const tpl_names[NTPL] = { NOTIFY_TPL_RECEIPT, NOTIFY_TPL_ALERT_CLIENT,
                                             NOTIFY_TPL_ALERT_OPS };

struct notify_state {
    const struct notify_config *cfg;
    struct queue_publisher *pub;
    const volatile sig_atomic_t *stop;
    struct notify_template *tpl[NTPL];
    /* The senders: worker k owns smtp connection k and Redis connection k; worker 0 runs in the
     * consumer thread, the others in threads started per batch. */
    struct worker {
        struct notify_smtp *smtp;
        struct cache_conn *cache; /* (re)created on demand */
        uint64_t connections_seen;
    } w[WORKERS_MAX];
    int nworkers;
    char from_hdr[600];
    char from_addr[NOTIFY_ADDR_MAX + 1];
    char claim[64]; /* "sending <instance uuid>" */
    /* The instance heartbeat: ALIVE_PREFIX<uuid>, refreshed by its own thread and connection. */
    char alive_key[96];
    pthread_t alive_thread;
    bool alive_started;
    bool alive_quit; /* under alive_mu */
    pthread_mutex_t alive_mu;
    pthread_cond_t alive_cv;
    int claim_ttl_s;
    int sent_ttl_s;
    /* Sent e-mails whose "sent" marker could not be written: a ring of keys (under unrec_mu). */
    pthread_mutex_t unrec_mu;
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
    ATTEMPT_AGAIN,  /* a dependency is down (Redis, the SMTP server): back off, try again */
    ATTEMPT_WAIT,   /* only this e-mail must wait: a live instance is sending it, or the server
                       answered 4xx for this recipient */
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
    pthread_mutex_lock(&st->unrec_mu);
    snprintf(st->unrecorded[st->unrec_next], KEY_MAX, "%s", key);
    st->unrec_next = (st->unrec_next + 1) % UNRECORDED;
    if (st->nunrec < UNRECORDED)
        st->nunrec++;
    pthread_mutex_unlock(&st->unrec_mu);
}

/* Is key in the ring of unrecorded sends? With forget, removes it. */
static bool find_unrecorded(struct notify_state *st, const char *key, bool forget)
{
    bool found = false;
    size_t i;

    pthread_mutex_lock(&st->unrec_mu);
    for (i = 0; i < st->nunrec && !found; i++) {
        if (strcmp(st->unrecorded[i], key) == 0) {
            found = true;
            if (forget)
                st->unrecorded[i][0] = '\0';
        }
    }
    pthread_mutex_unlock(&st->unrec_mu);
    return found;
}

static struct cache_conn *cache_of(struct notify_state *st, struct worker *w, struct tx_err *err)
{
    if (w->cache == NULL)
        w->cache = cache_conn_create(st->cfg->redis_url, (long) st->cfg->redis_timeout_ms, err);
    return w->cache;
}

/* Writes "sent" (or "failed:<why>") for key, a few quick tries. */
static int mark(struct notify_state *st, struct worker *w, const char *key, const char *val,
                struct tx_err *err)
{
    int tries;
    int rc = TX_EUNAVAIL;

    for (tries = 0; tries < 3; tries++) {
        struct cache_conn *c = cache_of(st, w, err);

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

/*
 * A claim old ("sending <uuid>") of another instance: takes it over when that instance's
 * heartbeat key is gone (it died during its send). Without scripting (txnotify's Redis user may
 * not run scripts): the takeover itself is claimed first with SET NX on a key naming the dead
 * owner, so of several instances at most one takes over a given dead claim; then the claim is
 * read again and, still old, replaced with ours. 1 taken, 0 not (its owner is alive, another
 * instance is taking it over, it changed, or it is not a claim we understand: it expires by
 * itself), negative on a Redis error.
 */
static int take_over(struct notify_state *st, struct cache_conn *c, const char *key,
                     const char *old, struct tx_err *err)
{
    const char *owner = old + strlen(CLAIM_PREFIX);
    char alive[sizeof(ALIVE_PREFIX) + 128];
    char tk[KEY_MAX + 160];
    char *v = NULL;
    int rc;

    if (strncmp(old, CLAIM_PREFIX, strlen(CLAIM_PREFIX)) != 0 || owner[0] == '\0' ||
        strlen(owner) > 100)
        return 0;
    snprintf(alive, sizeof(alive), "%s%s", ALIVE_PREFIX, owner);
    rc = cache_get(c, alive, &v, NULL, NULL, err);
    free(v);
    v = NULL;
    if (rc == 0)
        return 0; /* alive: its send is still going on */
    if (rc != TX_ENOTFOUND)
        return rc;
    /* tx:notify:sent:{<event_id>}:<template> -> tx:notify:takeover:{<event_id>}:<template>:<owner>
     */
    snprintf(tk, sizeof(tk), "tx:notify:takeover:%s:%s",
             strncmp(key, "tx:notify:sent:", 15) == 0 ? key + 15 : key, owner);
    rc = cache_set_nx(c, tk, st->claim, strlen(st->claim), st->claim_ttl_s, NULL, NULL, err);
    if (rc == TX_EEXIST)
        return 0;
    if (rc != 0)
        return rc;
    rc = cache_get(c, key, &v, NULL, NULL, err);
    if (rc == 0 && strcmp(v, old) == 0)
        rc = cache_set(c, key, st->claim, strlen(st->claim), st->claim_ttl_s, err) == 0 ? 1 : -1;
    else if (rc == 0 || rc == TX_ENOTFOUND)
        rc = 0; /* changed meanwhile: the next attempt sees what it is now */
    free(v);
    if (rc < 0 && err != NULL && err->code != 0)
        return err->code;
    return rc;
}

/* ---- the instance heartbeat ------------------------------------------------------------------ */

/* Refreshes the heartbeat key every quarter of its lifetime until told to quit. */
static void *alive_main(void *arg)
{
    struct notify_state *st = arg;
    struct cache_conn *c = NULL;
    struct tx_err err = { 0 };
    int ttl_s = ttl_seconds(st->cfg->alive_ttl_ms);
    long every_ms = (long) (st->cfg->alive_ttl_ms / 4);
    bool warned = false;

    pthread_mutex_lock(&st->alive_mu);
    while (!st->alive_quit) {
        struct timespec until;
        int rc;

        pthread_mutex_unlock(&st->alive_mu);
        if (c == NULL)
            c = cache_conn_create(st->cfg->redis_url, (long) st->cfg->redis_timeout_ms, &err);
        rc = c != NULL ? cache_set(c, st->alive_key, "1", 1, ttl_s, &err) : TX_EUNAVAIL;
        if (rc != 0 && !warned)
            tx_log_warn(TX_KV("key", st->alive_key), "cannot refresh the heartbeat: %s", err.msg);
        warned = rc != 0;
        pthread_mutex_lock(&st->alive_mu);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += every_ms / 1000;
        until.tv_nsec += (every_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!st->alive_quit && pthread_cond_timedwait(&st->alive_cv, &st->alive_mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&st->alive_mu);
    /* A clean stop: no claim of ours is left (every send finished), so the key can go. */
    if (c != NULL)
        (void) cache_del(c, st->alive_key, NULL);
    cache_conn_destroy(c);
    return NULL;
}

static int alive_start(struct notify_state *st, struct tx_err *err)
{
    pthread_condattr_t ca;
    int rc;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&st->alive_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return tx_err_set(err, TX_ENOMEM, "pthread_cond_init: %s", strerror(rc));
    pthread_mutex_init(&st->alive_mu, NULL);
    rc = pthread_create(&st->alive_thread, NULL, alive_main, st);
    if (rc != 0) {
        pthread_mutex_destroy(&st->alive_mu);
        pthread_cond_destroy(&st->alive_cv);
        return tx_err_set(err, TX_ENOMEM, "pthread_create: %s", strerror(rc));
    }
    st->alive_started = true;
    return 0;
}

static void alive_stop(struct notify_state *st)
{
    if (!st->alive_started)
        return;
    pthread_mutex_lock(&st->alive_mu);
    st->alive_quit = true;
    pthread_cond_signal(&st->alive_cv);
    pthread_mutex_unlock(&st->alive_mu);
    pthread_join(st->alive_thread, NULL);
    pthread_mutex_destroy(&st->alive_mu);
    pthread_cond_destroy(&st->alive_cv);
    st->alive_started = false;
}

/* ---- one attempt at one e-mail -------------------------------------------------------------- */

struct rendered {
    struct tx_buf subject; /* encoded header value */
    struct tx_buf to;      /* To header value */
    struct tx_buf text;
    struct tx_buf html;
};

static enum attempt attempt(struct notify_state *st, struct worker *w, const struct tx_event *ev,
                            struct job *j, const struct rendered *r)
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

    if (find_unrecorded(st, j->key, false)) {
        /* Sent by this process earlier; try to record it again, but never resend. */
        if (mark(st, w, j->key, "sent", &err) == 0)
            (void) find_unrecorded(st, j->key, true);
        tx_counter_inc(st->skipped[j->tpl]);
        return ATTEMPT_SENT;
    }
    c = cache_of(st, w, &err);
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
            rc = take_over(st, c, j->key, old, &err);
            if (rc < 0) {
                snprintf(j->error, sizeof(j->error), "redis: %s", err.msg);
                goto out;
            }
            if (rc == 0) {
                snprintf(j->error, sizeof(j->error), "being sent by another instance (%.80s)", old);
                res = ATTEMPT_WAIT;
                goto out;
            }
            tx_log_warn(TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id, "template",
                              kv_tpl, "message_id", j->msgid),
                        "claim \"%.80s\" of an instance without a heartbeat (crashed during the "
                        "send) taken over; sending",
                        old);
        }
        else {
            /* Our own claim, left by an attempt of this process that could not release it: no
             * send of it is in progress (one thread), so take it over. */
            rc = cache_set(c, j->key, st->claim, strlen(st->claim), st->claim_ttl_s, &err);
        }
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
    rc = notify_smtp_send(w->smtp, &m, &err);
    tx_histogram_observe(st->smtp_seconds, (double) (tx_time_mono_ms() - t0) / 1000.0);
    conns = notify_smtp_connections(w->smtp);
    tx_counter_add(st->connections, conns - w->connections_seen);
    w->connections_seen = conns;

    if (rc == 0) {
        atomic_store(&st->smtp_down, 0);
        tx_counter_inc(st->sent[j->tpl]);
        if (mark(st, w, j->key, "sent", &err) != 0) {
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
        if (mark(st, w, j->key, val, &err) != 0)
            tx_log_warn(TX_KV("event_id", ev->event_id, "template", kv_tpl),
                        "cannot record the permanent failure: %s", err.msg);
        tx_log_warn(TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id, "template", kv_tpl,
                          "message_id", j->msgid),
                    "e-mail refused permanently: %s", j->error);
        res = ATTEMPT_FAILED;
    }
    else {
        struct tx_err derr = { 0 };
        long code = notify_smtp_last_code(w->smtp);

        /* No answer at all, or 421 (service closing): the server is down, not just busy with
         * this recipient (a 4xx to RCPT such as greylisting says nothing about the others). */
        bool down = code == 0 || code == 421;

        atomic_store(&st->smtp_down, down ? 1 : 0);
        tx_counter_inc(st->transient);
        snprintf(j->error, sizeof(j->error), "smtp: %s", err.msg);
        /* Release the claim so the next attempt (here or elsewhere) may send. If this fails the
         * claim stays ours and this process takes it over on its next attempt. */
        if (cache_del(c, j->key, &derr) != 0 && derr.code != TX_ENOTFOUND)
            tx_log_debug(TX_KV("event_id", ev->event_id, "template", kv_tpl),
                         "cannot release the claim: %s", derr.msg);
        res = down ? ATTEMPT_AGAIN : ATTEMPT_WAIT;
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

/*
 * Sends one e-mail, retrying transient failures until deadline. QUEUE_ACK when the job is done
 * (sent or failed for good, now or before); otherwise what the consumer loop should do with the
 * delivery: QUEUE_RETRY (Redis or the SMTP server is down) or QUEUE_DEFER (only this e-mail must
 * wait: a live instance is sending it, or a 4xx for this recipient).
 */
static enum queue_disposition run_job(struct notify_state *st, struct worker *w,
                                      const struct tx_event *ev, struct job *j, int64_t deadline,
                                      atomic_int *down)
{
    struct rendered r;
    struct tx_err err = { 0 };
    long backoff = BACKOFF_FIRST;
    enum queue_disposition disp = QUEUE_RETRY;
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
        disp = QUEUE_ACK;
        goto out;
    }
    if (render(st, ev, j, &r) != 0) {
        j->done = true;
        j->failed = true;
        snprintf(j->error, sizeof(j->error), "cannot render template %s", tpl_names[j->tpl]);
        tx_counter_inc(st->failed[j->tpl]);
        tx_log_error(TX_KV("event_id", ev->event_id, "template", tpl_names[j->tpl]), "%s",
                     j->error);
        disp = QUEUE_ACK;
        goto out;
    }
    for (;;) {
        enum attempt a;

        if (*st->stop)
            break;
        /* Another e-mail of the batch found a dependency down: do not wait for it again. */
        if (attempts == 0 && atomic_load(down)) {
            snprintf(j->error, sizeof(j->error), "not tried: %s",
                     "Redis or the SMTP server is down (another e-mail of the batch failed)");
            break;
        }
        attempts++;
        a = attempt(st, w, ev, j, &r);
        if (a == ATTEMPT_SENT || a == ATTEMPT_FAILED) {
            j->done = true;
            j->failed = a == ATTEMPT_FAILED;
            if (!j->failed)
                j->error[0] = '\0';
            disp = QUEUE_ACK;
            break;
        }
        disp = a == ATTEMPT_WAIT ? QUEUE_DEFER : QUEUE_RETRY;
        if (a == ATTEMPT_AGAIN)
            atomic_store(down, 1);
        if (tx_time_mono_ms() + backoff > deadline) {
            tx_log_info(TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id, "template",
                              tpl_names[j->tpl]),
                        "not sent yet (%u attempt(s)), held for another attempt: %s", attempts,
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
    return disp;
}

/* ---- a batch of deliveries ------------------------------------------------------------------ */

/* One e-mail of a batch. */
struct bjob {
    struct job j;
    size_t ev;     /* index of its delivery */
    size_t dup_of; /* 1 + index of an earlier job of the batch with the same key, or 0 */
    enum queue_disposition disp;
};

/* What the senders of one batch share. */
struct batch {
    struct notify_state *st;
    struct tx_event **evs;
    struct bjob *jobs;
    size_t njobs;
    int64_t deadline;
    atomic_size_t next; /* the next job to take */
    atomic_int down;    /* a dependency is down: skip the e-mails not yet tried */
};

struct sender {
    struct batch *b;
    struct worker *w;
    pthread_t tid;
    bool started;
};

/* Sends jobs of the batch until none is left (each sender over its own connections). */
static void *sender_main(void *arg)
{
    struct sender *sd = arg;
    struct batch *b = sd->b;

    for (;;) {
        size_t k = atomic_fetch_add(&b->next, 1);

        if (k >= b->njobs)
            break;
        if (b->jobs[k].dup_of != 0)
            continue; /* the same e-mail twice in one batch: sent (or not) once */
        b->jobs[k].disp =
            run_job(b->st, sd->w, b->evs[b->jobs[k].ev], &b->jobs[k].j, b->deadline, &b->down);
    }
    return NULL;
}

/* Adds the jobs (e-mails) of event ev (index i) to jobs[*n..]. */
static void add_jobs(struct notify_state *st, const struct tx_event *ev, size_t i,
                     struct bjob *jobs, size_t *n)
{
    int tpls[2];
    int ntpl = 0;

    if (!ev->verdict.flagged) {
        tpls[ntpl++] = 0;
    }
    else {
        tpls[ntpl++] = 1;
        tpls[ntpl++] = 2;
    }
    for (int t = 0; t < ntpl; t++) {
        struct bjob *bj = &jobs[(*n)++];

        memset(bj, 0, sizeof(*bj));
        bj->ev = i;
        bj->disp = QUEUE_RETRY;
        bj->j.tpl = tpls[t];
        bj->j.to = tpls[t] == 2 ? st->cfg->alert_email : ev->record.email;
        bj->j.to_name = tpls[t] == 2 ? "" : ev->record.cliente;
        snprintf(bj->j.key, sizeof(bj->j.key), "tx:notify:sent:{%s}:%s", ev->event_id,
                 tpl_names[tpls[t]]);
        /* The domain was checked at start, so this cannot fail. */
        notify_message_id(ev->event_id, tpl_names[tpls[t]], st->cfg->msgid_domain, bj->j.msgid);
    }
}

/*
 * Publishes the outcome events of every event whose e-mails are all done (out[i] == QUEUE_ACK on
 * entry) with one confirmed publish; an event stays QUEUE_ACK only when all its outcome events
 * were confirmed, else it becomes QUEUE_RETRY.
 */
static void publish_outcomes(struct notify_state *st, struct tx_event **evs, size_t n,
                             const struct bjob *jobs, size_t njobs, enum queue_disposition *out,
                             int64_t deadline)
{
    struct tx_buf *body = NULL;
    struct queue_msg *msgs = NULL;
    char(*mid)[KEY_MAX] = NULL;
    size_t *ev_of = NULL;
    struct tx_err err = { 0 };
    long backoff = BACKOFF_FIRST;
    size_t m = 0;
    size_t done = 0;
    size_t i;
    int rc = 0;

    body = calloc(njobs + 1, sizeof(*body));
    msgs = calloc(njobs + 1, sizeof(*msgs));
    mid = calloc(njobs + 1, sizeof(*mid));
    ev_of = calloc(njobs + 1, sizeof(*ev_of));
    if (body == NULL || msgs == NULL || mid == NULL || ev_of == NULL) {
        tx_log_error(TX_NOKV, "out of memory publishing %zu outcome events", njobs);
        rc = TX_ENOMEM;
        goto out;
    }
    for (i = 0; i < njobs; i++) {
        const struct job *j = &jobs[i].j;
        const struct tx_event *ev = evs[jobs[i].ev];
        enum tx_event_type type = j->failed ? TX_EVENT_NOTIFY_FAILED : TX_EVENT_NOTIFY_SENT;

        if (out[jobs[i].ev] != QUEUE_ACK)
            continue;
        tx_buf_init(&body[m], 64 * 1024);
        rc = tx_event_encode_notification(type, ev->event_id, tpl_names[j->tpl], j->to, j->msgid,
                                          tx_time_now_ms(), j->failed ? j->error : NULL, &body[m]);
        if (rc != 0) {
            tx_log_error(TX_KV("event_id", ev->event_id), "cannot encode the outcome event: %s",
                         tx_status_name(rc));
            out[jobs[i].ev] = QUEUE_RETRY;
            tx_buf_cleanup(&body[m]);
            rc = 0;
            continue;
        }
        snprintf(mid[m], sizeof(mid[m]), "%s:%s", ev->event_id, tpl_names[j->tpl]);
        msgs[m].routing_key = tx_event_type_name(type);
        msgs[m].message_id = mid[m];
        msgs[m].correlation_id = ev->upload_id;
        msgs[m].body = body[m].data;
        msgs[m].len = body[m].len;
        ev_of[m] = jobs[i].ev;
        m++;
    }
    /* An event whose encoding failed above must not be acked for its other outcome. */
    while (done < m) {
        size_t k;

        rc = queue_publish_confirmed(st->pub, "tx.events", msgs + done, m - done, &err);
        k = rc == 0 ? m - done : queue_publisher_last_confirmed(st->pub);
        done += k;
        if (rc == 0)
            break;
        /* Always at least one try, even when sending used the whole budget. */
        if (*st->stop || tx_time_mono_ms() + backoff > deadline) {
            tx_log_warn(TX_KV("event_id", evs[ev_of[done]]->event_id),
                        "cannot publish %zu outcome events, held for another attempt: %s", m - done,
                        err.msg);
            break;
        }
        if (!pause_ms(st, backoff))
            break;
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
out:
    if (rc == TX_ENOMEM) {
        for (i = 0; i < n; i++) {
            if (out[i] == QUEUE_ACK)
                out[i] = QUEUE_RETRY;
        }
    }
    else {
        /* Outcomes not confirmed: their events are handled again (same message ids). */
        for (i = done; i < m; i++)
            out[ev_of[i]] = QUEUE_RETRY;
    }
    for (i = 0; i < m; i++)
        tx_buf_cleanup(&body[i]);
    free(body);
    free(msgs);
    free(mid);
    free(ev_of);
}

void notify_daemon_handle_batch(void *app, const struct queue_delivery *d, size_t n,
                                enum queue_disposition *out)
{
    struct notify_daemon *nd = app;
    struct notify_state *st = nd->st;
    struct tx_event **evs = NULL;
    struct bjob *jobs = NULL;
    struct sender sd[WORKERS_MAX];
    struct batch b;
    struct tx_err err = { 0 };
    size_t njobs = 0;
    size_t i;
    int nw;
    int k;

    for (i = 0; i < n; i++)
        out[i] = QUEUE_RETRY;
    evs = calloc(n, sizeof(*evs));
    jobs = calloc(2 * n, sizeof(*jobs));
    if (evs == NULL || jobs == NULL) {
        tx_log_error(TX_NOKV, "out of memory handling %zu deliveries: held for another attempt", n);
        goto out;
    }
    for (i = 0; i < n; i++) {
        int rc = tx_event_decode(d[i].body, d[i].len, &evs[i], &err);

        if (rc == TX_ENOMEM) {
            tx_log_error(TX_KV("message_id", d[i].message_id), "out of memory decoding");
            continue;
        }
        if (rc != 0 || evs[i]->type != TX_EVENT_SCORED) {
            tx_log_error(TX_KV("message_id", d[i].message_id, "routing_key", d[i].routing_key),
                         "poison message dead-lettered: %s",
                         rc != 0 ? err.msg : "not a transaction.scored event");
            out[i] = QUEUE_REJECT;
            tx_event_destroy(evs[i]);
            evs[i] = NULL;
            continue;
        }
        add_jobs(st, evs[i], i, jobs, &njobs);
    }

    /* The same event twice in a batch (a duplicate publish): its e-mails go out once. A process
     * never has two sends of one key in flight (attempt() relies on it for its own claims). */
    for (i = 1; i < njobs; i++) {
        for (size_t o = 0; o < i && jobs[i].dup_of == 0; o++) {
            if (jobs[o].dup_of == 0 && strcmp(jobs[o].j.key, jobs[i].j.key) == 0)
                jobs[i].dup_of = o + 1;
        }
    }

    /* Send: worker 0 in this thread, the others in threads of their own. */
    memset(&b, 0, sizeof(b));
    b.st = st;
    b.evs = evs;
    b.jobs = jobs;
    b.njobs = njobs;
    b.deadline = tx_time_mono_ms() + st->cfg->retry_budget_ms;
    atomic_init(&b.next, 0);
    atomic_init(&b.down, 0);
    nw = (size_t) st->nworkers < njobs ? st->nworkers : (int) njobs;
    memset(sd, 0, sizeof(sd));
    for (k = 0; k < nw; k++) {
        sd[k].b = &b;
        sd[k].w = &st->w[k];
        if (k > 0)
            sd[k].started = pthread_create(&sd[k].tid, NULL, sender_main, &sd[k]) == 0;
    }
    if (nw > 0)
        (void) sender_main(&sd[0]);
    for (k = 1; k < nw; k++) {
        if (sd[k].started)
            pthread_join(sd[k].tid, NULL);
    }

    for (i = 0; i < njobs; i++) {
        const struct bjob *o = jobs[i].dup_of != 0 ? &jobs[jobs[i].dup_of - 1] : NULL;

        if (o == NULL)
            continue;
        jobs[i].disp = o->disp;
        jobs[i].j.done = o->j.done;
        jobs[i].j.failed = o->j.failed;
        memcpy(jobs[i].j.error, o->j.error, sizeof(jobs[i].j.error));
        if (o->disp == QUEUE_ACK)
            tx_counter_inc(st->skipped[jobs[i].j.tpl]);
    }
    /* Each event: done when all its e-mails are; else held (RETRY: a dependency is down, DEFER:
     * only this e-mail must wait). */
    for (i = 0; i < n; i++) {
        if (evs[i] != NULL)
            out[i] = QUEUE_ACK;
    }
    for (i = 0; i < njobs; i++) {
        enum queue_disposition *o = &out[jobs[i].ev];

        if (jobs[i].disp == QUEUE_RETRY || (jobs[i].disp == QUEUE_DEFER && *o != QUEUE_RETRY))
            *o = jobs[i].disp;
    }
    publish_outcomes(st, evs, n, jobs, njobs, out, b.deadline);
out:
    if (evs != NULL) {
        for (i = 0; i < n; i++)
            tx_event_destroy(evs[i]);
    }
    free(evs);
    free(jobs);
}

enum queue_disposition notify_daemon_handle(void *app, const struct queue_delivery *d)
{
    enum queue_disposition disp = QUEUE_RETRY;

    notify_daemon_handle_batch(app, d, 1, &disp);
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
    pthread_mutex_init(&st->unrec_mu, NULL);
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
    st->nworkers = (int) cfg->smtp_connections;
    for (i = 0; i < st->nworkers; i++) {
        st->w[i].smtp = notify_smtp_create(&sc, &e2);
        if (st->w[i].smtp == NULL)
            return tx_err_set(err, e2.code, "TX_SMTP_*: %s", e2.msg);
    }

    if (tx_uuid7_make(tx_time_now_ms(), uuid) != 0)
        return tx_err_set(err, TX_EIO, "no randomness for the instance id");
    snprintf(st->claim, sizeof(st->claim), "%s%s", CLAIM_PREFIX, uuid);
    snprintf(st->alive_key, sizeof(st->alive_key), "%s%s", ALIVE_PREFIX, uuid);

    rc = register_metrics(st, cx->metrics, err);
    if (rc != 0)
        return rc;
    rc = alive_start(st, err);
    if (rc != 0)
        return rc;
    tx_log_info(TX_KV("instance", uuid), "templates loaded from %s; SMTP %s (%s, %d %s)",
                cfg->templates_dir, cfg->smtp_url, cfg->smtp_tls, st->nworkers,
                cfg->smtp_reuse ? "connection(s) reused" : "connection(s) per message");
    return 0;
}

void notify_daemon_fini(void *app)
{
    struct notify_daemon *nd = app;
    struct notify_state *st = nd->st;
    int i;

    if (st == NULL)
        return;
    alive_stop(st);
    for (i = 0; i < NTPL; i++)
        notify_template_destroy(st->tpl[i]);
    for (i = 0; i < WORKERS_MAX; i++) {
        notify_smtp_destroy(st->w[i].smtp);
        cache_conn_destroy(st->w[i].cache);
    }
    pthread_mutex_destroy(&st->unrec_mu);
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
