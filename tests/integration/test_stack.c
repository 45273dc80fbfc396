/*
 * Integration test of the local service stack (ci/stack): every server is reached only through
 * the variables `ci/stack env` prints (TX_REDIS_URL, TX_AMQP_URL*, TX_RABBIT_MGMT_URL,
 * TX_PG_DSN, TX_PG_RO_DSN, TX_MAIL_API_URL, TX_SMTP_URL). Starts nothing itself.
 *
 * Run: ci/stack up && eval "$(ci/stack env)" && ctest --test-dir <build> -L integration -R stack
 *
 * It leaves no trace a pipeline test could see: the Redis key expires, nothing is delivered to a
 * queue (routed keys are probed with a foreign user-id the broker refuses before routing), SQL
 * probes are rolled back, and the one test mail is deleted by id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_S  5
#define BODY_LIMIT    (64u * 1024u * 1024u) /* the mail API lists every e-mail the tests sent */
#define AMQP_FRAME_SZ 131072

static const char *const queues[] = { "tx.fraud",     "tx.notify",     "tx.persist",
                                      "tx.fraud.dlq", "tx.notify.dlq", "tx.persist.dlq" };

/* Returns the value of an environment variable `ci/stack env` prints; fails the test, naming
 * the variable, when it is missing. */
static const char *need_env(const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || v[0] == '\0')
        fail_msg("%s is not set: start the stack and run `eval \"$(ci/stack env)\"` first", name);
    return v;
}

/* A token unique to this run, for keys, subjects and queue names. */
static void run_token(char *buf, size_t n)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, n, "%ld-%lld-%09ld", (long) getpid(), (long long) ts.tv_sec, ts.tv_nsec);
}

/* ---------------------------------------------------------------------------------------- */
/* Redis */

struct redis_url {
    char host[256];
    int port;
    int db;
};

/* Parses redis://[user[:password]@]host[:port][/db] (no credentials used by the local stack). */
static int parse_redis_url(const char *url, struct redis_url *out)
{
    const char *p = url;
    const char *at;
    const char *end;
    size_t hl;

    if (strncmp(p, "redis://", 8) != 0)
        return -1;
    p += 8;
    at = strchr(p, '@');
    if (at != NULL)
        p = at + 1;
    end = p + strcspn(p, ":/");
    hl = (size_t) (end - p);
    if (hl == 0 || hl >= sizeof(out->host))
        return -1;
    memcpy(out->host, p, hl);
    out->host[hl] = '\0';
    out->port = 6379;
    out->db = 0;
    if (*end == ':') {
        out->port = atoi(end + 1);
        end = end + 1 + strspn(end + 1, "0123456789");
    }
    if (*end == '/' && end[1] != '\0')
        out->db = atoi(end + 1);
    return out->port > 0 && out->port < 65536 ? 0 : -1;
}

static redisReply *redis_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    void *r;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL)
        fail_msg("redis command failed: %s", c->errstr);
    return r;
}

static void test_redis_ping_set_get(void **state)
{
    const char *url = need_env("TX_REDIS_URL");
    struct redis_url u;
    struct timeval tv = { IO_TIMEOUT_S, 0 };
    redisContext *c = NULL;
    redisReply *r = NULL;
    char key[96];
    char val[64];

    (void) state;
    if (parse_redis_url(url, &u) != 0)
        fail_msg("TX_REDIS_URL=%s is not redis://host:port/db", url);
    c = redisConnectWithTimeout(u.host, u.port, tv);
    assert_non_null(c);
    if (c->err)
        fail_msg("cannot connect to Redis at %s:%d (TX_REDIS_URL): %s", u.host, u.port, c->errstr);
    redisSetTimeout(c, tv);

    r = redis_cmd(c, "PING");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);

    r = redis_cmd(c, "SELECT %d", u.db);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);

    run_token(val, sizeof(val));
    snprintf(key, sizeof(key), "tx:test:stack:%s", val);
    r = redis_cmd(c, "SET %s %s EX 60", key, val);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    assert_string_equal(r->str, "OK");
    freeReplyObject(r);

    r = redis_cmd(c, "GET %s", key);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, val);
    freeReplyObject(r);

    r = redis_cmd(c, "DEL %s", key);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
}

/* ---------------------------------------------------------------------------------------- */
/* RabbitMQ (AMQP 0-9-1) */

struct amqp {
    amqp_connection_state_t conn;
    int ch; /* the open channel; a channel closed by the server is replaced by ch + 1 */
    char who[64];
};

static void reply_describe(amqp_rpc_reply_t r, char *buf, size_t n)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(buf, n, "ok");
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(buf, n, "no reply");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buf, n, "library error: %s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, n, "connection closed by server: %u %.*s", m->reply_code,
                     (int) m->reply_text.len, (const char *) m->reply_text.bytes);
        }
        else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, n, "channel closed by server: %u %.*s", m->reply_code,
                     (int) m->reply_text.len, (const char *) m->reply_text.bytes);
        }
        else {
            snprintf(buf, n, "server exception, method 0x%08x", (unsigned) r.reply.id);
        }
        break;
    }
}

static void amqp_check(struct amqp *a, amqp_rpc_reply_t r, const char *what)
{
    char d[300];

    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    reply_describe(r, d, sizeof(d));
    fail_msg("%s: %s: %s", a->who, what, d);
}

static void amqp_open_channel(struct amqp *a)
{
    amqp_channel_open(a->conn, (amqp_channel_t) a->ch);
    amqp_check(a, amqp_get_rpc_reply(a->conn), "channel.open");
}

/* Connects and logs in with the URL in environment variable var, opens channel 1. */
static void amqp_connect_env(struct amqp *a, const char *var)
{
    const char *url = need_env(var);
    struct amqp_connection_info info;
    struct timeval tv = { IO_TIMEOUT_S, 0 };
    amqp_socket_t *sock;
    char *copy = strdup(url);
    int rc;

    assert_non_null(copy);
    memset(a, 0, sizeof(*a));
    snprintf(a->who, sizeof(a->who), "%s", var);
    amqp_default_connection_info(&info);
    if (amqp_parse_url(copy, &info) != AMQP_STATUS_OK)
        fail_msg("%s is not an amqp:// URL", var);
    a->conn = amqp_new_connection();
    assert_non_null(a->conn);
    sock = amqp_tcp_socket_new(a->conn);
    assert_non_null(sock);
    rc = amqp_socket_open_noblock(sock, info.host, info.port, &tv);
    if (rc != AMQP_STATUS_OK)
        fail_msg("%s: cannot connect to %s:%d: %s", var, info.host, info.port,
                 amqp_error_string2(rc));
    amqp_set_rpc_timeout(a->conn, &tv);
    amqp_check(a,
               amqp_login(a->conn, info.vhost, 0, AMQP_FRAME_SZ, 0, AMQP_SASL_METHOD_PLAIN,
                          info.user, info.password),
               "login");
    free(copy);
    a->ch = 1;
    amqp_open_channel(a);
}

static void amqp_disconnect(struct amqp *a)
{
    if (a->conn == NULL)
        return;
    amqp_channel_close(a->conn, (amqp_channel_t) a->ch, AMQP_REPLY_SUCCESS);
    amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(a->conn);
    a->conn = NULL;
}

/* For an operation the server must refuse by closing the channel: returns the reply code
 * (0 when the operation succeeded), acknowledges the close and opens the next channel. */
static unsigned amqp_refusal(struct amqp *a, amqp_rpc_reply_t r, const char *what)
{
    amqp_channel_close_ok_t ok = { 0 };
    amqp_channel_close_t *m;
    unsigned code;
    char d[300];

    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD) {
        reply_describe(r, d, sizeof(d));
        fail_msg("%s: %s: expected a channel error, got: %s", a->who, what, d);
    }
    m = r.reply.decoded;
    code = m->reply_code;
    amqp_send_method(a->conn, (amqp_channel_t) a->ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    a->ch++;
    amqp_open_channel(a);
    return code;
}

static amqp_rpc_reply_t queue_declare_passive(struct amqp *a, const char *name)
{
    amqp_queue_declare(a->conn, (amqp_channel_t) a->ch, amqp_cstring_bytes(name), 1, 0, 0, 0,
                       amqp_empty_table);
    return amqp_get_rpc_reply(a->conn);
}

static amqp_rpc_reply_t exchange_declare_passive(struct amqp *a, const char *name)
{
    amqp_exchange_declare(a->conn, (amqp_channel_t) a->ch, amqp_cstring_bytes(name),
                          amqp_cstring_bytes("topic"), 1, 0, 0, 0, amqp_empty_table);
    return amqp_get_rpc_reply(a->conn);
}

/* Publishes a small transient message with publisher confirms on; returns 0 when the broker
 * acked it, the reply code when it closed the channel (the channel is then replaced), -1 on a
 * nack. The channel must be in confirm mode. user_id (or NULL) sets the user-id property: RabbitMQ
 * refuses one that is not the login's name with 406 PRECONDITION_FAILED, after the write and
 * topic permission checks and before routing, so a foreign user_id probes the permission to
 * publish a routed key without delivering anything (403 refused, 406 permitted). */
static int publish_confirmed(struct amqp *a, const char *exchange, const char *key,
                             const char *user_id)
{
    amqp_basic_properties_t props;
    struct timeval tv = { IO_TIMEOUT_S, 0 };
    amqp_frame_t f;
    int rc;

    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = 1;
    if (user_id != NULL) {
        props._flags |= AMQP_BASIC_USER_ID_FLAG;
        props.user_id = amqp_cstring_bytes(user_id);
    }
    rc = amqp_basic_publish(a->conn, (amqp_channel_t) a->ch, amqp_cstring_bytes(exchange),
                            amqp_cstring_bytes(key), 0, 0, &props, amqp_cstring_bytes("{}"));
    if (rc != AMQP_STATUS_OK)
        fail_msg("%s: basic.publish: %s", a->who, amqp_error_string2(rc));
    for (;;) {
        rc = amqp_simple_wait_frame_noblock(a->conn, &f, &tv);
        if (rc != AMQP_STATUS_OK)
            fail_msg("%s: no confirm for a publish to %s: %s", a->who, exchange,
                     amqp_error_string2(rc));
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD)
            return 0;
        if (f.payload.method.id == AMQP_BASIC_NACK_METHOD)
            return -1;
        if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_rpc_reply_t r = { .reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
                                   .reply = f.payload.method };
            return (int) amqp_refusal(a, r, "basic.publish");
        }
    }
}

#define FOREIGN_USER_ID "test-stack-not-this-user"

/* Puts the channel in confirm mode and probes a publish of key to exchange with a foreign user-id:
 * fails unless the broker answers want (AMQP_PRECONDITION_FAILED: permitted, AMQP_ACCESS_REFUSED:
 * refused). */
static void expect_publish_probe(struct amqp *a, const char *exchange, const char *key,
                                 unsigned want)
{
    int code;

    amqp_confirm_select(a->conn, (amqp_channel_t) a->ch);
    amqp_check(a, amqp_get_rpc_reply(a->conn), "confirm.select");
    code = publish_confirmed(a, exchange, key, FOREIGN_USER_ID);
    if (code < 0 || (unsigned) code != want)
        fail_msg("%s: publish to %s with key '%s': got %d, want %u (%s)", a->who, exchange, key,
                 code, want, want == AMQP_ACCESS_REFUSED ? "refused" : "permitted");
}

static void test_amqp_queues_exist(void **state)
{
    struct amqp a;
    char name[128];
    char tok[64];

    (void) state;
    amqp_connect_env(&a, "TX_AMQP_URL");
    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
        snprintf(name, sizeof(name), "passive queue.declare %s", queues[i]);
        amqp_check(&a, queue_declare_passive(&a, queues[i]), name);
    }
    run_token(tok, sizeof(tok));
    snprintf(name, sizeof(name), "tx.no-such-queue.%s", tok);
    assert_int_equal(amqp_refusal(&a, queue_declare_passive(&a, name), "missing queue"),
                     AMQP_NOT_FOUND);
    amqp_disconnect(&a);
}

static void test_amqp_exchanges_exist(void **state)
{
    struct amqp a;

    (void) state;
    amqp_connect_env(&a, "TX_AMQP_URL");
    amqp_check(&a, exchange_declare_passive(&a, "tx.events"), "passive exchange.declare tx.events");
    amqp_check(&a, exchange_declare_passive(&a, "tx.dlx"), "passive exchange.declare tx.dlx");
    assert_int_equal(
        amqp_refusal(&a, exchange_declare_passive(&a, "tx.no-such-exchange"), "missing exchange"),
        AMQP_NOT_FOUND);
    amqp_disconnect(&a);
}

static void test_amqp_gateway_publish_only(void **state)
{
    struct amqp a;
    struct amqp admin;
    char tok[64];
    char qname[128];
    unsigned code;

    (void) state;
    /* The admin user (no topic permissions) publishes any key: one no binding matches reaches no
     * queue, and the broker confirms it. */
    amqp_connect_env(&admin, "TX_AMQP_URL");
    amqp_confirm_select(admin.conn, (amqp_channel_t) admin.ch);
    amqp_check(&admin, amqp_get_rpc_reply(admin.conn), "confirm.select");
    assert_int_equal(publish_confirmed(&admin, "tx.events", "test.stack.unrouted", NULL), 0);
    amqp_disconnect(&admin);

    amqp_connect_env(&a, "TX_AMQP_URL_GATEWAY");
    amqp_check(&a, exchange_declare_passive(&a, "tx.events"), "passive exchange.declare tx.events");
    /* Topic permissions: the gateway may publish transaction.received to tx.events, and no other
     * key (a forged verdict, a test key). */
    expect_publish_probe(&a, "tx.events", "transaction.received", AMQP_PRECONDITION_FAILED);
    expect_publish_probe(&a, "tx.events", "transaction.scored", AMQP_ACCESS_REFUSED);
    expect_publish_probe(&a, "tx.events", "notification.sent", AMQP_ACCESS_REFUSED);
    amqp_confirm_select(a.conn, (amqp_channel_t) a.ch);
    amqp_check(&a, amqp_get_rpc_reply(a.conn), "confirm.select");
    code = (unsigned) publish_confirmed(&a, "tx.events", "test.stack.unrouted", NULL);
    if (code != AMQP_ACCESS_REFUSED)
        fail_msg("gateway publish of an unrouted test key: got %d, want 403", (int) code);

    /* Not allowed: the dead-letter exchange ... */
    expect_publish_probe(&a, "tx.dlx", "tx.fraud.dlq", AMQP_ACCESS_REFUSED);

    /* ... and declaring a queue. */
    run_token(tok, sizeof(tok));
    snprintf(qname, sizeof(qname), "tx.test.stack.%s", tok);
    amqp_queue_declare(a.conn, (amqp_channel_t) a.ch, amqp_cstring_bytes(qname), 0, 0, 0, 1,
                       amqp_empty_table);
    code = amqp_refusal(&a, amqp_get_rpc_reply(a.conn), "queue.declare");
    if (code == 0) {
        amqp_connect_env(&admin, "TX_AMQP_URL");
        amqp_queue_delete(admin.conn, (amqp_channel_t) admin.ch, amqp_cstring_bytes(qname), 0, 0);
        amqp_disconnect(&admin);
        fail_msg("the gateway user could declare queue %s", qname);
    }
    if (code != AMQP_ACCESS_REFUSED)
        fail_msg("gateway queue.declare: got %u, want 403 ACCESS_REFUSED", code);
    amqp_disconnect(&a);
}

/* Each consumer's user reaches its own queue and may not consume another one, and publishes
 * only its own routing keys (topic permissions). No message is ever consumed (the queues may hold
 * real work) or delivered (the publishes are user-id probes). */
static void test_amqp_service_users(void **state)
{
    static const struct {
        const char *var;
        const char *own;
        const char *other;
        const char *own_key;   /* a routing key it may publish to tx.events, or NULL */
        const char *other_key; /* one it may not */
    } users[] = {
        { "TX_AMQP_URL_FRAUD", "tx.fraud", "tx.persist", "transaction.scored",
          "transaction.received" },
        { "TX_AMQP_URL_NOTIFY", "tx.notify", "tx.fraud", "notification.failed",
          "transaction.scored" },
        { "TX_AMQP_URL_PERSIST", "tx.persist", "tx.notify", NULL, "notification.sent" },
    };
    struct amqp a;

    (void) state;
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        amqp_connect_env(&a, users[i].var);
        amqp_check(&a, queue_declare_passive(&a, users[i].own), "passive queue.declare own queue");
        amqp_basic_consume(a.conn, (amqp_channel_t) a.ch, amqp_cstring_bytes(users[i].other),
                           amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        assert_int_equal(amqp_refusal(&a, amqp_get_rpc_reply(a.conn), "basic.consume other"),
                         AMQP_ACCESS_REFUSED);
        if (users[i].own_key != NULL)
            expect_publish_probe(&a, "tx.events", users[i].own_key, AMQP_PRECONDITION_FAILED);
        expect_publish_probe(&a, "tx.events", users[i].other_key, AMQP_ACCESS_REFUSED);
        amqp_disconnect(&a);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* HTTP helpers (management API, mail API) */

struct body {
    char *data;
    size_t len;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;
    char *p;

    if (b->len + n > BODY_LIMIT)
        return 0;
    p = realloc(b->data, b->len + n + 1);
    if (p == NULL)
        return 0;
    b->data = p;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Performs an HTTP request; returns the status code and fills *out (caller frees out->data). */
static long http_request(const char *method, const char *url, struct body *out)
{
    CURL *h = curl_easy_init();
    long status = 0;
    CURLcode rc;

    assert_non_null(h);
    memset(out, 0, sizeof(*out));
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long) IO_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        curl_easy_cleanup(h);
        fail_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status;
}

/* GETs base + path and parses the JSON body; fails unless the status is 200. */
static json_t *http_get_json(const char *base, const char *path)
{
    char url[1024];
    struct body b;
    json_error_t jerr;
    json_t *j;
    long status;

    snprintf(url, sizeof(url), "%s%s", base, path);
    status = http_request("GET", url, &b);
    if (status != 200) {
        free(b.data);
        fail_msg("GET %s: HTTP %ld", path, status);
    }
    j = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
    free(b.data);
    if (j == NULL)
        fail_msg("GET %s: not JSON: %s", path, jerr.text);
    return j;
}

static void expect_queue_args(const char *mgmt, const char *q, bool dead_letters)
{
    char path[256];
    char dlk[64];
    json_t *j;
    json_t *args;

    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", q);
    j = http_get_json(mgmt, path);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "quorum");
    assert_true(json_is_true(json_object_get(j, "durable")));
    args = json_object_get(j, "arguments");
    assert_non_null(args);
    if (dead_letters) {
        snprintf(dlk, sizeof(dlk), "%s.dlq", q);
        assert_int_equal(json_integer_value(json_object_get(args, "x-delivery-limit")), 5);
        assert_string_equal(json_string_value(json_object_get(args, "x-dead-letter-exchange")),
                            "tx.dlx");
        assert_string_equal(json_string_value(json_object_get(args, "x-dead-letter-routing-key")),
                            dlk);
        assert_string_equal(json_string_value(json_object_get(args, "x-dead-letter-strategy")),
                            "at-least-once");
        assert_string_equal(json_string_value(json_object_get(args, "x-overflow")),
                            "reject-publish");
    }
    json_decref(j);
}

static bool has_binding(json_t *list, const char *dest, const char *key)
{
    size_t i;
    json_t *b;

    json_array_foreach(list, i, b)
    {
        const char *d = json_string_value(json_object_get(b, "destination"));
        const char *k = json_string_value(json_object_get(b, "routing_key"));
        if (d != NULL && k != NULL && strcmp(d, dest) == 0 && strcmp(k, key) == 0)
            return true;
    }
    return false;
}

static void test_amqp_topology_via_management(void **state)
{
    static const char *const bindings[][3] = {
        { "tx.events", "tx.fraud", "transaction.received" },
        { "tx.events", "tx.persist", "transaction.received" },
        { "tx.events", "tx.notify", "transaction.scored" },
        { "tx.events", "tx.persist", "transaction.scored" },
        { "tx.events", "tx.persist", "notification.*" },
        { "tx.dlx", "tx.fraud.dlq", "tx.fraud.dlq" },
        { "tx.dlx", "tx.notify.dlq", "tx.notify.dlq" },
        { "tx.dlx", "tx.persist.dlq", "tx.persist.dlq" },
    };
    const char *mgmt = need_env("TX_RABBIT_MGMT_URL");
    char path[256];
    json_t *j;

    (void) state;
    for (size_t i = 0; i < 3; i++)
        expect_queue_args(mgmt, queues[i], true);
    for (size_t i = 3; i < 6; i++)
        expect_queue_args(mgmt, queues[i], false);
    for (size_t i = 0; i < sizeof(bindings) / sizeof(bindings[0]); i++) {
        snprintf(path, sizeof(path), "/api/exchanges/%%2F/%s/bindings/source", bindings[i][0]);
        j = http_get_json(mgmt, path);
        if (!has_binding(j, bindings[i][1], bindings[i][2]))
            fail_msg("no binding %s -> %s with key %s", bindings[i][0], bindings[i][1],
                     bindings[i][2]);
        json_decref(j);
    }
    j = http_get_json(mgmt, "/api/exchanges/%2F/tx.events");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "topic");
    assert_true(json_is_true(json_object_get(j, "durable")));
    json_decref(j);
}

/* ---------------------------------------------------------------------------------------- */
/* PostgreSQL */

static PGconn *pg_connect_env(const char *var)
{
    const char *keys[] = { "dbname", "connect_timeout", NULL };
    const char *vals[] = { need_env(var), "5", NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);

    assert_non_null(c);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        PQfinish(c);
        fail_msg("%s: cannot connect: %s", var, msg);
    }
    return c;
}

/* Runs a statement that must succeed; returns its result (caller clears). */
static PGresult *pg_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);

    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
        PQclear(r);
        fail_msg("SQL failed: %s: %s", sql, msg);
    }
    return r;
}

/* Runs a statement that must fail with SQLSTATE state. */
static void pg_fails_with(PGconn *c, const char *sql, const char *state)
{
    PGresult *r = PQexec(c, sql);
    const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char msg[512];

    if (PQresultStatus(r) != PGRES_FATAL_ERROR || got == NULL || strcmp(got, state) != 0) {
        snprintf(msg, sizeof(msg), "status %s, sqlstate %s, %s", PQresStatus(PQresultStatus(r)),
                 got ? got : "none", PQresultErrorMessage(r));
        PQclear(r);
        fail_msg("expected SQLSTATE %s from: %s; got %s", state, sql, msg);
    }
    PQclear(r);
}

static void test_pg_tables_and_migrations(void **state)
{
    PGconn *c = pg_connect_env("TX_PG_DSN");
    PGresult *r;

    (void) state;
    r = pg_ok(c, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' "
                 "AND table_name IN ('uploads', 'transactions', 'fraud_reasons', 'emails')");
    assert_string_equal(PQgetvalue(r, 0, 0), "4");
    PQclear(r);
    r = pg_ok(c, "SELECT count(*) FROM schema_migrations WHERE version = '001' "
                 "AND applied_at IS NOT NULL");
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    /* The owner role writes (rolled back: nothing stays). */
    PQclear(pg_ok(c, "BEGIN"));
    PQclear(pg_ok(c, "INSERT INTO fraud_reasons (event_id, code, detail) "
                     "VALUES ('test-stack:0', 'TEST_STACK', 'probe')"));
    PQclear(pg_ok(c, "ROLLBACK"));
    PQfinish(c);
}

/*
 * Migration 002: transactions keeps only its primary key and two partial indexes on flagged rows;
 * event_id has the "C" collation, so an upload's rows are one primary-key range; a second row for
 * the same (upload_id, idx) is impossible without the dropped unique index (the CHECK on event_id
 * and the primary key refuse it).
 */
static void test_pg_lean_transaction_indexes(void **state)
{
    PGconn *c = pg_connect_env("TX_PG_DSN");
    PGresult *r;

    (void) state;
    r = pg_ok(c, "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE "
                 "tablename = 'transactions'");
    assert_string_equal(PQgetvalue(r, 0, 0), "transactions_client_flagged_idx,"
                                             "transactions_flagged_idx,transactions_pkey");
    PQclear(r);
    r = pg_ok(c, "SELECT string_agg(table_name || '=' || collation_name, ',' ORDER BY table_name) "
                 "FROM information_schema.columns WHERE column_name = 'event_id' AND table_name IN "
                 "('transactions', 'fraud_reasons', 'emails')");
    assert_string_equal(PQgetvalue(r, 0, 0), "emails=C,fraud_reasons=C,transactions=C");
    PQclear(r);
    PQclear(pg_ok(c, "BEGIN"));
    PQclear(pg_ok(c, "INSERT INTO transactions (event_id, upload_id, idx, client_id, cliente, "
                     "email, endereco, datatrasancao, datatrasancao_at, is_active, raw, "
                     "received_at) VALUES ('test-stack:7', 'test-stack', 7, 'c', 'c', 'c@d.e', "
                     "'e', 'x', now(), true, '{}', now()), ('test-stack:70', 'test-stack', 70, "
                     "'c', 'c', 'c@d.e', 'e', 'x', now(), true, '{}', now())"));
    PQclear(pg_ok(c, "SAVEPOINT s"));
    pg_fails_with(c,
                  "INSERT INTO transactions (event_id, upload_id, idx, client_id, cliente, email, "
                  "endereco, datatrasancao, datatrasancao_at, is_active, raw, received_at) VALUES "
                  "('test-stack:07', 'test-stack', 7, 'c', 'c', 'c@d.e', 'e', 'x', now(), true, "
                  "'{}', now())",
                  "23514");
    PQclear(pg_ok(c, "ROLLBACK TO SAVEPOINT s"));
    pg_fails_with(c,
                  "INSERT INTO transactions (event_id, upload_id, idx, client_id, cliente, email, "
                  "endereco, datatrasancao, datatrasancao_at, is_active, raw, received_at) VALUES "
                  "('test-stack:7', 'test-stack', 7, 'c', 'c', 'c@d.e', 'e', 'x', now(), true, "
                  "'{}', now())",
                  "23505");
    PQclear(pg_ok(c, "ROLLBACK"));
    /* The range the gateway uses for an upload's rows can be a primary-key scan (a small table
     * may still be read sequentially, so the test takes that choice away). */
    PQclear(pg_ok(c, "SET enable_seqscan = off"));
    r = pg_ok(c, "EXPLAIN SELECT * FROM transactions WHERE event_id >= 'u' || ':' AND event_id < "
                 "'u' || ';' AND upload_id = 'u'");
    {
        bool found = false; /* an index scan, or a bitmap scan whose index line comes second */

        for (int i = 0; i < PQntuples(r); i++)
            found = found || strstr(PQgetvalue(r, i, 0), "transactions_pkey") != NULL;
        assert_true(found);
    }
    PQclear(r);
    PQfinish(c);
}

static void test_pg_readonly_role(void **state)
{
    PGconn *c = pg_connect_env("TX_PG_RO_DSN");
    PGresult *r;

    (void) state;
    r = pg_ok(c, "SELECT count(*) FROM transactions");
    PQclear(r);
    r = pg_ok(c, "SELECT count(*) FROM schema_migrations");
    PQclear(r);
    PQclear(pg_ok(c, "BEGIN"));
    pg_fails_with(c,
                  "INSERT INTO fraud_reasons (event_id, code, detail) "
                  "VALUES ('test-stack:0', 'TEST_STACK', 'probe')",
                  "42501");
    PQclear(pg_ok(c, "ROLLBACK"));
    PQclear(pg_ok(c, "BEGIN"));
    pg_fails_with(c, "CREATE TABLE test_stack_probe (x int)", "42501");
    PQclear(pg_ok(c, "ROLLBACK"));
    PQfinish(c);
}

/* ---------------------------------------------------------------------------------------- */
/* Mail sink */

static void test_mail_api_lists_json(void **state)
{
    json_t *j = http_get_json(need_env("TX_MAIL_API_URL"), "/api/email");

    (void) state;
    assert_true(json_is_array(j));
    json_decref(j);
}

struct upload {
    const char *data;
    size_t len;
    size_t off;
};

static size_t upload_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct upload *u = userdata;
    size_t n = size * nitems;

    if (n > u->len - u->off)
        n = u->len - u->off;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

static void test_smtp_delivery_visible_in_api(void **state)
{
    const char *smtp = need_env("TX_SMTP_URL");
    const char *api = need_env("TX_MAIL_API_URL");
    char tok[64];
    char subject[128];
    char rcpt[160];
    char msg[1024];
    char path[512];
    char id[128] = "";
    struct curl_slist *to = NULL;
    struct upload u;
    struct body b;
    CURL *h;
    CURLcode rc;
    json_t *list = NULL;

    (void) state;
    run_token(tok, sizeof(tok));
    snprintf(subject, sizeof(subject), "txpipe-stack-test-%s", tok);
    snprintf(rcpt, sizeof(rcpt), "stack-test-%s@example.test", tok);
    snprintf(msg, sizeof(msg),
             "From: txpipe stack test <stack-test@txpipe.local>\r\n"
             "To: <%s>\r\n"
             "Subject: %s\r\n"
             "Message-ID: <%s@txpipe.local>\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "\r\n"
             "Sent by tests/integration/test_stack.c.\r\n",
             rcpt, subject, tok);
    u = (struct upload){ .data = msg, .len = strlen(msg), .off = 0 };

    h = curl_easy_init();
    assert_non_null(h);
    to = curl_slist_append(NULL, rcpt);
    assert_non_null(to);
    curl_easy_setopt(h, CURLOPT_URL, smtp);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, "<stack-test@txpipe.local>");
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, to);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(h);
    curl_slist_free_all(to);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK)
        fail_msg("SMTP to %s (TX_SMTP_URL): %s", smtp, curl_easy_strerror(rc));

    /* The sink stores the mail asynchronously: poll its API for up to 5 s. */
    snprintf(path, sizeof(path), "/api/email?subject=%s", subject);
    for (int i = 0; i < 50 && id[0] == '\0'; i++) {
        list = http_get_json(api, path);
        assert_true(json_is_array(list));
        if (json_array_size(list) == 1) {
            json_t *m = json_array_get(list, 0);
            assert_string_equal(json_string_value(json_object_get(m, "subject")), subject);
            snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(m, "id")));
        }
        json_decref(list);
        if (id[0] == '\0')
            usleep(100 * 1000);
    }
    if (id[0] == '\0')
        fail_msg("mail '%s' sent through %s never appeared in %s/api/email", subject, smtp, api);

    snprintf(path, sizeof(path), "%s/api/email/%s", api, id);
    assert_int_equal(http_request("DELETE", path, &b), 200);
    free(b.data);
}

/* ---------------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void) state;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void) state;
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_ping_set_get),
        cmocka_unit_test(test_amqp_queues_exist),
        cmocka_unit_test(test_amqp_exchanges_exist),
        cmocka_unit_test(test_amqp_topology_via_management),
        cmocka_unit_test(test_amqp_gateway_publish_only),
        cmocka_unit_test(test_amqp_service_users),
        cmocka_unit_test(test_pg_tables_and_migrations),
        cmocka_unit_test(test_pg_lean_transaction_indexes),
        cmocka_unit_test(test_pg_readonly_role),
        cmocka_unit_test(test_mail_api_lists_json),
        cmocka_unit_test(test_smtp_delivery_visible_in_api),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
