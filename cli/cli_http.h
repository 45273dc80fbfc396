#ifndef CLI_HTTP_H
#define CLI_HTTP_H

#include "common/tx_buf.h"
#include "common/tx_status.h"

#include <stdbool.h>
#include <stddef.h>

/* txupload's HTTP client: a libcurl easy handle per thread, reused for keep-alive. */

/* Largest answer body kept (a 422 lists up to 1,000 errors). */
#define CLI_HTTP_BODY_MAX (16u << 20)

struct cli_http;

/** Called while the body is sent: bytes of the body sent so far. Returns nothing. */
typedef void (*cli_http_progress_fn)(void *ctx, long long sent);

struct cli_request {
    const char *method;         /* "GET" or "POST" */
    const char *url;            /* absolute */
    const char *const *headers; /* "Name: value" lines, NULL-terminated, or NULL */
    const void *body;           /* POST body (may be NULL with len 0) */
    size_t len;
    long long timeout_ms; /* whole request, connect included */
    cli_http_progress_fn progress;
    void *progress_ctx;
};

struct cli_response {
    int status;              /* HTTP status of the final answer */
    struct tx_buf body;      /* the answer's body (NUL-terminated when not empty) */
    long long retry_after_s; /* Retry-After in seconds, -1 when absent or malformed */
    bool replayed;           /* "Idempotent-Replayed: true" was present */
    char content_type[128];  /* "" when absent */
};

/** Global libcurl setup; call once in main before any thread exists. 0 or TX_EIO. */
int cli_http_global_init(void);

/** Undoes cli_http_global_init; call once at exit after every handle is destroyed. */
void cli_http_global_cleanup(void);

/** A new client (one per thread; not thread-safe itself). NULL when out of memory. */
struct cli_http *cli_http_create(void);

/** NULL is a no-op. */
void cli_http_destroy(struct cli_http *h);

/** Prepares resp for cli_http_do (empty body, no status). */
void cli_response_init(struct cli_response *resp);

/** Frees the body of resp. */
void cli_response_cleanup(struct cli_response *resp);

/**
 * Sends one request and reads the whole answer into resp (reset first). Returns 0 when an HTTP
 * answer arrived, whatever its status; TX_EUNAVAIL when the server could not be reached or the
 * connection failed, TX_ETIMEDOUT when timeout_ms passed, TX_ETOOBIG when the answer is over
 * CLI_HTTP_BODY_MAX, TX_EINVAL for a malformed URL, TX_EIO otherwise; err says why.
 */
int cli_http_do(struct cli_http *h, const struct cli_request *req, struct cli_response *resp,
                struct tx_err *err);

#endif
