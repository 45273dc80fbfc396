#ifndef NOTIFY_DAEMON_H
#define NOTIFY_DAEMON_H

/*
 * txnotify: consumes transaction.scored events and e-mails a receipt to the client, or, when the
 * transaction is flagged, an alert to the client and one to TX_ALERT_EMAIL; publishes
 * notification.sent or notification.failed for each e-mail and acks the event once the broker
 * confirmed them.
 *
 * At most once per (event_id, template): before sending, the key
 * tx:notify:sent:{<event_id>}:<template> is claimed in Redis with SET NX ("sending <instance>",
 * TX_NOTIFY_CLAIM_TTL); after the server accepted the message it becomes "sent"
 * (TX_NOTIFY_SENT_TTL), after a permanent refusal "failed:<reply>". A redelivered event whose
 * e-mails are "sent" (or "failed:") sends nothing and publishes the outcome again (downstream is
 * idempotent). Each instance keeps a heartbeat key tx:notify:alive:<instance> (TTL
 * TX_NOTIFY_ALIVE_TTL, refreshed by a thread of its own every quarter of it); a claim "sending"
 * of an instance whose heartbeat is gone (it crashed during the send) is taken over at once with
 * a Lua compare-and-set; a claim of a live instance is waited out in the process (QUEUE_DEFER:
 * the delivery is held and retried, other e-mails go on), never requeued.
 *
 * Remaining window: a crash (or a lost connection) after the server accepted the message and
 * before "sent" is written leaves the claim to expire, and the redelivered event sends the
 * e-mail again. Both copies carry the same deterministic Message-ID (notify_message_id), so a
 * receiving system that deduplicates by Message-ID shows one. If only the "sent" write fails
 * (Redis down) the instance remembers the key in memory and does not send it again itself.
 *
 * Failures: undecodable or invalid events are dead-lettered (QUEUE_REJECT, logged with the
 * message_id and the reason). Transient failures are retried inside the handler with backoff
 * (200 ms doubling to 3.2 s) for at most TX_NOTIFY_RETRY_BUDGET per delivery (default: one
 * attempt), checking the stop flag; then the handler returns QUEUE_RETRY when a dependency is
 * down (no answer or 421 from the SMTP server, Redis down, the broker not confirming the
 * outcome), so the consumer loop holds the delivery and pauses (consumers/common/cons.h,
 * TX_RETRY_*), or QUEUE_DEFER when only this e-mail must wait (a 4xx for this recipient, a claim
 * of a live instance). Permanent failures (5xx, an address that cannot be used) become
 * notification.failed with the server's reply and the event is acked.
 */

#include "consumers/common/cons.h"

#include <stdbool.h>
#include <stddef.h>

/* The daemon's settings (TX_NOTIFY_*, TX_SMTP_*, ...), loaded by cons_main. */
struct notify_config {
    char *queue;
    char *redis_url;
    long long redis_timeout_ms;
    char *smtp_url;
    char *smtp_tls;
    char *smtp_user;
    char *smtp_password;
    long long smtp_connect_timeout_ms;
    long long smtp_timeout_ms;
    bool smtp_reuse;
    long long smtp_connections;
    char *mail_from;
    char *alert_email;
    char *templates_dir;
    char *msgid_domain;
    long long retry_budget_ms;
    long long claim_ttl_ms;
    long long sent_ttl_ms;
    long long alive_ttl_ms;
};

/* The configuration table (for cons_spec.config) and its length. */
extern const struct tx_config_entry notify_config_table[];
extern const size_t notify_config_table_len;

struct notify_state;

/* What main() hands to cons_main as spec.app (config) and spec.app_config (&cfg). */
struct notify_daemon {
    struct notify_config cfg;
    struct notify_state *st; /* created by notify_daemon_init */
};

/* Template names. */
#define NOTIFY_TPL_RECEIPT      "receipt"
#define NOTIFY_TPL_ALERT_CLIENT "alert_client"
#define NOTIFY_TPL_ALERT_OPS    "alert_ops"

/**
 * cons_spec.init: checks the settings, loads the three templates (a missing, unreadable or
 * invalid template fails with the file named in err), creates the SMTP sender and registers the
 * metrics (txnotify_sent_total, _failed_total, _skipped_total by template, _smtp_seconds,
 * _smtp_transient_total, _smtp_connections_total). Redis is connected on first use. app is a
 * struct notify_daemon whose cfg was loaded. 0 or TX_EINVAL / TX_ENOTFOUND / TX_EIO / TX_ENOMEM.
 */
int notify_daemon_init(void *app, struct cons_ctx *cx, struct tx_err *err);

/** cons_spec.fini: frees what init created. Safe after a failed init. */
void notify_daemon_fini(void *app);

/**
 * cons_spec.handle_batch: a batch of transaction.scored deliveries (see the top of this file).
 * Its e-mails are sent in parallel over TX_SMTP_CONNECTIONS connections (one thread, SMTP
 * connection and Redis connection each; the claims, sends and markers of one e-mail stay in one
 * thread), then the outcome events of every event whose e-mails are done are published with one
 * confirm wait; an event is acked only when all its outcomes were confirmed. Once one e-mail
 * finds a dependency down, the e-mails of the batch not yet tried are not tried (QUEUE_RETRY),
 * so a dead server costs one timeout per connection, not one per e-mail.
 */
void notify_daemon_handle_batch(void *app, const struct queue_delivery *d, size_t n,
                                enum queue_disposition *out);

/** cons_spec.handle: one delivery (a batch of one). */
enum queue_disposition notify_daemon_handle(void *app, const struct queue_delivery *d);

/**
 * cons_spec.ready: appends ",\"redis\":..." (PING on a connection of its own, under a mutex)
 * and ",\"smtp\":..." (down after a send got no answer or a 421, until the next send the server
 * answered) to detail; 0 when both are up.
 */
int notify_daemon_ready(void *app, struct tx_buf *detail);

#endif
