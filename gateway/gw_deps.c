/* Per-slot dependency connections and the gateway's metrics. */
#include "gateway/gw.h"

#include "common/tx_log.h"
#include "storage/cache.h"
#include "storage/db.h"
#include "storage/queue.h"

#include <stdio.h>
#include <string.h>

static const char *const dep_names[] = { "redis", "rabbitmq", "postgresql", "s3", "txgateway" };

const char *gw_slot_failed_dep(int rc)
{
    switch (rc) {
    case GW_DEP_REDIS:
        return dep_names[0];
    case GW_DEP_RABBITMQ:
        return dep_names[1];
    case GW_DEP_POSTGRES:
        return dep_names[2];
    default:
        return dep_names[4];
    }
}

int gw_slot_connect(struct gw *gw, struct gw_slot *s, unsigned deps, struct tx_err *err)
{
    if ((deps & GW_NEED_CACHE) && s->cache == NULL) {
        s->cache = cache_conn_create(gw->cfg.redis_url, (long) gw->cfg.dep_timeout_ms, err);
        if (s->cache == NULL)
            return GW_DEP_REDIS;
    }
    if ((deps & GW_NEED_QUEUE) && s->pub == NULL) {
        struct queue_config qc = { 0 };

        qc.url = gw->cfg.amqp_url;
        qc.heartbeat_s = 30;
        qc.connect_timeout_ms = (long) gw->cfg.dep_timeout_ms;
        qc.confirm_timeout_ms = (long) gw->cfg.confirm_timeout_ms;
        qc.window = (unsigned) gw->cfg.confirm_window;
        s->pub = queue_publisher_create(&qc, err);
        if (s->pub == NULL)
            return GW_DEP_RABBITMQ;
    }
    if ((deps & GW_NEED_DB) && s->db == NULL) {
        s->db = db_conn_create(gw->cfg.pg_ro_dsn, (long) gw->cfg.dep_timeout_ms, err);
        if (s->db == NULL)
            return GW_DEP_POSTGRES;
        /* A hung database must not hold a worker: queries get the same deadline. */
        if (db_conn_set_statement_timeout(s->db, (long) gw->cfg.dep_timeout_ms, err) != 0) {
            db_conn_destroy(s->db);
            s->db = NULL;
            return GW_DEP_POSTGRES;
        }
    }
    return 0;
}

void gw_slot_close(void *slot)
{
    struct gw_slot *s = slot;

    cache_conn_destroy(s->cache);
    queue_publisher_destroy(s->pub);
    db_conn_destroy(s->db);
    memset(s, 0, sizeof(*s));
}

/* ---- metrics ------------------------------------------------------------------------------- */

int gw_metrics_init(struct gw *gw, struct tx_err *err)
{
    static const double lat[] = { TX_METRICS_LATENCY_BUCKETS };
    static const char *const req_labels[] = { "route", "status" };
    static const char *const dep_labels[] = { "dependency" };
    struct tx_metric_desc d = { 0 };
    struct gw_metrics *m = &gw->m;

    gw->metrics = tx_metrics_create(TX_METRICS_DEFAULT);
    if (gw->metrics == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    d.type = TX_METRIC_COUNTER;
    d.name = "txgateway_requests_total";
    d.help = "HTTP requests by route and status";
    d.labels = req_labels;
    d.nlabels = 2;
    d.max_series = 256;
    m->requests = tx_metrics_family(gw->metrics, &d, err);
    d.name = "txgateway_dependency_errors_total";
    d.help = "Requests answered 503 because a dependency failed";
    d.labels = dep_labels;
    d.nlabels = 1;
    d.max_series = 8;
    m->dep_errors = tx_metrics_family(gw->metrics, &d, err);
    m->upload_bytes = tx_metrics_counter(gw->metrics, "txgateway_upload_bytes_total",
                                         "Bytes of accepted uploads", err);
    m->records = tx_metrics_counter(gw->metrics, "txgateway_records_total",
                                    "Records of accepted uploads", err);
    m->uploads =
        tx_metrics_counter(gw->metrics, "txgateway_uploads_total", "Accepted uploads (202)", err);
    m->inflight = tx_metrics_gauge(gw->metrics, "txgateway_uploads_in_flight",
                                   "Uploads being processed", err);
    m->lat_upload = tx_metrics_histogram(gw->metrics, "txgateway_upload_seconds",
                                         "Whole upload, from request to 202", lat,
                                         TX_METRICS_LATENCY_BUCKETS_N, err);
    m->lat_s3 = tx_metrics_histogram(gw->metrics, "txgateway_s3_put_seconds",
                                     "S3 PUT of the raw "
                                     "object",
                                     lat, TX_METRICS_LATENCY_BUCKETS_N, err);
    m->lat_redis =
        tx_metrics_histogram(gw->metrics, "txgateway_redis_seconds", "Redis summary pipeline", lat,
                             TX_METRICS_LATENCY_BUCKETS_N, err);
    m->lat_confirm = tx_metrics_histogram(gw->metrics, "txgateway_amqp_confirm_seconds",
                                          "Publishing every event of an upload until confirmed",
                                          lat, TX_METRICS_LATENCY_BUCKETS_N, err);
    if (m->requests == NULL || m->dep_errors == NULL || m->upload_bytes == NULL ||
        m->records == NULL || m->uploads == NULL || m->inflight == NULL || m->lat_upload == NULL ||
        m->lat_s3 == NULL || m->lat_redis == NULL || m->lat_confirm == NULL)
        return err != NULL && err->code != 0 ? err->code : TX_ENOMEM;
    return 0;
}

void gw_metrics_request(struct gw *gw, const char *route, int status)
{
    char st[8];
    const char *v[2];

    snprintf(st, sizeof(st), "%d", status);
    v[0] = route;
    v[1] = st;
    tx_counter_inc(tx_metric_family_counter(gw->m.requests, v, 2));
}

void gw_metrics_dep_error(struct gw *gw, const char *dep)
{
    tx_counter_inc(tx_metric_family_counter(gw->m.dep_errors, &dep, 1));
}

void gw_metrics_latency(struct gw *gw, struct tx_histogram *h, int64_t ms)
{
    (void) gw;
    tx_histogram_observe(h, (double) ms / 1000.0);
}

void gw_metrics_records(struct gw *gw, size_t records, size_t bytes)
{
    tx_counter_inc(gw->m.uploads);
    tx_counter_add(gw->m.records, records);
    tx_counter_add(gw->m.upload_bytes, bytes);
}

void gw_metrics_inflight(struct gw *gw, long n)
{
    tx_gauge_set(gw->m.inflight, (double) n);
}
