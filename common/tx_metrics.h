#ifndef TX_METRICS_H
#define TX_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/tx_buf.h"
#include "common/tx_status.h"

/*
 * A metrics registry (counters, gauges, histograms) rendered in the Prometheus text exposition
 * format 0.0.4.
 *
 * Life cycle: create the registry, register every metric at start-up (registration takes a
 * mutex), keep the returned series handles, update them from any thread (updates are lock-free
 * C11 atomics, no allocation), render on each scrape, destroy after every thread that may update
 * a series has stopped. Handles belong to the registry and die with it.
 *
 * Labelled metrics are families: the label names are fixed at registration; each distinct tuple
 * of label values is one series. Series are created on first lookup, up to the family's hard cap
 * (max_series); lookups past the cap, and lookups with a value that is not valid UTF-8 or longer
 * than TX_METRICS_MAX_VALUE_LEN bytes, all return one shared overflow series whose label values
 * are all TX_METRICS_OVERFLOW_VALUE, so memory stays bounded whatever the input. Register the
 * series you know of up front (and keep the handles) to keep the hot path to one atomic add.
 */

struct tx_metrics;
struct tx_metric_family;
struct tx_counter;
struct tx_gauge;
struct tx_histogram;

enum tx_metric_type {
    TX_METRIC_COUNTER = 0,
    TX_METRIC_GAUGE = 1,
    TX_METRIC_HISTOGRAM = 2,
};

/* Flags for tx_metrics_create. */
enum {
    TX_METRICS_DEFAULT = 0,         /* with the process_* metrics */
    TX_METRICS_NO_PROCESS = 1u << 0 /* without them (tests compare exact text) */
};

/* Label value of every label of a family's overflow series. */
#define TX_METRICS_OVERFLOW_VALUE "__overflow__"
/* Longest label value kept as is (bytes); longer values go to the overflow series. */
#define TX_METRICS_MAX_VALUE_LEN 256
/* Largest number of labels per family, of buckets per histogram, and of series per family. */
#define TX_METRICS_MAX_LABELS  8
#define TX_METRICS_MAX_BUCKETS 64
#define TX_METRICS_MAX_SERIES  4096
/* Series cap of a labelled family when the description says 0. */
#define TX_METRICS_DEFAULT_MAX_SERIES 64

/* Latency buckets in seconds, 1 ms to 10 s (TX_METRICS_LATENCY_BUCKETS_N entries). */
#define TX_METRICS_LATENCY_BUCKETS \
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
#define TX_METRICS_LATENCY_BUCKETS_N 13

/* What tx_metrics_family registers. Strings are copied. */
struct tx_metric_desc {
    enum tx_metric_type type;
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*, unique in the registry */
    const char *help; /* any text; backslash and newline are escaped on output */
    /* Label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", not "le" for a histogram,
     * no duplicates), nlabels of them (0..TX_METRICS_MAX_LABELS). */
    const char *const *labels;
    size_t nlabels;
    /* Histograms only: nbuckets (1..TX_METRICS_MAX_BUCKETS) finite, strictly increasing upper
     * bounds; the +Inf bucket is implied. */
    const double *buckets;
    size_t nbuckets;
    /* Labelled families only: the cap on distinct series, overflow series not included
     * (0 means TX_METRICS_DEFAULT_MAX_SERIES, at most TX_METRICS_MAX_SERIES). */
    size_t max_series;
};

/**
 * Creates an empty registry. flags: TX_METRICS_DEFAULT or TX_METRICS_NO_PROCESS. Returns NULL
 * when out of memory. Free with tx_metrics_destroy.
 */
struct tx_metrics *tx_metrics_create(unsigned flags);

/**
 * Frees the registry and every family and series handle it gave out. NULL is a no-op. Not
 * thread-safe: no other thread may use the registry or its handles any more.
 */
void tx_metrics_destroy(struct tx_metrics *m);

/**
 * Registers a metric family described by d. Errors (NULL returned, detail in err): TX_EINVAL for
 * a bad name, label name, label count, bucket list or cap, TX_EEXIST when the name is taken
 * (including the process_* names unless TX_METRICS_NO_PROCESS), TX_ENOMEM. The family belongs to
 * the registry. Thread-safe (takes the registry mutex); meant for start-up.
 */
struct tx_metric_family *tx_metrics_family(struct tx_metrics *m, const struct tx_metric_desc *d,
                                           struct tx_err *err);

/**
 * Registers an unlabelled counter / gauge / histogram and returns its single series; same errors
 * as tx_metrics_family. Thread-safe; meant for start-up.
 */
struct tx_counter *tx_metrics_counter(struct tx_metrics *m, const char *name, const char *help,
                                      struct tx_err *err);
struct tx_gauge *tx_metrics_gauge(struct tx_metrics *m, const char *name, const char *help,
                                  struct tx_err *err);
struct tx_histogram *tx_metrics_histogram(struct tx_metrics *m, const char *name, const char *help,
                                          const double *buckets, size_t nbuckets,
                                          struct tx_err *err);

/**
 * Returns the series of family f for the label values (nvalues must equal the family's label
 * count; values are copied). Finds an existing series without locking; creating a new one takes
 * the family's mutex. Past the family's cap, or for a value that is not valid UTF-8 or is longer
 * than TX_METRICS_MAX_VALUE_LEN, returns the shared overflow series. Returns NULL only for a
 * programmer error (f NULL, wrong metric type, wrong value count, a NULL value) or when out of
 * memory; update functions accept NULL as a no-op. Thread-safe.
 */
struct tx_counter *tx_metric_family_counter(struct tx_metric_family *f, const char *const *values,
                                            size_t nvalues);
struct tx_gauge *tx_metric_family_gauge(struct tx_metric_family *f, const char *const *values,
                                        size_t nvalues);
struct tx_histogram *tx_metric_family_histogram(struct tx_metric_family *f,
                                                const char *const *values, size_t nvalues);

/** Adds n to the counter (wraps at 2^64). NULL is a no-op. Lock-free, thread-safe. */
void tx_counter_add(struct tx_counter *c, uint64_t n);

/** Adds 1 to the counter. NULL is a no-op. Lock-free, thread-safe. */
void tx_counter_inc(struct tx_counter *c);

/** Current value of the counter (0 for NULL). Lock-free, thread-safe. */
uint64_t tx_counter_value(const struct tx_counter *c);

/** Sets the gauge. NULL is a no-op. Lock-free, thread-safe. */
void tx_gauge_set(struct tx_gauge *g, double v);

/** Adds d (may be negative) to the gauge with a CAS loop. NULL is a no-op. Lock-free, thread-safe.
 */
void tx_gauge_add(struct tx_gauge *g, double d);

/** Current value of the gauge (0 for NULL). Lock-free, thread-safe. */
double tx_gauge_value(const struct tx_gauge *g);

/**
 * Records one observation: counts it in the first bucket whose upper bound is >= v (+Inf when
 * none, or for NaN) and adds v to the sum. NULL is a no-op. Lock-free, thread-safe.
 */
void tx_histogram_observe(struct tx_histogram *h, double v);

/**
 * Appends the whole registry to out in the Prometheus text format 0.0.4: families in
 * registration order, series in creation order, then the process_* metrics (resident and virtual
 * memory from /proc/self/statm, CPU seconds from getrusage, start time, open and max fds) unless
 * TX_METRICS_NO_PROCESS. Values read while other threads update are each atomic, and a
 * histogram's _count always equals its +Inf bucket. Errors: TX_ETOOBIG when out's limit is
 * reached, TX_ENOMEM; out then holds a partial rendering. Thread-safe (takes the registry mutex;
 * updates are never blocked).
 */
int tx_metrics_render(struct tx_metrics *m, struct tx_buf *out);

/** Content-Type of tx_metrics_render's output. */
#define TX_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
