/* Request routing and every route but the upload itself. */
#include "gateway/gw.h"

#include "common/tx_buf.h"
#include "common/tx_health.h"
#include "common/tx_id.h"
#include "common/tx_log.h"
#include "common/tx_time.h"
#include "gateway/gw_auth.h"
#include "gateway/gw_http.h"
#include "gateway/gw_pool.h"
#include "storage/cache.h"
#include "storage/db.h"
#include "storage/queue.h"
#include "storage/s3.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ID_MAX 64

static int method_not_allowed(struct mg_connection *c, const char *allow)
{
    char hdr[64];
    const char *hdrs[] = { hdr, NULL };
    char detail[96];

    snprintf(hdr, sizeof(hdr), "Allow: %s", allow);
    snprintf(detail, sizeof(detail), "this resource allows %s", allow);
    return gw_send_problem(c, 405, "method-not-allowed", "Method not allowed", detail, NULL, hdrs);
}

static int not_found(struct mg_connection *c, const char *detail)
{
    return gw_send_problem(c, 404, "not-found", "Not found", detail, NULL, NULL);
}

static int dep_unavailable(struct gw *gw, struct mg_connection *c, const char *dep,
                           const struct tx_err *err)
{
    char ra[48];
    char detail[300];
    char extra[64];
    const char *hdrs[] = { ra, NULL };

    snprintf(ra, sizeof(ra), "Retry-After: %lld", gw->cfg.retry_after_s);
    snprintf(detail, sizeof(detail), "%s is unavailable: %s", dep,
             err != NULL && err->msg[0] != '\0' ? err->msg : "no connection");
    snprintf(extra, sizeof(extra), ",\"dependency\":\"%s\"", dep);
    gw_metrics_dep_error(gw, dep);
    return gw_send_problem(c, 503, "dependency-unavailable", "Dependency unavailable", detail,
                           extra, hdrs);
}

/*
 * The read routes answer personal data (names, e-mail and postal addresses, amounts, verdicts):
 * they need an API key from TX_API_KEYS (any name), checked like an upload's (SHA-256, compared in
 * constant time with every configured hash), unless TX_AUTH=none. 0 when authorised; otherwise
 * answers 401 and returns its status. A missing and a wrong key get the very same answer, so it
 * tells nothing about what was wrong; the presented key is never logged.
 */
static int require_key(struct gw *gw, struct mg_connection *c)
{
    const char *key = NULL;
    size_t len = 0;

    if (strcmp(gw->cfg.auth_mode, "none") == 0)
        return 0;
    if (gw_auth_extract(mg_get_header(c, "Authorization"), mg_get_header(c, "X-API-Key"), &key,
                        &len) == 0 &&
        gw_auth_check(gw->auth, key, len) != NULL)
        return 0;
    return gw_send_problem(c, 401, "unauthorized", "Unauthorized",
                           "this route needs a valid API key: send \"Authorization: Bearer <key>\" "
                           "or \"X-API-Key: <key>\"",
                           NULL, (gw_headers) (const char *[]){ "WWW-Authenticate: Bearer", NULL });
}

/* Client ids follow the record's _id rule; anything else cannot exist. */
static int client_id_ok(const char *s)
{
    size_t n = strlen(s);
    size_t i;

    if (n == 0 || n > ID_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) s[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              strchr("_.:@-", ch) != NULL))
            return 0;
    }
    return 1;
}

static int bad_id(struct mg_connection *c, const char *what)
{
    char detail[160];

    snprintf(detail, sizeof(detail), "%s is not a valid id", what);
    return gw_send_problem(c, 400, "invalid-id", "Invalid id", detail, NULL, NULL);
}

/* Takes a read slot with the connections in deps; answers 503/429 itself when it cannot. */
static struct gw_slot *read_slot(struct gw *gw, struct mg_connection *c, unsigned deps, int *st)
{
    struct gw_slot *s = gw_pool_acquire(gw->read_pool, gw->cfg.dep_timeout_ms);
    struct tx_err err = { 0 };
    int dep;

    if (s == NULL) {
        *st = gw_send_problem(c, 429, "too-many-requests", "Too many requests",
                              "all status connections are busy; retry shortly", NULL,
                              (gw_headers) (const char *[]){ "Retry-After: 1", NULL });
        return NULL;
    }
    dep = gw_slot_connect(gw, s, deps, &err);
    if (dep != 0) {
        gw_pool_release(gw->read_pool, s);
        *st = dep_unavailable(gw, c, gw_slot_failed_dep(dep), &err);
        return NULL;
    }
    return s;
}

/* GET /api/v1/clients/{id}/summary */
static int client_summary(struct gw *gw, struct mg_connection *c, const char *id)
{
    struct gw_slot *s;
    struct tx_err err = { 0 };
    struct tx_buf b;
    char key[ID_MAX + 16];
    char *val = NULL;
    size_t len = 0;
    long ttl = -1;
    int st = 0;
    int rc;

    s = read_slot(gw, c, GW_NEED_CACHE, &st);
    if (s == NULL)
        return st;
    snprintf(key, sizeof(key), "tx:client:%s", id);
    rc = cache_get(s->cache, key, &val, &len, &ttl, &err);
    gw_pool_release(gw->read_pool, s);
    if (rc == TX_ENOTFOUND)
        return not_found(c, "no summary for this client: none was uploaded in the last 60 s");
    if (rc != 0)
        return dep_unavailable(gw, c, "redis", &err);
    /* The cached value is a JSON object: add the remaining TTL to it. */
    tx_buf_init(&b, len + 64);
    if (len > 1 && val[len - 1] == '}') {
        tx_buf_append(&b, val, len - 1);
        tx_buf_printf(&b, ",\"ttl_seconds\":%ld}", ttl);
    }
    else {
        tx_buf_append(&b, val, len);
    }
    st = gw_send_json(c, 200, &b, NULL);
    tx_buf_cleanup(&b);
    free(val);
    return st;
}

/* The fraud flag set by txfraud (tx:flag:<_id>, 300 s). 1 flagged, 0 not, <0 error. */
static int fraud_flag(struct gw_slot *s, const char *id, char **reasons, size_t *len,
                      struct tx_err *err)
{
    char key[ID_MAX + 16];
    int rc;

    snprintf(key, sizeof(key), "tx:flag:%s", id);
    rc = cache_get(s->cache, key, reasons, len, NULL, err);
    if (rc == TX_ENOTFOUND)
        return 0;
    return rc == 0 ? 1 : rc;
}

/* GET /check-fraud?transactionId=<_id> (the seed's route) */
static int check_fraud(struct gw *gw, struct mg_connection *c)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    struct gw_slot *s;
    struct tx_err err = { 0 };
    char id[ID_MAX + 2];
    char *val = NULL;
    size_t len = 0;
    char body[32];
    int st = 0;
    int rc;

    if (ri->query_string == NULL || strstr(ri->query_string, "%00") != NULL ||
        mg_get_var(ri->query_string, strlen(ri->query_string), "transactionId", id, sizeof(id)) <
            0 ||
        !client_id_ok(id))
        return gw_send_problem(c, 400, "invalid-id", "Invalid transactionId",
                               "pass ?transactionId=<client _id> (1-64 of A-Z a-z 0-9 _ . : @ -)",
                               NULL, NULL);
    s = read_slot(gw, c, GW_NEED_CACHE, &st);
    if (s == NULL)
        return st;
    rc = fraud_flag(s, id, &val, &len, &err);
    gw_pool_release(gw->read_pool, s);
    free(val);
    if (rc < 0)
        return dep_unavailable(gw, c, "redis", &err);
    snprintf(body, sizeof(body), "{\"isFraud\":%s}", rc == 1 ? "true" : "false");
    return gw_send(c, 200, "application/json", body, strlen(body), NULL);
}

/* GET /api/v1/clients/{id}/fraud: the live flag (Redis) and the flagged history (PostgreSQL). */
static int client_fraud(struct gw *gw, struct mg_connection *c, const char *id)
{
    static const char sql[] =
        "SELECT coalesce(json_agg(json_build_object('event_id', t.event_id, 'upload_id', "
        "t.upload_id, 'index', t.idx, 'scored_at', t.scored_at, 'score', t.score, 'reasons', "
        "(SELECT coalesce(json_agg(json_build_object('code', r.code, 'detail', r.detail) ORDER BY "
        "r.code), '[]'::json) FROM fraud_reasons r WHERE r.event_id = t.event_id)) ORDER BY "
        "t.scored_at DESC), '[]'::json)::text FROM (SELECT * FROM transactions WHERE client_id = "
        "$1 AND flagged ORDER BY scored_at DESC LIMIT 50) t";
    struct gw_slot *s;
    struct tx_err err = { 0 };
    struct tx_buf b;
    char *flag = NULL;
    size_t flen = 0;
    char *hist = NULL;
    size_t hlen = 0;
    const char *params[] = { id };
    int st = 0;
    int rc;

    s = read_slot(gw, c, GW_NEED_CACHE | GW_NEED_DB, &st);
    if (s == NULL)
        return st;
    rc = fraud_flag(s, id, &flag, &flen, &err);
    if (rc < 0) {
        gw_pool_release(gw->read_pool, s);
        return dep_unavailable(gw, c, "redis", &err);
    }
    st = db_query_text(s->db, sql, params, 1, &hist, &hlen, &err);
    gw_pool_release(gw->read_pool, s);
    if (st != 0 && st != TX_ENOTFOUND) {
        free(flag);
        return dep_unavailable(gw, c, "postgresql", &err);
    }
    tx_buf_init(&b, 1u << 22);
    tx_buf_puts(&b, "{\"client_id\":");
    tx_buf_json_str(&b, id, strlen(id));
    tx_buf_printf(&b, ",\"flagged\":%s,\"current\":", rc == 1 ? "true" : "false");
    if (rc == 1 && flen > 0 && (flag[0] == '{' || flag[0] == '['))
        tx_buf_append(&b, flag, flen);
    else
        tx_buf_puts(&b, "null");
    tx_buf_puts(&b, ",\"history\":");
    if (hist != NULL)
        tx_buf_append(&b, hist, hlen);
    else
        tx_buf_puts(&b, "[]");
    tx_buf_puts(&b, "}");
    st = gw_send_json(c, 200, &b, NULL);
    tx_buf_cleanup(&b);
    free(flag);
    free(hist);
    return st;
}

/* GET /api/v1/uploads/{id}: processing counts from PostgreSQL (read-only role). */
static int upload_status(struct gw *gw, struct mg_connection *c, const char *id)
{
    static const char sql[] =
        "WITH t AS (SELECT * FROM transactions WHERE event_id >= $1 || ':' AND event_id < $1 || "
        "';' AND upload_id = $1), "
        "e AS (SELECT e.* FROM emails e JOIN t ON e.event_id = t.event_id) "
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM t) AND NOT EXISTS (SELECT 1 FROM uploads "
        "WHERE upload_id = $1) THEN NULL ELSE json_build_object("
        "'upload_id', $1::text, "
        "'records', (SELECT records FROM uploads WHERE upload_id = $1), "
        "'object', (SELECT object_key FROM uploads WHERE upload_id = $1), "
        "'received_at', (SELECT received_at FROM uploads WHERE upload_id = $1), "
        "'received', (SELECT count(*) FROM t WHERE t.received_at IS NOT NULL AND t.cliente IS NOT "
        "NULL), "
        "'persisted', (SELECT count(*) FROM t), "
        "'scored', (SELECT count(*) FROM t WHERE scored_at IS NOT NULL), "
        "'flagged', (SELECT count(*) FROM t WHERE flagged), "
        "'notified', (SELECT count(DISTINCT event_id) FROM e WHERE status = 'sent'), "
        "'emails_sent', (SELECT count(*) FROM e WHERE status = 'sent'), "
        "'emails_failed', (SELECT count(*) FROM e WHERE status = 'failed'), "
        "'flagged_records', (SELECT coalesce(json_agg(json_build_object('index', t.idx, "
        "'event_id', t.event_id, 'client_id', t.client_id, 'score', t.score, 'reasons', "
        "(SELECT coalesce(json_agg(json_build_object('code', r.code, 'detail', r.detail) ORDER BY "
        "r.code), '[]'::json) FROM fraud_reasons r WHERE r.event_id = t.event_id)) ORDER BY "
        "t.idx), '[]'::json) FROM t WHERE flagged))::text END";
    struct gw_slot *s;
    struct tx_err err = { 0 };
    struct tx_buf b;
    char *row = NULL;
    size_t len = 0;
    const char *params[] = { id };
    int st = 0;
    int rc;

    s = read_slot(gw, c, GW_NEED_DB, &st);
    if (s == NULL)
        return st;
    rc = db_query_text(s->db, sql, params, 1, &row, &len, &err);
    gw_pool_release(gw->read_pool, s);
    if (rc == TX_ENOTFOUND) {
        /* Nothing persisted yet: the stored object proves the upload was accepted. */
        struct s3_meta_out head;
        char ts[TX_TIME_FORMAT_LEN];
        char key[96];

        tx_time_format_ms(tx_uuid7_ms(id), ts, sizeof(ts));
        snprintf(key, sizeof(key), "raw/%.4s/%.2s/%.2s/%s.json", ts, ts + 5, ts + 8, id);
        rc = s3_object_head(gw->s3, key, &head, &err);
        if (rc == TX_ENOTFOUND)
            return not_found(c, "no upload with this id");
        if (rc != 0)
            return dep_unavailable(gw, c, "s3", &err);
        tx_buf_init(&b, 4096);
        tx_buf_printf(
            &b,
            "{\"upload_id\":\"%s\",\"records\":%ld,\"object\":\"%s\",\"received_at\":\"%s"
            "\",\"received\":%ld,\"persisted\":0,\"scored\":0,\"flagged\":0,"
            "\"notified\":0,\"emails_sent\":0,\"emails_failed\":0,\"flagged_records\":[]}",
            id, head.records, key, ts, head.records);
        st = gw_send_json(c, 200, &b, NULL);
        tx_buf_cleanup(&b);
        return st;
    }
    if (rc != 0)
        return dep_unavailable(gw, c, "postgresql", &err);
    st = gw_send(c, 200, "application/json", row, len, NULL);
    free(row);
    return st;
}

/* One readiness line: ,"name":"up" or ,"name":"<why it is down>". Returns 1 when down. */
static int ready_line(struct tx_buf *b, const char *name, int rc, const struct tx_err *err)
{
    tx_buf_printf(b, "%s\"%s\":", b->data[b->len - 1] == '{' ? "" : ",", name);
    if (rc == 0) {
        tx_buf_puts(b, "\"up\"");
        return 0;
    }
    tx_buf_json_str(b, err->msg[0] != '\0' ? err->msg : "down",
                    strlen(err->msg[0] != '\0' ? err->msg : "down"));
    return 1;
}

int gw_ready_check(void *ctx, struct tx_buf *detail)
{
    struct gw *gw = ctx;
    struct gw_slot *s = &gw->ready_slot;
    struct tx_err err = { 0 };
    int down = 0;
    int rc;

    tx_buf_puts(detail, "{");
    rc = s3_bucket_check(gw->s3, &err);
    down += ready_line(detail, "s3", rc, &err);
    tx_err_clear(&err);
    rc = gw_slot_connect(gw, s, GW_NEED_CACHE, &err) != 0 ? -1 : cache_ping(s->cache, &err);
    down += ready_line(detail, "redis", rc, &err);
    tx_err_clear(&err);
    rc = gw_slot_connect(gw, s, GW_NEED_QUEUE, &err) != 0 ? -1 : queue_publisher_ping(s->pub, &err);
    down += ready_line(detail, "rabbitmq", rc, &err);
    tx_err_clear(&err);
    rc = gw_slot_connect(gw, s, GW_NEED_DB, &err) != 0 ? -1 : db_ping(s->db, &err);
    down += ready_line(detail, "postgresql", rc, &err);
    tx_buf_puts(detail, "}");
    return down == 0 ? 0 : TX_EUNAVAIL;
}

/* GET /readyz: every dependency (checked at most once a second), 503 naming those down. */
static int readyz(struct gw *gw, struct mg_connection *c)
{
    struct tx_buf b;
    int rc;
    int st;

    tx_buf_init(&b, TX_READINESS_DETAIL_MAX * 2);
    rc = tx_readiness_check(gw->readiness, &b);
    st = gw_send_json(c,
                      rc == 0             ? 200
                      : rc == TX_EUNAVAIL ? 503
                                          : 500,
                      &b, rc == 0 ? NULL : (gw_headers) (const char *[]){ "Retry-After: 5", NULL });
    tx_buf_cleanup(&b);
    return st;
}

static int metrics(struct gw *gw, struct mg_connection *c)
{
    struct tx_buf b;
    int st;

    tx_buf_init(&b, 1u << 22);
    tx_metrics_render(gw->metrics, &b);
    st = gw_send(c, 200, TX_METRICS_CONTENT_TYPE, b.data, b.len, NULL);
    tx_buf_cleanup(&b);
    return st;
}

/* Splits "/api/v1/clients/<id>/<what>" into id and what; 0 on a match. */
static int split_client(const char *path, char *id, size_t idlen, const char **what)
{
    const char *p = path + strlen("/api/v1/clients/");
    const char *slash = strchr(p, '/');
    size_t n;

    if (slash == NULL)
        return -1;
    n = (size_t) (slash - p);
    if (n == 0 || n >= idlen)
        return -1;
    memcpy(id, p, n);
    id[n] = '\0';
    *what = slash + 1;
    return 0;
}

static void access_log(struct mg_connection *c, const char *route, int status, int64_t t0,
                       const char *upload_id)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    char st[8];
    char ms[24];

    snprintf(st, sizeof(st), "%d", status);
    snprintf(ms, sizeof(ms), "%lld", (long long) (tx_time_mono_ms() - t0));
    tx_log_info(TX_KV("method", ri->request_method, "path", ri->local_uri, "route", route, "status",
                      st, "ms", ms, "remote", ri->remote_addr, "upload_id", upload_id),
                "request");
}

/*
 * Requests CivetWeb would pass on ambiguously: a decoded NUL (%00) cuts the path or a query value
 * short, more than 63 headers are silently dropped, and a Content-Length that is not plain digits
 * (or repeated with another value) is read leniently. Answers them itself; 0 when the request is
 * fine.
 */
static int reject_ambiguous(struct mg_connection *c, const struct mg_request_info *ri)
{
    const char *cl = NULL;
    int i;

    if (ri->local_uri != NULL && strstr(ri->local_uri, "%00") != NULL)
        return gw_send_problem(c, 400, "http-error", "Bad Request",
                               "an encoded NUL (%00) is not allowed in the path", NULL, NULL);
    if (ri->num_headers >= 64)
        return gw_send_problem(c, 431, "http-error", "Request Header Fields Too Large",
                               "at most 63 header fields are accepted", NULL, NULL);
    for (i = 0; i < ri->num_headers; i++) {
        const char *v = ri->http_headers[i].value;

        if (strcasecmp(ri->http_headers[i].name, "Content-Length") != 0)
            continue;
        if (v == NULL || v[0] == '\0' || strspn(v, "0123456789") != strlen(v) ||
            (cl != NULL && strcmp(cl, v) != 0))
            return gw_send_problem(c, 400, "http-error", "Bad Request",
                                   "Content-Length must be one decimal number", NULL, NULL);
        cl = v;
    }
    return 0;
}

int gw_handle_request(struct mg_connection *c, void *cbdata)
{
    struct gw *gw = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *path = ri->local_uri != NULL ? ri->local_uri : "/";
    const char *m = ri->request_method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    int64_t t0 = tx_time_mono_ms();
    const char *route = "other";
    char upload_id[TX_UUID_STR_LEN + 1] = "";
    int st;

    st = reject_ambiguous(c, ri);
    if (st != 0) {
        mg_disable_connection_keep_alive(c);
    }
    else if (strcmp(path, "/api/v1/uploads") == 0 || strcmp(path, "/upload-json") == 0) {
        route = path[1] == 'a' ? "/api/v1/uploads" : "/upload-json";
        st = strcmp(m, "POST") == 0 ? gw_upload_handle(gw, c, route, upload_id)
                                    : method_not_allowed(c, "POST");
    }
    else if (strncmp(path, "/api/v1/uploads/", 16) == 0 && strlen(path) == 16 + 36 + 7 &&
             strcmp(path + 16 + 36, "/replay") == 0) {
        char id[TX_UUID_STR_LEN + 1];

        route = "/api/v1/uploads/{id}/replay";
        memcpy(id, path + 16, TX_UUID_STR_LEN);
        id[TX_UUID_STR_LEN] = '\0';
        if (strcmp(m, "POST") != 0)
            st = method_not_allowed(c, "POST");
        else if (!tx_uuid7_valid(id))
            st = bad_id(c, "the upload id (a UUIDv7)");
        else
            st = gw_replay_handle(gw, c, id, upload_id);
    }
    else if (strncmp(path, "/api/v1/uploads/", 16) == 0) {
        route = "/api/v1/uploads/{id}";
        st = get ? require_key(gw, c) : method_not_allowed(c, "GET");
        if (st == 0 && !tx_uuid7_valid(path + 16))
            st = bad_id(c, "the upload id (a UUIDv7)");
        else if (st == 0)
            st = upload_status(gw, c, path + 16);
    }
    else if (strncmp(path, "/api/v1/clients/", 16) == 0) {
        char id[ID_MAX + 2];
        const char *what = "";

        route = "/api/v1/clients/{id}";
        if (split_client(path, id, sizeof(id), &what) != 0 ||
            (strcmp(what, "summary") != 0 && strcmp(what, "fraud") != 0))
            st = not_found(c, "use /api/v1/clients/{id}/summary or /api/v1/clients/{id}/fraud");
        else
            st = get ? require_key(gw, c) : method_not_allowed(c, "GET");
        if (st == 0 && !client_id_ok(id))
            st = bad_id(c, "the client id");
        else if (st == 0 && what[0] == 's')
            st = client_summary(gw, c, id);
        else if (st == 0)
            st = client_fraud(gw, c, id);
        route = what[0] == 's' ? "/api/v1/clients/{id}/summary" : "/api/v1/clients/{id}/fraud";
    }
    else if (strcmp(path, "/check-fraud") == 0) {
        route = "/check-fraud";
        st = get ? (gw->cfg.public_check_fraud ? 0 : require_key(gw, c))
                 : method_not_allowed(c, "GET");
        if (st == 0)
            st = check_fraud(gw, c);
    }
    else if (strcmp(path, "/healthz") == 0) {
        route = "/healthz";
        st = get ? gw_send(c, 200, "application/json", "{\"status\":\"ok\"}", 15, NULL)
                 : method_not_allowed(c, "GET");
    }
    else if (strcmp(path, "/readyz") == 0) {
        route = "/readyz";
        st = get ? readyz(gw, c) : method_not_allowed(c, "GET");
    }
    else if (strcmp(path, "/metrics") == 0) {
        route = "/metrics";
        st = get ? metrics(gw, c) : method_not_allowed(c, "GET");
    }
    else {
        st = not_found(c, "no such route; see schemas/openapi.yaml");
    }
    gw_metrics_request(gw, route, st);
    if (strcmp(route, "/metrics") != 0 && strcmp(route, "/healthz") != 0)
        access_log(c, route, st, t0, upload_id);
    return st;
}
