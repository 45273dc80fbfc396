#include "common/tx_metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/*
 * Layout: the registry holds an array of families (grown under its mutex, read under it by
 * render). A family holds a fixed array of max_series series pointers allocated at registration
 * and an atomic count: a new series is fully built, stored in the next slot, then published with
 * a release store of the count, so lookups and render read the first `count` slots without a
 * lock (acquire load). Series are never removed before tx_metrics_destroy.
 */

struct tx_counter {
    _Atomic uint64_t v;
};

struct tx_gauge {
    _Atomic uint64_t bits; /* the double's bit pattern; 0 is 0.0 */
};

struct tx_histogram {
    const double *bounds;     /* the family's, nbuckets of them */
    size_t nbuckets;          /* finite buckets; counts has nbuckets + 1 (last is +Inf) */
    _Atomic uint64_t *counts; /* per bucket, not cumulative */
    _Atomic uint64_t sum_bits;
};

struct series {
    char **values; /* the family's nlabels label values */
    union {
        struct tx_counter c;
        struct tx_gauge g;
        struct tx_histogram h;
    } u;
};

struct tx_metric_family {
    enum tx_metric_type type;
    char *name;
    char *help;
    char **labels;
    size_t nlabels;
    double *bounds;
    size_t nbuckets;
    size_t cap;
    struct series **series; /* cap slots */
    _Atomic size_t nseries;
    struct series *overflow; /* labelled families only */
    atomic_bool overflow_used;
    pthread_mutex_t lock; /* serialises series creation */
};

struct tx_metrics {
    pthread_mutex_t lock; /* guards families/nfam/capfam */
    unsigned flags;
    struct tx_metric_family **families;
    size_t nfam;
    size_t capfam;
    double start_time; /* process start, seconds since the epoch */
};

static const char *const process_names[] = {
    "process_cpu_seconds_total",  "process_max_fds",
    "process_open_fds",           "process_resident_memory_bytes",
    "process_start_time_seconds", "process_virtual_memory_bytes",
};

static uint64_t dbl_bits(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bits_dbl(uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

/* ---- updates (hot path) ---- */

void tx_counter_add(struct tx_counter *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

void tx_counter_inc(struct tx_counter *c)
{
    tx_counter_add(c, 1);
}

uint64_t tx_counter_value(const struct tx_counter *c)
{
    if (c == NULL)
        return 0;
    return atomic_load_explicit(&((struct tx_counter *) c)->v, memory_order_relaxed);
}

void tx_gauge_set(struct tx_gauge *g, double v)
{
    if (g != NULL)
        atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

static void add_double(_Atomic uint64_t *bits, double d)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(bits, &old, dbl_bits(bits_dbl(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed)) {
        /* old was reloaded by the failed exchange */
    }
}

void tx_gauge_add(struct tx_gauge *g, double d)
{
    if (g != NULL)
        add_double(&g->bits, d);
}

double tx_gauge_value(const struct tx_gauge *g)
{
    if (g == NULL)
        return 0.0;
    return bits_dbl(atomic_load_explicit(&((struct tx_gauge *) g)->bits, memory_order_relaxed));
}

void tx_histogram_observe(struct tx_histogram *h, double v)
{
    size_t lo = 0;
    size_t hi;

    if (h == NULL)
        return;
    /* First bound >= v; NaN compares false everywhere and lands in +Inf. */
    hi = h->nbuckets;
    if (!isnan(v)) {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (h->bounds[mid] >= v)
                hi = mid;
            else
                lo = mid + 1;
        }
    }
    else {
        lo = h->nbuckets;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    add_double(&h->sum_bits, v);
}

/* ---- validation ---- */

static bool valid_metric_name(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        return false;
    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';

        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static bool valid_label_name(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0' || strncmp(s, "__", 2) == 0)
        return false;
    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';

        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
static bool valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        size_t k;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        }
        else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        }
        else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* ---- construction and destruction ---- */

static void series_destroy(struct series *s, size_t nlabels)
{
    size_t i;

    if (s == NULL)
        return;
    if (s->values != NULL) {
        for (i = 0; i < nlabels; i++)
            free(s->values[i]);
        free(s->values);
    }
    free((void *) s->u.h.counts);
    free(s);
}

/* A series with copies of values (nlabels of them, or all TX_METRICS_OVERFLOW_VALUE if NULL). */
static struct series *series_create(const struct tx_metric_family *f, const char *const *values)
{
    struct series *s = NULL;
    size_t i;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto fail;
    if (f->nlabels > 0) {
        s->values = calloc(f->nlabels, sizeof(*s->values));
        if (s->values == NULL)
            goto fail;
        for (i = 0; i < f->nlabels; i++) {
            s->values[i] = strdup(values != NULL ? values[i] : TX_METRICS_OVERFLOW_VALUE);
            if (s->values[i] == NULL)
                goto fail;
        }
    }
    if (f->type == TX_METRIC_HISTOGRAM) {
        s->u.h.bounds = f->bounds;
        s->u.h.nbuckets = f->nbuckets;
        s->u.h.counts = calloc(f->nbuckets + 1, sizeof(*s->u.h.counts));
        if (s->u.h.counts == NULL)
            goto fail;
        for (i = 0; i <= f->nbuckets; i++)
            atomic_init(&s->u.h.counts[i], 0);
        atomic_init(&s->u.h.sum_bits, dbl_bits(0.0));
    }
    else if (f->type == TX_METRIC_COUNTER) {
        atomic_init(&s->u.c.v, 0);
    }
    else {
        atomic_init(&s->u.g.bits, dbl_bits(0.0));
    }
    return s;
fail:
    series_destroy(s, f->nlabels);
    return NULL;
}

static void family_destroy(struct tx_metric_family *f)
{
    size_t i;
    size_t n;

    if (f == NULL)
        return;
    n = atomic_load_explicit(&f->nseries, memory_order_acquire);
    for (i = 0; i < n; i++)
        series_destroy(f->series[i], f->nlabels);
    series_destroy(f->overflow, f->nlabels);
    free(f->series);
    if (f->labels != NULL) {
        for (i = 0; i < f->nlabels; i++)
            free(f->labels[i]);
        free(f->labels);
    }
    free(f->bounds);
    free(f->help);
    free(f->name);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static int validate_desc(const struct tx_metric_desc *d, struct tx_err *err)
{
    size_t i;
    size_t j;

    if (d->type != TX_METRIC_COUNTER && d->type != TX_METRIC_GAUGE &&
        d->type != TX_METRIC_HISTOGRAM)
        return tx_err_set(err, TX_EINVAL, "metric type %d unknown", (int) d->type);
    if (!valid_metric_name(d->name))
        return tx_err_set(err, TX_EINVAL, "metric name '%s' is not [a-zA-Z_:][a-zA-Z0-9_:]*",
                          d->name != NULL ? d->name : "(null)");
    if (d->nlabels > TX_METRICS_MAX_LABELS)
        return tx_err_set(err, TX_EINVAL, "%s: %zu labels, at most %d", d->name, d->nlabels,
                          TX_METRICS_MAX_LABELS);
    if (d->nlabels > 0 && d->labels == NULL)
        return tx_err_set(err, TX_EINVAL, "%s: %zu labels but no label names", d->name, d->nlabels);
    for (i = 0; i < d->nlabels; i++) {
        if (!valid_label_name(d->labels[i]))
            return tx_err_set(err, TX_EINVAL,
                              "%s: label name '%s' is not [a-zA-Z_][a-zA-Z0-9_]* or starts "
                              "with __",
                              d->name, d->labels[i] != NULL ? d->labels[i] : "(null)");
        if (d->type == TX_METRIC_HISTOGRAM && strcmp(d->labels[i], "le") == 0)
            return tx_err_set(err, TX_EINVAL, "%s: a histogram cannot have a label 'le'", d->name);
        for (j = 0; j < i; j++) {
            if (strcmp(d->labels[i], d->labels[j]) == 0)
                return tx_err_set(err, TX_EINVAL, "%s: label '%s' given twice", d->name,
                                  d->labels[i]);
        }
    }
    if (d->type == TX_METRIC_HISTOGRAM) {
        if (d->buckets == NULL || d->nbuckets == 0 || d->nbuckets > TX_METRICS_MAX_BUCKETS)
            return tx_err_set(err, TX_EINVAL, "%s: a histogram needs 1 to %d buckets", d->name,
                              TX_METRICS_MAX_BUCKETS);
        for (i = 0; i < d->nbuckets; i++) {
            if (!isfinite(d->buckets[i]))
                return tx_err_set(err, TX_EINVAL, "%s: bucket %zu is not finite", d->name, i);
            if (i > 0 && !(d->buckets[i] > d->buckets[i - 1]))
                return tx_err_set(err, TX_EINVAL, "%s: buckets are not strictly increasing",
                                  d->name);
        }
    }
    else if (d->nbuckets != 0) {
        return tx_err_set(err, TX_EINVAL, "%s: buckets given for a non-histogram", d->name);
    }
    if (d->max_series > TX_METRICS_MAX_SERIES)
        return tx_err_set(err, TX_EINVAL, "%s: max_series %zu above %d", d->name, d->max_series,
                          TX_METRICS_MAX_SERIES);
    return 0;
}

static struct tx_metric_family *family_create(const struct tx_metric_desc *d)
{
    struct tx_metric_family *f = NULL;
    size_t i;

    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f);
        return NULL;
    }
    f->type = d->type;
    f->nlabels = d->nlabels;
    f->nbuckets = d->type == TX_METRIC_HISTOGRAM ? d->nbuckets : 0;
    if (d->nlabels == 0)
        f->cap = 1;
    else
        f->cap = d->max_series != 0 ? d->max_series : TX_METRICS_DEFAULT_MAX_SERIES;
    atomic_init(&f->nseries, 0);
    atomic_init(&f->overflow_used, false);
    f->name = strdup(d->name);
    f->help = strdup(d->help != NULL ? d->help : "");
    f->series = calloc(f->cap, sizeof(*f->series));
    if (f->name == NULL || f->help == NULL || f->series == NULL)
        goto fail;
    if (f->nlabels > 0) {
        f->labels = calloc(f->nlabels, sizeof(*f->labels));
        if (f->labels == NULL)
            goto fail;
        for (i = 0; i < f->nlabels; i++) {
            f->labels[i] = strdup(d->labels[i]);
            if (f->labels[i] == NULL)
                goto fail;
        }
    }
    if (f->nbuckets > 0) {
        f->bounds = malloc(f->nbuckets * sizeof(*f->bounds));
        if (f->bounds == NULL)
            goto fail;
        memcpy(f->bounds, d->buckets, f->nbuckets * sizeof(*f->bounds));
    }
    if (f->nlabels == 0) {
        /* The one series exists from the start, so it renders as 0 before any update. */
        f->series[0] = series_create(f, NULL);
        if (f->series[0] == NULL)
            goto fail;
        atomic_store_explicit(&f->nseries, 1, memory_order_release);
    }
    else {
        f->overflow = series_create(f, NULL);
        if (f->overflow == NULL)
            goto fail;
    }
    return f;
fail:
    family_destroy(f);
    return NULL;
}

/* /proc/self/stat starttime (field 22, clock ticks after boot) + /proc/stat btime. */
static int read_process_start(double *out)
{
    char buf[1024];
    FILE *fp = NULL;
    size_t n;
    char *p;
    unsigned long long ticks = 0;
    unsigned long long btime = 0;
    long hz = sysconf(_SC_CLK_TCK);
    int field;
    int rc = -1;

    fp = fopen("/proc/self/stat", "r");
    if (fp == NULL)
        goto out;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    fp = NULL;
    p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (p == NULL)
        goto out;
    p++;
    /* p is before field 3 (state); starttime is field 22. */
    for (field = 3; field < 22 && p != NULL; field++) {
        p = strchr(p + 1, ' ');
    }
    if (p == NULL || sscanf(p, " %llu", &ticks) != 1)
        goto out;
    fp = fopen("/proc/stat", "r");
    if (fp == NULL)
        goto out;
    while (fgets(buf, sizeof(buf), fp) != NULL) {
        if (sscanf(buf, "btime %llu", &btime) == 1)
            break;
    }
    if (btime == 0 || hz <= 0)
        goto out;
    *out = (double) btime + (double) ticks / (double) hz;
    rc = 0;
out:
    if (fp != NULL)
        fclose(fp);
    return rc;
}

struct tx_metrics *tx_metrics_create(unsigned flags)
{
    struct tx_metrics *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->flags = flags;
    if ((flags & TX_METRICS_NO_PROCESS) == 0 && read_process_start(&m->start_time) != 0) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        m->start_time = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
    }
    return m;
}

void tx_metrics_destroy(struct tx_metrics *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < m->nfam; i++)
        family_destroy(m->families[i]);
    free(m->families);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

struct tx_metric_family *tx_metrics_family(struct tx_metrics *m, const struct tx_metric_desc *d,
                                           struct tx_err *err)
{
    struct tx_metric_family *f = NULL;
    struct tx_metric_family *ret = NULL;
    size_t i;
    bool locked = false;

    if (m == NULL || d == NULL) {
        tx_err_set(err, TX_EINVAL, "tx_metrics_family: NULL registry or description");
        goto out;
    }
    if (validate_desc(d, err) != 0)
        goto out;
    if ((m->flags & TX_METRICS_NO_PROCESS) == 0) {
        for (i = 0; i < sizeof(process_names) / sizeof(process_names[0]); i++) {
            if (strcmp(d->name, process_names[i]) == 0) {
                tx_err_set(err, TX_EEXIST, "metric name '%s' is a built-in process metric",
                           d->name);
                goto out;
            }
        }
    }
    f = family_create(d);
    if (f == NULL) {
        tx_err_set(err, TX_ENOMEM, "%s: out of memory", d->name);
        goto out;
    }
    pthread_mutex_lock(&m->lock);
    locked = true;
    for (i = 0; i < m->nfam; i++) {
        if (strcmp(m->families[i]->name, d->name) == 0) {
            tx_err_set(err, TX_EEXIST, "metric name '%s' is already registered", d->name);
            goto out;
        }
    }
    if (m->nfam == m->capfam) {
        size_t cap = m->capfam != 0 ? m->capfam * 2 : 16;
        struct tx_metric_family **p = realloc(m->families, cap * sizeof(*p));

        if (p == NULL) {
            tx_err_set(err, TX_ENOMEM, "%s: out of memory", d->name);
            goto out;
        }
        m->families = p;
        m->capfam = cap;
    }
    m->families[m->nfam++] = f;
    ret = f;
    f = NULL; /* the registry owns it now */
out:
    if (locked)
        pthread_mutex_unlock(&m->lock);
    family_destroy(f);
    return ret;
}

static bool series_matches(const struct series *s, const char *const *values, size_t nvalues)
{
    size_t k;

    for (k = 0; k < nvalues; k++) {
        if (strcmp(s->values[k], values[k]) != 0)
            return false;
    }
    return true;
}

static struct series *family_series(struct tx_metric_family *f, enum tx_metric_type type,
                                    const char *const *values, size_t nvalues)
{
    struct series *s = NULL;
    size_t n;
    size_t i;
    size_t k;

    if (f == NULL || f->type != type || nvalues != f->nlabels || (nvalues > 0 && values == NULL))
        return NULL;
    for (k = 0; k < nvalues; k++) {
        size_t len;

        if (values[k] == NULL)
            return NULL;
        len = strlen(values[k]);
        if (len > TX_METRICS_MAX_VALUE_LEN || !valid_utf8((const unsigned char *) values[k], len) ||
            strcmp(values[k], TX_METRICS_OVERFLOW_VALUE) == 0)
            goto overflow;
    }

    n = atomic_load_explicit(&f->nseries, memory_order_acquire);
    for (i = 0; i < n; i++) {
        if (series_matches(f->series[i], values, nvalues))
            return f->series[i];
    }

    pthread_mutex_lock(&f->lock);
    /* Another thread may have added series since the lock-free scan: look at those too. */
    for (n = atomic_load_explicit(&f->nseries, memory_order_relaxed); i < n; i++) {
        if (series_matches(f->series[i], values, nvalues)) {
            s = f->series[i];
            break;
        }
    }
    if (s == NULL && n < f->cap) {
        s = series_create(f, values);
        if (s != NULL) {
            f->series[n] = s;
            atomic_store_explicit(&f->nseries, n + 1, memory_order_release);
        }
        pthread_mutex_unlock(&f->lock);
        return s;
    }
    pthread_mutex_unlock(&f->lock);
    if (s != NULL)
        return s;
overflow:
    if (f->overflow == NULL)
        return NULL;
    if (!atomic_load_explicit(&f->overflow_used, memory_order_relaxed))
        atomic_store_explicit(&f->overflow_used, true, memory_order_relaxed);
    return f->overflow;
}

struct tx_counter *tx_metric_family_counter(struct tx_metric_family *f, const char *const *values,
                                            size_t nvalues)
{
    struct series *s = family_series(f, TX_METRIC_COUNTER, values, nvalues);

    return s != NULL ? &s->u.c : NULL;
}

struct tx_gauge *tx_metric_family_gauge(struct tx_metric_family *f, const char *const *values,
                                        size_t nvalues)
{
    struct series *s = family_series(f, TX_METRIC_GAUGE, values, nvalues);

    return s != NULL ? &s->u.g : NULL;
}

struct tx_histogram *tx_metric_family_histogram(struct tx_metric_family *f,
                                                const char *const *values, size_t nvalues)
{
    struct series *s = family_series(f, TX_METRIC_HISTOGRAM, values, nvalues);

    return s != NULL ? &s->u.h : NULL;
}

static struct tx_metric_family *register_single(struct tx_metrics *m, enum tx_metric_type type,
                                                const char *name, const char *help,
                                                const double *buckets, size_t nbuckets,
                                                struct tx_err *err)
{
    struct tx_metric_desc d;

    memset(&d, 0, sizeof(d));
    d.type = type;
    d.name = name;
    d.help = help;
    d.buckets = buckets;
    d.nbuckets = nbuckets;
    return tx_metrics_family(m, &d, err);
}

struct tx_counter *tx_metrics_counter(struct tx_metrics *m, const char *name, const char *help,
                                      struct tx_err *err)
{
    struct tx_metric_family *f = register_single(m, TX_METRIC_COUNTER, name, help, NULL, 0, err);

    return f != NULL ? &f->series[0]->u.c : NULL;
}

struct tx_gauge *tx_metrics_gauge(struct tx_metrics *m, const char *name, const char *help,
                                  struct tx_err *err)
{
    struct tx_metric_family *f = register_single(m, TX_METRIC_GAUGE, name, help, NULL, 0, err);

    return f != NULL ? &f->series[0]->u.g : NULL;
}

struct tx_histogram *tx_metrics_histogram(struct tx_metrics *m, const char *name, const char *help,
                                          const double *buckets, size_t nbuckets,
                                          struct tx_err *err)
{
    struct tx_metric_family *f =
        register_single(m, TX_METRIC_HISTOGRAM, name, help, buckets, nbuckets, err);

    return f != NULL ? &f->series[0]->u.h : NULL;
}

/* ---- rendering ---- */

/*
 * Shortest text that reads back as the same double, written like Go's strconv.FormatFloat(v, 'g',
 * -1, 64) (what the Prometheus clients print): exponent form when the decimal exponent is below -4
 * or at least 6 ("1e+06"), plain decimals otherwise ("10", "0.0025").
 */
static int put_double(struct tx_buf *out, double v)
{
    char tmp[40];
    char *e;
    int prec;
    int exp10;

    if (isnan(v))
        return tx_buf_puts(out, "NaN");
    if (isinf(v))
        return tx_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    for (prec = 1; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
    e = strchr(tmp, 'e');
    exp10 = e != NULL ? atoi(e + 1) : 0;
    if (exp10 < -4 || exp10 >= 6)
        return tx_buf_puts(out, tmp);
    return tx_buf_printf(out, "%.*f", prec - 1 - exp10 > 0 ? prec - 1 - exp10 : 0, v);
}

/* HELP text: backslash and newline escaped. */
static int put_help(struct tx_buf *out, const char *s)
{
    int rc = 0;

    for (; rc == 0 && *s != '\0'; s++) {
        if (*s == '\\')
            rc = tx_buf_append(out, "\\\\", 2);
        else if (*s == '\n')
            rc = tx_buf_append(out, "\\n", 2);
        else
            rc = tx_buf_append(out, s, 1);
    }
    return rc;
}

/* Label value: backslash, double quote and newline escaped. */
static int put_label_value(struct tx_buf *out, const char *s)
{
    int rc = 0;

    for (; rc == 0 && *s != '\0'; s++) {
        if (*s == '\\')
            rc = tx_buf_append(out, "\\\\", 2);
        else if (*s == '"')
            rc = tx_buf_append(out, "\\\"", 2);
        else if (*s == '\n')
            rc = tx_buf_append(out, "\\n", 2);
        else
            rc = tx_buf_append(out, s, 1);
    }
    return rc;
}

/* name + suffix + {labels[,le="..."]} + ' ' ; le NULL for none. */
static int put_series_name(struct tx_buf *out, const struct tx_metric_family *f,
                           const struct series *s, const char *suffix, const double *le)
{
    size_t i;
    int rc;

    rc = tx_buf_puts(out, f->name);
    if (rc == 0)
        rc = tx_buf_puts(out, suffix);
    if (rc == 0 && (f->nlabels > 0 || le != NULL))
        rc = tx_buf_puts(out, "{");
    for (i = 0; rc == 0 && i < f->nlabels; i++) {
        rc = tx_buf_printf(out, "%s%s=\"", i > 0 ? "," : "", f->labels[i]);
        if (rc == 0)
            rc = put_label_value(out, s->values[i]);
        if (rc == 0)
            rc = tx_buf_puts(out, "\"");
    }
    if (rc == 0 && le != NULL) {
        rc = tx_buf_puts(out, f->nlabels > 0 ? ",le=\"" : "le=\"");
        if (rc == 0)
            rc = put_double(out, *le);
        if (rc == 0)
            rc = tx_buf_puts(out, "\"");
    }
    if (rc == 0 && (f->nlabels > 0 || le != NULL))
        rc = tx_buf_puts(out, "}");
    if (rc == 0)
        rc = tx_buf_puts(out, " ");
    return rc;
}

static int render_series(struct tx_buf *out, const struct tx_metric_family *f, struct series *s)
{
    uint64_t cum = 0;
    double inf = INFINITY;
    size_t i;
    int rc = 0;

    switch (f->type) {
    case TX_METRIC_COUNTER:
        rc = put_series_name(out, f, s, "", NULL);
        if (rc == 0)
            rc = tx_buf_printf(out, "%" PRIu64 "\n", tx_counter_value(&s->u.c));
        break;
    case TX_METRIC_GAUGE:
        rc = put_series_name(out, f, s, "", NULL);
        if (rc == 0)
            rc = put_double(out, tx_gauge_value(&s->u.g));
        if (rc == 0)
            rc = tx_buf_puts(out, "\n");
        break;
    case TX_METRIC_HISTOGRAM:
        for (i = 0; rc == 0 && i <= f->nbuckets; i++) {
            cum += atomic_load_explicit(&s->u.h.counts[i], memory_order_relaxed);
            rc = put_series_name(out, f, s, "_bucket", i < f->nbuckets ? &f->bounds[i] : &inf);
            if (rc == 0)
                rc = tx_buf_printf(out, "%" PRIu64 "\n", cum);
        }
        if (rc == 0)
            rc = put_series_name(out, f, s, "_sum", NULL);
        if (rc == 0)
            rc = put_double(out,
                            bits_dbl(atomic_load_explicit(&s->u.h.sum_bits, memory_order_relaxed)));
        if (rc == 0)
            rc = tx_buf_puts(out, "\n");
        if (rc == 0)
            rc = put_series_name(out, f, s, "_count", NULL);
        if (rc == 0)
            rc = tx_buf_printf(out, "%" PRIu64 "\n", cum);
        break;
    }
    return rc;
}

static int render_family(struct tx_buf *out, struct tx_metric_family *f)
{
    static const char *const type_names[] = { "counter", "gauge", "histogram" };
    size_t n = atomic_load_explicit(&f->nseries, memory_order_acquire);
    size_t i;
    int rc;

    rc = tx_buf_printf(out, "# HELP %s ", f->name);
    if (rc == 0)
        rc = put_help(out, f->help);
    if (rc == 0)
        rc = tx_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    for (i = 0; rc == 0 && i < n; i++)
        rc = render_series(out, f, f->series[i]);
    if (rc == 0 && atomic_load_explicit(&f->overflow_used, memory_order_relaxed))
        rc = render_series(out, f, f->overflow);
    return rc;
}

static int put_process_metric(struct tx_buf *out, const char *name, const char *type,
                              const char *help, double v)
{
    int rc = tx_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s ", name, help, name, type, name);

    if (rc == 0)
        rc = put_double(out, v);
    if (rc == 0)
        rc = tx_buf_puts(out, "\n");
    return rc;
}

static int count_open_fds(long *out)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    *out = n > 0 ? n - 1 : 0; /* the directory stream's own descriptor */
    return 0;
}

static int render_process(struct tx_metrics *m, struct tx_buf *out)
{
    struct rusage ru;
    struct rlimit rl;
    unsigned long long vsize_pages = 0;
    unsigned long long rss_pages = 0;
    long page = sysconf(_SC_PAGESIZE);
    long fds;
    FILE *fp;
    int rc = 0;

    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
                     (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;

        rc = put_process_metric(out, "process_cpu_seconds_total", "counter",
                                "Total user and system CPU time spent in seconds.", cpu);
    }
    if (rc == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        rc = put_process_metric(out, "process_max_fds", "gauge",
                                "Maximum number of open file descriptors.", (double) rl.rlim_cur);
    if (rc == 0 && count_open_fds(&fds) == 0)
        rc = put_process_metric(out, "process_open_fds", "gauge",
                                "Number of open file descriptors.", (double) fds);
    fp = fopen("/proc/self/statm", "r");
    if (fp != NULL) {
        int got = fscanf(fp, "%llu %llu", &vsize_pages, &rss_pages);

        fclose(fp);
        if (rc == 0 && got == 2 && page > 0)
            rc = put_process_metric(out, "process_resident_memory_bytes", "gauge",
                                    "Resident memory size in bytes.",
                                    (double) rss_pages * (double) page);
        if (rc == 0 && got == 2 && page > 0)
            rc = put_process_metric(out, "process_virtual_memory_bytes", "gauge",
                                    "Virtual memory size in bytes.",
                                    (double) vsize_pages * (double) page);
    }
    if (rc == 0)
        rc = put_process_metric(out, "process_start_time_seconds", "gauge",
                                "Start time of the process since unix epoch in seconds.",
                                m->start_time);
    return rc;
}

int tx_metrics_render(struct tx_metrics *m, struct tx_buf *out)
{
    size_t i;
    int rc = 0;

    if (m == NULL || out == NULL)
        return TX_EINVAL;
    pthread_mutex_lock(&m->lock);
    for (i = 0; rc == 0 && i < m->nfam; i++)
        rc = render_family(out, m->families[i]);
    pthread_mutex_unlock(&m->lock);
    if (rc == 0 && (m->flags & TX_METRICS_NO_PROCESS) == 0)
        rc = render_process(m, out);
    return rc;
}
