/*
 * Integration tests of storage/cache against the Redis of `ci/stack env` (TX_REDIS_URL, required).
 * Starts no server. Every key lives under "txtest:cache:<pid>:<time>:" and is deleted afterwards;
 * the ACL user it creates ("txtest_cache_<pid>") is deleted too. It briefly runs CLIENT PAUSE
 * WRITE (1.5 s) and SCRIPT FLUSH on that server.
 *
 * Administrative commands (ACL, CLIENT, SCRIPT, TTL checks) go through a minimal RESP client in
 * this file, so what is checked does not depend on the wrapper under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/tx_time.h"
#include "storage/cache.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NKEYS    100
#define TTL_S    60
#define ACL_PASS "txtest-secret-pw"

struct fixture {
    const char *url;
    char host[256];
    char port[8];
    char pass[256]; /* password from TX_REDIS_URL, "" for none */
    char user[64];  /* user from TX_REDIS_URL, "" for none */
    long db;
    char prefix[96];
    char acl_user[64];
    char acl_url[512]; /* TX_REDIS_URL's server as the ACL user, database 9 */
    int admin;         /* raw RESP connection */
    struct cache_conn *c;
};

/* ---- minimal RESP client for the checks ---- */

struct raw_reply {
    char type;      /* '+', '-', ':', '$', '*' */
    long long num;  /* ':' value, '$' length (-1 nil), '*' count */
    char text[512]; /* '+'/'-' line or '$' payload (truncated) */
};

static int raw_connect(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int fd = -1;

    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static void raw_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        assert_true(w > 0);
        p += w;
        n -= (size_t) w;
    }
}

static void raw_read_exact(int fd, char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);

        assert_true(r > 0);
        p += r;
        n -= (size_t) r;
    }
}

static void raw_read_line(int fd, char *out, size_t outlen)
{
    size_t n = 0;
    char ch = 0;

    for (;;) {
        raw_read_exact(fd, &ch, 1);
        if (ch == '\n')
            break;
        if (ch != '\r' && n + 1 < outlen)
            out[n++] = ch;
    }
    out[n] = '\0';
}

/* Reads one reply; arrays are read fully, only their element count kept. */
static void raw_read_reply(int fd, struct raw_reply *r)
{
    char line[600];

    raw_read_line(fd, line, sizeof(line));
    memset(r, 0, sizeof(*r));
    r->type = line[0];
    switch (r->type) {
    case '+':
    case '-':
        snprintf(r->text, sizeof(r->text), "%.500s", line + 1);
        break;
    case ':':
        r->num = strtoll(line + 1, NULL, 10);
        break;
    case '$': {
        long long len = strtoll(line + 1, NULL, 10);
        char *buf;

        r->num = len;
        if (len < 0)
            break;
        buf = malloc((size_t) len + 2);
        assert_non_null(buf);
        raw_read_exact(fd, buf, (size_t) len + 2);
        snprintf(r->text, sizeof(r->text), "%.*s", (int) (len < 511 ? len : 511), buf);
        free(buf);
        break;
    }
    case '*': {
        struct raw_reply sub;

        r->num = strtoll(line + 1, NULL, 10);
        for (long long i = 0; i < r->num; i++)
            raw_read_reply(fd, &sub);
        break;
    }
    default:
        fail_msg("unexpected RESP line '%s'", line);
    }
}

/* Sends argv as one command (NULL-terminated list) and reads its reply. */
static void raw_cmd(int fd, struct raw_reply *r, const char *arg0, ...)
{
    const char *argv[16];
    int argc = 0;
    char head[32];
    va_list ap;

    va_start(ap, arg0);
    for (const char *a = arg0; a != NULL && argc < 16; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    snprintf(head, sizeof(head), "*%d\r\n", argc);
    raw_write_all(fd, head, strlen(head));
    for (int i = 0; i < argc; i++) {
        snprintf(head, sizeof(head), "$%zu\r\n", strlen(argv[i]));
        raw_write_all(fd, head, strlen(head));
        raw_write_all(fd, argv[i], strlen(argv[i]));
        raw_write_all(fd, "\r\n", 2);
    }
    raw_read_reply(fd, r);
}

static void expect_ok(int fd, const char *what, struct raw_reply *r)
{
    if (r->type != '+')
        fail_msg("%s: %c%s", what, r->type, r->text);
    (void) fd;
}

/* ---- fixture ---- */

/* Splits redis://[[user]:pass@]host[:port][/db] (no %-decoding: enough for test URLs). */
static int split_url(struct fixture *f)
{
    const char *p;
    const char *at;
    const char *slash;
    const char *colon;
    const char *hostend;

    if (strncmp(f->url, "redis://", 8) != 0)
        return -1;
    p = f->url + 8;
    slash = strchr(p, '/');
    at = strrchr(p, '@');
    if (at != NULL && (slash == NULL || at < slash)) {
        colon = memchr(p, ':', (size_t) (at - p));
        if (colon == NULL)
            return -1;
        snprintf(f->user, sizeof(f->user), "%.*s", (int) (colon - p), p);
        snprintf(f->pass, sizeof(f->pass), "%.*s", (int) (at - colon - 1), colon + 1);
        p = at + 1;
    }
    hostend = slash != NULL ? slash : p + strlen(p);
    if (*p == '[') {
        const char *rb = strchr(p, ']');

        if (rb == NULL)
            return -1;
        snprintf(f->host, sizeof(f->host), "%.*s", (int) (rb - p - 1), p + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    }
    else {
        colon = memchr(p, ':', (size_t) (hostend - p));
        snprintf(f->host, sizeof(f->host), "%.*s", (int) ((colon != NULL ? colon : hostend) - p),
                 p);
    }
    snprintf(f->port, sizeof(f->port), "%.*s", colon != NULL ? (int) (hostend - colon - 1) : 4,
             colon != NULL ? colon + 1 : "6379");
    f->db = slash != NULL ? strtol(slash + 1, NULL, 10) : 0;
    return 0;
}

static int setup(void **state)
{
    static struct fixture f;
    struct tx_err err = { 0 };
    struct raw_reply r;
    char rule[128];
    char pw[64];
    char db[24];

    memset(&f, 0, sizeof(f));
    f.admin = -1;
    *state = &f;
    f.url = getenv("TX_REDIS_URL");
    if (f.url == NULL || f.url[0] == '\0') {
        fprintf(stderr, "test_cache: environment variable TX_REDIS_URL is not set (export the "
                        "output of `ci/stack env`)\n");
        return -1;
    }
    if (split_url(&f) != 0) {
        fprintf(stderr, "test_cache: cannot parse TX_REDIS_URL=%s\n", f.url);
        return -1;
    }
    f.admin = raw_connect(f.host, f.port);
    if (f.admin < 0) {
        fprintf(stderr, "test_cache: cannot connect to %s:%s (TX_REDIS_URL)\n", f.host, f.port);
        return -1;
    }
    if (f.pass[0] != '\0') {
        if (f.user[0] != '\0')
            raw_cmd(f.admin, &r, "AUTH", f.user, f.pass, NULL);
        else
            raw_cmd(f.admin, &r, "AUTH", f.pass, NULL);
        if (r.type != '+')
            return -1;
    }
    snprintf(db, sizeof(db), "%ld", f.db);
    raw_cmd(f.admin, &r, "SELECT", db, NULL);
    if (r.type != '+')
        return -1;
    snprintf(f.prefix, sizeof(f.prefix), "txtest:cache:%d:%lld:", (int) getpid(),
             (long long) time(NULL));
    /* A user that may touch only this run's keys: used for AUTH, NOPERM and CLIENT KILL. */
    snprintf(f.acl_user, sizeof(f.acl_user), "txtest_cache_%d", (int) getpid());
    snprintf(rule, sizeof(rule), "~%s*", f.prefix);
    snprintf(pw, sizeof(pw), ">%s", ACL_PASS);
    raw_cmd(f.admin, &r, "ACL", "SETUSER", f.acl_user, "reset", "on", pw, rule, "+@all", NULL);
    if (r.type != '+') {
        fprintf(stderr, "test_cache: ACL SETUSER: %s\n", r.text);
        return -1;
    }
    snprintf(f.acl_url, sizeof(f.acl_url), "redis://%s:%s@%s%s%s:%s/9", f.acl_user, ACL_PASS,
             strchr(f.host, ':') != NULL ? "[" : "", f.host, strchr(f.host, ':') != NULL ? "]" : "",
             f.port);
    f.c = cache_conn_create(f.url, 2000, &err);
    if (f.c == NULL) {
        fprintf(stderr, "test_cache: cache_conn_create(%s): %s %s\n", f.url,
                tx_status_name(err.code), err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    struct raw_reply r;

    cache_conn_destroy(f->c);
    f->c = NULL;
    if (f->admin >= 0) {
        static const char *const del_lua =
            "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
            "n = n + redis.call('DEL', k) end return n";
        char pattern[128];
        char db[24];

        raw_cmd(f->admin, &r, "CLIENT", "UNPAUSE", NULL);
        /* Keys a failed test left behind, in both databases used. */
        snprintf(pattern, sizeof(pattern), "%s*", f->prefix);
        for (int i = 0; i < 2; i++) {
            snprintf(db, sizeof(db), "%ld", i == 0 ? f->db : 9L);
            raw_cmd(f->admin, &r, "SELECT", db, NULL);
            raw_cmd(f->admin, &r, "EVAL", del_lua, "0", pattern, NULL);
            if (r.type == ':' && r.num > 0)
                fprintf(stderr, "test_cache: deleted %lld leftover key(s) in database %s\n", r.num,
                        db);
        }
        if (f->acl_user[0] != '\0')
            raw_cmd(f->admin, &r, "ACL", "DELUSER", f->acl_user, NULL);
        close(f->admin);
        f->admin = -1;
    }
    return 0;
}

static void key_of(const struct fixture *f, char *out, size_t outlen, const char *name)
{
    int n = snprintf(out, outlen, "%s%s", f->prefix, name);

    assert_true(n > 0 && (size_t) n < outlen);
}

static void must(int rc, const struct tx_err *err, const char *what)
{
    if (rc != 0)
        fail_msg("%s: %s (%s)", what, tx_status_name(rc), err->msg);
}

/* Deletes key through the admin connection (in the fixture's database). */
static void raw_del(struct fixture *f, const char *key)
{
    struct raw_reply r;

    raw_cmd(f->admin, &r, "DEL", key, NULL);
    assert_int_equal(r.type, ':');
}

/* ---- tests ---- */

static void t_ping(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };

    must(cache_ping(f->c, &err), &err, "ping");
}

static void t_set_many_ttl(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    struct cache_kv kv[NKEYS];
    char keys[NKEYS][128];
    char vals[NKEYS][32];
    struct raw_reply r;

    for (int i = 0; i < NKEYS; i++) {
        char name[32];

        snprintf(name, sizeof(name), "many:%d", i);
        key_of(f, keys[i], sizeof(keys[i]), name);
        snprintf(vals[i], sizeof(vals[i]), "{\"n\":%d}", i);
        kv[i].key = keys[i];
        kv[i].val = vals[i];
        kv[i].len = strlen(vals[i]);
    }
    must(cache_set_many(f->c, kv, 0, TTL_S, &err), &err, "set_many of 0");
    assert_int_equal(cache_set_many(f->c, kv, NKEYS, 0, &err), TX_EINVAL);
    must(cache_set_many(f->c, kv, NKEYS, TTL_S, &err), &err, "set_many");
    for (int i = 0; i < NKEYS; i++) {
        char *v = NULL;
        size_t len = 0;
        long ttl = -5;

        must(cache_get(f->c, keys[i], &v, &len, &ttl, &err), &err, "get");
        assert_int_equal(len, strlen(vals[i]));
        assert_string_equal(v, vals[i]);
        if (ttl <= 0 || ttl > TTL_S)
            fail_msg("key %d: TTL %ld not in (0,%d]", i, ttl, TTL_S);
        free(v);
        /* Independent check of the expiry the server holds. */
        raw_cmd(f->admin, &r, "PTTL", keys[i], NULL);
        assert_int_equal(r.type, ':');
        if (r.num <= 0 || r.num > TTL_S * 1000)
            fail_msg("key %d: PTTL %lld not in (0,%d]", i, r.num, TTL_S * 1000);
    }
    for (int i = 0; i < NKEYS; i++)
        must(cache_del(f->c, keys[i], &err), &err, "del");
    assert_int_equal(cache_del(f->c, keys[0], &err), TX_ENOTFOUND);
}

static void t_binary_values(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    static const char small[] = "a\0b\r\nc\0\0\xff\xfe end";
    size_t big_len = 1024 * 1024 + 3;
    char *big = malloc(big_len);
    char key[128];
    char key2[128];
    char *v = NULL;
    size_t len = 0;
    struct raw_reply r;
    struct cache_kv kv[2];

    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char) ((i * 7919u) % 256u);
    key_of(f, key, sizeof(key), "bin:small");
    key_of(f, key2, sizeof(key2), "bin:big");
    must(cache_set(f->c, key, small, sizeof(small) - 1, TTL_S, &err), &err, "set small");
    must(cache_get(f->c, key, &v, &len, NULL, &err), &err, "get small");
    assert_int_equal(len, sizeof(small) - 1);
    assert_memory_equal(v, small, len);
    assert_int_equal(v[len], '\0');
    free(v);
    raw_cmd(f->admin, &r, "STRLEN", key, NULL);
    assert_int_equal(r.num, (long long) sizeof(small) - 1);

    /* Through the pipeline too, and an empty value. */
    kv[0] = (struct cache_kv){ .key = key, .val = "", .len = 0 };
    kv[1] = (struct cache_kv){ .key = key2, .val = big, .len = big_len };
    must(cache_set_many(f->c, kv, 2, TTL_S, &err), &err, "set_many binary");
    must(cache_get(f->c, key2, &v, &len, NULL, &err), &err, "get big");
    assert_int_equal(len, big_len);
    assert_memory_equal(v, big, big_len);
    free(v);
    must(cache_get(f->c, key, &v, &len, NULL, &err), &err, "get empty");
    assert_int_equal(len, 0);
    assert_string_equal(v, "");
    free(v);
    raw_cmd(f->admin, &r, "STRLEN", key2, NULL);
    assert_int_equal(r.num, (long long) big_len);
    raw_del(f, key);
    raw_del(f, key2);
    free(big);
}

static void t_get_missing(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    char key[128];
    char *v = (char *) 1;
    long ttl = 7;

    key_of(f, key, sizeof(key), "missing");
    assert_int_equal(cache_get(f->c, key, &v, NULL, NULL, &err), TX_ENOTFOUND);
    assert_null(v);
    assert_int_equal(err.code, TX_ENOTFOUND);
    v = (char *) 1;
    assert_int_equal(cache_get(f->c, key, &v, NULL, &ttl, &err), TX_ENOTFOUND);
    assert_null(v);
    assert_int_equal(cache_get(f->c, "", &v, NULL, NULL, &err), TX_EINVAL);
}

static void t_wrong_type(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    char key[128];
    char *v = NULL;
    struct raw_reply r;

    key_of(f, key, sizeof(key), "list");
    raw_cmd(f->admin, &r, "RPUSH", key, "x", NULL);
    assert_int_equal(r.type, ':');
    assert_int_equal(cache_get(f->c, key, &v, NULL, NULL, &err), TX_EIO);
    assert_non_null(strstr(err.msg, "WRONGTYPE"));
    assert_null(v);
    assert_int_equal(cache_get(f->c, key, &v, NULL, &(long){ 0 }, &err), TX_EIO);
    assert_non_null(strstr(err.msg, "WRONGTYPE"));
    /* The connection is still in step. */
    must(cache_ping(f->c, &err), &err, "ping after error reply");
    raw_del(f, key);
}

static void t_set_nx(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    char key[128];
    char *old = NULL;
    size_t oldlen = 0;
    char *v = NULL;
    long ttl = 0;

    key_of(f, key, sizeof(key), "idem");
    must(cache_set_nx(f->c, key, "first\0x", 7, TTL_S, &old, &oldlen, &err), &err, "set_nx 1");
    assert_null(old);
    assert_int_equal(cache_set_nx(f->c, key, "second", 6, TTL_S, &old, &oldlen, &err), TX_EEXIST);
    assert_int_equal(err.code, TX_EEXIST);
    assert_non_null(old);
    assert_int_equal(oldlen, 7);
    assert_memory_equal(old, "first\0x", 7);
    free(old);
    old = NULL;
    /* Without asking for the old value. */
    assert_int_equal(cache_set_nx(f->c, key, "third", 5, TTL_S, NULL, NULL, &err), TX_EEXIST);
    /* Unchanged, TTL as set by the first call. */
    must(cache_get(f->c, key, &v, NULL, &ttl, &err), &err, "get");
    assert_memory_equal(v, "first\0x", 7);
    assert_true(ttl > 0 && ttl <= TTL_S);
    free(v);
    must(cache_del(f->c, key, &err), &err, "del");
    must(cache_set_nx(f->c, key, "again", 5, 5, &old, NULL, &err), &err, "set_nx after del");
    assert_null(old);
    must(cache_get(f->c, key, &v, NULL, &ttl, &err), &err, "get");
    assert_string_equal(v, "again");
    assert_true(ttl > 0 && ttl <= 5);
    free(v);
    must(cache_del(f->c, key, &err), &err, "del");
}

static void t_eval(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    const char *lua = "redis.call('SET', KEYS[1], ARGV[1], 'EX', 60)\n"
                      "local n = redis.call('INCR', KEYS[2])\n"
                      "redis.call('EXPIRE', KEYS[2], 60)\n"
                      "return {n, ARGV[1], false, redis.status_reply('FINE'), {7, 'nested'}}\n";
    struct cache_script *s = cache_script_create(lua, &err);
    struct cache_script *bad = NULL;
    struct cache_script *scalar = NULL;
    struct cache_reply out = { 0 };
    char k1[128];
    char k2[128];
    const char *keys[2] = { k1, k2 };
    const char *args[1] = { "val 1" };
    struct raw_reply r;
    char *v = NULL;

    assert_non_null(s);
    assert_int_equal(strlen(cache_script_sha1(s)), 40);
    key_of(f, k1, sizeof(k1), "lua:set");
    key_of(f, k2, sizeof(k2), "lua:count");
    /* The NOSCRIPT path: the server has no scripts at all. */
    raw_cmd(f->admin, &r, "SCRIPT", "FLUSH", NULL);
    expect_ok(f->admin, "SCRIPT FLUSH", &r);
    for (int round = 1; round <= 3; round++) {
        if (round == 3) {
            raw_cmd(f->admin, &r, "SCRIPT", "FLUSH", NULL);
            expect_ok(f->admin, "SCRIPT FLUSH", &r);
        }
        must(cache_eval(f->c, s, keys, 2, args, 1, &out, &err), &err, "eval");
        assert_int_equal(out.n, 6);
        assert_int_equal(out.vals[0].type, CACHE_VAL_INT);
        assert_int_equal(out.vals[0].num, round);
        assert_int_equal(out.vals[1].type, CACHE_VAL_STR);
        assert_int_equal(out.vals[1].len, 5);
        assert_string_equal(out.vals[1].str, "val 1");
        assert_int_equal(out.vals[2].type, CACHE_VAL_NIL);
        assert_int_equal(out.vals[3].type, CACHE_VAL_STR);
        assert_string_equal(out.vals[3].str, "FINE");
        assert_int_equal(out.vals[4].type, CACHE_VAL_INT);
        assert_int_equal(out.vals[4].num, 7);
        assert_string_equal(out.vals[5].str, "nested");
        cache_reply_cleanup(&out);
        assert_null(out.vals);
        assert_int_equal(out.n, 0);
        /* The script is on the server under the SHA1 computed locally. */
        raw_cmd(f->admin, &r, "EVALSHA", cache_script_sha1(s), "2", k1, k2, "x", NULL);
        assert_int_equal(r.type, '*');
        raw_cmd(f->admin, &r, "DECR", k2, NULL);
    }
    must(cache_get(f->c, k1, &v, NULL, NULL, &err), &err, "get script's key");
    assert_string_equal(v, "x");
    free(v);
    /* The reply may be discarded. */
    must(cache_eval(f->c, s, keys, 2, args, 1, NULL, &err), &err, "eval without out");
    cache_reply_cleanup(&out);

    /* A scalar and an empty reply. */
    scalar = cache_script_create("if ARGV[1] == 'empty' then return {} end return 42", &err);
    assert_non_null(scalar);
    must(cache_eval(f->c, scalar, NULL, 0, (const char *[]){ "x" }, 1, &out, &err), &err,
         "eval scalar");
    assert_int_equal(out.n, 1);
    assert_int_equal(out.vals[0].type, CACHE_VAL_INT);
    assert_int_equal(out.vals[0].num, 42);
    cache_reply_cleanup(&out);
    must(cache_eval(f->c, scalar, NULL, 0, (const char *[]){ "empty" }, 1, &out, &err), &err,
         "eval empty");
    assert_int_equal(out.n, 0);
    cache_reply_cleanup(&out);

    /* Script errors are TX_EIO with the server's text; the connection stays usable. */
    bad = cache_script_create("return redis.error_reply('MYERR boom')", &err);
    assert_non_null(bad);
    assert_int_equal(cache_eval(f->c, bad, NULL, 0, NULL, 0, &out, &err), TX_EIO);
    assert_non_null(strstr(err.msg, "MYERR boom"));
    assert_int_equal(out.n, 0);
    cache_script_destroy(bad);
    bad = cache_script_create("return redis.call('NOSUCHCOMMAND')", &err);
    assert_non_null(bad);
    assert_int_equal(cache_eval(f->c, bad, NULL, 0, NULL, 0, &out, &err), TX_EIO);
    cache_script_destroy(bad);
    bad = cache_script_create("this is not lua", &err);
    assert_non_null(bad);
    assert_int_equal(cache_eval(f->c, bad, NULL, 0, NULL, 0, &out, &err), TX_EIO);
    cache_script_destroy(bad);
    assert_null(cache_script_create("", &err));
    assert_int_equal(err.code, TX_EINVAL);
    must(cache_ping(f->c, &err), &err, "ping after script errors");

    cache_script_destroy(scalar);
    cache_script_destroy(s);
    raw_del(f, k1);
    raw_del(f, k2);
}

/* An ACL user limited to this run's keys: AUTH from the URL, SELECT 9, NOPERM mid-pipeline. */
static void t_acl_user_and_pipeline_errors(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    struct cache_conn *u = cache_conn_create(f->acl_url, 2000, &err);
    struct cache_kv kv[3];
    char k0[128];
    char k2[128];
    char *v = NULL;
    struct raw_reply r;

    if (u == NULL)
        fail_msg("connect as ACL user: %s (%s)", tx_status_name(err.code), err.msg);
    key_of(f, k0, sizeof(k0), "acl:0");
    key_of(f, k2, sizeof(k2), "acl:2");
    kv[0] = (struct cache_kv){ .key = k0, .val = "zero", .len = 4 };
    kv[1] = (struct cache_kv){ .key = "txtest:not-this-run", .val = "no", .len = 2 };
    kv[2] = (struct cache_kv){ .key = k2, .val = "two", .len = 3 };
    assert_int_equal(cache_set_many(u, kv, 3, TTL_S, &err), TX_EIO);
    assert_non_null(strstr(err.msg, "NOPERM"));
    assert_non_null(strstr(err.msg, "key 1"));
    /* Every reply was read: the connection is in step and the others were set. */
    must(cache_get(u, k2, &v, NULL, NULL, &err), &err, "get k2");
    assert_string_equal(v, "two");
    free(v);
    must(cache_get(u, k0, &v, NULL, NULL, &err), &err, "get k0");
    assert_string_equal(v, "zero");
    free(v);
    /* They are in database 9, as the URL says. */
    raw_cmd(f->admin, &r, "SELECT", "9", NULL);
    expect_ok(f->admin, "SELECT 9", &r);
    raw_cmd(f->admin, &r, "GET", k0, NULL);
    assert_string_equal(r.text, "zero");
    raw_cmd(f->admin, &r, "EXISTS", "txtest:not-this-run", NULL);
    assert_int_equal(r.num, 0);
    raw_del(f, k0);
    raw_del(f, k2);
    {
        char db[24];

        snprintf(db, sizeof(db), "%ld", f->db);
        raw_cmd(f->admin, &r, "SELECT", db, NULL);
        expect_ok(f->admin, "SELECT back", &r);
    }
    cache_conn_destroy(u);
}

/* The server closes an idle connection: the next call reconnects (AUTH, SELECT) and succeeds. */
static void t_idle_connection_killed(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    struct cache_conn *u = cache_conn_create(f->acl_url, 2000, &err);
    struct raw_reply r;
    char key[128];
    char *v = NULL;

    if (u == NULL)
        fail_msg("connect as ACL user: %s (%s)", tx_status_name(err.code), err.msg);
    must(cache_ping(u, &err), &err, "ping");
    for (int round = 0; round < 3; round++) {
        raw_cmd(f->admin, &r, "CLIENT", "KILL", "USER", f->acl_user, NULL);
        assert_int_equal(r.type, ':');
        assert_int_equal(r.num, 1);
        usleep(50 * 1000);
        must(cache_ping(u, &err), &err, "ping after CLIENT KILL");
    }
    raw_cmd(f->admin, &r, "CLIENT", "KILL", "USER", f->acl_user, NULL);
    assert_int_equal(r.num, 1);
    usleep(50 * 1000);
    key_of(f, key, sizeof(key), "killed");
    must(cache_set(u, key, "still db 9", 10, TTL_S, &err), &err, "set after kill");
    must(cache_get(u, key, &v, NULL, NULL, &err), &err, "get");
    assert_string_equal(v, "still db 9");
    free(v);
    raw_cmd(f->admin, &r, "SELECT", "9", NULL);
    raw_cmd(f->admin, &r, "GET", key, NULL);
    assert_string_equal(r.text, "still db 9");
    raw_del(f, key);
    {
        char db[24];

        snprintf(db, sizeof(db), "%ld", f->db);
        raw_cmd(f->admin, &r, "SELECT", db, NULL);
    }
    cache_conn_destroy(u);
}

static void t_wrong_password(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    char url[512];
    struct cache_conn *u;

    snprintf(url, sizeof(url), "redis://%s:wrong-%s@%s%s%s:%s/0", f->acl_user, ACL_PASS,
             strchr(f->host, ':') != NULL ? "[" : "", f->host,
             strchr(f->host, ':') != NULL ? "]" : "", f->port);
    u = cache_conn_create(url, 2000, &err);
    assert_null(u);
    assert_int_equal(err.code, TX_EREJECT);
    assert_non_null(strstr(err.msg, "WRONGPASS"));
    assert_null(strstr(err.msg, "wrong-" ACL_PASS));
}

/* A stalled server: the call times out and the NEXT call on the same object succeeds. */
static void t_timeout_recovery(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    struct cache_conn *c = cache_conn_create(f->url, 300, &err);
    struct raw_reply r;
    char key[128];
    char *v = NULL;
    int64_t t0;
    int64_t dt;
    int rc;

    if (c == NULL)
        fail_msg("connect: %s (%s)", tx_status_name(err.code), err.msg);
    key_of(f, key, sizeof(key), "pause");
    must(cache_set(c, key, "before", 6, TTL_S, &err), &err, "set before");
    raw_cmd(f->admin, &r, "CLIENT", "PAUSE", "1500", "WRITE", NULL);
    expect_ok(f->admin, "CLIENT PAUSE", &r);
    t0 = tx_time_mono_ms();
    rc = cache_set(c, key, "during", 6, TTL_S, &err);
    dt = tx_time_mono_ms() - t0;
    if (rc != TX_ETIMEDOUT && rc != TX_EUNAVAIL)
        fail_msg("set during pause: %s (%s), want ETIMEDOUT/EUNAVAIL", tx_status_name(rc), err.msg);
    if (dt < 250 || dt > 1200)
        fail_msg("set during pause failed after %lld ms, want about 300", (long long) dt);
    /* Next call, same object, server still paused for writes: a read works at once. */
    t0 = tx_time_mono_ms();
    must(cache_get(c, key, &v, NULL, NULL, &err), &err, "get right after the timeout");
    dt = tx_time_mono_ms() - t0;
    assert_true(dt < 250);
    assert_string_equal(v, "before");
    free(v);
    must(cache_ping(c, &err), &err, "ping during pause");
    raw_cmd(f->admin, &r, "CLIENT", "UNPAUSE", NULL);
    expect_ok(f->admin, "CLIENT UNPAUSE", &r);
    must(cache_set(c, key, "after", 5, TTL_S, &err), &err, "set after pause");
    must(cache_get(c, key, &v, NULL, NULL, &err), &err, "get after pause");
    assert_string_equal(v, "after");
    free(v);
    must(cache_del(c, key, &err), &err, "del");
    cache_conn_destroy(c);
}

/* A server that accepts but never answers (a listening socket nobody reads). */
static void t_silent_server(void **state)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t salen = sizeof(sa);
    struct tx_err err = { 0 };
    struct cache_conn *c;
    char url[64];
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int64_t t0;
    int64_t dt;
    int rc;

    (void) state;
    assert_true(lfd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 16), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *) &sa, &salen), 0);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(sa.sin_port));
    c = cache_conn_create(url, 200, &err); /* no AUTH, database 0: nothing sent yet */
    if (c == NULL)
        fail_msg("connect: %s (%s)", tx_status_name(err.code), err.msg);
    for (int i = 0; i < 2; i++) {
        t0 = tx_time_mono_ms();
        rc = cache_ping(c, &err);
        dt = tx_time_mono_ms() - t0;
        assert_int_equal(rc, TX_ETIMEDOUT);
        assert_non_null(strstr(err.msg, "200 ms"));
        if (dt < 150 || dt > 1000)
            fail_msg("ping timed out after %lld ms, want about 200", (long long) dt);
    }
    cache_conn_destroy(c);
    /* With a database in the URL, SELECT at connect time times out. */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", ntohs(sa.sin_port));
    assert_null(cache_conn_create(url, 200, &err));
    assert_int_equal(err.code, TX_ETIMEDOUT);
    close(lfd);
}

/*
 * Accepts one connection and, once the client is writing, half-closes it (FIN) and then closes
 * it with unread data (RST): the client's next write fails with EPIPE, which raises SIGPIPE.
 */
static void *resetting_server(void *arg)
{
    int lfd = *(int *) arg;
    int fd = accept(lfd, NULL, NULL);
    char buf[4096];

    if (fd < 0)
        return NULL;
    (void) recv(fd, buf, sizeof(buf), 0);
    shutdown(fd, SHUT_WR);
    usleep(200 * 1000);
    close(fd);
    return NULL;
}

/* Writing into a connection the peer reset must not kill the process with SIGPIPE. */
static void t_sigpipe(void **state)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t salen = sizeof(sa);
    struct tx_err err = { 0 };
    struct cache_conn *c;
    struct cache_kv kv[8];
    size_t big_len = 4u * 1024u * 1024u;
    char *big = calloc(1, big_len);
    char url[64];
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    pthread_t th;
    sigset_t mask;
    sigset_t pending;
    int rc;

    (void) state;
    assert_non_null(big);
    assert_true(lfd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *) &sa, &salen), 0);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(sa.sin_port));
    c = cache_conn_create(url, 5000, &err);
    if (c == NULL)
        fail_msg("connect: %s (%s)", tx_status_name(err.code), err.msg);
    assert_int_equal(pthread_create(&th, NULL, resetting_server, &lfd), 0);
    for (int i = 0; i < 8; i++)
        kv[i] = (struct cache_kv){ .key = "txtest:sigpipe", .val = big, .len = big_len };
    rc = cache_set_many(c, kv, 8, 10, &err); /* 32 MiB: still writing when the reset comes */
    assert_int_equal(rc, TX_EUNAVAIL);
    pthread_join(th, NULL);
    /* The caller's signal state is as before: SIGPIPE not blocked, none pending. */
    assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &mask), 0);
    assert_int_equal(sigismember(&mask, SIGPIPE), 0);
    assert_int_equal(sigpending(&pending), 0);
    assert_int_equal(sigismember(&pending, SIGPIPE), 0);
    cache_conn_destroy(c);
    close(lfd);
    free(big);
}

struct worker {
    const struct fixture *f;
    int id;
    int failures;
    char msg[300];
};

/* One connection per thread, as the gateway's pool uses them. */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct tx_err err = { 0 };
    struct cache_conn *c = cache_conn_create(w->f->url, 2000, &err);

    if (c == NULL) {
        w->failures++;
        snprintf(w->msg, sizeof(w->msg), "connect: %s", err.msg);
        return NULL;
    }
    for (int i = 0; i < 200; i++) {
        char key[160];
        char val[64];
        char *got = NULL;
        size_t len = 0;

        snprintf(key, sizeof(key), "%sthread:%d:%d", w->f->prefix, w->id, i);
        snprintf(val, sizeof(val), "w%d-%d", w->id, i);
        if (cache_set(c, key, val, strlen(val), TTL_S, &err) != 0 ||
            cache_get(c, key, &got, &len, NULL, &err) != 0 || strcmp(got, val) != 0 ||
            cache_del(c, key, &err) != 0) {
            w->failures++;
            snprintf(w->msg, sizeof(w->msg), "key %d: %.200s", i, err.msg);
        }
        free(got);
    }
    cache_conn_destroy(c);
    return NULL;
}

static void t_threads(void **state)
{
    struct fixture *f = *state;
    struct worker w[4];
    pthread_t th[4];

    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ .f = f, .id = i };
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures != 0)
            fail_msg("thread %d: %d failure(s), last: %s", i, w[i].failures, w[i].msg);
    }
}

static void t_refused(void **state)
{
    struct tx_err err = { 0 };
    int64_t t0 = tx_time_mono_ms();
    struct cache_conn *c = cache_conn_create("redis://127.0.0.1:1/0", 2000, &err);

    (void) state;
    assert_null(c);
    assert_int_equal(err.code, TX_EUNAVAIL);
    assert_true(tx_time_mono_ms() - t0 < 1000);
    assert_non_null(strstr(err.msg, "127.0.0.1:1"));
}

static void t_bad_urls(void **state)
{
    static const char *const bad[] = {
        NULL,
        "",
        "http://127.0.0.1:6379",
        "rediss://127.0.0.1:6379",
        "redis://",
        "redis://:6379",
        "redis://127.0.0.1:0",
        "redis://127.0.0.1:65536",
        "redis://127.0.0.1:12x",
        "redis://127.0.0.1:",
        "redis://127.0.0.1:6379/abc",
        "redis://127.0.0.1:6379/0/1",
        "redis://127.0.0.1:6379/0?timeout=1",
        "redis://user@127.0.0.1:6379",
        "redis://:p%zz@127.0.0.1:6379",
        "redis://:p%00@127.0.0.1:6379",
        "redis://[::1:6379",
        "redis://bad host:6379",
    };
    struct tx_err err = { 0 };

    (void) state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cache_conn *c = cache_conn_create(bad[i], 1000, &err);

        if (c != NULL || err.code != TX_EINVAL)
            fail_msg("URL '%s': %s (%s), want EINVAL", bad[i] != NULL ? bad[i] : "(null)",
                     tx_status_name(err.code), err.msg);
    }
    assert_null(cache_conn_create("redis://127.0.0.1:6379", -1, &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(cache_conn_create("redis://127.0.0.1:6379", 600001, &err));
    assert_int_equal(err.code, TX_EINVAL);
}

static void t_bad_arguments(void **state)
{
    struct fixture *f = *state;
    struct tx_err err = { 0 };
    char key[128];

    key_of(f, key, sizeof(key), "args");
    assert_int_equal(cache_set(f->c, key, "v", 1, 0, &err), TX_EINVAL);
    assert_int_equal(cache_set(f->c, key, "v", 1, -3, &err), TX_EINVAL);
    assert_int_equal(cache_set(f->c, NULL, "v", 1, 10, &err), TX_EINVAL);
    assert_int_equal(cache_set(f->c, key, NULL, 1, 10, &err), TX_EINVAL);
    assert_int_equal(cache_set_nx(f->c, key, "v", 1, 0, NULL, NULL, &err), TX_EINVAL);
    assert_int_equal(cache_del(f->c, "", &err), TX_EINVAL);
    assert_int_equal(cache_eval(f->c, NULL, NULL, 0, NULL, 0, NULL, &err), TX_EINVAL);
    cache_conn_destroy(NULL);
    cache_script_destroy(NULL);
    cache_reply_cleanup(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_ping),
        cmocka_unit_test(t_set_many_ttl),
        cmocka_unit_test(t_binary_values),
        cmocka_unit_test(t_get_missing),
        cmocka_unit_test(t_wrong_type),
        cmocka_unit_test(t_set_nx),
        cmocka_unit_test(t_eval),
        cmocka_unit_test(t_acl_user_and_pipeline_errors),
        cmocka_unit_test(t_idle_connection_killed),
        cmocka_unit_test(t_wrong_password),
        cmocka_unit_test(t_timeout_recovery),
        cmocka_unit_test(t_silent_server),
        cmocka_unit_test(t_sigpipe),
        cmocka_unit_test(t_threads),
        cmocka_unit_test(t_refused),
        cmocka_unit_test(t_bad_urls),
        cmocka_unit_test(t_bad_arguments),
    };

    return cmocka_run_group_tests_name("storage/cache (hiredis)", tests, setup, teardown);
}
