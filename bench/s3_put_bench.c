/*
 * PUT throughput of storage/s3: N threads share one client and PUT 2 KiB objects (unique keys)
 * for S seconds; prints PUTs/s and latency percentiles.
 *
 * Usage: s3_put_bench [threads] [seconds] [bytes]      (defaults: 1 5 2048)
 * Reads TX_S3_ENDPOINT, TX_S3_ACCESS_KEY, TX_S3_SECRET_KEY, TX_S3_BUCKET, TX_S3_REGION and
 * TX_S3_SIGNATURE (v2, the default, or v4).
 *
 * Build (after building txstorage/txcommon in build-s3):
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I. bench/s3_put_bench.c \
 *      build-s3/storage/libtxstorage.a build-s3/common/libtxcommon.a \
 *      -ls3 -lcurl -lcrypto -ljansson -lpthread -o build-s3/s3_put_bench
 */
#include "storage/s3.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define MAX_SAMPLES 200000

struct worker {
    struct s3_client *c;
    int id;
    int64_t end_ms;
    size_t bytes;
    const char *run;
    long ok;
    long failed;
    char first_error[300];
    double *lat_ms; /* MAX_SAMPLES */
    long nlat;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_ms_f(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    char *body = malloc(w->bytes);
    const char *sha = "4f2a1d1b4c3e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    if (body == NULL)
        return NULL;
    memset(body, 'x', w->bytes);
    for (long i = 0; now_ms() < w->end_ms; i++) {
        struct tx_err err = { 0 };
        struct s3_meta meta = { .sha256_hex = sha,
                                .records = 10,
                                .content_type = "application/json" };
        char key[128];
        double t0;
        int rc;

        snprintf(key, sizeof(key), "bench/%s/t%03d-%07ld.json", w->run, w->id, i);
        t0 = now_ms_f();
        rc = s3_object_put(w->c, key, body, w->bytes, &meta, &err);
        if (rc == 0) {
            w->ok++;
            if (w->nlat < MAX_SAMPLES)
                w->lat_ms[w->nlat++] = now_ms_f() - t0;
        }
        else if (w->failed++ == 0) {
            snprintf(w->first_error, sizeof(w->first_error), "%s", err.msg);
        }
    }
    free(body);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a;
    double y = *(const double *) b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    int seconds = argc > 2 ? atoi(argv[2]) : 5;
    size_t bytes = argc > 3 ? (size_t) atol(argv[3]) : 2048;
    const char *sig = getenv("TX_S3_SIGNATURE");
    struct s3_config cfg = {
        .endpoint = getenv("TX_S3_ENDPOINT"),
        .access_key = getenv("TX_S3_ACCESS_KEY"),
        .secret_key = getenv("TX_S3_SECRET_KEY"),
        .bucket = getenv("TX_S3_BUCKET"),
        .region = getenv("TX_S3_REGION"),
        .signature = sig != NULL && strcmp(sig, "v4") == 0 ? 4 : 2,
        .timeout_ms = 10000,
    };
    struct tx_err err = { 0 };
    struct s3_client *c;
    static struct worker w[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    double *all;
    long ok = 0;
    long failed = 0;
    long n = 0;
    char run[64];
    int64_t t0;
    double secs;

    if (threads < 1 || threads > MAX_THREADS || seconds < 1 || bytes < 1) {
        fprintf(stderr, "usage: %s [threads 1-%d] [seconds] [bytes]\n", argv[0], MAX_THREADS);
        return 2;
    }
    c = s3_client_create(&cfg, &err);
    if (c == NULL) {
        fprintf(stderr, "s3_client_create: %s\n", err.msg);
        return 1;
    }
    snprintf(run, sizeof(run), "%lld-%d", (long long) time(NULL), (int) getpid());
    t0 = now_ms();
    for (int i = 0; i < threads; i++) {
        w[i].c = c;
        w[i].id = i;
        w[i].end_ms = t0 + (int64_t) seconds * 1000;
        w[i].bytes = bytes;
        w[i].run = run;
        w[i].lat_ms = malloc(sizeof(double) * MAX_SAMPLES);
        if (w[i].lat_ms == NULL || pthread_create(&th[i], NULL, work, &w[i]) != 0) {
            fprintf(stderr, "cannot start thread %d\n", i);
            return 1;
        }
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    secs = (double) (now_ms() - t0) / 1000.0;
    all = malloc(sizeof(double) * MAX_SAMPLES * (size_t) threads);
    if (all == NULL)
        return 1;
    for (int i = 0; i < threads; i++) {
        ok += w[i].ok;
        failed += w[i].failed;
        memcpy(all + n, w[i].lat_ms, sizeof(double) * (size_t) w[i].nlat);
        n += w[i].nlat;
        if (w[i].failed > 0)
            fprintf(stderr, "thread %d: %ld failed, first: %s\n", i, w[i].failed, w[i].first_error);
        free(w[i].lat_ms);
    }
    qsort(all, (size_t) n, sizeof(double), cmp_double);
    printf("signature v%d, %d thread(s), %zu-byte objects, %.1f s: %ld PUTs ok, %ld failed, "
           "%.0f PUTs/s; latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
           cfg.signature, threads, bytes, secs, ok, failed, (double) ok / secs,
           n ? all[n / 2] : 0.0, n ? all[n * 9 / 10] : 0.0, n ? all[n * 99 / 100] : 0.0,
           n ? all[n - 1] : 0.0);
    free(all);
    s3_client_destroy(c);
    return failed != 0;
}
