#ifndef FRAUD_APP_H
#define FRAUD_APP_H

/*
 * txfraud's daemon logic over the consumer skeleton (consumers/common/cons.h): its settings, the
 * batch handler that scores transaction.received events, sets tx:flag:<_id>, publishes
 * transaction.scored with confirms and only then acks, and its readiness check. main.c wires
 * these into a struct cons_spec; the integration tests call them directly.
 *
 * Per delivery: an undecodable or invalid event, or one that is not transaction.received, is
 * rejected (dead-lettered now) with a log line naming its message_id and the reason. Redis or
 * RabbitMQ failures are retried inside the handler with a growing delay (100 ms doubling to
 * 2 s, checking the stop flag) for at most dep_wait_ms per batch; after that the deliveries not
 * yet done get QUEUE_RETRY with a log line: the consumer loop holds them in the process and
 * hands them over again with back-off (consumers/common/cons.h), not returning them to the
 * broker, so an outage longer than the delivery limit allows dead-letters nothing. A delivery is
 * acked only after its scored event was confirmed by the broker.
 */

#include "common/tx_buf.h"
#include "common/tx_config.h"
#include "common/tx_metrics.h"
#include "consumers/common/cons.h"
#include "consumers/fraud/fraud_rules.h"
#include "consumers/fraud/fraud_state.h"
#include "storage/queue.h"

#include <signal.h>
#include <stddef.h>

/* txfraud's own settings (TX_REDIS_URL, TX_FRAUD_*), loaded by the skeleton. */
struct fraud_config {
    char *redis_url;
    long long redis_timeout_ms;
    char *rules_path;
    char *exchange;
    long long dep_wait_ms;
};

/* The daemon's state. Zero it, fill cfg (or let the skeleton load it), then fraud_app_init. */
struct fraud_app {
    struct fraud_config cfg;
    /* Optional, for tests: key prefixes (NULL: "tx:fraud:" and "tx:flag:"). */
    const char *key_prefix;
    const char *flag_prefix;
    /* Set by fraud_app_init. */
    const char *prog;
    struct fraud_rules rules;
    struct fraud_state *state; /* the handler's Redis connection */
    struct fraud_state *probe; /* the readiness thread's own connection */
    struct queue_publisher *pub;
    const volatile sig_atomic_t *stop;
    struct tx_counter *scored;
    struct tx_counter *replayed;
    struct tx_counter *flagged_tx;
    struct tx_counter *flagged[FRAUD_NRULES]; /* txfraud_flagged_total{reason} */
    struct tx_counter *fired[FRAUD_NRULES];   /* txfraud_rule_fired_total{reason} */
    struct tx_counter *dep_fail_redis;        /* txfraud_dependency_failures_total{...} */
    struct tx_counter *dep_fail_amqp;
};

/** The settings table of struct fraud_config (for cons_spec.config); *n gets its length. */
const struct tx_config_entry *fraud_config_table(size_t *n);

/**
 * cons_spec.init: loads the rules file (an invalid file fails with the path, rule and field in
 * err), opens the Redis state (Redis being down is not an error: readiness reports it), takes
 * cx->pub (required) and cx->stop, registers the metrics in cx->metrics. app is a struct
 * fraud_app. On failure call fraud_app_fini.
 */
int fraud_app_init(void *app, struct cons_ctx *cx, struct tx_err *err);

/** cons_spec.fini: frees what init opened. Safe on a zeroed or partly initialised app. */
void fraud_app_fini(void *app);

/**
 * cons_spec.handle_batch: handles d[0..n) in order (the order of the Lua script runs, hence the
 * arrival order of each client's transactions) and writes one disposition per delivery to out.
 * Not thread-safe (one consumer loop per app).
 */
void fraud_app_handle_batch(void *app, const struct queue_delivery *d, size_t n,
                            enum queue_disposition *out);

/** cons_spec.ready: appends ,"redis":"up" (or "down: why") to detail; 0 when up. */
int fraud_app_ready(void *app, struct tx_buf *detail);

#endif
