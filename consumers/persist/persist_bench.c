/*
 * txpersist_bench: throughput of txpersist.
 *
 *   txpersist_bench daemon [count] [batch_max] [prefetch] [instances]
 *       Creates the quorum queue txbench.persist.<pid>, fills it with count transaction.received
 *       events of a fresh upload (confirmed publishing, window 256), starts the txpersist binary
 *       beside this one on that queue (instances of it, default 1), and times until the queue is
 *       empty and every row is in PostgreSQL. Then stops the daemons (SIGTERM) and deletes the
 *       queue.
 *   txpersist_bench writer [count] [batch_max]
 *       The batch writer alone (no broker): persist_writer_handle on batches of batch_max
 *       prepared deliveries.
 *
 * Defaults: 100000 events, batches of 500, prefetch 1000. Needs TX_PG_DSN, TX_AMQP_URL (an
 * administrator) and TX_RABBIT_MGMT_URL: eval "$(ci/stack env)". The rows stay in the tables
 * (upload ids are fresh UUIDv7s; nothing is truncated).
 */
#include "consumers/persist/persist.h"

#include "common/tx_buf.h"
#include "common/tx_id.h"
#include "common/tx_time.h"
#include "storage/db.h"
#include "storage/queue.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PUBLISH_CHUNK 10000

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "txpersist_bench: %s: %s\n", what, why);
    exit(1);
}

static const char *need(const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || v[0] == '\0')
        die(name, "not set (eval \"$(ci/stack env)\")");
    return v;
}

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
    (void) p;
    (void) ud;
    return s * n;
}

static size_t collect(char *p, size_t s, size_t n, void *ud)
{
    return tx_buf_append(ud, p, s * n) == 0 ? s * n : 0;
}

/* The text of a daemon's /metrics into b (left empty when the scrape fails). */
static void scrape(int port, struct tx_buf *b)
{
    CURL *h = curl_easy_init();
    char url[64];

    tx_buf_init(b, 1u << 20);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    if (curl_easy_perform(h) != CURLE_OK)
        tx_buf_reset(b);
    curl_easy_cleanup(h);
}

/* Prints the lines of the daemon's /metrics that start with one of the prefixes. */
static void print_metrics(int port, const char *const *prefixes)
{
    struct tx_buf b;
    char *save = NULL;

    scrape(port, &b);
    for (char *line = b.data != NULL ? strtok_r(b.data, "\n", &save) : NULL; line != NULL;
         line = strtok_r(NULL, "\n", &save))
        for (const char *const *p = prefixes; *p != NULL; p++)
            if (strncmp(line, *p, strlen(*p)) == 0)
                printf("  %s\n", line);
    tx_buf_cleanup(&b);
}

/* Value of the sample named exactly name (with its labels) in a daemon's /metrics; -1 if none. */
static double metric_value(int port, const char *name)
{
    struct tx_buf b;
    double v = -1;

    scrape(port, &b);
    for (const char *p = b.data != NULL ? strstr(b.data, name) : NULL; p != NULL;
         p = strstr(p + 1, name)) {
        if ((p == b.data || p[-1] == '\n') && p[strlen(name)] == ' ') {
            v = strtod(p + strlen(name) + 1, NULL);
            break;
        }
    }
    tx_buf_cleanup(&b);
    return v;
}

static long mgmt(const char *method, const char *path, const char *body)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "content-type: application/json");
    char url[1024];
    long st = 0;

    snprintf(url, sizeof(url), "%s%s", need("TX_RABBIT_MGMT_URL"), path);
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

/* count received events of upload up, as the gateway would publish them. */
static char **make_events(const char *up, size_t count)
{
    char **ev = calloc(count, sizeof(*ev));

    if (ev == NULL)
        die("events", "out of memory");
    for (size_t i = 0; i < count; i++) {
        struct tx_buf b;

        tx_buf_init(&b, 4096);
        if (tx_buf_printf(&b,
                          "{\"type\":\"transaction.received\",\"schema_version\":1,"
                          "\"event_id\":\"%s:%zu\",\"upload_id\":\"%s\",\"index\":%zu,"
                          "\"object\":\"raw/2024/03/11/%s.json\","
                          "\"received_at\":\"2024-03-11T12:00:00.123Z\",\"transaction\":{"
                          "\"_id\":\"client-%zu\",\"cliente\":\"Cliente %zu da Silva\","
                          "\"email\":\"cliente%zu@example.com\","
                          "\"endereco\":\"Rua das Flores, %zu - Centro\","
                          "\"datatrasancao\":\"2024-03-11T12:%02zu:%02zu +00:00\","
                          "\"isActive\":%s,\"valor\":%zu.%02zu}}",
                          up, i, up, i, up, i % 5000, i, i, i, (i / 60) % 60, i % 60,
                          i % 7 == 0 ? "false" : "true", i % 100000, i % 100) != 0)
            die("events", "buffer");
        ev[i] = tx_buf_steal(&b, NULL);
    }
    return ev;
}

static long count_rows(struct db_conn *db, const char *up)
{
    const char *p[1] = { up };
    struct tx_err err = { 0 };
    char *s = NULL;
    long n;

    /* The rows of one upload, through the primary key (schemas/sql/002). */
    if (db_query_text(db,
                      "SELECT count(*) FROM transactions WHERE event_id >= $1 || ':' AND "
                      "event_id < $1 || ';' AND upload_id = $1",
                      p, 1, &s, NULL, &err) != 0)
        die("count", err.msg);
    n = strtol(s, NULL, 10);
    free(s);
    return n;
}

/* CPU seconds used so far by this process. */
static double self_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
           (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds used so far by process pid (utime + stime from /proc), -1 when unknown. */
static double proc_cpu(long pid)
{
    char path[64];
    char buf[1024];
    FILE *f;
    char *p;
    unsigned long ut = 0;
    unsigned long st = 0;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    p = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (p == NULL || (p = strrchr(buf, ')')) == NULL)
        return -1;
    /* After ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
}

/* Pid of the first process whose command name is comm, or 0. */
static long find_process(const char *comm)
{
    char path[64];
    char name[64];

    for (long pid = 1; pid < 4194304; pid++) {
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(name, sizeof(name), f) != NULL && strncmp(name, comm, strlen(comm)) == 0 &&
            name[strlen(comm)] == '\n') {
            fclose(f);
            return pid;
        }
        fclose(f);
    }
    return 0;
}

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *) &a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *) &a, &alen) != 0)
        die("port", "cannot bind");
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

#define MAX_INSTANCES 8

static int bench_daemon(size_t count, size_t batch_max, unsigned prefetch, unsigned instances)
{
    struct queue_config qc = { .url = need("TX_AMQP_URL"),
                               .name = "txpersist-bench",
                               .confirm_timeout_ms = 60000,
                               .window = 256 };
    struct queue_publisher *pub = NULL;
    struct queue_msg *msgs = NULL;
    struct tx_err err = { 0 };
    struct db_conn *db = NULL;
    char up[TX_UUID_STR_LEN + 1];
    char queue[64];
    char path[128];
    char bin[4096];
    char self[4096];
    char **ev;
    int64_t t0;
    int64_t t_first = 0;
    int64_t t1;
    uint32_t depth = 0;
    char dsn[4096];
    char *pidtext = NULL;
    long beam;
    double beam0;
    double backend_cpu = -1;
    double daemon_cpu = -1;
    int ports[MAX_INSTANCES];
    pid_t pids[MAX_INSTANCES];
    int status = 0;
    int st;
    ssize_t n;

    for (unsigned k = 0; k < instances; k++)
        ports[k] = free_port();
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        die("readlink", "/proc/self/exe");
    self[n] = '\0';
    snprintf(bin, sizeof(bin), "%s/txpersist", dirname(self));
    db = db_conn_create(need("TX_PG_DSN"), 5000, &err);
    if (db == NULL)
        die("postgres", err.msg);
    tx_uuid7_make(tx_time_now_ms(), up);
    snprintf(queue, sizeof(queue), "txbench.persist.%d", (int) getpid());
    snprintf(path, sizeof(path), "/api/queues/%%2F/%s", queue);
    if (mgmt("PUT", path, "{\"durable\":true,\"arguments\":{\"x-queue-type\":\"quorum\"}}") / 100 !=
        2)
        die("queue", "cannot declare (management API)");
    ev = make_events(up, count);
    msgs = calloc(count, sizeof(*msgs));
    pub = queue_publisher_create(&qc, &err);
    if (msgs == NULL || pub == NULL)
        die("publisher", err.msg);
    for (size_t i = 0; i < count; i++) {
        msgs[i].routing_key = queue;
        msgs[i].body = ev[i];
        msgs[i].len = strlen(ev[i]);
    }
    t0 = tx_time_mono_ms();
    for (size_t i = 0; i < count; i += PUBLISH_CHUNK) {
        size_t k = count - i < PUBLISH_CHUNK ? count - i : PUBLISH_CHUNK;

        if (queue_publish_confirmed(pub, "", msgs + i, k, &err) != 0)
            die("publish", err.msg);
    }
    t1 = tx_time_mono_ms();
    printf("published %zu events (%zu bytes each on average) in %.2f s: %.0f msg/s\n", count,
           strlen(ev[count / 2]), (double) (t1 - t0) / 1000.0,
           (double) count * 1000.0 / (double) (t1 - t0 > 0 ? t1 - t0 : 1));
    queue_publisher_destroy(pub);
    do {
        if (queue_declare_passive_count(&qc, queue, &depth, &err) != 0)
            die("depth", err.msg);
        if (depth < count)
            sleep_ms(50);
    } while (depth < count);

    fflush(stdout);
    snprintf(dsn, sizeof(dsn), "%s%sapplication_name=txpersist-bench-%d", need("TX_PG_DSN"),
             strchr(need("TX_PG_DSN"), '?') != NULL ? "&" : "?", (int) getpid());
    beam = find_process("beam.smp");
    beam0 = beam > 0 ? proc_cpu(beam) : -1;
    t0 = tx_time_mono_ms();
    for (unsigned k = 0; k < instances; k++) {
        pids[k] = fork();
        if (pids[k] == 0) {
            char e[8][4200];
            char *envp[9];
            char *argv[] = { bin, NULL };

            snprintf(e[0], sizeof(e[0]), "TX_AMQP_URL=%s", need("TX_AMQP_URL"));
            snprintf(e[1], sizeof(e[1]), "TX_PG_DSN=%s", dsn);
            snprintf(e[2], sizeof(e[2]), "TX_QUEUE=%s", queue);
            snprintf(e[3], sizeof(e[3]), "TX_BATCH_MAX=%zu", batch_max);
            snprintf(e[4], sizeof(e[4]), "TX_PREFETCH=%u", prefetch);
            snprintf(e[5], sizeof(e[5]), "TX_HEALTH_LISTEN=127.0.0.1:%d", ports[k]);
            snprintf(e[6], sizeof(e[6]), "TX_LOG_LEVEL=warn");
            snprintf(e[7], sizeof(e[7]), "PATH=/usr/bin:/bin");
            for (int i = 0; i < 8; i++)
                envp[i] = e[i];
            envp[8] = NULL;
            execve(bin, argv, envp);
            _exit(127);
        }
    }
    /* Progress from the daemons' own counter of committed rows (cheap to poll: counting the
     * rows in PostgreSQL every few ms would load the server under test); PostgreSQL and the
     * queue confirm the end. */
    for (;;) {
        double written = 0;

        for (unsigned k = 0; k < instances; k++) {
            double v =
                metric_value(ports[k], "txpersist_rows_written_total{table=\"transactions\"}");

            written += v > 0 ? v : 0;
        }
        if (written > 0 && t_first == 0)
            t_first = tx_time_mono_ms();
        if (written >= (double) count && (size_t) count_rows(db, up) == count) {
            if (queue_declare_passive_count(&qc, queue, &depth, &err) != 0)
                die("depth", err.msg);
            if (depth == 0)
                break;
        }
        for (unsigned k = 0; k < instances; k++) {
            if (waitpid(pids[k], &status, WNOHANG) == pids[k])
                die("txpersist", "exited early");
        }
        sleep_ms(20);
    }
    t1 = tx_time_mono_ms();
    {
        static const char *const wanted[] = { "txpersist_batch_size_sum",
                                              "txpersist_batch_size_count",
                                              "txpersist_handler_seconds_sum",
                                              "txpersist_commit_seconds_sum",
                                              "txpersist_commit_seconds_count",
                                              "process_cpu_seconds_total",
                                              NULL };

        const char *p[1] = { strstr(dsn, "txpersist-bench-") };

        for (unsigned k = 0; k < instances; k++)
            print_metrics(ports[k], wanted);
        /* The writers' sessions (each daemon's readiness probe has one too: it is idle). */
        if (db_query_text(db,
                          "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE "
                          "application_name = $1",
                          p, 1, &pidtext, NULL, &err) == 0 &&
            pidtext != NULL) {
            char *cur = pidtext;
            char *end = NULL;

            backend_cpu = 0;
            for (long b = strtol(cur, &end, 10); end != cur; b = strtol(cur, &end, 10)) {
                backend_cpu += proc_cpu(b);
                cur = end;
            }
        }
        free(pidtext);
        daemon_cpu = 0;
        for (unsigned k = 0; k < instances; k++)
            daemon_cpu += proc_cpu(pids[k]);
    }
    for (unsigned k = 0; k < instances; k++)
        kill(pids[k], SIGTERM);
    for (unsigned k = 0; k < instances; k++) {
        waitpid(pids[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            status = st;
    }
    printf("txpersist x%u (batch %zu, prefetch %u): %zu rows in %.2f s from start: %.0f rows/s; "
           "%.2f s from the first row: %.0f rows/s\n",
           instances, batch_max, prefetch, count, (double) (t1 - t0) / 1000.0,
           (double) count * 1000.0 / (double) (t1 - t0), (double) (t1 - t_first) / 1000.0,
           (double) count * 1000.0 / (double) (t1 - t_first > 0 ? t1 - t_first : 1));
    printf("CPU per row: txpersist %.1f us, its PostgreSQL sessions %.1f us, RabbitMQ (whole "
           "broker, other users included) %.1f us\n",
           daemon_cpu * 1e6 / (double) count, backend_cpu * 1e6 / (double) count,
           beam > 0 ? (proc_cpu(beam) - beam0) * 1e6 / (double) count : -1.0);
    mgmt("DELETE", path, NULL);
    for (size_t i = 0; i < count; i++)
        free(ev[i]);
    free(ev);
    free(msgs);
    db_conn_destroy(db);
    return status == 0 ? 0 : 1;
}

static int bench_writer(size_t count, size_t batch_max)
{
    struct persist_writer_config cfg = {
        .dsn = need("TX_PG_DSN"),
        .connect_timeout_ms = 5000,
        .statement_timeout_ms = 60000,
        .retry_budget_ms = 1000,
        .max_batch_bytes = 256u << 20,
    };
    struct tx_err err = { 0 };
    struct persist_writer *w;
    struct queue_delivery *d = calloc(count, sizeof(*d));
    enum queue_disposition *out = calloc(batch_max, sizeof(*out));
    char up[TX_UUID_STR_LEN + 1];
    struct db_conn *db;
    char **ev;
    int64_t t0;
    int64_t t1;

    char dsn[4096];
    char *pidtext = NULL;
    long backend = 0;
    double c0;
    double s0;

    /* Tag the writer's session so its server process can be found (for its CPU time). */
    snprintf(dsn, sizeof(dsn), "%s%sapplication_name=txpersist-bench-%d", cfg.dsn,
             strchr(cfg.dsn, '?') != NULL ? "&" : "?", (int) getpid());
    cfg.dsn = dsn;
    w = persist_writer_create(&cfg, NULL, &err);
    if (w == NULL || d == NULL || out == NULL)
        die("writer", err.msg);
    db = db_conn_create(cfg.dsn, 5000, &err);
    if (db == NULL)
        die("postgres", err.msg);
    tx_uuid7_make(tx_time_now_ms(), up);
    ev = make_events(up, count);
    for (size_t i = 0; i < count; i++) {
        d[i].routing_key = "transaction.received";
        d[i].message_id = "";
        d[i].correlation_id = "";
        d[i].body = ev[i];
        d[i].len = strlen(ev[i]);
    }
    /* The client's share: decoding and staging rows, no database. */
    c0 = self_cpu();
    t0 = tx_time_mono_ms();
    {
        struct tx_buf stage;

        tx_buf_init(&stage, 256u << 20);
        for (size_t i = 0; i < count; i++) {
            struct tx_event *e = NULL;

            if (i % batch_max == 0)
                tx_buf_reset(&stage);
            if (tx_event_decode(ev[i], strlen(ev[i]), &e, &err) != 0 ||
                persist_row_append(&stage, (unsigned) i, e, &err) != 0)
                die("stage", err.msg);
            tx_event_destroy(e);
        }
        tx_buf_cleanup(&stage);
    }
    t1 = tx_time_mono_ms();
    printf("decode + staging alone: %zu events in %.2f s: %.0f events/s, %.1f us CPU per event\n",
           count, (double) (t1 - t0) / 1000.0,
           (double) count * 1000.0 / (double) (t1 - t0 > 0 ? t1 - t0 : 1),
           (self_cpu() - c0) * 1e6 / (double) count);
    {
        const char *p[1] = { dsn + strlen(dsn) - strlen(strstr(dsn, "txpersist-bench-")) };

        if (db_query_text(db,
                          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> "
                          "pg_backend_pid()",
                          p, 1, &pidtext, NULL, &err) == 0)
            backend = strtol(pidtext, NULL, 10);
        free(pidtext);
    }
    c0 = self_cpu();
    s0 = backend > 0 ? proc_cpu(backend) : -1;
    t0 = tx_time_mono_ms();
    for (size_t i = 0; i < count; i += batch_max) {
        size_t k = count - i < batch_max ? count - i : batch_max;

        persist_writer_handle(w, d + i, k, out, NULL);
        for (size_t j = 0; j < k; j++)
            if (out[j] != QUEUE_ACK)
                die("writer", "a delivery was not acked");
    }
    t1 = tx_time_mono_ms();
    if ((size_t) count_rows(db, up) != count)
        die("writer", "row count mismatch");
    printf("writer alone (batch %zu): %zu rows in %.2f s: %.0f rows/s; CPU per row: client "
           "%.1f us, PostgreSQL backend %.1f us\n",
           batch_max, count, (double) (t1 - t0) / 1000.0,
           (double) count * 1000.0 / (double) (t1 - t0), (self_cpu() - c0) * 1e6 / (double) count,
           s0 >= 0 ? (proc_cpu(backend) - s0) * 1e6 / (double) count : -1.0);
    for (size_t i = 0; i < count; i++)
        free(ev[i]);
    free(ev);
    free(d);
    free(out);
    persist_writer_destroy(w);
    db_conn_destroy(db);
    return 0;
}

int main(int argc, char **argv)
{
    size_t count = argc > 2 ? strtoul(argv[2], NULL, 10) : 100000;
    size_t batch = argc > 3 ? strtoul(argv[3], NULL, 10) : 500;
    unsigned prefetch = argc > 4 ? (unsigned) strtoul(argv[4], NULL, 10) : 1000;
    unsigned instances = argc > 5 ? (unsigned) strtoul(argv[5], NULL, 10) : 1;
    int rc;

    if (argc < 2 || (strcmp(argv[1], "daemon") != 0 && strcmp(argv[1], "writer") != 0) ||
        count == 0 || batch == 0 || prefetch == 0 || instances == 0 || instances > MAX_INSTANCES) {
        fprintf(stderr, "usage: %s daemon|writer [count] [batch_max] [prefetch] [instances 1-8]\n",
                argv[0]);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    rc = strcmp(argv[1], "daemon") == 0 ? bench_daemon(count, batch, prefetch, instances)
                                        : bench_writer(count, batch);
    curl_global_cleanup();
    return rc;
}
