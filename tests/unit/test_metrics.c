#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/tx_metrics.h"

static char *render(struct tx_metrics *m)
{
    struct tx_buf b;
    int rc;

    tx_buf_init(&b, 1 << 20);
    rc = tx_metrics_render(m, &b);
    if (rc != 0)
        fail_msg("render failed: %s", tx_status_name(rc));
    return b.data != NULL ? tx_buf_steal(&b, NULL) : strdup("");
}

/* The value on the line that starts with prefix (a full series name plus the space). */
static double sample(const char *text, const char *prefix)
{
    size_t plen = strlen(prefix);
    const char *p = text;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, prefix, plen) == 0)
            return strtod(p + plen, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    fail_msg("no sample line starting with '%s' in:\n%s", prefix, text);
    return NAN;
}

static int has_line_prefix(const char *text, const char *prefix)
{
    size_t plen = strlen(prefix);
    const char *p = text;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, prefix, plen) == 0)
            return 1;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return 0;
}

static void test_render_exact(void **state)
{
    static const char *const req_labels[] = { "route", "code" };
    static const char *const stage_labels[] = { "stage" };
    static const double buckets[] = { 0.25, 0.5, 1 };
    static const double lat[] = { TX_METRICS_LATENCY_BUCKETS };
    struct tx_metrics *m = tx_metrics_create(TX_METRICS_NO_PROCESS);
    struct tx_metric_desc d;
    struct tx_metric_family *req;
    struct tx_metric_family *stage;
    struct tx_counter *uploads;
    struct tx_gauge *inflight;
    struct tx_histogram *h;
    struct tx_err err;
    char *text;

    (void) state;
    assert_non_null(m);
    uploads = tx_metrics_counter(m, "tx_uploads_total", "Uploads accepted.", &err);
    assert_non_null(uploads);
    inflight =
        tx_metrics_gauge(m, "tx_inflight", "In-flight uploads.\nSecond line \\ backslash", &err);
    assert_non_null(inflight);

    memset(&d, 0, sizeof(d));
    d.type = TX_METRIC_COUNTER;
    d.name = "tx_http_requests_total";
    d.help = "HTTP requests by route and status code.";
    d.labels = req_labels;
    d.nlabels = 2;
    req = tx_metrics_family(m, &d, &err);
    assert_non_null(req);

    h = tx_metrics_histogram(m, "tx_upload_seconds", "Upload latency.", buckets, 3, &err);
    assert_non_null(h);

    memset(&d, 0, sizeof(d));
    d.type = TX_METRIC_HISTOGRAM;
    d.name = "tx_stage_seconds";
    d.help = "Stage latency.";
    d.labels = stage_labels;
    d.nlabels = 1;
    d.buckets = lat;
    d.nbuckets = TX_METRICS_LATENCY_BUCKETS_N;
    stage = tx_metrics_family(m, &d, &err);
    assert_non_null(stage);

    memset(&d, 0, sizeof(d));
    d.type = TX_METRIC_COUNTER;
    d.name = "tx_empty_total";
    d.help = "A family with no series yet.";
    d.labels = stage_labels;
    d.nlabels = 1;
    assert_non_null(tx_metrics_family(m, &d, &err));

    tx_counter_add(uploads, 2);
    tx_counter_inc(uploads);
    tx_gauge_set(inflight, 4);
    tx_gauge_add(inflight, -1.5);
    tx_counter_add(tx_metric_family_counter(req, (const char *[]){ "/api/v1/uploads", "202" }, 2),
                   5);
    tx_counter_inc(tx_metric_family_counter(req, (const char *[]){ "/healthz", "200" }, 2));
    tx_histogram_observe(h, 0.125);
    tx_histogram_observe(h, 0.25);
    tx_histogram_observe(h, 0.5);
    tx_histogram_observe(h, 0.75);
    tx_histogram_observe(h, 2);
    tx_histogram_observe(tx_metric_family_histogram(stage, (const char *[]){ "s3" }, 1), 0.015625);

    text = render(m);
    assert_string_equal(text,
                        "# HELP tx_uploads_total Uploads accepted.\n"
                        "# TYPE tx_uploads_total counter\n"
                        "tx_uploads_total 3\n"
                        "# HELP tx_inflight In-flight uploads.\\nSecond line \\\\ backslash\n"
                        "# TYPE tx_inflight gauge\n"
                        "tx_inflight 2.5\n"
                        "# HELP tx_http_requests_total HTTP requests by route and status code.\n"
                        "# TYPE tx_http_requests_total counter\n"
                        "tx_http_requests_total{route=\"/api/v1/uploads\",code=\"202\"} 5\n"
                        "tx_http_requests_total{route=\"/healthz\",code=\"200\"} 1\n"
                        "# HELP tx_upload_seconds Upload latency.\n"
                        "# TYPE tx_upload_seconds histogram\n"
                        "tx_upload_seconds_bucket{le=\"0.25\"} 2\n"
                        "tx_upload_seconds_bucket{le=\"0.5\"} 3\n"
                        "tx_upload_seconds_bucket{le=\"1\"} 4\n"
                        "tx_upload_seconds_bucket{le=\"+Inf\"} 5\n"
                        "tx_upload_seconds_sum 3.625\n"
                        "tx_upload_seconds_count 5\n"
                        "# HELP tx_stage_seconds Stage latency.\n"
                        "# TYPE tx_stage_seconds histogram\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"0.001\"} 0\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"0.0025\"} 0\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"0.005\"} 0\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"0.01\"} 0\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"0.025\"} 1\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"0.05\"} 1\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"0.1\"} 1\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"0.25\"} 1\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"0.5\"} 1\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"1\"} 1\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"2.5\"} 1\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"5\"} 1\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"10\"} 1\n"
                        "tx_stage_seconds_bucket{stage=\"s3\",le=\"+Inf\"} 1\n"
                        "tx_stage_seconds_sum{stage=\"s3\"} 0.015625\n"
                        "tx_stage_seconds_count{stage=\"s3\"} 1\n"
                        "# HELP tx_empty_total A family with no series yet.\n"
                        "# TYPE tx_empty_total counter\n");
    free(text);
    tx_metrics_destroy(m);
}

/* The neighbouring double of a positive finite d (dir -1 below, +1 above); no libm needed. */
static double next_double(double d, int dir)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    u = dir > 0 ? u + 1 : u - 1;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* Cumulative count of bucket le (as rendered) of the unlabelled histogram "h". */
static double bucket(const char *text, const char *le)
{
    char prefix[64];

    snprintf(prefix, sizeof(prefix), "h_bucket{le=\"%s\"} ", le);
    return sample(text, prefix);
}

/* A value exactly on an upper bound counts in that bucket; the next double above goes to the next.
 */
static void test_histogram_edges(void **state)
{
    static const double lat[] = { TX_METRICS_LATENCY_BUCKETS };
    static const char *const les[] = {
        "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
        "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "+Inf"
    };
    size_t i;

    (void) state;
    for (i = 0; i < TX_METRICS_LATENCY_BUCKETS_N; i++) {
        struct tx_metrics *m = tx_metrics_create(TX_METRICS_NO_PROCESS);
        struct tx_histogram *h =
            tx_metrics_histogram(m, "h", "edges", lat, TX_METRICS_LATENCY_BUCKETS_N, NULL);
        char *text;
        size_t k;

        assert_non_null(h);
        tx_histogram_observe(h, next_double(lat[i], -1));
        tx_histogram_observe(h, lat[i]);
        tx_histogram_observe(h, next_double(lat[i], 1));
        text = render(m);
        for (k = 0; k < i; k++)
            assert_true(bucket(text, les[k]) == 0);
        assert_true(bucket(text, les[i]) == 2);
        assert_true(bucket(text, les[i + 1]) == 3);
        assert_true(sample(text, "h_count ") == 3);
        free(text);
        tx_metrics_destroy(m);
    }
}

static void test_histogram_special_values(void **state)
{
    static const double b[] = { -1, 0, 1 };
    struct tx_metrics *m = tx_metrics_create(TX_METRICS_NO_PROCESS);
    struct tx_histogram *h = tx_metrics_histogram(m, "h", "special", b, 3, NULL);
    char *text;

    (void) state;
    tx_histogram_observe(h, -5);       /* below the first bound: first bucket */
    tx_histogram_observe(h, -0.0);     /* -0 == 0: bucket le="0" */
    tx_histogram_observe(h, INFINITY); /* +Inf bucket only */
    text = render(m);
    assert_true(bucket(text, "-1") == 1);
    assert_true(bucket(text, "0") == 2);
    assert_true(bucket(text, "1") == 2);
    assert_true(bucket(text, "+Inf") == 3);
    assert_non_null(strstr(text, "h_sum +Inf\n"));
    free(text);
    tx_histogram_observe(h, NAN); /* +Inf bucket, and the sum becomes NaN */
    text = render(m);
    assert_true(bucket(text, "1") == 2);
    assert_true(bucket(text, "+Inf") == 4);
    assert_non_null(strstr(text, "h_sum NaN\n"));
    assert_non_null(strstr(text, "h_count 4\n"));
    free(text);
    tx_metrics_destroy(m);
}

struct hammer {
    struct tx_counter *c;
    struct tx_gauge *g;
    struct tx_histogram *h;
    struct tx_metric_family *fam;
};

#define HAMMER_THREADS 4
#define HAMMER_N       1000000
#define HAMMER_LOOKUPS 100000
#define HAMMER_KEYS    16
#define HAMMER_CAP     10

static void *hammer_run(void *arg)
{
    struct hammer *hm = arg;
    char key[16];
    long i;

    for (i = 0; i < HAMMER_N; i++) {
        tx_counter_inc(hm->c);
        tx_gauge_add(hm->g, 1.0);
        tx_histogram_observe(hm->h, (i & 1) ? 0.5 : 2.0);
    }
    for (i = 0; i < HAMMER_LOOKUPS; i++) {
        const char *v[1] = { key };

        snprintf(key, sizeof(key), "k%ld", i % HAMMER_KEYS);
        tx_counter_inc(tx_metric_family_counter(hm->fam, v, 1));
    }
    return NULL;
}

static void test_threads_exact_totals(void **state)
{
    static const char *const labels[] = { "key" };
    static const double b[] = { 1 };
    struct tx_metrics *m = tx_metrics_create(TX_METRICS_NO_PROCESS);
    struct tx_metric_desc d;
    struct hammer hm;
    pthread_t t[HAMMER_THREADS];
    char *text;
    char prefix[64];
    int i;

    (void) state;
    hm.c = tx_metrics_counter(m, "c_total", "c", NULL);
    hm.g = tx_metrics_gauge(m, "g", "g", NULL);
    hm.h = tx_metrics_histogram(m, "h", "h", b, 1, NULL);
    memset(&d, 0, sizeof(d));
    d.type = TX_METRIC_COUNTER;
    d.name = "dyn_total";
    d.help = "dynamic series";
    d.labels = labels;
    d.nlabels = 1;
    d.max_series = HAMMER_CAP;
    hm.fam = tx_metrics_family(m, &d, NULL);
    assert_non_null(hm.fam);
    for (i = 0; i < HAMMER_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &hm), 0);
    for (i = 0; i < HAMMER_THREADS; i++)
        pthread_join(t[i], NULL);

    assert_int_equal(tx_counter_value(hm.c), (uint64_t) HAMMER_THREADS * HAMMER_N);
    assert_true(tx_gauge_value(hm.g) == (double) HAMMER_THREADS * HAMMER_N);
    text = render(m);
    assert_true(sample(text, "c_total ") == (double) HAMMER_THREADS * HAMMER_N);
    assert_true(sample(text, "h_count ") == (double) HAMMER_THREADS * HAMMER_N);
    assert_true(bucket(text, "1") == (double) HAMMER_THREADS * HAMMER_N / 2);
    /* Half 0.5 and half 2.0: every partial sum is exact in a double. */
    assert_true(sample(text, "h_sum ") == 1.25 * HAMMER_THREADS * HAMMER_N);
    /* Each thread asks k0..k15 in order, so k0..k9 are the series and k10..k15 overflow. */
    for (i = 0; i < HAMMER_KEYS; i++) {
        snprintf(prefix, sizeof(prefix), "dyn_total{key=\"k%d\"} ", i);
        if (i < HAMMER_CAP)
            assert_true(sample(text, prefix) ==
                        (double) HAMMER_THREADS * HAMMER_LOOKUPS / HAMMER_KEYS);
        else
            assert_false(has_line_prefix(text, prefix));
    }
    assert_true(sample(text, "dyn_total{key=\"" TX_METRICS_OVERFLOW_VALUE "\"} ") ==
                (double) HAMMER_THREADS * HAMMER_LOOKUPS / HAMMER_KEYS *
                    (HAMMER_KEYS - HAMMER_CAP));
    free(text);
    tx_metrics_destroy(m);
}

static struct tx_metric_family *path_family(struct tx_metrics *m, size_t cap)
{
    static const char *const labels[] = { "path", "method" };
    struct tx_metric_desc d;
    struct tx_err err;
    struct tx_metric_family *f;

    memset(&d, 0, sizeof(d));
    d.type = TX_METRIC_COUNTER;
    d.name = "req_total";
    d.help = "requests";
    d.labels = labels;
    d.nlabels = 2;
    d.max_series = cap;
    f = tx_metrics_family(m, &d, &err);
    if (f == NULL)
        fail_msg("family: %s", err.msg);
    return f;
}

static void test_label_escaping(void **state)
{
    struct tx_metrics *m = tx_metrics_create(TX_METRICS_NO_PROCESS);
    struct tx_metric_family *f = path_family(m, 0);
    char *text;

    (void) state;
    tx_counter_inc(tx_metric_family_counter(f, (const char *[]){ "a\"b\\c\nd", "GET" }, 2));
    tx_counter_inc(tx_metric_family_counter(f, (const char *[]){ "caf\xc3\xa9 {x=1},", "" }, 2));
    text = render(m);
    assert_string_equal(text, "# HELP req_total requests\n"
                              "# TYPE req_total counter\n"
                              "req_total{path=\"a\\\"b\\\\c\\nd\",method=\"GET\"} 1\n"
                              "req_total{path=\"caf\xc3\xa9 {x=1},\",method=\"\"} 1\n");
    free(text);
    tx_metrics_destroy(m);
}

static void test_overflow_cap(void **state)
{
    struct tx_metrics *m = tx_metrics_create(TX_METRICS_NO_PROCESS);
    struct tx_metric_family *f = path_family(m, 3);
    struct tx_counter *first;
    struct tx_counter *over;
    char longv[TX_METRICS_MAX_VALUE_LEN + 2];
    char *text;

    (void) state;
    /* No overflow line while the overflow series is unused. */
    first = tx_metric_family_counter(f, (const char *[]){ "/a", "GET" }, 2);
    assert_non_null(first);
    assert_ptr_equal(tx_metric_family_counter(f, (const char *[]){ "/a", "GET" }, 2), first);
    text = render(m);
    assert_null(strstr(text, TX_METRICS_OVERFLOW_VALUE));
    free(text);

    tx_counter_inc(first);
    tx_counter_inc(tx_metric_family_counter(f, (const char *[]){ "/b", "GET" }, 2));
    tx_counter_inc(tx_metric_family_counter(f, (const char *[]){ "/a", "POST" }, 2));
    /* The cap (3) is reached: every further new tuple shares one overflow series. */
    over = tx_metric_family_counter(f, (const char *[]){ "/c", "GET" }, 2);
    assert_non_null(over);
    assert_ptr_equal(tx_metric_family_counter(f, (const char *[]){ "/d", "PUT" }, 2), over);
    tx_counter_add(over, 2);
    /* Existing series are still found past the cap. */
    assert_ptr_equal(tx_metric_family_counter(f, (const char *[]){ "/a", "GET" }, 2), first);
    /* Values not kept as is: invalid UTF-8, too long, the overflow marker itself. */
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    assert_ptr_equal(tx_metric_family_counter(f, (const char *[]){ "/\xff", "GET" }, 2), over);
    assert_ptr_equal(tx_metric_family_counter(f, (const char *[]){ longv, "GET" }, 2), over);
    assert_ptr_equal(
        tx_metric_family_counter(f, (const char *[]){ TX_METRICS_OVERFLOW_VALUE, "GET" }, 2), over);
    tx_counter_inc(over);

    text = render(m);
    assert_string_equal(text, "# HELP req_total requests\n"
                              "# TYPE req_total counter\n"
                              "req_total{path=\"/a\",method=\"GET\"} 1\n"
                              "req_total{path=\"/b\",method=\"GET\"} 1\n"
                              "req_total{path=\"/a\",method=\"POST\"} 1\n"
                              "req_total{path=\"__overflow__\",method=\"__overflow__\"} 3\n");
    free(text);
    tx_metrics_destroy(m);
}

static void test_registration_errors(void **state)
{
    static const char *const le[] = { "le" };
    static const char *const dup[] = { "a", "a" };
    static const char *const reserved[] = { "__name" };
    static const double bad[] = { 1, 1 };
    static const double ok[] = { 1 };
    struct tx_metrics *m = tx_metrics_create(TX_METRICS_DEFAULT);
    struct tx_metric_desc d;
    struct tx_metric_family *f;
    struct tx_err err;

    (void) state;
    assert_null(tx_metrics_counter(m, "9lives", "x", &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(tx_metrics_counter(m, "has-dash", "x", &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(tx_metrics_counter(m, "", "x", &err));
    assert_non_null(tx_metrics_counter(m, "ns:ok_total", "x", &err));
    assert_null(tx_metrics_gauge(m, "ns:ok_total", "x", &err));
    assert_int_equal(err.code, TX_EEXIST);
    assert_null(tx_metrics_gauge(m, "process_open_fds", "x", &err));
    assert_int_equal(err.code, TX_EEXIST);
    assert_null(tx_metrics_histogram(m, "h1", "x", bad, 2, &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(tx_metrics_histogram(m, "h2", "x", ok, 0, &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(tx_metrics_histogram(m, "h3", "x", (const double[]){ 1, INFINITY }, 2, &err));
    assert_int_equal(err.code, TX_EINVAL);

    memset(&d, 0, sizeof(d));
    d.type = TX_METRIC_HISTOGRAM;
    d.name = "h4";
    d.help = "x";
    d.buckets = ok;
    d.nbuckets = 1;
    d.labels = le;
    d.nlabels = 1;
    assert_null(tx_metrics_family(m, &d, &err));
    assert_int_equal(err.code, TX_EINVAL);
    d.labels = dup;
    d.nlabels = 2;
    assert_null(tx_metrics_family(m, &d, &err));
    assert_int_equal(err.code, TX_EINVAL);
    d.labels = reserved;
    d.nlabels = 1;
    assert_null(tx_metrics_family(m, &d, &err));
    assert_int_equal(err.code, TX_EINVAL);
    d.labels = dup;
    d.nlabels = 1;
    d.max_series = TX_METRICS_MAX_SERIES + 1;
    assert_null(tx_metrics_family(m, &d, &err));
    assert_int_equal(err.code, TX_EINVAL);
    d.max_series = 2;
    f = tx_metrics_family(m, &d, &err);
    assert_non_null(f);
    /* Wrong type or value count: NULL, and updates through NULL are no-ops. */
    assert_null(tx_metric_family_counter(f, (const char *[]){ "x" }, 1));
    assert_null(tx_metric_family_histogram(f, (const char *[]){ "x", "y" }, 2));
    assert_null(tx_metric_family_histogram(f, (const char *[]){ NULL }, 1));
    assert_non_null(tx_metric_family_histogram(f, (const char *[]){ "x" }, 1));
    tx_counter_inc(NULL);
    tx_gauge_set(NULL, 1);
    tx_gauge_add(NULL, 1);
    tx_histogram_observe(NULL, 1);
    assert_int_equal(tx_counter_value(NULL), 0);
    tx_metrics_destroy(m);
    tx_metrics_destroy(NULL);
}

static void test_process_metrics(void **state)
{
    struct tx_metrics *m = tx_metrics_create(TX_METRICS_DEFAULT);
    struct tx_counter *c = tx_metrics_counter(m, "mine_total", "mine", NULL);
    double fds;
    double now = (double) time(NULL);
    char *text;
    int fd;

    (void) state;
    assert_non_null(c);
    text = render(m);
    /* Registered metrics come first, then the process metrics. */
    assert_memory_equal(
        text, "# HELP mine_total mine\n# TYPE mine_total counter\nmine_total 0\n",
        strlen("# HELP mine_total mine\n# TYPE mine_total counter\nmine_total 0\n"));
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text, "# TYPE process_resident_memory_bytes gauge\n"));
    assert_non_null(strstr(text, "# TYPE process_start_time_seconds gauge\n"));
    assert_non_null(strstr(text, "# TYPE process_open_fds gauge\n"));
    assert_true(sample(text, "process_cpu_seconds_total ") >= 0);
    assert_true(sample(text, "process_resident_memory_bytes ") > 100000);
    assert_true(sample(text, "process_virtual_memory_bytes ") >=
                sample(text, "process_resident_memory_bytes "));
    assert_true(sample(text, "process_start_time_seconds ") <= now + 1);
    assert_true(sample(text, "process_start_time_seconds ") > now - 3600);
    fds = sample(text, "process_open_fds ");
    assert_true(fds >= 1);
    free(text);

    fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    text = render(m);
    assert_true(sample(text, "process_open_fds ") == fds + 1);
    free(text);
    close(fd);
    tx_metrics_destroy(m);
}

/* Numbers are written like the Prometheus Go client (strconv 'g', shortest round trip). */
static void test_number_format(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        { 0, "0" },
        { 10, "10" },
        { 123456, "123456" },
        { 1e6, "1e+06" },
        { 1234567, "1.234567e+06" },
        { 123456.7, "123456.7" },
        { 0.1, "0.1" },
        { 0.0001, "0.0001" },
        { 0.00001, "1e-05" },
        { -2.5, "-2.5" },
        { 1.0 / 3.0, "0.3333333333333333" },
        { 0.30000000000000004, "0.30000000000000004" },
        { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { INFINITY, "+Inf" },
        { -INFINITY, "-Inf" },
        { NAN, "NaN" },
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tx_metrics *m = tx_metrics_create(TX_METRICS_NO_PROCESS);
        struct tx_gauge *g = tx_metrics_gauge(m, "g", "g", NULL);
        char want[128];
        char *text;

        tx_gauge_set(g, cases[i].v);
        text = render(m);
        snprintf(want, sizeof(want), "# HELP g g\n# TYPE g gauge\ng %s\n", cases[i].text);
        assert_string_equal(text, want);
        free(text);
        tx_metrics_destroy(m);
    }
}

static void test_render_limit(void **state)
{
    struct tx_metrics *m = tx_metrics_create(TX_METRICS_NO_PROCESS);
    struct tx_buf b;

    (void) state;
    assert_non_null(tx_metrics_counter(m, "a_total", "a rather long help text", NULL));
    tx_buf_init(&b, 20);
    assert_int_equal(tx_metrics_render(m, &b), TX_ETOOBIG);
    tx_buf_cleanup(&b);
    tx_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact),
        cmocka_unit_test(test_histogram_edges),
        cmocka_unit_test(test_histogram_special_values),
        cmocka_unit_test(test_threads_exact_totals),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_overflow_cap),
        cmocka_unit_test(test_registration_errors),
        cmocka_unit_test(test_process_metrics),
        cmocka_unit_test(test_number_format),
        cmocka_unit_test(test_render_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
