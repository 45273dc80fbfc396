#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

/*
 * Helpers shared by the benchmark clients of ci/bench (txload, txceiling): upload bodies shaped
 * like the seed file, latency percentiles, per-process CPU and RSS from /proc, and the RabbitMQ
 * management API. Benchmark code: it exits on setup errors instead of reporting them.
 */

#include "common/tx_buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in microseconds. */
int64_t bench_now_us(void);

/* Sleeps ms milliseconds. */
void bench_sleep_ms(long ms);

/* Prints "<prog>: what: why" on stderr and exits with status 1. */
void bench_die(const char *prog, const char *what, const char *why) __attribute__((noreturn));

/* getenv(name), or bench_die when it is unset or empty. */
const char *bench_need_env(const char *prog, const char *name);

/*
 * Appends to b an upload of `records` records in the seed file's layout (a JSON array, CRLF line
 * ends, 4-space indent, the seed's field names and the seed form of datatrasancao). Every record
 * gets a unique client id "<tag>-<seq>-<i>" (and e-mail "<id>@example.com"), so no fraud rule
 * fires on benchmark data: each record is one receipt e-mail. 0 or the tx_buf error.
 */
int bench_body_make(struct tx_buf *b, const char *tag, unsigned long seq, int records);

/* Latency samples (microseconds), kept up to a fixed capacity. */
struct bench_lat {
    int64_t *us;
    size_t n;
    size_t cap;
    double sum_us;
};

void bench_lat_init(struct bench_lat *l, size_t cap);
void bench_lat_cleanup(struct bench_lat *l);
void bench_lat_add(struct bench_lat *l, int64_t us);

/* {"p50":..,"p90":..,"p99":..,"max":..,"mean":..} in milliseconds (sorts l->us). */
json_t *bench_lat_json(struct bench_lat *l);

/*
 * Processes watched during a run: each group is a name and one or more pids, optionally with
 * every descendant (":tree", for nginx and PostgreSQL whose work is in child processes).
 * Spec syntax (command line): "name=pid[+pid...][:tree]".
 */
#define BENCH_WATCH_MAX 24

struct bench_watch_group {
    char name[32];
    long pids[8];
    int npids;
    int tree;
    double cpu0;       /* CPU seconds at bench_watch_start */
    double cpu1;       /* at bench_watch_stop */
    double cpu_mid;    /* at bench_watch_mark (end of the first phase), when marked */
    long rss_start_kb; /* summed VmRSS at start */
    long rss_max_kb;   /* largest sum seen by bench_watch_sample */
    long rss_end_kb;   /* at stop */
    int alive;         /* every pid existed at start */
};

struct bench_watch {
    struct bench_watch_group g[BENCH_WATCH_MAX];
    int n;
    double sys_busy0; /* whole machine, /proc/stat jiffies (busy, total) */
    double sys_total0;
    double sys_busy1;
    double sys_total1;
    double load0[3];
    double load1[3];
    double sys_busy_mid;
    double sys_total_mid;
    int64_t t0_us;
    int64_t t_mid_us; /* 0 when no mark */
    int64_t t1_us;
};

/* Parses one spec into w; 0, or -1 for a bad spec. */
int bench_watch_add(struct bench_watch *w, const char *spec);

/* Records CPU, RSS, machine CPU and load average now. */
void bench_watch_start(struct bench_watch *w);

/* Samples RSS (keeps the maximum). Cheap: call every 100-250 ms during the run. */
void bench_watch_sample(struct bench_watch *w);

/* Records CPU now, ending a first phase of the run (e2e: persisted and scored). */
void bench_watch_mark(struct bench_watch *w);

/* Records the end values. */
void bench_watch_stop(struct bench_watch *w);

/*
 * {"machine":{"cpu_busy_pct","load_start","load_end"},"procs":{name:{"cpu_s","cpu_pct",
 * "cpu_us_per_unit","rss_start_kb","rss_max_kb","rss_end_kb"}}}; units (records, requests)
 * divide the CPU time when > 0. After bench_watch_mark, "phase1_s" and "phase2_s" and, per
 * process and for the machine, "cpu_pct_phase1" and "cpu_pct_phase2" too.
 */
json_t *bench_watch_json(const struct bench_watch *w, double units);

/* CPU seconds (utime + stime) of pid, with its descendants when tree; -1 when pid is gone. */
double bench_proc_cpu(long pid, int tree);

/* VmRSS of pid in kB (with descendants when tree); 0 when gone. */
long bench_proc_rss_kb(long pid, int tree);

/*
 * RabbitMQ management API: method on TX_RABBIT_MGMT_URL + path with an optional JSON body.
 * Returns the HTTP status (0 when the request failed); the response body into out when not NULL.
 */
long bench_mgmt(const char *method, const char *path, const char *body, struct tx_buf *out);

/* Writes the JSON value to stdout on one line (and frees it). */
void bench_json_print(json_t *v);

#endif
