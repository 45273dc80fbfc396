#ifndef TX_HEALTH_H
#define TX_HEALTH_H

#include "common/tx_buf.h"
#include "common/tx_metrics.h"
#include "common/tx_status.h"

/*
 * Health and metrics over HTTP for the consumer daemons, plus the pieces the gateway reuses in its
 * own server (tx_readiness) and the client every binary's `healthcheck` subcommand runs
 * (tx_health_probe).
 *
 *   GET /healthz  200 {"status":"ok"}                                   (the process answers)
 *   GET /readyz   200 {"status":"ready","checks":{...},"checked_at":"..."}
 *                 503 {"status":"not ready","checks":{...},"checked_at":"..."}
 *   GET /metrics  200 tx_metrics_render, Content-Type TX_METRICS_CONTENT_TYPE
 *   HEAD on those: the same headers without a body. Any other method: 405 with "Allow: GET, HEAD".
 *   Any other path: 404. Errors are application/problem+json (RFC 9457) with a type under
 *   https://txpipe.dev/problems/.
 */

/**
 * Readiness callback: appends to detail one JSON object naming each dependency and its state,
 * e.g. {"rabbitmq":"up","redis":"down: connection refused"}, and returns 0 when every dependency
 * is usable, non-zero otherwise. May block on network I/O; tx_readiness never runs two calls at
 * once (of the same tx_readiness), so it need not be reentrant, but it runs on whichever thread
 * asked (an HTTP worker) and must be safe to call from it.
 */
typedef int (*tx_ready_fn)(void *ctx, struct tx_buf *detail);

struct tx_readiness;
struct tx_health;

/* The detail buffer passed to a tx_ready_fn refuses appends past this many bytes. */
#define TX_READINESS_DETAIL_MAX 16384

/**
 * Creates a readiness cache over fn(ctx): fn is called at most once per ttl_ms (1000 for the
 * health server), never twice at once. fn NULL means always ready with no checks. ctx is
 * borrowed; it must outlive the cache. Returns NULL when out of memory (or ttl_ms < 0).
 * Free with tx_readiness_destroy.
 */
struct tx_readiness *tx_readiness_create(tx_ready_fn fn, void *ctx, long ttl_ms);

/** Frees the cache. NULL is a no-op. No call of tx_readiness_check may be running. */
void tx_readiness_destroy(struct tx_readiness *r);

/**
 * Appends the /readyz body, {"status":"ready"|"not ready","checks":{...},"checked_at":"<UTC>"},
 * to body and returns 0 when ready, TX_EUNAVAIL when not (answer 503), or TX_ETOOBIG/TX_ENOMEM
 * when body cannot take it (answer 500).
 *
 * The answer is the cached one while it is younger than ttl_ms. Otherwise the calling thread
 * runs fn (outside the lock), unless another thread already is: then the caller gets the previous
 * answer at once, or, before any answer exists, "not ready" with the check "readiness": "first
 * check in progress", so a slow dependency never ties up more than one thread. A detail that is
 * not one JSON object (e.g. one cut short at TX_READINESS_DETAIL_MAX) makes the answer "not
 * ready" with the reason under "readiness", whatever fn returned. Thread-safe.
 */
int tx_readiness_check(struct tx_readiness *r, struct tx_buf *body);

/**
 * Starts the HTTP server on listen, "IPv4:port" or "[IPv6]:port" (port 0 picks a free port; see
 * tx_health_port), with 4 worker threads, keep-alive off, a 5 s request timeout and no TLS.
 * m (may be NULL: /metrics then answers 404) and ctx are borrowed and must outlive the server;
 * ready may be NULL (always ready). Readiness answers are cached for one second as described at
 * tx_readiness_check. Returns NULL on failure with err set: TX_EINVAL for a malformed listen
 * address, TX_EUNAVAIL "<listen> is already in use" when the port is taken, TX_EIO otherwise.
 * Call from the main thread at start-up: CivetWeb's library initialisation is not thread-safe.
 * Free with tx_health_stop.
 */
struct tx_health *tx_health_start(const char *listen, struct tx_metrics *m, tx_ready_fn ready,
                                  void *ctx, struct tx_err *err);

/** The TCP port the server listens on (useful after listening on port 0). Thread-safe. */
int tx_health_port(const struct tx_health *h);

/**
 * Stops the server: waits for requests in progress (including a running readiness callback),
 * joins every thread it started and frees it. NULL is a no-op. Call from the thread that
 * started it, not concurrently with another tx_health_start/stop.
 */
void tx_health_stop(struct tx_health *h);

/**
 * Client side of the `healthcheck` subcommand: GET http://<hostport><path> over a plain socket
 * (HTTP/1.0, Connection: close) within timeout_ms in total (connect, send and receive). hostport
 * is "host:port" or "[IPv6]:port" (host a name or a literal; resolving a name is not bounded by
 * timeout_ms, so health checks should use a literal); path starts with '/'.
 * Returns 0 for a 2xx answer. Errors, detail in err: TX_EINVAL (bad arguments),
 * TX_EUNAVAIL (name not resolved, connection refused, or a non-2xx answer: err->msg has the
 * status and the start of the body), TX_ETIMEDOUT, TX_EIO (malformed answer, other socket errors).
 * Thread-safe; SIGPIPE is never raised.
 */
int tx_health_probe(const char *hostport, const char *path, long timeout_ms, struct tx_err *err);

#endif
