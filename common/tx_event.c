#include "common/tx_event.h"

#include "common/tx_id.h"
#include "common/tx_record_internal.h"
#include "common/tx_time.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct event_priv {
    struct tx_jdoc doc; /* the parsed event: every string of the event points into it */
    char *record_json;  /* the raw "transaction" member, minified */
};

static const char *const type_names[] = {
    [TX_EVENT_RECEIVED] = "transaction.received",
    [TX_EVENT_SCORED] = "transaction.scored",
    [TX_EVENT_NOTIFY_SENT] = "notification.sent",
    [TX_EVENT_NOTIFY_FAILED] = "notification.failed",
};

const char *tx_event_type_name(enum tx_event_type t)
{
    if (t < TX_EVENT_RECEIVED || t > TX_EVENT_NOTIFY_FAILED)
        return "unknown";
    return type_names[t];
}

void tx_event_id_format(const char *upload_id, size_t index, char out[TX_EVENT_ID_MAX + 1])
{
    snprintf(out, TX_EVENT_ID_MAX + 1, "%s:%zu", upload_id, index);
}

static int put_str(struct tx_buf *out, const char *key, const char *val)
{
    int rc = tx_buf_printf(out, ",\"%s\":", key);

    if (rc == 0)
        rc = tx_buf_json_str(out, val, strlen(val));
    return rc;
}

static int put_time(struct tx_buf *out, const char *key, int64_t ms)
{
    char ts[TX_TIME_FORMAT_LEN];

    tx_time_format_ms(ms, ts, sizeof(ts));
    return tx_buf_printf(out, ",\"%s\":\"%s\"", key, ts);
}

int tx_event_encode_tx(const struct tx_event_head *h, const struct tx_record *rec,
                       const struct tx_verdict *verdict, struct tx_buf *out)
{
    char eid[TX_EVENT_ID_MAX + 1];
    size_t i;
    int rc;

    if (verdict != NULL && !isfinite(verdict->score))
        return TX_EINVAL;
    tx_event_id_format(h->upload_id, h->index, eid);
    rc = tx_buf_printf(out, "{\"type\":\"%s\",\"schema_version\":%d",
                       tx_event_type_name(verdict != NULL ? TX_EVENT_SCORED : TX_EVENT_RECEIVED),
                       TX_EVENT_SCHEMA_VERSION);
    if (rc == 0)
        rc = put_str(out, "event_id", eid);
    if (rc == 0)
        rc = put_str(out, "upload_id", h->upload_id);
    if (rc == 0)
        rc = tx_buf_printf(out, ",\"index\":%zu", h->index);
    if (rc == 0)
        rc = put_str(out, "object", h->object);
    if (rc == 0)
        rc = put_time(out, "received_at", h->received_ms);
    if (rc == 0 && h->records > 0)
        rc = tx_buf_printf(out, ",\"records\":%zu", h->records);
    if (rc == 0 && h->sha256 != NULL)
        rc = put_str(out, "sha256", h->sha256);
    if (rc == 0 && h->sha256 != NULL && h->idempotency_key == NULL)
        rc = tx_buf_puts(out, ",\"idempotency_key\":null");
    else if (rc == 0 && h->idempotency_key != NULL)
        rc = put_str(out, "idempotency_key", h->idempotency_key);
    if (rc == 0)
        rc = tx_buf_puts(out, ",\"transaction\":");
    if (rc == 0)
        rc = tx_buf_append(out, rec->json, rec->json_len);
    if (rc == 0 && verdict != NULL) {
        rc = tx_buf_printf(out, ",\"verdict\":{\"flagged\":%s,\"score\":%.17g,\"reasons\":[",
                           verdict->flagged ? "true" : "false", verdict->score);
        for (i = 0; rc == 0 && i < verdict->nreasons; i++) {
            rc = tx_buf_puts(out, i > 0 ? ",{\"code\":" : "{\"code\":");
            if (rc == 0)
                rc = tx_buf_json_str(out, verdict->reasons[i].code,
                                     strlen(verdict->reasons[i].code));
            if (rc == 0)
                rc = tx_buf_puts(out, ",\"detail\":");
            if (rc == 0)
                rc = tx_buf_json_str(out, verdict->reasons[i].detail,
                                     strlen(verdict->reasons[i].detail));
            if (rc == 0)
                rc = tx_buf_puts(out, "}");
        }
        if (rc == 0)
            rc = tx_buf_puts(out, "]}");
    }
    if (rc == 0)
        rc = tx_buf_puts(out, "}");
    return rc;
}

int tx_event_encode_notification(enum tx_event_type type, const char *event_id,
                                 const char *template_name, const char *to, const char *message_id,
                                 int64_t at_ms, const char *error, struct tx_buf *out)
{
    int rc = tx_buf_printf(out, "{\"type\":\"%s\",\"schema_version\":%d", tx_event_type_name(type),
                           TX_EVENT_SCHEMA_VERSION);

    if (rc == 0)
        rc = put_str(out, "event_id", event_id);
    if (rc == 0)
        rc = put_str(out, "template", template_name);
    if (rc == 0)
        rc = put_str(out, "to", to);
    if (rc == 0)
        rc = put_str(out, "message_id", message_id != NULL ? message_id : "");
    if (rc == 0)
        rc = put_time(out, "at", at_ms);
    if (rc == 0 && (error == NULL || error[0] == '\0'))
        rc = tx_buf_puts(out, ",\"error\":null");
    else if (rc == 0)
        rc = put_str(out, "error", error);
    if (rc == 0)
        rc = tx_buf_puts(out, "}");
    return rc;
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* The event's member key when it is a string of at most maxlen bytes (NULL and err otherwise). */
static const char *get_str(const struct tx_jdoc *d, const char *key, size_t maxlen,
                           struct tx_err *err)
{
    size_t len;
    const char *s = tx_jdoc_str(d, tx_jdoc_get(d, 0, key), &len);

    if (s == NULL) {
        tx_err_set(err, TX_EINVAL, "event field \"%s\" is missing or not a string", key);
        return NULL;
    }
    if (len > maxlen) {
        tx_err_set(err, TX_EINVAL, "event field \"%s\" is longer than %zu bytes", key, maxlen);
        return NULL;
    }
    return s;
}

static int decode_verdict(const struct tx_jdoc *d, struct tx_verdict *vd, struct tx_err *err)
{
    uint32_t v = tx_jdoc_get(d, 0, "verdict");
    uint32_t reasons;
    uint32_t r;
    enum tx_jtype flagged;
    enum tx_jtype score;
    const char *s;
    size_t n;

    if (tx_jdoc_type(d, v) != TX_JOBJECT)
        return tx_err_set(err, TX_EINVAL, "transaction.scored without a \"verdict\" object");
    flagged = tx_jdoc_type(d, tx_jdoc_get(d, v, "flagged"));
    score = tx_jdoc_type(d, tx_jdoc_get(d, v, "score"));
    reasons = tx_jdoc_get(d, v, "reasons");
    if ((flagged != TX_JTRUE && flagged != TX_JFALSE) || (score != TX_JINT && score != TX_JREAL) ||
        tx_jdoc_type(d, reasons) != TX_JARRAY)
        return tx_err_set(err, TX_EINVAL,
                          "verdict needs \"flagged\" (boolean), \"score\" (number) and \"reasons\" "
                          "(array)");
    vd->flagged = flagged == TX_JTRUE;
    vd->score = tx_jdoc_num(d, tx_jdoc_get(d, v, "score"));
    if (d->nodes[reasons].count > TX_REASONS_MAX)
        return tx_err_set(err, TX_EINVAL, "verdict has more than %d reasons", TX_REASONS_MAX);
    vd->nreasons = d->nodes[reasons].count;
    r = reasons + 1;
    for (size_t i = 0; i < vd->nreasons; i++, r = d->nodes[r].next) {
        size_t clen;
        const char *code = tx_jdoc_str(d, tx_jdoc_get(d, r, "code"), &clen);

        s = tx_jdoc_str(d, tx_jdoc_get(d, r, "detail"), &n);
        if (code == NULL || s == NULL || clen >= sizeof(vd->reasons[i].code))
            return tx_err_set(err, TX_EINVAL, "verdict reason %zu needs string code and detail", i);
        memcpy(vd->reasons[i].code, code, clen + 1);
        /* A longer detail is cut at a character boundary, so it stays valid UTF-8. */
        if (n >= sizeof(vd->reasons[i].detail)) {
            n = sizeof(vd->reasons[i].detail) - 1;
            while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                n--;
        }
        memcpy(vd->reasons[i].detail, s, n);
        vd->reasons[i].detail[n] = '\0';
    }
    return 0;
}

static int decode_tx(const char *buf, struct event_priv *p, struct tx_event *ev, struct tx_err *err)
{
    const struct tx_jdoc *d = &p->doc;
    const char *s;
    uint32_t index;
    uint32_t txn;
    uint32_t v;
    struct tx_time t;
    struct tx_err terr;
    struct tx_violation viol;
    size_t nv = 0;
    size_t len;
    char expect[TX_EVENT_ID_MAX + 1];

    s = get_str(d, "upload_id", 36, err);
    if (s == NULL)
        return TX_EINVAL;
    if (!tx_uuid7_valid(s))
        return tx_err_set(err, TX_EINVAL, "upload_id \"%s\" is not a UUIDv7", s);
    snprintf(ev->upload_id, sizeof(ev->upload_id), "%s", s);
    ev->head.upload_id = ev->upload_id;
    /* An event holding a huge integer elsewhere is read with every integer as a real. */
    index = tx_jdoc_get(d, 0, "index");
    if (tx_jdoc_type(d, index) == TX_JINT && d->nodes[index].num.i >= 0)
        ev->head.index = (size_t) d->nodes[index].num.i;
    else if (tx_jdoc_type(d, index) == TX_JREAL && d->nodes[index].num.d >= 0 &&
             d->nodes[index].num.d <= 9007199254740992.0 &&
             d->nodes[index].num.d == floor(d->nodes[index].num.d))
        ev->head.index = (size_t) d->nodes[index].num.d;
    else
        return tx_err_set(err, TX_EINVAL, "event field \"index\" must be an integer >= 0");
    tx_event_id_format(ev->upload_id, ev->head.index, expect);
    if (strcmp(expect, ev->event_id) != 0)
        return tx_err_set(err, TX_EINVAL, "event_id \"%s\" does not match upload_id:index \"%s\"",
                          ev->event_id, expect);
    ev->head.object = get_str(d, "object", 1024, err);
    if (ev->head.object == NULL)
        return TX_EINVAL;
    s = get_str(d, "received_at", 64, err);
    if (s == NULL)
        return TX_EINVAL;
    if (tx_time_parse(s, strlen(s), &t, &terr) != 0)
        return tx_err_set(err, TX_EINVAL, "received_at: %s", terr.msg);
    ev->head.received_ms = tx_time_to_ms(&t);

    /* Optional facts about the whole upload. */
    v = tx_jdoc_get(d, 0, "records");
    if (tx_jdoc_type(d, v) == TX_JINT && d->nodes[v].num.i > 0)
        ev->head.records = (size_t) d->nodes[v].num.i;
    s = tx_jdoc_str(d, tx_jdoc_get(d, 0, "sha256"), &len);
    if (s != NULL && len == 64)
        ev->head.sha256 = s;
    s = tx_jdoc_str(d, tx_jdoc_get(d, 0, "idempotency_key"), &len);
    if (s != NULL && len <= 200)
        ev->head.idempotency_key = s;

    txn = tx_jdoc_get(d, 0, "transaction");
    if (txn == TX_JDOC_NONE)
        return tx_err_set(err, TX_EINVAL, "event has no \"transaction\"");
    if (tx_record_from_jdoc(d, txn, ev->head.index, 0, &ev->record, &viol, 1, &nv) > 0)
        return tx_err_set(err, TX_EINVAL, "invalid transaction: %s: %s", viol.field, viol.message);
    p->record_json = tx_json_minify(buf + d->nodes[txn].start,
                                    d->nodes[txn].end - d->nodes[txn].start, &ev->record.json_len);
    if (p->record_json == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    ev->record.json = p->record_json;
    if (ev->type == TX_EVENT_SCORED) {
        ev->has_verdict = true;
        return decode_verdict(d, &ev->verdict, err);
    }
    return 0;
}

static int decode_notification(const struct tx_jdoc *d, struct tx_event *ev, struct tx_err *err)
{
    ev->template_name = get_str(d, "template", 64, err);
    ev->to = ev->template_name != NULL ? get_str(d, "to", 254, err) : NULL;
    ev->message_id = ev->to != NULL ? get_str(d, "message_id", 512, err) : NULL;
    ev->at = ev->message_id != NULL ? get_str(d, "at", 64, err) : NULL;
    if (ev->at == NULL)
        return TX_EINVAL;
    if (tx_jdoc_type(d, tx_jdoc_get(d, 0, "error")) == TX_JNULL) {
        ev->error = "";
        return 0;
    }
    ev->error = get_str(d, "error", 4096, err);
    return ev->error != NULL ? 0 : TX_EINVAL;
}

int tx_event_decode(const char *buf, size_t len, struct tx_event **out, struct tx_err *err)
{
    struct tx_event *ev = NULL;
    struct event_priv *p = NULL;
    const char *s;
    int t;
    int rc;

    *out = NULL;
    ev = calloc(1, sizeof(*ev));
    p = calloc(1, sizeof(*p));
    if (ev == NULL || p == NULL) {
        free(p);
        rc = tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    ev->priv = p;
    rc = tx_jdoc_parse(&p->doc, buf, len, err);
    if (rc != 0)
        goto out;
    if (p->doc.nodes[0].type != TX_JOBJECT) {
        rc = tx_err_set(err, TX_EINVAL, "an event must be a JSON object");
        goto out;
    }
    s = get_str(&p->doc, "type", 64, err);
    if (s == NULL) {
        rc = TX_EINVAL;
        goto out;
    }
    for (t = TX_EVENT_RECEIVED; t <= TX_EVENT_NOTIFY_FAILED; t++) {
        if (strcmp(s, type_names[t]) == 0)
            ev->type = (enum tx_event_type) t;
    }
    if (ev->type == 0) {
        rc = tx_err_set(err, TX_EINVAL, "unknown event type \"%s\"", s);
        goto out;
    }
    s = get_str(&p->doc, "event_id", TX_EVENT_ID_MAX, err);
    if (s == NULL) {
        rc = TX_EINVAL;
        goto out;
    }
    snprintf(ev->event_id, sizeof(ev->event_id), "%s", s);
    if (ev->type == TX_EVENT_RECEIVED || ev->type == TX_EVENT_SCORED)
        rc = decode_tx(buf, p, ev, err);
    else
        rc = decode_notification(&p->doc, ev, err);
    if (rc != 0)
        goto out;
    *out = ev;
    ev = NULL;
out:
    tx_event_destroy(ev);
    return rc;
}

void tx_event_destroy(struct tx_event *ev)
{
    struct event_priv *p;

    if (ev == NULL)
        return;
    p = ev->priv;
    if (p != NULL) {
        tx_jdoc_cleanup(&p->doc);
        free(p->record_json);
        free(p);
    }
    free(ev);
}
