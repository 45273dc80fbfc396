/*
 * libFuzzer harness: the event decoder (tx_event_decode), what every consumer runs on each
 * message taken from RabbitMQ.
 *
 * Invariants:
 * - the result is 0, TX_EINVAL or TX_ESYNTAX; *out is non-NULL exactly on 0;
 * - on 0, transaction events: upload_id is a UUIDv7, event_id is "<upload_id>:<index>", the
 *   record's fields are non-NULL and its json is a valid record on its own; encoding the event
 *   again (tx_event_encode_tx) and decoding that gives the same event (type, ids, index,
 *   received_ms, record json, verdict);
 * - on 0, notification events: template, to, message_id, at and error are non-NULL; when "at"
 *   is a timestamp, encoding again and decoding gives the same fields.
 */
#include "common/tx_buf.h"
#include "common/tx_event.h"
#include "common/tx_id.h"
#include "common/tx_time.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

static int decode(const char *buf, size_t len, struct tx_event **ev)
{
    struct tx_err err;
    int rc;

    memset(&err, 0, sizeof(err));
    *ev = (struct tx_event *) 1;
    rc = tx_event_decode(buf, len, ev, &err);
    FUZZ_CHECK(rc == 0 || rc == TX_EINVAL || rc == TX_ESYNTAX);
    FUZZ_CHECK((*ev != NULL) == (rc == 0));
    FUZZ_CHECK(rc == 0 || (err.code == rc && err.msg[0] != '\0'));
    FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
    return rc;
}

static void check_tx(const struct tx_event *ev)
{
    char eid[TX_EVENT_ID_MAX + 1];
    struct tx_violation v[2];
    struct tx_err err;
    const struct tx_record *r = &ev->record;
    struct tx_event *ev2 = NULL;
    struct tx_buf b;
    size_t nv = 0;
    size_t i;

    FUZZ_CHECK(tx_uuid7_valid(ev->upload_id));
    FUZZ_CHECK(ev->head.upload_id == ev->upload_id);
    tx_event_id_format(ev->upload_id, ev->head.index, eid);
    FUZZ_CHECK(strcmp(eid, ev->event_id) == 0);
    FUZZ_CHECK(ev->head.object != NULL);
    FUZZ_CHECK(r->id != NULL && r->cliente != NULL && r->email != NULL && r->endereco != NULL &&
               r->datatrasancao != NULL && r->json != NULL);
    FUZZ_CHECK(r->json_len == strlen(r->json));
    FUZZ_CHECK(tx_record_check(r->json, r->json_len, v, 2, &nv, &err) == 0);
    FUZZ_CHECK(ev->has_verdict == (ev->type == TX_EVENT_SCORED));
    FUZZ_CHECK(!ev->has_verdict || ev->verdict.nreasons <= TX_REASONS_MAX);

    /* Encode it again, decode that: the same event. */
    tx_buf_init(&b, 1u << 24);
    FUZZ_CHECK(tx_event_encode_tx(&ev->head, r, ev->has_verdict ? &ev->verdict : NULL, &b) == 0);
    FUZZ_CHECK(decode(b.data, b.len, &ev2) == 0);
    FUZZ_CHECK(ev2->type == ev->type);
    FUZZ_CHECK(strcmp(ev2->event_id, ev->event_id) == 0);
    FUZZ_CHECK(strcmp(ev2->upload_id, ev->upload_id) == 0);
    FUZZ_CHECK(ev2->head.index == ev->head.index);
    FUZZ_CHECK(strcmp(ev2->head.object, ev->head.object) == 0);
    FUZZ_CHECK(ev2->head.received_ms == ev->head.received_ms);
    FUZZ_CHECK(ev2->head.records == ev->head.records);
    FUZZ_CHECK((ev2->head.sha256 == NULL) == (ev->head.sha256 == NULL));
    FUZZ_CHECK(ev2->record.json_len == r->json_len && strcmp(ev2->record.json, r->json) == 0);
    FUZZ_CHECK(strcmp(ev2->record.id, r->id) == 0);
    FUZZ_CHECK(ev2->record.ts_ms == r->ts_ms);
    if (ev->has_verdict) {
        FUZZ_CHECK(ev2->verdict.flagged == ev->verdict.flagged);
        FUZZ_CHECK(ev2->verdict.score == ev->verdict.score);
        FUZZ_CHECK(ev2->verdict.nreasons == ev->verdict.nreasons);
        for (i = 0; i < ev->verdict.nreasons; i++) {
            FUZZ_CHECK(strcmp(ev2->verdict.reasons[i].code, ev->verdict.reasons[i].code) == 0);
            FUZZ_CHECK(strcmp(ev2->verdict.reasons[i].detail, ev->verdict.reasons[i].detail) == 0);
        }
    }
    tx_event_destroy(ev2);
    tx_buf_cleanup(&b);
}

static void check_notification(const struct tx_event *ev)
{
    struct tx_event *ev2 = NULL;
    struct tx_time t;
    struct tx_err err;
    struct tx_time t2;
    struct tx_buf b;

    FUZZ_CHECK(ev->template_name != NULL && ev->to != NULL && ev->message_id != NULL &&
               ev->at != NULL && ev->error != NULL);
    if (tx_time_parse(ev->at, strlen(ev->at), &t, &err) != 0)
        return;
    tx_buf_init(&b, 1u << 20);
    FUZZ_CHECK(tx_event_encode_notification(ev->type, ev->event_id, ev->template_name, ev->to,
                                            ev->message_id, tx_time_to_ms(&t), ev->error, &b) == 0);
    FUZZ_CHECK(decode(b.data, b.len, &ev2) == 0);
    FUZZ_CHECK(ev2->type == ev->type);
    FUZZ_CHECK(strcmp(ev2->event_id, ev->event_id) == 0);
    FUZZ_CHECK(strcmp(ev2->template_name, ev->template_name) == 0);
    FUZZ_CHECK(strcmp(ev2->to, ev->to) == 0);
    FUZZ_CHECK(strcmp(ev2->message_id, ev->message_id) == 0);
    FUZZ_CHECK(strcmp(ev2->error, ev->error) == 0);
    FUZZ_CHECK(tx_time_parse(ev2->at, strlen(ev2->at), &t2, &err) == 0);
    FUZZ_CHECK(tx_time_to_ms(&t2) == tx_time_to_ms(&t));
    tx_event_destroy(ev2);
    tx_buf_cleanup(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tx_event *ev = NULL;

    if (decode((const char *) data, size, &ev) != 0)
        return 0;
    FUZZ_CHECK(ev->type >= TX_EVENT_RECEIVED && ev->type <= TX_EVENT_NOTIFY_FAILED);
    if (ev->type == TX_EVENT_RECEIVED || ev->type == TX_EVENT_SCORED)
        check_tx(ev);
    else
        check_notification(ev);
    tx_event_destroy(ev);
    return 0;
}
