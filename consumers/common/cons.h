#ifndef CONS_H
#define CONS_H

/*
 * The shared skeleton of the consumer daemons (txfraud, txnotify, txpersist): configuration,
 * logging, the health/metrics server, signals, a confirmed publisher for daemons that emit
 * events, and the consumer loop of storage/queue with per-delivery metrics. Each daemon's main.c
 * fills a struct cons_spec and calls cons_main.
 */

#include "common/tx_config.h"
#include "common/tx_health.h"
#include "common/tx_metrics.h"
#include "storage/queue.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* Settings every consumer daemon has (TX_AMQP_URL, TX_PREFETCH, ...). */
struct cons_config {
    char *amqp_url;
    char *health_listen;
    char *log_level;
    long long prefetch;
    long long heartbeat_s;
    long long confirm_timeout_ms;
    long long batch_max;      /* batch daemons only */
    long long batch_wait_ms;  /* batch daemons only */
    char *queue;              /* TX_QUEUE: queue to consume; "" means spec->queue */
    long long retry_first_ms; /* TX_RETRY_FIRST_MS: first back-off of a held delivery */
    long long retry_max_ms;   /* TX_RETRY_MAX_MS: longest back-off */
    long long retry_hold_ms;  /* TX_RETRY_HOLD_MS: longest hold before a requeue */
};

/* What the skeleton gives the daemon's callbacks. */
struct cons_ctx {
    const char *prog;
    const struct cons_config *cfg;
    struct tx_metrics *metrics;  /* register the daemon's own metrics in init */
    struct queue_publisher *pub; /* when spec->publishes; NULL otherwise */
    const volatile sig_atomic_t *stop;
};

struct cons_spec {
    const char *prog;          /* "txfraud" */
    const char *summary;       /* one line for --help */
    const char *queue;         /* "tx.fraud" */
    const char *health_listen; /* default "127.0.0.1:9101" */
    long long default_prefetch;
    bool publishes; /* needs a confirmed publisher (ctx->pub) */
    /* The daemon's own settings: loaded into app_config before init. */
    const struct tx_config_entry *config;
    size_t nconfig;
    void *app_config;
    /* Opens the daemon's resources (after config, logging, metrics; before consuming). A
     * failure stops the program with the message in err (exit 1). */
    int (*init)(void *app, struct cons_ctx *cx, struct tx_err *err);
    /* Frees them (also after a failed init). */
    void (*fini)(void *app);
    /* One of the two handlers. Their dispositions (storage/queue.h): QUEUE_ACK once the effect
     * is durable; QUEUE_REJECT for a poison message (dead-lettered now; log why); QUEUE_RETRY
     * when a dependency is down: the delivery is held in the process and handed over again with
     * back-off (TX_RETRY_FIRST_MS doubling to TX_RETRY_MAX_MS), new deliveries wait, and only
     * after TX_RETRY_HOLD_MS is it requeued; QUEUE_DEFER when only this delivery must wait (held
     * the same way, others go on); QUEUE_REQUEUE to return it to the broker now. A handler should
     * give up on a dependency quickly (a few seconds) and return QUEUE_RETRY rather than wait
     * itself: the skeleton's wait keeps the broker connection alive, a handler's does not. */
    queue_handler_fn handle;
    queue_batch_fn handle_batch;
    /* Or the pipelined pair (queue_consumer_run_pipelined): submit starts a batch, collect
     * waits for the oldest one and writes its dispositions; the next batch is read and submitted
     * while the one before it is worked on. Same dispositions as above. */
    queue_submit_fn submit_batch;
    queue_collect_fn collect_batch;
    /* Extra readiness checks (e.g. PostgreSQL): appends ",\"name\":\"up\"" (or the reason it
     * is down) for each dependency to detail and returns 0 when all are up. May be NULL. Runs in
     * a health-server thread, at most once per second: use a connection of its own. */
    int (*ready)(void *app, struct tx_buf *detail);
    void *app;
    /* Optional: the address of a string field of app_config holding a daemon-specific queue
     * setting (txnotify's TX_NOTIFY_QUEUE). When it is not NULL and, once the configuration is
     * loaded, points at a non-empty string, that queue is consumed instead of queue. The common
     * TX_QUEUE, when set, still wins. NULL: TX_QUEUE or queue. */
    char *const *queue_override;
};

/**
 * Runs a consumer daemon: `PROG --help`, `PROG healthcheck` (probes its own /healthz), or the
 * daemon itself until SIGTERM/SIGINT, after which the loop drains (basic.cancel, finish and ack
 * what is in hand) and the program exits 0. Returns the process exit code: 0, 1 (start-up
 * failure), 2 (configuration or usage error).
 */
int cons_main(int argc, char **argv, const struct cons_spec *spec);

#endif
