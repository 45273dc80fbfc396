#include "consumers/common/cons.h"

#include "common/tx_log.h"
#include "common/tx_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C(key, type, def, min, max, field, flags, desc)                            \
    {                                                                              \
        key, type, def, min, max, offsetof(struct cons_config, field), flags, desc \
    }

static const struct tx_config_entry common_config[] = {
    C("TX_AMQP_URL", TX_CONFIG_STRING, NULL, 1, 300, amqp_url, TX_CONFIG_SECRET,
      "RabbitMQ URL amqp://user:pass@host:port/vhost (this daemon's own user)"),
    C("TX_HEALTH_LISTEN", TX_CONFIG_STRING, "", 0, 200, health_listen, 0,
      "address:port of /healthz, /readyz and /metrics (default per daemon)"),
    C("TX_LOG_LEVEL", TX_CONFIG_STRING, "info", 4, 5, log_level, 0, "debug, info, warn or error"),
    C("TX_PREFETCH", TX_CONFIG_INT, "0", 0, 65535, prefetch, 0,
      "unacknowledged deliveries in hand (basic.qos); 0 = the daemon's default"),
    C("TX_HEARTBEAT_S", TX_CONFIG_INT, "30", 0, 3600, heartbeat_s, 0, "AMQP heartbeat interval"),
    C("TX_CONFIRM_TIMEOUT_MS", TX_CONFIG_MS, "10s", 100, 600000, confirm_timeout_ms, 0,
      "deadline for the broker to confirm a published event"),
    C("TX_BATCH_MAX", TX_CONFIG_INT, "500", 1, 65535, batch_max, 0,
      "batch daemons: most deliveries handled together"),
    C("TX_BATCH_WAIT_MS", TX_CONFIG_MS, "50ms", 0, 600000, batch_wait_ms, 0,
      "batch daemons: longest wait for a batch to fill"),
    C("TX_QUEUE", TX_CONFIG_STRING, "", 0, 255, queue, 0,
      "queue to consume instead of the daemon's own (tests and benchmarks)"),
    C("TX_RETRY_FIRST_MS", TX_CONFIG_MS, "500ms", 1, 600000, retry_first_ms, 0,
      "a delivery that failed transiently (dependency down) is held in the process and retried "
      "after this, then twice as long each time"),
    C("TX_RETRY_MAX_MS", TX_CONFIG_MS, "30s", 1, 600000, retry_max_ms, 0,
      "longest wait between two attempts of a held delivery"),
    C("TX_RETRY_HOLD_MS", TX_CONFIG_MS, "10min", 1, 1500000, retry_hold_ms, 0,
      "longest a delivery is held before it is requeued (each requeue counts toward the "
      "queue's delivery limit); below RabbitMQ's consumer_timeout (30 min)"),
};
#define NCOMMON (sizeof(common_config) / sizeof(common_config[0]))

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void) sig;
    stop_flag = 1;
}

/* Everything a running daemon holds. */
struct runner {
    const struct cons_spec *spec;
    const char *queue; /* TX_QUEUE, else *spec->queue_override, else spec->queue */
    struct cons_config cfg;
    struct cons_ctx cx;
    struct queue_consumer *consumer;
    struct tx_health *health;
    struct tx_counter *delivered;
    struct tx_counter *acked;
    struct tx_counter *retried;
    struct tx_counter *rejected;
    struct tx_counter *requeued;
    struct tx_counter *reconnects;
    struct tx_gauge *held;
    struct tx_histogram *latency;
    /* Pipelined mode: size and submit time of the batches not yet collected, oldest first. */
    size_t fl_n[2];
    int64_t fl_t0[2];
    unsigned nfl;
};

static void count(struct runner *r, enum queue_disposition d, size_t n)
{
    if (d == QUEUE_ACK)
        tx_counter_add(r->acked, n);
    else if (d == QUEUE_RETRY || d == QUEUE_DEFER)
        tx_counter_add(r->retried, n);
    else if (d == QUEUE_REQUEUE)
        tx_counter_add(r->requeued, n);
    else
        tx_counter_add(r->rejected, n);
}

static enum queue_disposition handle_one(void *ctx, const struct queue_delivery *d)
{
    struct runner *r = ctx;
    int64_t t0 = tx_time_mono_ms();
    enum queue_disposition disp;

    tx_counter_inc(r->delivered);
    tx_gauge_set(r->held, (double) queue_consumer_held(r->consumer, NULL));
    disp = r->spec->handle(r->spec->app, d);
    tx_histogram_observe(r->latency, (double) (tx_time_mono_ms() - t0) / 1000.0);
    count(r, disp, 1);
    return disp;
}

static void handle_batch(void *ctx, const struct queue_delivery *d, size_t n,
                         enum queue_disposition *out)
{
    struct runner *r = ctx;
    int64_t t0 = tx_time_mono_ms();
    size_t i;

    tx_counter_add(r->delivered, n);
    tx_gauge_set(r->held, (double) queue_consumer_held(r->consumer, NULL));
    r->spec->handle_batch(r->spec->app, d, n, out);
    tx_histogram_observe(r->latency, (double) (tx_time_mono_ms() - t0) / 1000.0);
    for (i = 0; i < n; i++)
        count(r, out[i], 1);
}

static void submit_batch(void *ctx, const struct queue_delivery *d, size_t n)
{
    struct runner *r = ctx;

    tx_counter_add(r->delivered, n);
    tx_gauge_set(r->held, (double) queue_consumer_held(r->consumer, NULL));
    if (r->nfl < 2) {
        r->fl_n[r->nfl] = n;
        r->fl_t0[r->nfl] = tx_time_mono_ms();
        r->nfl++;
    }
    r->spec->submit_batch(r->spec->app, d, n);
}

static void collect_batch(void *ctx, enum queue_disposition *out)
{
    struct runner *r = ctx;

    r->spec->collect_batch(r->spec->app, out);
    if (r->nfl == 0)
        return;
    tx_histogram_observe(r->latency, (double) (tx_time_mono_ms() - r->fl_t0[0]) / 1000.0);
    for (size_t i = 0; i < r->fl_n[0]; i++)
        count(r, out[i], 1);
    r->fl_n[0] = r->fl_n[1];
    r->fl_t0[0] = r->fl_t0[1];
    r->nfl--;
}

static void on_queue_event(void *ctx, const struct queue_event *ev)
{
    struct runner *r = ctx;
    const char *why = ev->err != NULL ? ev->err->msg : "";
    const char *mid = ev->message_id != NULL ? ev->message_id : "";
    char n[24];

    switch (ev->type) {
    case QUEUE_EVENT_CONNECTED:
        snprintf(n, sizeof(n), "%u", ev->message_count);
        tx_log_info(TX_KV("queue", r->queue, "depth", n), "consuming");
        break;
    case QUEUE_EVENT_CONNECT_FAILED:
        snprintf(n, sizeof(n), "%ld", ev->retry_in_ms);
        tx_counter_inc(r->reconnects);
        tx_log_warn(TX_KV("queue", r->queue, "retry_in_ms", n), "cannot consume: %s", why);
        break;
    case QUEUE_EVENT_DISCONNECTED:
        tx_counter_inc(r->reconnects);
        tx_log_warn(TX_KV("queue", r->queue), "connection lost: %s", why);
        break;
    case QUEUE_EVENT_TOO_BIG:
        tx_log_error(TX_KV("queue", r->queue), "delivery dead-lettered: %s", why);
        break;
    case QUEUE_EVENT_STOPPED:
        tx_log_info(TX_KV("queue", r->queue), "consumer stopped%s%s", why[0] != '\0' ? ": " : "",
                    why);
        break;
    case QUEUE_EVENT_HELD:
        tx_gauge_set(r->held, (double) ev->message_count);
        /* The 1st, 2nd, 4th, 8th... failed attempt: an outage is visible without flooding. */
        if ((ev->attempt & (ev->attempt - 1)) == 0) {
            snprintf(n, sizeof(n), "%ld", ev->retry_in_ms);
            tx_log_warn(TX_KV("queue", r->queue, "message_id", mid, "retry_in_ms", n),
                        "delivery held in the process after %u failed attempt(s) in %ld ms, not "
                        "requeued; %u held%s",
                        ev->attempt, ev->held_ms, ev->message_count,
                        ev->paused ? ", new deliveries wait (dependency down)" : "");
        }
        break;
    case QUEUE_EVENT_RESUMED:
        tx_gauge_set(r->held, 0);
        tx_log_info(TX_KV("queue", r->queue, "message_id", mid),
                    "held delivery done after %u failed attempt(s) and %ld ms; consuming again",
                    ev->attempt, ev->held_ms);
        break;
    case QUEUE_EVENT_REQUEUED:
        tx_gauge_set(r->held, (double) ev->message_count);
        tx_counter_inc(r->requeued);
        tx_log_error(TX_KV("queue", r->queue, "message_id", mid),
                     "delivery held %ld ms (%u attempts, TX_RETRY_HOLD_MS) requeued; each requeue "
                     "counts toward the queue's delivery limit",
                     ev->held_ms, ev->attempt);
        break;
    }
}

static int ready(void *ctx, struct tx_buf *detail)
{
    struct runner *r = ctx;
    int up = queue_consumer_is_connected(r->consumer);
    int rc = up ? 0 : TX_EUNAVAIL;

    int paused = 0;
    unsigned held = queue_consumer_held(r->consumer, &paused);

    tx_buf_printf(detail, "{\"rabbitmq\":\"%s\"", up ? "up" : "down: not consuming");
    /* Informational: the daemon's own checks below say which dependency is down. */
    if (held > 0)
        tx_buf_printf(detail, ",\"held\":\"%u deliveries held for another attempt%s\"", held,
                      paused ? "; new deliveries wait" : "");
    /* The daemon appends its own ",\"name\":\"state\"" pairs. */
    if (r->spec->ready != NULL && r->spec->ready(r->spec->app, detail) != 0)
        rc = TX_EUNAVAIL;
    tx_buf_puts(detail, "}");
    return rc;
}

static void usage(FILE *out, const struct cons_spec *spec)
{
    fprintf(out,
            "usage: %s [--help | healthcheck]\n\n%s\nConsumes queue %s. Configuration comes "
            "from the environment (each secret also from VAR_FILE):\n\n",
            spec->prog, spec->summary, spec->queue);
    tx_config_print_help(out, common_config, NCOMMON);
    if (spec->nconfig > 0)
        tx_config_print_help(out, spec->config, spec->nconfig);
}

static int healthcheck(const struct cons_spec *spec)
{
    const char *listen = getenv("TX_HEALTH_LISTEN");
    struct tx_err err = { 0 };

    if (listen == NULL || listen[0] == '\0')
        listen = spec->health_listen;
    if (tx_health_probe(listen, "/healthz", 2000, &err) != 0) {
        fprintf(stderr, "%s healthcheck: %s\n", spec->prog, err.msg);
        return 1;
    }
    return 0;
}

static int register_metrics(struct runner *r, struct tx_err *err)
{
    static const double lat[] = { TX_METRICS_LATENCY_BUCKETS };
    char name[128];
    struct tx_metrics *m = r->cx.metrics;

#define REG(field, suffix, help)                                      \
    do {                                                              \
        snprintf(name, sizeof(name), "%s_%s", r->spec->prog, suffix); \
        r->field = tx_metrics_counter(m, name, help, err);            \
        if (r->field == NULL)                                         \
            return TX_EINVAL;                                         \
    } while (0)
    REG(delivered, "delivered_total", "Deliveries received from the queue");
    REG(acked, "acked_total", "Deliveries acknowledged after their effect was durable");
    REG(retried, "retried_total",
        "Handler attempts that failed transiently (the delivery is held and retried)");
    REG(rejected, "rejected_total", "Deliveries dead-lettered (poison or permanent failure)");
    REG(requeued, "requeued_total",
        "Deliveries returned to the broker (held past TX_RETRY_HOLD_MS, or by the handler)");
    REG(reconnects, "reconnects_total", "Lost or failed broker connections");
#undef REG
    snprintf(name, sizeof(name), "%s_held_deliveries", r->spec->prog);
    r->held = tx_metrics_gauge(m, name, "Deliveries held in the process for another attempt", err);
    if (r->held == NULL)
        return TX_EINVAL;
    snprintf(name, sizeof(name), "%s_handler_seconds", r->spec->prog);
    r->latency = tx_metrics_histogram(m, name, "Time spent handling a delivery (or a batch)", lat,
                                      TX_METRICS_LATENCY_BUCKETS_N, err);
    return r->latency != NULL ? 0 : TX_EINVAL;
}

int cons_main(int argc, char **argv, const struct cons_spec *spec)
{
    struct runner r;
    struct tx_err err = { 0 };
    struct queue_config qc = { 0 };
    struct sigaction sa;
    enum tx_log_level lvl = TX_LOG_INFO;
    bool app_loaded = false;
    bool inited = false;
    int rc = 1;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout, spec);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "healthcheck") == 0)
        return healthcheck(spec);
    if (argc > 1) {
        usage(stderr, spec);
        return 2;
    }
    memset(&r, 0, sizeof(r));
    r.spec = spec;
    if (tx_config_load(common_config, NCOMMON, &r.cfg, NULL, NULL, &err) != 0 ||
        (spec->nconfig > 0 &&
         tx_config_load(spec->config, spec->nconfig, spec->app_config, NULL, NULL, &err) != 0)) {
        fprintf(stderr, "%s: configuration error: %s (see %s --help)\n", spec->prog, err.msg,
                spec->prog);
        tx_config_cleanup(common_config, NCOMMON, &r.cfg);
        return 2;
    }
    app_loaded = spec->nconfig > 0;
    if (tx_log_level_parse(r.cfg.log_level, &lvl) != 0) {
        fprintf(stderr,
                "%s: configuration error: TX_LOG_LEVEL must be debug, info, warn or "
                "error\n",
                spec->prog);
        rc = 2;
        goto out;
    }
    tx_log_init(spec->prog, lvl);
    if (r.cfg.prefetch == 0)
        r.cfg.prefetch = spec->default_prefetch;

    r.cx.prog = spec->prog;
    r.cx.cfg = &r.cfg;
    r.cx.stop = &stop_flag;
    r.cx.metrics = tx_metrics_create(TX_METRICS_DEFAULT);
    if (r.cx.metrics == NULL || register_metrics(&r, &err) != 0) {
        tx_log_error(TX_NOKV, "cannot register metrics: %s", err.msg);
        goto out;
    }
    qc.url = r.cfg.amqp_url;
    qc.name = spec->prog;
    qc.heartbeat_s = (int) r.cfg.heartbeat_s;
    qc.confirm_timeout_ms = (long) r.cfg.confirm_timeout_ms;
    if (spec->publishes) {
        r.cx.pub = queue_publisher_create(&qc, &err);
        if (r.cx.pub == NULL) {
            tx_log_error(TX_NOKV, "bad AMQP settings: %s", err.msg);
            goto out;
        }
    }
    r.queue = spec->queue;
    if (spec->queue_override != NULL && *spec->queue_override != NULL &&
        (*spec->queue_override)[0] != '\0')
        r.queue = *spec->queue_override;
    if (r.cfg.queue[0] != '\0')
        r.queue = r.cfg.queue;
    r.consumer = queue_consumer_create(&qc, r.queue, (unsigned) r.cfg.prefetch, &err);
    if (r.consumer == NULL) {
        tx_log_error(TX_NOKV, "bad AMQP settings: %s", err.msg);
        goto out;
    }
    queue_consumer_set_event_fn(r.consumer, on_queue_event, &r);
    {
        struct queue_retry rq = {
            .first_ms = (long) r.cfg.retry_first_ms,
            .max_ms = (long) r.cfg.retry_max_ms,
            .hold_ms = (long) r.cfg.retry_hold_ms,
        };

        if (queue_consumer_set_retry(r.consumer, &rq, &err) != 0) {
            fprintf(stderr, "%s: configuration error: TX_RETRY_*: %s\n", spec->prog, err.msg);
            rc = 2;
            goto out;
        }
    }
    inited = true;
    if (spec->init != NULL && spec->init(spec->app, &r.cx, &err) != 0) {
        tx_log_error(TX_NOKV, "cannot start: %s", err.msg);
        fprintf(stderr, "%s: cannot start: %s\n", spec->prog, err.msg);
        goto out;
    }
    r.health =
        tx_health_start(r.cfg.health_listen[0] != '\0' ? r.cfg.health_listen : spec->health_listen,
                        r.cx.metrics, ready, &r, &err);
    if (r.health == NULL) {
        tx_log_error(TX_NOKV, "cannot start the health server: %s", err.msg);
        fprintf(stderr, "%s: cannot start the health server: %s\n", spec->prog, err.msg);
        goto out;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    tx_log_info(TX_KV("queue", r.queue), "%s started", spec->prog);
    if (spec->submit_batch != NULL && spec->collect_batch != NULL)
        rc = queue_consumer_run_pipelined(r.consumer, submit_batch, collect_batch, &r,
                                          (size_t) r.cfg.batch_max, (long) r.cfg.batch_wait_ms,
                                          &stop_flag, &err);
    else if (spec->handle_batch != NULL)
        rc = queue_consumer_run_batch(r.consumer, handle_batch, &r, (size_t) r.cfg.batch_max,
                                      (long) r.cfg.batch_wait_ms, &stop_flag, &err);
    else
        rc = queue_consumer_run(r.consumer, handle_one, &r, &stop_flag, &err);
    if (rc != 0) {
        tx_log_error(TX_NOKV, "consumer loop failed: %s", err.msg);
        rc = 1;
    }
    tx_log_info(TX_NOKV, "%s stopped", spec->prog);
out:
    tx_health_stop(r.health);
    if (inited && spec->fini != NULL)
        spec->fini(spec->app);
    queue_consumer_destroy(r.consumer);
    queue_publisher_destroy(r.cx.pub);
    tx_metrics_destroy(r.cx.metrics);
    if (app_loaded)
        tx_config_cleanup(spec->config, spec->nconfig, spec->app_config);
    tx_config_cleanup(common_config, NCOMMON, &r.cfg);
    return rc;
}
