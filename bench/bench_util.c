/* Shared helpers of the ci/bench clients (see bench_util.h). */
#include "bench/bench_util.h"

#include <curl/curl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t bench_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void bench_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

void bench_die(const char *prog, const char *what, const char *why)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, why);
    exit(1);
}

const char *bench_need_env(const char *prog, const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || v[0] == '\0')
        bench_die(prog, name, "not set (eval \"$(ci/stack env)\")");
    return v;
}

int bench_body_make(struct tx_buf *b, const char *tag, unsigned long seq, int records)
{
    int rc = tx_buf_puts(b, "[");

    for (int i = 0; i < records && rc == 0; i++) {
        char id[96];

        snprintf(id, sizeof(id), "%s-%lu-%d", tag, seq, i);
        rc = tx_buf_printf(b,
                           "%s{\r\n    \"_id\": \"%s\",\r\n    \"isActive\": true,\r\n"
                           "    \"cliente\": \"Cliente %s\",\r\n"
                           "    \"email\": \"%s@example.com\",\r\n"
                           "    \"endereco\": \"Cidade A, Estado A, %lu\",\r\n"
                           "    \"datatrasancao\": \"2024-03-11T12:%02d:%02d +00:00\"\r\n  }",
                           i > 0 ? ", " : "", id, id, id, 1000 + (seq + (unsigned long) i) % 9000,
                           (int) ((seq / 60) % 60), (int) (seq % 60));
    }
    if (rc == 0)
        rc = tx_buf_puts(b, "]\r\n  ");
    return rc;
}

/* ---- latency ------------------------------------------------------------------------------- */

void bench_lat_init(struct bench_lat *l, size_t cap)
{
    memset(l, 0, sizeof(*l));
    l->us = calloc(cap, sizeof(*l->us));
    l->cap = l->us != NULL ? cap : 0;
}

void bench_lat_cleanup(struct bench_lat *l)
{
    free(l->us);
    memset(l, 0, sizeof(*l));
}

void bench_lat_add(struct bench_lat *l, int64_t us)
{
    if (l->n < l->cap)
        l->us[l->n++] = us;
    l->sum_us += (double) us;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a;
    int64_t y = *(const int64_t *) b;

    return (x > y) - (x < y);
}

static double pct(const struct bench_lat *l, double p)
{
    size_t i;

    if (l->n == 0)
        return 0;
    i = (size_t) (p / 100.0 * (double) (l->n - 1) + 0.5);
    return (double) l->us[i] / 1000.0;
}

json_t *bench_lat_json(struct bench_lat *l)
{
    qsort(l->us, l->n, sizeof(*l->us), cmp_i64);
    return json_pack("{s:f,s:f,s:f,s:f,s:f,s:I}", "p50", pct(l, 50), "p90", pct(l, 90), "p99",
                     pct(l, 99), "max", l->n > 0 ? (double) l->us[l->n - 1] / 1000.0 : 0.0, "mean",
                     l->n > 0 ? l->sum_us / (double) l->n / 1000.0 : 0.0, "samples",
                     (json_int_t) l->n);
}

/* ---- /proc --------------------------------------------------------------------------------- */

struct pinfo {
    long pid;
    long ppid;
    double cpu;
};

/* Reads pid's ppid and CPU seconds from /proc/<pid>/stat; 0 or -1. */
static int read_stat(long pid, long *ppid, double *cpu)
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
    if (sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", ppid, &ut, &st) != 3)
        return -1;
    *cpu = (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
    return 0;
}

static long read_rss_kb(long pid)
{
    char path[64];
    char line[256];
    FILE *f;
    long kb = 0;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* Every process: pid, ppid, CPU. *n entries, malloc'd. */
static struct pinfo *all_procs(size_t *n)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    struct pinfo *v = NULL;
    size_t cap = 0;

    *n = 0;
    if (d == NULL)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        long ppid;
        double cpu;

        if (*end != '\0' || pid <= 0 || read_stat(pid, &ppid, &cpu) != 0)
            continue;
        if (*n == cap) {
            struct pinfo *nv = realloc(v, (cap = cap ? cap * 2 : 512) * sizeof(*v));

            if (nv == NULL)
                break;
            v = nv;
        }
        v[(*n)++] = (struct pinfo){ pid, ppid, cpu };
    }
    closedir(d);
    return v;
}

static int descends(const struct pinfo *v, size_t n, long pid, long root)
{
    for (int depth = 0; depth < 64 && pid > 1; depth++) {
        size_t i;

        if (pid == root)
            return 1;
        for (i = 0; i < n && v[i].pid != pid; i++)
            ;
        if (i == n)
            return 0;
        pid = v[i].ppid;
    }
    return pid == root;
}

double bench_proc_cpu(long pid, int tree)
{
    long ppid;
    double cpu;
    struct pinfo *v;
    size_t n;
    double sum = 0;

    if (read_stat(pid, &ppid, &cpu) != 0)
        return -1;
    if (!tree)
        return cpu;
    v = all_procs(&n);
    for (size_t i = 0; i < n; i++)
        if (descends(v, n, v[i].pid, pid))
            sum += v[i].cpu;
    free(v);
    return sum;
}

long bench_proc_rss_kb(long pid, int tree)
{
    struct pinfo *v;
    size_t n;
    long sum = 0;

    if (!tree)
        return read_rss_kb(pid);
    v = all_procs(&n);
    for (size_t i = 0; i < n; i++)
        if (descends(v, n, v[i].pid, pid))
            sum += read_rss_kb(v[i].pid);
    free(v);
    return sum;
}

int bench_watch_add(struct bench_watch *w, const char *spec)
{
    struct bench_watch_group *g;
    const char *eq = strchr(spec, '=');
    const char *p;
    size_t nl;

    if (eq == NULL || w->n >= BENCH_WATCH_MAX)
        return -1;
    g = &w->g[w->n];
    memset(g, 0, sizeof(*g));
    nl = (size_t) (eq - spec);
    if (nl == 0 || nl >= sizeof(g->name))
        return -1;
    memcpy(g->name, spec, nl);
    for (p = eq + 1; *p != '\0' && *p != ':';) {
        char *end;
        long pid = strtol(p, &end, 10);

        if (end == p || pid <= 0 || g->npids >= 8)
            return -1;
        g->pids[g->npids++] = pid;
        p = *end == '+' ? end + 1 : end;
    }
    if (*p == ':') {
        if (strcmp(p, ":tree") != 0)
            return -1;
        g->tree = 1;
    }
    if (g->npids == 0)
        return -1;
    w->n++;
    return 0;
}

static double group_cpu(const struct bench_watch_group *g, int *alive)
{
    double sum = 0;

    *alive = 1;
    for (int i = 0; i < g->npids; i++) {
        double c = bench_proc_cpu(g->pids[i], g->tree);

        if (c < 0)
            *alive = 0;
        else
            sum += c;
    }
    return sum;
}

static long group_rss(const struct bench_watch_group *g)
{
    long sum = 0;

    for (int i = 0; i < g->npids; i++)
        sum += bench_proc_rss_kb(g->pids[i], g->tree);
    return sum;
}

static void machine_cpu(double *busy, double *total)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[10] = { 0 };

    *busy = *total = 0;
    if (f == NULL)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
        for (int i = 0; i < 8; i++)
            *total += (double) v[i];
        *busy = *total - (double) v[3] - (double) v[4]; /* minus idle and iowait */
    }
    fclose(f);
}

static void loadavg(double out[3])
{
    FILE *f = fopen("/proc/loadavg", "r");

    out[0] = out[1] = out[2] = -1;
    if (f == NULL)
        return;
    if (fscanf(f, "%lf %lf %lf", &out[0], &out[1], &out[2]) != 3)
        out[0] = out[1] = out[2] = -1;
    fclose(f);
}

void bench_watch_start(struct bench_watch *w)
{
    for (int i = 0; i < w->n; i++) {
        struct bench_watch_group *g = &w->g[i];

        g->cpu0 = group_cpu(g, &g->alive);
        g->rss_start_kb = g->rss_max_kb = group_rss(g);
    }
    machine_cpu(&w->sys_busy0, &w->sys_total0);
    loadavg(w->load0);
    w->t0_us = bench_now_us();
}

void bench_watch_sample(struct bench_watch *w)
{
    for (int i = 0; i < w->n; i++) {
        long rss = group_rss(&w->g[i]);

        if (rss > w->g[i].rss_max_kb)
            w->g[i].rss_max_kb = rss;
    }
}

void bench_watch_mark(struct bench_watch *w)
{
    for (int i = 0; i < w->n; i++) {
        int alive;

        w->g[i].cpu_mid = group_cpu(&w->g[i], &alive);
    }
    machine_cpu(&w->sys_busy_mid, &w->sys_total_mid);
    w->t_mid_us = bench_now_us();
}

void bench_watch_stop(struct bench_watch *w)
{
    w->t1_us = bench_now_us();
    for (int i = 0; i < w->n; i++) {
        struct bench_watch_group *g = &w->g[i];
        int alive;

        g->cpu1 = group_cpu(g, &alive);
        g->alive = g->alive && alive;
        g->rss_end_kb = group_rss(g);
        if (g->rss_end_kb > g->rss_max_kb)
            g->rss_max_kb = g->rss_end_kb;
    }
    machine_cpu(&w->sys_busy1, &w->sys_total1);
    loadavg(w->load1);
}

json_t *bench_watch_json(const struct bench_watch *w, double units)
{
    double wall = (double) (w->t1_us - w->t0_us) / 1e6;
    double dt = w->sys_total1 - w->sys_total0;
    double p1 = w->t_mid_us ? (double) (w->t_mid_us - w->t0_us) / 1e6 : 0;
    double p2 = w->t_mid_us ? (double) (w->t1_us - w->t_mid_us) / 1e6 : 0;
    json_t *procs = json_object();
    json_t *out;

    for (int i = 0; i < w->n; i++) {
        const struct bench_watch_group *g = &w->g[i];
        double cpu = g->cpu1 - g->cpu0;
        json_t *o =
            json_pack("{s:f,s:f,s:f,s:I,s:I,s:I,s:b}", "cpu_s", cpu, "cpu_pct",
                      wall > 0 ? 100.0 * cpu / wall : 0.0, "cpu_us_per_unit",
                      units > 0 ? cpu * 1e6 / units : 0.0, "rss_start_kb",
                      (json_int_t) g->rss_start_kb, "rss_max_kb", (json_int_t) g->rss_max_kb,
                      "rss_end_kb", (json_int_t) g->rss_end_kb, "alive", g->alive);

        if (p1 > 0 && p2 > 0) {
            json_object_set_new(o, "cpu_pct_phase1",
                                json_real(100.0 * (g->cpu_mid - g->cpu0) / p1));
            json_object_set_new(o, "cpu_pct_phase2",
                                json_real(100.0 * (g->cpu1 - g->cpu_mid) / p2));
        }
        json_object_set_new(procs, g->name, o);
    }
    out = json_pack("{s:{s:f,s:[f,f,f],s:[f,f,f]},s:o}", "machine", "cpu_busy_pct",
                    dt > 0 ? 100.0 * (w->sys_busy1 - w->sys_busy0) / dt : 0.0, "load_start",
                    w->load0[0], w->load0[1], w->load0[2], "load_end", w->load1[0], w->load1[1],
                    w->load1[2], "procs", procs);
    if (p1 > 0 && p2 > 0) {
        json_t *m = json_object_get(out, "machine");
        double d1 = w->sys_total_mid - w->sys_total0;
        double d2 = w->sys_total1 - w->sys_total_mid;

        json_object_set_new(m, "phase1_s", json_real(p1));
        json_object_set_new(m, "phase2_s", json_real(p2));
        json_object_set_new(m, "cpu_busy_pct_phase1",
                            json_real(d1 > 0 ? 100.0 * (w->sys_busy_mid - w->sys_busy0) / d1 : 0));
        json_object_set_new(m, "cpu_busy_pct_phase2",
                            json_real(d2 > 0 ? 100.0 * (w->sys_busy1 - w->sys_busy_mid) / d2 : 0));
    }
    return out;
}

/* ---- RabbitMQ management API --------------------------------------------------------------- */

static size_t collect(char *p, size_t s, size_t n, void *ud)
{
    if (ud != NULL && tx_buf_append(ud, p, s * n) != 0)
        return 0;
    return s * n;
}

long bench_mgmt(const char *method, const char *path, const char *body, struct tx_buf *out)
{
    const char *base = getenv("TX_RABBIT_MGMT_URL");
    CURL *h;
    struct curl_slist *hdrs;
    char url[2048];
    long st = 0;

    if (base == NULL)
        return 0;
    h = curl_easy_init();
    hdrs = curl_slist_append(NULL, "content-type: application/json");
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return st;
}

void bench_json_print(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(6));

    if (s != NULL) {
        puts(s);
        fflush(stdout);
    }
    free(s);
    json_decref(v);
}
