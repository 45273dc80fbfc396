/*
 * Integration tests of storage/s3 against real servers. Starts no server itself.
 *
 * Signature V2 (libs3) group: the S3 server of `ci/stack env`, from TX_S3_ENDPOINT,
 * TX_S3_ACCESS_KEY, TX_S3_SECRET_KEY, TX_S3_BUCKET, TX_S3_REGION (all required).
 * Signature V4 (libcurl) group: the strict verifier tests/integration/sigv4_verifier.js at
 * TX_S3V4_TEST_ENDPOINT, started with the same access key, secret key, bucket and region;
 * skipped when that variable is unset. The seed file comes from TX_SEED_DIR (set by ctest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "storage/s3.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONC_THREADS 16
#define CONC_PUTS    50
#define TEN_MIB      (10u * 1024u * 1024u)

struct target {
    int signature;
    const char *endpoint;
    const char *access_key;
    const char *secret_key;
    const char *bucket;
    const char *region;
    const char *skip_why; /* non-NULL: every test of the group is skipped with this reason */
    struct s3_client *c;
    char prefix[96]; /* unique per run, so objects are never overwritten */
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    assert_int_equal(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static struct s3_config config_of(const struct target *t)
{
    struct s3_config cfg = {
        .endpoint = t->endpoint,
        .access_key = t->access_key,
        .secret_key = t->secret_key,
        .bucket = t->bucket,
        .region = t->region,
        .signature = t->signature,
        .timeout_ms = 20000,
    };

    return cfg;
}

static struct target *get_target(void **state)
{
    struct target *t = *state;

    if (t->skip_why != NULL) {
        print_message("skipped: %s\n", t->skip_why);
        skip();
    }
    return t;
}

static void make_key(const struct target *t, char *out, size_t outlen, const char *name)
{
    int n = snprintf(out, outlen, "%s/%s", t->prefix, name);

    assert_true(n > 0 && (size_t) n < outlen);
}

/* Reads an environment variable the group needs; NULL (and a message naming it) if unset. */
static const char *need_env(const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || v[0] == '\0') {
        fprintf(stderr,
                "test_s3: environment variable %s is not set (export the output of `ci/stack "
                "env`)\n",
                name);
        return NULL;
    }
    return v;
}

static int setup_common(struct target *t, int signature, const char *endpoint)
{
    struct s3_config cfg;
    struct tx_err err = { 0 };

    t->signature = signature;
    t->endpoint = endpoint;
    t->access_key = need_env("TX_S3_ACCESS_KEY");
    t->secret_key = need_env("TX_S3_SECRET_KEY");
    t->bucket = need_env("TX_S3_BUCKET");
    t->region = need_env("TX_S3_REGION");
    if (t->access_key == NULL || t->secret_key == NULL || t->bucket == NULL || t->region == NULL)
        return -1;
    snprintf(t->prefix, sizeof(t->prefix), "test/s3-v%d/%lld-%d", signature, (long long) time(NULL),
             (int) getpid());
    cfg = config_of(t);
    t->c = s3_client_create(&cfg, &err);
    if (t->c == NULL) {
        fprintf(stderr, "test_s3: s3_client_create: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int setup_v2(void **state)
{
    static struct target t;
    const char *ep = need_env("TX_S3_ENDPOINT");

    memset(&t, 0, sizeof(t));
    *state = &t;
    if (ep == NULL)
        return -1;
    return setup_common(&t, 2, ep);
}

static int setup_v4(void **state)
{
    static struct target t;
    const char *ep = getenv("TX_S3V4_TEST_ENDPOINT");

    memset(&t, 0, sizeof(t));
    *state = &t;
    if (ep == NULL || ep[0] == '\0') {
        t.skip_why = "TX_S3V4_TEST_ENDPOINT is unset; start tests/integration/sigv4_verifier.js "
                     "and point it there to test the Signature V4 path";
        return 0;
    }
    return setup_common(&t, 4, ep);
}

static int teardown(void **state)
{
    struct target *t = *state;

    s3_client_destroy(t->c);
    t->c = NULL;
    return 0;
}

/* PUTs data under key with a computed sha256, GETs it back and compares byte for byte. */
static void roundtrip(struct target *t, const char *key, const void *data, size_t len)
{
    struct tx_err err = { 0 };
    struct s3_meta meta = { 0 };
    char sha[65];
    char *got = NULL;
    size_t got_len = 0;
    int rc;

    sha256_hex(data, len, sha);
    meta.sha256_hex = sha;
    meta.records = 1;
    meta.content_type = "application/json";
    rc = s3_object_put(t->c, key, data, len, &meta, &err);
    if (rc != 0)
        fail_msg("put %s: %s (%s)", key, tx_status_name(rc), err.msg);
    rc = s3_object_get(t->c, key, len + 1, &got, &got_len, &err);
    if (rc != 0)
        fail_msg("get %s: %s (%s)", key, tx_status_name(rc), err.msg);
    assert_non_null(got);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    assert_int_equal(got[len], '\0');
    free(got);
}

static void t_seed_roundtrip(void **state)
{
    struct target *t = get_target(state);
    const char *dir = getenv("TX_SEED_DIR");
    char path[512];
    char key[256];
    FILE *f;
    char *buf;
    long size;

    if (dir == NULL || dir[0] == '\0')
        fail_msg("environment variable TX_SEED_DIR is not set (ctest sets it)");
    snprintf(path, sizeof(path), "%s/Dados.json", dir);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size > 0);
    rewind(f);
    buf = malloc((size_t) size);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) size, f), (size_t) size);
    fclose(f);
    /* The seed has CRLF line ends and no final newline; both must survive. */
    assert_non_null(memchr(buf, '\r', (size_t) size));
    make_key(t, key, sizeof(key), "seed/Dados.json");
    roundtrip(t, key, buf, (size_t) size);
    free(buf);
}

static void t_binary_roundtrip(void **state)
{
    struct target *t = get_target(state);
    unsigned char data[1024];
    char key[256];

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char) (i * 7 + (i >> 8));
    memcpy(data, "\0\r\n\r\n\0\xff\xfe", 8);
    memcpy(data + sizeof(data) - 4, "\r\n\0\n", 4);
    make_key(t, key, sizeof(key), "binary.bin");
    roundtrip(t, key, data, sizeof(data));
    make_key(t, key, sizeof(key), "empty.json");
    roundtrip(t, key, "", 0);
}

static void t_large_object(void **state)
{
    struct target *t = get_target(state);
    struct tx_err err = { 0 };
    unsigned char *data = malloc(TEN_MIB);
    uint32_t x = 2463534242u;
    char key[256];
    char *got = (char *) 1;
    size_t got_len = 99;
    int rc;

    assert_non_null(data);
    for (size_t i = 0; i < TEN_MIB; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (unsigned char) x;
    }
    make_key(t, key, sizeof(key), "large-10MiB.bin");
    roundtrip(t, key, data, TEN_MIB);
    /* A limit below the object size: TX_ETOOBIG, nothing returned. */
    rc = s3_object_get(t->c, key, 1024 * 1024, &got, &got_len, &err);
    assert_int_equal(rc, TX_ETOOBIG);
    assert_null(got);
    assert_int_equal(got_len, 0);
    assert_non_null(strstr(err.msg, "larger than"));
    free(data);
}

static void t_head_metadata(void **state)
{
    struct target *t = get_target(state);
    struct tx_err err = { 0 };
    struct s3_meta meta = { 0 };
    struct s3_meta_out out;
    const char *body = "[{\"_id\":\"c1\"},{\"_id\":\"c2\"},{\"_id\":\"c3\"}]";
    char sha[65];
    char upper[65];
    char key[256];
    int rc;

    sha256_hex(body, strlen(body), sha);
    meta.sha256_hex = sha;
    meta.records = 3;
    meta.idempotency_key = "idem-01J9Z8KXQ0AB";
    meta.content_type = "application/json";
    make_key(t, key, sizeof(key), "meta/with-idem.json");
    rc = s3_object_put(t->c, key, body, strlen(body), &meta, &err);
    if (rc != 0)
        fail_msg("put: %s (%s)", tx_status_name(rc), err.msg);
    memset(&out, 0x55, sizeof(out));
    rc = s3_object_head(t->c, key, &out, &err);
    if (rc != 0)
        fail_msg("head: %s (%s)", tx_status_name(rc), err.msg);
    assert_int_equal(out.size, strlen(body));
    assert_string_equal(out.sha256_hex, sha);
    assert_int_equal(out.records, 3);
    assert_string_equal(out.idempotency_key, "idem-01J9Z8KXQ0AB");

    /* Without an idempotency key the field reads as empty; the digest comes back lowercase. */
    for (int i = 0; i < 64; i++)
        upper[i] = (char) (sha[i] >= 'a' && sha[i] <= 'f' ? sha[i] - ('a' - 'A') : sha[i]);
    upper[64] = '\0';
    meta.sha256_hex = upper;
    meta.idempotency_key = NULL;
    meta.records = 0;
    make_key(t, key, sizeof(key), "meta/without-idem.json");
    rc = s3_object_put(t->c, key, body, strlen(body), &meta, &err);
    if (rc != 0)
        fail_msg("put: %s (%s)", tx_status_name(rc), err.msg);
    rc = s3_object_head(t->c, key, &out, &err);
    if (rc != 0)
        fail_msg("head: %s (%s)", tx_status_name(rc), err.msg);
    assert_int_equal(out.records, 0);
    assert_string_equal(out.sha256_hex, sha);
    assert_string_equal(out.idempotency_key, "");
    /* A plain existence check. */
    assert_int_equal(s3_object_head(t->c, key, NULL, &err), 0);
}

static void t_missing_key(void **state)
{
    struct target *t = get_target(state);
    struct tx_err err = { 0 };
    struct s3_meta_out out;
    char key[256];
    char *got = NULL;
    size_t got_len = 0;
    int rc;

    make_key(t, key, sizeof(key), "does/not/exist.json");
    rc = s3_object_get(t->c, key, 1024, &got, &got_len, &err);
    assert_int_equal(rc, TX_ENOTFOUND);
    assert_int_equal(err.code, TX_ENOTFOUND);
    assert_null(got);
    rc = s3_object_head(t->c, key, &out, &err);
    assert_int_equal(rc, TX_ENOTFOUND);
}

static void t_invalid_key(void **state)
{
    struct target *t = get_target(state);
    static const char *const bad[] = {
        "",    "/raw/x.json", "raw//x.json", "raw/x.json/", "raw/../x",    "raw/./x", "a b",
        "a?b", "a%20b",       "a+b",         "a\\b",        "caf\xc3\xa9", "a\nb",    "a#b",
    };
    struct tx_err err = { 0 };
    struct s3_meta meta = { .sha256_hex = "0000000000000000000000000000000000000000000000000000"
                                          "000000000000",
                            .records = 1 };
    char *got = NULL;
    size_t got_len = 0;
    char *longkey;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(s3_object_put(t->c, bad[i], "x", 1, &meta, &err), TX_EINVAL);
        assert_int_equal(s3_object_get(t->c, bad[i], 10, &got, &got_len, &err), TX_EINVAL);
        assert_int_equal(s3_object_head(t->c, bad[i], NULL, &err), TX_EINVAL);
    }
    assert_int_equal(s3_object_put(t->c, NULL, "x", 1, &meta, &err), TX_EINVAL);
    longkey = malloc(S3_KEY_MAX + 2);
    assert_non_null(longkey);
    memset(longkey, 'k', S3_KEY_MAX + 1);
    longkey[S3_KEY_MAX + 1] = '\0';
    assert_int_equal(s3_object_head(t->c, longkey, NULL, &err), TX_EINVAL);
    free(longkey);
    /* Bad metadata is refused before anything is sent. */
    meta.sha256_hex = "xyz";
    assert_int_equal(s3_object_put(t->c, "ok/key.json", "x", 1, &meta, &err), TX_EINVAL);
    meta.sha256_hex = "0000000000000000000000000000000000000000000000000000000000000000";
    meta.idempotency_key = "has space";
    assert_int_equal(s3_object_put(t->c, "ok/key.json", "x", 1, &meta, &err), TX_EINVAL);
    meta.idempotency_key = NULL;
    meta.records = -1;
    assert_int_equal(s3_object_put(t->c, "ok/key.json", "x", 1, &meta, &err), TX_EINVAL);
}

static void t_wrong_secret(void **state)
{
    struct target *t = get_target(state);
    struct s3_config cfg = config_of(t);
    struct tx_err err = { 0 };
    struct s3_client *bad;
    struct s3_meta meta = { .sha256_hex = "0000000000000000000000000000000000000000000000000000"
                                          "000000000000",
                            .records = 1 };
    char secret[256];
    char key[256];
    char *got = NULL;
    size_t got_len = 0;
    int rc;

    snprintf(secret, sizeof(secret), "%s-wrong", t->secret_key);
    cfg.secret_key = secret;
    bad = s3_client_create(&cfg, &err);
    assert_non_null(bad);
    make_key(t, key, sizeof(key), "wrong-secret.json");
    rc = s3_object_put(bad, key, "{}", 2, &meta, &err);
    if (rc != TX_EREJECT)
        fail_msg("put with a wrong secret: %s (%s), want EREJECT", tx_status_name(rc), err.msg);
    rc = s3_object_get(bad, key, 100, &got, &got_len, &err);
    if (rc != TX_EREJECT)
        fail_msg("get with a wrong secret: %s (%s), want EREJECT", tx_status_name(rc), err.msg);
    rc = s3_bucket_check(bad, &err);
    if (rc != TX_EREJECT)
        fail_msg("bucket check with a wrong secret: %s (%s)", tx_status_name(rc), err.msg);
    s3_client_destroy(bad);
    /* Nothing was stored by the refused PUT. */
    rc = s3_object_head(t->c, key, NULL, &err);
    assert_int_equal(rc, TX_ENOTFOUND);
}

static void t_bucket_check(void **state)
{
    struct target *t = get_target(state);
    struct s3_config cfg = config_of(t);
    struct tx_err err = { 0 };
    struct s3_client *other;
    int rc;

    rc = s3_bucket_check(t->c, &err);
    if (rc != 0)
        fail_msg("bucket check: %s (%s)", tx_status_name(rc), err.msg);
    cfg.bucket = "txpipe-no-such-bucket";
    other = s3_client_create(&cfg, &err);
    assert_non_null(other);
    rc = s3_bucket_check(other, &err);
    if (rc != TX_ENOTFOUND)
        fail_msg("missing bucket: %s (%s), want ENOTFOUND", tx_status_name(rc), err.msg);
    assert_non_null(strstr(err.msg, "txpipe-no-such-bucket"));
    s3_client_destroy(other);
}

static void t_unreachable(void **state)
{
    struct target *t = get_target(state);
    struct s3_config cfg = config_of(t);
    struct tx_err err = { 0 };
    struct s3_meta meta = { .sha256_hex = "0000000000000000000000000000000000000000000000000000"
                                          "000000000000",
                            .records = 1 };
    struct s3_client *c;
    char *got = NULL;
    size_t got_len = 0;
    int64_t t0;
    int rc;

    cfg.endpoint = "http://127.0.0.1:1";
    c = s3_client_create(&cfg, &err);
    assert_non_null(c);
    t0 = mono_ms();
    rc = s3_object_put(c, "x/y.json", "{}", 2, &meta, &err);
    assert_int_equal(rc, TX_EUNAVAIL);
    rc = s3_object_get(c, "x/y.json", 10, &got, &got_len, &err);
    assert_int_equal(rc, TX_EUNAVAIL);
    rc = s3_bucket_check(c, &err);
    assert_int_equal(rc, TX_EUNAVAIL);
    assert_true(mono_ms() - t0 < 1000);
    print_message("unreachable endpoint: %s\n", err.msg);
    s3_client_destroy(c);
}

static void t_timeout(void **state)
{
    struct target *t = get_target(state);
    struct s3_config cfg = config_of(t);
    struct tx_err err = { 0 };
    struct s3_meta meta = { .sha256_hex = "0000000000000000000000000000000000000000000000000000"
                                          "000000000000",
                            .records = 1 };
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    struct s3_client *c;
    char endpoint[64];
    char *got = NULL;
    size_t got_len = 0;
    int64_t t0;
    int64_t took;
    int fd;
    int rc;

    /* A socket that listens but never accepts: connections complete, answers never come. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &salen), 0);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", (unsigned) ntohs(sa.sin_port));
    cfg.endpoint = endpoint;
    cfg.timeout_ms = 300;
    c = s3_client_create(&cfg, &err);
    assert_non_null(c);

    t0 = mono_ms();
    rc = s3_object_get(c, "x/y.json", 10, &got, &got_len, &err);
    took = mono_ms() - t0;
    assert_int_equal(rc, TX_ETIMEDOUT);
    assert_true(took >= 250 && took < 1500);
    t0 = mono_ms();
    rc = s3_object_put(c, "x/y.json", "{}", 2, &meta, &err);
    took = mono_ms() - t0;
    assert_int_equal(rc, TX_ETIMEDOUT);
    assert_true(took >= 250 && took < 1500);
    print_message("timeout after %lld ms: %s\n", (long long) took, err.msg);
    s3_client_destroy(c);
    close(fd);
}

struct conc_job {
    struct target *t;
    int id;
    int failures;
    char first_error[600];
};

static void conc_body(char *buf, size_t cap, int id, int i)
{
    /* About 2 KiB, distinct per object. */
    int n = snprintf(buf, cap, "[{\"_id\":\"t%02d-%03d\",\"endereco\":\"", id, i);

    while ((size_t) n < cap - 8 && n < 2000) {
        buf[n] = (char) ('a' + (id * 31 + i + n) % 26);
        n++;
    }
    n += snprintf(buf + n, cap - (size_t) n, "\"}]");
    buf[n] = '\0';
}

static void *conc_worker(void *arg)
{
    struct conc_job *job = arg;

    for (int i = 0; i < CONC_PUTS; i++) {
        struct tx_err err = { 0 };
        struct s3_meta meta = { 0 };
        char body[2100];
        char name[64];
        char key[256];
        char sha[65];
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        int rc;

        conc_body(body, sizeof(body), job->id, i);
        EVP_Digest(body, strlen(body), md, &mdlen, EVP_sha256(), NULL);
        for (unsigned k = 0; k < 32; k++)
            snprintf(sha + 2 * k, 3, "%02x", md[k]);
        snprintf(name, sizeof(name), "conc/t%02d-%03d.json", job->id, i);
        snprintf(key, sizeof(key), "%s/%s", job->t->prefix, name);
        meta.sha256_hex = sha;
        meta.records = 1;
        rc = s3_object_put(job->t->c, key, body, strlen(body), &meta, &err);
        if (rc != 0 && job->failures++ == 0)
            snprintf(job->first_error, sizeof(job->first_error), "%s: %s (%s)", key,
                     tx_status_name(rc), err.msg);
    }
    return NULL;
}

static void t_concurrent_puts(void **state)
{
    struct target *t = get_target(state);
    struct conc_job jobs[CONC_THREADS];
    pthread_t th[CONC_THREADS];
    int64_t t0 = mono_ms();
    int64_t took;

    for (int i = 0; i < CONC_THREADS; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].t = t;
        jobs[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, conc_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < CONC_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    took = mono_ms() - t0;
    for (int i = 0; i < CONC_THREADS; i++)
        if (jobs[i].failures != 0)
            fail_msg("thread %d: %d failed PUTs, first: %s", i, jobs[i].failures,
                     jobs[i].first_error);
    print_message("%d concurrent PUTs in %lld ms\n", CONC_THREADS * CONC_PUTS, (long long) took);

    /* Every object is there with exactly the bytes written. */
    for (int id = 0; id < CONC_THREADS; id++) {
        for (int i = 0; i < CONC_PUTS; i++) {
            struct tx_err err = { 0 };
            char body[2100];
            char name[64];
            char key[256];
            char *got = NULL;
            size_t got_len = 0;
            int rc;

            conc_body(body, sizeof(body), id, i);
            snprintf(name, sizeof(name), "conc/t%02d-%03d.json", id, i);
            make_key(t, key, sizeof(key), name);
            rc = s3_object_get(t->c, key, 4096, &got, &got_len, &err);
            if (rc != 0)
                fail_msg("get %s: %s (%s)", key, tx_status_name(rc), err.msg);
            assert_int_equal(got_len, strlen(body));
            assert_memory_equal(got, body, got_len);
            free(got);
        }
    }
}

/* V4 verifier only: injected HTTP errors are classified as documented. */
static void t_fault_classes(void **state)
{
    struct target *t = get_target(state);
    static const struct {
        const char *key;
        int want;
    } cases[] = {
        { "txpipe-fault/503/x.json", TX_EUNAVAIL }, { "txpipe-fault/500/x.json", TX_EUNAVAIL },
        { "txpipe-fault/429/x.json", TX_EUNAVAIL }, { "txpipe-fault/413/x.json", TX_ETOOBIG },
        { "txpipe-fault/400/x.json", TX_EIO },
    };
    struct tx_err err = { 0 };
    char *got = NULL;
    size_t got_len = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = s3_object_get(t->c, cases[i].key, 100, &got, &got_len, &err);

        if (rc != cases[i].want)
            fail_msg("%s: %s (%s), want %s", cases[i].key, tx_status_name(rc), err.msg,
                     tx_status_name(cases[i].want));
    }
    print_message("injected 503: %s\n", err.msg);
}

#define S3_TESTS                                                              \
    cmocka_unit_test(t_seed_roundtrip), cmocka_unit_test(t_binary_roundtrip), \
        cmocka_unit_test(t_large_object), cmocka_unit_test(t_head_metadata),  \
        cmocka_unit_test(t_missing_key), cmocka_unit_test(t_invalid_key),     \
        cmocka_unit_test(t_wrong_secret), cmocka_unit_test(t_bucket_check),   \
        cmocka_unit_test(t_unreachable), cmocka_unit_test(t_timeout),         \
        cmocka_unit_test(t_concurrent_puts)

int main(void)
{
    const struct CMUnitTest v2[] = { S3_TESTS };
    const struct CMUnitTest v4[] = { S3_TESTS, cmocka_unit_test(t_fault_classes) };
    int failed = 0;

    failed += cmocka_run_group_tests_name("s3 signature v2 (libs3)", v2, setup_v2, teardown);
    failed += cmocka_run_group_tests_name("s3 signature v4 (libcurl)", v4, setup_v4, teardown);
    return failed != 0;
}
