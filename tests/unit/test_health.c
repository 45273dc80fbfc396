#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/tx_health.h"
#include "common/tx_metrics.h"
#include "common/tx_time.h"

/* ---- helpers ---- */

/* Threads of this process; with prefix, only those whose name starts with it. */
static int count_threads(const char *prefix)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[300];
        char comm[64] = "";
        FILE *fp;

        if (e->d_name[0] == '.')
            continue;
        if (prefix == NULL) {
            n++;
            continue;
        }
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        fp = fopen(path, "r");
        if (fp == NULL)
            continue; /* the thread just ended */
        if (fgets(comm, sizeof(comm), fp) != NULL && strncmp(comm, prefix, strlen(prefix)) == 0)
            n++;
        fclose(fp);
    }
    closedir(d);
    return n;
}

/* After a stop: no CivetWeb thread, and (unless ThreadSanitizer adds its own background thread)
 * exactly the threads there were before the start. */
static void assert_threads_back_to(int before)
{
    assert_int_equal(count_threads("civetweb"), 0);
#ifndef __SANITIZE_THREAD__
    assert_int_equal(count_threads(NULL), before);
#endif
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

struct answer {
    int status;
    char head[4096]; /* status line and headers */
    char *body;      /* NUL-terminated */
    size_t body_len;
};

/* Sends raw bytes to 127.0.0.1:port, reads the whole answer (the server closes). */
static void http_raw(int port, const char *request, struct answer *a)
{
    struct sockaddr_in sin;
    struct timeval tv = { 5, 0 };
    char *buf = NULL;
    size_t len = 0;
    size_t cap = 0;
    char *sep;
    int fd;

    memset(a, 0, sizeof(*a));
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t) port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(send(fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t) strlen(request));
    for (;;) {
        ssize_t n;

        if (cap - len < 4096) {
            cap = cap * 2 + 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t) n;
    }
    close(fd);
    assert_non_null(buf);
    buf[len] = '\0';
    sep = strstr(buf, "\r\n\r\n");
    if (sep == NULL)
        fail_msg("no header end in answer: '%s'", buf);
    if ((size_t) (sep - buf) >= sizeof(a->head))
        fail_msg("headers too long");
    memcpy(a->head, buf, (size_t) (sep - buf));
    a->head[sep - buf] = '\0';
    assert_int_equal(sscanf(a->head, "HTTP/1.%*d %d", &a->status), 1);
    a->body_len = len - (size_t) (sep + 4 - buf);
    a->body = malloc(a->body_len + 1);
    assert_non_null(a->body);
    memcpy(a->body, sep + 4, a->body_len);
    a->body[a->body_len] = '\0';
    free(buf);
}

static void http_do(int port, const char *method, const char *path, struct answer *a)
{
    char req[512];

    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             method, path);
    http_raw(port, req, a);
}

/* The value of header name (case-insensitive), or NULL. */
static const char *header(const struct answer *a, const char *name, char *out, size_t outlen)
{
    const char *p = strstr(a->head, "\r\n");
    size_t nlen = strlen(name);

    while (p != NULL) {
        const char *line = p + 2;
        const char *end = strstr(line, "\r\n");
        size_t llen = end != NULL ? (size_t) (end - line) : strlen(line);

        if (llen > nlen + 1 && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t vlen;

            while (*v == ' ')
                v++;
            vlen = llen - (size_t) (v - line);
            if (vlen >= outlen)
                vlen = outlen - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return out;
        }
        p = end;
    }
    return NULL;
}

static void assert_header(const struct answer *a, const char *name, const char *want)
{
    char v[256];

    if (header(a, name, v, sizeof(v)) == NULL)
        fail_msg("no %s header in:\n%s", name, a->head);
    assert_string_equal(v, want);
}

static void answer_free(struct answer *a)
{
    free(a->body);
    a->body = NULL;
}

/* A readiness callback whose state the test flips. */
struct dep {
    atomic_int up;
    atomic_int calls;
    atomic_int inside;
    atomic_int max_inside;
    long delay_ms;
    const char *raw; /* when set, written as is instead of the usual object */
};

static int dep_ready(void *ctx, struct tx_buf *detail)
{
    struct dep *d = ctx;
    int now = atomic_fetch_add(&d->inside, 1) + 1;
    int seen = atomic_load(&d->max_inside);

    while (now > seen && !atomic_compare_exchange_weak(&d->max_inside, &seen, now)) {
    }
    atomic_fetch_add(&d->calls, 1);
    if (d->delay_ms > 0)
        sleep_ms(d->delay_ms);
    atomic_fetch_sub(&d->inside, 1);
    if (d->raw != NULL) {
        tx_buf_puts(detail, d->raw);
        return 0;
    }
    if (atomic_load(&d->up)) {
        tx_buf_puts(detail, "{\"rabbitmq\":\"up\",\"redis\":\"up\"}");
        return 0;
    }
    tx_buf_puts(detail, "{\"rabbitmq\":\"up\",\"redis\":\"down: connection refused\"}");
    return 1;
}

static json_t *parse_json(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);

    if (j == NULL)
        fail_msg("invalid JSON (%s): %s", e.text, s);
    return j;
}

/* ---- tests ---- */

struct fixture {
    struct tx_metrics *m;
    struct tx_counter *c;
    struct dep dep;
    struct tx_health *h;
    int port;
    int threads_before;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct tx_err err;

    assert_non_null(f);
    f->threads_before = count_threads(NULL);
    f->m = tx_metrics_create(TX_METRICS_DEFAULT);
    f->c = tx_metrics_counter(f->m, "tx_test_events_total", "Events seen by the test.", &err);
    assert_non_null(f->c);
    atomic_store(&f->dep.up, 1);
    tx_err_clear(&err);
    f->h = tx_health_start("127.0.0.1:0", f->m, dep_ready, &f->dep, &err);
    if (f->h == NULL)
        fail_msg("start: %s", err.msg);
    f->port = tx_health_port(f->h);
    assert_true(f->port > 0 && f->port < 65536);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    tx_health_stop(f->h);
    /* Every thread the server started is gone again. */
    assert_threads_back_to(f->threads_before);
    tx_metrics_destroy(f->m);
    free(f);
    return 0;
}

static void test_healthz(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    char hp[64];
    struct tx_err err;

    http_do(f->port, "GET", "/healthz", &a);
    assert_int_equal(a.status, 200);
    assert_header(&a, "Content-Type", "application/json");
    assert_header(&a, "Content-Length", "15");
    assert_string_equal(a.body, "{\"status\":\"ok\"}");
    answer_free(&a);

    http_do(f->port, "HEAD", "/healthz", &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.body_len, 0);
    answer_free(&a);

    snprintf(hp, sizeof(hp), "127.0.0.1:%d", f->port);
    tx_err_clear(&err);
    assert_int_equal(tx_health_probe(hp, "/healthz", 2000, &err), 0);
    snprintf(hp, sizeof(hp), "localhost:%d", f->port);
    assert_int_equal(tx_health_probe(hp, "/healthz", 2000, &err), 0);
}

static void test_readyz_states(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    struct tx_err err;
    char hp[64];
    json_t *j;

    snprintf(hp, sizeof(hp), "127.0.0.1:%d", f->port);
    http_do(f->port, "GET", "/readyz", &a);
    assert_int_equal(a.status, 200);
    assert_header(&a, "Content-Type", "application/json");
    j = parse_json(a.body);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ready");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "checks"), "redis")),
                        "up");
    assert_non_null(json_string_value(json_object_get(j, "checked_at")));
    json_decref(j);
    answer_free(&a);
    assert_int_equal(tx_health_probe(hp, "/readyz", 2000, &err), 0);
    assert_int_equal(atomic_load(&f->dep.calls), 1);

    /* The dependency goes down: within the second the cached answer stands... */
    atomic_store(&f->dep.up, 0);
    http_do(f->port, "GET", "/readyz", &a);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    assert_int_equal(atomic_load(&f->dep.calls), 1);

    /* ...after it, the callback runs again and the answer is 503 with the detail. */
    sleep_ms(1100);
    http_do(f->port, "GET", "/readyz", &a);
    assert_int_equal(a.status, 503);
    j = parse_json(a.body);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "not ready");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "checks"), "redis")),
                        "down: connection refused");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "checks"), "rabbitmq")), "up");
    json_decref(j);
    answer_free(&a);
    assert_int_equal(atomic_load(&f->dep.calls), 2);

    tx_err_clear(&err);
    assert_int_equal(tx_health_probe(hp, "/readyz", 2000, &err), TX_EUNAVAIL);
    assert_int_equal(err.code, TX_EUNAVAIL);
    if (strstr(err.msg, "HTTP 503") == NULL || strstr(err.msg, "down: connection refused") == NULL)
        fail_msg("probe message: %s", err.msg);
}

static void test_metrics_endpoint(void **state)
{
    struct fixture *f = *state;
    struct answer a;

    tx_counter_add(f->c, 7);
    http_do(f->port, "GET", "/metrics", &a);
    assert_int_equal(a.status, 200);
    assert_header(&a, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    assert_memory_equal(a.body,
                        "# HELP tx_test_events_total Events seen by the test.\n"
                        "# TYPE tx_test_events_total counter\n"
                        "tx_test_events_total 7\n",
                        strlen("# HELP tx_test_events_total Events seen by the test.\n"
                               "# TYPE tx_test_events_total counter\n"
                               "tx_test_events_total 7\n"));
    assert_non_null(strstr(a.body, "\nprocess_open_fds "));
    assert_non_null(strstr(a.body, "\nprocess_resident_memory_bytes "));
    answer_free(&a);
}

static void test_not_found(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    struct tx_err err;
    char hp[64];

    http_do(f->port, "GET", "/nope", &a);
    assert_int_equal(a.status, 404);
    assert_header(&a, "Content-Type", "application/problem+json");
    assert_string_equal(a.body, "{\"type\":\"https://txpipe.dev/problems/not-found\","
                                "\"title\":\"Not Found\",\"status\":404,"
                                "\"detail\":\"no resource at /nope\"}");
    answer_free(&a);

    /* A path that is not printable ASCII is not echoed. */
    http_do(f->port, "GET", "/%E2%82%AC", &a);
    assert_int_equal(a.status, 404);
    assert_string_equal(a.body, "{\"type\":\"https://txpipe.dev/problems/not-found\","
                                "\"title\":\"Not Found\",\"status\":404}");
    answer_free(&a);

    snprintf(hp, sizeof(hp), "127.0.0.1:%d", f->port);
    assert_int_equal(tx_health_probe(hp, "/nope", 2000, &err), TX_EUNAVAIL);
    assert_non_null(strstr(err.msg, "HTTP 404"));
}

static void test_method_not_allowed(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    char req[256];

    snprintf(req, sizeof(req),
             "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n"
             "\r\n{}");
    http_raw(f->port, req, &a);
    assert_int_equal(a.status, 405);
    assert_header(&a, "Allow", "GET, HEAD");
    assert_header(&a, "Content-Type", "application/problem+json");
    assert_string_equal(a.body, "{\"type\":\"https://txpipe.dev/problems/method-not-allowed\","
                                "\"title\":\"Method Not Allowed\",\"status\":405,"
                                "\"detail\":\"POST is not allowed on /healthz; use GET or HEAD\"}");
    answer_free(&a);

    http_do(f->port, "DELETE", "/metrics", &a);
    assert_int_equal(a.status, 405);
    assert_header(&a, "Allow", "GET, HEAD");
    answer_free(&a);
}

static void test_malformed_request(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    json_t *j;

    http_raw(f->port, "GARBAGE\r\n\r\n", &a);
    assert_int_equal(a.status, 400);
    assert_header(&a, "Content-Type", "application/problem+json");
    j = parse_json(a.body);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 400);
    assert_string_equal(json_string_value(json_object_get(j, "type")),
                        "https://txpipe.dev/problems/bad-request");
    json_decref(j);
    answer_free(&a);
}

static void test_port_in_use(void **state)
{
    struct fixture *f = *state;
    struct tx_health *h2;
    struct tx_err err;
    char listen[64];
    char want[96];

    snprintf(listen, sizeof(listen), "127.0.0.1:%d", f->port);
    tx_err_clear(&err);
    h2 = tx_health_start(listen, NULL, NULL, NULL, &err);
    assert_null(h2);
    assert_int_equal(err.code, TX_EUNAVAIL);
    snprintf(want, sizeof(want), "%s is already in use", listen);
    assert_string_equal(err.msg, want);
    /* The first server still answers. */
    assert_int_equal(tx_health_probe(listen, "/healthz", 2000, &err), 0);
}

static void test_bad_listen(void **state)
{
    static const char *const bad[] = { "localhost:9101", "[::1]:9101", "9101",
                                       "127.0.0.1",      "127.0.0.1:", "127.0.0.1:x",
                                       "1.2.3:80",       NULL,         "127.0.0.1:70000" };
    size_t i;
    struct tx_err err;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tx_err_clear(&err);
        assert_null(tx_health_start(bad[i], NULL, NULL, NULL, &err));
        if (err.code != TX_EINVAL)
            fail_msg("'%s': %s", bad[i] != NULL ? bad[i] : "(null)", err.msg);
    }
}

/* Starts and stops with no readiness callback and no metrics: always ready, /metrics 404. */
static void test_minimal_server(void **state)
{
    int before = count_threads(NULL);
    struct tx_health *h;
    struct tx_err err;
    struct answer a;
    char hp[64];
    int64_t t0;
    int port;

    (void) state;
    h = tx_health_start("127.0.0.1:0", NULL, NULL, NULL, &err);
    if (h == NULL)
        fail_msg("start: %s", err.msg);
    port = tx_health_port(h);
    /* Master + 4 workers; each names itself once running, so give them a moment. */
    for (t0 = tx_time_mono_ms(); count_threads("civetweb") < 5 && tx_time_mono_ms() - t0 < 2000;)
        sleep_ms(10);
    assert_int_equal(count_threads("civetweb"), 5);
    http_do(port, "GET", "/readyz", &a);
    assert_int_equal(a.status, 200);
    assert_memory_equal(a.body, "{\"status\":\"ready\",\"checks\":{},\"checked_at\":\"",
                        strlen("{\"status\":\"ready\",\"checks\":{},\"checked_at\":\""));
    answer_free(&a);
    http_do(port, "GET", "/metrics", &a);
    assert_int_equal(a.status, 404);
    answer_free(&a);
    /* Stopping does not wait out CivetWeb's 2 s poll interval. */
    t0 = tx_time_mono_ms();
    tx_health_stop(h);
    assert_true(tx_time_mono_ms() - t0 < 1000);
    tx_health_stop(NULL);
    assert_threads_back_to(before);

    /* Nothing listens there any more. */
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
    tx_err_clear(&err);
    assert_int_equal(tx_health_probe(hp, "/healthz", 1000, &err), TX_EUNAVAIL);
    assert_non_null(strstr(err.msg, "refused"));
}

static void test_probe_errors(void **state)
{
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    struct tx_err err;
    char hp[64];
    int64_t t0;
    int64_t took;
    int fd;

    (void) state;
    assert_int_equal(tx_health_probe("127.0.0.1", "/healthz", 100, &err), TX_EINVAL);
    assert_int_equal(tx_health_probe("127.0.0.1:0", "/healthz", 100, &err), TX_EINVAL);
    assert_int_equal(tx_health_probe("127.0.0.1:80", "healthz", 100, &err), TX_EINVAL);
    assert_int_equal(tx_health_probe("127.0.0.1:80", "/a b", 100, &err), TX_EINVAL);
    assert_int_equal(tx_health_probe("127.0.0.1:80", "/a\r\nX: y", 100, &err), TX_EINVAL);
    assert_int_equal(tx_health_probe("127.0.0.1:80", "/healthz", 0, &err), TX_EINVAL);
    assert_int_equal(tx_health_probe(NULL, "/healthz", 100, &err), TX_EINVAL);

    /* A socket that listens but never answers: the kernel completes the connect, then silence. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sin, &slen), 0);
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", ntohs(sin.sin_port));
    t0 = tx_time_mono_ms();
    tx_err_clear(&err);
    assert_int_equal(tx_health_probe(hp, "/healthz", 300, &err), TX_ETIMEDOUT);
    took = tx_time_mono_ms() - t0;
    assert_true(took >= 290 && took < 2000);
    close(fd);
}

/* ---- tx_readiness on its own ---- */

struct hammer_arg {
    struct tx_readiness *r;
    int64_t until;
    atomic_int ready;
    atomic_int not_ready;
};

static void *readiness_hammer(void *p)
{
    struct hammer_arg *h = p;
    struct tx_buf b;

    tx_buf_init(&b, 1 << 16);
    while (tx_time_mono_ms() < h->until) {
        int rc;

        tx_buf_reset(&b);
        rc = tx_readiness_check(h->r, &b);
        if (rc == 0)
            atomic_fetch_add(&h->ready, 1);
        else if (rc == TX_EUNAVAIL)
            atomic_fetch_add(&h->not_ready, 1);
        else
            fail_msg("check: %s", tx_status_name(rc));
        json_decref(parse_json(b.data));
    }
    tx_buf_cleanup(&b);
    return NULL;
}

/* However many threads ask, the callback never runs twice at once and no caller waits on it. */
static void test_readiness_single_flight(void **state)
{
    struct dep d;
    struct hammer_arg h;
    pthread_t t[8];
    int i;

    (void) state;
    memset(&d, 0, sizeof(d));
    atomic_store(&d.up, 1);
    d.delay_ms = 100;
    memset(&h, 0, sizeof(h));
    h.r = tx_readiness_create(dep_ready, &d, 0);
    assert_non_null(h.r);
    h.until = tx_time_mono_ms() + 700;
    for (i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, readiness_hammer, &h), 0);
    for (i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&d.max_inside), 1);
    /* ttl 0: the callback ran back to back, about 7 times in 700 ms. */
    assert_true(atomic_load(&d.calls) >= 3 && atomic_load(&d.calls) <= 9);
    /* Callers other than the one running the check got an answer without waiting. */
    assert_true(atomic_load(&h.ready) + atomic_load(&h.not_ready) > atomic_load(&d.calls) * 10);
    /* The only "not ready" answers are "first check in progress" ones. */
    assert_true(atomic_load(&h.ready) > 0);
    tx_readiness_destroy(h.r);
}

static void test_readiness_ttl_and_bad_detail(void **state)
{
    struct dep d;
    struct tx_readiness *r;
    struct tx_buf b;
    json_t *j;

    (void) state;
    memset(&d, 0, sizeof(d));
    atomic_store(&d.up, 1);
    r = tx_readiness_create(dep_ready, &d, 200);
    tx_buf_init(&b, 1 << 16);
    assert_int_equal(tx_readiness_check(r, &b), 0);
    tx_buf_reset(&b);
    assert_int_equal(tx_readiness_check(r, &b), 0);
    assert_int_equal(atomic_load(&d.calls), 1);
    sleep_ms(250);
    atomic_store(&d.up, 0);
    tx_buf_reset(&b);
    assert_int_equal(tx_readiness_check(r, &b), TX_EUNAVAIL);
    assert_int_equal(atomic_load(&d.calls), 2);
    tx_readiness_destroy(r);

    /* A callback that says "ready" but writes something other than an object is not believed. */
    memset(&d, 0, sizeof(d));
    d.raw = "[\"up\"]";
    r = tx_readiness_create(dep_ready, &d, 0);
    tx_buf_reset(&b);
    assert_int_equal(tx_readiness_check(r, &b), TX_EUNAVAIL);
    j = parse_json(b.data);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "not ready");
    assert_non_null(json_string_value(json_object_get(json_object_get(j, "checks"), "readiness")));
    json_decref(j);
    d.raw = "{\"db\":";
    tx_buf_reset(&b);
    assert_int_equal(tx_readiness_check(r, &b), TX_EUNAVAIL);
    j = parse_json(b.data);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "checks"), "readiness")),
               "invalid JSON"));
    json_decref(j);
    tx_readiness_destroy(r);
    tx_buf_cleanup(&b);
    tx_readiness_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readyz_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
        cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_minimal_server),
        cmocka_unit_test(test_probe_errors),
        cmocka_unit_test(test_readiness_single_flight),
        cmocka_unit_test(test_readiness_ttl_and_bad_detail),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
