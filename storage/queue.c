#include "storage/queue.h"

#include "common/tx_time.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_NAME               "txpipe"
#define DEFAULT_HEARTBEAT_S        30
#define MAX_HEARTBEAT_S            3600
#define DEFAULT_CONNECT_TIMEOUT_MS 5000L
#define DEFAULT_CONFIRM_TIMEOUT_MS 10000L
#define MAX_TIMEOUT_MS             600000L
#define DEFAULT_WINDOW             256u
#define MAX_WINDOW                 65535u
#define DEFAULT_MAX_BODY           ((size_t) 16 * 1024 * 1024)
#define MAX_PREFETCH               65535u
#define MAX_BATCH_WAIT_MS          600000L
#define FRAME_MAX                  131072
#define CHANNEL                    1 /* each connection carries one channel */
#define SHORTSTR_MAX               255
#define HEADER_KEY_MAX             128
#define BACKOFF_MIN_MS             100L
#define BACKOFF_MAX_MS             5000L
#define STOP_POLL_MS               200L /* longest wait before *stop is looked at again */
#define ACK_LINGER_MS              10L  /* longest an ack waits for more to group with it */
#define DRAIN_QUIET_MS             100L /* stop: no delivery for this long = none in flight */
#define SLEEP_SLICE_MS             50L
#define CONTENT_TYPE               "application/json"
#define DELIVERY_COUNT_HEADER      "x-delivery-count"

/* Publishers send events of a few hundred bytes (larger bodies are split into frames) and
 * receive only confirms: rabbitmq-c's inbound and outbound buffers are frame_max each, per
 * connection, and the gateway has one publisher per upload slot. */
#define PUB_FRAME_MAX 16384

/* ---- connection (shared by publisher, consumer and the one-shot helpers) ---- */

struct conn {
    struct queue_url url;
    char name[SHORTSTR_MAX + 1];
    int heartbeat_s; /* 0: disabled */
    int frame_max;   /* asked for at login; 0: FRAME_MAX */
    long connect_timeout_ms;
    amqp_connection_state_t st; /* NULL when not connected */
    bool blocked;               /* connection.blocked received (resource alarm) */
    bool channel_closed;        /* only the channel was closed: the connection still works */
    char blocked_reason[SHORTSTR_MAX + 1];
};

static void ms_to_tv(long ms, struct timeval *tv)
{
    if (ms < 0)
        ms = 0;
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* Copies an AMQP short string into a NUL-terminated buffer of cap bytes (truncating). */
static void bytes_copy(char *dst, size_t cap, amqp_bytes_t b)
{
    size_t n = b.len < cap - 1 ? b.len : cap - 1;

    if (n > 0)
        memcpy(dst, b.bytes, n);
    dst[n] = '\0';
}

static int bounded_timeout(long v, long def, const char *what, long *out, struct tx_err *err)
{
    if (v == 0)
        v = def;
    if (v < 0 || v > MAX_TIMEOUT_MS)
        return tx_err_set(err, TX_EINVAL, "%s must be 0..%ld ms", what, MAX_TIMEOUT_MS);
    *out = v;
    return 0;
}

/* Validates and copies the connection part of cfg into c (not connected). */
static int conn_init(struct conn *c, const struct queue_config *cfg, struct tx_err *err)
{
    int rc;

    memset(c, 0, sizeof(*c));
    if (cfg == NULL || cfg->url == NULL)
        return tx_err_set(err, TX_EINVAL, "queue config without url");
    rc = queue_url_parse(cfg->url, &c->url, err);
    if (rc != 0)
        return rc;
    if (cfg->name != NULL && strlen(cfg->name) > SHORTSTR_MAX)
        return tx_err_set(err, TX_EINVAL, "connection name longer than %d bytes", SHORTSTR_MAX);
    snprintf(c->name, sizeof(c->name), "%s", cfg->name != NULL ? cfg->name : DEFAULT_NAME);
    if (cfg->heartbeat_s > MAX_HEARTBEAT_S)
        return tx_err_set(err, TX_EINVAL, "heartbeat must be at most %d s", MAX_HEARTBEAT_S);
    c->heartbeat_s = cfg->heartbeat_s == 0  ? DEFAULT_HEARTBEAT_S
                     : cfg->heartbeat_s < 0 ? 0
                                            : cfg->heartbeat_s;
    return bounded_timeout(cfg->connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT_MS, "connect timeout",
                           &c->connect_timeout_ms, err);
}

/* Forgets the connection without any protocol exchange (it is broken or being abandoned). */
static void conn_drop(struct conn *c)
{
    if (c->st != NULL)
        amqp_destroy_connection(c->st);
    c->st = NULL;
    c->blocked = false;
    c->channel_closed = false;
    c->blocked_reason[0] = '\0';
}

/* ---- the one place where rabbitmq-c outcomes become tx statuses ---- */

/* A library status (amqp_status_enum) as a tx status, with what failed in err. */
static int lib_fail(int status, const char *what, struct tx_err *err)
{
    int code;

    switch (status) {
    case AMQP_STATUS_TIMEOUT:
        code = TX_ETIMEDOUT;
        break;
    case AMQP_STATUS_HEARTBEAT_TIMEOUT:
    case AMQP_STATUS_CONNECTION_CLOSED:
    case AMQP_STATUS_SOCKET_ERROR:
    case AMQP_STATUS_SOCKET_CLOSED:
    case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED:
    case AMQP_STATUS_TCP_ERROR:
    case AMQP_STATUS_SSL_ERROR:
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
        code = TX_EUNAVAIL;
        break;
    case AMQP_STATUS_NO_MEMORY:
        code = TX_ENOMEM;
        break;
    case AMQP_STATUS_BAD_URL:
    case AMQP_STATUS_INVALID_PARAMETER:
        code = TX_EINVAL;
        break;
    case AMQP_STATUS_TABLE_TOO_BIG:
        code = TX_ETOOBIG;
        break;
    default:
        code = TX_EIO;
        break;
    }
    return tx_err_set(err, code, "%s: %s", what, amqp_error_string2(status));
}

/* An AMQP reply code (connection.close / channel.close / basic.return) as a tx status. */
static int reply_code_status(unsigned code)
{
    switch (code) {
    case 311: /* CONTENT_TOO_LARGE */
        return TX_ETOOBIG;
    case 312: /* NO_ROUTE */
    case 313: /* NO_CONSUMERS */
    case 403: /* ACCESS_REFUSED */
    case 406: /* PRECONDITION_FAILED */
    case 530: /* NOT_ALLOWED */
        return TX_EREJECT;
    case 404: /* NOT_FOUND */
        return TX_ENOTFOUND;
    case 320: /* CONNECTION_FORCED */
    case 405: /* RESOURCE_LOCKED */
    case 506: /* RESOURCE_ERROR */
    case 541: /* INTERNAL_ERROR */
        return TX_EUNAVAIL;
    default: /* 501-505 frame/syntax/command errors, 540 NOT_IMPLEMENTED, unknown */
        return TX_EIO;
    }
}

/*
 * A method that ends the channel or the connection (a server exception, or such a frame read in
 * a loop): answers it with close-ok as the protocol asks and returns the translated status. The
 * caller then drops the connection (each carries a single channel).
 */
static int server_close(struct conn *c, const amqp_method_t *m, const char *what,
                        struct tx_err *err)
{
    unsigned code;
    amqp_bytes_t text;
    const char *scope;

    if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *cc = m->decoded;
        amqp_connection_close_ok_t ok = { 0 };

        code = cc->reply_code;
        text = cc->reply_text;
        scope = "connection";
        if (c->st != NULL)
            (void) amqp_send_method(c->st, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
    else if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *cc = m->decoded;
        amqp_channel_close_ok_t ok = { 0 };

        code = cc->reply_code;
        text = cc->reply_text;
        scope = "channel";
        c->channel_closed = true;
        if (c->st != NULL)
            (void) amqp_send_method(c->st, CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    }
    else {
        return tx_err_set(err, TX_EIO, "%s: unexpected method %s", what, amqp_method_name(m->id));
    }
    return tx_err_set(err, reply_code_status(code), "%s: broker closed the %s: %u %.*s", what,
                      scope, code, (int) (text.len > 200 ? 200 : text.len),
                      (const char *) text.bytes);
}

/* All three outcomes of a synchronous method. 0 or a tx status (then drop the connection). */
static int rpc_result(struct conn *c, amqp_rpc_reply_t r, const char *what, struct tx_err *err)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return lib_fail(r.library_error, what, err);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        return server_close(c, &r.reply, what, err);
    case AMQP_RESPONSE_NONE:
        return tx_err_set(err, TX_EIO, "%s: no reply from the broker", what);
    }
    return tx_err_set(err, TX_EIO, "%s: unknown reply type %d", what, (int) r.reply_type);
}

/* Closes politely (connection.close and its -ok, bounded by the RPC timeout), then frees. */
static int conn_close(struct conn *c, struct tx_err *err)
{
    int rc = 0;

    if (c->st == NULL)
        return 0;
    rc = rpc_result(c, amqp_connection_close(c->st, AMQP_REPLY_SUCCESS), "connection.close", err);
    conn_drop(c);
    return rc;
}

/* Gives up a connection after an error: politely when only its channel failed, else at once. */
static void conn_abandon(struct conn *c)
{
    if (c->st != NULL && c->channel_closed)
        (void) conn_close(c, NULL);
    conn_drop(c);
}

/* Opens the TCP connection, logs in and opens the channel. On failure nothing stays open. */
static int conn_open(struct conn *c, struct tx_err *err)
{
    amqp_socket_t *sock;
    struct timeval tv;
    amqp_table_entry_t caps[2];
    amqp_table_entry_t props[2];
    amqp_table_t props_table;
    char what[1024];
    int rc;

    conn_drop(c);
    c->st = amqp_new_connection();
    if (c->st == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "amqp_new_connection failed");
        goto out;
    }
    sock = amqp_tcp_socket_new(c->st); /* owned by the connection */
    if (sock == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "amqp_tcp_socket_new failed");
        goto out;
    }
    ms_to_tv(c->connect_timeout_ms, &tv);
    snprintf(what, sizeof(what), "connect %s:%d", c->url.host, c->url.port);
    rc = amqp_socket_open_noblock(sock, c->url.host, c->url.port, &tv);
    if (rc != AMQP_STATUS_OK) {
        rc = lib_fail(rc, what, err);
        goto out;
    }
    rc = amqp_set_handshake_timeout(c->st, &tv);
    if (rc == AMQP_STATUS_OK)
        rc = amqp_set_rpc_timeout(c->st, &tv);
    if (rc != AMQP_STATUS_OK) {
        rc = lib_fail(rc, "set timeouts", err);
        goto out;
    }

    /* Ask for connection.blocked notifications and broker-side consumer cancellation. */
    caps[0].key = amqp_cstring_bytes("connection.blocked");
    caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[0].value.value.boolean = 1;
    caps[1].key = amqp_cstring_bytes("consumer_cancel_notify");
    caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    caps[1].value.value.boolean = 1;
    props[0].key = amqp_cstring_bytes("capabilities");
    props[0].value.kind = AMQP_FIELD_KIND_TABLE;
    props[0].value.value.table.num_entries = 2;
    props[0].value.value.table.entries = caps;
    props[1].key = amqp_cstring_bytes("connection_name");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = amqp_cstring_bytes(c->name);
    props_table.num_entries = 2;
    props_table.entries = props;

    snprintf(what, sizeof(what), "login to %s:%d vhost '%s' as '%s'", c->url.host, c->url.port,
             c->url.vhost, c->url.user);
    rc = rpc_result(c,
                    amqp_login_with_properties(c->st, c->url.vhost, 0,
                                               c->frame_max > 0 ? c->frame_max : FRAME_MAX,
                                               c->heartbeat_s, &props_table, AMQP_SASL_METHOD_PLAIN,
                                               c->url.user, c->url.password),
                    what, err);
    if (rc != 0)
        goto out;
    (void) amqp_channel_open(c->st, CHANNEL);
    rc = rpc_result(c, amqp_get_rpc_reply(c->st), "channel.open", err);
out:
    if (rc != 0)
        conn_abandon(c);
    return rc;
}

/*
 * Waits for one frame until deadline_ms (tx_time_mono_ms; a past deadline reads only what is
 * already available). Heartbeats are sent and checked inside. 1: a frame, 0: deadline passed,
 * negative: the connection is unusable (drop it).
 */
static int conn_wait_frame(struct conn *c, int64_t deadline_ms, amqp_frame_t *f, struct tx_err *err)
{
    struct timeval tv;
    int64_t left = deadline_ms - tx_time_mono_ms();
    int rc;

    ms_to_tv(left > 0 ? (long) left : 0, &tv);
    rc = amqp_simple_wait_frame_noblock(c->st, f, &tv);
    if (rc == AMQP_STATUS_OK)
        return 1;
    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    return lib_fail(rc, "read from broker", err);
}

/* Frees the memory of frames already handled on f's channel (they were copied out). */
static void conn_release(struct conn *c, const amqp_frame_t *f)
{
    if (c->st != NULL)
        amqp_maybe_release_buffers_on_channel(c->st, f->channel);
}

/*
 * Handles methods every connection user treats alike: connection.close, channel.close,
 * connection.blocked/unblocked. 1 handled, 0 not ours, negative: the connection is unusable.
 */
static int conn_common_method(struct conn *c, const amqp_frame_t *f, const char *what,
                              struct tx_err *err)
{
    const amqp_method_t *m = &f->payload.method;

    switch (m->id) {
    case AMQP_CONNECTION_CLOSE_METHOD:
    case AMQP_CHANNEL_CLOSE_METHOD:
        return server_close(c, m, what, err);
    case AMQP_CONNECTION_BLOCKED_METHOD: {
        const amqp_connection_blocked_t *b = m->decoded;

        c->blocked = true;
        bytes_copy(c->blocked_reason, sizeof(c->blocked_reason), b->reason);
        return 1;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        c->blocked = false;
        c->blocked_reason[0] = '\0';
        return 1;
    default:
        return f->channel == 0 ? 1 : 0; /* other channel-0 methods are not for us */
    }
}

/* Waits until the socket accepts more data, so a broker that stopped reading cannot hang us. */
static int conn_wait_writable(struct conn *c, long timeout_ms, struct tx_err *err)
{
    struct pollfd pfd = { .fd = amqp_get_sockfd(c->st), .events = POLLOUT };
    int rc;

    if (pfd.fd < 0)
        return tx_err_set(err, TX_EUNAVAIL, "socket closed");
    do {
        rc = poll(&pfd, 1, (int) timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return tx_err_set(err, TX_EIO, "poll: %s", strerror(errno));
    if (rc == 0)
        return tx_err_set(err, TX_ETIMEDOUT,
                          "broker did not read for %ld ms (send buffer full)%s%s", timeout_ms,
                          c->blocked ? "; blocked: " : "", c->blocked ? c->blocked_reason : "");
    if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
        return tx_err_set(err, TX_EUNAVAIL, "connection to the broker broke");
    return 0;
}

/* Reads an integer-valued entry of a field table; 0 when absent or not an integer. */
static uint64_t table_uint(const amqp_table_t *t, const char *key)
{
    size_t klen = strlen(key);

    for (int i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];

        if (e->key.len != klen || memcmp(e->key.bytes, key, klen) != 0)
            continue;
        switch (e->value.kind) {
        case AMQP_FIELD_KIND_I8:
            return e->value.value.i8 > 0 ? (uint64_t) e->value.value.i8 : 0;
        case AMQP_FIELD_KIND_U8:
            return e->value.value.u8;
        case AMQP_FIELD_KIND_I16:
            return e->value.value.i16 > 0 ? (uint64_t) e->value.value.i16 : 0;
        case AMQP_FIELD_KIND_U16:
            return e->value.value.u16;
        case AMQP_FIELD_KIND_I32:
            return e->value.value.i32 > 0 ? (uint64_t) e->value.value.i32 : 0;
        case AMQP_FIELD_KIND_U32:
            return e->value.value.u32;
        case AMQP_FIELD_KIND_I64:
            return e->value.value.i64 > 0 ? (uint64_t) e->value.value.i64 : 0;
        case AMQP_FIELD_KIND_U64:
            return e->value.value.u64;
        default:
            return 0;
        }
    }
    return 0;
}

/* ---- URL helpers ---- */

static int copy_part(char *dst, size_t cap, const char *src, const char *what, struct tx_err *err)
{
    size_t n = strlen(src);

    if (n >= cap)
        return tx_err_set(err, TX_EINVAL, "AMQP URL: %s longer than %zu bytes", what, cap - 1);
    memcpy(dst, src, n + 1);
    return 0;
}

int queue_url_parse(const char *url, struct queue_url *out, struct tx_err *err)
{
    struct amqp_connection_info ci;
    char *copy = NULL;
    int rc;

    if (url == NULL || out == NULL)
        return tx_err_set(err, TX_EINVAL, "AMQP URL missing");
    if (strncmp(url, "amqps://", 8) == 0)
        return tx_err_set(err, TX_EINVAL, "AMQP URL: amqps:// (TLS) is not supported");
    copy = strdup(url);
    if (copy == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
        rc = tx_err_set(err, TX_EINVAL,
                        "invalid AMQP URL (expected amqp://user:password@host:port/vhost, "
                        "special characters percent-encoded, no query string)");
        goto out;
    }
    if (ci.ssl) {
        rc = tx_err_set(err, TX_EINVAL, "AMQP URL: amqps:// (TLS) is not supported");
        goto out;
    }
    if (ci.port <= 0 || ci.port > 65535) {
        rc = tx_err_set(err, TX_EINVAL, "AMQP URL: port must be 1..65535");
        goto out;
    }
    if (ci.host[0] == '\0') {
        rc = tx_err_set(err, TX_EINVAL, "AMQP URL: empty host");
        goto out;
    }
    rc = copy_part(out->user, sizeof(out->user), ci.user, "user", err);
    if (rc == 0)
        rc = copy_part(out->password, sizeof(out->password), ci.password, "password", err);
    if (rc == 0)
        rc = copy_part(out->host, sizeof(out->host), ci.host, "host", err);
    if (rc == 0)
        rc = copy_part(out->vhost, sizeof(out->vhost), ci.vhost, "vhost", err);
    if (rc != 0)
        goto out;
    out->port = ci.port;
out:
    free(copy);
    return rc;
}

/* Appends s percent-encoded (RFC 3986 unreserved characters kept) at out[*pos]. */
static void pct_encode(char *out, size_t outlen, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char) *s;
        bool keep = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';

        if (keep && *pos + 1 < outlen) {
            out[(*pos)++] = (char) ch;
        }
        else if (!keep && *pos + 3 < outlen) {
            out[(*pos)++] = '%';
            out[(*pos)++] = hex[ch >> 4];
            out[(*pos)++] = hex[ch & 15];
        }
        else {
            break;
        }
    }
    out[*pos] = '\0';
}

char *queue_url_redact(const char *url, char *out, size_t outlen)
{
    struct queue_url u;
    size_t pos;
    int n;

    if (out == NULL || outlen == 0)
        return out;
    if (queue_url_parse(url, &u, NULL) != 0) {
        snprintf(out, outlen, "%s", "<invalid amqp url>");
        return out;
    }
    n = snprintf(out, outlen, "amqp://");
    pos = (size_t) n < outlen ? (size_t) n : outlen - 1;
    pct_encode(out, outlen, &pos, u.user);
    n = snprintf(out + pos, outlen - pos, strchr(u.host, ':') != NULL ? "@[%s]:%d/" : "@%s:%d/",
                 u.host, u.port);
    pos += (size_t) n < outlen - pos ? (size_t) n : outlen - pos - 1;
    pct_encode(out, outlen, &pos, u.vhost);
    return out;
}

/* ---- publisher ---- */

/* One sent message of the current call, at ring[index % window]. */
struct slot {
    int64_t sent_ms;
    bool done;     /* the broker acked or nacked it */
    bool returned; /* a basic.return matched it */
};

/* A basic.return being read: its method, then a header frame, then body frames. */
struct returned {
    int stage; /* 0 none, 1 waiting for the header, 2 reading the body */
    unsigned code;
    char text[SHORTSTR_MAX + 1];
    char routing_key[SHORTSTR_MAX + 1];
    char message_id[SHORTSTR_MAX + 1];
    bool has_message_id;
    uint64_t body_size;
    uint64_t body_left;
};

struct queue_publisher {
    struct conn c;
    unsigned window;
    long confirm_timeout_ms;
    struct slot *ring; /* window entries */
    uint64_t next_tag; /* delivery tag of the next basic.publish on the channel */
    struct returned ret;
    /* the call in progress (msgs == NULL between calls: confirms then are stale) */
    const struct queue_msg *msgs;
    size_t n;
    uint64_t base_tag; /* tag of msgs[0] */
    size_t sent;       /* messages sent */
    size_t low;        /* lowest index the broker has not settled yet */
    size_t fail_idx;   /* lowest failed index, SIZE_MAX for none */
    int fail_code;
    char fail_why[200];
    size_t last_confirmed;
    /* reconnect back-off */
    long backoff_ms;
    int64_t next_attempt_ms;
    char last_error[sizeof(((struct tx_err *) 0)->msg)];
};

static struct slot *slot_of(struct queue_publisher *p, size_t i)
{
    return &p->ring[i % p->window];
}

static void mark_failed(struct queue_publisher *p, size_t i, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void mark_failed(struct queue_publisher *p, size_t i, int code, const char *fmt, ...)
{
    va_list ap;

    if (i >= p->fail_idx)
        return;
    p->fail_idx = i;
    p->fail_code = code;
    va_start(ap, fmt);
    vsnprintf(p->fail_why, sizeof(p->fail_why), fmt, ap);
    va_end(ap);
}

/* basic.ack / basic.nack for tag (and, with multiple, every earlier unsettled tag). */
static void pub_settle(struct queue_publisher *p, uint64_t tag, bool multiple, bool nack)
{
    size_t hi, lo;

    if (p->msgs == NULL || tag < p->base_tag || tag - p->base_tag >= p->sent)
        return; /* a late confirm of an earlier call, or nonsense: not ours */
    hi = (size_t) (tag - p->base_tag);
    lo = multiple ? p->low : hi;
    for (size_t i = lo; i <= hi; i++) {
        struct slot *s = slot_of(p, i);

        if (i < p->low || s->done)
            continue;
        s->done = true;
        if (nack)
            mark_failed(p, i, TX_EREJECT, "nacked by the broker");
    }
    while (p->low < p->sent && slot_of(p, p->low)->done)
        p->low++;
}

/* A whole basic.return was read: find the message it returns (the oldest matching one). */
static void pub_returned(struct queue_publisher *p)
{
    struct returned *r = &p->ret;

    r->stage = 0;
    if (p->msgs == NULL)
        return;
    for (size_t i = p->low; i < p->sent; i++) {
        const struct queue_msg *m = &p->msgs[i];
        struct slot *s = slot_of(p, i);
        bool has_id = m->message_id != NULL && m->message_id[0] != '\0';

        if (s->done || s->returned || m->len != r->body_size ||
            strcmp(m->routing_key, r->routing_key) != 0 || has_id != r->has_message_id ||
            (has_id && strcmp(m->message_id, r->message_id) != 0))
            continue;
        s->returned = true;
        mark_failed(p, i, TX_EREJECT, "returned by the broker: %u %s (routing key '%s')", r->code,
                    r->text, r->routing_key);
        return;
    }
    /* Unmatched (should not happen): blame the oldest unsettled message, a safe lower bound. */
    mark_failed(p, p->low, TX_EREJECT, "a message was returned by the broker: %u %s (key '%s')",
                r->code, r->text, r->routing_key);
}

/* Handles one frame on the publisher's connection. Negative: the connection is unusable. */
static int pub_frame(struct queue_publisher *p, const amqp_frame_t *f, struct tx_err *err)
{
    struct returned *r = &p->ret;
    int rc;

    if (f->frame_type == AMQP_FRAME_METHOD) {
        rc = conn_common_method(&p->c, f, "publish", err);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        switch (f->payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *a = f->payload.method.decoded;

            pub_settle(p, a->delivery_tag, a->multiple, false);
            return 0;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *a = f->payload.method.decoded;

            pub_settle(p, a->delivery_tag, a->multiple, true);
            return 0;
        }
        case AMQP_BASIC_RETURN_METHOD: {
            const amqp_basic_return_t *m = f->payload.method.decoded;

            if (r->stage != 0)
                return tx_err_set(err, TX_EIO, "publish: basic.return inside a return");
            memset(r, 0, sizeof(*r));
            r->stage = 1;
            r->code = m->reply_code;
            bytes_copy(r->text, sizeof(r->text), m->reply_text);
            bytes_copy(r->routing_key, sizeof(r->routing_key), m->routing_key);
            return 0;
        }
        default:
            return 0;
        }
    }
    if (f->channel != CHANNEL || r->stage == 0)
        return 0;
    if (f->frame_type == AMQP_FRAME_HEADER && r->stage == 1) {
        const amqp_basic_properties_t *props = f->payload.properties.decoded;

        if (props != NULL && (props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)) {
            r->has_message_id = props->message_id.len > 0;
            bytes_copy(r->message_id, sizeof(r->message_id), props->message_id);
        }
        r->body_size = r->body_left = f->payload.properties.body_size;
        r->stage = 2;
        if (r->body_left == 0)
            pub_returned(p);
        return 0;
    }
    if (f->frame_type == AMQP_FRAME_BODY && r->stage == 2) {
        size_t len = f->payload.body_fragment.len;

        if (len > r->body_left)
            return tx_err_set(err, TX_EIO, "publish: returned message body longer than announced");
        r->body_left -= len;
        if (r->body_left == 0)
            pub_returned(p);
        return 0;
    }
    return tx_err_set(err, TX_EIO, "publish: unexpected frame type %u inside a basic.return",
                      (unsigned) f->frame_type);
}

/* Reads whatever input is already there (heartbeats, closes, blocked, stale confirms). */
static int pub_drain(struct queue_publisher *p, struct tx_err *err)
{
    amqp_frame_t f;
    int rc;

    for (;;) {
        rc = conn_wait_frame(&p->c, 0, &f, err);
        if (rc <= 0)
            return rc;
        rc = pub_frame(p, &f, err);
        conn_release(&p->c, &f);
        if (rc < 0)
            return rc;
    }
}

static int pub_connect(struct queue_publisher *p, struct tx_err *err)
{
    int rc;

    rc = conn_open(&p->c, err);
    if (rc != 0)
        return rc;
    (void) amqp_confirm_select(p->c.st, CHANNEL);
    rc = rpc_result(&p->c, amqp_get_rpc_reply(p->c.st), "confirm.select", err);
    if (rc != 0) {
        conn_abandon(&p->c);
        return rc;
    }
    p->next_tag = 1;
    memset(&p->ret, 0, sizeof(p->ret));
    return 0;
}

/*
 * Makes the connection usable: checks an open one (reading pending input), replaces a dead one
 * at once, and otherwise reconnects unless backing off (force ignores the back-off).
 */
static int pub_ready(struct queue_publisher *p, bool force, struct tx_err *err)
{
    struct tx_err e;
    int64_t now;
    int rc;

    if (p->c.st != NULL) {
        tx_err_clear(&e);
        rc = pub_drain(p, &e);
        if (rc == 0 && p->c.blocked)
            return tx_err_set(err, TX_EUNAVAIL, "broker is blocking publishers: %s",
                              p->c.blocked_reason);
        if (rc == 0)
            return 0;
        conn_abandon(&p->c); /* it had worked: try a new one right away */
        p->backoff_ms = 0;
        p->next_attempt_ms = 0;
    }
    now = tx_time_mono_ms();
    if (!force && now < p->next_attempt_ms)
        return tx_err_set(err, TX_EUNAVAIL, "broker unavailable (next attempt in %lld ms): %s",
                          (long long) (p->next_attempt_ms - now), p->last_error);
    tx_err_clear(&e);
    rc = pub_connect(p, &e);
    if (rc != 0) {
        p->backoff_ms = p->backoff_ms == 0                   ? BACKOFF_MIN_MS
                        : p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                             : p->backoff_ms * 2;
        p->next_attempt_ms = tx_time_mono_ms() + p->backoff_ms;
        snprintf(p->last_error, sizeof(p->last_error), "%s", e.msg);
        return tx_err_set(err, rc, "%s", e.msg);
    }
    p->backoff_ms = 0;
    p->next_attempt_ms = 0;
    p->last_error[0] = '\0';
    return 0;
}

struct queue_publisher *queue_publisher_create(const struct queue_config *cfg, struct tx_err *err)
{
    struct queue_publisher *p = NULL;
    struct queue_publisher *ret = NULL;
    long confirm_ms;

    if (cfg == NULL) {
        tx_err_set(err, TX_EINVAL, "queue config missing");
        goto out;
    }
    if (cfg->window > MAX_WINDOW) {
        tx_err_set(err, TX_EINVAL, "publisher window must be 0..%u", MAX_WINDOW);
        goto out;
    }
    if (bounded_timeout(cfg->confirm_timeout_ms, DEFAULT_CONFIRM_TIMEOUT_MS, "confirm timeout",
                        &confirm_ms, err) != 0)
        goto out;
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    if (conn_init(&p->c, cfg, err) != 0)
        goto out;
    p->c.frame_max = PUB_FRAME_MAX;
    p->window = cfg->window == 0 ? DEFAULT_WINDOW : cfg->window;
    p->confirm_timeout_ms = confirm_ms;
    p->ring = calloc(p->window, sizeof(*p->ring));
    if (p->ring == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    ret = p;
    p = NULL;
out:
    queue_publisher_destroy(p);
    return ret;
}

void queue_publisher_destroy(struct queue_publisher *p)
{
    if (p == NULL)
        return;
    (void) conn_close(&p->c, NULL);
    free(p->ring);
    free(p);
}

static int check_msgs(const char *exchange, const struct queue_msg *msgs, size_t n,
                      struct tx_err *err)
{
    if (exchange == NULL || strlen(exchange) > SHORTSTR_MAX)
        return tx_err_set(err, TX_EINVAL, "exchange name missing or longer than %d bytes",
                          SHORTSTR_MAX);
    if (n > 0 && msgs == NULL)
        return tx_err_set(err, TX_EINVAL, "no messages");
    for (size_t i = 0; i < n; i++) {
        const struct queue_msg *m = &msgs[i];

        if (m->routing_key == NULL || strlen(m->routing_key) > SHORTSTR_MAX)
            return tx_err_set(err, TX_EINVAL, "message %zu: routing key missing or too long", i);
        if ((m->message_id != NULL && strlen(m->message_id) > SHORTSTR_MAX) ||
            (m->correlation_id != NULL && strlen(m->correlation_id) > SHORTSTR_MAX))
            return tx_err_set(err, TX_EINVAL, "message %zu: message or correlation id too long", i);
        if (m->body == NULL && m->len > 0)
            return tx_err_set(err, TX_EINVAL, "message %zu: NULL body", i);
        if (m->nheaders > QUEUE_HEADERS_MAX || (m->nheaders > 0 && m->headers == NULL))
            return tx_err_set(err, TX_EINVAL, "message %zu: at most %d headers", i,
                              QUEUE_HEADERS_MAX);
        for (size_t h = 0; h < m->nheaders; h++) {
            const struct queue_header *hd = &m->headers[h];

            if (hd->key == NULL || hd->key[0] == '\0' || strlen(hd->key) > HEADER_KEY_MAX ||
                hd->value == NULL)
                return tx_err_set(err, TX_EINVAL, "message %zu: bad header %zu", i, h);
        }
    }
    return 0;
}

/* Sends msgs[p->sent]. Negative: the connection is unusable. */
static int pub_send(struct queue_publisher *p, const char *exchange, struct tx_err *err)
{
    const struct queue_msg *m = &p->msgs[p->sent];
    amqp_table_entry_t headers[QUEUE_HEADERS_MAX];
    amqp_basic_properties_t props;
    amqp_bytes_t body;
    struct slot *s;
    int64_t now = tx_time_mono_ms();
    int rc;

    memset(&props, 0, sizeof(props));
    props._flags =
        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
    props.content_type = amqp_cstring_bytes(CONTENT_TYPE);
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.timestamp = (uint64_t) (tx_time_now_ms() / 1000);
    if (m->message_id != NULL && m->message_id[0] != '\0') {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(m->message_id);
    }
    if (m->correlation_id != NULL && m->correlation_id[0] != '\0') {
        props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props.correlation_id = amqp_cstring_bytes(m->correlation_id);
    }
    if (m->nheaders > 0) {
        for (size_t i = 0; i < m->nheaders; i++) {
            headers[i].key = amqp_cstring_bytes(m->headers[i].key);
            headers[i].value.kind = AMQP_FIELD_KIND_UTF8;
            headers[i].value.value.bytes = amqp_cstring_bytes(m->headers[i].value);
        }
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers.num_entries = (int) m->nheaders;
        props.headers.entries = headers;
    }
    body.len = m->len;
    body.bytes = (void *) m->body;

    rc = conn_wait_writable(&p->c, p->confirm_timeout_ms, err);
    if (rc != 0)
        return rc;
    rc = amqp_basic_publish(p->c.st, CHANNEL, amqp_cstring_bytes(exchange),
                            amqp_cstring_bytes(m->routing_key), 1, 0, &props, body);
    if (rc != AMQP_STATUS_OK)
        return lib_fail(rc, "basic.publish", err);
    s = slot_of(p, p->sent);
    s->sent_ms = now;
    s->done = false;
    s->returned = false;
    p->sent++;
    p->next_tag++;
    return 0;
}

/* Waits for one frame (or the confirm deadline of the oldest unsettled message) and handles it. */
static int pub_wait(struct queue_publisher *p, struct tx_err *err)
{
    amqp_frame_t f;
    int64_t deadline = slot_of(p, p->low)->sent_ms + p->confirm_timeout_ms;
    int rc;

    rc = conn_wait_frame(&p->c, deadline, &f, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        if (tx_time_mono_ms() < deadline)
            return 0;
        return tx_err_set(err, TX_ETIMEDOUT, "not confirmed within %ld ms%s%s",
                          p->confirm_timeout_ms,
                          p->c.blocked ? " (broker blocking publishers: " : "",
                          p->c.blocked ? p->c.blocked_reason : "");
    }
    rc = pub_frame(p, &f, err);
    conn_release(&p->c, &f);
    return rc;
}

int queue_publish_confirmed(struct queue_publisher *p, const char *exchange,
                            const struct queue_msg *msgs, size_t n, struct tx_err *err)
{
    struct tx_err e;
    int rc;

    if (p == NULL)
        return tx_err_set(err, TX_EINVAL, "no publisher");
    p->last_confirmed = 0;
    rc = check_msgs(exchange, msgs, n, err);
    if (rc != 0)
        return rc;
    if (n == 0)
        return 0;
    tx_err_clear(&e);
    rc = pub_ready(p, false, &e);
    if (rc != 0)
        return tx_err_set(err, rc, "message 0 of %zu: %s", n, e.msg);

    p->msgs = msgs;
    p->n = n;
    p->base_tag = p->next_tag;
    p->sent = 0;
    p->low = 0;
    p->fail_idx = SIZE_MAX;
    rc = 0;
    while (rc == 0 && p->sent < n && p->fail_idx == SIZE_MAX) {
        if (p->sent - p->low >= p->window)
            rc = pub_wait(p, &e);
        else
            rc = pub_send(p, exchange, &e);
    }
    while (rc == 0 && p->low < p->sent)
        rc = pub_wait(p, &e);
    if (rc != 0) {
        /* Lost connection or deadline: what is unsettled is unknown; start afresh next time. */
        mark_failed(p, p->low, rc, "%s", e.msg);
        conn_abandon(&p->c);
    }
    p->last_confirmed = p->fail_idx == SIZE_MAX ? n : p->fail_idx;
    p->msgs = NULL;
    /* Give back the frame-decoding pools between calls (an idle slot keeps no decoded frames). */
    if (p->c.st != NULL)
        amqp_maybe_release_buffers(p->c.st);
    if (p->fail_idx != SIZE_MAX)
        return tx_err_set(err, p->fail_code, "message %zu of %zu: %s", p->fail_idx, n, p->fail_why);
    return 0;
}

size_t queue_publisher_last_confirmed(const struct queue_publisher *p)
{
    return p != NULL ? p->last_confirmed : 0;
}

int queue_publisher_ping(struct queue_publisher *p, struct tx_err *err)
{
    if (p == NULL)
        return tx_err_set(err, TX_EINVAL, "no publisher");
    return pub_ready(p, true, err);
}

/* ---- consumer ---- */

#define RETRY_FIRST_MS 500L
#define RETRY_MAX_MS   30000L
#define RETRY_HOLD_MS  600000L
#define RETRY_LIMIT_MS 600000L  /* longest back-off */
#define HOLD_LIMIT_MS  1500000L /* longest hold: under RabbitMQ's consumer_timeout (30 min) */

/* A delivery in hand: the public view plus the bytes it points to. */
struct held {
    struct held *next;
    int64_t arrived_ms;
    int64_t held_since_ms; /* its first failed attempt (tries > 0) */
    int64_t due_ms;        /* its next attempt (held) */
    long delay_ms;         /* the back-off before that attempt */
    unsigned tries;        /* failed attempts (QUEUE_RETRY or QUEUE_DEFER) so far */
    bool dep;              /* held for QUEUE_RETRY (pauses the consumer), else QUEUE_DEFER */
    struct queue_delivery d;
    char *body; /* inside data[], filled by body frames */
    char data[];
};

/* The delivery being read: basic.deliver, then a header frame, then body frames. */
struct incoming {
    int stage; /* 0 none, 1 waiting for the header, 2 reading the body */
    uint64_t tag;
    int redelivered;
    char routing_key[SHORTSTR_MAX + 1];
    struct held *h; /* NULL while stage < 2 or when too big */
    uint64_t body_size;
    uint64_t got;
};

struct queue_consumer {
    struct conn c;
    char *queue;
    unsigned prefetch;
    size_t max_body;
    queue_event_fn ev;
    void *ev_ctx;
    atomic_int connected;
    char consumer_tag[SHORTSTR_MAX + 1];
    struct incoming in;
    struct held *head; /* received, not yet handled, in delivery order */
    struct held *tail;
    size_t nheld;
    uint64_t ack_tag; /* every delivery up to here is handled and still to be acked */
    unsigned ack_count;
    unsigned ack_every;
    int64_t ack_first_ms; /* when the oldest pending ack was decided */
    unsigned unsettled;   /* received on this channel, not yet acked or nacked to the broker */
    bool draining;        /* stopping: acks are withheld so the broker sends nothing new */
    bool drain_retried;   /* a handler asked for a retry while draining: stop draining now */
    long backoff_ms;
    unsigned attempts;
    uint64_t rng;
    /* Deliveries held for another attempt (QUEUE_RETRY, QUEUE_DEFER), in delivery-tag order.
     * Invariant: no pending grouped ack (ack_tag) is above a held tag, so a basic.ack multiple
     * never covers a held delivery. */
    struct held *rhead;
    size_t nretry;
    size_t ndep; /* of them QUEUE_RETRY: while > 0 no new delivery is handed over */
    struct queue_retry retry;
    atomic_uint held_n; /* nretry, for other threads */
    atomic_int paused;  /* ndep > 0, for other threads */
};

static void emit(struct queue_consumer *c, enum queue_event_type type, const struct tx_err *err,
                 long retry_in_ms, uint32_t count)
{
    struct queue_event ev = {
        .type = type,
        .err = err,
        .retry_in_ms = retry_in_ms,
        .message_count = count,
        .attempt = c->attempts,
    };

    if (c->ev != NULL)
        c->ev(c->ev_ctx, &ev);
}

/* A held delivery's event (HELD, RESUMED, REQUEUED). */
static void emit_held(struct queue_consumer *c, enum queue_event_type type, const struct held *h,
                      long retry_in_ms, int64_t now)
{
    struct queue_event ev = {
        .type = type,
        .retry_in_ms = retry_in_ms,
        .message_count = (uint32_t) c->nretry,
        .attempt = h->tries,
        .message_id = h->d.message_id,
        .held_ms = (long) (now - h->held_since_ms),
        .paused = c->ndep > 0,
    };

    if (c->ev != NULL)
        c->ev(c->ev_ctx, &ev);
}

/* Publishes the hold state to other threads (queue_consumer_held). */
static void held_publish(struct queue_consumer *c)
{
    atomic_store(&c->held_n, (unsigned) c->nretry);
    atomic_store(&c->paused, c->ndep > 0 ? 1 : 0);
}

static void held_free_all(struct queue_consumer *c)
{
    while (c->head != NULL) {
        struct held *h = c->head;

        c->head = h->next;
        free(h);
    }
    while (c->rhead != NULL) {
        struct held *h = c->rhead;

        c->rhead = h->next;
        free(h);
    }
    c->nretry = 0;
    c->ndep = 0;
    held_publish(c);
    c->tail = NULL;
    c->nheld = 0;
    free(c->in.h);
    memset(&c->in, 0, sizeof(c->in));
}

/* The connection is gone: forget everything tied to its channel (the broker redelivers). */
static void cons_lost(struct queue_consumer *c, const struct tx_err *why)
{
    bool was = c->c.st != NULL;

    conn_abandon(&c->c);
    atomic_store(&c->connected, 0);
    held_free_all(c);
    c->ack_tag = 0;
    c->ack_count = 0;
    c->unsettled = 0;
    c->draining = false;
    if (was)
        emit(c, QUEUE_EVENT_DISCONNECTED, why, 0, 0);
}

static int cons_flush_acks(struct queue_consumer *c, struct tx_err *err)
{
    int rc;

    if (c->ack_count == 0)
        return 0;
    rc = amqp_basic_ack(c->c.st, CHANNEL, c->ack_tag, c->ack_count > 1);
    c->unsettled -= c->ack_count < c->unsettled ? c->ack_count : c->unsettled;
    c->ack_count = 0;
    if (rc != AMQP_STATUS_OK)
        return lib_fail(rc, "basic.ack", err);
    return 0;
}

static int cons_nack(struct queue_consumer *c, uint64_t tag, bool requeue, struct tx_err *err)
{
    int rc = amqp_basic_nack(c->c.st, CHANNEL, tag, 0, requeue);

    if (rc != AMQP_STATUS_OK)
        return lib_fail(rc, "basic.nack", err);
    if (c->unsettled > 0)
        c->unsettled--;
    return 0;
}

/*
 * Settles one handled delivery (ACK, REJECT or REQUEUE; holds are not settled). Acks are deferred
 * and grouped into one basic.ack multiple, except above a held delivery's tag: a multiple ack
 * would cover it, so such an ack goes alone (holding is the degraded mode, speed is secondary).
 */
static int cons_settle(struct queue_consumer *c, uint64_t tag, enum queue_disposition d,
                       struct tx_err *err)
{
    int rc;

    switch (d) {
    case QUEUE_ACK:
        if (c->rhead != NULL && tag > c->rhead->d.tag) {
            rc = cons_flush_acks(c, err); /* every grouped tag is below the held ones */
            if (rc != 0)
                return rc;
            rc = amqp_basic_ack(c->c.st, CHANNEL, tag, 0);
            if (rc != AMQP_STATUS_OK)
                return lib_fail(rc, "basic.ack", err);
            if (c->unsettled > 0)
                c->unsettled--;
            return 0;
        }
        if (c->ack_count == 0)
            c->ack_first_ms = tx_time_mono_ms();
        c->ack_tag = tag;
        c->ack_count++;
        return c->ack_count >= c->ack_every && !c->draining ? cons_flush_acks(c, err) : 0;
    case QUEUE_REJECT:
        return cons_nack(c, tag, false, err);
    case QUEUE_REQUEUE:
    default: /* an unknown answer: keep the message */
        /* While draining, a requeue frees credit and the broker would send the message straight
         * back (counting toward the delivery limit): cancel instead of reading more. */
        if (c->draining)
            c->drain_retried = true;
        return cons_nack(c, tag, true, err);
    }
}

/* Puts h on the list of held deliveries, in delivery-tag order. */
static void retry_insert(struct queue_consumer *c, struct held *h)
{
    struct held **pp = &c->rhead;

    while (*pp != NULL && (*pp)->d.tag < h->d.tag)
        pp = &(*pp)->next;
    h->next = *pp;
    *pp = h;
    c->nretry++;
    if (h->dep)
        c->ndep++;
    held_publish(c);
}

/* Takes h off the list of held deliveries (pp points at the link to it). */
static void retry_unlink(struct queue_consumer *c, struct held **pp)
{
    struct held *h = *pp;

    *pp = h->next;
    h->next = NULL;
    c->nretry--;
    if (h->dep)
        c->ndep--;
    held_publish(c);
}

/* New deliveries may be handed over: some are in hand and no QUEUE_RETRY is held. */
static bool has_new(const struct queue_consumer *c)
{
    return c->head != NULL && c->ndep == 0;
}

/*
 * What the handler said about h, which it was handed (h is on no list): settles it and frees
 * it, or holds it for another attempt after its back-off.
 */
static int cons_outcome(struct queue_consumer *c, struct held *h, enum queue_disposition d,
                        struct tx_err *err)
{
    int64_t now = tx_time_mono_ms();
    int rc;

    if (d == QUEUE_RETRY || d == QUEUE_DEFER) {
        if (h->tries == 0) {
            h->held_since_ms = now;
            h->delay_ms = c->retry.first_ms;
        }
        else {
            h->delay_ms = h->delay_ms > c->retry.max_ms / 2 ? c->retry.max_ms : h->delay_ms * 2;
        }
        h->tries++;
        h->dep = d == QUEUE_RETRY;
        h->due_ms = now + h->delay_ms;
        retry_insert(c, h);
        /* Stopping: what is held goes back to the broker; take nothing more in. */
        if (c->draining && h->dep)
            c->drain_retried = true;
        emit_held(c, QUEUE_EVENT_HELD, h, h->delay_ms, now);
        return 0;
    }
    if (h->tries > 0) {
        if (h->dep) { /* the dependency is back: try every held delivery now */
            for (struct held *o = c->rhead; o != NULL; o = o->next)
                o->due_ms = now;
        }
        if (c->nretry == 0)
            emit_held(c, QUEUE_EVENT_RESUMED, h, 0, now);
    }
    rc = cons_settle(c, h->d.tag, d, err);
    free(h);
    return rc;
}

/* Requeues held deliveries whose hold_ms is over (each counts toward the delivery limit). */
static int cons_expire(struct queue_consumer *c, int64_t now, struct tx_err *err)
{
    struct held **pp = &c->rhead;
    int rc = 0;

    while (rc == 0 && *pp != NULL) {
        struct held *h = *pp;

        if (now - h->held_since_ms < c->retry.hold_ms) {
            pp = &h->next;
            continue;
        }
        retry_unlink(c, pp);
        emit_held(c, QUEUE_EVENT_REQUEUED, h, 0, now);
        rc = cons_nack(c, h->d.tag, true, err);
        free(h);
    }
    return rc;
}

/* When the next held delivery is due (INT64_MAX when none is held). */
static int64_t retry_due(const struct queue_consumer *c)
{
    int64_t due = INT64_MAX;

    for (const struct held *h = c->rhead; h != NULL; h = h->next) {
        if (h->due_ms < due)
            due = h->due_ms;
    }
    return due;
}

/* A delivery was read completely. */
static int cons_delivered(struct queue_consumer *c, struct tx_err *err)
{
    struct incoming *in = &c->in;
    struct held *h = in->h;
    int rc = 0;

    c->unsettled++;
    if (h == NULL) { /* above max_body: dead-letter it without handing it over */
        struct tx_err e;

        tx_err_set(
            &e, TX_ETOOBIG,
            "delivery %llu (%llu bytes, routing key '%s') above the %zu-byte limit: dead-lettered",
            (unsigned long long) in->tag, (unsigned long long) in->body_size, in->routing_key,
            c->max_body);
        rc = cons_nack(c, in->tag, false, err);
        if (rc == 0)
            emit(c, QUEUE_EVENT_TOO_BIG, &e, 0, 0);
    }
    else {
        h->body[in->body_size] = '\0';
        h->arrived_ms = tx_time_mono_ms();
        in->h = NULL; /* now on the list */
        if (c->tail != NULL)
            c->tail->next = h;
        else
            c->head = h;
        c->tail = h;
        c->nheld++;
    }
    memset(in, 0, sizeof(*in));
    return rc;
}

/* The header frame of a delivery: allocate the held copy. */
static int cons_header(struct queue_consumer *c, const amqp_frame_t *f, struct tx_err *err)
{
    struct incoming *in = &c->in;
    const amqp_basic_properties_t *props = f->payload.properties.decoded;
    amqp_bytes_t mid = { 0, NULL };
    amqp_bytes_t cid = { 0, NULL };
    uint64_t count = 0;
    size_t rk_len = strlen(in->routing_key);
    struct held *h;
    char *p;

    in->body_size = f->payload.properties.body_size;
    in->got = 0;
    in->stage = 2;
    if (props != NULL) {
        if (props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
            mid = props->message_id;
        if (props->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
            cid = props->correlation_id;
        if (props->_flags & AMQP_BASIC_HEADERS_FLAG)
            count = table_uint(&props->headers, DELIVERY_COUNT_HEADER);
    }
    if (in->body_size <= c->max_body) {
        h = malloc(sizeof(*h) + rk_len + 1 + mid.len + 1 + cid.len + 1 + in->body_size + 1);
        if (h == NULL)
            return tx_err_set(err, TX_ENOMEM, "out of memory for a %llu-byte delivery",
                              (unsigned long long) in->body_size);
        p = h->data;
        h->next = NULL;
        h->held_since_ms = 0;
        h->due_ms = 0;
        h->delay_ms = 0;
        h->tries = 0;
        h->dep = false;
        h->d.routing_key = p;
        memcpy(p, in->routing_key, rk_len + 1);
        p += rk_len + 1;
        h->d.message_id = p;
        if (mid.len > 0)
            memcpy(p, mid.bytes, mid.len);
        p[mid.len] = '\0';
        p += mid.len + 1;
        h->d.correlation_id = p;
        if (cid.len > 0)
            memcpy(p, cid.bytes, cid.len);
        p[cid.len] = '\0';
        p += cid.len + 1;
        h->body = p;
        h->d.body = p;
        h->d.len = (size_t) in->body_size;
        h->d.tag = in->tag;
        h->d.redelivered = in->redelivered;
        h->d.delivery_count = count > UINT_MAX ? UINT_MAX : (unsigned) count;
        in->h = h;
    }
    return in->body_size == 0 ? cons_delivered(c, err) : 0;
}

/* Handles one frame on the consumer's connection. Negative: the connection is unusable. */
static int cons_frame(struct queue_consumer *c, const amqp_frame_t *f, struct tx_err *err)
{
    struct incoming *in = &c->in;
    int rc;

    if (f->frame_type == AMQP_FRAME_METHOD) {
        rc = conn_common_method(&c->c, f, "consume", err);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        switch (f->payload.method.id) {
        case AMQP_BASIC_DELIVER_METHOD: {
            const amqp_basic_deliver_t *d = f->payload.method.decoded;

            if (in->stage != 0)
                return tx_err_set(err, TX_EIO, "consume: basic.deliver inside a delivery");
            in->stage = 1;
            in->tag = d->delivery_tag;
            in->redelivered = d->redelivered;
            bytes_copy(in->routing_key, sizeof(in->routing_key), d->routing_key);
            return 0;
        }
        case AMQP_BASIC_CANCEL_METHOD:
            return tx_err_set(err, TX_EUNAVAIL,
                              "consume: the broker cancelled the consumer (queue deleted or "
                              "moved)");
        default:
            return 0;
        }
    }
    if (f->channel != CHANNEL)
        return 0;
    if (f->frame_type == AMQP_FRAME_HEADER && in->stage == 1)
        return cons_header(c, f, err);
    if (f->frame_type == AMQP_FRAME_BODY && in->stage == 2) {
        size_t len = f->payload.body_fragment.len;

        if (len > in->body_size - in->got)
            return tx_err_set(err, TX_EIO, "consume: delivery body longer than announced");
        if (in->h != NULL && len > 0)
            memcpy(in->h->body + in->got, f->payload.body_fragment.bytes, len);
        in->got += len;
        return in->got == in->body_size ? cons_delivered(c, err) : 0;
    }
    return tx_err_set(err, TX_EIO, "consume: unexpected frame type %u", (unsigned) f->frame_type);
}

/*
 * Reads frames until deadline_ms, returning early once a delivery is in hand and no more input
 * is buffered. 0 (also on deadline), negative: the connection is unusable.
 */
static int cons_read(struct queue_consumer *c, int64_t deadline_ms, struct tx_err *err)
{
    amqp_frame_t f;
    int rc;

    for (;;) {
        rc = conn_wait_frame(&c->c, deadline_ms, &f, err);
        if (rc <= 0)
            return rc;
        rc = cons_frame(c, &f, err);
        conn_release(&c->c, &f);
        if (rc < 0)
            return rc;
        if (has_new(c) && !amqp_data_in_buffer(c->c.st) && !amqp_frames_enqueued(c->c.st))
            return 0;
    }
}

static int cons_connect(struct queue_consumer *c, uint32_t *count, struct tx_err *err)
{
    amqp_queue_declare_ok_t *dok;
    amqp_basic_consume_ok_t *cok;
    amqp_bytes_t q = amqp_cstring_bytes(c->queue);
    char what[SHORTSTR_MAX + 64];
    int rc;

    rc = conn_open(&c->c, err);
    if (rc != 0)
        return rc;
    snprintf(what, sizeof(what), "queue.declare passive '%s'", c->queue);
    dok = amqp_queue_declare(c->c.st, CHANNEL, q, 1, 0, 0, 0, amqp_empty_table);
    rc = rpc_result(&c->c, amqp_get_rpc_reply(c->c.st), what, err);
    if (rc != 0)
        goto out;
    *count = dok->message_count;
    (void) amqp_basic_qos(c->c.st, CHANNEL, 0, (uint16_t) c->prefetch, 0);
    rc = rpc_result(&c->c, amqp_get_rpc_reply(c->c.st), "basic.qos", err);
    if (rc != 0)
        goto out;
    snprintf(what, sizeof(what), "basic.consume '%s'", c->queue);
    cok = amqp_basic_consume(c->c.st, CHANNEL, q, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    rc = rpc_result(&c->c, amqp_get_rpc_reply(c->c.st), what, err);
    if (rc != 0)
        goto out;
    bytes_copy(c->consumer_tag, sizeof(c->consumer_tag), cok->consumer_tag);
    amqp_maybe_release_buffers(c->c.st);
out:
    if (rc != 0)
        conn_abandon(&c->c);
    return rc;
}

/* Sleeps ms, waking early when *stop is set. */
static void sleep_unless_stopped(long ms, const volatile sig_atomic_t *stop)
{
    int64_t until = tx_time_mono_ms() + ms;

    while (!*stop) {
        int64_t left = until - tx_time_mono_ms();
        struct timespec ts;

        if (left <= 0)
            return;
        if (left > SLEEP_SLICE_MS)
            left = SLEEP_SLICE_MS;
        ts.tv_sec = 0;
        ts.tv_nsec = (long) left * 1000000L;
        nanosleep(&ts, NULL);
    }
}

/* The next back-off delay: doubling from BACKOFF_MIN_MS to BACKOFF_MAX_MS, jittered 50-100%. */
static long next_backoff(struct queue_consumer *c)
{
    c->backoff_ms = c->backoff_ms == 0                   ? BACKOFF_MIN_MS
                    : c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                         : c->backoff_ms * 2;
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return c->backoff_ms / 2 + (long) (c->rng % (uint64_t) (c->backoff_ms / 2 + 1));
}

/* What one run is asked to do. */
struct run {
    queue_handler_fn fn;
    queue_batch_fn bfn;
    queue_submit_fn submit; /* pipelined mode */
    queue_collect_fn collect;
    void *ctx;
    size_t batch_max;
    long batch_wait_ms;
    struct queue_delivery *batch; /* batch_max entries (batch mode) */
    struct held **batch_held;     /* the held entries behind batch[] */
    enum queue_disposition *disp; /* batch_max entries */
    /* Pipelined mode: the batch submitted and not yet collected. */
    struct queue_delivery *fl_batch; /* batch_max entries: the deliveries handed to submit */
    struct held **fl_held;           /* the held entries behind them */
    size_t nfl;                      /* 0: nothing in flight */
    int64_t fl_since_ms;             /* when it was submitted */
};

/* Takes the oldest held delivery off the list (caller frees it). */
static struct held *held_pop(struct queue_consumer *c)
{
    struct held *h = c->head;

    c->head = h->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->nheld--;
    return h;
}

/* Pipelined mode: collects the batch in flight and settles (or, after a lost connection, only
 * frees) its deliveries, in order; then flushes the acks. */
static int collect_flight(struct queue_consumer *c, struct run *r, bool settle, struct tx_err *err)
{
    size_t n = r->nfl;
    int rc = 0;

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        r->disp[i] = QUEUE_RETRY;
    r->collect(r->ctx, r->disp);
    r->nfl = 0;
    for (size_t i = 0; i < n; i++) {
        if (settle && rc == 0)
            rc = cons_outcome(c, r->fl_held[i], r->disp[i], err);
        else
            free(r->fl_held[i]);
        r->fl_held[i] = NULL;
    }
    if (settle && rc == 0 && !c->draining)
        rc = cons_flush_acks(c, err);
    return rc;
}

/* Pipelined mode: submits r->batch_held[0..k), collects the batch before it, and leaves the new
 * one in flight (or collects it too with sync: retries, draining). */
static int submit_batch(struct queue_consumer *c, struct run *r, size_t k, bool sync,
                        struct tx_err *err)
{
    struct queue_delivery *d = r->fl_batch;
    int rc;

    for (size_t i = 0; i < k; i++)
        r->batch[i] = r->batch_held[i]->d;
    r->submit(r->ctx, r->batch, k);
    rc = collect_flight(c, r, true, err);
    /* The submitted batch is in flight now: its deliveries and their array stay as they are. */
    r->fl_batch = r->batch;
    r->batch = d;
    for (size_t i = 0; i < k; i++) {
        r->fl_held[i] = r->batch_held[i];
        r->batch_held[i] = NULL;
    }
    r->nfl = k;
    r->fl_since_ms = tx_time_mono_ms();
    if (rc == 0 && (sync || c->draining))
        rc = collect_flight(c, r, true, err);
    return rc;
}

/* Hands r->batch_held[0..k) to the batch handler and settles or holds each, in order. */
static int dispatch_batch(struct queue_consumer *c, struct run *r, size_t k, struct tx_err *err)
{
    int rc = 0;
    size_t i;

    if (r->submit != NULL)
        return submit_batch(c, r, k, false, err);
    for (i = 0; i < k; i++) {
        r->batch[i] = r->batch_held[i]->d;
        r->disp[i] = QUEUE_RETRY;
    }
    r->bfn(r->ctx, r->batch, k, r->disp);
    /* In delivery order (ascending tags), so a held one is on the list before a later ack. */
    for (i = 0; i < k; i++) {
        if (rc == 0)
            rc = cons_outcome(c, r->batch_held[i], r->disp[i], err);
        else
            free(r->batch_held[i]);
        r->batch_held[i] = NULL;
    }
    /* A batch's acks go out together (one basic.ack multiple). */
    if (rc == 0 && !c->draining)
        rc = cons_flush_acks(c, err);
    return rc;
}

/* Hands new deliveries to the handler: one (single mode) or one batch. */
static int dispatch_new(struct queue_consumer *c, struct run *r, struct tx_err *err)
{
    size_t k = 0;

    if (r->fn != NULL) {
        struct held *h = held_pop(c);

        return cons_outcome(c, h, r->fn(r->ctx, &h->d), err);
    }
    while (k < r->batch_max && c->head != NULL)
        r->batch_held[k++] = held_pop(c);
    return dispatch_batch(c, r, k, err);
}

/* Hands the held deliveries due at now to the handler again: one, or a batch in tag order. */
static int dispatch_due(struct queue_consumer *c, struct run *r, int64_t now, struct tx_err *err)
{
    struct held **pp = &c->rhead;
    size_t max = r->fn != NULL ? 1 : r->batch_max;
    size_t k = 0;

    while (*pp != NULL && k < max) {
        struct held *h = *pp;

        if (h->due_ms > now) {
            pp = &h->next;
            continue;
        }
        retry_unlink(c, pp);
        if (r->fn != NULL)
            return cons_outcome(c, h, r->fn(r->ctx, &h->d), err);
        r->batch_held[k++] = h;
    }
    if (k > 0 && r->submit != NULL)
        return submit_batch(c, r, k, true, err); /* degraded mode: one batch at a time */
    return k > 0 ? dispatch_batch(c, r, k, err) : 0;
}

/*
 * One step of a connected loop: requeue deliveries held too long, retry held ones that are due,
 * hand over new ones (unless a QUEUE_RETRY holds the consumer), or read more.
 */
static int cons_step(struct queue_consumer *c, struct run *r, struct tx_err *err)
{
    int64_t now = tx_time_mono_ms();
    int64_t deadline = now + STOP_POLL_MS;
    int rc;

    if (c->rhead != NULL) {
        int64_t due;

        rc = cons_expire(c, now, err);
        if (rc != 0)
            return rc;
        due = retry_due(c);
        if (due <= now) {
            rc = collect_flight(c, r, true, err);
            return rc != 0 ? rc : dispatch_due(c, r, now, err);
        }
        if (due < deadline)
            deadline = due;
    }
    if (has_new(c)) {
        int64_t due = c->head->arrived_ms + r->batch_wait_ms;

        if (r->fn != NULL || c->nheld >= r->batch_max || now >= due)
            return dispatch_new(c, r, err);
        if (due < deadline)
            deadline = due;
    }
    if (r->nfl > 0) {
        /* The batch in flight waits for the next one to be submitted, unless nothing more can
         * arrive (the prefetch window is full) or nothing came for batch_wait_ms. */
        int64_t idle = r->fl_since_ms + r->batch_wait_ms;

        if (c->unsettled >= c->prefetch || c->ndep > 0 || now >= idle)
            return collect_flight(c, r, true, err);
        if (idle < deadline)
            deadline = idle;
    }
    if (c->ack_count > 0) {
        /* Group acks (each basic.ack is a Raft command in a quorum queue): take deliveries
         * arriving within ACK_LINGER_MS of the oldest pending ack first; flush before waiting
         * longer, so the broker's prefetch window reopens. */
        int64_t linger = c->ack_first_ms + ACK_LINGER_MS;

        rc = cons_read(c, linger < deadline ? linger : deadline, err);
        if (rc != 0 || has_new(c))
            return rc;
        rc = cons_flush_acks(c, err);
        if (rc != 0)
            return rc;
    }
    /* Reading also answers heartbeats: a held delivery keeps the connection alive. */
    return cons_read(c, deadline, err);
}

/*
 * Stop, first part: take in what the broker has in flight to us without giving it new credit.
 * A quorum queue hands up to prefetch messages to the consumer ahead of time; cancelling while
 * they are on their way makes the broker return them with x-delivery-count incremented (toward
 * the delivery limit) although nobody handled them. So acks are withheld until the prefetch is
 * used up (the broker cannot send more) or nothing arrived for DRAIN_QUIET_MS, and everything
 * received is handled meanwhile.
 */
static int cons_drain(struct queue_consumer *c, struct run *r, struct tx_err *err)
{
    int64_t quiet = tx_time_mono_ms() + DRAIN_QUIET_MS;
    int64_t hard = tx_time_mono_ms() + c->c.connect_timeout_ms;
    int rc = 0;

    c->draining = true;
    c->drain_retried = false;
    /* While a QUEUE_RETRY is held nothing new is handled: what is in hand goes back to the
     * broker at the close, unacknowledged. */
    for (;;) {
        size_t before;
        int64_t until = quiet < hard ? quiet : hard;

        while (rc == 0 && has_new(c) && !c->drain_retried)
            rc = dispatch_new(c, r, err);
        if (rc != 0 || c->drain_retried || c->unsettled >= c->prefetch ||
            tx_time_mono_ms() >= until)
            return rc;
        before = c->unsettled;
        rc = cons_read(c, until, err);
        if (rc != 0)
            return rc;
        if (c->unsettled != before)
            quiet = tx_time_mono_ms() + DRAIN_QUIET_MS;
    }
}

/* Graceful stop while connected: drain, cancel, finish what is in hand, ack, round trip, close. */
static int cons_finish(struct queue_consumer *c, struct run *r, struct tx_err *err)
{
    amqp_frame_t f;
    int64_t deadline;
    int rc;

    rc = cons_drain(c, r, err);
    if (rc != 0)
        return rc;
    (void) amqp_basic_cancel(c->c.st, CHANNEL, amqp_cstring_bytes(c->consumer_tag));
    rc = rpc_result(&c->c, amqp_get_rpc_reply(c->c.st), "basic.cancel", err);
    if (rc != 0)
        return rc;
    /* Deliveries sent before cancel-ok were queued by the library or are still buffered. */
    deadline = tx_time_mono_ms() + c->c.connect_timeout_ms;
    for (;;) {
        bool pending = amqp_data_in_buffer(c->c.st) || amqp_frames_enqueued(c->c.st);

        if (!pending && c->in.stage == 0)
            break;
        rc = conn_wait_frame(&c->c, pending ? 0 : deadline, &f, err);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (c->in.stage != 0 && tx_time_mono_ms() >= deadline)
                return tx_err_set(err, TX_ETIMEDOUT, "stop: a delivery stayed incomplete");
            continue;
        }
        rc = cons_frame(c, &f, err);
        conn_release(&c->c, &f);
        if (rc < 0)
            return rc;
    }
    /* What arrived before cancel-ok, unless a dependency is down (then it goes back). Held
     * deliveries are not retried any more: the close returns them to the broker. */
    while (rc == 0 && has_new(c) && !c->drain_retried)
        rc = dispatch_new(c, r, err);
    if (rc == 0)
        rc = cons_flush_acks(c, err);
    if (rc != 0)
        return rc;
    /* A synchronous round trip on the channel: the broker has processed the acks before it. */
    (void) amqp_queue_declare(c->c.st, CHANNEL, amqp_cstring_bytes(c->queue), 1, 0, 0, 0,
                              amqp_empty_table);
    rc = rpc_result(&c->c, amqp_get_rpc_reply(c->c.st), "queue.declare after the last ack", err);
    if (rc != 0)
        return rc;
    atomic_store(&c->connected, 0);
    return conn_close(&c->c, err);
}

static int cons_loop(struct queue_consumer *c, struct run *r, const volatile sig_atomic_t *stop)
{
    struct tx_err e;
    uint32_t count = 0;
    int rc;

    while (!*stop) {
        tx_err_clear(&e);
        if (c->c.st == NULL) {
            rc = cons_connect(c, &count, &e);
            if (rc != 0) {
                long delay = next_backoff(c);

                c->attempts++;
                emit(c, QUEUE_EVENT_CONNECT_FAILED, &e, delay, 0);
                sleep_unless_stopped(delay, stop);
                continue;
            }
            c->attempts = 0;
            c->backoff_ms = 0;
            c->unsettled = 0;
            c->draining = false;
            c->ack_every = c->prefetch / 2 > 0 ? c->prefetch / 2 : 1;
            atomic_store(&c->connected, 1);
            emit(c, QUEUE_EVENT_CONNECTED, NULL, 0, count);
            continue;
        }
        rc = cons_step(c, r, &e);
        if (rc != 0) {
            /* The batch in flight is finished, but its tags died with the channel. */
            collect_flight(c, r, false, NULL);
            cons_lost(c, &e);
        }
    }
    if (c->c.st != NULL) {
        tx_err_clear(&e);
        rc = collect_flight(c, r, true, &e);
        if (rc == 0)
            rc = cons_finish(c, r, &e);
        if (rc != 0) {
            collect_flight(c, r, false, NULL);
            cons_lost(c, &e);
            emit(c, QUEUE_EVENT_STOPPED, &e, 0, 0);
            return 0;
        }
    }
    collect_flight(c, r, false, NULL);
    held_free_all(c);
    emit(c, QUEUE_EVENT_STOPPED, NULL, 0, 0);
    return 0;
}

struct queue_consumer *queue_consumer_create(const struct queue_config *cfg, const char *queue,
                                             unsigned prefetch, struct tx_err *err)
{
    struct queue_consumer *c = NULL;
    struct queue_consumer *ret = NULL;

    if (queue == NULL || queue[0] == '\0' || strlen(queue) > SHORTSTR_MAX) {
        tx_err_set(err, TX_EINVAL, "queue name missing or longer than %d bytes", SHORTSTR_MAX);
        goto out;
    }
    if (prefetch == 0 || prefetch > MAX_PREFETCH) {
        tx_err_set(err, TX_EINVAL, "prefetch must be 1..%u", MAX_PREFETCH);
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    if (conn_init(&c->c, cfg, err) != 0)
        goto out;
    c->queue = strdup(queue);
    if (c->queue == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    c->prefetch = prefetch;
    c->max_body = cfg->max_body == 0 ? DEFAULT_MAX_BODY : cfg->max_body;
    c->ack_every = 1;
    c->retry.first_ms = RETRY_FIRST_MS;
    c->retry.max_ms = RETRY_MAX_MS;
    c->retry.hold_ms = RETRY_HOLD_MS;
    atomic_init(&c->connected, 0);
    atomic_init(&c->held_n, 0);
    atomic_init(&c->paused, 0);
    c->rng = (uint64_t) tx_time_now_ms() ^ (uint64_t) (uintptr_t) c;
    if (c->rng == 0)
        c->rng = 1;
    ret = c;
    c = NULL;
out:
    queue_consumer_destroy(c);
    return ret;
}

void queue_consumer_destroy(struct queue_consumer *c)
{
    if (c == NULL)
        return;
    (void) conn_close(&c->c, NULL);
    held_free_all(c);
    free(c->queue);
    free(c);
}

void queue_consumer_set_event_fn(struct queue_consumer *c, queue_event_fn fn, void *ctx)
{
    if (c == NULL)
        return;
    c->ev = fn;
    c->ev_ctx = ctx;
}

int queue_consumer_is_connected(const struct queue_consumer *c)
{
    return c != NULL && atomic_load(&((struct queue_consumer *) c)->connected) != 0;
}

int queue_consumer_set_retry(struct queue_consumer *c, const struct queue_retry *r,
                             struct tx_err *err)
{
    struct queue_retry v = { RETRY_FIRST_MS, RETRY_MAX_MS, RETRY_HOLD_MS };

    if (c == NULL)
        return tx_err_set(err, TX_EINVAL, "no consumer");
    if (r != NULL) {
        v.first_ms = r->first_ms != 0 ? r->first_ms : RETRY_FIRST_MS;
        v.max_ms = r->max_ms != 0 ? r->max_ms : RETRY_MAX_MS;
        v.hold_ms = r->hold_ms != 0 ? r->hold_ms : RETRY_HOLD_MS;
    }
    if (v.first_ms < 1 || v.first_ms > RETRY_LIMIT_MS || v.max_ms < v.first_ms ||
        v.max_ms > RETRY_LIMIT_MS)
        return tx_err_set(err, TX_EINVAL, "retry back-off must be 1 <= first <= max <= %ld ms",
                          RETRY_LIMIT_MS);
    if (v.hold_ms < 1 || v.hold_ms > HOLD_LIMIT_MS)
        return tx_err_set(err, TX_EINVAL,
                          "retry hold must be 1..%ld ms (under the broker's consumer_timeout)",
                          HOLD_LIMIT_MS);
    c->retry = v;
    return 0;
}

unsigned queue_consumer_held(const struct queue_consumer *c, int *paused)
{
    struct queue_consumer *m = (struct queue_consumer *) c;

    if (paused != NULL)
        *paused = c != NULL ? atomic_load(&m->paused) : 0;
    return c != NULL ? atomic_load(&m->held_n) : 0;
}

int queue_consumer_run(struct queue_consumer *c, queue_handler_fn fn, void *ctx,
                       const volatile sig_atomic_t *stop, struct tx_err *err)
{
    struct run r = { .fn = fn, .ctx = ctx };

    if (c == NULL || fn == NULL || stop == NULL)
        return tx_err_set(err, TX_EINVAL, "consumer, handler and stop flag are required");
    return cons_loop(c, &r, stop);
}

/* The batch and pipelined modes: validates, allocates, runs. */
static int run_batches(struct queue_consumer *c, struct run r, size_t batch_max,
                       const volatile sig_atomic_t *stop, struct tx_err *err)
{
    long batch_wait_ms = r.batch_wait_ms;
    int rc;

    if (batch_max == 0 || batch_max > MAX_PREFETCH || batch_wait_ms < 0 ||
        batch_wait_ms > MAX_BATCH_WAIT_MS)
        return tx_err_set(err, TX_EINVAL, "batch size must be 1..%u and wait 0..%ld ms",
                          MAX_PREFETCH, MAX_BATCH_WAIT_MS);
    r.batch_max = batch_max < c->prefetch ? batch_max : c->prefetch;
    r.batch = calloc(r.batch_max, sizeof(*r.batch));
    r.batch_held = calloc(r.batch_max, sizeof(*r.batch_held));
    r.disp = calloc(r.batch_max, sizeof(*r.disp));
    if (r.submit != NULL) {
        r.fl_batch = calloc(r.batch_max, sizeof(*r.fl_batch));
        r.fl_held = calloc(r.batch_max, sizeof(*r.fl_held));
    }
    if (r.batch == NULL || r.batch_held == NULL || r.disp == NULL ||
        (r.submit != NULL && (r.fl_batch == NULL || r.fl_held == NULL))) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    rc = cons_loop(c, &r, stop);
out:
    free(r.batch);
    free(r.batch_held);
    free(r.disp);
    free(r.fl_batch);
    free(r.fl_held);
    return rc;
}

int queue_consumer_run_batch(struct queue_consumer *c, queue_batch_fn fn, void *ctx,
                             size_t batch_max, long batch_wait_ms,
                             const volatile sig_atomic_t *stop, struct tx_err *err)
{
    struct run r = { .bfn = fn, .ctx = ctx, .batch_wait_ms = batch_wait_ms };

    if (c == NULL || fn == NULL || stop == NULL)
        return tx_err_set(err, TX_EINVAL, "consumer, handler and stop flag are required");
    return run_batches(c, r, batch_max, stop, err);
}

int queue_consumer_run_pipelined(struct queue_consumer *c, queue_submit_fn submit,
                                 queue_collect_fn collect, void *ctx, size_t batch_max,
                                 long batch_wait_ms, const volatile sig_atomic_t *stop,
                                 struct tx_err *err)
{
    struct run r = {
        .submit = submit, .collect = collect, .ctx = ctx, .batch_wait_ms = batch_wait_ms
    };

    if (c == NULL || submit == NULL || collect == NULL || stop == NULL)
        return tx_err_set(err, TX_EINVAL, "consumer, submit, collect and stop flag are required");
    return run_batches(c, r, batch_max, stop, err);
}

/* ---- one-shot helpers ---- */

int queue_declare_passive_count(const struct queue_config *cfg, const char *queue, uint32_t *count,
                                struct tx_err *err)
{
    struct conn c;
    amqp_queue_declare_ok_t *ok;
    char what[SHORTSTR_MAX + 64];
    int rc;

    if (queue == NULL || strlen(queue) > SHORTSTR_MAX || count == NULL)
        return tx_err_set(err, TX_EINVAL, "queue name and count are required");
    rc = conn_init(&c, cfg, err);
    if (rc != 0)
        return rc;
    rc = conn_open(&c, err);
    if (rc != 0)
        return rc;
    snprintf(what, sizeof(what), "queue.declare passive '%s'", queue);
    ok = amqp_queue_declare(c.st, CHANNEL, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    rc = rpc_result(&c, amqp_get_rpc_reply(c.st), what, err);
    if (rc != 0)
        goto out;
    *count = ok->message_count;
    rc = conn_close(&c, err);
out:
    conn_abandon(&c);
    return rc;
}
