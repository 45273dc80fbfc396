#ifndef STORAGE_S3_H
#define STORAGE_S3_H

#include <stddef.h>
#include <stdint.h>

#include "common/tx_status.h"

/*
 * Object-store client (S3 API, path-style URIs) for the raw uploads.
 *
 * Two transports behind one API, chosen by s3_config.signature:
 *   2: libs3 (Signature V2). Every call runs its own libs3 request context under the client's
 *      deadline. Plain http:// only: libs3 2.0 does not verify TLS certificates. It reads user
 *      metadata only from lower-case "x-amz-meta-" response headers (as s3rver and current
 *      MinIO send them).
 *   4: libcurl with CURLOPT_AWS_SIGV4 (Signature V4), http:// or https:// (peer verified). The
 *      body is hashed (SHA-256) for x-amz-content-sha256; bodies above 1 MiB go with
 *      "Expect: 100-continue", unsigned.
 *
 * Threads: a client is created once and shared. Every call borrows an idle transport (a libs3
 * request context or a curl easy handle) from the client's small pool, uses it alone, and
 * returns it afterwards, so concurrent calls never share one and idle connections are reused.
 * A transport whose request timed out or broke is destroyed, never reused.
 *
 * Errors (negative enum tx_status, detail in err->msg): TX_EINVAL bad argument or key,
 * TX_EUNAVAIL connection refused/reset, 5xx, throttling (retryable), TX_ETIMEDOUT deadline passed
 * (the request was abandoned), TX_ENOTFOUND no such key or bucket, TX_EREJECT access denied or
 * bad signature, TX_ETOOBIG object above the caller's limit, TX_ENOMEM, TX_EIO anything else.
 * The wrapper does not log.
 */

/* Longest accepted object key and idempotency key (bytes). */
#define S3_KEY_MAX             1024
#define S3_IDEMPOTENCY_KEY_MAX 200

/* Client settings; the strings are copied by s3_client_create. */
struct s3_config {
    const char *endpoint;   /* "http://127.0.0.1:9000" (scheme, host, optional port, no path) */
    const char *access_key; /* required */
    const char *secret_key; /* required */
    const char *bucket;     /* required, 3-63 of [a-z0-9.-], starting and ending alphanumeric */
    const char *region;     /* V4 signing region; NULL or "" means "us-east-1" */
    int signature;          /* 2 or 4; 0 means 2 */
    long timeout_ms;        /* deadline of each call, 1..600000; 0 means 10000 */
};

/* Metadata stored with an object (x-amz-meta-sha256, -records, -idempotency-key). */
struct s3_meta {
    const char *sha256_hex;      /* required: 64 hex digits (stored lowercase) */
    long records;                /* required: >= 0 */
    const char *idempotency_key; /* NULL for none; else 1..200 of printable ASCII, no spaces */
    const char *content_type;    /* NULL means "application/octet-stream" */
};

/* What s3_object_head reports. Absent metadata reads as "" / -1. */
struct s3_meta_out {
    uint64_t size;
    char sha256_hex[65];
    long records;
    char idempotency_key[S3_IDEMPOTENCY_KEY_MAX + 1];
};

struct s3_client;

/**
 * Creates a client after validating cfg (endpoint syntax, bucket name, signature 2 with http
 * only). Contacts nothing; use s3_bucket_check for readiness. Initialises libs3/libcurl once per
 * process (thread-safe; never de-initialised). Returns NULL with TX_EINVAL or TX_ENOMEM in err.
 * Free with s3_client_destroy. Thread-safe.
 */
struct s3_client *s3_client_create(const struct s3_config *cfg, struct tx_err *err);

/**
 * Destroys the client and its idle transports. NULL is a no-op. No call may be in progress on
 * it, in any thread.
 */
void s3_client_destroy(struct s3_client *c);

/**
 * Checks that key is an acceptable object key: 1..S3_KEY_MAX bytes of [A-Za-z0-9/._-], not
 * starting with '/', no empty, "." or ".." segment. 0 or TX_EINVAL (reason in err). Thread-safe.
 */
int s3_key_check(const char *key, struct tx_err *err);

/**
 * Formats the raw-upload key "raw/YYYY/MM/DD/<upload_id>.json" (UTC date of unix_ms) into out.
 * upload_id must be 1..64 of [A-Za-z0-9_-]. 0, or TX_EINVAL (bad id or date), TX_ETOOBIG (out too
 * small; 128 bytes always suffice). Thread-safe.
 */
int s3_raw_key_format(char *out, size_t outlen, int64_t unix_ms, const char *upload_id,
                      struct tx_err *err);

/**
 * Stores len bytes of data (binary safe) under key with meta. An existing object at key is
 * replaced, so callers use unique keys (the upload id); a retry of the same upload re-sends the
 * same bytes. 0 on success (the store acknowledged it), else a tx_status as described above.
 * Thread-safe.
 */
int s3_object_put(struct s3_client *c, const char *key, const void *data, size_t len,
                  const struct s3_meta *meta, struct tx_err *err);

/**
 * Fetches the size and metadata of key into *out (may be NULL for a plain existence check).
 * TX_ENOTFOUND when there is no such object. Thread-safe.
 */
int s3_object_head(struct s3_client *c, const char *key, struct s3_meta_out *out,
                   struct tx_err *err);

/**
 * Reads the whole object at key. On success *data is a malloc'd copy of its *len bytes, followed
 * by a NUL not counted in *len (so never NULL); the caller frees it with free(). TX_ETOOBIG when
 * the object is larger than max bytes (nothing beyond max is buffered); TX_ENOTFOUND when absent.
 * On failure *data is NULL and *len 0. Thread-safe.
 */
int s3_object_get(struct s3_client *c, const char *key, size_t max, char **data, size_t *len,
                  struct tx_err *err);

/**
 * Readiness probe: the store answers, accepts the credentials and has the bucket. It GETs the
 * never-created key "raw/.readyz-probe"; "no such key" means ready. So the credentials need
 * s3:GetObject on raw/ and, on AWS and MinIO, s3:ListBucket (without it a missing key is
 * answered 403, reported as TX_EREJECT). TX_ENOTFOUND names a missing bucket; other errors as
 * above. Thread-safe.
 */
int s3_bucket_check(struct s3_client *c, struct tx_err *err);

#endif
