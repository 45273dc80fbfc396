/*
 * POST /api/v1/uploads (and the seed's POST /upload-json): the durable upload path.
 *
 * Order of work, so that a 202 is only ever sent for data that is durable:
 *   1. auth, content type, size, admission (in-flight uploads and bytes) - cheap refusals first;
 *   2. read the body (hard limit, stall = 408) and, for multipart, take the "file" part;
 *   3. parse and validate every record (400 / 422: nothing is stored);
 *   4. Idempotency-Key: a finished key replays its first answer; a pending one is resumed with
 *      the same upload_id (its events are published again with the same event ids);
 *   5. PUT the exact bytes to S3; 6. one Redis pipeline of client summaries;
 *   7. publish one event per record with confirms; 8. answer 202.
 * Any dependency failure answers 503 naming the dependency, with Retry-After.
 */
#include "gateway/gw.h"

#include "common/tx_buf.h"
#include "common/tx_event.h"
#include "common/tx_id.h"
#include "common/tx_log.h"
#include "common/tx_record.h"
#include "common/tx_time.h"
#include "gateway/gw_auth.h"
#include "gateway/gw_http.h"
#include "gateway/gw_multipart.h"
#include "gateway/gw_pool.h"
#include "storage/cache.h"
#include "storage/queue.h"
#include "storage/s3.h"

#include <civetweb.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IDEM_KEY_MAX 200

/* Everything one upload owns; released in one place. */
struct upload {
    struct gw *gw;
    struct mg_connection *c;
    const char *route;
    int64_t t0;
    long long reserved_bytes;
    bool admitted;
    struct gw_slot *slot;
    struct tx_buf body;
    const char *data; /* the bytes to store: the body, or the multipart "file" part */
    size_t len;
    enum tx_format format;
    char idem_key[IDEM_KEY_MAX + 1];
    char key_name[GW_AUTH_NAME_MAX + 1]; /* the API key's name: scopes Idempotency-Keys */
    bool has_idem;
    bool idem_locked;
    char sha256[TX_SHA256_HEX_LEN + 1];
    char upload_id[TX_UUID_STR_LEN + 1];
    char object[96];
    int64_t received_ms;
    struct tx_batch *batch;
    struct tx_buf events;   /* every event body, back to back */
    struct queue_msg *msgs; /* point into events */
    char (*event_ids)[TX_EVENT_ID_MAX + 1];
    struct tx_buf answer; /* the 202 body */
    char *stored;         /* replay: the object read back from S3 */
};

static void retry_after_header(const struct gw *gw, char *buf, size_t len)
{
    snprintf(buf, len, "Retry-After: %lld", gw->cfg.retry_after_s);
}

static int unavailable(struct upload *u, const char *dep, const struct tx_err *err)
{
    char ra[48];
    char detail[400];
    char extra[96];
    const char *hdrs[] = { ra, NULL };

    retry_after_header(u->gw, ra, sizeof(ra));
    snprintf(detail, sizeof(detail),
             "%s is unavailable: %s. Nothing was acknowledged; retry the "
             "same request (with the same Idempotency-Key) later.",
             dep, err != NULL ? err->msg : "unknown error");
    snprintf(extra, sizeof(extra), ",\"dependency\":\"%s\"", dep);
    gw_metrics_dep_error(u->gw, dep);
    tx_log_error(TX_KV("upload_id", u->upload_id, "dependency", dep), "upload failed: %s", detail);
    return gw_send_problem(u->c, 503, "dependency-unavailable", "Dependency unavailable", detail,
                           extra, hdrs);
}

/* ---- request checks ------------------------------------------------------------------------ */

static int unauthorized(struct upload *u, const char *title, const char *detail)
{
    return gw_send_problem(u->c, 401, "unauthorized", title, detail, NULL,
                           (gw_headers) (const char *[]){ "WWW-Authenticate: Bearer", NULL });
}

/* Checks a presented key and remembers its name (idempotency keys are scoped by it). */
static int check_key(struct upload *u, const char *key, size_t len)
{
    const char *name = gw_auth_check(u->gw->auth, key, len);

    if (name == NULL)
        return unauthorized(u, "Invalid API key", "the API key is not valid");
    snprintf(u->key_name, sizeof(u->key_name), "%s", name);
    return 0;
}

/*
 * The API key comes from a header; a multipart form without one may carry it in a field named
 * api_key (a plain HTML form cannot set headers): then *deferred is set and the field is checked
 * once the body is read.
 */
static int check_auth(struct upload *u, bool multipart, bool *deferred)
{
    const char *key;
    size_t len;

    *deferred = false;
    if (strcmp(u->gw->cfg.auth_mode, "none") == 0) {
        snprintf(u->key_name, sizeof(u->key_name), "anonymous");
        return 0;
    }
    if (gw_auth_extract(mg_get_header(u->c, "Authorization"), mg_get_header(u->c, "X-API-Key"),
                        &key, &len) == 0)
        return check_key(u, key, len);
    if (multipart) {
        *deferred = true;
        return 0;
    }
    return unauthorized(u, "API key required",
                        "send the API key as \"Authorization: Bearer <key>\" or \"X-API-Key: "
                        "<key>\" (or as the form field api_key of a multipart upload)");
}

/* The api_key field of a multipart body (never logged). */
static int check_form_key(struct upload *u, const char *boundary)
{
    struct gw_part part;
    struct tx_err err = { 0 };
    size_t len;

    if (gw_multipart_find(u->data, u->len, boundary, "api_key", &part, &err) != 0)
        return unauthorized(u, "API key required",
                            "send the API key as \"Authorization: Bearer <key>\", \"X-API-Key: "
                            "<key>\" or the form field api_key");
    len = part.len;
    while (len > 0 &&
           (part.data[len - 1] == '\r' || part.data[len - 1] == '\n' || part.data[len - 1] == ' '))
        len--;
    return check_key(u, part.data, len);
}

/* Content type => format; multipart bodies get their boundary. 0 or an answered status. */
static int check_content_type(struct upload *u, char *boundary, size_t blen, bool *multipart)
{
    const char *ct = mg_get_header(u->c, "Content-Type");
    char type[96];

    *multipart = false;
    if (ct == NULL || gw_content_type_parse(ct, type, sizeof(type), boundary, blen) != 0)
        goto bad;
    if (strcmp(type, "application/json") == 0) {
        u->format = TX_FORMAT_JSON;
        return 0;
    }
    if (strcmp(type, "application/x-ndjson") == 0 || strcmp(type, "application/ndjson") == 0) {
        u->format = TX_FORMAT_NDJSON;
        return 0;
    }
    if (strcmp(type, "multipart/form-data") == 0) {
        if (boundary[0] == '\0')
            return gw_send_problem(u->c, 400, "invalid-multipart", "Malformed multipart body",
                                   "multipart/form-data needs a boundary parameter", NULL, NULL);
        *multipart = true;
        return 0;
    }
bad:
    return gw_send_problem(u->c, 415, "unsupported-media-type", "Unsupported content type",
                           "send application/json, application/x-ndjson or multipart/form-data "
                           "(field \"file\")",
                           NULL, NULL);
}

static int check_idem_key(struct upload *u)
{
    const char *k = mg_get_header(u->c, "Idempotency-Key");
    size_t i;
    size_t n;

    if (k == NULL)
        return 0;
    n = strlen(k);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) k[i];

        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            break;
    }
    if (n == 0 || n > IDEM_KEY_MAX || i < n)
        return gw_send_problem(u->c, 400, "invalid-idempotency-key", "Invalid Idempotency-Key",
                               "Idempotency-Key must be 1-200 printable ASCII characters without "
                               "spaces, quotes or backslashes",
                               NULL, NULL);
    memcpy(u->idem_key, k, n + 1);
    u->has_idem = true;
    return 0;
}

static int too_many(struct upload *u, const char *what)
{
    char ra[48];
    char detail[200];
    const char *hdrs[] = { ra, NULL };

    retry_after_header(u->gw, ra, sizeof(ra));
    snprintf(detail, sizeof(detail), "too many %s in flight; retry after %lld s", what,
             u->gw->cfg.retry_after_s);
    return gw_send_problem(u->c, 429, "too-many-requests", "Too many uploads in flight", detail,
                           NULL, hdrs);
}

/* Admission: bounds uploads and bytes in flight, so memory stays bounded under any load. */
static int admit(struct upload *u, long long expect_bytes)
{
    struct gw *gw = u->gw;

    if (atomic_load(&gw->draining))
        return unavailable(u, "txgateway", &(struct tx_err){ .msg = "shutting down" });
    if (atomic_fetch_add(&gw->inflight, 1) >= gw->cfg.max_inflight) {
        atomic_fetch_sub(&gw->inflight, 1);
        return too_many(u, "uploads");
    }
    u->admitted = true;
    if (atomic_fetch_add(&gw->inflight_bytes, expect_bytes) + expect_bytes >
        gw->cfg.max_inflight_bytes) {
        atomic_fetch_sub(&gw->inflight_bytes, expect_bytes);
        return too_many(u, "bytes");
    }
    u->reserved_bytes = expect_bytes;
    gw_metrics_inflight(gw, atomic_load(&gw->inflight));
    return 0;
}

/* Reads the whole body under the limit; a short, stalled or trickling body is 408, never a half
 * upload. A trickling body holds one of CivetWeb's worker threads, so once the grace time has
 * passed the body must keep up TX_BODY_MIN_RATE on average (slowloris: one byte at a time).
 * mg_read returns only once it has all the bytes asked for (or the client is silent for
 * TX_REQUEST_TIMEOUT_MS), so the size asked for starts at one byte and grows while the bytes come
 * at once (by one byte during the grace time, then doubling) and halves when a read waits: a
 * trickling client, even one whose first bytes waited in the socket buffer while the request was
 * queued, is measured (and cut off) within a few of its bytes, and a fast one reaches the full
 * chunk after the grace time (a 10 MiB body within it takes about 4,600 reads). */
static int read_loop(struct upload *u, char *chunk, size_t chunk_len, long long clen, bool chunked,
                     long long max)
{
    const struct gw_config *cfg = &u->gw->cfg;
    int64_t start = tx_time_mono_ms();
    int64_t deadline = start + cfg->body_timeout_ms;
    size_t want = 1;

    for (;;) {
        int64_t before = tx_time_mono_ms();
        int n = mg_read(u->c, chunk, want);
        int64_t now = tx_time_mono_ms();

        if (n > 0 && (size_t) n == want && now - before < 50) {
            size_t next = now - start > cfg->body_grace_ms ? want * 2 : want + 1;

            want = next < chunk_len ? next : chunk_len;
        }
        else if (n > 0 && now - before > 200)
            want = want / 2 > 0 ? want / 2 : 1;

        if (n > 0 && now - start > cfg->body_grace_ms &&
            (double) (u->body.len + (size_t) n) <
                (double) cfg->body_min_rate * (double) (now - start) / 1000.0) {
            char detail[200];

            snprintf(detail, sizeof(detail),
                     "the body arrived at %.0f bytes/s, below the minimum of %lld bytes/s; "
                     "nothing was stored",
                     (double) (u->body.len + (size_t) n) * 1000.0 / (double) (now - start),
                     cfg->body_min_rate);
            mg_disable_connection_keep_alive(u->c);
            return gw_send_problem(u->c, 408, "request-timeout", "Upload too slow", detail, NULL,
                                   NULL);
        }
        if (n > 0 && now > deadline) {
            char detail[160];

            snprintf(detail, sizeof(detail),
                     "the body took longer than %lld ms to arrive; nothing was stored",
                     cfg->body_timeout_ms);
            mg_disable_connection_keep_alive(u->c);
            return gw_send_problem(u->c, 408, "request-timeout", "Upload too slow", detail, NULL,
                                   NULL);
        }

        if (n < 0) {
            mg_disable_connection_keep_alive(u->c);
            return gw_send_problem(u->c, 408, "request-timeout", "Incomplete upload",
                                   "the connection stalled or broke while sending the body; "
                                   "nothing was stored",
                                   NULL, NULL);
        }
        if (n == 0)
            break;
        if (tx_buf_append(&u->body, chunk, (size_t) n) != 0) {
            char detail[160];

            snprintf(detail, sizeof(detail), "the body is larger than the limit of %lld bytes",
                     max);
            mg_disable_connection_keep_alive(u->c);
            return gw_send_problem(u->c, 413, "payload-too-large", "Upload too large", detail, NULL,
                                   NULL);
        }
    }
    if ((!chunked && (long long) u->body.len != clen)) {
        char detail[200];

        snprintf(detail, sizeof(detail),
                 "received %zu of %lld bytes before the connection stalled or closed; nothing was "
                 "stored",
                 u->body.len, clen);
        mg_disable_connection_keep_alive(u->c);
        return gw_send_problem(u->c, 408, "request-timeout", "Incomplete upload", detail, NULL,
                               NULL);
    }
    u->data = u->body.data != NULL ? u->body.data : "";
    u->len = u->body.len;
    return 0;
}

static int read_body(struct upload *u, long long clen, bool chunked)
{
    /* On the heap: CivetWeb's worker threads have 100 KiB stacks. */
    enum {
        CHUNK = 65536
    };
    char *chunk = NULL;
    long long max = u->gw->cfg.max_upload;
    int rc = 0;

    tx_buf_init(&u->body, (size_t) max);
    chunk = malloc(CHUNK);
    if (chunk == NULL)
        return unavailable(u, "txgateway", &(struct tx_err){ .msg = "out of memory" });
    rc = read_loop(u, chunk, CHUNK, clen, chunked, max);
    free(chunk);
    return rc;
}

static int take_file_part(struct upload *u, const char *boundary)
{
    struct gw_part part;
    struct tx_err err = { 0 };
    char type[96];
    char unused[4];
    int rc;

    rc = gw_multipart_find(u->data, u->len, boundary, "file", &part, &err);
    if (rc == TX_ENOTFOUND)
        return gw_send_problem(u->c, 400, "invalid-multipart", "No file in the form",
                               "the multipart form has no field named \"file\"", NULL, NULL);
    if (rc != 0)
        return gw_send_problem(u->c, 400, "invalid-multipart", "Malformed multipart body", err.msg,
                               NULL, NULL);
    u->data = part.data;
    u->len = part.len;
    u->format = TX_FORMAT_AUTO;
    if (part.content_type[0] != '\0' &&
        gw_content_type_parse(part.content_type, type, sizeof(type), unused, sizeof(unused)) == 0 &&
        (strcmp(type, "application/x-ndjson") == 0 || strcmp(type, "application/ndjson") == 0))
        u->format = TX_FORMAT_NDJSON;
    return 0;
}

/* 400 for malformed JSON, 422 listing every invalid record. */
static int parse_records(struct upload *u)
{
    struct tx_err err = { 0 };
    struct tx_buf extra;
    size_t i;
    int rc;
    char detail[400];

    rc = tx_batch_parse(u->data, u->len, u->format, NULL, &u->batch, &err);
    if (rc == 0)
        return 0;
    if (rc == TX_ESYNTAX) {
        char ex[64];

        snprintf(ex, sizeof(ex), ",\"line\":%u,\"column\":%u", err.line, err.col);
        snprintf(detail, sizeof(detail), "malformed JSON at line %u, column %u: %s", err.line,
                 err.col, err.msg);
        return gw_send_problem(u->c, 400, "malformed-json", "Malformed JSON", detail, ex, NULL);
    }
    if (rc == TX_ETOOBIG) {
        return gw_send_problem(u->c, 413, "too-many-records", "Too many records", err.msg, NULL,
                               NULL);
    }
    if (rc != TX_EINVAL || u->batch == NULL)
        return gw_send_problem(u->c, 500, "internal", "Internal error", err.msg, NULL, NULL);

    tx_buf_init(&extra, 1u << 24);
    tx_buf_printf(&extra, ",\"total_errors\":%zu,\"errors\":[", u->batch->nviolations_total);
    for (i = 0; i < u->batch->nviolations; i++) {
        const struct tx_violation *v = &u->batch->violations[i];

        tx_buf_printf(&extra, "%s{\"index\":%zu,\"line\":%u,\"field\":", i > 0 ? "," : "", v->index,
                      v->line);
        tx_buf_json_str(&extra, v->field, strlen(v->field));
        tx_buf_puts(&extra, ",\"code\":");
        tx_buf_json_str(&extra, v->code, strlen(v->code));
        tx_buf_puts(&extra, ",\"message\":");
        tx_buf_json_str(&extra, v->message, strlen(v->message));
        tx_buf_puts(&extra, "}");
    }
    tx_buf_puts(&extra, "]");
    snprintf(detail, sizeof(detail),
             "%zu validation error(s); the whole upload was rejected and nothing was stored",
             u->batch->nviolations_total);
    rc = gw_send_problem(u->c, 422, "validation-failed", "Invalid records", detail, extra.data,
                         NULL);
    tx_buf_cleanup(&extra);
    return rc;
}

/* ---- idempotency --------------------------------------------------------------------------- */

/*
 * tx:idem:<api key name>:<key> holds {"sha256","upload_id","received_ms","answer"} ("answer" once
 * done). tx:idem:lock:<api key name>:<key> (short TTL) is held while one request works on it.
 */
static int idem_lookup(struct upload *u, bool *replayed)
{
    char key[IDEM_KEY_MAX + GW_AUTH_NAME_MAX + 16];
    char *val = NULL;
    size_t len = 0;
    json_t *root = NULL;
    struct tx_err err = { 0 };
    int rc;

    *replayed = false;
    snprintf(key, sizeof(key), "tx:idem:%s:%s", u->key_name, u->idem_key);
    rc = cache_get(u->slot->cache, key, &val, &len, NULL, &err);
    if (rc == TX_ENOTFOUND)
        return 0;
    if (rc != 0)
        return unavailable(u, "redis", &err);
    root = json_loadb(val, len, 0, NULL);
    if (root == NULL || !json_is_string(json_object_get(root, "sha256")) ||
        !json_is_string(json_object_get(root, "upload_id"))) {
        /* Unreadable state: treat as absent, it will be overwritten. */
        rc = 0;
        goto out;
    }
    if (strcmp(json_string_value(json_object_get(root, "sha256")), u->sha256) != 0) {
        rc = gw_send_problem(u->c, 422, "idempotency-key-reused", "Idempotency-Key reused",
                             "this Idempotency-Key was already used for a different body; use a "
                             "new key for new content",
                             NULL, NULL);
        goto out;
    }
    snprintf(u->upload_id, sizeof(u->upload_id), "%s",
             json_string_value(json_object_get(root, "upload_id")));
    u->received_ms = (int64_t) json_integer_value(json_object_get(root, "received_ms"));
    if (json_is_string(json_object_get(root, "answer"))) {
        const char *ans = json_string_value(json_object_get(root, "answer"));
        char loc[96];
        const char *hdrs[] = { "Idempotent-Replayed: true", loc, NULL };

        snprintf(loc, sizeof(loc), "Location: /api/v1/uploads/%s", u->upload_id);
        *replayed = true;
        rc = gw_send(u->c, 202, "application/json", ans, strlen(ans), hdrs);
        goto out;
    }
    rc = 0; /* pending: resume with the same upload_id */
out:
    json_decref(root);
    free(val);
    return rc;
}

static int idem_lock(struct upload *u)
{
    char key[IDEM_KEY_MAX + GW_AUTH_NAME_MAX + 24];
    struct tx_err err = { 0 };
    int ttl = (int) ((u->gw->cfg.dep_timeout_ms * 3 + u->gw->cfg.confirm_timeout_ms) / 1000 + 5);
    int rc;

    snprintf(key, sizeof(key), "tx:idem:lock:%s:%s", u->key_name, u->idem_key);
    rc = cache_set_nx(u->slot->cache, key, "1", 1, ttl, NULL, NULL, &err);
    if (rc == TX_EEXIST) {
        char ra[48];
        const char *hdrs[] = { ra, NULL };

        retry_after_header(u->gw, ra, sizeof(ra));
        return gw_send_problem(u->c, 409, "idempotency-key-in-use", "Upload in progress",
                               "another request with this Idempotency-Key is being processed; "
                               "retry later to get its answer",
                               NULL, hdrs);
    }
    if (rc != 0)
        return unavailable(u, "redis", &err);
    u->idem_locked = true;
    return 0;
}

static void idem_unlock(struct upload *u)
{
    char key[IDEM_KEY_MAX + GW_AUTH_NAME_MAX + 24];

    if (!u->idem_locked || u->slot == NULL)
        return;
    snprintf(key, sizeof(key), "tx:idem:lock:%s:%s", u->key_name, u->idem_key);
    cache_del(u->slot->cache, key, NULL);
    u->idem_locked = false;
}

static int idem_store(struct upload *u, const char *answer, struct tx_err *err)
{
    char key[IDEM_KEY_MAX + GW_AUTH_NAME_MAX + 16];
    struct tx_buf v;
    int rc;

    snprintf(key, sizeof(key), "tx:idem:%s:%s", u->key_name, u->idem_key);
    tx_buf_init(&v, 1u << 16);
    rc = tx_buf_printf(&v, "{\"sha256\":\"%s\",\"upload_id\":\"%s\",\"received_ms\":%lld",
                       u->sha256, u->upload_id, (long long) u->received_ms);
    if (rc == 0 && answer != NULL) {
        rc = tx_buf_puts(&v, ",\"answer\":");
        if (rc == 0)
            rc = tx_buf_json_str(&v, answer, strlen(answer));
    }
    if (rc == 0)
        rc = tx_buf_puts(&v, "}");
    if (rc == 0)
        rc = cache_set(u->slot->cache, key, v.data, v.len, (int) u->gw->cfg.idem_ttl_s, err);
    tx_buf_cleanup(&v);
    return rc;
}

/* ---- the durable steps --------------------------------------------------------------------- */

static void object_key(struct upload *u)
{
    char ts[TX_TIME_FORMAT_LEN];

    tx_time_format_ms(u->received_ms, ts, sizeof(ts));
    snprintf(u->object, sizeof(u->object), "raw/%.4s/%.2s/%.2s/%s.json", ts, ts + 5, ts + 8,
             u->upload_id);
}

static int store_object(struct upload *u)
{
    struct s3_meta meta = { 0 };
    struct s3_meta_out head;
    struct tx_err err = { 0 };
    int64_t t0 = tx_time_mono_ms();
    int rc;

    /* A resumed upload may already be stored: objects are never overwritten. */
    rc = s3_object_head(u->gw->s3, u->object, &head, &err);
    if (rc == 0 && strcmp(head.sha256_hex, u->sha256) == 0)
        return 0;
    if (rc == 0)
        return unavailable(u, "s3", &(struct tx_err){ .msg = "object exists with other content" });
    if (rc != TX_ENOTFOUND)
        return unavailable(u, "s3", &err);
    meta.sha256_hex = u->sha256;
    meta.records = (long) u->batch->nrecords;
    meta.idempotency_key = u->has_idem ? u->idem_key : NULL;
    meta.content_type = u->format == TX_FORMAT_NDJSON ? "application/x-ndjson" : "application/json";
    rc = s3_object_put(u->gw->s3, u->object, u->data, u->len, &meta, &err);
    gw_metrics_latency(u->gw, u->gw->m.lat_s3, tx_time_mono_ms() - t0);
    if (rc != 0)
        return unavailable(u, "s3", &err);
    return 0;
}

/* One summary per client: its latest record in this upload, the count and the upload id. */
static int cache_summaries(struct upload *u)
{
    struct tx_batch *b = u->batch;
    struct cache_kv *kv = NULL;
    size_t *koff = NULL;
    size_t *voff = NULL;
    struct tx_buf vals;
    json_t *seen = json_object(); /* _id -> [latest index, count] */
    const char *id;
    json_t *v;
    size_t nkv = 0;
    size_t i;
    struct tx_err err = { 0 };
    int64_t t0 = tx_time_mono_ms();
    char ts[TX_TIME_FORMAT_LEN];
    int rc = 0;

    kv = calloc(b->nrecords, sizeof(*kv));
    koff = calloc(b->nrecords, sizeof(*koff));
    voff = calloc(b->nrecords, sizeof(*voff));
    tx_buf_init(&vals, (size_t) u->gw->cfg.max_upload * 2 + 65536);
    if (kv == NULL || koff == NULL || voff == NULL || seen == NULL) {
        rc = unavailable(u, "txgateway", &(struct tx_err){ .msg = "out of memory" });
        goto out;
    }
    for (i = 0; i < b->nrecords; i++) {
        json_t *e = json_object_get(seen, b->records[i].id);

        if (e == NULL) {
            json_object_set_new(seen, b->records[i].id, json_pack("[I,I]", (json_int_t) i, 1));
            continue;
        }
        json_array_set_new(e, 0, json_integer((json_int_t) i));
        json_array_set_new(e, 1, json_integer(json_integer_value(json_array_get(e, 1)) + 1));
    }
    tx_time_format_ms(u->received_ms, ts, sizeof(ts));
    json_object_foreach(seen, id, v)
    {
        const struct tx_record *r = &b->records[json_integer_value(json_array_get(v, 0))];

        koff[nkv] = vals.len;
        rc = tx_buf_printf(&vals, "tx:client:%s", id);
        if (rc == 0)
            rc = tx_buf_append(&vals, "", 1);
        voff[nkv] = vals.len;
        if (rc == 0)
            rc = tx_buf_puts(&vals, "{\"_id\":");
        if (rc == 0)
            rc = tx_buf_json_str(&vals, id, strlen(id));
        if (rc == 0)
            rc = tx_buf_puts(&vals, ",\"record\":");
        if (rc == 0)
            rc = tx_buf_append(&vals, r->json, r->json_len);
        if (rc == 0)
            rc = tx_buf_printf(&vals,
                               ",\"count\":%lld,\"last_upload_id\":\"%s\",\"last_index\":%zu,"
                               "\"updated_at\":\"%s\"}",
                               (long long) json_integer_value(json_array_get(v, 1)), u->upload_id,
                               r->index, ts);
        kv[nkv].len = vals.len - voff[nkv];
        if (rc == 0)
            rc = tx_buf_append(&vals, "", 1);
        if (rc != 0) {
            rc = unavailable(u, "txgateway", &(struct tx_err){ .msg = "summaries too large" });
            goto out;
        }
        nkv++;
    }
    for (i = 0; i < nkv; i++) {
        kv[i].key = vals.data + koff[i];
        kv[i].val = vals.data + voff[i];
    }
    rc = cache_set_many(u->slot->cache, kv, nkv, (int) u->gw->cfg.summary_ttl_s, &err);
    gw_metrics_latency(u->gw, u->gw->m.lat_redis, tx_time_mono_ms() - t0);
    if (rc != 0)
        rc = unavailable(u, "redis", &err);
out:
    json_decref(seen);
    tx_buf_cleanup(&vals);
    free(voff);
    free(koff);
    free(kv);
    return rc;
}

static int publish_events(struct upload *u)
{
    struct tx_batch *b = u->batch;
    struct tx_event_head h = { .upload_id = u->upload_id,
                               .object = u->object,
                               .received_ms = u->received_ms,
                               .records = u->batch->nrecords,
                               .sha256 = u->sha256,
                               .idempotency_key = u->has_idem ? u->idem_key : NULL };
    size_t *offs = NULL;
    size_t i;
    struct tx_err err = { 0 };
    int64_t t0;
    int rc = 0;

    u->msgs = calloc(b->nrecords, sizeof(*u->msgs));
    u->event_ids = calloc(b->nrecords, sizeof(*u->event_ids));
    offs = calloc(b->nrecords + 1, sizeof(*offs));
    tx_buf_init(&u->events, (size_t) u->gw->cfg.max_upload * 2 + b->nrecords * 512);
    if (u->msgs == NULL || u->event_ids == NULL || offs == NULL) {
        rc = unavailable(u, "txgateway", &(struct tx_err){ .msg = "out of memory" });
        goto out;
    }
    for (i = 0; i < b->nrecords && rc == 0; i++) {
        h.index = i;
        offs[i] = u->events.len;
        rc = tx_event_encode_tx(&h, &b->records[i], NULL, &u->events);
        tx_event_id_format(u->upload_id, i, u->event_ids[i]);
    }
    offs[b->nrecords] = u->events.len;
    if (rc != 0) {
        rc = unavailable(u, "txgateway", &(struct tx_err){ .msg = "events too large" });
        goto out;
    }
    for (i = 0; i < b->nrecords; i++) {
        u->msgs[i].routing_key = "transaction.received";
        u->msgs[i].message_id = u->event_ids[i];
        u->msgs[i].correlation_id = u->upload_id;
        u->msgs[i].body = u->events.data + offs[i];
        u->msgs[i].len = offs[i + 1] - offs[i];
    }
    t0 = tx_time_mono_ms();
    rc = queue_publish_confirmed(u->slot->pub, "tx.events", u->msgs, b->nrecords, &err);
    gw_metrics_latency(u->gw, u->gw->m.lat_confirm, tx_time_mono_ms() - t0);
    if (rc != 0)
        rc = unavailable(u, "rabbitmq", &err);
out:
    free(offs);
    return rc;
}

static int answer(struct upload *u)
{
    char ts[TX_TIME_FORMAT_LEN];
    char loc[96];
    const char *hdrs[] = { loc, NULL };
    struct tx_err err = { 0 };

    tx_time_format_ms(u->received_ms, ts, sizeof(ts));
    tx_buf_init(&u->answer, 4096);
    tx_buf_printf(
        &u->answer,
        "{\"upload_id\":\"%s\",\"records\":%zu,\"object\":\"%s\",\"status_url\":\"/api/v1/"
        "uploads/%s\",\"received_at\":\"%s\",\"sha256\":\"%s\"}",
        u->upload_id, u->batch->nrecords, u->object, u->upload_id, ts, u->sha256);
    if (u->has_idem && idem_store(u, u->answer.data, &err) != 0) {
        /* The upload is durable; a retry finds the key pending and re-publishes (harmless). */
        tx_log_warn(TX_KV("upload_id", u->upload_id), "could not record idempotency answer: %s",
                    err.msg);
    }
    snprintf(loc, sizeof(loc), "Location: /api/v1/uploads/%s", u->upload_id);
    tx_log_info(TX_KV("upload_id", u->upload_id, "object", u->object),
                "upload accepted: %zu "
                "records, %zu bytes",
                u->batch->nrecords, u->len);
    gw_metrics_records(u->gw, u->batch->nrecords, u->len);
    return gw_send_json(u->c, 202, &u->answer, hdrs);
}

static int process(struct upload *u)
{
    const struct mg_request_info *ri = mg_get_request_info(u->c);
    const char *te = mg_get_header(u->c, "Transfer-Encoding");
    bool chunked = te != NULL && strncasecmp(te, "chunked", 7) == 0;
    long long clen = ri->content_length;
    char boundary[GW_BOUNDARY_MAX + 1];
    bool multipart;
    bool form_key;
    bool replayed;
    int rc;

    rc = check_content_type(u, boundary, sizeof(boundary), &multipart);
    if (rc == 0)
        rc = check_auth(u, multipart, &form_key);
    if (rc == 0)
        rc = check_idem_key(u);
    if (rc != 0)
        return rc;
    if (clen < 0 && !chunked)
        return gw_send_problem(u->c, 411, "length-required", "Length required",
                               "send Content-Length or Transfer-Encoding: chunked", NULL, NULL);
    if (clen > u->gw->cfg.max_upload) {
        char detail[160];

        snprintf(detail, sizeof(detail), "Content-Length %lld is over the limit of %lld bytes",
                 clen, u->gw->cfg.max_upload);
        mg_disable_connection_keep_alive(u->c);
        return gw_send_problem(u->c, 413, "payload-too-large", "Upload too large", detail, NULL,
                               NULL);
    }
    rc = admit(u, clen >= 0 ? clen : u->gw->cfg.max_upload);
    if (rc == 0)
        rc = read_body(u, clen, chunked);
    if (rc == 0 && form_key)
        rc = check_form_key(u, boundary);
    if (rc == 0 && multipart)
        rc = take_file_part(u, boundary);
    if (rc == 0)
        rc = parse_records(u);
    if (rc != 0)
        return rc;

    tx_sha256_hex(u->data, u->len, u->sha256);
    u->slot = gw_pool_acquire(u->gw->upload_pool, u->gw->cfg.dep_timeout_ms);
    if (u->slot == NULL)
        return too_many(u, "uploads");
    {
        struct tx_err err = { 0 };

        rc = gw_slot_connect(u->gw, u->slot, GW_NEED_CACHE | GW_NEED_QUEUE, &err);
        if (rc != 0)
            return unavailable(u, gw_slot_failed_dep(rc), &err);
    }
    if (u->has_idem) {
        /* Lock first, then look: a request that finds the key pending while holding the lock
         * knows no other request is still working on it. */
        rc = idem_lock(u);
        if (rc == 0)
            rc = idem_lookup(u, &replayed);
        if (rc != 0 || replayed)
            return rc != 0 ? rc : 202;
    }
    if (u->upload_id[0] == '\0') {
        u->received_ms = tx_time_now_ms();
        if (tx_uuid7_make(u->received_ms, u->upload_id) != 0)
            return unavailable(u, "txgateway", &(struct tx_err){ .msg = "no randomness" });
    }
    object_key(u);
    if (u->has_idem) {
        struct tx_err err = { 0 };

        if (idem_store(u, NULL, &err) != 0)
            rc = unavailable(u, "redis", &err);
    }
    if (rc == 0)
        rc = store_object(u);
    if (rc == 0)
        rc = cache_summaries(u);
    if (rc == 0)
        rc = publish_events(u);
    if (rc == 0)
        rc = answer(u);
    return rc;
}

/* Releases everything an upload holds (slot, admission, buffers). */
static void upload_release(struct upload *u)
{
    struct gw *gw = u->gw;

    idem_unlock(u);
    if (u->slot != NULL)
        gw_pool_release(gw->upload_pool, u->slot);
    if (u->admitted) {
        atomic_fetch_sub(&gw->inflight_bytes, u->reserved_bytes);
        atomic_fetch_sub(&gw->inflight, 1);
        gw_metrics_inflight(gw, atomic_load(&gw->inflight));
    }
    tx_batch_destroy(u->batch);
    tx_buf_cleanup(&u->body);
    tx_buf_cleanup(&u->events);
    tx_buf_cleanup(&u->answer);
    free(u->msgs);
    free(u->event_ids);
    free(u->stored);
}

int gw_upload_handle(struct gw *gw, struct mg_connection *c, const char *route, char *upload_id)
{
    struct upload u;
    int status;

    memset(&u, 0, sizeof(u));
    u.gw = gw;
    u.c = c;
    u.route = route;
    u.t0 = tx_time_mono_ms();
    status = process(&u);
    memcpy(upload_id, u.upload_id, sizeof(u.upload_id));
    if (status == 202)
        gw_metrics_latency(gw, gw->m.lat_upload, tx_time_mono_ms() - u.t0);
    upload_release(&u);
    return status;
}

/* POST /api/v1/uploads/{id}/replay: the stored object's events again, same event ids. */
static int replay(struct upload *u, const char *id)
{
    struct tx_err err = { 0 };
    const char *key;
    size_t klen;
    size_t len = 0;
    char body[256];
    int rc;

    if (gw_auth_count(u->gw->admin_auth) == 0)
        return gw_send_problem(u->c, 401, "unauthorized", "Admin API key required",
                               "no admin key is configured (TX_ADMIN_API_KEYS): replay is disabled",
                               NULL, NULL);
    if (gw_auth_extract(mg_get_header(u->c, "Authorization"), mg_get_header(u->c, "X-API-Key"),
                        &key, &klen) != 0 ||
        gw_auth_check(u->gw->admin_auth, key, klen) == NULL)
        return gw_send_problem(u->c, 401, "unauthorized", "Admin API key required",
                               "replay needs an admin API key (Authorization: Bearer <key>)", NULL,
                               (gw_headers) (const char *[]){ "WWW-Authenticate: Bearer", NULL });
    snprintf(u->upload_id, sizeof(u->upload_id), "%s", id);
    u->received_ms = tx_uuid7_ms(id);
    object_key(u);
    rc = admit(u, u->gw->cfg.max_upload);
    if (rc != 0)
        return rc;
    rc =
        s3_object_get(u->gw->s3, u->object, (size_t) u->gw->cfg.max_upload, &u->stored, &len, &err);
    if (rc == TX_ENOTFOUND)
        return gw_send_problem(u->c, 404, "not-found", "Not found", "no stored upload with this id",
                               NULL, NULL);
    if (rc != 0)
        return unavailable(u, "s3", &err);
    u->data = u->stored;
    u->len = len;
    tx_sha256_hex(u->data, u->len, u->sha256);
    u->format = TX_FORMAT_AUTO;
    rc = tx_batch_parse(u->data, u->len, u->format, NULL, &u->batch, &err);
    if (rc != 0)
        return gw_send_problem(u->c, 500, "internal", "Stored upload unreadable", err.msg, NULL,
                               NULL);
    u->slot = gw_pool_acquire(u->gw->upload_pool, u->gw->cfg.dep_timeout_ms);
    if (u->slot == NULL)
        return too_many(u, "uploads");
    rc = gw_slot_connect(u->gw, u->slot, GW_NEED_QUEUE, &err);
    if (rc != 0)
        return unavailable(u, gw_slot_failed_dep(rc), &err);
    rc = publish_events(u);
    if (rc != 0)
        return rc;
    tx_log_info(TX_KV("upload_id", u->upload_id, "object", u->object),
                "upload replayed: %zu events re-published", u->batch->nrecords);
    snprintf(body, sizeof(body), "{\"upload_id\":\"%s\",\"records\":%zu,\"republished\":%zu}",
             u->upload_id, u->batch->nrecords, u->batch->nrecords);
    return gw_send(u->c, 202, "application/json", body, strlen(body), NULL);
}

int gw_replay_handle(struct gw *gw, struct mg_connection *c, const char *id, char *upload_id)
{
    struct upload u;
    int status;

    memset(&u, 0, sizeof(u));
    u.gw = gw;
    u.c = c;
    u.route = "/api/v1/uploads/{id}/replay";
    u.t0 = tx_time_mono_ms();
    status = replay(&u, id);
    memcpy(upload_id, u.upload_id, sizeof(u.upload_id));
    upload_release(&u);
    return status;
}
