#include "consumers/fraud/fraud_app.h"

#include "common/tx_event.h"
#include "common/tx_log.h"
#include "common/tx_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define C(key, type, def, min, max, field, flags, desc)                             \
    {                                                                               \
        key, type, def, min, max, offsetof(struct fraud_config, field), flags, desc \
    }

static const struct tx_config_entry config_table[] = {
    C("TX_REDIS_URL", TX_CONFIG_STRING, "redis://127.0.0.1:6379/0", 1, 300, redis_url,
      TX_CONFIG_SECRET, "Redis URL (fraud state tx:fraud:* and the flags tx:flag:<_id>)"),
    C("TX_REDIS_TIMEOUT_MS", TX_CONFIG_MS, "2s", 50, 60000, redis_timeout_ms, 0,
      "Redis connect and per-command timeout"),
    C("TX_FRAUD_RULES", TX_CONFIG_STRING, "volumes/fraud/rules.json", 1, 4096, rules_path, 0,
      "rules file (relative to the working directory unless absolute)"),
    C("TX_FRAUD_EXCHANGE", TX_CONFIG_STRING, "tx.events", 1, 255, exchange, 0,
      "exchange that receives transaction.scored"),
    C("TX_FRAUD_DEP_WAIT_MS", TX_CONFIG_MS, "2s", 0, 50000, dep_wait_ms, 0,
      "longest a batch waits in the handler for Redis/RabbitMQ; then the consumer loop holds "
      "the deliveries not done and retries them (TX_RETRY_*) while it keeps the broker "
      "connection alive (keep well under TX_HEARTBEAT_S)"),
};

#define FIRST_DELAY_MS 100
#define MAX_DELAY_MS   2000
#define SLICE_MS       50
/* Scored bodies kept before publishing (bytes): a batch of huge events is published in parts. */
#define ARENA_FLUSH (8u << 20)
#define ARENA_MAX   (64u << 20)

const struct tx_config_entry *fraud_config_table(size_t *n)
{
    *n = sizeof(config_table) / sizeof(config_table[0]);
    return config_table;
}

static int register_metrics(struct fraud_app *a, struct tx_metrics *m, struct tx_err *err)
{
    static const char *const reason_label[] = { "reason" };
    static const char *const dep_label[] = { "dependency" };
    struct tx_metric_desc d;
    struct tx_metric_family *flagged;
    struct tx_metric_family *fired;
    struct tx_metric_family *dep;
    char name[128];
    int i;

#define NAME(suffix) (snprintf(name, sizeof(name), "%s_%s", a->prog, suffix), name)
    a->scored =
        tx_metrics_counter(m, NAME("scored_total"),
                           "Transactions scored (each event once, redeliveries excluded)", err);
    if (a->scored == NULL)
        return TX_EINVAL;
    a->replayed = tx_metrics_counter(m, NAME("replayed_total"),
                                     "Redelivered events answered with their stored verdict", err);
    if (a->replayed == NULL)
        return TX_EINVAL;
    a->flagged_tx = tx_metrics_counter(m, NAME("flagged_transactions_total"),
                                       "Transactions flagged (score >= flag_threshold)", err);
    if (a->flagged_tx == NULL)
        return TX_EINVAL;
    memset(&d, 0, sizeof(d));
    d.type = TX_METRIC_COUNTER;
    d.labels = reason_label;
    d.nlabels = 1;
    d.name = NAME("flagged_total");
    d.help = "Flagged transactions by reason code (one per reason of each flagged transaction)";
    flagged = tx_metrics_family(m, &d, err);
    if (flagged == NULL)
        return TX_EINVAL;
    d.name = NAME("rule_fired_total");
    d.help = "Rules that fired, flagged or not, by reason code";
    fired = tx_metrics_family(m, &d, err);
    if (fired == NULL)
        return TX_EINVAL;
    d.labels = dep_label;
    d.name = NAME("dependency_failures_total");
    d.help = "Failed Redis or RabbitMQ calls (each is retried or the delivery requeued)";
    dep = tx_metrics_family(m, &d, err);
    if (dep == NULL)
        return TX_EINVAL;
#undef NAME
    for (i = 0; i < FRAUD_NRULES; i++) {
        const char *code = fraud_rule_code((enum fraud_rule_id) i);

        a->flagged[i] = tx_metric_family_counter(flagged, &code, 1);
        a->fired[i] = tx_metric_family_counter(fired, &code, 1);
    }
    a->dep_fail_redis = tx_metric_family_counter(dep, (const char *const[]){ "redis" }, 1);
    a->dep_fail_amqp = tx_metric_family_counter(dep, (const char *const[]){ "rabbitmq" }, 1);
    return 0;
}

int fraud_app_init(void *ctx, struct cons_ctx *cx, struct tx_err *err)
{
    struct fraud_app *a = ctx;
    struct fraud_state_config sc = { 0 };
    char enabled[256] = "";
    int i;
    int rc;

    a->prog = cx->prog != NULL ? cx->prog : "txfraud";
    a->stop = cx->stop;
    a->pub = cx->pub;
    if (a->pub == NULL || a->stop == NULL)
        return tx_err_set(err, TX_EINVAL, "txfraud needs a publisher and a stop flag");
    rc = fraud_rules_load(a->cfg.rules_path, &a->rules, err);
    if (rc != 0)
        return rc;
    sc.redis_url = a->cfg.redis_url;
    sc.timeout_ms = (long) a->cfg.redis_timeout_ms;
    sc.key_prefix = a->key_prefix;
    sc.flag_prefix = a->flag_prefix;
    a->state = fraud_state_create(&sc, err);
    if (a->state == NULL)
        return err != NULL && err->code != 0 ? err->code : TX_EINVAL;
    a->probe = fraud_state_create(&sc, err);
    if (a->probe == NULL)
        return err != NULL && err->code != 0 ? err->code : TX_EINVAL;
    if (cx->metrics != NULL) {
        rc = register_metrics(a, cx->metrics, err);
        if (rc != 0)
            return rc;
    }
    for (i = 0; i < FRAUD_NRULES; i++) {
        if (a->rules.rule[i].enabled) {
            size_t l = strlen(enabled);

            snprintf(enabled + l, sizeof(enabled) - l, "%s%s(%lld)", l > 0 ? " " : "",
                     fraud_rule_code((enum fraud_rule_id) i), a->rules.rule[i].weight);
        }
    }
    tx_log_info(TX_KV("rules", a->cfg.rules_path), "rules loaded: flag at score >= %lld; %s",
                a->rules.flag_threshold, enabled[0] != '\0' ? enabled : "no rule enabled");
    return 0;
}

void fraud_app_fini(void *ctx)
{
    struct fraud_app *a = ctx;

    fraud_state_destroy(a->state);
    a->state = NULL;
    fraud_state_destroy(a->probe);
    a->probe = NULL;
}

int fraud_app_ready(void *ctx, struct tx_buf *detail)
{
    struct fraud_app *a = ctx;
    struct tx_err err = { 0 };
    char why[300];
    int rc = fraud_state_ping(a->probe, &err);

    tx_buf_puts(detail, ",\"redis\":");
    if (rc == 0) {
        tx_buf_puts(detail, "\"up\"");
        return 0;
    }
    snprintf(why, sizeof(why), "down: %s", err.msg);
    tx_buf_json_str(detail, why, strlen(why));
    return TX_EUNAVAIL;
}

/* ---- the handler ---- */

/* Waits before the next attempt; false when the batch's budget is spent or a stop came. */
static bool backoff(struct fraud_app *a, long *delay, int64_t deadline)
{
    int64_t now = tx_time_mono_ms();
    int64_t until;

    if (*a->stop || now >= deadline)
        return false;
    until = now + *delay < deadline ? now + *delay : deadline;
    while (!*a->stop && now < until) {
        long ms = until - now < SLICE_MS ? (long) (until - now) : SLICE_MS;
        struct timespec ts = { 0, ms * 1000000L };

        nanosleep(&ts, NULL);
        now = tx_time_mono_ms();
    }
    *delay = *delay * 2 < MAX_DELAY_MS ? *delay * 2 : MAX_DELAY_MS;
    return !*a->stop;
}

/* Does a Redis failure deserve waiting? (A bad argument will not get better.) */
static bool transient(int rc)
{
    return rc != TX_EINVAL && rc != TX_ENOMEM;
}

/* One delivery in a batch. */
struct slot {
    bool ready;                         /* scored and encoded, to publish */
    char event_id[TX_EVENT_ID_MAX + 1]; /* message_id */
    char upload_id[40];                 /* correlation_id */
    size_t off;                         /* body in the arena */
    size_t len;
};

static void reject(const struct queue_delivery *d, const char *what, const char *why)
{
    tx_log_error(TX_KV("message_id", d->message_id, "routing_key", d->routing_key),
                 "poison message dead-lettered: %s%s", what, why);
}

static void count(struct fraud_app *a, const struct fraud_result *res)
{
    size_t i;

    if (res->replayed) {
        tx_counter_inc(a->replayed);
        return;
    }
    tx_counter_inc(a->scored);
    if (res->verdict.flagged)
        tx_counter_inc(a->flagged_tx);
    for (i = 0; i < res->verdict.nreasons; i++) {
        tx_counter_inc(a->fired[res->facts[i].rule]);
        if (res->verdict.flagged)
            tx_counter_inc(a->flagged[res->facts[i].rule]);
    }
}

static void log_verdict(const struct tx_event *ev, const struct fraud_result *res)
{
    char codes[TX_REASONS_MAX * 20] = "";
    size_t i;

    for (i = 0; i < res->verdict.nreasons; i++) {
        size_t l = strlen(codes);

        snprintf(codes + l, sizeof(codes) - l, "%s%s", i > 0 ? "," : "",
                 res->verdict.reasons[i].code);
    }
    if (res->verdict.flagged)
        tx_log_info(
            TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id, "client_id", ev->record.id),
            "flagged (score %g%s): %s", res->verdict.score, res->replayed ? ", stored verdict" : "",
            codes);
    else
        tx_log_debug(
            TX_KV("event_id", ev->event_id, "upload_id", ev->upload_id, "client_id", ev->record.id),
            "not flagged (score %g%s)%s%s", res->verdict.score,
            res->replayed ? ", stored verdict" : "", codes[0] != '\0' ? ": " : "", codes);
}

/* Scores one event, waiting for Redis within the budget. */
static int score(struct fraud_app *a, const struct tx_event *ev, struct fraud_result *res,
                 int64_t deadline, struct tx_err *err)
{
    long delay = FIRST_DELAY_MS;
    int rc;

    for (;;) {
        rc = fraud_state_score(a->state, &a->rules, ev->event_id, &ev->record, 0, 0, res, err);
        if (rc == 0)
            return 0;
        tx_counter_inc(a->dep_fail_redis);
        tx_log_debug(TX_KV("event_id", ev->event_id), "redis: %s", err->msg);
        if (!transient(rc) || !backoff(a, &delay, deadline))
            return rc;
    }
}

static int set_flag(struct fraud_app *a, const struct tx_event *ev, const struct fraud_result *res,
                    int64_t deadline, struct tx_err *err)
{
    long delay = FIRST_DELAY_MS;
    int rc;

    for (;;) {
        rc = fraud_state_set_flag(a->state, &a->rules, ev->record.id, ev->event_id, ev->upload_id,
                                  res, err);
        if (rc == 0)
            return 0;
        tx_counter_inc(a->dep_fail_redis);
        tx_log_debug(TX_KV("event_id", ev->event_id), "redis: %s", err->msg);
        if (!transient(rc) || !backoff(a, &delay, deadline))
            return rc;
    }
}

/*
 * Publishes the ready slots [from, to) whose bodies are in arena, with confirms, and acks each
 * confirmed one. Retries what is not confirmed within the budget; the rest stays QUEUE_RETRY.
 */
static void publish(struct fraud_app *a, const struct queue_delivery *d, struct slot *slots,
                    size_t from, size_t to, const struct tx_buf *arena, enum queue_disposition *out,
                    int64_t deadline)
{
    struct queue_msg *msgs = NULL;
    size_t *idx = NULL;
    struct tx_err err = { 0 };
    long delay = FIRST_DELAY_MS;
    size_t m = 0;
    size_t done = 0;
    size_t k;
    size_t i;
    int rc;

    msgs = calloc(to - from, sizeof(*msgs));
    idx = calloc(to - from, sizeof(*idx));
    if (msgs == NULL || idx == NULL) {
        tx_log_error(TX_NOKV, "out of memory publishing %zu scored events", to - from);
        goto out;
    }
    for (i = from; i < to; i++) {
        if (!slots[i].ready)
            continue;
        msgs[m].routing_key = tx_event_type_name(TX_EVENT_SCORED);
        msgs[m].message_id = slots[i].event_id;
        msgs[m].correlation_id = slots[i].upload_id;
        msgs[m].body = arena->data + slots[i].off;
        msgs[m].len = slots[i].len;
        idx[m++] = i;
    }
    while (done < m) {
        rc = queue_publish_confirmed(a->pub, a->cfg.exchange, msgs + done, m - done, &err);
        k = queue_publisher_last_confirmed(a->pub);
        for (i = done; i < done + k; i++) {
            out[idx[i]] = QUEUE_ACK;
            slots[idx[i]].ready = false;
        }
        done += k;
        if (rc == 0)
            break;
        tx_counter_inc(a->dep_fail_amqp);
        tx_log_debug(TX_KV("exchange", a->cfg.exchange), "publish: %s", err.msg);
        if (!backoff(a, &delay, deadline)) {
            tx_log_warn(TX_KV("message_id", d[idx[done]].message_id, "exchange", a->cfg.exchange),
                        "cannot publish %zu scored events (%s): holding their deliveries for "
                        "another attempt",
                        m - done, err.msg);
            break;
        }
    }
out:
    free(msgs);
    free(idx);
}

void fraud_app_handle_batch(void *ctx, const struct queue_delivery *d, size_t n,
                            enum queue_disposition *out)
{
    struct fraud_app *a = ctx;
    int64_t deadline = tx_time_mono_ms() + a->cfg.dep_wait_ms;
    struct slot *slots = NULL;
    struct tx_buf arena;
    struct tx_err err = { 0 };
    size_t first = 0; /* first slot not yet given to publish() */
    size_t i;
    bool dep_down = false;
    int rc;

    tx_buf_init(&arena, ARENA_MAX);
    for (i = 0; i < n; i++)
        out[i] = QUEUE_RETRY;
    slots = calloc(n, sizeof(*slots));
    if (slots == NULL) {
        tx_log_error(TX_NOKV, "out of memory handling %zu deliveries: requeueing", n);
        goto out;
    }
    for (i = 0; i < n; i++) {
        struct tx_event *ev = NULL;
        struct fraud_result res;
        size_t off = arena.len;

        rc = tx_event_decode(d[i].body, d[i].len, &ev, &err);
        if (rc == TX_ENOMEM) {
            tx_log_error(TX_KV("message_id", d[i].message_id), "out of memory: requeueing");
            continue;
        }
        if (rc != 0) {
            reject(&d[i], "", err.msg);
            out[i] = QUEUE_REJECT;
            continue;
        }
        if (ev->type != TX_EVENT_RECEIVED) {
            reject(&d[i], "not a transaction.received event: ", tx_event_type_name(ev->type));
            out[i] = QUEUE_REJECT;
            goto next;
        }
        if (dep_down)
            goto next;
        rc = score(a, ev, &res, deadline, &err);
        if (rc == TX_EINVAL) {
            reject(&d[i], "cannot be scored: ", err.msg);
            out[i] = QUEUE_REJECT;
            goto next;
        }
        if (rc != 0) {
            dep_down = true;
            tx_log_warn(TX_KV("message_id", d[i].message_id, "event_id", ev->event_id),
                        "redis unavailable (%s): holding this and the rest of the batch for "
                        "another attempt",
                        err.msg);
            goto next;
        }
        count(a, &res);
        log_verdict(ev, &res);
        rc = set_flag(a, ev, &res, deadline, &err);
        if (rc != 0) {
            dep_down = true;
            tx_log_warn(TX_KV("message_id", d[i].message_id, "event_id", ev->event_id),
                        "cannot set the fraud flag (%s): holding this and the rest of the batch "
                        "for another attempt",
                        err.msg);
            goto next;
        }
        rc = tx_event_encode_tx(&ev->head, &ev->record, &res.verdict, &arena);
        if (rc != 0) {
            arena.len = off;
            tx_log_error(TX_KV("message_id", d[i].message_id, "event_id", ev->event_id),
                         "cannot encode the scored event (%s): requeueing", tx_status_name(rc));
            goto next;
        }
        slots[i].ready = true;
        slots[i].off = off;
        slots[i].len = arena.len - off;
        snprintf(slots[i].event_id, sizeof(slots[i].event_id), "%s", ev->event_id);
        snprintf(slots[i].upload_id, sizeof(slots[i].upload_id), "%s", ev->upload_id);
        if (arena.len >= ARENA_FLUSH) {
            publish(a, d, slots, first, i + 1, &arena, out, deadline);
            first = i + 1;
            tx_buf_reset(&arena);
        }
next:
        tx_event_destroy(ev);
    }
    publish(a, d, slots, first, n, &arena, out, deadline);
out:
    free(slots);
    tx_buf_cleanup(&arena);
}
