#ifndef STORAGE_QUEUE_H
#define STORAGE_QUEUE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tx_status.h"

/*
 * RabbitMQ (AMQP 0-9-1) access through rabbitmq-c: a confirmed publisher and a consumer loop.
 *
 * Each publisher and each consumer owns one connection with one channel. Publishing and
 * consuming never share a connection: when the broker throttles publishers (resource alarm,
 * connection.blocked) it stops reading their connections, which would also stall a consumer's
 * acks. A consumer whose handler publishes (txfraud) therefore owns a queue_publisher beside its
 * queue_consumer and passes it to the handler through ctx.
 *
 * Errors (negative enum tx_status, detail in err->msg): TX_EINVAL bad argument or URL,
 * TX_EUNAVAIL broker unreachable, connection lost or refused by a resource limit (retryable),
 * TX_ETIMEDOUT deadline passed, TX_EREJECT refused by the broker (basic.nack, basic.return,
 * ACCESS_REFUSED, NOT_ALLOWED, PRECONDITION_FAILED), TX_ENOTFOUND no such exchange or queue
 * (NOT_FOUND), TX_ENOMEM, TX_EIO protocol or other errors. Broker close reasons ("404 NOT_FOUND -
 * no exchange 'x' in vhost '/'") are quoted in err->msg. The wrapper does not log.
 */

/* Connection settings; strings are copied by the _create functions. */
struct queue_config {
    const char *url;         /* amqp://user:pass@host:port/vhost ("%2f" is vhost "/"); amqps is
                                not supported */
    const char *name;        /* connection_name shown by the broker; NULL means "txpipe" */
    int heartbeat_s;         /* 0 means 30; negative disables heartbeats; at most 3600 */
    long connect_timeout_ms; /* TCP connect, handshake and each synchronous AMQP method;
                                0 means 5000; at most 600000 */
    long confirm_timeout_ms; /* each published message must be confirmed this long after it was
                                sent; 0 means 10000; at most 600000 */
    unsigned window;         /* publisher: most unconfirmed messages in flight; 0 means 256;
                                at most 65535 */
    size_t max_body;         /* consumer: largest delivery body accepted; 0 means 16 MiB.
                                Larger deliveries are dead-lettered (QUEUE_EVENT_TOO_BIG) */
};

/* ---- URL helpers (pure: no network) ---- */

/* The parts of an AMQP URL, percent-decoded. */
struct queue_url {
    char user[256];
    char password[256];
    char host[256];
    int port; /* 1..65535; 5672 when absent */
    char vhost[256];
};

/**
 * Parses and checks an AMQP URL ("amqp://user:pass@host:port/vhost", rabbitmq-c's syntax:
 * percent escapes, IPv6 in brackets, defaults guest/guest, localhost, 5672 and vhost "/").
 * Rejects amqps://, query strings, port 0, empty host, over-long parts. 0 or TX_EINVAL with the
 * reason in err (the password is never quoted). Thread-safe.
 */
int queue_url_parse(const char *url, struct queue_url *out, struct tx_err *err);

/**
 * Writes url without its password ("amqp://txadmin@127.0.0.1:5672/%2f") into out, for logs.
 * An unparsable url gives "<invalid amqp url>". Always NUL-terminates when outlen > 0 (truncating
 * if needed); returns out. Thread-safe.
 */
char *queue_url_redact(const char *url, char *out, size_t outlen);

/* ---- publisher ---- */

/* An optional message header with a string value (AMQP field type "S"). */
struct queue_header {
    const char *key;   /* 1..128 bytes */
    const char *value; /* UTF-8 */
};

/* Largest number of headers per message. */
#define QUEUE_HEADERS_MAX 16

/* One message to publish; nothing is copied beyond the call. */
struct queue_msg {
    const char *routing_key;    /* required, at most 255 bytes */
    const char *message_id;     /* NULL for none; at most 255 bytes (the event_id) */
    const char *correlation_id; /* NULL for none; at most 255 bytes (the upload_id) */
    const void *body;           /* may be NULL when len is 0 */
    size_t len;
    const struct queue_header *headers; /* NULL or nheaders entries */
    size_t nheaders;                    /* at most QUEUE_HEADERS_MAX */
};

struct queue_publisher;

/**
 * Creates a publisher after validating cfg (URL syntax, bounds). Contacts nothing: the
 * connection is opened on first use (queue_publish_confirmed or queue_publisher_ping). Returns
 * NULL with TX_EINVAL or TX_ENOMEM in err. Free with queue_publisher_destroy.
 */
struct queue_publisher *queue_publisher_create(const struct queue_config *cfg, struct tx_err *err);

/** Closes the connection (politely when it is open) and frees p. NULL is a no-op. */
void queue_publisher_destroy(struct queue_publisher *p);

/**
 * Publishes msgs[0..n) to exchange as persistent messages (delivery_mode 2, content_type
 * application/json, mandatory, timestamp now), on a channel in confirm mode, keeping at most
 * cfg->window unconfirmed, and returns only when the broker has confirmed every message sent.
 *
 * 0: every message was acked by the broker and none was returned. Otherwise the first failure
 * stops further sending and the call still waits for the confirms of what was sent, then returns
 * the status of the first failed message (lowest index), with "message <i> of <n>" and the reason
 * in err->msg: TX_EREJECT for basic.nack or basic.return (unroutable: RabbitMQ sends the return
 * and then a basic.ack for the same message, which still counts as a failure), TX_ENOTFOUND when
 * the exchange does not exist, TX_EUNAVAIL for a lost connection, a blocked broker (resource
 * alarm) or a reconnect that failed or is still backing off, TX_ETIMEDOUT when a message was not
 * confirmed within cfg->confirm_timeout_ms of being sent, TX_EINVAL for a bad argument (nothing
 * sent). Messages before that index are confirmed (see queue_publisher_last_confirmed); the
 * others may or may not have reached queues, so callers re-publish them (with the same
 * message_id, so consumers can recognise duplicates).
 *
 * Connection handling: before sending, pending input is read (heartbeats, a close by the
 * broker); a dead connection is replaced at once. After a lost connection or a timeout the
 * connection is dropped and reopened on the next use; failed reconnects back off (100 ms doubling
 * to 5 s) and calls during the back-off fail fast with TX_EUNAVAIL. Heartbeats are only
 * exchanged inside calls: an idle publisher's connection may be closed by the broker, which the
 * next call notices and repairs.
 *
 * Not thread-safe: one thread at a time per publisher (keep a pool for concurrent callers).
 */
int queue_publish_confirmed(struct queue_publisher *p, const char *exchange,
                            const struct queue_msg *msgs, size_t n, struct tx_err *err);

/**
 * Messages of the last queue_publish_confirmed call that are known to be confirmed: every
 * index below the returned value was acked and not returned. Equals n after a successful call.
 */
size_t queue_publisher_last_confirmed(const struct queue_publisher *p);

/**
 * Readiness probe: 0 when the connection is open (after reading pending input, which also
 * answers heartbeats) and the broker is not blocking publishers, else reconnects now, ignoring
 * the back-off; TX_EUNAVAIL (blocked or unreachable) and the other statuses as above. Not
 * thread-safe (same rule as publishing).
 */
int queue_publisher_ping(struct queue_publisher *p, struct tx_err *err);

/* ---- consumer ---- */

enum queue_disposition {
    QUEUE_ACK = 0,    /* done: basic.ack */
    QUEUE_RETRY = 1,  /* a dependency failed transiently (SMTP, Redis, PostgreSQL down): the
                         delivery is HELD in the process, not returned to the broker, and handed
                         to the handler again after a back-off (struct queue_retry); until a held
                         delivery succeeds no new delivery is handed over (the consumer pauses,
                         reading only heartbeats and what the broker already sent, at most the
                         prefetch). After queue_retry.hold_ms it is requeued as QUEUE_REQUEUE. */
    QUEUE_REJECT = 2, /* basic.nack without requeue: dead-lettered now (poison message) */
    QUEUE_DEFER = 3,  /* this delivery cannot be done yet (e.g. another worker holds it): held
                         and retried with back-off like QUEUE_RETRY, but the other deliveries go
                         on meanwhile (no pause) */
    QUEUE_REQUEUE = 4 /* basic.nack requeue now: redelivered later; counts toward the quorum
                         queue's x-delivery-limit, after which the broker dead-letters it */
};

/*
 * How held deliveries (QUEUE_RETRY, QUEUE_DEFER) are retried. Each held delivery waits first_ms,
 * then twice as long after each failed attempt, up to max_ms; a QUEUE_RETRY that then succeeds
 * makes every other held delivery due at once (the dependency is back). A delivery held longer
 * than hold_ms in all is requeued (basic.nack requeue, QUEUE_EVENT_REQUEUED): keep it well below
 * the broker's consumer_timeout (30 min by default), after which the broker closes the channel.
 */
struct queue_retry {
    long first_ms; /* 0 means 500; 1..600000 */
    long max_ms;   /* 0 means 30000; first_ms..600000 */
    long hold_ms;  /* 0 means 600000 (10 min); 1..1500000 (25 min) */
};

/* A message handed to a handler. Pointers are valid only during the handler call. */
struct queue_delivery {
    const char *routing_key;    /* never NULL */
    const char *message_id;     /* "" when absent */
    const char *correlation_id; /* "" when absent */
    const void *body;           /* len bytes followed by a NUL not counted in len */
    size_t len;
    uint64_t tag;            /* delivery tag on the current channel */
    unsigned delivery_count; /* x-delivery-count of quorum queues: 0 on the first delivery,
                                incremented by each requeue */
    int redelivered;         /* the broker's redelivered flag */
};

/** Handles one delivery; must return within about twice the heartbeat interval. */
typedef enum queue_disposition (*queue_handler_fn)(void *ctx, const struct queue_delivery *d);

/**
 * Handles n deliveries (1..batch_max, in delivery order) and writes one disposition per
 * delivery into out[0..n). Same time limit as queue_handler_fn.
 */
typedef void (*queue_batch_fn)(void *ctx, const struct queue_delivery *d, size_t n,
                               enum queue_disposition *out);

/* What the consumer loop reports to its caller, which decides what to log. */
enum queue_event_type {
    QUEUE_EVENT_CONNECTED = 0,      /* subscribed; message_count is the queue depth */
    QUEUE_EVENT_CONNECT_FAILED = 1, /* err says why; retry_in_ms until the next attempt */
    QUEUE_EVENT_DISCONNECTED = 2,   /* connection or channel lost (err); deliveries in hand
                                       are dropped and will be redelivered by the broker */
    QUEUE_EVENT_TOO_BIG = 3,        /* a delivery above max_body was dead-lettered (err) */
    QUEUE_EVENT_STOPPED = 4,        /* graceful stop finished; err set if the close failed */
    QUEUE_EVENT_HELD = 5,           /* a delivery is held for another attempt (message_id, attempt:
                                       failed attempts so far, retry_in_ms, message_count: deliveries
                                       held; paused: new deliveries wait) */
    QUEUE_EVENT_RESUMED = 6,        /* a held delivery succeeded and none is held any more
                                       (message_id, attempt, held_ms) */
    QUEUE_EVENT_REQUEUED = 7, /* a delivery held past hold_ms was requeued (message_id, held_ms,
                                 attempt) */
};

struct queue_event {
    enum queue_event_type type;
    const struct tx_err *err; /* NULL when there is nothing to explain */
    long retry_in_ms;         /* QUEUE_EVENT_CONNECT_FAILED */
    uint32_t message_count;   /* QUEUE_EVENT_CONNECTED */
    unsigned attempt;         /* consecutive failed attempts so far (CONNECT_FAILED, HELD,
                                 RESUMED, REQUEUED) */
    const char *message_id;   /* HELD, RESUMED, REQUEUED: the delivery's ("" when absent) */
    long held_ms;             /* HELD, RESUMED, REQUEUED: how long it has been held */
    int paused;               /* HELD: 1 while new deliveries wait for a held one */
};

/** Receives loop events, in the thread running the loop. */
typedef void (*queue_event_fn)(void *ctx, const struct queue_event *ev);

struct queue_consumer;

/**
 * Creates a consumer of queue with the given prefetch (basic.qos, 1..65535) after validating
 * its arguments. Contacts nothing; the loop connects. Returns NULL with TX_EINVAL or TX_ENOMEM in
 * err. Free with queue_consumer_destroy.
 */
struct queue_consumer *queue_consumer_create(const struct queue_config *cfg, const char *queue,
                                             unsigned prefetch, struct tx_err *err);

/** Closes the connection if one is open and frees c. NULL is a no-op. Not during a run. */
void queue_consumer_destroy(struct queue_consumer *c);

/** Sets (or clears, with NULL) the event callback. Not during a run. */
void queue_consumer_set_event_fn(struct queue_consumer *c, queue_event_fn fn, void *ctx);

/**
 * Runs the consumer loop until *stop becomes non-zero (e.g. set by a SIGTERM handler). Connects
 * with heartbeats, passive-declares the queue (it must exist), sets basic.qos prefetch and
 * consumes with manual acks, calling fn for each delivery in order and settling it as fn says.
 * Acks are grouped (basic.ack multiple; each ack is a Raft command in a quorum queue) and sent
 * when half the prefetch is pending, or when no delivery arrived within 10 ms of the oldest
 * pending ack. On a lost connection or channel, deliveries in hand and pending acks are
 * dropped (the broker redelivers those messages; nothing is acked twice) and the loop reconnects
 * with back-off (100 ms doubling to 5 s, jittered), reporting through the event callback; failed
 * connects (broker down, queue missing, access refused) are retried the same way.
 *
 * Transient failures (QUEUE_RETRY, QUEUE_DEFER) are held in the process, not returned to the
 * broker (RabbitMQ counts every return toward x-delivery-limit): the loop keeps reading (which
 * answers heartbeats) and hands a held delivery over again when its back-off is over; while a
 * QUEUE_RETRY is held no new delivery is handed over, so at most the prefetch is in hand. A
 * delivery with a lower tag held while later ones are acked makes those acks single (a basic.ack
 * multiple would cover it). See struct queue_retry and QUEUE_EVENT_HELD/RESUMED/REQUEUED.
 *
 * Graceful stop: acks are withheld while the deliveries the broker already has in flight are
 * taken in and handled (until the prefetch is used up, or nothing arrived for 100 ms): a quorum
 * queue returns in-flight messages of a cancelled consumer with x-delivery-count incremented,
 * which would bring them closer to the delivery limit unhandled. Then basic.cancel
 * (synchronous), every delivery received is handled and settled, the acks are flushed and
 * confirmed by a synchronous round trip (queue.declare passive), and the connection is closed.
 * So a stop can hand up to prefetch more deliveries to fn after *stop was set. Held deliveries
 * are not retried after a stop, and while a QUEUE_RETRY is held nothing new is handed over: they
 * are left unacknowledged and the close returns them to the broker. *stop is checked
 * between deliveries and at least every 200 ms; QUEUE_EVENT_STOPPED reports the end.
 *
 * Returns 0 after a stop, TX_EINVAL for bad arguments. Not thread-safe: one run at a time per
 * consumer; handlers run in the calling thread.
 */
int queue_consumer_run(struct queue_consumer *c, queue_handler_fn fn, void *ctx,
                       const volatile sig_atomic_t *stop, struct tx_err *err);

/**
 * Same loop, but deliveries are handed over in batches (for txpersist): a batch is passed to fn
 * when it holds batch_max deliveries (1..65535, capped to the prefetch) or batch_wait_ms
 * (0..600000) after its first delivery arrived, whichever comes first. Negative dispositions of
 * a batch are settled one by one first, then its acks with one basic.ack multiple.
 */
int queue_consumer_run_batch(struct queue_consumer *c, queue_batch_fn fn, void *ctx,
                             size_t batch_max, long batch_wait_ms,
                             const volatile sig_atomic_t *stop, struct tx_err *err);

/**
 * Pipelined batch mode (for txpersist): the work on one batch overlaps the reading, decoding and
 * submitting of the next. submit hands over a batch (it may prepare it, but must not yet decide
 * it); collect waits for the OLDEST submitted batch that is not collected yet and writes its n
 * dispositions into out[0..n). The loop keeps at most one batch in flight: it submits batch B,
 * then collects the batch before it (A), settles A's deliveries, and goes on reading while B is
 * worked on. The deliveries of a batch stay valid until it is collected.
 *
 * A batch in flight is collected as soon as nothing more can arrive (the prefetch window is full
 * of unsettled deliveries), after batch_wait_ms without a new batch, before held deliveries are
 * retried, and before a stop or after a lost connection (whose dispositions are then dropped:
 * the broker redelivers). While draining for a stop each batch is collected right after its
 * submit. Everything else is as queue_consumer_run_batch.
 */
typedef void (*queue_submit_fn)(void *ctx, const struct queue_delivery *d, size_t n);
typedef void (*queue_collect_fn)(void *ctx, enum queue_disposition *out);

int queue_consumer_run_pipelined(struct queue_consumer *c, queue_submit_fn submit,
                                 queue_collect_fn collect, void *ctx, size_t batch_max,
                                 long batch_wait_ms, const volatile sig_atomic_t *stop,
                                 struct tx_err *err);

/** 1 while the loop is connected and subscribed, else 0. Thread-safe (for readiness probes). */
int queue_consumer_is_connected(const struct queue_consumer *c);

/**
 * Sets how held deliveries are retried (see struct queue_retry); NULL restores the defaults.
 * 0 or TX_EINVAL (out of bounds, nothing changed). Not during a run.
 */
int queue_consumer_set_retry(struct queue_consumer *c, const struct queue_retry *r,
                             struct tx_err *err);

/**
 * Deliveries held for another attempt right now (QUEUE_RETRY and QUEUE_DEFER), and in *paused
 * (when not NULL) 1 while new deliveries wait for a held QUEUE_RETRY one. Thread-safe.
 */
unsigned queue_consumer_held(const struct queue_consumer *c, int *paused);

/* ---- one-shot helpers ---- */

/**
 * Passive-declares queue on a short-lived connection and stores its exact message count (ready
 * messages, from declare-ok) in *count. TX_ENOTFOUND when the queue does not exist; other
 * statuses as above. For tests, benchmarks and operators' tools. Thread-safe.
 */
int queue_declare_passive_count(const struct queue_config *cfg, const char *queue, uint32_t *count,
                                struct tx_err *err);

#endif
