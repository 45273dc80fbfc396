/* txgateway: the HTTP entry point of txpipe (CivetWeb). */
#include "gateway/gw.h"

#include "common/tx_config.h"
#include "common/tx_health.h"
#include "common/tx_log.h"
#include "common/tx_time.h"
#include "gateway/gw_auth.h"
#include "gateway/gw_http.h"
#include "gateway/gw_pool.h"
#include "storage/s3.h"

#include <civetweb.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define C(key, type, def, min, max, field, flags, desc)                          \
    {                                                                            \
        key, type, def, min, max, offsetof(struct gw_config, field), flags, desc \
    }

static const struct tx_config_entry config_table[] = {
    C("TX_GATEWAY_LISTEN", TX_CONFIG_STRING, "127.0.0.1:8000", 1, 200, listen, 0,
      "address:port to listen on (CivetWeb listening_ports syntax)"),
    C("TX_GATEWAY_THREADS", TX_CONFIG_INT, "64", 2, 1024, threads, 0,
      "worker threads; one per open connection, keep above nginx's upstream keepalive"),
    C("TX_MAX_UPLOAD_BYTES", TX_CONFIG_SIZE, "10MiB", 1, 1LL << 30, max_upload, 0,
      "largest accepted upload body (same as nginx client_max_body_size)"),
    C("TX_MAX_INFLIGHT", TX_CONFIG_INT, "32", 1, 4096, max_inflight, 0,
      "uploads processed at once; more get 429 with Retry-After"),
    C("TX_MAX_INFLIGHT_BYTES", TX_CONFIG_SIZE, "256MiB", 1024, 1LL << 40, max_inflight_bytes, 0,
      "upload bytes held at once; more get 429 with Retry-After"),
    C("TX_REQUEST_TIMEOUT_MS", TX_CONFIG_MS, "30s", 100, 3600000, request_timeout_ms, 0,
      "socket read/write timeout for clients; a stalled body gets 408"),
    C("TX_BODY_TIMEOUT_MS", TX_CONFIG_MS, "60s", 100, 3600000, body_timeout_ms, 0,
      "deadline for a whole upload body, however slowly it trickles in; 408 after it"),
    C("TX_BODY_MIN_RATE", TX_CONFIG_SIZE, "1KiB", 1, 1LL << 30, body_min_rate, 0,
      "slowest body accepted, bytes per second on average once TX_BODY_GRACE_MS has passed; "
      "a slower body gets 408 (a trickling client holds a worker thread)"),
    C("TX_BODY_GRACE_MS", TX_CONFIG_MS, "5s", 100, 3600000, body_grace_ms, 0,
      "time a body may take before TX_BODY_MIN_RATE applies"),
    C("TX_CONFIRM_TIMEOUT_MS", TX_CONFIG_MS, "10s", 100, 600000, confirm_timeout_ms, 0,
      "deadline for the broker to confirm an upload's events"),
    C("TX_DEP_TIMEOUT_MS", TX_CONFIG_MS, "5s", 50, 600000, dep_timeout_ms, 0,
      "connect/request deadline for S3, Redis and PostgreSQL"),
    C("TX_CONFIRM_WINDOW", TX_CONFIG_INT, "256", 1, 65535, confirm_window, 0,
      "unconfirmed publishes allowed at once per connection"),
    C("TX_SUMMARY_TTL_S", TX_CONFIG_INT, "60", 1, 86400, summary_ttl_s, 0,
      "lifetime of tx:client:<_id> summaries in Redis"),
    C("TX_IDEMPOTENCY_TTL_S", TX_CONFIG_INT, "86400", 60, 604800, idem_ttl_s, 0,
      "how long an Idempotency-Key's first answer is kept"),
    C("TX_RETRY_AFTER_S", TX_CONFIG_INT, "2", 1, 3600, retry_after_s, 0,
      "Retry-After sent with 429 and 503"),
    C("TX_AUTH", TX_CONFIG_STRING, "apikey", 4, 6, auth_mode, 0,
      "apikey (default: TX_API_KEYS required) or none (no authentication)"),
    C("TX_API_KEYS", TX_CONFIG_STRING, "", 0, 0, api_keys, TX_CONFIG_SECRET,
      "name:sha256hex,... accepted API keys (SHA-256 of each key)"),
    C("TX_ADMIN_API_KEYS", TX_CONFIG_STRING, "", 0, 0, admin_api_keys, TX_CONFIG_SECRET,
      "name:sha256hex,... keys for admin routes (replay)"),
    C("TX_PUBLIC_CHECK_FRAUD", TX_CONFIG_BOOL, "true", 0, 0, public_check_fraud, 0,
      "GET /check-fraud answers without an API key (the seed's public route; false: key needed)"),
    C("TX_S3_ENDPOINT", TX_CONFIG_STRING, "http://127.0.0.1:9000", 1, 300, s3_endpoint, 0,
      "S3 endpoint URL"),
    C("TX_S3_ACCESS_KEY", TX_CONFIG_STRING, NULL, 1, 200, s3_access_key, TX_CONFIG_SECRET,
      "S3 access key"),
    C("TX_S3_SECRET_KEY", TX_CONFIG_STRING, NULL, 1, 200, s3_secret_key, TX_CONFIG_SECRET,
      "S3 secret key"),
    C("TX_S3_BUCKET", TX_CONFIG_STRING, "txpipe-raw", 3, 63, s3_bucket, 0,
      "bucket for the raw uploads"),
    C("TX_S3_REGION", TX_CONFIG_STRING, "us-east-1", 1, 64, s3_region, 0, "S3 region"),
    C("TX_S3_SIGNATURE", TX_CONFIG_STRING, "v2", 2, 2, s3_signature, 0,
      "v2 (libs3) or v4 (libcurl AWS SigV4)"),
    C("TX_REDIS_URL", TX_CONFIG_STRING, "redis://127.0.0.1:6379/0", 1, 300, redis_url,
      TX_CONFIG_SECRET, "Redis URL"),
    C("TX_AMQP_URL", TX_CONFIG_STRING, NULL, 1, 300, amqp_url, TX_CONFIG_SECRET,
      "RabbitMQ URL amqp://user:pass@host:port/vhost"),
    C("TX_PG_RO_DSN", TX_CONFIG_STRING, NULL, 1, 500, pg_ro_dsn, TX_CONFIG_SECRET,
      "PostgreSQL URI of the read-only role, for the status routes"),
    C("TX_LOG_LEVEL", TX_CONFIG_STRING, "info", 4, 5, log_level, 0, "debug, info, warn or error"),
};
#define NCONFIG (sizeof(config_table) / sizeof(config_table[0]))

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void) sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: txgateway [--help | healthcheck]\n\n"
                 "The txpipe HTTP gateway. Configuration comes from the environment (each secret\n"
                 "also from VAR_FILE):\n\n");
    tx_config_print_help(out, config_table, NCONFIG);
}

/*
 * CivetWeb's own errors (malformed requests, oversized headers) as problem+json too. Written by
 * hand with a fixed HTTP/1.1 status line: the request line may be garbage, and CivetWeb would
 * echo its version field into the answer.
 */
static int on_http_error(struct mg_connection *c, int status, const char *msg)
{
    char body[512];
    int n;

    (void) msg;
    n = snprintf(body, sizeof(body),
                 "{\"type\":\"https://txpipe.dev/problems/http-error\",\"title\":\"%s\","
                 "\"status\":%d,\"detail\":\"the request could not be read as HTTP/1.1 (%s)\"}",
                 gw_status_text(status), status, gw_status_text(status));
    mg_printf(c,
              "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nContent-Length: %d\r\n"
              "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
              status, gw_status_text(status), n, body);
    mg_disable_connection_keep_alive(c);
    return 0;
}

static int on_log_message(const struct mg_connection *c, const char *msg)
{
    (void) c;
    tx_log_warn(TX_NOKV, "civetweb: %s", msg);
    return 1;
}

static int start(struct gw *gw, struct tx_err *err)
{
    struct s3_config sc = { 0 };

    if (strcmp(gw->cfg.auth_mode, "apikey") != 0 && strcmp(gw->cfg.auth_mode, "none") != 0)
        return tx_err_set(err, TX_EINVAL, "TX_AUTH must be apikey or none, not \"%s\"",
                          gw->cfg.auth_mode);
    if (gw->cfg.max_inflight_bytes < gw->cfg.max_upload)
        return tx_err_set(
            err, TX_EINVAL,
            "TX_MAX_INFLIGHT_BYTES (%lld) must be at least TX_MAX_UPLOAD_BYTES (%lld)",
            gw->cfg.max_inflight_bytes, gw->cfg.max_upload);
    gw->auth = gw_auth_create(gw->cfg.api_keys, err);
    if (gw->auth == NULL)
        return TX_EINVAL;
    if (strcmp(gw->cfg.auth_mode, "apikey") == 0 && gw_auth_count(gw->auth) == 0)
        return tx_err_set(err, TX_EINVAL,
                          "TX_API_KEYS is empty: configure at least one key, or set TX_AUTH=none "
                          "to run without authentication");
    gw->admin_auth = gw_auth_create(gw->cfg.admin_api_keys, err);
    if (gw->admin_auth == NULL)
        return TX_EINVAL;
    if (strcmp(gw->cfg.s3_signature, "v2") != 0 && strcmp(gw->cfg.s3_signature, "v4") != 0)
        return tx_err_set(err, TX_EINVAL, "TX_S3_SIGNATURE must be v2 or v4");
    sc.endpoint = gw->cfg.s3_endpoint;
    sc.access_key = gw->cfg.s3_access_key;
    sc.secret_key = gw->cfg.s3_secret_key;
    sc.bucket = gw->cfg.s3_bucket;
    sc.region = gw->cfg.s3_region;
    sc.signature = gw->cfg.s3_signature[1] == '4' ? 4 : 2;
    sc.timeout_ms = (long) gw->cfg.dep_timeout_ms;
    gw->s3 = s3_client_create(&sc, err);
    if (gw->s3 == NULL)
        return err->code != 0 ? err->code : TX_EINVAL;
    gw->upload_pool = gw_pool_create((size_t) gw->cfg.max_inflight, sizeof(struct gw_slot));
    gw->read_pool = gw_pool_create(8, sizeof(struct gw_slot));
    if (gw->upload_pool == NULL || gw->read_pool == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    gw->readiness = tx_readiness_create(gw_ready_check, gw, 1000);
    if (gw->readiness == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    return gw_metrics_init(gw, err);
}

static void stop(struct gw *gw)
{
    gw_pool_destroy(gw->upload_pool, gw_slot_close);
    gw_pool_destroy(gw->read_pool, gw_slot_close);
    tx_readiness_destroy(gw->readiness);
    gw_slot_close(&gw->ready_slot);
    s3_client_destroy(gw->s3);
    gw_auth_destroy(gw->auth);
    gw_auth_destroy(gw->admin_auth);
    tx_metrics_destroy(gw->metrics);
    tx_config_cleanup(config_table, NCONFIG, &gw->cfg);
}

static int healthcheck(void)
{
    const char *listen = getenv("TX_GATEWAY_LISTEN");
    char hostport[256];
    struct tx_err err = { 0 };

    snprintf(hostport, sizeof(hostport), "%s", listen != NULL ? listen : "127.0.0.1:8000");
    if (strchr(hostport, ':') == NULL) {
        /* A bare port: CivetWeb listens on every interface; probe loopback. */
        snprintf(hostport, sizeof(hostport), "127.0.0.1:%s", listen);
    }
    if (tx_health_probe(hostport, "/healthz", 2000, &err) != 0) {
        fprintf(stderr, "txgateway healthcheck: %s\n", err.msg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct gw *gw = NULL;
    struct mg_context *mg = NULL;
    struct mg_callbacks cb;
    struct tx_err err = { 0 };
    struct sigaction sa;
    enum tx_log_level lvl = TX_LOG_INFO;
    char threads[16];
    char timeout[24];
    int rc = 1;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "healthcheck") == 0)
        return healthcheck();
    if (argc > 1) {
        usage(stderr);
        return 2;
    }
    gw = calloc(1, sizeof(*gw));
    if (gw == NULL)
        return 1;
    if (tx_config_load(config_table, NCONFIG, &gw->cfg, NULL, NULL, &err) != 0) {
        fprintf(stderr, "txgateway: configuration error: %s (see txgateway --help)\n", err.msg);
        free(gw);
        return 2;
    }
    if (tx_log_level_parse(gw->cfg.log_level, &lvl) != 0) {
        fprintf(stderr, "txgateway: configuration error: TX_LOG_LEVEL must be debug, info, warn "
                        "or error\n");
        goto out;
    }
    tx_log_init("txgateway", lvl);
    if (start(gw, &err) != 0) {
        tx_log_error(TX_NOKV, "cannot start: %s", err.msg);
        fprintf(stderr, "txgateway: %s\n", err.msg);
        goto out;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    snprintf(threads, sizeof(threads), "%lld", gw->cfg.threads);
    snprintf(timeout, sizeof(timeout), "%lld", gw->cfg.request_timeout_ms);
    {
        const char *options[] = {
            "listening_ports", gw->cfg.listen, "num_threads", threads, "request_timeout_ms",
            timeout, "enable_keep_alive", "yes", "keep_alive_timeout_ms", "5000",
            "linger_timeout_ms", "1000", "decode_url",
            "no", /* paths are matched as sent: a decoded %00 would cut them */
            /* CivetWeb sends header lines one by one: without this, Nagle
             * holds each kept-alive answer ~40 ms for the delayed ACK. */
            "tcp_nodelay", "1", NULL
        };

        memset(&cb, 0, sizeof(cb));
        cb.http_error = on_http_error;
        cb.log_message = on_log_message;
        mg_init_library(0);
        mg = mg_start(&cb, gw, options);
    }
    if (mg == NULL) {
        tx_log_error(TX_NOKV, "cannot listen on %s (address in use or invalid)", gw->cfg.listen);
        fprintf(stderr, "txgateway: cannot listen on %s (address in use or invalid)\n",
                gw->cfg.listen);
        goto out;
    }
    mg_set_request_handler(mg, "/", gw_handle_request, gw);
    tx_log_info(TX_KV("listen", gw->cfg.listen), "txgateway ready");

    while (!stop_requested) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };

        nanosleep(&ts, NULL);
    }
    /* Graceful stop: refuse new uploads, let the ones in flight finish, then close. */
    atomic_store(&gw->draining, 1);
    tx_log_info(TX_NOKV, "stopping: waiting for %ld upload(s) in flight",
                atomic_load(&gw->inflight));
    {
        int64_t deadline =
            tx_time_mono_ms() + gw->cfg.confirm_timeout_ms + gw->cfg.dep_timeout_ms * 2;

        while (atomic_load(&gw->inflight) > 0 && tx_time_mono_ms() < deadline) {
            struct timespec ts = { 0, 20 * 1000 * 1000 };

            nanosleep(&ts, NULL);
        }
    }
    mg_stop(mg);
    mg_exit_library();
    tx_log_info(TX_NOKV, "stopped");
    rc = 0;
out:
    stop(gw);
    free(gw);
    return rc;
}
