/*
 * Benchmark of txfraud: scoring rate of one daemon draining a queue of received events, with
 * confirms on its scored output.
 *
 * usage: fraud_bench <path/to/txfraud> [events] [clients] [extra VAR=value for txfraud ...]
 *        defaults: 20000 events over 4000 clients (5 each; 1 client in 10 changes address, so
 *        about 8% of the events are flagged ADDRESS_CHANGE)
 *
 * Needs `eval "$(ci/stack env)"` (TX_AMQP_URL admin, TX_RABBIT_MGMT_URL, TX_REDIS_URL). Builds
 * its own topology "txbench.fraud.<tag>.*" shaped like the real one: a topic exchange; an input
 * quorum queue with delivery limit 5 dead-lettering to "<..>.dlq"; a quorum queue of scored
 * events. Fills the input queue (confirmed), starts txfraud on it (TX_QUEUE, TX_FRAUD_EXCHANGE,
 * health on 127.0.0.1:19191), measures from the first scored event to the last, checks every
 * event was scored exactly once and nothing was dead-lettered, stops txfraud (SIGTERM), and
 * deletes the topology and every Redis key it caused (tx:fraud:{bench-<tag>-*}, tx:flag:...).
 *
 * FRAUD_BENCH_RESTART_AT=k (optional): once k events are scored, txfraud gets SIGTERM (it drains
 * and exits) and a new one is started, to check that a restart loses and duplicates nothing.
 *
 * Build (not part of the CMake build), from the repository root after building build-fraud:
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. bench/fraud_bench.c \
 *      build-fraud/storage/libtxstorage.a build-fraud/common/libtxcommon.a \
 *      -lhiredis -lrabbitmq -lcurl -ljansson -lcrypto -lpthread -lm -o build-fraud/fraud_bench
 */
#include "common/tx_buf.h"
#include "common/tx_event.h"
#include "common/tx_id.h"
#include "common/tx_record.h"
#include "common/tx_time.h"
#include "storage/cache.h"
#include "storage/queue.h"

#include <curl/curl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *mgmt_url;
static char tag[48];
static char xname[96], qin[96], qdlq[96], qscored[96];

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    struct tx_buf *b = ud;

    (void) p;
    if (b != NULL)
        tx_buf_append(b, p, s * n);
    return s * n;
}

static long http(const char *method, const char *url, const char *body, struct tx_buf *out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "content-type: application/json");
    long st = 0;

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return st;
}

static int mgmt(const char *method, const char *path, const char *body)
{
    char url[512];
    long st;

    snprintf(url, sizeof(url), "%s%s", mgmt_url, path);
    st = http(method, url, body, NULL);
    if (st / 100 != 2) {
        fprintf(stderr, "fraud_bench: %s %s -> %ld\n", method, path, st);
        return -1;
    }
    return 0;
}

static int setup(void)
{
    char path[256];
    char body[512];

    snprintf(path, sizeof(path), "/api/exchanges/%%2F/%s", xname);
    if (mgmt("PUT", path, "{\"type\":\"topic\",\"durable\":true}") != 0)
        return -1;
    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", qin);
    snprintf(body, sizeof(body),
             "{\"durable\":true,\"arguments\":{\"x-queue-type\":\"quorum\",\"x-delivery-limit\":5,"
             "\"x-dead-letter-exchange\":\"%s\",\"x-dead-letter-routing-key\":\"dlq\"}}",
             xname);
    if (mgmt("PUT", path, body) != 0)
        return -1;
    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", qdlq);
    if (mgmt("PUT", path, "{\"durable\":true,\"arguments\":{\"x-queue-type\":\"quorum\"}}") != 0)
        return -1;
    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", qscored);
    if (mgmt("PUT", path, "{\"durable\":true,\"arguments\":{\"x-queue-type\":\"quorum\"}}") != 0)
        return -1;
    snprintf(path, sizeof(path), "/api/bindings/%%2F/e/%s/q/%s", xname, qin);
    if (mgmt("POST", path, "{\"routing_key\":\"transaction.received\"}") != 0)
        return -1;
    snprintf(path, sizeof(path), "/api/bindings/%%2F/e/%s/q/%s", xname, qdlq);
    if (mgmt("POST", path, "{\"routing_key\":\"dlq\"}") != 0)
        return -1;
    snprintf(path, sizeof(path), "/api/bindings/%%2F/e/%s/q/%s", xname, qscored);
    return mgmt("POST", path, "{\"routing_key\":\"transaction.scored\"}");
}

static void cleanup(const char *redis_url)
{
    static const char wipe[] =
        "local cur, n = '0', 0\n"
        "repeat\n"
        "  local r = redis.call('SCAN', cur, 'MATCH', ARGV[1], 'COUNT', 1000)\n"
        "  cur = r[1]\n"
        "  for _, k in ipairs(r[2]) do redis.call('DEL', k); n = n + 1 end\n"
        "until cur == '0'\n"
        "return n\n";
    const char *qs[] = { qin, qdlq, qscored };
    char path[256];
    char pat[128];
    const char *args[1] = { pat };
    struct tx_err err = { 0 };
    struct cache_conn *c = cache_conn_create(redis_url, 5000, &err);
    struct cache_script *s = cache_script_create(wipe, &err);
    struct cache_reply r = { 0 };
    long long n = 0;

    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/api/queues/%%2F/%s", qs[i]);
        mgmt("DELETE", path, NULL);
    }
    snprintf(path, sizeof(path), "/api/exchanges/%%2F/%s", xname);
    mgmt("DELETE", path, NULL);
    if (c != NULL && s != NULL) {
        snprintf(pat, sizeof(pat), "tx:fraud:{bench-%s-*", tag);
        if (cache_eval(c, s, NULL, 0, args, 1, &r, &err) == 0 && r.n == 1)
            n += r.vals[0].num;
        cache_reply_cleanup(&r);
        snprintf(pat, sizeof(pat), "tx:flag:bench-%s-*", tag);
        if (cache_eval(c, s, NULL, 0, args, 1, &r, &err) == 0 && r.n == 1)
            n += r.vals[0].num;
        cache_reply_cleanup(&r);
    }
    printf("cleanup: topology deleted, %lld Redis keys deleted\n", n);
    cache_script_destroy(s);
    cache_conn_destroy(c);
}

/* Publishes n received events: client i % clients, alternating address for 1 client in 10. */
static int fill(const struct queue_config *qc, size_t n, size_t clients)
{
    struct tx_err err = { 0 };
    struct queue_publisher *p = queue_publisher_create(qc, &err);
    char upload[TX_UUID_STR_LEN + 1];
    enum {
        CHUNK = 1000
    };
    struct queue_msg msgs[CHUNK];
    char eids[CHUNK][TX_EVENT_ID_MAX + 1];
    struct tx_buf bodies;
    size_t offs[CHUNK];
    size_t done = 0;
    int rc = 0;

    if (p == NULL || tx_uuid7_make(tx_time_now_ms(), upload) != 0)
        return -1;
    tx_buf_init(&bodies, 64u << 20);
    while (done < n && rc == 0) {
        size_t k = n - done < CHUNK ? n - done : CHUNK;

        tx_buf_reset(&bodies);
        for (size_t i = 0; i < k; i++) {
            size_t idx = done + i;
            size_t cl = idx % clients;
            char json[512];
            struct tx_batch *b = NULL;
            struct tx_event_head h = { upload, idx, "raw/bench.json", tx_time_now_ms() };

            snprintf(json, sizeof(json),
                     "{\"_id\":\"bench-%s-%zu\",\"isActive\":true,\"cliente\":\"Cliente %zu\","
                     "\"email\":\"c%zu@example.com\",\"endereco\":\"Cidade %c, Estado A, %zu\","
                     "\"datatrasancao\":\"2024-03-11T12:00:00 +00:00\",\"valor\":%zu.5}",
                     tag, cl, cl, cl, cl % 10 == 0 && (idx / clients) % 2 == 1 ? 'B' : 'A', cl,
                     idx);
            if (tx_batch_parse(json, strlen(json), TX_FORMAT_JSON, NULL, &b, &err) != 0) {
                fprintf(stderr, "fraud_bench: %s\n", err.msg);
                return -1;
            }
            b->records[0].index = idx;
            offs[i] = bodies.len;
            tx_event_encode_tx(&h, &b->records[0], NULL, &bodies);
            tx_batch_destroy(b);
            tx_event_id_format(upload, idx, eids[i]);
        }
        for (size_t i = 0; i < k; i++) {
            memset(&msgs[i], 0, sizeof(msgs[i]));
            msgs[i].routing_key = "transaction.received";
            msgs[i].message_id = eids[i];
            msgs[i].correlation_id = upload;
            msgs[i].body = bodies.data + offs[i];
            msgs[i].len = (i + 1 < k ? offs[i + 1] : bodies.len) - offs[i];
        }
        rc = queue_publish_confirmed(p, xname, msgs, k, &err);
        if (rc != 0)
            fprintf(stderr, "fraud_bench: publish: %s\n", err.msg);
        done += k;
    }
    tx_buf_cleanup(&bodies);
    queue_publisher_destroy(p);
    return rc;
}

static uint32_t depth(const struct queue_config *qc, const char *q)
{
    struct tx_err err = { 0 };
    uint32_t n = 0;

    if (queue_declare_passive_count(qc, q, &n, &err) != 0) {
        fprintf(stderr, "fraud_bench: depth of %s: %s\n", q, err.msg);
        return UINT32_MAX;
    }
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* Prints the lines of txfraud's /metrics that start with "txfraud_" and hold one of the words. */
static void show_metrics(void)
{
    struct tx_buf b;
    char *line;
    char *save = NULL;

    tx_buf_init(&b, 1u << 20);
    if (http("GET", "http://127.0.0.1:19191/metrics", NULL, &b) == 200 && b.data != NULL) {
        for (line = strtok_r(b.data, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            if (strncmp(line, "txfraud_", 8) == 0 &&
                (strstr(line, "_total") != NULL || strstr(line, "handler_seconds_sum") != NULL ||
                 strstr(line, "handler_seconds_count") != NULL) &&
                strstr(line, " 0") != line + strlen(line) - 2)
                printf("  %s\n", line);
        }
    }
    tx_buf_cleanup(&b);
}

int main(int argc, char **argv)
{
    const char *amqp = getenv("TX_AMQP_URL");
    const char *redis = getenv("TX_REDIS_URL");
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
    size_t clients = argc > 3 ? strtoul(argv[3], NULL, 10) : 4000;
    struct queue_config qc = { 0 };
    char *envp[256];
    char envbuf[8][256];
    size_t ne = 0;
    pid_t pid = 0;
    int64_t t_fill, t_start, t_first = 0, t_done = 0, deadline;
    uint32_t scored = 0, in = 0, dlq = 0;
    int status;
    int rc = 1;
    uint32_t restart_at = getenv("FRAUD_BENCH_RESTART_AT") != NULL
                              ? (uint32_t) strtoul(getenv("FRAUD_BENCH_RESTART_AT"), NULL, 10)
                              : 0;

    mgmt_url = getenv("TX_RABBIT_MGMT_URL");
    if (argc < 2 || amqp == NULL || redis == NULL || mgmt_url == NULL || n == 0 || clients == 0) {
        fprintf(stderr, "usage: fraud_bench <txfraud> [events] [clients] [VAR=value...]\n"
                        "needs eval \"$(ci/stack env)\"\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tag, sizeof(tag), "%d-%lld", (int) getpid(), (long long) (tx_time_now_ms() % 100000));
    snprintf(xname, sizeof(xname), "txbench.fraud.%s.x", tag);
    snprintf(qin, sizeof(qin), "txbench.fraud.%s.in", tag);
    snprintf(qdlq, sizeof(qdlq), "txbench.fraud.%s.dlq", tag);
    snprintf(qscored, sizeof(qscored), "txbench.fraud.%s.scored", tag);
    qc.url = amqp;
    qc.name = "fraud_bench";
    if (setup() != 0)
        goto out;
    t_fill = tx_time_mono_ms();
    if (fill(&qc, n, clients) != 0)
        goto out;
    printf("filled %s with %zu events (%zu clients) in %.2f s\n", qin, n, clients,
           (double) (tx_time_mono_ms() - t_fill) / 1000.0);
    while (depth(&qc, qin) != n)
        sleep_ms(50);

    /* txfraud on the private topology, with the admin user (the txfraud user may only read
     * tx.fraud). */
    for (char **e = environ; *e != NULL && ne < 200; e++) {
        if (strncmp(*e, "TX_", 3) != 0)
            envp[ne++] = *e;
    }
    snprintf(envbuf[0], sizeof(envbuf[0]), "TX_AMQP_URL=%s", amqp);
    snprintf(envbuf[1], sizeof(envbuf[1]), "TX_REDIS_URL=%s", redis);
    snprintf(envbuf[2], sizeof(envbuf[2]), "TX_QUEUE=%s", qin);
    snprintf(envbuf[3], sizeof(envbuf[3]), "TX_FRAUD_EXCHANGE=%s", xname);
    snprintf(envbuf[4], sizeof(envbuf[4]), "TX_HEALTH_LISTEN=127.0.0.1:19191");
    snprintf(envbuf[5], sizeof(envbuf[5]), "TX_LOG_LEVEL=warn");
    for (int i = 0; i < 6; i++)
        envp[ne++] = envbuf[i];
    for (int i = 4; i < argc && ne < 250; i++)
        envp[ne++] = argv[i];
    envp[ne] = NULL;
    t_start = tx_time_mono_ms();
    if (posix_spawn(&pid, argv[1], NULL, NULL, (char *[]){ argv[1], NULL }, envp) != 0) {
        perror("fraud_bench: spawn");
        pid = 0;
        goto out;
    }
    deadline = t_start + 600000;
    while (tx_time_mono_ms() < deadline) {
        scored = depth(&qc, qscored);
        if (restart_at > 0 && scored >= restart_at) {
            int64_t t = tx_time_mono_ms();

            restart_at = 0;
            kill(pid, SIGTERM);
            waitpid(pid, &status, 0);
            printf("restart: SIGTERM at %u scored; txfraud exited %d after %.2f s\n", scored,
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                   (double) (tx_time_mono_ms() - t) / 1000.0);
            if (posix_spawn(&pid, argv[1], NULL, NULL, (char *[]){ argv[1], NULL }, envp) != 0) {
                perror("fraud_bench: spawn");
                pid = 0;
                goto out;
            }
        }
        if (scored > 0 && t_first == 0)
            t_first = tx_time_mono_ms();
        if (scored >= n) {
            t_done = tx_time_mono_ms();
            break;
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "fraud_bench: txfraud exited early\n");
            pid = 0;
            goto out;
        }
        sleep_ms(20);
    }
    if (t_done == 0) {
        fprintf(stderr, "fraud_bench: only %u of %zu scored after 600 s\n", scored, n);
        goto out;
    }
    sleep_ms(500); /* let the last acks land */
    in = depth(&qc, qin);
    dlq = depth(&qc, qdlq);
    scored = depth(&qc, qscored);
    printf("txfraud: first scored event %.2f s after start; %zu events scored in %.2f s "
           "(first to last) = %.0f events/s; %.0f events/s including start-up\n",
           (double) (t_first - t_start) / 1000.0, n, (double) (t_done - t_first) / 1000.0,
           (double) n * 1000.0 / (double) (t_done - t_first > 0 ? t_done - t_first : 1),
           (double) n * 1000.0 / (double) (t_done - t_start));
    printf("queues after: input %u, scored %u, dead-lettered %u\n", in, scored, dlq);
    show_metrics();
    rc = in == 0 && scored == n && dlq == 0 ? 0 : 1;
    if (rc != 0)
        printf("FAILED: expected input 0, scored %zu, dead-lettered 0\n", n);
out:
    if (pid > 0) {
        kill(pid, SIGTERM);
        if (waitpid(pid, &status, 0) == pid)
            printf("txfraud stopped: %s %d\n", WIFEXITED(status) ? "exit" : "signal",
                   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    cleanup(redis);
    return rc;
}
