#include "storage/cache.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define DEFAULT_PORT       6379
#define DEFAULT_TIMEOUT_MS 5000L
#define MAX_TIMEOUT_MS     600000L
#define MAX_DB             1000000L
#define HOST_MAX           255
#define USERINFO_MAX       512
/* cache_set_nx retries when the key vanished between its SET NX and GET (expired in between). */
#define SET_NX_ATTEMPTS 3

struct cache_conn {
    redisContext *ctx; /* NULL while disconnected */
    char *host;
    int port;
    char *user; /* NULL: AUTH with the password alone (or no AUTH) */
    char *pass; /* NULL: no AUTH */
    long db;
    long timeout_ms;
};

struct cache_script {
    char *src;
    size_t len;
    char sha1[41];
};

/* ---- SIGPIPE: hiredis 0.14 writes with write(), which raises SIGPIPE on a closed socket ---- */

struct sigpipe_guard {
    sigset_t old;
    bool was_pending; /* a SIGPIPE was already pending (and blocked) before we started */
};

static void sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t set;
    sigset_t pending;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    g->was_pending = false;
    if (sigismember(&g->old, SIGPIPE) == 1 && sigpending(&pending) == 0)
        g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

/* Discards a SIGPIPE our own writes raised, then restores the thread's signal mask. */
static void sigpipe_restore(struct sigpipe_guard *g)
{
    sigset_t set;
    sigset_t pending;
    int saved = errno;

    if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = { 0, 0 };

        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = saved;
}

/* ---- URL ---- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes len bytes of s into a malloc'd string (no NUL bytes allowed). */
static int pct_decode(const char *s, size_t len, const char *what, char **out, struct tx_err *err)
{
    char *d = malloc(len + 1);
    size_t j = 0;

    if (d == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        int hi;
        int lo;

        if (s[i] != '%') {
            d[j++] = s[i];
            continue;
        }
        hi = i + 2 < len ? hexval((unsigned char) s[i + 1]) : -1;
        lo = i + 2 < len ? hexval((unsigned char) s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(d);
            return tx_err_set(err, TX_EINVAL, "redis URL: bad %%-escape in the %s", what);
        }
        d[j++] = (char) (hi * 16 + lo);
        i += 2;
    }
    d[j] = '\0';
    *out = d;
    return 0;
}

static int parse_url(struct cache_conn *c, const char *url, struct tx_err *err)
{
    const char *p;
    const char *end;
    const char *at;
    const char *hostend;
    const char *h;
    size_t hlen;
    int rc;

    if (url == NULL || strncmp(url, "redis://", 8) != 0)
        return tx_err_set(err, TX_EINVAL, "redis URL must start with redis://");
    p = url + 8;
    end = p + strcspn(p, "/?#");
    if (*end == '?' || *end == '#')
        return tx_err_set(err, TX_EINVAL, "redis URL: query and fragment are not supported");
    at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t) (at - p));

        if ((size_t) (at - p) > USERINFO_MAX)
            return tx_err_set(err, TX_EINVAL, "redis URL: user and password too long");
        if (colon == NULL)
            return tx_err_set(err, TX_EINVAL,
                              "redis URL: a user needs a password (redis://user:password@host)");
        if (colon > p) {
            rc = pct_decode(p, (size_t) (colon - p), "user", &c->user, err);
            if (rc != 0)
                return rc;
        }
        rc = pct_decode(colon + 1, (size_t) (at - colon - 1), "password", &c->pass, err);
        if (rc != 0)
            return rc;
        if (c->pass[0] == '\0') {
            free(c->pass);
            c->pass = NULL;
            if (c->user != NULL)
                return tx_err_set(err, TX_EINVAL, "redis URL: a user needs a password");
        }
        p = at + 1;
    }
    /* host */
    if (*p == '[') {
        h = p + 1;
        hostend = memchr(h, ']', (size_t) (end - h));
        if (hostend == NULL)
            return tx_err_set(err, TX_EINVAL, "redis URL: unterminated '[' in the host");
        hlen = (size_t) (hostend - h);
        p = hostend + 1;
        for (size_t i = 0; i < hlen; i++)
            if (hexval((unsigned char) h[i]) < 0 && h[i] != ':' && h[i] != '.')
                return tx_err_set(err, TX_EINVAL, "redis URL: bad IPv6 address");
    }
    else {
        h = p;
        while (p < end && *p != ':') {
            int ch = (unsigned char) *p;

            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
                return tx_err_set(err, TX_EINVAL, "redis URL: bad character in the host");
            p++;
        }
        hlen = (size_t) (p - h);
    }
    if (hlen == 0 || hlen > HOST_MAX)
        return tx_err_set(err, TX_EINVAL, "redis URL: missing or too long host");
    c->host = strndup(h, hlen);
    if (c->host == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    /* port */
    c->port = DEFAULT_PORT;
    if (p < end) {
        long port = 0;

        if (*p != ':' || p + 1 == end)
            return tx_err_set(err, TX_EINVAL, "redis URL: bad port");
        for (p++; p < end; p++) {
            if (*p < '0' || *p > '9' || port > 65535)
                return tx_err_set(err, TX_EINVAL, "redis URL: bad port");
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535)
            return tx_err_set(err, TX_EINVAL, "redis URL: port must be 1-65535");
        c->port = (int) port;
    }
    /* database */
    c->db = 0;
    if (*end == '/' && end[1] != '\0') {
        long db = 0;

        for (p = end + 1; *p != '\0'; p++) {
            if (*p < '0' || *p > '9' || db > MAX_DB)
                return tx_err_set(err, TX_EINVAL, "redis URL: the path must be a database number");
            db = db * 10 + (*p - '0');
        }
        if (db > MAX_DB)
            return tx_err_set(err, TX_EINVAL, "redis URL: database number too large");
        c->db = db;
    }
    return 0;
}

/* ---- connection ---- */

static void conn_drop(struct cache_conn *c)
{
    if (c->ctx != NULL) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
}

static struct timeval ms_to_tv(long ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

    return tv;
}

static bool is_timeout_errno(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT || e == EINPROGRESS;
}

/*
 * Translates a failed context (c->ctx->err set) into a status and closes the connection; the
 * next call reconnects. saved_errno is errno right after the failing hiredis call.
 */
static int ctx_fail(struct cache_conn *c, int saved_errno, const char *doing, struct tx_err *err)
{
    int rc;

    if (c->ctx == NULL)
        return tx_err_set(err, TX_EUNAVAIL, "redis %s:%d: not connected", c->host, c->port);
    switch (c->ctx->err) {
    case REDIS_ERR_IO:
        if (is_timeout_errno(saved_errno))
            rc = tx_err_set(err, TX_ETIMEDOUT, "redis %s:%d: %s: no answer within %ld ms", c->host,
                            c->port, doing, c->timeout_ms);
        else
            rc = tx_err_set(err, TX_EUNAVAIL, "redis %s:%d: %s: %s", c->host, c->port, doing,
                            c->ctx->errstr);
        break;
    case REDIS_ERR_EOF:
        rc = tx_err_set(err, TX_EUNAVAIL, "redis %s:%d: %s: server closed the connection", c->host,
                        c->port, doing);
        break;
    case REDIS_ERR_OOM:
        rc = tx_err_set(err, TX_ENOMEM, "redis: out of memory");
        break;
    case REDIS_ERR_PROTOCOL:
        rc = tx_err_set(err, TX_EIO, "redis %s:%d: %s: protocol error: %s", c->host, c->port, doing,
                        c->ctx->errstr);
        break;
    default:
        rc = tx_err_set(err, TX_EUNAVAIL, "redis %s:%d: %s: %s", c->host, c->port, doing,
                        c->ctx->errstr);
        break;
    }
    conn_drop(c);
    return rc;
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);

    return len >= plen && memcmp(s, prefix, plen) == 0 && (len == plen || s[plen] == ' ');
}

/* Error replies of a server that is starting, busy or failing over: retry later. */
static bool is_transient(const redisReply *r)
{
    return has_prefix(r->str, r->len, "LOADING") || has_prefix(r->str, r->len, "BUSY") ||
           has_prefix(r->str, r->len, "MASTERDOWN") || has_prefix(r->str, r->len, "TRYAGAIN") ||
           has_prefix(r->str, r->len, "CLUSTERDOWN");
}

/* Translates an error reply (REDIS_REPLY_ERROR): transient server states are retryable. */
static int reply_error(const redisReply *r, const char *doing, struct tx_err *err)
{
    int len = r->len > 200 ? 200 : (int) r->len;

    return tx_err_set(err, is_transient(r) ? TX_EUNAVAIL : TX_EIO, "redis: %s: %.*s", doing, len,
                      r->str);
}

/* A reply that is neither the expected type nor an error. */
static int reply_unexpected(const redisReply *r, const char *doing, struct tx_err *err)
{
    return tx_err_set(err, TX_EIO, "redis: %s: unexpected reply type %d", doing, r->type);
}

static bool is_status(const redisReply *r, const char *text)
{
    return r->type == REDIS_REPLY_STATUS && r->len == strlen(text) &&
           memcmp(r->str, text, r->len) == 0;
}

static void free_replies(redisReply **r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i] != NULL)
            freeReplyObject(r[i]);
        r[i] = NULL;
    }
}

/*
 * Writes what was appended to the context and reads n replies into r[0..n-1]. On an I/O error
 * the replies read so far are freed and the connection closed. SIGPIPE is blocked meanwhile.
 */
static int read_replies(struct cache_conn *c, redisReply **r, size_t n, const char *doing,
                        struct tx_err *err)
{
    struct sigpipe_guard g;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        r[i] = NULL;
    sigpipe_block(&g);
    for (size_t i = 0; i < n; i++) {
        void *reply = NULL;

        errno = 0;
        if (redisGetReply(c->ctx, &reply) != REDIS_OK || reply == NULL) {
            int saved = errno;

            if (reply != NULL)
                freeReplyObject(reply);
            free_replies(r, i);
            rc = ctx_fail(c, saved, doing, err);
            goto out;
        }
        r[i] = reply;
    }
out:
    sigpipe_restore(&g);
    return rc;
}

/* Sends one command built from argv and reads its reply. */
static int command_argv(struct cache_conn *c, int argc, const char **argv, const size_t *argvlen,
                        redisReply **reply, const char *doing, struct tx_err *err)
{
    if (redisAppendCommandArgv(c->ctx, argc, argv, argvlen) != REDIS_OK)
        return ctx_fail(c, errno, doing, err);
    return read_replies(c, reply, 1, doing, err);
}

/* AUTH and SELECT on a fresh connection, pipelined. */
static int conn_setup(struct cache_conn *c, struct tx_err *err)
{
    redisReply *r[2] = { NULL, NULL };
    size_t n = 0;
    int rc = 0;

    if (c->pass != NULL) {
        const char *argv[3] = { "AUTH", c->user, c->pass };
        size_t len[3] = { 4, c->user != NULL ? strlen(c->user) : 0, strlen(c->pass) };

        if (c->user == NULL) {
            argv[1] = c->pass;
            len[1] = len[2];
        }
        if (redisAppendCommandArgv(c->ctx, c->user != NULL ? 3 : 2, argv, len) != REDIS_OK)
            return ctx_fail(c, errno, "AUTH", err);
        n++;
    }
    if (c->db != 0) {
        if (redisAppendCommand(c->ctx, "SELECT %ld", c->db) != REDIS_OK)
            return ctx_fail(c, errno, "SELECT", err);
        n++;
    }
    if (n == 0)
        return 0;
    rc = read_replies(c, r, n, "AUTH/SELECT", err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const char *what = (i == 0 && c->pass != NULL) ? "AUTH" : "SELECT";

        if (r[i]->type == REDIS_REPLY_ERROR) {
            int len = r[i]->len > 200 ? 200 : (int) r[i]->len;

            rc =
                tx_err_set(err, is_transient(r[i]) ? TX_EUNAVAIL : TX_EREJECT,
                           "redis %s:%d: %s refused: %.*s", c->host, c->port, what, len, r[i]->str);
            break;
        }
        if (!is_status(r[i], "OK")) {
            rc = reply_unexpected(r[i], what, err);
            break;
        }
    }
    free_replies(r, n);
    if (rc != 0)
        conn_drop(c);
    return rc;
}

static int conn_open(struct cache_conn *c, struct tx_err *err)
{
    struct timeval tv = ms_to_tv(c->timeout_ms);
    int saved;

    conn_drop(c);
    errno = 0;
    c->ctx = redisConnectWithTimeout(c->host, c->port, tv);
    saved = errno;
    if (c->ctx == NULL)
        return tx_err_set(err, TX_ENOMEM, "redis: out of memory");
    if (c->ctx->err != 0) {
        int rc;

        if (c->ctx->err == REDIS_ERR_IO && (saved == ETIMEDOUT || saved == EINPROGRESS))
            rc = tx_err_set(err, TX_ETIMEDOUT, "redis %s:%d: connect: no answer within %ld ms",
                            c->host, c->port, c->timeout_ms);
        else
            rc = tx_err_set(err, TX_EUNAVAIL, "redis %s:%d: connect: %s", c->host, c->port,
                            c->ctx->errstr);
        conn_drop(c);
        return rc;
    }
    if (redisSetTimeout(c->ctx, tv) != REDIS_OK)
        return ctx_fail(c, errno, "setting the timeout", err);
    /* Best effort: finds a vanished peer on an idle connection. */
    (void) redisEnableKeepAlive(c->ctx);
    return conn_setup(c, err);
}

/*
 * Makes sure there is a usable connection before a command is written. An idle RESP2 connection
 * has nothing to read; if its socket is readable the server closed it (or broke the protocol), so
 * it is replaced before anything is sent.
 */
static int conn_ready(struct cache_conn *c, struct tx_err *err)
{
    if (c->ctx != NULL) {
        struct pollfd pfd = { .fd = c->ctx->fd, .events = POLLIN };
        int n;

        do {
            n = poll(&pfd, 1, 0);
        } while (n < 0 && errno == EINTR);
        if (n != 0 || c->ctx->err != 0)
            conn_drop(c);
    }
    if (c->ctx == NULL)
        return conn_open(c, err);
    return 0;
}

struct cache_conn *cache_conn_create(const char *url, long timeout_ms, struct tx_err *err)
{
    struct cache_conn *c = NULL;
    struct cache_conn *ret = NULL;

    if (timeout_ms == 0)
        timeout_ms = DEFAULT_TIMEOUT_MS;
    if (timeout_ms < 1 || timeout_ms > MAX_TIMEOUT_MS) {
        tx_err_set(err, TX_EINVAL, "redis timeout must be 1-%ld ms", MAX_TIMEOUT_MS);
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    c->timeout_ms = timeout_ms;
    if (parse_url(c, url, err) != 0)
        goto out;
    if (conn_open(c, err) != 0)
        goto out;
    ret = c;
    c = NULL;
out:
    cache_conn_destroy(c);
    return ret;
}

void cache_conn_destroy(struct cache_conn *c)
{
    if (c == NULL)
        return;
    conn_drop(c);
    free(c->host);
    free(c->user);
    if (c->pass != NULL) {
        memset(c->pass, 0, strlen(c->pass));
        free(c->pass);
    }
    free(c);
}

/* ---- commands ---- */

static int check_key(const char *key, struct tx_err *err)
{
    if (key == NULL || key[0] == '\0')
        return tx_err_set(err, TX_EINVAL, "redis: empty key");
    return 0;
}

static int check_ttl(int ttl_s, struct tx_err *err)
{
    if (ttl_s <= 0)
        return tx_err_set(err, TX_EINVAL, "redis: TTL must be > 0 seconds, got %d", ttl_s);
    return 0;
}

static int copy_bulk(const redisReply *r, char **out, size_t *outlen, struct tx_err *err)
{
    char *d = malloc(r->len + 1);

    if (d == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    memcpy(d, r->str, r->len);
    d[r->len] = '\0';
    *out = d;
    if (outlen != NULL)
        *outlen = r->len;
    return 0;
}

int cache_ping(struct cache_conn *c, struct tx_err *err)
{
    const char *argv[1] = { "PING" };
    size_t len[1] = { 4 };
    redisReply *r = NULL;
    int rc;

    rc = conn_ready(c, err);
    if (rc != 0)
        return rc;
    rc = command_argv(c, 1, argv, len, &r, "PING", err);
    if (rc != 0)
        return rc;
    if (r->type == REDIS_REPLY_ERROR)
        rc = reply_error(r, "PING", err);
    else if (!is_status(r, "PONG"))
        rc = reply_unexpected(r, "PING", err);
    freeReplyObject(r);
    return rc;
}

int cache_set_many(struct cache_conn *c, const struct cache_kv *kv, size_t n, int ttl_s,
                   struct tx_err *err)
{
    redisReply **r = NULL;
    int rc;

    if (n == 0)
        return 0;
    if (kv == NULL)
        return tx_err_set(err, TX_EINVAL, "redis: no keys");
    rc = check_ttl(ttl_s, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = check_key(kv[i].key, err);
        if (rc == 0 && kv[i].val == NULL && kv[i].len != 0)
            rc = tx_err_set(err, TX_EINVAL, "redis: value %zu is NULL", i);
    }
    if (rc != 0)
        return rc;
    r = calloc(n, sizeof(*r));
    if (r == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    rc = conn_ready(c, err);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (redisAppendCommand(c->ctx, "SET %s %b EX %d", kv[i].key,
                               kv[i].val != NULL ? kv[i].val : "", kv[i].len, ttl_s) != REDIS_OK) {
            rc = ctx_fail(c, errno, "SET pipeline", err);
            goto out;
        }
    }
    rc = read_replies(c, r, n, "SET pipeline", err);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (r[i]->type == REDIS_REPLY_ERROR) {
            char doing[64];

            snprintf(doing, sizeof(doing), "SET pipeline, key %zu", i);
            rc = reply_error(r[i], doing, err);
        }
        else if (!is_status(r[i], "OK")) {
            rc = reply_unexpected(r[i], "SET pipeline", err);
        }
    }
    free_replies(r, n);
out:
    free(r);
    return rc;
}

/* Checks the four replies of MULTI, cmd1, cmd2, EXEC; returns the EXEC array. */
static int check_exec(redisReply **r, const char *doing, redisReply **exec, struct tx_err *err)
{
    for (int i = 0; i < 4; i++)
        if (r[i]->type == REDIS_REPLY_ERROR)
            return reply_error(r[i], doing, err);
    if (!is_status(r[0], "OK"))
        return reply_unexpected(r[0], doing, err);
    if (!is_status(r[1], "QUEUED") || !is_status(r[2], "QUEUED"))
        return tx_err_set(err, TX_EIO, "redis: %s: command not queued in MULTI", doing);
    if (r[3]->type != REDIS_REPLY_ARRAY || r[3]->elements != 2)
        return reply_unexpected(r[3], doing, err);
    for (int i = 0; i < 2; i++)
        if (r[3]->element[i]->type == REDIS_REPLY_ERROR)
            return reply_error(r[3]->element[i], doing, err);
    *exec = r[3];
    return 0;
}

int cache_get(struct cache_conn *c, const char *key, char **val, size_t *len, long *ttl_s,
              struct tx_err *err)
{
    redisReply *r[4] = { NULL, NULL, NULL, NULL };
    const redisReply *v = NULL;
    size_t nr = 0;
    int rc;

    if (val == NULL)
        return tx_err_set(err, TX_EINVAL, "redis: val is NULL");
    *val = NULL;
    if (len != NULL)
        *len = 0;
    rc = check_key(key, err);
    if (rc != 0)
        return rc;
    rc = conn_ready(c, err);
    if (rc != 0)
        return rc;
    if (ttl_s == NULL) {
        if (redisAppendCommand(c->ctx, "GET %s", key) != REDIS_OK)
            return ctx_fail(c, errno, "GET", err);
        nr = 1;
        rc = read_replies(c, r, nr, "GET", err);
        if (rc != 0)
            return rc;
        v = r[0];
        if (v->type == REDIS_REPLY_ERROR) {
            rc = reply_error(v, "GET", err);
            goto out;
        }
    }
    else {
        redisReply *exec = NULL;

        if (redisAppendCommand(c->ctx, "MULTI") != REDIS_OK ||
            redisAppendCommand(c->ctx, "GET %s", key) != REDIS_OK ||
            redisAppendCommand(c->ctx, "TTL %s", key) != REDIS_OK ||
            redisAppendCommand(c->ctx, "EXEC") != REDIS_OK)
            return ctx_fail(c, errno, "GET/TTL", err);
        nr = 4;
        rc = read_replies(c, r, nr, "GET/TTL", err);
        if (rc != 0)
            return rc;
        rc = check_exec(r, "GET/TTL", &exec, err);
        if (rc != 0)
            goto out;
        v = exec->element[0];
        if (v->type == REDIS_REPLY_STRING) {
            if (exec->element[1]->type != REDIS_REPLY_INTEGER) {
                rc = reply_unexpected(exec->element[1], "TTL", err);
                goto out;
            }
            *ttl_s = (long) exec->element[1]->integer;
        }
    }
    if (v->type == REDIS_REPLY_NIL) {
        rc = tx_err_set(err, TX_ENOTFOUND, "redis: no key %.200s", key);
        goto out;
    }
    if (v->type != REDIS_REPLY_STRING) {
        rc = reply_unexpected(v, "GET", err);
        goto out;
    }
    rc = copy_bulk(v, val, len, err);
out:
    free_replies(r, nr);
    return rc;
}

int cache_set_nx(struct cache_conn *c, const char *key, const char *val, size_t len, int ttl_s,
                 char **old, size_t *oldlen, struct tx_err *err)
{
    redisReply *r[4] = { NULL, NULL, NULL, NULL };
    int rc;

    if (old != NULL)
        *old = NULL;
    if (oldlen != NULL)
        *oldlen = 0;
    rc = check_key(key, err);
    if (rc == 0)
        rc = check_ttl(ttl_s, err);
    if (rc == 0 && val == NULL && len != 0)
        rc = tx_err_set(err, TX_EINVAL, "redis: value is NULL");
    if (rc != 0)
        return rc;
    for (int attempt = 0; attempt < SET_NX_ATTEMPTS; attempt++) {
        redisReply *exec = NULL;
        const redisReply *set;
        const redisReply *cur;

        rc = conn_ready(c, err);
        if (rc != 0)
            return rc;
        if (redisAppendCommand(c->ctx, "MULTI") != REDIS_OK ||
            redisAppendCommand(c->ctx, "SET %s %b NX EX %d", key, val != NULL ? val : "", len,
                               ttl_s) != REDIS_OK ||
            redisAppendCommand(c->ctx, "GET %s", key) != REDIS_OK ||
            redisAppendCommand(c->ctx, "EXEC") != REDIS_OK)
            return ctx_fail(c, errno, "SET NX", err);
        rc = read_replies(c, r, 4, "SET NX", err);
        if (rc != 0)
            return rc;
        rc = check_exec(r, "SET NX", &exec, err);
        if (rc != 0)
            goto out;
        set = exec->element[0];
        cur = exec->element[1];
        if (is_status(set, "OK")) {
            rc = 0;
            goto out;
        }
        if (set->type != REDIS_REPLY_NIL) {
            rc = reply_unexpected(set, "SET NX", err);
            goto out;
        }
        if (cur->type == REDIS_REPLY_STRING) {
            rc = tx_err_set(err, TX_EEXIST, "redis: key %.200s exists", key);
            if (old != NULL && copy_bulk(cur, old, oldlen, err) != 0)
                rc = TX_ENOMEM;
            goto out;
        }
        if (cur->type != REDIS_REPLY_NIL) {
            rc = reply_unexpected(cur, "SET NX", err);
            goto out;
        }
        /* Existed for SET, gone for GET: it expired in between. Try again. */
        free_replies(r, 4);
    }
    rc = tx_err_set(err, TX_EIO, "redis: SET NX of %.200s: the key kept expiring", key);
out:
    free_replies(r, 4);
    return rc;
}

int cache_set(struct cache_conn *c, const char *key, const char *val, size_t len, int ttl_s,
              struct tx_err *err)
{
    redisReply *r = NULL;
    int rc;

    rc = check_key(key, err);
    if (rc == 0)
        rc = check_ttl(ttl_s, err);
    if (rc == 0 && val == NULL && len != 0)
        rc = tx_err_set(err, TX_EINVAL, "redis: value is NULL");
    if (rc == 0)
        rc = conn_ready(c, err);
    if (rc != 0)
        return rc;
    if (redisAppendCommand(c->ctx, "SET %s %b EX %d", key, val != NULL ? val : "", len, ttl_s) !=
        REDIS_OK)
        return ctx_fail(c, errno, "SET", err);
    rc = read_replies(c, &r, 1, "SET", err);
    if (rc != 0)
        return rc;
    if (r->type == REDIS_REPLY_ERROR)
        rc = reply_error(r, "SET", err);
    else if (!is_status(r, "OK"))
        rc = reply_unexpected(r, "SET", err);
    freeReplyObject(r);
    return rc;
}

int cache_del(struct cache_conn *c, const char *key, struct tx_err *err)
{
    redisReply *r = NULL;
    int rc;

    rc = check_key(key, err);
    if (rc == 0)
        rc = conn_ready(c, err);
    if (rc != 0)
        return rc;
    if (redisAppendCommand(c->ctx, "DEL %s", key) != REDIS_OK)
        return ctx_fail(c, errno, "DEL", err);
    rc = read_replies(c, &r, 1, "DEL", err);
    if (rc != 0)
        return rc;
    if (r->type == REDIS_REPLY_ERROR)
        rc = reply_error(r, "DEL", err);
    else if (r->type != REDIS_REPLY_INTEGER)
        rc = reply_unexpected(r, "DEL", err);
    else if (r->integer == 0)
        rc = tx_err_set(err, TX_ENOTFOUND, "redis: no key %.200s", key);
    freeReplyObject(r);
    return rc;
}

/* ---- scripts ---- */

struct cache_script *cache_script_create(const char *lua, struct tx_err *err)
{
    struct cache_script *s = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (lua == NULL || lua[0] == '\0') {
        tx_err_set(err, TX_EINVAL, "redis: empty script");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto nomem;
    s->len = strlen(lua);
    s->src = strdup(lua);
    if (s->src == NULL)
        goto nomem;
    if (EVP_Digest(s->src, s->len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) {
        tx_err_set(err, TX_EIO, "redis: cannot compute the script's SHA1");
        cache_script_destroy(s);
        return NULL;
    }
    for (unsigned i = 0; i < 20; i++)
        snprintf(s->sha1 + 2 * i, 3, "%02x", md[i]);
    return s;
nomem:
    cache_script_destroy(s);
    tx_err_set(err, TX_ENOMEM, "out of memory");
    return NULL;
}

void cache_script_destroy(struct cache_script *s)
{
    if (s == NULL)
        return;
    free(s->src);
    free(s);
}

const char *cache_script_sha1(const struct cache_script *s)
{
    return s->sha1;
}

void cache_reply_cleanup(struct cache_reply *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->vals[i].str);
    free(r->vals);
    r->vals = NULL;
    r->n = 0;
}

/* Counts the scalars of a script reply; an error anywhere inside is reported. */
static int reply_count(const redisReply *r, size_t *n, struct tx_err *err)
{
    switch (r->type) {
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < r->elements; i++) {
            int rc = reply_count(r->element[i], n, err);

            if (rc != 0)
                return rc;
        }
        return 0;
    case REDIS_REPLY_ERROR:
        return reply_error(r, "script", err);
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_INTEGER:
    case REDIS_REPLY_NIL:
        (*n)++;
        return 0;
    default:
        return reply_unexpected(r, "script", err);
    }
}

static int reply_flatten(const redisReply *r, struct cache_reply *out, struct tx_err *err)
{
    struct cache_val *v;

    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            int rc = reply_flatten(r->element[i], out, err);

            if (rc != 0)
                return rc;
        }
        return 0;
    }
    v = &out->vals[out->n];
    memset(v, 0, sizeof(*v));
    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        v->type = CACHE_VAL_INT;
        v->num = r->integer;
        break;
    case REDIS_REPLY_NIL:
        v->type = CACHE_VAL_NIL;
        break;
    default: /* STRING, STATUS (reply_count let nothing else through) */
        v->type = CACHE_VAL_STR;
        if (copy_bulk(r, &v->str, &v->len, err) != 0)
            return TX_ENOMEM;
        break;
    }
    out->n++;
    return 0;
}

static bool is_noscript(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && has_prefix(r->str, r->len, "NOSCRIPT");
}

static int script_load(struct cache_conn *c, const struct cache_script *s, struct tx_err *err)
{
    const char *argv[3] = { "SCRIPT", "LOAD", s->src };
    size_t len[3] = { 6, 4, s->len };
    redisReply *r = NULL;
    int rc;

    rc = command_argv(c, 3, argv, len, &r, "SCRIPT LOAD", err);
    if (rc != 0)
        return rc;
    if (r->type == REDIS_REPLY_ERROR)
        rc = reply_error(r, "SCRIPT LOAD", err);
    else if (r->type != REDIS_REPLY_STRING)
        rc = reply_unexpected(r, "SCRIPT LOAD", err);
    else if (r->len != 40 || memcmp(r->str, s->sha1, 40) != 0)
        rc = tx_err_set(err, TX_EIO, "redis: SCRIPT LOAD returned SHA1 %.*s, expected %s",
                        r->len > 64 ? 64 : (int) r->len, r->str, s->sha1);
    freeReplyObject(r);
    return rc;
}

int cache_eval(struct cache_conn *c, const struct cache_script *s, const char *const *keys,
               size_t nkeys, const char *const *args, size_t nargs, struct cache_reply *out,
               struct tx_err *err)
{
    const char **argv = NULL;
    size_t *argvlen = NULL;
    redisReply *r = NULL;
    char nkeys_str[24];
    size_t argc;
    int rc;

    if (out != NULL) {
        out->vals = NULL;
        out->n = 0;
    }
    if (s == NULL)
        return tx_err_set(err, TX_EINVAL, "redis: no script");
    if ((nkeys > 0 && keys == NULL) || (nargs > 0 && args == NULL) || nkeys > INT_MAX / 4 ||
        nargs > INT_MAX / 4)
        return tx_err_set(err, TX_EINVAL, "redis: bad script keys or arguments");
    argc = 3 + nkeys + nargs;
    argv = calloc(argc, sizeof(*argv));
    argvlen = calloc(argc, sizeof(*argvlen));
    if (argv == NULL || argvlen == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(nkeys_str, sizeof(nkeys_str), "%zu", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = s->sha1;
    argv[2] = nkeys_str;
    for (size_t i = 0; i < nkeys + nargs; i++) {
        const char *a = i < nkeys ? keys[i] : args[i - nkeys];

        if (a == NULL) {
            rc = tx_err_set(err, TX_EINVAL, "redis: script key or argument %zu is NULL", i);
            goto out;
        }
        argv[3 + i] = a;
    }
    for (size_t i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    rc = conn_ready(c, err);
    if (rc != 0)
        goto out;
    rc = command_argv(c, (int) argc, argv, argvlen, &r, "EVALSHA", err);
    if (rc != 0)
        goto out;
    if (is_noscript(r)) {
        freeReplyObject(r);
        r = NULL;
        rc = script_load(c, s, err);
        if (rc != 0)
            goto out;
        rc = command_argv(c, (int) argc, argv, argvlen, &r, "EVALSHA", err);
        if (rc != 0)
            goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = reply_error(r, "script", err);
        goto out;
    }
    if (out != NULL) {
        size_t n = 0;

        rc = reply_count(r, &n, err);
        if (rc != 0)
            goto out;
        if (n > 0) {
            out->vals = calloc(n, sizeof(*out->vals));
            if (out->vals == NULL) {
                rc = tx_err_set(err, TX_ENOMEM, "out of memory");
                goto out;
            }
        }
        rc = reply_flatten(r, out, err);
        if (rc != 0)
            cache_reply_cleanup(out);
    }
out:
    if (r != NULL)
        freeReplyObject(r);
    free(argv);
    free(argvlen);
    return rc;
}
