/*
 * Throwaway benchmark of storage/queue: confirmed publish rate into a quorum queue for several
 * windows, then consume rate (single handler and batch handler) of what was published.
 *
 * usage: queue_bench [count] [size] [per_call] [windows]
 *        defaults: 50000 messages of 1024 bytes, all in one call, windows "1,64,256"
 * Needs TX_AMQP_URL and TX_RABBIT_MGMT_URL (eval "$(ci/stack env)"). Creates and deletes its
 * own queue "txbench.queue.<pid>".
 *
 * Build (not part of the CMake build):
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I. bench/queue_bench.c \
 *      build/storage/libtxstorage.a build/common/libtxcommon.a \
 *      -lrabbitmq -lcurl -ljansson -lcrypto -lpthread -o queue_bench
 */
#include "common/tx_time.h"
#include "storage/queue.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *mgmt_url;

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
    (void) p;
    (void) ud;
    return s * n;
}

static long mgmt(const char *method, const char *path, const char *body)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "content-type: application/json");
    char url[512];
    long st = 0;

    snprintf(url, sizeof(url), "%s%s", mgmt_url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return st;
}

struct counter {
    size_t want;
    size_t got;
    volatile sig_atomic_t stop;
};

static enum queue_disposition count_one(void *ctx, const struct queue_delivery *d)
{
    struct counter *c = ctx;

    (void) d;
    if (++c->got >= c->want)
        c->stop = 1;
    return QUEUE_ACK;
}

static void count_batch(void *ctx, const struct queue_delivery *d, size_t n,
                        enum queue_disposition *out)
{
    struct counter *c = ctx;

    (void) d;
    for (size_t i = 0; i < n; i++)
        out[i] = QUEUE_ACK;
    c->got += n;
    if (c->got >= c->want)
        c->stop = 1;
}

/* Consumes at least count messages (a stop also handles what is in hand); *got says how many. */
static double consume(const struct queue_config *cfg, const char *q, size_t count,
                      unsigned prefetch, size_t batch, size_t *got)
{
    struct tx_err err;
    struct queue_consumer *c = queue_consumer_create(cfg, q, prefetch, &err);
    struct counter k = { .want = count };
    int64_t t0 = tx_time_mono_ms();
    int rc;

    if (c == NULL) {
        fprintf(stderr, "consumer: %s\n", err.msg);
        exit(1);
    }
    if (batch > 0)
        rc = queue_consumer_run_batch(c, count_batch, &k, batch, 20, &k.stop, &err);
    else
        rc = queue_consumer_run(c, count_one, &k, &k.stop, &err);
    queue_consumer_destroy(c);
    *got = k.got;
    if (rc != 0 || k.got < count) {
        fprintf(stderr, "consume: rc %d, got %zu of %zu\n", rc, k.got, count);
        exit(1);
    }
    return (double) k.got * 1000.0 / (double) (tx_time_mono_ms() - t0 + 1);
}

int main(int argc, char **argv)
{
    size_t count = argc > 1 ? strtoul(argv[1], NULL, 10) : 50000;
    size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024;
    size_t per_call = argc > 3 ? strtoul(argv[3], NULL, 10) : 0;
    char windows[128];
    const char *url = getenv("TX_AMQP_URL");
    struct queue_msg *msgs;
    char(*ids)[32];
    char *body;
    char q[64], path[128];

    snprintf(windows, sizeof(windows), "%s", argc > 4 ? argv[4] : "1,64,256");
    mgmt_url = getenv("TX_RABBIT_MGMT_URL");
    if (url == NULL || mgmt_url == NULL || count == 0) {
        fprintf(stderr, "set TX_AMQP_URL and TX_RABBIT_MGMT_URL (eval \"$(ci/stack env)\")\n");
        return 2;
    }
    if (per_call == 0 || per_call > count)
        per_call = count;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(q, sizeof(q), "txbench.queue.%ld", (long) getpid());
    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", q);

    msgs = calloc(count, sizeof(*msgs));
    ids = calloc(count, sizeof(*ids));
    body = malloc(size);
    memset(body, 'x', size);
    for (size_t i = 0; i < count; i++) {
        snprintf(ids[i], sizeof(ids[i]), "bench:%zu", i);
        msgs[i].routing_key = q;
        msgs[i].message_id = ids[i];
        msgs[i].correlation_id = "bench";
        msgs[i].body = body;
        msgs[i].len = size;
    }
    printf("%zu messages of %zu bytes, %zu per call, quorum queue %s\n", count, size, per_call, q);
    for (char *tok = strtok(windows, ","); tok != NULL; tok = strtok(NULL, ",")) {
        struct queue_config cfg = { .url = url, .name = "txbench", .confirm_timeout_ms = 60000 };
        struct queue_publisher *p;
        struct tx_err err;
        int64_t t0;
        double rate;

        cfg.window = (unsigned) strtoul(tok, NULL, 10);
        if (mgmt("PUT", path, "{\"durable\":true,\"arguments\":{\"x-queue-type\":\"quorum\"}}") /
                100 !=
            2) {
            fprintf(stderr, "cannot declare %s\n", q);
            return 1;
        }
        p = queue_publisher_create(&cfg, &err);
        if (p == NULL || queue_publisher_ping(p, &err) != 0) {
            fprintf(stderr, "publisher: %s\n", err.msg);
            return 1;
        }
        t0 = tx_time_mono_ms();
        for (size_t off = 0; off < count; off += per_call) {
            size_t n = count - off < per_call ? count - off : per_call;

            if (queue_publish_confirmed(p, "", msgs + off, n, &err) != 0) {
                fprintf(stderr, "publish: %s\n", err.msg);
                return 1;
            }
        }
        rate = (double) count * 1000.0 / (double) (tx_time_mono_ms() - t0 + 1);
        queue_publisher_destroy(p);
        printf("window %5u: publish %8.0f msg/s", cfg.window, rate);
        fflush(stdout);
        if (cfg.window == 256) {
            size_t got1, got2;
            double single = consume(&cfg, q, count / 2, 256, 0, &got1);
            double batch = consume(&cfg, q, count - got1, 512, 256, &got2);

            printf("  | consume: single handler (prefetch 256) %8.0f msg/s, batch 256 "
                   "(prefetch 512) %8.0f msg/s",
                   single, batch);
        }
        printf("\n");
        mgmt("DELETE", path, NULL);
    }
    free(msgs);
    free(ids);
    free(body);
    curl_global_cleanup();
    return 0;
}
