#ifndef GW_H
#define GW_H

/* The gateway's shared context: configuration, clients and counters, created once in main. */

#include "common/tx_buf.h"
#include "common/tx_config.h"
#include "common/tx_metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_auth;
struct gw_pool;
struct s3_client;
struct cache_conn;
struct queue_publisher;
struct db_conn;
struct mg_connection;

struct gw_config {
    char *listen;
    long long threads;
    long long max_upload;         /* bytes */
    long long max_inflight;       /* uploads being processed at once */
    long long max_inflight_bytes; /* their bodies together */
    long long request_timeout_ms;
    long long body_timeout_ms;
    long long body_min_rate;
    long long body_grace_ms;
    long long confirm_timeout_ms;
    long long dep_timeout_ms;
    long long confirm_window;
    long long summary_ttl_s;
    long long idem_ttl_s;
    long long retry_after_s;
    char *auth_mode; /* "apikey" or "none" */
    char *api_keys;
    char *admin_api_keys;
    bool public_check_fraud; /* GET /check-fraud without an API key (the seed's contract) */
    char *s3_endpoint;
    char *s3_access_key;
    char *s3_secret_key;
    char *s3_bucket;
    char *s3_region;
    char *s3_signature;
    char *redis_url;
    char *amqp_url;
    char *pg_ro_dsn;
    char *log_level;
};

/* What one worker holds while it serves a request: its own connection to each dependency. */
struct gw_slot {
    struct cache_conn *cache;
    struct queue_publisher *pub;
    struct db_conn *db;
};

struct gw_metrics {
    struct tx_metric_family *requests;   /* counter {route,status} */
    struct tx_metric_family *dep_errors; /* counter {dependency} */
    struct tx_counter *uploads;
    struct tx_counter *upload_bytes;
    struct tx_counter *records;
    struct tx_gauge *inflight;
    struct tx_histogram *lat_upload; /* seconds */
    struct tx_histogram *lat_s3;
    struct tx_histogram *lat_redis;
    struct tx_histogram *lat_confirm;
};

struct gw {
    struct gw_config cfg;
    struct gw_auth *auth;
    struct gw_auth *admin_auth;
    struct s3_client *s3;
    struct gw_pool *upload_pool; /* one slot per upload in flight */
    struct gw_pool *read_pool;   /* slots for the status routes */
    struct tx_metrics *metrics;
    struct gw_metrics m;
    struct tx_readiness *readiness; /* caches gw_ready_check for a second */
    struct gw_slot ready_slot;      /* used only by gw_ready_check (never runs twice at once) */
    atomic_long inflight;
    atomic_llong inflight_bytes;
    atomic_int draining;
};

/* Which connections a request needs from its slot, and which one failed. */
enum {
    GW_NEED_CACHE = 1,
    GW_NEED_QUEUE = 2,
    GW_NEED_DB = 4
};
enum {
    GW_DEP_REDIS = 1,
    GW_DEP_RABBITMQ = 2,
    GW_DEP_POSTGRES = 3
};

/** Opens the slot's missing connections among deps. 0, or the GW_DEP_* that failed (err set). */
int gw_slot_connect(struct gw *gw, struct gw_slot *s, unsigned deps, struct tx_err *err);
/** Name of a GW_DEP_* code ("redis", ...). */
const char *gw_slot_failed_dep(int dep);
/** Closes a slot's connections (gw_pool_destroy callback). */
void gw_slot_close(void *slot);

int gw_metrics_init(struct gw *gw, struct tx_err *err);
void gw_metrics_request(struct gw *gw, const char *route, int status);
void gw_metrics_dep_error(struct gw *gw, const char *dep);
void gw_metrics_latency(struct gw *gw, struct tx_histogram *h, int64_t ms);
void gw_metrics_records(struct gw *gw, size_t records, size_t bytes);
void gw_metrics_inflight(struct gw *gw, long n);

/** Readiness of every dependency (tx_ready_fn over struct gw). */
int gw_ready_check(void *ctx, struct tx_buf *detail);

/** CivetWeb request handler for every path (gw_routes.c); cbdata is the struct gw. */
int gw_handle_request(struct mg_connection *c, void *cbdata);

/**
 * The upload route (gw_upload.c): answers the request and returns the status sent; upload_id
 * (37 bytes) receives the upload's id, or "" when none was assigned.
 */
int gw_upload_handle(struct gw *gw, struct mg_connection *c, const char *route, char *upload_id);

/** POST /api/v1/uploads/{id}/replay (admin key): re-publishes a stored upload's events. */
int gw_replay_handle(struct gw *gw, struct mg_connection *c, const char *id, char *upload_id);

#endif
