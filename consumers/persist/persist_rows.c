/* Decoded events -> staging rows in COPY text format. Pure: no I/O, no global state. */
#include "consumers/persist/persist.h"

#include "common/tx_jdoc.h"
#include "common/tx_time.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASONS_JSON_MAX (64u * 1024u)

/* ---- COPY text fields ---- */

/* The COPY escape of byte c, or NULL when c is copied as it is. */
static const char *copy_escape(unsigned char c)
{
    switch (c) {
    case '\\':
        return "\\\\";
    case '\t':
        return "\\t";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    default:
        return NULL;
    }
}

/* One pass: plain bytes are copied in runs, UTF-8 is checked as it goes, four bytes escaped. */
int persist_copy_field(struct tx_buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t start = out->len;
    size_t run = 0;
    size_t i = 0;
    int rc = 0;

    if (len > 0 && s == NULL)
        return TX_EINVAL;
    while (i < len && rc == 0) {
        unsigned char c = p[i];
        const char *esc;

        if (c >= 0x20 && c < 0x80 && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = tx_utf8_seq(p + i, len - i);

            if (k == 0) {
                rc = TX_EINVAL;
                break;
            }
            i += k;
            continue;
        }
        if (c == 0) {
            rc = TX_EINVAL;
            break;
        }
        esc = copy_escape(c);
        if (esc == NULL) {
            i++; /* another control character: COPY takes it as it is */
            continue;
        }
        if (i > run)
            rc = tx_buf_append(out, s + run, i - run);
        if (rc == 0)
            rc = tx_buf_append(out, esc, 2);
        run = ++i;
    }
    if (rc == 0 && len > run)
        rc = tx_buf_append(out, s + run, len - run);
    if (rc == TX_EINVAL) {
        out->len = start; /* nothing of an invalid field stays */
        if (out->data != NULL)
            out->data[start] = '\0';
    }
    return rc;
}

/* ---- one row ---- */

/* A row being written: every put is a no-op once something failed. */
struct row {
    struct tx_buf *b;
    unsigned nfields;
    int rc;
    struct tx_err *err;
    const char *what; /* field being written, for the error message */
};

static void sep(struct row *r)
{
    if (r->rc == 0 && r->nfields > 0)
        r->rc = tx_buf_append(r->b, "\t", 1);
    r->nfields++;
}

static void put_null(struct row *r)
{
    sep(r);
    if (r->rc == 0)
        r->rc = tx_buf_append(r->b, "\\N", 2);
}

static void put_strn(struct row *r, const char *what, const char *s, size_t len)
{
    sep(r);
    if (r->rc != 0)
        return;
    r->rc = persist_copy_field(r->b, s, len);
    if (r->rc == TX_EINVAL)
        tx_err_set(r->err, TX_EINVAL, "%s holds a NUL byte or invalid UTF-8", what);
}

static void put_str(struct row *r, const char *what, const char *s)
{
    if (s == NULL) {
        put_null(r);
        return;
    }
    put_strn(r, what, s, strlen(s));
}

/* NULL for NULL or "" (optional text of notification events). */
static void put_opt_str(struct row *r, const char *what, const char *s)
{
    if (s == NULL || s[0] == '\0')
        put_null(r);
    else
        put_str(r, what, s);
}

static void put_raw(struct row *r, const char *text)
{
    sep(r);
    if (r->rc == 0)
        r->rc = tx_buf_puts(r->b, text);
}

static void put_time(struct row *r, const char *what, int64_t ms)
{
    char t[TX_TIME_FORMAT_LEN];

    sep(r);
    if (r->rc != 0)
        return;
    if (tx_time_format_ms(ms, t, sizeof(t)) == 0) {
        r->rc = tx_err_set(r->err, TX_EINVAL, "%s is outside the years 0001-9999", what);
        return;
    }
    r->rc = tx_buf_puts(r->b, t);
}

static void put_bool(struct row *r, bool v)
{
    put_raw(r, v ? "t" : "f");
}

/* The shortest %g form of a finite double that reads back as the same value. */
static void format_double(double v, char *out, size_t outlen)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* True when the JSON text holds the escape \u0000, which jsonb refuses. */
static bool json_has_nul_escape(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0)
            return true;
        i++; /* skip the escaped character (so "\\u0000" is a backslash, then text) */
    }
    return false;
}

static int reasons_json(const struct tx_verdict *v, struct tx_buf *j)
{
    int rc = tx_buf_puts(j, "[");

    for (size_t i = 0; rc == 0 && i < v->nreasons; i++) {
        rc = tx_buf_puts(j, i > 0 ? ",{\"code\":" : "{\"code\":");
        if (rc == 0)
            rc = tx_buf_json_str(j, v->reasons[i].code, strlen(v->reasons[i].code));
        if (rc == 0)
            rc = tx_buf_puts(j, ",\"detail\":");
        if (rc == 0)
            rc = tx_buf_json_str(j, v->reasons[i].detail, strlen(v->reasons[i].detail));
        if (rc == 0)
            rc = tx_buf_puts(j, "}");
    }
    if (rc == 0)
        rc = tx_buf_puts(j, "]");
    return rc;
}

static void put_tx_columns(struct row *r, const struct tx_event *ev)
{
    const struct tx_record *rec = &ev->record;
    char idx[24];

    if (ev->head.index > INT32_MAX) {
        r->rc = tx_err_set(r->err, TX_EINVAL, "index %zu is above 2147483647", ev->head.index);
        return;
    }
    if (rec->json == NULL || rec->json_len == 0 || json_has_nul_escape(rec->json, rec->json_len)) {
        r->rc = tx_err_set(r->err, TX_EINVAL, "the record JSON is empty or holds \\u0000");
        return;
    }
    snprintf(idx, sizeof(idx), "%zu", ev->head.index);
    put_str(r, "upload_id", ev->upload_id);
    put_raw(r, idx);
    put_str(r, "object", ev->head.object);
    put_time(r, "received_at", ev->head.received_ms);
    put_str(r, "_id", rec->id);
    put_str(r, "cliente", rec->cliente);
    put_str(r, "email", rec->email);
    put_str(r, "endereco", rec->endereco);
    put_str(r, "datatrasancao", rec->datatrasancao);
    put_time(r, "datatrasancao", rec->ts_ms);
    put_bool(r, rec->is_active);
    put_strn(r, "the record", rec->json, rec->json_len);
}

/* valor as the number's text in the record JSON (exact); NULL when the record has none. A key
 * spelled with escapes ("\u0076alor") is not found by text: then the decoded double, written in
 * its shortest exact form. */
static void put_valor(struct row *r, const struct tx_record *rec)
{
    char num[40];
    size_t start;
    size_t end;

    if (!rec->has_valor) {
        put_null(r);
        return;
    }
    if (tx_json_member_span(rec->json, rec->json_len, "valor", &start, &end) == 0) {
        put_strn(r, "valor", rec->json + start, end - start);
        return;
    }
    format_double(rec->valor, num, sizeof(num));
    put_raw(r, num);
}

/* What the event says about the whole upload (records, sha256, Idempotency-Key), if anything. */
static void put_upload_facts(struct row *r, const struct tx_event *ev)
{
    char n[24];

    if (ev->head.records > 0 && ev->head.records <= INT32_MAX) {
        snprintf(n, sizeof(n), "%zu", ev->head.records);
        put_raw(r, n);
    }
    else {
        put_null(r);
    }
    put_str(r, "sha256", ev->head.sha256);
    put_str(r, "idempotency_key", ev->head.idempotency_key);
}

static void put_verdict(struct row *r, const struct tx_event *ev)
{
    struct tx_buf j;
    char score[40];

    if (!ev->has_verdict) {
        put_null(r); /* flagged */
        put_null(r); /* score */
        put_null(r); /* reasons */
        return;
    }
    if (!isfinite(ev->verdict.score)) {
        r->rc = tx_err_set(r->err, TX_EINVAL, "the verdict's score is not a finite number");
        return;
    }
    format_double(ev->verdict.score, score, sizeof(score));
    put_bool(r, ev->verdict.flagged);
    put_raw(r, score);
    sep(r);
    if (r->rc != 0)
        return;
    tx_buf_init(&j, REASONS_JSON_MAX);
    r->rc = reasons_json(&ev->verdict, &j);
    if (r->rc == 0)
        r->rc = persist_copy_field(r->b, j.data, j.len);
    if (r->rc == TX_EINVAL)
        tx_err_set(r->err, TX_EINVAL, "a reason holds a NUL byte or invalid UTF-8");
    tx_buf_cleanup(&j);
}

static void put_notification(struct row *r, const struct tx_event *ev)
{
    struct tx_time t;
    struct tx_err terr;

    if (ev->at == NULL || tx_time_parse(ev->at, strlen(ev->at), &t, &terr) != 0) {
        r->rc = tx_err_set(r->err, TX_EINVAL, "\"at\" is not an RFC 3339 date-time: %s",
                           ev->at == NULL ? "missing" : terr.msg);
        return;
    }
    put_str(r, "template", ev->template_name != NULL ? ev->template_name : "");
    put_str(r, "to", ev->to != NULL ? ev->to : "");
    put_raw(r, ev->type == TX_EVENT_NOTIFY_SENT ? "sent" : "failed");
    put_opt_str(r, "message_id", ev->message_id);
    put_opt_str(r, "error", ev->error);
    put_time(r, "at", tx_time_to_ms(&t));
}

int persist_row_append(struct tx_buf *out, unsigned seq, const struct tx_event *ev,
                       struct tx_err *err)
{
    struct row r = { .b = out, .err = err };
    size_t start = out->len;
    bool is_tx = ev->type == TX_EVENT_RECEIVED || ev->type == TX_EVENT_SCORED;
    char num[16];
    char kind[2] = { 0, 0 };

    switch (ev->type) {
    case TX_EVENT_RECEIVED:
        kind[0] = PERSIST_KIND_RECEIVED;
        break;
    case TX_EVENT_SCORED:
        kind[0] = PERSIST_KIND_SCORED;
        break;
    case TX_EVENT_NOTIFY_SENT:
    case TX_EVENT_NOTIFY_FAILED:
        kind[0] = PERSIST_KIND_NOTIFY;
        break;
    default:
        return tx_err_set(err, TX_EINVAL, "unknown event type %d", (int) ev->type);
    }
    if (ev->event_id[0] == '\0')
        return tx_err_set(err, TX_EINVAL, "empty event_id");
    snprintf(num, sizeof(num), "%u", seq);
    put_raw(&r, num);
    put_raw(&r, kind);
    put_str(&r, "event_id", ev->event_id);
    if (is_tx) {
        put_tx_columns(&r, ev);
        put_verdict(&r, ev);
        for (int i = 0; i < 6; i++)
            put_null(&r); /* template .. at */
        put_upload_facts(&r, ev);
        put_valor(&r, &ev->record);
    }
    else {
        for (int i = 0; i < 15; i++)
            put_null(&r); /* upload_id .. reasons */
        put_notification(&r, ev);
        for (int i = 0; i < 4; i++)
            put_null(&r); /* records .. valor */
    }
    if (r.rc == 0 && r.nfields != PERSIST_STAGE_NCOLUMNS)
        r.rc = tx_err_set(err, TX_EINVAL, "internal error: %u staging fields written, not %d",
                          r.nfields, PERSIST_STAGE_NCOLUMNS);
    if (r.rc == 0)
        r.rc = tx_buf_append(out, "\n", 1);
    if (r.rc != 0) {
        if (r.rc == TX_ETOOBIG || r.rc == TX_ENOMEM)
            tx_err_set(err, r.rc, "staging buffer: %s", tx_status_name(r.rc));
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
    }
    return r.rc;
}

/* ---- error classes ---- */

enum persist_error_class persist_error_class(int rc, const char *sqlstate)
{
    if (rc == TX_EUNAVAIL || rc == TX_ETIMEDOUT)
        return PERSIST_ERR_TRANSIENT;
    if ((rc == TX_EREJECT || rc == TX_EIO) && sqlstate != NULL &&
        (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0))
        return PERSIST_ERR_ROW;
    return PERSIST_ERR_SYSTEMIC;
}
