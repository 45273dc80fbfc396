#include "storage/s3.h"

#include "common/tx_buf.h"
#include "common/tx_time.h"

#include <curl/curl.h>
#include <errno.h>
#include <libs3.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <time.h>

/* Idle transports kept per client; more concurrent calls still work, the extras are freed. */
#define POOL_MAX 64
/* Bytes of an error response body kept to find its <Code> and <Message>. */
#define ERR_BODY_MAX 8192
/* Key GET by s3_bucket_check; never created. Under raw/ so that a policy scoped to the raw
 * uploads covers it. */
#define PROBE_KEY          "raw/.readyz-probe"
#define DEFAULT_TIMEOUT_MS 10000L
#define MAX_TIMEOUT_MS     600000L
#define USER_AGENT         "txpipe"
/* SHA-256 of the empty string, the payload hash of V4 requests without a body. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

enum method {
    M_PUT,
    M_GET,
    M_HEAD,
};

struct s3_client {
    int signature; /* 2 or 4 */
    bool https;
    long timeout_ms;
    char *host;     /* "127.0.0.1:9000", what libs3 connects to */
    char *base_url; /* "http://127.0.0.1:9000/<bucket>/", the V4 object URL prefix */
    char *access_key;
    char *secret_key;
    char *bucket;
    char *sigv4; /* "aws:amz:<region>:s3" */
    S3BucketContext bctx;
    pthread_mutex_t mu; /* guards idle/nidle */
    void *idle[POOL_MAX];
    int nidle;
};

/* One call's I/O state, shared by both transports. */
struct call {
    enum method method;
    const char *put_data;
    size_t put_len;
    size_t put_off;
    struct tx_buf *body;      /* GET: the object; NULL otherwise */
    struct s3_meta_out *meta; /* HEAD: filled from the response headers; may be NULL */
    bool too_big;             /* body would exceed its limit */
    bool nomem;
    bool no_bucket; /* the store said the bucket does not exist */
    /* libs3 */
    bool done;
    S3Status s3status;
    char detail[160]; /* S3's error message, if any */
    /* libcurl */
    long http_code;
    struct tx_buf errbody; /* error response body, truncated */
};

/* ---- process-wide library initialisation (the documented exception to "no globals") ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static S3Status init_status = S3StatusInternalError;
/*
 * libs3 2.0 formats the request date with gmtime(), whose result lives in one static buffer, so
 * two threads composing requests at once can corrupt each other's Date header (ThreadSanitizer
 * reports it). Composing a request is quick and does no I/O (with a request context the
 * transfer happens later, in v2_drive), so submissions take this process-wide lock; transfers
 * still run in parallel.
 */
static pthread_mutex_t submit_mu = PTHREAD_MUTEX_INITIALIZER;

static void init_libs(void)
{
    /* S3_initialize also runs curl_global_init(CURL_GLOBAL_ALL), which the V4 path relies on. */
    init_status = S3_initialize(USER_AGENT, S3_INIT_ALL, NULL);
}

/* ---- validation ---- */

static bool is_alnum(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static bool is_hex(int ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

int s3_key_check(const char *key, struct tx_err *err)
{
    size_t len;
    size_t seg_start = 0;

    if (key == NULL || key[0] == '\0')
        return tx_err_set(err, TX_EINVAL, "object key is empty");
    len = strlen(key);
    if (len > S3_KEY_MAX)
        return tx_err_set(err, TX_EINVAL, "object key is %zu bytes, the limit is %d", len,
                          S3_KEY_MAX);
    for (size_t i = 0; i <= len; i++) {
        int ch = (unsigned char) key[i];
        size_t seg_len;

        if (ch != '/' && ch != '\0') {
            if (!is_alnum(ch) && ch != '.' && ch != '_' && ch != '-')
                return tx_err_set(err, TX_EINVAL,
                                  "object key has byte 0x%02x at offset %zu; allowed are "
                                  "[A-Za-z0-9/._-]",
                                  (unsigned) ch, i);
            continue;
        }
        seg_len = i - seg_start;
        if (seg_len == 0)
            return tx_err_set(err, TX_EINVAL, "object key has an empty segment at offset %zu", i);
        if ((seg_len == 1 && key[seg_start] == '.') ||
            (seg_len == 2 && key[seg_start] == '.' && key[seg_start + 1] == '.'))
            return tx_err_set(err, TX_EINVAL, "object key has a '.' or '..' segment");
        seg_start = i + 1;
    }
    return 0;
}

static int check_bucket(const char *b, struct tx_err *err)
{
    size_t len = b != NULL ? strlen(b) : 0;

    if (len < 3 || len > 63)
        return tx_err_set(err, TX_EINVAL, "bucket name must be 3-63 characters");
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char) b[i];

        if (!(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9') && ch != '.' && ch != '-')
            return tx_err_set(err, TX_EINVAL, "bucket name may hold only [a-z0-9.-]");
    }
    if (!is_alnum(b[0]) || !is_alnum(b[len - 1]))
        return tx_err_set(err, TX_EINVAL, "bucket name must start and end with [a-z0-9]");
    return 0;
}

/* Splits "http[s]://host[:port][/]" into https and a malloc'd "host[:port]". */
static int parse_endpoint(const char *ep, bool *https, char **host, struct tx_err *err)
{
    const char *p;
    size_t len;
    size_t i = 0;

    if (ep == NULL)
        return tx_err_set(err, TX_EINVAL, "S3 endpoint is not set");
    if (strncmp(ep, "http://", 7) == 0) {
        *https = false;
        p = ep + 7;
    }
    else if (strncmp(ep, "https://", 8) == 0) {
        *https = true;
        p = ep + 8;
    }
    else {
        return tx_err_set(err, TX_EINVAL, "S3 endpoint must start with http:// or https://");
    }
    len = strlen(p);
    if (len > 0 && p[len - 1] == '/')
        len--;
    if (len == 0 || len > S3_MAX_HOSTNAME_SIZE - 1)
        return tx_err_set(err, TX_EINVAL, "S3 endpoint has no host or a too long one");
    if (p[0] == '[') {
        while (i < len && p[i] != ']')
            i++;
        if (i == len)
            return tx_err_set(err, TX_EINVAL, "S3 endpoint has an unterminated '['");
        for (size_t j = 1; j < i; j++)
            if (!is_hex((unsigned char) p[j]) && p[j] != ':' && p[j] != '.')
                return tx_err_set(err, TX_EINVAL, "S3 endpoint has a bad IPv6 address");
        i++;
    }
    else {
        while (i < len && (is_alnum((unsigned char) p[i]) || p[i] == '.' || p[i] == '-'))
            i++;
        if (i == 0)
            return tx_err_set(err, TX_EINVAL, "S3 endpoint has no host");
    }
    if (i < len) {
        unsigned long port = 0;
        size_t digits = 0;

        if (p[i] != ':')
            return tx_err_set(err, TX_EINVAL,
                              "S3 endpoint must be scheme://host[:port] without path, user or "
                              "query");
        for (i++; i < len && p[i] >= '0' && p[i] <= '9' && digits < 6; i++, digits++)
            port = port * 10 + (unsigned long) (p[i] - '0');
        if (i != len || digits == 0 || port == 0 || port > 65535)
            return tx_err_set(err, TX_EINVAL, "S3 endpoint has a bad port");
    }
    *host = strndup(p, len);
    if (*host == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    return 0;
}

/* Printable ASCII without space or DEL: safe in an HTTP header and in both signatures. */
static bool header_token_ok(const char *s, size_t max)
{
    size_t len = 0;

    for (; s[len] != '\0'; len++)
        if ((unsigned char) s[len] <= 0x20 || (unsigned char) s[len] >= 0x7f)
            return false;
    return len > 0 && len <= max;
}

static int check_meta(const struct s3_meta *meta, struct tx_err *err)
{
    if (meta == NULL)
        return tx_err_set(err, TX_EINVAL, "object metadata is required");
    if (meta->sha256_hex == NULL || strlen(meta->sha256_hex) != 64)
        return tx_err_set(err, TX_EINVAL, "sha256 metadata must be 64 hex digits");
    for (int i = 0; i < 64; i++)
        if (!is_hex((unsigned char) meta->sha256_hex[i]))
            return tx_err_set(err, TX_EINVAL, "sha256 metadata must be 64 hex digits");
    if (meta->records < 0)
        return tx_err_set(err, TX_EINVAL, "records metadata must be >= 0");
    if (meta->idempotency_key != NULL &&
        !header_token_ok(meta->idempotency_key, S3_IDEMPOTENCY_KEY_MAX))
        return tx_err_set(err, TX_EINVAL,
                          "idempotency key must be 1-%d printable ASCII characters without "
                          "spaces",
                          S3_IDEMPOTENCY_KEY_MAX);
    if (meta->content_type != NULL) {
        for (const char *p = meta->content_type; *p != '\0'; p++)
            if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                return tx_err_set(err, TX_EINVAL, "content type must be printable ASCII");
        if (meta->content_type[0] == '\0' || strlen(meta->content_type) > 200)
            return tx_err_set(err, TX_EINVAL, "content type must be 1-200 characters");
    }
    return 0;
}

int s3_raw_key_format(char *out, size_t outlen, int64_t unix_ms, const char *upload_id,
                      struct tx_err *err)
{
    struct tm tm;
    time_t secs;
    size_t idlen = upload_id != NULL ? strlen(upload_id) : 0;
    int n;

    if (out != NULL && outlen > 0)
        out[0] = '\0';
    if (idlen == 0 || idlen > 64)
        return tx_err_set(err, TX_EINVAL, "upload id must be 1-64 characters");
    for (size_t i = 0; i < idlen; i++)
        if (!is_alnum((unsigned char) upload_id[i]) && upload_id[i] != '_' && upload_id[i] != '-')
            return tx_err_set(err, TX_EINVAL, "upload id may hold only [A-Za-z0-9_-]");
    if (unix_ms < 0 || unix_ms > 253402300799999LL)
        return tx_err_set(err, TX_EINVAL, "time outside 1970-9999");
    secs = (time_t) (unix_ms / 1000);
    if (gmtime_r(&secs, &tm) == NULL)
        return tx_err_set(err, TX_EINVAL, "time outside 1970-9999");
    if (out == NULL)
        return tx_err_set(err, TX_ETOOBIG, "no output buffer");
    n = snprintf(out, outlen, "raw/%04d/%02d/%02d/%s.json", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, upload_id);
    if (n < 0 || (size_t) n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return tx_err_set(err, TX_ETOOBIG, "key buffer of %zu bytes is too small", outlen);
    }
    return 0;
}

/* ---- transport pool ---- */

static void transport_free(const struct s3_client *c, void *t)
{
    if (t == NULL)
        return;
    if (c->signature == 4)
        curl_easy_cleanup(t);
    else
        S3_destroy_request_context(t);
}

/* Takes an idle transport or makes a new one. NULL with err set on failure. */
static void *transport_get(struct s3_client *c, struct tx_err *err)
{
    void *t = NULL;

    pthread_mutex_lock(&c->mu);
    if (c->nidle > 0)
        t = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->mu);
    if (t != NULL)
        return t;
    if (c->signature == 4) {
        t = curl_easy_init();
    }
    else {
        S3RequestContext *ctx = NULL;

        if (S3_create_request_context(&ctx) == S3StatusOK)
            t = ctx;
    }
    if (t == NULL)
        tx_err_set(err, TX_ENOMEM, "cannot create an S3 request context");
    return t;
}

/* Returns t to the pool, or frees it when the pool is full or reuse is false. */
static void transport_put(struct s3_client *c, void *t, bool reuse)
{
    if (t == NULL)
        return;
    if (reuse) {
        pthread_mutex_lock(&c->mu);
        if (c->nidle < POOL_MAX) {
            c->idle[c->nidle++] = t;
            t = NULL;
        }
        pthread_mutex_unlock(&c->mu);
    }
    transport_free(c, t);
}

/* ---- response metadata ---- */

static void meta_reset(struct s3_meta_out *m)
{
    if (m == NULL)
        return;
    m->size = 0;
    m->sha256_hex[0] = '\0';
    m->records = -1;
    m->idempotency_key[0] = '\0';
}

/* Records one x-amz-meta-<name> value (name without the prefix, any case). */
static void meta_set(struct s3_meta_out *m, const char *name, size_t nlen, const char *val,
                     size_t vlen)
{
    if (m == NULL)
        return;
    if (nlen == 6 && strncasecmp(name, "sha256", 6) == 0) {
        if (vlen == 64) {
            for (size_t i = 0; i < 64; i++)
                m->sha256_hex[i] = (char) (val[i] >= 'A' && val[i] <= 'F' ? val[i] + 32 : val[i]);
            m->sha256_hex[64] = '\0';
        }
    }
    else if (nlen == 7 && strncasecmp(name, "records", 7) == 0) {
        long v = 0;
        size_t i = 0;

        for (; i < vlen && i < 18 && val[i] >= '0' && val[i] <= '9'; i++)
            v = v * 10 + (val[i] - '0');
        if (i == vlen && vlen > 0)
            m->records = v;
    }
    else if (nlen == 15 && strncasecmp(name, "idempotency-key", 15) == 0) {
        if (vlen <= S3_IDEMPOTENCY_KEY_MAX) {
            memcpy(m->idempotency_key, val, vlen);
            m->idempotency_key[vlen] = '\0';
        }
    }
}

/* ---- Signature V2 through libs3 ---- */

/* The one place S3Status becomes a tx_status. */
static int s3status_to_tx(S3Status st)
{
    switch (st) {
    case S3StatusOK:
        return 0;
    case S3StatusOutOfMemory:
        return TX_ENOMEM;
    case S3StatusInterrupted:
        return TX_ETIMEDOUT;
    case S3StatusNameLookupError:
    case S3StatusFailedToConnect:
    case S3StatusConnectionFailed:
    case S3StatusErrorInternalError:
    case S3StatusErrorSlowDown:
    case S3StatusErrorRequestTimeout:
    case S3StatusErrorOperationAborted:
    case S3StatusErrorTokenRefreshRequired:
    case S3StatusHttpErrorUnknown: /* an unexpected status without S3 error XML: 502, 504, 429 */
    case S3StatusErrorUnknown:     /* an error code libs3 2.0 does not know (MinIO's 503s) */
        return TX_EUNAVAIL;
    case S3StatusErrorNoSuchKey:
    case S3StatusErrorNoSuchBucket:
    case S3StatusHttpErrorNotFound:
        return TX_ENOTFOUND;
    case S3StatusErrorAccessDenied:
    case S3StatusErrorAccountProblem:
    case S3StatusErrorCredentialsNotSupported:
    case S3StatusErrorExpiredToken:
    case S3StatusErrorInvalidAccessKeyId:
    case S3StatusErrorInvalidSecurity:
    case S3StatusErrorInvalidToken:
    case S3StatusErrorMissingSecurityHeader:
    case S3StatusErrorNotSignedUp:
    case S3StatusErrorRequestTimeTooSkewed:
    case S3StatusErrorSignatureDoesNotMatch:
    case S3StatusHttpErrorForbidden:
        return TX_EREJECT;
    case S3StatusErrorEntityTooLarge:
    case S3StatusErrorMetadataTooLarge:
    case S3StatusErrorMaxMessageLengthExceeded:
    case S3StatusMetaDataHeadersTooLong:
        return TX_ETOOBIG;
    default:
        return TX_EIO;
    }
}

static S3Status v2_props_cb(const S3ResponseProperties *p, void *data)
{
    struct call *call = data;

    if (call->meta != NULL) {
        call->meta->size = p->contentLength;
        for (int i = 0; i < p->metaDataCount; i++) {
            const S3NameValue *nv = &p->metaData[i];

            meta_set(call->meta, nv->name, strlen(nv->name), nv->value, strlen(nv->value));
        }
    }
    if (call->body != NULL && p->contentLength > call->body->max) {
        call->too_big = true;
        return S3StatusAbortedByCallback;
    }
    return S3StatusOK;
}

static void v2_complete_cb(S3Status status, const S3ErrorDetails *d, void *data)
{
    struct call *call = data;

    call->s3status = status;
    call->done = true;
    if (d != NULL && d->message != NULL)
        snprintf(call->detail, sizeof(call->detail), "%s", d->message);
}

static int v2_put_data_cb(int size, char *buf, void *data)
{
    struct call *call = data;
    size_t n = call->put_len - call->put_off;

    if (size <= 0)
        return 0;
    if (n > (size_t) size)
        n = (size_t) size;
    memcpy(buf, call->put_data + call->put_off, n);
    call->put_off += n;
    return (int) n;
}

static S3Status v2_get_data_cb(int size, const char *buf, void *data)
{
    struct call *call = data;
    int rc = tx_buf_append(call->body, buf, (size_t) size);

    if (rc == TX_ETOOBIG)
        call->too_big = true;
    else if (rc != 0)
        call->nomem = true;
    return rc == 0 ? S3StatusOK : S3StatusAbortedByCallback;
}

/*
 * Drives ctx until its single request completes or the deadline passes. On timeout the
 * context is destroyed (libs3 then completes the request as Interrupted) and *ctxp set to NULL.
 */
static int v2_drive(S3RequestContext **ctxp, struct call *call, int64_t deadline, const char **why)
{
    S3RequestContext *ctx = *ctxp;

    for (;;) {
        fd_set rd;
        fd_set wr;
        fd_set ex;
        int maxfd = -1;
        int remaining = 0;
        int64_t left;
        int64_t wait;
        int64_t curl_wait;
        struct timeval tv;

        if (S3_runonce_request_context(ctx, &remaining) != S3StatusOK) {
            S3_destroy_request_context(ctx);
            *ctxp = NULL;
            *why = "libs3 failed to run the request";
            return TX_EIO;
        }
        if (remaining == 0 || call->done)
            return 0;
        left = deadline - tx_time_mono_ms();
        if (left <= 0) {
            S3_destroy_request_context(ctx);
            *ctxp = NULL;
            *why = "no answer before the deadline";
            return TX_ETIMEDOUT;
        }
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_ZERO(&ex);
        if (S3_get_request_context_fdsets(ctx, &rd, &wr, &ex, &maxfd) != S3StatusOK) {
            S3_destroy_request_context(ctx);
            *ctxp = NULL;
            *why = "libs3 failed to report its sockets";
            return TX_EIO;
        }
        wait = left;
        curl_wait = S3_get_request_context_timeout(ctx);
        if (curl_wait >= 0 && curl_wait < wait)
            wait = curl_wait;
        /* No socket to wait on yet (or none below FD_SETSIZE): poll briefly. */
        if (maxfd < 0 && wait > 1)
            wait = 1;
        tv.tv_sec = (time_t) (wait / 1000);
        tv.tv_usec = (suseconds_t) ((wait % 1000) * 1000);
        if (select(maxfd + 1, &rd, &wr, &ex, &tv) < 0 && errno != EINTR) {
            S3_destroy_request_context(ctx);
            *ctxp = NULL;
            *why = "select() failed";
            return TX_EIO;
        }
    }
}

static int v2_call(struct s3_client *c, const char *key, struct call *call, const struct s3_meta *m,
                   struct tx_err *err)
{
    S3RequestContext *ctx = NULL;
    S3ResponseHandler rh = { v2_props_cb, v2_complete_cb };
    int64_t deadline = tx_time_mono_ms() + c->timeout_ms;
    const char *what = call->method == M_PUT ? "PUT" : call->method == M_GET ? "GET" : "HEAD";
    const char *why = "";
    bool reuse = false;
    int rc;

    ctx = transport_get(c, err);
    if (ctx == NULL)
        return TX_ENOMEM;
    pthread_mutex_lock(&submit_mu);
    if (call->method == M_PUT) {
        char records[24];
        S3NameValue nv[3];
        S3PutProperties pp;
        S3PutObjectHandler h = { rh, v2_put_data_cb };
        int n = 0;

        snprintf(records, sizeof(records), "%ld", m->records);
        nv[n++] = (S3NameValue){ "sha256", m->sha256_hex };
        nv[n++] = (S3NameValue){ "records", records };
        if (m->idempotency_key != NULL)
            nv[n++] = (S3NameValue){ "idempotency-key", m->idempotency_key };
        memset(&pp, 0, sizeof(pp));
        pp.contentType = m->content_type != NULL ? m->content_type : "application/octet-stream";
        pp.expires = -1;
        pp.cannedAcl = S3CannedAclPrivate;
        pp.metaDataCount = n;
        pp.metaData = nv;
        /* libs3 copies what it needs into the request before returning. */
        S3_put_object(&c->bctx, key, call->put_len, &pp, ctx, &h, call);
    }
    else if (call->method == M_GET) {
        S3GetObjectHandler h = { rh, v2_get_data_cb };

        S3_get_object(&c->bctx, key, NULL, 0, 0, ctx, &h, call);
    }
    else {
        S3_head_object(&c->bctx, key, ctx, &rh, call);
    }
    pthread_mutex_unlock(&submit_mu);

    rc = v2_drive(&ctx, call, deadline, &why);
    if (rc == TX_ETIMEDOUT) {
        tx_err_set(err, rc, "S3 %s %s at %s: no answer within %ld ms", what, key, c->host,
                   c->timeout_ms);
        goto out;
    }
    if (rc != 0) {
        tx_err_set(err, rc, "S3 %s %s at %s: %s", what, key, c->host, why);
        goto out;
    }
    if (!call->done) {
        rc = tx_err_set(err, TX_EIO, "libs3 finished without completing the %s", what);
        goto out;
    }
    if (call->too_big) {
        rc =
            tx_err_set(err, TX_ETOOBIG, "object %s is larger than %zu bytes", key, call->body->max);
        reuse = true;
        goto out;
    }
    if (call->nomem) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory reading object %s", key);
        goto out;
    }
    rc = s3status_to_tx(call->s3status);
    /* Keep the context (and its connections) unless the transport itself failed. */
    reuse = rc != TX_EUNAVAIL && rc != TX_ETIMEDOUT && rc != TX_EIO;
    if (rc == 0)
        goto out;
    call->no_bucket = call->s3status == S3StatusErrorNoSuchBucket;
    if (call->no_bucket)
        tx_err_set(err, rc, "S3 %s %s: bucket %s does not exist", what, key, c->bucket);
    else
        tx_err_set(err, rc, "S3 %s %s at %s: %s%s%s", what, key, c->host,
                   S3_get_status_name(call->s3status), call->detail[0] != '\0' ? ": " : "",
                   call->detail);
out:
    transport_put(c, ctx, reuse && ctx != NULL);
    return rc;
}

/* ---- Signature V4 through libcurl ---- */

static int sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return TX_EIO;
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

static size_t v4_read_cb(char *buf, size_t size, size_t nmemb, void *data)
{
    struct call *call = data;
    size_t n = call->put_len - call->put_off;

    if (n > size * nmemb)
        n = size * nmemb;
    memcpy(buf, call->put_data + call->put_off, n);
    call->put_off += n;
    return n;
}

static int v4_seek_cb(void *data, curl_off_t offset, int origin)
{
    struct call *call = data;

    if (origin != SEEK_SET || offset < 0 || (uint64_t) offset > call->put_len)
        return CURL_SEEKFUNC_FAIL;
    call->put_off = (size_t) offset;
    return CURL_SEEKFUNC_OK;
}

static size_t v4_header_cb(char *buf, size_t size, size_t nmemb, void *data)
{
    struct call *call = data;
    size_t len = size * nmemb;
    size_t n = len;
    size_t colon;
    const char *val;
    size_t vlen;

    while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n'))
        n--;
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A status line, possibly of an interim 100 Continue: start over. */
        const char *sp = memchr(buf, ' ', n);

        call->http_code = 0;
        if (sp != NULL && (size_t) (sp - buf) + 4 <= n)
            call->http_code = strtol(sp + 1, NULL, 10);
        meta_reset(call->meta);
        return len;
    }
    for (colon = 0; colon < n && buf[colon] != ':'; colon++)
        ;
    if (colon == n)
        return len;
    val = buf + colon + 1;
    vlen = n - colon - 1;
    while (vlen > 0 && (*val == ' ' || *val == '\t')) {
        val++;
        vlen--;
    }
    while (vlen > 0 && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
        vlen--;
    if (call->http_code < 200 || call->http_code > 299)
        return len;
    if (colon == 14 && strncasecmp(buf, "content-length", 14) == 0) {
        uint64_t v = 0;

        for (size_t i = 0; i < vlen && i < 19 && val[i] >= '0' && val[i] <= '9'; i++)
            v = v * 10 + (uint64_t) (val[i] - '0');
        if (call->meta != NULL)
            call->meta->size = v;
        if (call->body != NULL && v > call->body->max) {
            call->too_big = true;
            return 0; /* aborts the transfer */
        }
    }
    else if (colon > 11 && strncasecmp(buf, "x-amz-meta-", 11) == 0) {
        meta_set(call->meta, buf + 11, colon - 11, val, vlen);
    }
    return len;
}

static size_t v4_write_cb(char *buf, size_t size, size_t nmemb, void *data)
{
    struct call *call = data;
    size_t len = size * nmemb;
    int rc;

    if (call->http_code < 200 || call->http_code > 299) {
        size_t room = call->errbody.max - call->errbody.len;

        /* Keep the start of an error body; drop the rest. */
        (void) tx_buf_append(&call->errbody, buf, len < room ? len : room);
        return len;
    }
    if (call->body == NULL)
        return len;
    rc = tx_buf_append(call->body, buf, len);
    if (rc == TX_ETOOBIG)
        call->too_big = true;
    else if (rc != 0)
        call->nomem = true;
    return rc == 0 ? len : 0;
}

/* Copies the text of <tag>...</tag> from an S3 error body into out ("" if absent). */
static void xml_text(const char *body, const char *tag, char *out, size_t outlen)
{
    char open[32];
    char close[32];
    const char *a;
    const char *b;
    size_t n;

    out[0] = '\0';
    if (body == NULL)
        return;
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    a = strstr(body, open);
    if (a == NULL)
        return;
    a += strlen(open);
    b = strstr(a, close);
    if (b == NULL)
        return;
    n = (size_t) (b - a);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, a, n);
    out[n] = '\0';
}

/* The one place an HTTP status (plus S3 error code) becomes a tx_status. */
static int http_to_tx(long http, const char *code)
{
    if (http >= 200 && http <= 299)
        return 0;
    if (http == 401 || http == 403)
        return TX_EREJECT;
    if (http == 400 &&
        (strcmp(code, "AuthorizationHeaderMalformed") == 0 ||
         strcmp(code, "InvalidAccessKeyId") == 0 || strcmp(code, "SignatureDoesNotMatch") == 0 ||
         strcmp(code, "RequestTimeTooSkewed") == 0 || strcmp(code, "ExpiredToken") == 0 ||
         strcmp(code, "InvalidToken") == 0 || strcmp(code, "XAmzContentSHA256Mismatch") == 0))
        return TX_EREJECT;
    if (http == 404)
        return TX_ENOTFOUND;
    if (http == 413 || strcmp(code, "EntityTooLarge") == 0 || strcmp(code, "MetadataTooLarge") == 0)
        return TX_ETOOBIG;
    if (http == 408 || http == 429 || http >= 500)
        return TX_EUNAVAIL;
    return TX_EIO;
}

static int curlcode_to_tx(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return TX_ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return TX_EUNAVAIL;
    case CURLE_OUT_OF_MEMORY:
        return TX_ENOMEM;
    case CURLE_PEER_FAILED_VERIFICATION:
        return TX_EREJECT;
    default:
        return TX_EIO;
    }
}

static int v4_call(struct s3_client *c, const char *key, struct call *call, const struct s3_meta *m,
                   struct tx_err *err)
{
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    char *url = NULL;
    char line[320];
    char payload_sha[65];
    const char *what = call->method == M_PUT ? "PUT" : call->method == M_GET ? "GET" : "HEAD";
    char errbuf[CURL_ERROR_SIZE];
    char code[64];
    char msg[160];
    bool reuse = false;
    CURLcode cc;
    int rc = 0;

    tx_buf_init(&call->errbody, ERR_BODY_MAX);
    url = malloc(strlen(c->base_url) + strlen(key) + 1);
    if (url == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    strcpy(url, c->base_url);
    strcat(url, key);

    if (call->method == M_PUT) {
        if (sha256_hex(call->put_data, call->put_len, payload_sha) != 0) {
            rc = tx_err_set(err, TX_EIO, "cannot hash the object body");
            goto out;
        }
    }
    else {
        memcpy(payload_sha, EMPTY_SHA256, sizeof(payload_sha));
    }

    /* Every header in this list is signed by libcurl; keep it to headers actually sent (an
     * empty "Expect:" here would be signed by curl 7.88 yet not sent). */
#define ADD_HDR(...)                                          \
    do {                                                      \
        struct curl_slist *nl_;                               \
        snprintf(line, sizeof(line), __VA_ARGS__);            \
        nl_ = curl_slist_append(hdrs, line);                  \
        if (nl_ == NULL) {                                    \
            rc = tx_err_set(err, TX_ENOMEM, "out of memory"); \
            goto out;                                         \
        }                                                     \
        hdrs = nl_;                                           \
    } while (0)
    ADD_HDR("x-amz-content-sha256: %s", payload_sha);
    if (call->method == M_PUT) {
        ADD_HDR("Content-Type: %s",
                m->content_type != NULL ? m->content_type : "application/octet-stream");
        ADD_HDR("x-amz-meta-sha256: %s", m->sha256_hex);
        ADD_HDR("x-amz-meta-records: %ld", m->records);
        if (m->idempotency_key != NULL)
            ADD_HDR("x-amz-meta-idempotency-key: %s", m->idempotency_key);
    }
#undef ADD_HDR

    h = transport_get(c, err);
    if (h == NULL) {
        rc = TX_ENOMEM;
        goto out;
    }
    errbuf[0] = '\0';
    if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, v4_header_cb) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERDATA, call) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, v4_write_cb) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, call) != CURLE_OK) {
        rc = tx_err_set(err, TX_EIO, "cannot configure libcurl");
        goto out;
    }
    if (call->method == M_PUT) {
        if (curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) call->put_len) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_READFUNCTION, v4_read_cb) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_READDATA, call) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, v4_seek_cb) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_SEEKDATA, call) != CURLE_OK) {
            rc = tx_err_set(err, TX_EIO, "cannot configure libcurl");
            goto out;
        }
    }
    else if (call->method == M_HEAD) {
        if (curl_easy_setopt(h, CURLOPT_NOBODY, 1L) != CURLE_OK) {
            rc = tx_err_set(err, TX_EIO, "cannot configure libcurl");
            goto out;
        }
    }

    cc = curl_easy_perform(h);
    if (call->too_big) {
        rc =
            tx_err_set(err, TX_ETOOBIG, "object %s is larger than %zu bytes", key, call->body->max);
        goto out;
    }
    if (call->nomem) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory reading object %s", key);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = tx_err_set(err, curlcode_to_tx(cc), "S3 %s %s at %s: %s", what, key, c->host,
                        errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    reuse = true;
    xml_text(call->errbody.data, "Code", code, sizeof(code));
    xml_text(call->errbody.data, "Message", msg, sizeof(msg));
    rc = http_to_tx(call->http_code, code);
    if (rc == 0)
        goto out;
    call->no_bucket = strcmp(code, "NoSuchBucket") == 0;
    if (call->no_bucket)
        tx_err_set(err, rc, "S3 %s %s: bucket %s does not exist", what, key, c->bucket);
    else
        tx_err_set(err, rc, "S3 %s %s at %s: HTTP %ld%s%s%s%s", what, key, c->host, call->http_code,
                   code[0] != '\0' ? " " : "", code, msg[0] != '\0' ? ": " : "", msg);
out:
    /* Drop every pointer into this call (headers, callbacks' data, errbuf) before the handle
     * goes idle; curl_easy_reset keeps its open connections for the next call. */
    if (h != NULL)
        curl_easy_reset(h);
    transport_put(c, h, reuse);
    curl_slist_free_all(hdrs);
    free(url);
    tx_buf_cleanup(&call->errbody);
    return rc;
}

/* ---- public API ---- */

static int run(struct s3_client *c, const char *key, struct call *call, const struct s3_meta *m,
               struct tx_err *err)
{
    if (c->signature == 4)
        return v4_call(c, key, call, m, err);
    return v2_call(c, key, call, m, err);
}

struct s3_client *s3_client_create(const struct s3_config *cfg, struct tx_err *err)
{
    struct s3_client *c = NULL;
    const char *region;
    int n;

    if (cfg == NULL) {
        tx_err_set(err, TX_EINVAL, "no S3 configuration");
        return NULL;
    }
    if (cfg->signature != 0 && cfg->signature != 2 && cfg->signature != 4) {
        tx_err_set(err, TX_EINVAL, "S3 signature must be 2 or 4, not %d", cfg->signature);
        return NULL;
    }
    if (cfg->timeout_ms < 0 || cfg->timeout_ms > MAX_TIMEOUT_MS) {
        tx_err_set(err, TX_EINVAL, "S3 timeout must be 1-%ld ms", MAX_TIMEOUT_MS);
        return NULL;
    }
    if (cfg->access_key == NULL || cfg->access_key[0] == '\0' || cfg->secret_key == NULL ||
        cfg->secret_key[0] == '\0') {
        tx_err_set(err, TX_EINVAL, "S3 access key and secret key are required");
        return NULL;
    }
    if (check_bucket(cfg->bucket, err) != 0)
        return NULL;
    region = cfg->region != NULL && cfg->region[0] != '\0' ? cfg->region : "us-east-1";
    if (!header_token_ok(region, 64) || strchr(region, ':') != NULL) {
        tx_err_set(err, TX_EINVAL, "S3 region must be 1-64 printable characters without ':'");
        return NULL;
    }

    pthread_once(&init_once, init_libs);
    if (init_status != S3StatusOK) {
        tx_err_set(err, TX_EIO, "libs3 initialisation failed: %s", S3_get_status_name(init_status));
        return NULL;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto nomem;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        c = NULL;
        goto nomem;
    }
    c->signature = cfg->signature == 4 ? 4 : 2;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (parse_endpoint(cfg->endpoint, &c->https, &c->host, err) != 0)
        goto fail;
    if (c->https && c->signature == 2) {
        tx_err_set(err, TX_EINVAL,
                   "S3 signature 2 (libs3 2.0) cannot verify TLS certificates; use http:// "
                   "or signature 4");
        goto fail;
    }
    c->access_key = strdup(cfg->access_key);
    c->secret_key = strdup(cfg->secret_key);
    c->bucket = strdup(cfg->bucket);
    n = snprintf(NULL, 0, "%s://%s/%s/", c->https ? "https" : "http", c->host, c->bucket);
    c->base_url = malloc((size_t) n + 1);
    c->sigv4 = malloc(strlen(region) + sizeof("aws:amz::s3"));
    if (c->access_key == NULL || c->secret_key == NULL || c->bucket == NULL ||
        c->base_url == NULL || c->sigv4 == NULL)
        goto nomem;
    snprintf(c->base_url, (size_t) n + 1, "%s://%s/%s/", c->https ? "https" : "http", c->host,
             c->bucket);
    sprintf(c->sigv4, "aws:amz:%s:s3", region);
    c->bctx.hostName = c->host;
    c->bctx.bucketName = c->bucket;
    c->bctx.protocol = c->https ? S3ProtocolHTTPS : S3ProtocolHTTP;
    c->bctx.uriStyle = S3UriStylePath;
    c->bctx.accessKeyId = c->access_key;
    c->bctx.secretAccessKey = c->secret_key;
    return c;

nomem:
    tx_err_set(err, TX_ENOMEM, "out of memory");
fail:
    s3_client_destroy(c);
    return NULL;
}

void s3_client_destroy(struct s3_client *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->nidle; i++)
        transport_free(c, c->idle[i]);
    pthread_mutex_destroy(&c->mu);
    free(c->host);
    free(c->base_url);
    free(c->access_key);
    if (c->secret_key != NULL)
        memset(c->secret_key, 0, strlen(c->secret_key));
    free(c->secret_key);
    free(c->bucket);
    free(c->sigv4);
    free(c);
}

int s3_object_put(struct s3_client *c, const char *key, const void *data, size_t len,
                  const struct s3_meta *meta, struct tx_err *err)
{
    struct call call;
    struct s3_meta norm;
    char sha[65];
    int rc;

    if (c == NULL || (data == NULL && len > 0))
        return tx_err_set(err, TX_EINVAL, "s3_object_put: bad arguments");
    rc = s3_key_check(key, err);
    if (rc != 0)
        return rc;
    rc = check_meta(meta, err);
    if (rc != 0)
        return rc;
    if (len > (size_t) 5 * 1024 * 1024 * 1024)
        return tx_err_set(err, TX_ETOOBIG, "object of %zu bytes exceeds S3's 5 GiB PUT limit", len);
    /* The digest is stored in lowercase whatever case the caller used. */
    norm = *meta;
    for (int i = 0; i < 64; i++)
        sha[i] = (char) (meta->sha256_hex[i] >= 'A' && meta->sha256_hex[i] <= 'F'
                             ? meta->sha256_hex[i] + ('a' - 'A')
                             : meta->sha256_hex[i]);
    sha[64] = '\0';
    norm.sha256_hex = sha;
    memset(&call, 0, sizeof(call));
    call.method = M_PUT;
    call.put_data = data != NULL ? data : "";
    call.put_len = len;
    return run(c, key, &call, &norm, err);
}

int s3_object_head(struct s3_client *c, const char *key, struct s3_meta_out *out,
                   struct tx_err *err)
{
    struct call call;
    struct s3_meta_out scratch;
    int rc;

    if (c == NULL)
        return tx_err_set(err, TX_EINVAL, "s3_object_head: bad arguments");
    rc = s3_key_check(key, err);
    if (rc != 0)
        return rc;
    memset(&call, 0, sizeof(call));
    call.method = M_HEAD;
    call.meta = out != NULL ? out : &scratch;
    meta_reset(call.meta);
    rc = run(c, key, &call, NULL, err);
    if (rc != 0)
        meta_reset(call.meta);
    return rc;
}

int s3_object_get(struct s3_client *c, const char *key, size_t max, char **data, size_t *len,
                  struct tx_err *err)
{
    struct call call;
    struct tx_buf body;
    int rc;

    if (data != NULL)
        *data = NULL;
    if (len != NULL)
        *len = 0;
    if (c == NULL || data == NULL || len == NULL)
        return tx_err_set(err, TX_EINVAL, "s3_object_get: bad arguments");
    rc = s3_key_check(key, err);
    if (rc != 0)
        return rc;
    tx_buf_init(&body, max);
    memset(&call, 0, sizeof(call));
    call.method = M_GET;
    call.body = &body;
    rc = run(c, key, &call, NULL, err);
    if (rc == 0)
        rc = tx_buf_append(&body, "", 0); /* allocates the NUL of an empty object */
    if (rc == TX_ENOMEM)
        tx_err_set(err, rc, "out of memory reading object %s", key);
    if (rc == 0)
        *data = tx_buf_steal(&body, len);
    tx_buf_cleanup(&body);
    return rc;
}

int s3_bucket_check(struct s3_client *c, struct tx_err *err)
{
    struct call call;
    struct tx_buf body;
    int rc;

    if (c == NULL)
        return tx_err_set(err, TX_EINVAL, "s3_bucket_check: bad arguments");
    tx_buf_init(&body, 4096);
    memset(&call, 0, sizeof(call));
    call.method = M_GET;
    call.body = &body;
    rc = run(c, PROBE_KEY, &call, NULL, err);
    tx_buf_cleanup(&body);
    /* The probe key normally does not exist: a 404 that is not about the bucket means ready. */
    if (rc == TX_ETOOBIG || (rc == TX_ENOTFOUND && !call.no_bucket)) {
        tx_err_clear(err);
        rc = 0;
    }
    return rc;
}
