/*
 * Integration tests of txfraud against the Redis and RabbitMQ of `ci/stack`. Starts no server.
 *
 * Needs TX_REDIS_URL, TX_AMQP_URL (an administrator: the handler tests publish to their own
 * exchange) and TX_RABBIT_MGMT_URL (to declare, read and delete that exchange and queue). Every
 * Redis key a test writes starts with a private prefix "tx:fraud:test:<pid>-<random>:" (the flag
 * too, except in the one test of the real tx:flag:<_id> key, whose client id is unique) and is
 * deleted at the end, so parallel runs, other developers and a running txfraud never meet these
 * keys. The seed files are read byte for byte from $TX_SEED_DIR (or ../shared/seed-data).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/tx_buf.h"
#include "common/tx_event.h"
#include "common/tx_id.h"
#include "common/tx_metrics.h"
#include "common/tx_record.h"
#include "common/tx_time.h"
#include "consumers/fraud/fraud_app.h"
#include "consumers/fraud/fraud_rules.h"
#include "consumers/fraud/fraud_state.h"
#include "storage/cache.h"
#include "storage/queue.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct env {
    const char *redis_url;
    const char *amqp_url;
    const char *mgmt_url;
    char seed_dir[1024];
    char rules_path[1024];
    char tag[48];         /* <pid>-<random> */
    char key_prefix[96];  /* tx:fraud:test:<tag>: */
    char flag_prefix[96]; /* tx:fraud:test:<tag>:flag: */
    char exchange[96];
    char queue[96];
    struct fraud_rules rules; /* the repository's rules file */
    struct cache_conn *redis;
    struct cache_script *cmd;
    struct cache_script *wipe;
    struct fraud_state *st;
    int seq;
};

static struct env E;

/* ---- helpers ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* A unique client id per case, so cases and parallel runs never share state. */
static const char *client(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "%s-%s-%d", what, E.tag, ++E.seq);
    return buf;
}

/* A new upload id and the event id of its record index. */
static void new_event_id(char upload[TX_UUID_STR_LEN + 1], size_t index,
                         char eid[TX_EVENT_ID_MAX + 1])
{
    assert_int_equal(tx_uuid7_make(tx_time_now_ms(), upload), 0);
    tx_event_id_format(upload, index, eid);
}

/* Runs one Redis command through a script (the tests need no hiredis of their own). */
static void redis_cmd(struct cache_reply *out, const char *const *args, size_t n)
{
    struct tx_err err = { 0 };

    if (cache_eval(E.redis, E.cmd, NULL, 0, args, n, out, &err) != 0)
        fail_msg("redis %s: %s", args[0], err.msg);
}

static long long redis_int(const char *const *args, size_t n)
{
    struct cache_reply r = { 0 };
    long long v;

    redis_cmd(&r, args, n);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.vals[0].type, CACHE_VAL_INT);
    v = r.vals[0].num;
    cache_reply_cleanup(&r);
    return v;
}

/* One key of a client in the private namespace: <prefix>{<id>}:<suffix>. */
static const char *ckey(char *buf, size_t len, const char *id, const char *suffix)
{
    snprintf(buf, len, "%s{%s}:%s", E.key_prefix, id, suffix);
    return buf;
}

/* A record (one JSON object) parsed into a batch the caller destroys. */
static const struct tx_record *record(struct tx_batch **b, const char *id, bool active,
                                      const char *email, const char *addr, const char *date,
                                      const char *extra)
{
    char json[2048];
    struct tx_err err = { 0 };

    snprintf(json, sizeof(json),
             "{\"_id\":\"%s\",\"isActive\":%s,\"cliente\":\"Cliente %s\",\"email\":\"%s\","
             "\"endereco\":\"%s\",\"datatrasancao\":\"%s\"%s}",
             id, active ? "true" : "false", id, email, addr, date, extra != NULL ? extra : "");
    if (tx_batch_parse(json, strlen(json), TX_FORMAT_JSON, NULL, b, &err) != 0)
        fail_msg("bad test record: %s: %s", err.msg, json);
    return &(*b)->records[0];
}

/* Scores rec with a fresh event id at arrival time t (0: the server's clock). */
static void score_at(struct fraud_state *st, const struct fraud_rules *rules,
                     const struct tx_record *rec, int64_t t, char eid[TX_EVENT_ID_MAX + 1],
                     struct fraud_result *res)
{
    char upload[TX_UUID_STR_LEN + 1];
    char own[TX_EVENT_ID_MAX + 1];
    struct tx_err err = { 0 };

    if (eid == NULL)
        eid = own;
    new_event_id(upload, rec->index, eid);
    if (fraud_state_score(st, rules, eid, rec, t, 0, res, &err) != 0)
        fail_msg("fraud_state_score: %s", err.msg);
}

static const struct tx_reason *reason(const struct fraud_result *res, const char *code)
{
    size_t i;

    for (i = 0; i < res->verdict.nreasons; i++) {
        if (strcmp(res->verdict.reasons[i].code, code) == 0)
            return &res->verdict.reasons[i];
    }
    return NULL;
}

/* The repository's rules with only the rules in mask enabled. */
static struct fraud_rules only(unsigned mask)
{
    struct fraud_rules r = E.rules;
    int i;

    for (i = 0; i < FRAUD_NRULES; i++)
        r.rule[i].enabled = (mask & (1u << i)) != 0;
    return r;
}

#define BIT(id) (1u << (id))

/* ---- management API ---- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    return tx_buf_append(ud, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

static long mgmt(const char *method, const char *path, const char *body, struct tx_buf *out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    struct tx_buf sink;
    char url[1024];
    long status = 0;

    assert_non_null(h);
    tx_buf_init(&sink, 8u << 20);
    snprintf(url, sizeof(url), "%s%s", E.mgmt_url, path);
    hdrs = curl_slist_append(hdrs, "content-type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out != NULL ? out : &sink);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    tx_buf_cleanup(&sink);
    return status;
}

/* Takes (and acks) the messages of the test queue: at least one read, then more until want
 * messages came or 10 s passed. */
static json_t *take_messages(size_t want)
{
    char path[256];
    char body[160];
    json_t *all = json_array();
    int64_t until = tx_time_mono_ms() + 10000;

    snprintf(path, sizeof(path), "/api/queues/%%2F/%s/get", E.queue);
    snprintf(body, sizeof(body),
             "{\"count\":1000,\"ackmode\":\"ack_requeue_false\",\"encoding\":\"auto\"}");
    do {
        struct tx_buf out;
        json_t *got;

        tx_buf_init(&out, 64u << 20);
        assert_int_equal(mgmt("POST", path, body, &out), 200);
        got = json_loadb(out.data, out.len, 0, NULL);
        assert_non_null(got);
        json_array_extend(all, got);
        json_decref(got);
        tx_buf_cleanup(&out);
        if (json_array_size(all) < want)
            sleep_ms(100);
    } while (json_array_size(all) < want && tx_time_mono_ms() < until);
    return all;
}

/* ---- setup ---- */

static int setup(void **state)
{
    const char *src = getenv("TX_SOURCE_DIR");
    const char *seed = getenv("TX_SEED_DIR");
    struct fraud_state_config sc = { 0 };
    struct tx_err err = { 0 };
    unsigned r;
    long st;
    char path[256];
    char body[256];

    (void) state;
    E.redis_url = getenv("TX_REDIS_URL");
    E.amqp_url = getenv("TX_AMQP_URL");
    E.mgmt_url = getenv("TX_RABBIT_MGMT_URL");
    if (E.redis_url == NULL || E.amqp_url == NULL || E.mgmt_url == NULL) {
        fprintf(stderr, "test_fraud: run `eval \"$(ci/stack env)\"` first (needs TX_REDIS_URL, "
                        "TX_AMQP_URL, TX_RABBIT_MGMT_URL)\n");
        return -1;
    }
    snprintf(E.seed_dir, sizeof(E.seed_dir), "%s", seed != NULL ? seed : "../shared/seed-data");
    snprintf(E.rules_path, sizeof(E.rules_path), "%s/volumes/fraud/rules.json",
             src != NULL ? src : ".");
    if (fraud_rules_load(E.rules_path, &E.rules, &err) != 0) {
        fprintf(stderr, "test_fraud: %s\n", err.msg);
        return -1;
    }
    srand((unsigned) (tx_time_now_ms() ^ getpid()));
    r = (unsigned) rand();
    snprintf(E.tag, sizeof(E.tag), "%d-%08x", (int) getpid(), r);
    snprintf(E.key_prefix, sizeof(E.key_prefix), "tx:fraud:test:%s:", E.tag);
    snprintf(E.flag_prefix, sizeof(E.flag_prefix), "tx:fraud:test:%s:flag:", E.tag);
    snprintf(E.exchange, sizeof(E.exchange), "txtest.fraud.%s.x", E.tag);
    snprintf(E.queue, sizeof(E.queue), "txtest.fraud.%s.scored", E.tag);
    E.redis = cache_conn_create(E.redis_url, 5000, &err);
    if (E.redis == NULL) {
        fprintf(stderr, "test_fraud: redis: %s\n", err.msg);
        return -1;
    }
    E.cmd = cache_script_create("return redis.call(unpack(ARGV))", &err);
    E.wipe = cache_script_create("local cur, n = '0', 0\n"
                                 "repeat\n"
                                 "  local r = redis.call('SCAN', cur, 'MATCH', ARGV[1], "
                                 "'COUNT', 1000)\n"
                                 "  cur = r[1]\n"
                                 "  for _, k in ipairs(r[2]) do redis.call('DEL', k); n = n + 1 "
                                 "end\n"
                                 "until cur == '0'\n"
                                 "return n\n",
                                 &err);
    sc.redis_url = E.redis_url;
    sc.timeout_ms = 5000;
    sc.key_prefix = E.key_prefix;
    sc.flag_prefix = E.flag_prefix;
    E.st = fraud_state_create(&sc, &err);
    if (E.cmd == NULL || E.wipe == NULL || E.st == NULL) {
        fprintf(stderr, "test_fraud: %s\n", err.msg);
        return -1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(path, sizeof(path), "/api/exchanges/%%2F/%s", E.exchange);
    st = mgmt("PUT", path, "{\"type\":\"topic\",\"durable\":false,\"auto_delete\":false}", NULL);
    if (st / 100 == 2) {
        snprintf(path, sizeof(path), "/api/queues/%%2F/%s", E.queue);
        st = mgmt("PUT", path, "{\"durable\":false,\"auto_delete\":false}", NULL);
    }
    if (st / 100 == 2) {
        snprintf(path, sizeof(path), "/api/bindings/%%2F/e/%s/q/%s", E.exchange, E.queue);
        snprintf(body, sizeof(body), "{\"routing_key\":\"transaction.scored\"}");
        st = mgmt("POST", path, body, NULL);
    }
    if (st / 100 != 2) {
        fprintf(stderr, "test_fraud: management API %s answered %ld\n", path, st);
        return -1;
    }
    return 0;
}

static int teardown(void **state);

/* Undo what a failed setup created (teardown is idempotent, whether or not this cmocka runs the
 * group teardown after a failed setup). */
static int setup_or_clean(void **state)
{
    if (setup(state) == 0)
        return 0;
    teardown(state);
    return -1;
}

static int teardown(void **state)
{
    char pattern[128];
    char path[256];
    const char *args[1];
    struct tx_err err = { 0 };

    (void) state;
    snprintf(pattern, sizeof(pattern), "%s*", E.key_prefix);
    args[0] = pattern;
    if (E.redis != NULL && E.wipe != NULL)
        cache_eval(E.redis, E.wipe, NULL, 0, args, 1, NULL, &err);
    if (E.mgmt_url != NULL) {
        snprintf(path, sizeof(path), "/api/queues/%%2F/%s", E.queue);
        mgmt("DELETE", path, NULL, NULL);
        snprintf(path, sizeof(path), "/api/exchanges/%%2F/%s", E.exchange);
        mgmt("DELETE", path, NULL, NULL);
    }
    fraud_state_destroy(E.st);
    E.st = NULL;
    cache_script_destroy(E.cmd);
    E.cmd = NULL;
    cache_script_destroy(E.wipe);
    E.wipe = NULL;
    cache_conn_destroy(E.redis);
    E.redis = NULL;
    E.mgmt_url = NULL;
    return 0;
}

/* ---- one rule at a time (explicit arrival times make the windows exact) ---- */

#define T0   1900000000000LL /* arrival times used by the window tests (2030) */
#define DATE "2024-03-11T12:00:00 +00:00"

static void test_address_change(void **state)
{
    struct fraud_rules r = only(BIT(FRAUD_ADDRESS_CHANGE));
    struct tx_batch *b[5] = { 0 };
    struct fraud_result res;
    char id[96];
    const struct tx_reason *why;

    (void) state;
    client(id, sizeof(id), "addr");
    score_at(E.st, &r, record(&b[0], id, true, "a@x.com", "Cidade A, Estado A, 1000", DATE, NULL),
             T0, NULL, &res);
    assert_false(res.verdict.flagged);
    assert_int_equal(res.verdict.nreasons, 0);
    /* the same address after trimming and case folding: does not fire */
    score_at(E.st, &r,
             record(&b[1], id, true, "a@x.com", "  CIDADE a,   estado A, 1000 ", DATE, NULL),
             T0 + 10000, NULL, &res);
    assert_int_equal(res.verdict.nreasons, 0);
    /* a different address within 60 s of the previous transaction: fires */
    score_at(E.st, &r, record(&b[2], id, true, "a@x.com", "Cidade B, Estado B, 1000", DATE, NULL),
             T0 + 69000, NULL, &res);
    assert_true(res.verdict.flagged);
    assert_true(res.verdict.score == 100.0);
    why = reason(&res, "ADDRESS_CHANGE");
    assert_non_null(why);
    assert_string_equal(why->detail, "address changed within 60 s: '  CIDADE a,   estado A, 1000 "
                                     "' -> 'Cidade B, Estado B, 1000' (59.0 s apart)");
    /* a different address 60.001 s after the previous one: does not fire */
    score_at(E.st, &r, record(&b[3], id, true, "a@x.com", "Cidade C", DATE, NULL), T0 + 129001,
             NULL, &res);
    assert_false(res.verdict.flagged);
    assert_int_equal(res.verdict.nreasons, 0);
    /* exactly 60 s after: fires (the window is inclusive) */
    score_at(E.st, &r, record(&b[4], id, true, "a@x.com", "Cidade D", DATE, NULL), T0 + 189001,
             NULL, &res);
    assert_non_null(reason(&res, "ADDRESS_CHANGE"));
    for (int i = 0; i < 5; i++)
        tx_batch_destroy(b[i]);
}

static void test_email_change(void **state)
{
    struct fraud_rules r = only(BIT(FRAUD_EMAIL_CHANGE));
    struct tx_batch *b[4] = { 0 };
    struct fraud_result res;
    char id[96];

    (void) state;
    client(id, sizeof(id), "email");
    score_at(E.st, &r, record(&b[0], id, true, "fulano@example.com", "Rua 1", DATE, NULL), T0, NULL,
             &res);
    assert_int_equal(res.verdict.nreasons, 0);
    score_at(E.st, &r, record(&b[1], id, true, "Fulano@EXAMPLE.com", "Rua 2", DATE, NULL),
             T0 + 1000, NULL, &res);
    assert_int_equal(res.verdict.nreasons, 0); /* case only; the address rule is off */
    score_at(E.st, &r, record(&b[2], id, true, "outro@example.com", "Rua 2", DATE, NULL), T0 + 2000,
             NULL, &res);
    assert_true(res.verdict.flagged);
    assert_non_null(reason(&res, "EMAIL_CHANGE"));
    assert_non_null(strstr(reason(&res, "EMAIL_CHANGE")->detail,
                           "'Fulano@EXAMPLE.com' -> 'outro@example.com'"));
    score_at(E.st, &r, record(&b[3], id, true, "fulano@example.com", "Rua 2", DATE, NULL),
             T0 + 70000, NULL, &res);
    assert_int_equal(res.verdict.nreasons, 0); /* 68 s later */
    for (int i = 0; i < 4; i++)
        tx_batch_destroy(b[i]);
}

static void test_velocity(void **state)
{
    struct fraud_rules r = only(BIT(FRAUD_VELOCITY));
    struct tx_batch *b = NULL;
    struct fraud_result res;
    const struct tx_record *rec;
    char id[96];
    char key[256];
    long long i;

    (void) state;
    assert_int_equal(r.rule[FRAUD_VELOCITY].threshold, 10);
    assert_int_equal(r.rule[FRAUD_VELOCITY].window_s, 60);
    client(id, sizeof(id), "vel");
    rec = record(&b, id, true, "v@x.com", "Rua 1", DATE, NULL);
    /* 10 within 60 s: allowed */
    for (i = 0; i < 10; i++) {
        score_at(E.st, &r, rec, T0 + i * 5000, NULL, &res);
        assert_int_equal(res.verdict.nreasons, 0);
    }
    /* the 11th within the window fires (60 s after the first: still inside) */
    score_at(E.st, &r, rec, T0 + 60000, NULL, &res);
    assert_non_null(reason(&res, "VELOCITY"));
    assert_false(res.verdict.flagged); /* weight 60 < 100 */
    assert_true(res.verdict.score == 60.0);
    assert_int_equal(res.facts[0].n1, 11);
    assert_string_equal(reason(&res, "VELOCITY")->detail, "11 transactions within 60 s (limit 10)");
    /* 10 s later the first two are out of the window: 10 left, does not fire */
    score_at(E.st, &r, rec, T0 + 70000, NULL, &res);
    assert_int_equal(res.verdict.nreasons, 0);
    assert_int_equal(redis_int((const char *[]){ "ZCARD", ckey(key, sizeof(key), id, "times") }, 2),
                     10);
    tx_batch_destroy(b);
}

static void test_duplicate(void **state)
{
    struct fraud_rules r = only(BIT(FRAUD_DUPLICATE));
    struct tx_batch *b[3] = { 0 };
    struct fraud_result res;
    char id[96];
    char first[TX_EVENT_ID_MAX + 1];
    const struct tx_reason *why;

    (void) state;
    client(id, sizeof(id), "dup");
    record(&b[0], id, true, "d@x.com", "Rua 1", DATE, ",\"valor\":10");
    record(&b[1], id, true, "d@x.com", "Rua 1", DATE, ",\"valor\":11"); /* other content */
    score_at(E.st, &r, &b[0]->records[0], T0, first, &res);
    assert_int_equal(res.verdict.nreasons, 0);
    score_at(E.st, &r, &b[1]->records[0], T0 + 1000, NULL, &res);
    assert_int_equal(res.verdict.nreasons, 0);
    /* identical content again within the hour: fires and names the first event */
    score_at(E.st, &r, &b[0]->records[0], T0 + 2000, NULL, &res);
    why = reason(&res, "DUPLICATE");
    assert_non_null(why);
    assert_non_null(strstr(why->detail, first));
    assert_non_null(strstr(why->detail, "2.0 s earlier"));
    assert_false(res.verdict.flagged); /* weight 40 */
    /* identical again after the window (3600 s after the last copy): does not fire */
    score_at(E.st, &r, &b[0]->records[0], T0 + 2000 + 3600001, NULL, &res);
    assert_int_equal(res.verdict.nreasons, 0);
    tx_batch_destroy(b[0]);
    tx_batch_destroy(b[1]);
}

/* The stateless rules go through the script too (their facts are stored with the verdict). */
static void test_stateless_rules(void **state)
{
    struct fraud_rules r =
        only(BIT(FRAUD_INACTIVE_ACCOUNT) | BIT(FRAUD_FUTURE_DATE) | BIT(FRAUD_AMOUNT));
    struct tx_batch *b = NULL;
    struct fraud_result res;
    char id[96];
    char future[40];

    (void) state;
    client(id, sizeof(id), "stateless");
    score_at(E.st, &r, record(&b, id, true, "s@x.com", "Rua 1", DATE, ",\"valor\":10000"), 0, NULL,
             &res);
    assert_int_equal(res.verdict.nreasons, 0);
    tx_batch_destroy(b);

    score_at(E.st, &r, record(&b, id, false, "s@x.com", "Rua 1", DATE, NULL), 0, NULL, &res);
    assert_true(res.verdict.flagged);
    assert_int_equal(res.verdict.nreasons, 1);
    assert_string_equal(res.verdict.reasons[0].code, "INACTIVE_ACCOUNT");
    tx_batch_destroy(b);

    score_at(E.st, &r, record(&b, id, true, "s@x.com", "Rua 1", DATE, ",\"valor\":10000.01"), 0,
             NULL, &res);
    assert_int_equal(res.verdict.nreasons, 1);
    assert_string_equal(res.verdict.reasons[0].code, "AMOUNT");
    assert_string_equal(res.verdict.reasons[0].detail, "valor 10000.01 above the maximum 10000");
    assert_false(res.verdict.flagged);
    tx_batch_destroy(b);

    /* 10 minutes ahead: beyond the 300 s tolerance. 4 minutes ahead: within it. */
    tx_time_format_ms(tx_time_now_ms() + 600000, future, sizeof(future));
    score_at(E.st, &r, record(&b, id, true, "s@x.com", "Rua 1", future, NULL), 0, NULL, &res);
    assert_int_equal(res.verdict.nreasons, 1);
    assert_string_equal(res.verdict.reasons[0].code, "FUTURE_DATE");
    tx_batch_destroy(b);
    tx_time_format_ms(tx_time_now_ms() + 240000, future, sizeof(future));
    score_at(E.st, &r, record(&b, id, true, "s@x.com", "Rua 1", future, NULL), 0, NULL, &res);
    assert_int_equal(res.verdict.nreasons, 0);
    tx_batch_destroy(b);

    /* weights add up: AMOUNT (60) + FUTURE_DATE (60) reach the threshold of 100 */
    tx_time_format_ms(tx_time_now_ms() + 600000, future, sizeof(future));
    score_at(E.st, &r, record(&b, id, true, "s@x.com", "Rua 1", future, ",\"valor\":20000"), 0,
             NULL, &res);
    assert_int_equal(res.verdict.nreasons, 2);
    assert_true(res.verdict.score == 120.0);
    assert_true(res.verdict.flagged);
    tx_batch_destroy(b);
}

/* ---- the seed scenario ---- */

static struct tx_batch *seed_file(const char *name, size_t *len)
{
    char path[1200];
    char *buf;
    FILE *f;
    long n;
    struct tx_batch *b = NULL;
    struct tx_err err = { 0 };

    snprintf(path, sizeof(path), "%s/%s", E.seed_dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open seed file %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t) n + 1);
    assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    if (tx_batch_parse(buf, (size_t) n, TX_FORMAT_AUTO, NULL, &b, &err) != 0)
        fail_msg("seed file %s does not parse: %s", path, err.msg);
    free(buf);
    *len = (size_t) n;
    return b;
}

/* Upload Dados.json, then Dados - Fraude1.json within 60 s: cliente1's second transaction is
 * flagged ADDRESS_CHANGE, the first is not. Real clock (the server's TIME), repository rules. */
static void test_seed_scenario(void **state)
{
    struct tx_batch *first;
    struct tx_batch *second;
    struct fraud_result r1;
    struct fraud_result r2;
    char e1[TX_EVENT_ID_MAX + 1];
    char e2[TX_EVENT_ID_MAX + 1];
    char key[256];
    char *val = NULL;
    long ttl = 0;
    size_t len;
    struct tx_err err = { 0 };
    json_t *j;

    (void) state;
    first = seed_file("Dados.json", &len);
    assert_int_equal(len, 233); /* byte for byte: CRLF, trailing spaces, no final newline */
    second = seed_file("Dados - Fraude1.json", &len);
    assert_int_equal(first->nrecords, 1);
    assert_int_equal(second->nrecords, 1);
    assert_string_equal(first->records[0].id, "cliente1");

    score_at(E.st, &E.rules, &first->records[0], 0, e1, &r1);
    assert_false(r1.verdict.flagged);
    assert_int_equal(r1.verdict.nreasons, 0);
    assert_int_equal(fraud_state_set_flag(E.st, &E.rules, "cliente1", e1, "u1", &r1, &err), 0);
    snprintf(key, sizeof(key), "%scliente1", E.flag_prefix);
    assert_int_equal(cache_get(E.redis, key, &val, NULL, NULL, &err), TX_ENOTFOUND);

    score_at(E.st, &E.rules, &second->records[0], 0, e2, &r2);
    assert_true(r2.verdict.flagged);
    assert_int_equal(r2.verdict.nreasons, 1);
    assert_string_equal(r2.verdict.reasons[0].code, "ADDRESS_CHANGE");
    assert_non_null(strstr(r2.verdict.reasons[0].detail,
                           "address changed within 60 s: 'Cidade A, Estado A, 1000' -> 'Cidade B, "
                           "Estado B, 1000'"));
    assert_int_equal(fraud_state_set_flag(E.st, &E.rules, "cliente1", e2, "u2", &r2, &err), 0);
    assert_int_equal(cache_get(E.redis, key, &val, &len, &ttl, &err), 0);
    assert_true(ttl > 295 && ttl <= 300);
    j = json_loadb(val, len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "event_id")), e2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "reasons"), 0), "code")),
                        "ADDRESS_CHANGE");
    json_decref(j);
    free(val);
    tx_batch_destroy(first);
    tx_batch_destroy(second);
}

/* The same two files more than 60 s apart: nothing is flagged. */
static void test_seed_scenario_slow(void **state)
{
    struct fraud_state_config sc = { 0 };
    struct fraud_state *st;
    struct tx_batch *first;
    struct tx_batch *second;
    struct fraud_result res;
    struct tx_err err = { 0 };
    char prefix[128];
    size_t len;

    (void) state;
    /* Its own namespace, since test_seed_scenario used cliente1 in E's. */
    snprintf(prefix, sizeof(prefix), "%sslow:", E.key_prefix);
    sc.redis_url = E.redis_url;
    sc.key_prefix = prefix;
    sc.flag_prefix = E.flag_prefix;
    st = fraud_state_create(&sc, &err);
    assert_non_null(st);
    first = seed_file("Dados.json", &len);
    second = seed_file("Dados - Fraude1.json", &len);
    score_at(st, &E.rules, &first->records[0], T0, NULL, &res);
    assert_false(res.verdict.flagged);
    score_at(st, &E.rules, &second->records[0], T0 + 61000, NULL, &res);
    assert_false(res.verdict.flagged);
    assert_int_equal(res.verdict.nreasons, 0);
    tx_batch_destroy(first);
    tx_batch_destroy(second);
    fraud_state_destroy(st);
}

/* ---- idempotency ---- */

static bool same_verdict(const struct fraud_result *a, const struct fraud_result *b)
{
    size_t i;

    if (a->verdict.flagged != b->verdict.flagged || a->verdict.score != b->verdict.score ||
        a->verdict.nreasons != b->verdict.nreasons || a->scored_at_ms != b->scored_at_ms)
        return false;
    for (i = 0; i < a->verdict.nreasons; i++) {
        if (strcmp(a->verdict.reasons[i].code, b->verdict.reasons[i].code) != 0 ||
            strcmp(a->verdict.reasons[i].detail, b->verdict.reasons[i].detail) != 0)
            return false;
    }
    return true;
}

static void test_idempotent(void **state)
{
    struct tx_batch *b1 = NULL;
    struct tx_batch *b2 = NULL;
    struct fraud_result r1;
    struct fraud_result r2;
    struct fraud_result again;
    struct tx_err err = { 0 };
    char id[96];
    char e1[TX_EVENT_ID_MAX + 1];
    char e2[TX_EVENT_ID_MAX + 1];
    char key[400];
    struct cache_reply rep = { 0 };

    (void) state;
    client(id, sizeof(id), "idem");
    record(&b1, id, true, "i@x.com", "Rua 1", DATE, NULL);
    record(&b2, id, true, "i@x.com", "Rua 2", DATE, NULL);
    score_at(E.st, &E.rules, &b1->records[0], 0, e1, &r1);
    assert_false(r1.replayed);
    score_at(E.st, &E.rules, &b2->records[0], 0, e2, &r2);
    assert_true(r2.verdict.flagged); /* ADDRESS_CHANGE */

    /* the second event delivered again: same verdict, nothing counted twice */
    assert_int_equal(fraud_state_score(E.st, &E.rules, e2, &b2->records[0], 0, 0, &again, &err), 0);
    assert_true(again.replayed);
    assert_true(same_verdict(&r2, &again));
    /* the first event delivered again after the second: still not flagged (it is not compared
     * with the second), and the client's last transaction stays the second */
    assert_int_equal(fraud_state_score(E.st, &E.rules, e1, &b1->records[0], 0, 0, &again, &err), 0);
    assert_true(again.replayed);
    assert_true(same_verdict(&r1, &again));
    assert_false(again.verdict.flagged);
    /* counted once each */
    assert_int_equal(redis_int((const char *[]){ "ZCARD", ckey(key, sizeof(key), id, "times") }, 2),
                     2);
    redis_cmd(&rep, (const char *[]){ "HGET", ckey(key, sizeof(key), id, "last"), "e" }, 3);
    assert_int_equal(rep.n, 1);
    assert_string_equal(rep.vals[0].str, e2);
    cache_reply_cleanup(&rep);
    /* no DUPLICATE from its own redelivery; the stored verdict expires after a day */
    assert_null(reason(&again, "DUPLICATE"));
    snprintf(key, sizeof(key), "%s{%s}:v:%s", E.key_prefix, id, e1);
    {
        long long ttl = redis_int((const char *[]){ "PTTL", key }, 2);

        assert_true(ttl > 86390000LL && ttl <= 86400000LL);
    }
    tx_batch_destroy(b1);
    tx_batch_destroy(b2);
}

/* ---- two scorers on one client ---- */

#define PER_THREAD 200

struct worker {
    const char *id;
    const char *addr;
    struct fraud_rules rules;
    struct fraud_result res[PER_THREAD];
    int rc;
    char msg[256];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct fraud_state_config sc = { 0 };
    struct fraud_state *st;
    struct tx_batch *b = NULL;
    struct tx_err err = { 0 };
    char json[512];
    char upload[TX_UUID_STR_LEN + 1];
    char eid[TX_EVENT_ID_MAX + 1];
    int i;

    sc.redis_url = E.redis_url;
    sc.key_prefix = E.key_prefix;
    sc.flag_prefix = E.flag_prefix;
    st = fraud_state_create(&sc, &err);
    if (st == NULL) {
        w->rc = -1;
        snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
        return NULL;
    }
    snprintf(json, sizeof(json),
             "{\"_id\":\"%s\",\"isActive\":true,\"cliente\":\"C\",\"email\":\"c@x.com\","
             "\"endereco\":\"%s\",\"datatrasancao\":\"" DATE "\"}",
             w->id, w->addr);
    if (tx_batch_parse(json, strlen(json), TX_FORMAT_JSON, NULL, &b, &err) != 0) {
        w->rc = -1;
        snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
        goto out;
    }
    for (i = 0; i < PER_THREAD && w->rc == 0; i++) {
        if (tx_uuid7_make(tx_time_now_ms(), upload) != 0) {
            w->rc = -1;
            snprintf(w->msg, sizeof(w->msg), "no randomness");
            break;
        }
        tx_event_id_format(upload, 0, eid);
        w->rc = fraud_state_score(st, &w->rules, eid, &b->records[0], 0, 0, &w->res[i], &err);
        if (w->rc != 0)
            snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
    }
out:
    tx_batch_destroy(b);
    fraud_state_destroy(st);
    return NULL;
}

/*
 * Two threads, each with its own connection, score 200 transactions each of one client, thread
 * A always with address A and thread B with address B. VELOCITY with threshold 1 reports each
 * transaction's position in the arrival order (its count in the window): the positions must be
 * exactly 1..400 (no lost or doubled update), and ADDRESS_CHANGE must fire exactly for the
 * transactions whose predecessor in that order came from the other thread (the "last" state was
 * never read stale).
 */
static void test_concurrent_scorers(void **state)
{
    static struct worker w[2];
    pthread_t th[2];
    int order[2 * PER_THREAD + 1]; /* position -> thread, -1 unseen */
    bool changed[2 * PER_THREAD + 1];
    char id[96];
    char key[256];
    int i;
    int t;
    int pos;
    int changes = 0;

    (void) state;
    client(id, sizeof(id), "conc");
    memset(w, 0, sizeof(w));
    for (t = 0; t < 2; t++) {
        w[t].id = id;
        w[t].addr = t == 0 ? "Rua A" : "Rua B";
        w[t].rules = only(BIT(FRAUD_VELOCITY) | BIT(FRAUD_ADDRESS_CHANGE));
        w[t].rules.rule[FRAUD_VELOCITY].threshold = 1;
        w[t].rules.rule[FRAUD_VELOCITY].window_s = 3600;
        w[t].rules.rule[FRAUD_ADDRESS_CHANGE].window_s = 3600;
    }
    for (t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&th[t], NULL, work, &w[t]), 0);
    for (t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    for (t = 0; t < 2; t++) {
        if (w[t].rc != 0)
            fail_msg("worker %d: %s", t, w[t].msg);
    }
    for (i = 0; i <= 2 * PER_THREAD; i++)
        order[i] = -1;
    for (t = 0; t < 2; t++) {
        for (i = 0; i < PER_THREAD; i++) {
            const struct fraud_result *r = &w[t].res[i];
            size_t k;

            pos = 1;
            for (k = 0; k < r->verdict.nreasons; k++) {
                if (r->facts[k].rule == FRAUD_VELOCITY)
                    pos = (int) r->facts[k].n1;
            }
            if (pos < 1 || pos > 2 * PER_THREAD || order[pos] != -1)
                fail_msg("thread %d call %d: arrival position %d seen twice or out of range", t, i,
                         pos);
            order[pos] = t;
            changed[pos] = reason(r, "ADDRESS_CHANGE") != NULL;
        }
    }
    for (pos = 1; pos <= 2 * PER_THREAD; pos++) {
        bool want = pos > 1 && order[pos - 1] != order[pos];

        assert_int_not_equal(order[pos], -1);
        if (changed[pos] != want)
            fail_msg("position %d (thread %d): ADDRESS_CHANGE %s, expected %s", pos, order[pos],
                     changed[pos] ? "fired" : "did not fire", want ? "to fire" : "not to");
        changes += want;
    }
    assert_int_equal(redis_int((const char *[]){ "ZCARD", ckey(key, sizeof(key), id, "times") }, 2),
                     2 * PER_THREAD);
    /* The threads really interleaved (else the test proves little). */
    assert_true(changes > 2);
    print_message("      %d address alternations between the two scorers\n", changes);
}

/* ---- the real flag key ---- */

static void test_real_flag_key(void **state)
{
    struct fraud_state_config sc = { 0 };
    struct fraud_state *st;
    struct tx_batch *b = NULL;
    struct fraud_result res;
    struct tx_err err = { 0 };
    char id[96];
    char key[160];
    char e[TX_EVENT_ID_MAX + 1];
    char *val = NULL;
    size_t len = 0;
    long ttl = 0;
    json_t *j;

    (void) state;
    sc.redis_url = E.redis_url;
    sc.key_prefix = E.key_prefix; /* state stays private; the flag is the gateway's key */
    st = fraud_state_create(&sc, &err);
    assert_non_null(st);
    client(id, sizeof(id), "fraudtest-flag");
    snprintf(key, sizeof(key), "tx:flag:%s", id);
    score_at(st, &E.rules, record(&b, id, false, "f@x.com", "Rua 1", DATE, NULL), 0, e, &res);
    assert_true(res.verdict.flagged);
    assert_int_equal(fraud_state_set_flag(st, &E.rules, id, e, "upl", &res, &err), 0);
    assert_int_equal(cache_get(E.redis, key, &val, &len, &ttl, &err), 0);
    assert_true(ttl > 295 && ttl <= 300);
    j = json_loadb(val, len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "client_id")), id);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "reasons"), 0), "code")),
                        "INACTIVE_ACCOUNT");
    json_decref(j);
    free(val);
    /* a replayed verdict does not overwrite a newer flag */
    assert_int_equal(cache_set(E.redis, key, "{\"newer\":true}", 14, 300, &err), 0);
    res.replayed = true;
    assert_int_equal(fraud_state_set_flag(st, &E.rules, id, e, "upl", &res, &err), 0);
    assert_int_equal(cache_get(E.redis, key, &val, &len, NULL, &err), 0);
    assert_string_equal(val, "{\"newer\":true}");
    free(val);
    /* ...but restores a missing one, for the rest of its 300 s */
    assert_int_equal(cache_del(E.redis, key, &err), 0);
    res.scored_at_ms -= 100000;
    assert_int_equal(fraud_state_set_flag(st, &E.rules, id, e, "upl", &res, &err), 0);
    assert_int_equal(cache_get(E.redis, key, &val, &len, &ttl, &err), 0);
    assert_true(ttl > 195 && ttl <= 200);
    free(val);
    /* and not at all once its 300 s are over */
    assert_int_equal(cache_del(E.redis, key, &err), 0);
    res.scored_at_ms -= 200001;
    assert_int_equal(fraud_state_set_flag(st, &E.rules, id, e, "upl", &res, &err), 0);
    assert_int_equal(cache_get(E.redis, key, &val, &len, NULL, &err), TX_ENOTFOUND);
    tx_batch_destroy(b);
    fraud_state_destroy(st);
}

/* ---- the handler (fraud_app) with RabbitMQ ---- */

struct harness {
    struct fraud_app app;
    struct cons_ctx cx;
    struct tx_metrics *metrics;
    volatile sig_atomic_t stop;
    bool inited;
};

static int harness_start(struct harness *h, const char *redis_url, const char *exchange,
                         long long wait_ms, struct tx_err *err)
{
    struct queue_config qc = { 0 };

    memset(h, 0, sizeof(*h));
    qc.url = E.amqp_url;
    qc.name = "txtest-fraud";
    qc.confirm_timeout_ms = 5000;
    h->metrics = tx_metrics_create(TX_METRICS_NO_PROCESS);
    h->cx.prog = "txfraud";
    h->cx.metrics = h->metrics;
    h->cx.stop = &h->stop;
    h->cx.pub = queue_publisher_create(&qc, err);
    if (h->cx.pub == NULL)
        return -1;
    h->app.cfg.redis_url = (char *) redis_url;
    h->app.cfg.redis_timeout_ms = 2000;
    h->app.cfg.rules_path = E.rules_path;
    h->app.cfg.exchange = (char *) exchange;
    h->app.cfg.dep_wait_ms = wait_ms;
    h->app.key_prefix = E.key_prefix;
    h->app.flag_prefix = E.flag_prefix;
    h->inited = true;
    return fraud_app_init(&h->app, &h->cx, err);
}

static void harness_stop(struct harness *h)
{
    if (h->inited)
        fraud_app_fini(&h->app);
    queue_publisher_destroy(h->cx.pub);
    tx_metrics_destroy(h->metrics);
}

/* The value of a series in the rendered registry (-1 when absent). */
static double metric(struct harness *h, const char *series)
{
    struct tx_buf b;
    const char *p;
    double v = -1;

    tx_buf_init(&b, 1u << 20);
    assert_int_equal(tx_metrics_render(h->metrics, &b), 0);
    p = strstr(b.data, series);
    for (; p != NULL; p = strstr(p + 1, series)) {
        if ((p == b.data || p[-1] == '\n') && p[strlen(series)] == ' ') {
            v = strtod(p + strlen(series) + 1, NULL);
            break;
        }
    }
    tx_buf_cleanup(&b);
    return v;
}

/* A transaction.received event body for record rec of upload upload. */
static void received_event(struct tx_buf *out, const char *upload, const struct tx_record *rec)
{
    struct tx_event_head h = { 0 };
    char object[128];

    snprintf(object, sizeof(object), "raw/2030/01/01/%s.json", upload);
    h.upload_id = upload;
    h.index = rec->index;
    h.object = object;
    h.received_ms = tx_time_now_ms();
    tx_buf_init(out, 1u << 20);
    assert_int_equal(tx_event_encode_tx(&h, rec, NULL, out), 0);
}

static struct queue_delivery delivery(const struct tx_buf *body, const char *message_id,
                                      const char *correlation_id)
{
    struct queue_delivery d;

    memset(&d, 0, sizeof(d));
    d.routing_key = "transaction.received";
    d.message_id = message_id;
    d.correlation_id = correlation_id;
    d.body = body->data;
    d.len = body->len;
    return d;
}

static void test_handler(void **state)
{
    struct harness h;
    struct tx_err err = { 0 };
    struct tx_batch *b1 = NULL;
    struct tx_batch *b2 = NULL;
    struct tx_buf ev1, ev2, garbage, invalid, scored;
    struct queue_delivery d[5];
    enum queue_disposition out[5];
    char up[TX_UUID_STR_LEN + 1];
    char e1[TX_EVENT_ID_MAX + 1];
    char e2[TX_EVENT_ID_MAX + 1];
    char id[96];
    char series[160];
    struct tx_verdict v = { 0 };
    struct tx_event_head hd = { 0 };
    json_t *msgs;
    size_t i;
    int round;

    (void) state;
    if (harness_start(&h, E.redis_url, E.exchange, 2000, &err) != 0)
        fail_msg("harness: %s", err.msg);
    client(id, sizeof(id), "handler");
    assert_int_equal(tx_uuid7_make(tx_time_now_ms(), up), 0);
    record(&b1, id, true, "h@x.com", "Cidade A, Estado A, 1000", DATE, NULL);
    record(&b2, id, true, "h@x.com", "Cidade B, Estado B, 1000", DATE, NULL);
    b2->records[0].index = 1;
    tx_event_id_format(up, 0, e1);
    tx_event_id_format(up, 1, e2);
    received_event(&ev1, up, &b1->records[0]);
    received_event(&ev2, up, &b2->records[0]);
    tx_buf_init(&garbage, 1024);
    tx_buf_puts(&garbage, "this is not JSON");
    tx_buf_init(&invalid, 1024);
    tx_buf_puts(&invalid, "{\"type\":\"transaction.received\",\"schema_version\":1}");
    /* a transaction.scored event has no business on tx.fraud */
    hd.upload_id = up;
    hd.index = 5;
    hd.object = "raw/x.json";
    hd.received_ms = tx_time_now_ms();
    tx_buf_init(&scored, 1u << 20);
    assert_int_equal(tx_event_encode_tx(&hd, &b1->records[0], &v, &scored), 0);

    for (round = 0; round < 2; round++) {
        /* round 1 is the redelivery of the whole batch: same verdicts, counted once */
        d[0] = delivery(&ev1, e1, up);
        d[1] = delivery(&garbage, "poison-1", "");
        d[2] = delivery(&invalid, "poison-2", "");
        d[3] = delivery(&scored, "poison-3", up);
        d[4] = delivery(&ev2, e2, up);
        fraud_app_handle_batch(&h.app, d, 5, out);
        assert_int_equal(out[0], QUEUE_ACK);
        assert_int_equal(out[1], QUEUE_REJECT);
        assert_int_equal(out[2], QUEUE_REJECT);
        assert_int_equal(out[3], QUEUE_REJECT);
        assert_int_equal(out[4], QUEUE_ACK);

        msgs = take_messages(2);
        assert_int_equal(json_array_size(msgs), 2);
        for (i = 0; i < 2; i++) {
            json_t *m = json_array_get(msgs, i);
            json_t *props = json_object_get(m, "properties");
            const char *payload = json_string_value(json_object_get(m, "payload"));
            struct tx_event *ev = NULL;

            assert_string_equal(json_string_value(json_object_get(m, "routing_key")),
                                "transaction.scored");
            assert_string_equal(json_string_value(json_object_get(props, "message_id")),
                                i == 0 ? e1 : e2);
            assert_string_equal(json_string_value(json_object_get(props, "correlation_id")), up);
            assert_int_equal(json_integer_value(json_object_get(props, "delivery_mode")), 2);
            assert_non_null(payload);
            if (tx_event_decode(payload, strlen(payload), &ev, &err) != 0)
                fail_msg("scored event does not decode: %s", err.msg);
            assert_int_equal(ev->type, TX_EVENT_SCORED);
            assert_true(ev->has_verdict);
            assert_string_equal(ev->event_id, i == 0 ? e1 : e2);
            assert_int_equal(ev->verdict.flagged, i == 1);
            if (i == 1) {
                assert_int_equal(ev->verdict.nreasons, 1);
                assert_string_equal(ev->verdict.reasons[0].code, "ADDRESS_CHANGE");
            }
            tx_event_destroy(ev);
        }
        json_decref(msgs);
        assert_true(metric(&h, "txfraud_scored_total") == 2);
        assert_true(metric(&h, "txfraud_replayed_total") == (round == 0 ? 0 : 2));
        assert_true(metric(&h, "txfraud_flagged_transactions_total") == 1);
        snprintf(series, sizeof(series), "txfraud_flagged_total{reason=\"ADDRESS_CHANGE\"}");
        assert_true(metric(&h, series) == 1);
        snprintf(series, sizeof(series), "txfraud_flagged_total{reason=\"VELOCITY\"}");
        assert_true(metric(&h, series) == 0);
    }
    harness_stop(&h);
    tx_batch_destroy(b1);
    tx_batch_destroy(b2);
    tx_buf_cleanup(&ev1);
    tx_buf_cleanup(&ev2);
    tx_buf_cleanup(&garbage);
    tx_buf_cleanup(&invalid);
    tx_buf_cleanup(&scored);
}

/* Redis down: the batch waits about dep_wait_ms, then requeues (poison still rejected). */
static void test_handler_redis_down(void **state)
{
    struct harness h;
    struct tx_err err = { 0 };
    struct tx_batch *b = NULL;
    struct tx_buf ev, garbage;
    struct queue_delivery d[3];
    enum queue_disposition out[3];
    char up[TX_UUID_STR_LEN + 1];
    char e[TX_EVENT_ID_MAX + 1];
    char id[96];
    int64_t t0;
    int64_t took;
    json_t *msgs;

    (void) state;
    if (harness_start(&h, "redis://127.0.0.1:1/0", E.exchange, 1500, &err) != 0)
        fail_msg("harness: %s", err.msg);
    client(id, sizeof(id), "down");
    assert_int_equal(tx_uuid7_make(tx_time_now_ms(), up), 0);
    tx_event_id_format(up, 0, e);
    received_event(&ev, up, record(&b, id, true, "d@x.com", "Rua 1", DATE, NULL));
    tx_buf_init(&garbage, 64);
    tx_buf_puts(&garbage, "[1,2");
    d[0] = delivery(&ev, e, up);
    d[1] = delivery(&garbage, "poison-4", "");
    d[2] = delivery(&ev, e, up);
    t0 = tx_time_mono_ms();
    fraud_app_handle_batch(&h.app, d, 3, out);
    took = tx_time_mono_ms() - t0;
    assert_int_equal(out[0], QUEUE_RETRY);
    assert_int_equal(out[1], QUEUE_REJECT);
    assert_int_equal(out[2], QUEUE_RETRY);
    print_message("      redis down: batch requeued after %lld ms\n", (long long) took);
    assert_true(took >= 1400 && took < 4000);
    assert_true(metric(&h, "txfraud_scored_total") == 0);
    assert_true(metric(&h, "txfraud_dependency_failures_total{dependency=\"redis\"}") >= 2);
    /* a stop request cuts the wait short */
    h.stop = 1;
    t0 = tx_time_mono_ms();
    fraud_app_handle_batch(&h.app, d, 1, out);
    assert_int_equal(out[0], QUEUE_RETRY);
    assert_true(tx_time_mono_ms() - t0 < 500);
    msgs = take_messages(0);
    assert_int_equal(json_array_size(msgs), 0);
    json_decref(msgs);
    harness_stop(&h);
    tx_batch_destroy(b);
    tx_buf_cleanup(&ev);
    tx_buf_cleanup(&garbage);
}

/* The output exchange missing: nothing is acked, the batch is requeued after the wait. */
static void test_handler_publish_fails(void **state)
{
    struct harness h;
    struct tx_err err = { 0 };
    struct tx_batch *b = NULL;
    struct tx_buf ev;
    struct queue_delivery d[1];
    enum queue_disposition out[1];
    char up[TX_UUID_STR_LEN + 1];
    char e[TX_EVENT_ID_MAX + 1];
    char id[96];
    char missing[128];
    int64_t t0;
    int64_t took;

    (void) state;
    snprintf(missing, sizeof(missing), "%s.missing", E.exchange);
    if (harness_start(&h, E.redis_url, missing, 800, &err) != 0)
        fail_msg("harness: %s", err.msg);
    client(id, sizeof(id), "nopub");
    assert_int_equal(tx_uuid7_make(tx_time_now_ms(), up), 0);
    tx_event_id_format(up, 0, e);
    received_event(&ev, up, record(&b, id, false, "p@x.com", "Rua 1", DATE, NULL));
    d[0] = delivery(&ev, e, up);
    t0 = tx_time_mono_ms();
    fraud_app_handle_batch(&h.app, d, 1, out);
    took = tx_time_mono_ms() - t0;
    assert_int_equal(out[0], QUEUE_RETRY);
    assert_true(took >= 700 && took < 5000);
    assert_true(metric(&h, "txfraud_dependency_failures_total{dependency=\"rabbitmq\"}") >= 1);
    assert_true(metric(&h, "txfraud_scored_total") == 1);
    harness_stop(&h);

    /* the redelivery (exchange back) gets the stored verdict and is acked */
    if (harness_start(&h, E.redis_url, E.exchange, 800, &err) != 0)
        fail_msg("harness: %s", err.msg);
    fraud_app_handle_batch(&h.app, d, 1, out);
    assert_int_equal(out[0], QUEUE_ACK);
    assert_true(metric(&h, "txfraud_scored_total") == 0);
    assert_true(metric(&h, "txfraud_replayed_total") == 1);
    json_decref(take_messages(1));
    harness_stop(&h);
    tx_batch_destroy(b);
    tx_buf_cleanup(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_change),
        cmocka_unit_test(test_email_change),
        cmocka_unit_test(test_velocity),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_stateless_rules),
        cmocka_unit_test(test_seed_scenario),
        cmocka_unit_test(test_seed_scenario_slow),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_concurrent_scorers),
        cmocka_unit_test(test_real_flag_key),
        cmocka_unit_test(test_handler),
        cmocka_unit_test(test_handler_redis_down),
        cmocka_unit_test(test_handler_publish_fails),
    };

    return cmocka_run_group_tests(tests, setup_or_clean, teardown);
}
