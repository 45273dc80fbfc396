/*
 * Unit tests for the event codec (common/tx_event.h, ARCHITECTURE §6): transaction.received and
 * transaction.scored built from the real seed records, notification.* events, and the decoder's
 * rejections.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tx_event.h"
#include "common/tx_id.h"
#include "common/tx_record.h"
#include "common/tx_time.h"

#define SEED_MS     1710158400000LL
#define RECEIVED_MS (SEED_MS + 123)
#define RECEIVED_AT "2024-03-11T12:00:00.123Z"
#define BUF_MAX     (1u << 20)

/* ---- helpers ------------------------------------------------------------------------------- */

static char *read_seed(const char *name, size_t *len)
{
    const char *dir = getenv("TX_SEED_DIR");
    char path[4096];
    FILE *f;
    char *buf;
    long n;

    if (dir == NULL)
        fail_msg("TX_SEED_DIR is not set (ctest sets it)");
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    buf = malloc((size_t) n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t) n;
    return buf;
}

/* The one record of a seed file; the caller destroys the batch. */
static struct tx_batch *seed_batch(const char *name)
{
    size_t len;
    char *buf = read_seed(name, &len);
    struct tx_batch *b = NULL;
    struct tx_err err;

    tx_err_clear(&err);
    if (tx_batch_parse(buf, len, TX_FORMAT_AUTO, NULL, &b, &err) != 0)
        fail_msg("%s: %s", name, err.msg);
    free(buf);
    assert_int_equal(b->nrecords, 1);
    return b;
}

static struct tx_batch *batch_of(const char *s)
{
    struct tx_batch *b = NULL;
    struct tx_err err;

    tx_err_clear(&err);
    if (tx_batch_parse(s, strlen(s), TX_FORMAT_AUTO, NULL, &b, &err) != 0)
        fail_msg("batch '%s': %s", s, err.msg);
    return b;
}

static void new_upload_id(char uid[TX_UUID_STR_LEN + 1])
{
    assert_int_equal(tx_uuid7_make(tx_time_now_ms(), uid), 0);
    assert_true(tx_uuid7_valid(uid));
}

/* Encodes rec (scored when v is not NULL) and returns the JSON text (caller frees). */
static char *encode_tx(const char *uid, size_t index, const struct tx_record *rec,
                       const struct tx_verdict *v)
{
    struct tx_event_head h = { 0 };
    struct tx_buf out;
    char object[128];
    int rc;

    snprintf(object, sizeof(object), "raw/2024/03/11/%s.json", uid);
    h.upload_id = uid;
    h.index = index;
    h.object = object;
    h.received_ms = RECEIVED_MS;
    tx_buf_init(&out, BUF_MAX);
    rc = tx_event_encode_tx(&h, rec, v, &out);
    assert_int_equal(rc, 0);
    assert_non_null(out.data);
    assert_int_equal(strlen(out.data), out.len);
    return tx_buf_steal(&out, NULL);
}

static struct tx_event *decode_ok(const char *s)
{
    struct tx_event *ev = (struct tx_event *) 0x1;
    struct tx_err err;
    int rc;

    tx_err_clear(&err);
    rc = tx_event_decode(s, strlen(s), &ev, &err);
    if (rc != 0)
        fail_msg("decode failed (%s: %s) for %s", tx_status_name(rc), err.msg, s);
    assert_non_null(ev);
    return ev;
}

/* The decoder must refuse s with want (and a message); *out stays NULL. */
static void decode_reject(const char *s, int want, const char *why)
{
    struct tx_event *ev = (struct tx_event *) 0x1;
    struct tx_err err;
    int rc;

    tx_err_clear(&err);
    rc = tx_event_decode(s, strlen(s), &ev, &err);
    if (rc != want) {
        if (rc == 0)
            tx_event_destroy(ev);
        fail_msg("%s: expected %s, got %s (%s) for %s", why, tx_status_name(want),
                 tx_status_name(rc), err.msg, s);
    }
    assert_null(ev);
    assert_int_equal(err.code, want);
    assert_true(err.msg[0] != '\0');
}

/*
 * A copy of the event JSON s with member path ("key" or "outer.key") set to the JSON value
 * val, or removed when val is NULL. Caller frees.
 */
static char *mutate(const char *s, const char *path, const char *val)
{
    json_error_t je;
    json_t *root = json_loads(s, 0, &je);
    json_t *obj = root;
    const char *dot = strchr(path, '.');
    char outer[64];
    const char *key = path;
    char *out;

    if (root == NULL)
        fail_msg("mutate: base does not parse: %s", je.text);
    if (dot != NULL) {
        snprintf(outer, sizeof(outer), "%.*s", (int) (dot - path), path);
        obj = json_object_get(root, outer);
        assert_non_null(obj);
        key = dot + 1;
    }
    if (val == NULL) {
        json_object_del(obj, key);
    }
    else {
        json_t *v = json_loads(val, JSON_DECODE_ANY, &je);

        if (v == NULL)
            fail_msg("mutate: value '%s' does not parse: %s", val, je.text);
        assert_int_equal(json_object_set_new(obj, key, v), 0);
    }
    out = json_dumps(root, JSON_COMPACT);
    assert_non_null(out);
    json_decref(root);
    return out;
}

static void reject_mutation(const char *base, const char *path, const char *val, const char *why)
{
    char *s = mutate(base, path, val);

    decode_reject(s, TX_EINVAL, why);
    free(s);
}

static void accept_mutation(const char *base, const char *path, const char *val)
{
    char *s = mutate(base, path, val);

    tx_event_destroy(decode_ok(s));
    free(s);
}

static void assert_record_equal(const struct tx_record *a, const struct tx_record *b)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->is_active, b->is_active);
    assert_string_equal(a->cliente, b->cliente);
    assert_string_equal(a->email, b->email);
    assert_string_equal(a->endereco, b->endereco);
    assert_string_equal(a->datatrasancao, b->datatrasancao);
    assert_int_equal(a->ts_ms, b->ts_ms);
    assert_int_equal(a->has_valor, b->has_valor);
    if (a->has_valor)
        assert_true(a->valor == b->valor);
    assert_int_equal(a->json_len, b->json_len);
    assert_memory_equal(a->json, b->json, a->json_len);
    assert_int_equal(strlen(a->json), a->json_len);
}

static void check_head(const struct tx_event *ev, const char *uid, size_t index)
{
    char eid[TX_EVENT_ID_MAX + 1];
    char object[128];

    snprintf(eid, sizeof(eid), "%s:%zu", uid, index);
    snprintf(object, sizeof(object), "raw/2024/03/11/%s.json", uid);
    assert_string_equal(ev->event_id, eid);
    assert_string_equal(ev->upload_id, uid);
    assert_string_equal(ev->head.upload_id, uid);
    assert_int_equal(ev->head.index, index);
    assert_string_equal(ev->head.object, object);
    assert_int_equal(ev->head.received_ms, RECEIVED_MS);
}

static void fill_verdict(struct tx_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->flagged = true;
    v->score = 0.75;
    v->nreasons = 3;
    snprintf(v->reasons[0].code, sizeof(v->reasons[0].code), "ADDRESS_CHANGE");
    snprintf(v->reasons[0].detail, sizeof(v->reasons[0].detail),
             "endereco mudou de \"Cidade A\" para \"Cidade B\" em 60 s\n");
    snprintf(v->reasons[1].code, sizeof(v->reasons[1].code), "VELOCITY");
    snprintf(v->reasons[1].detail, sizeof(v->reasons[1].detail),
             "\xc3\xa3 \xf0\x9f\x98\x80 back\\slash tab\t ctl\x01 end");
    snprintf(v->reasons[2].code, sizeof(v->reasons[2].code), "INACTIVE_ACCOUNT");
    v->reasons[2].detail[0] = '\0';
}

/* ---- transaction events -------------------------------------------------------------------- */

static void check_received_seed(const char *name, size_t index)
{
    struct tx_batch *b = seed_batch(name);
    const struct tx_record *rec = &b->records[0];
    char uid[TX_UUID_STR_LEN + 1];
    char *s;
    char *needle;
    struct tx_event *ev;
    json_t *j;
    json_error_t je;

    new_upload_id(uid);
    s = encode_tx(uid, index, rec, NULL);

    /* the wire form: every §6 member, "transaction" embedded byte for byte */
    j = json_loads(s, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        fail_msg("encoded event is no JSON (%s): %s", je.text, s);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "transaction.received");
    assert_int_equal(json_integer_value(json_object_get(j, "schema_version")),
                     TX_EVENT_SCHEMA_VERSION);
    assert_string_equal(json_string_value(json_object_get(j, "upload_id")), uid);
    assert_int_equal(json_integer_value(json_object_get(j, "index")), index);
    assert_string_equal(json_string_value(json_object_get(j, "received_at")), RECEIVED_AT);
    assert_true(json_is_object(json_object_get(j, "transaction")));
    assert_null(json_object_get(j, "verdict"));
    json_decref(j);
    needle = malloc(rec->json_len + 32);
    assert_non_null(needle);
    snprintf(needle, rec->json_len + 32, "\"transaction\":%s", rec->json);
    assert_non_null(strstr(s, needle));
    free(needle);

    ev = decode_ok(s);
    assert_int_equal(ev->type, TX_EVENT_RECEIVED);
    check_head(ev, uid, index);
    assert_record_equal(&ev->record, rec);
    assert_false(ev->has_verdict);
    tx_event_destroy(ev);
    free(s);
    tx_batch_destroy(b);
}

static void test_received_round_trip(void **state)
{
    (void) state;
    check_received_seed("Dados.json", 0);
    check_received_seed("Dados - Fraude1.json", 0);
    check_received_seed("Dados - Fraude1.json", 41);
}

static void test_scored_round_trip(void **state)
{
    struct tx_batch *b = seed_batch("Dados - Fraude1.json");
    const struct tx_record *rec = &b->records[0];
    struct tx_verdict v;
    char uid[TX_UUID_STR_LEN + 1];
    struct tx_event *ev;
    char *s;
    size_t i;

    (void) state;
    new_upload_id(uid);
    fill_verdict(&v);
    s = encode_tx(uid, 7, rec, &v);
    ev = decode_ok(s);
    assert_int_equal(ev->type, TX_EVENT_SCORED);
    check_head(ev, uid, 7);
    assert_record_equal(&ev->record, rec);
    assert_true(ev->has_verdict);
    assert_int_equal(ev->verdict.flagged, v.flagged);
    assert_true(ev->verdict.score == v.score);
    assert_int_equal(ev->verdict.nreasons, v.nreasons);
    for (i = 0; i < v.nreasons; i++) {
        assert_string_equal(ev->verdict.reasons[i].code, v.reasons[i].code);
        assert_string_equal(ev->verdict.reasons[i].detail, v.reasons[i].detail);
    }
    tx_event_destroy(ev);
    free(s);

    /* not flagged, no reasons, score 0 */
    memset(&v, 0, sizeof(v));
    s = encode_tx(uid, 0, rec, &v);
    ev = decode_ok(s);
    assert_int_equal(ev->type, TX_EVENT_SCORED);
    assert_true(ev->has_verdict);
    assert_false(ev->verdict.flagged);
    assert_true(ev->verdict.score == 0.0);
    assert_int_equal(ev->verdict.nreasons, 0);
    tx_event_destroy(ev);
    free(s);

    /* the most reasons allowed */
    fill_verdict(&v);
    v.nreasons = TX_REASONS_MAX;
    for (i = 0; i < TX_REASONS_MAX; i++)
        snprintf(v.reasons[i].code, sizeof(v.reasons[i].code), "CODE_%zu", i);
    s = encode_tx(uid, 1, rec, &v);
    ev = decode_ok(s);
    assert_int_equal(ev->verdict.nreasons, TX_REASONS_MAX);
    assert_string_equal(ev->verdict.reasons[TX_REASONS_MAX - 1].code, "CODE_15");
    tx_event_destroy(ev);
    free(s);
    tx_batch_destroy(b);
}

static void test_scored_score_precision(void **state)
{
    /* the score is a double; what the fraud consumer computed is what the others read */
    static const double scores[] = { 0.123456789, 1.0 / 3.0, 123456.5, 87.65432 };
    struct tx_batch *b = seed_batch("Dados.json");
    struct tx_verdict v;
    char uid[TX_UUID_STR_LEN + 1];
    size_t i;

    (void) state;
    new_upload_id(uid);
    for (i = 0; i < sizeof(scores) / sizeof(scores[0]); i++) {
        char *s;
        struct tx_event *ev = NULL;
        struct tx_err err;
        double got = -1;
        int rc;

        fill_verdict(&v);
        v.score = scores[i];
        s = encode_tx(uid, 0, &b->records[0], &v);
        tx_err_clear(&err);
        rc = tx_event_decode(s, strlen(s), &ev, &err);
        if (rc == 0)
            got = ev->verdict.score;
        tx_event_destroy(ev);
        free(s);
        /* release everything before failing, so ASan reports no leak of the test's own */
        if (rc != 0 || got != scores[i]) {
            tx_batch_destroy(b);
            fail_msg("score %.17g came back as %.17g (%s)", scores[i], got, err.msg);
        }
    }
    tx_batch_destroy(b);
}

static void test_scored_output_is_json(void **state)
{
    /* whatever a reason code holds, the encoder writes JSON that decodes to the same code */
    struct tx_batch *b = seed_batch("Dados.json");
    struct tx_verdict v;
    char uid[TX_UUID_STR_LEN + 1];
    struct tx_event *ev = NULL;
    struct tx_err err;
    char *s;
    int same;
    int rc;

    (void) state;
    new_upload_id(uid);
    fill_verdict(&v);
    snprintf(v.reasons[0].code, sizeof(v.reasons[0].code), "RULE\"7\\x");
    s = encode_tx(uid, 0, &b->records[0], &v);
    tx_batch_destroy(b);
    tx_err_clear(&err);
    rc = tx_event_decode(s, strlen(s), &ev, &err);
    if (rc != 0) {
        print_message("%s\n", s);
        free(s);
        fail_msg("reason code with a quote and a backslash: %s (%s)", tx_status_name(rc), err.msg);
    }
    free(s);
    same = strcmp(ev->verdict.reasons[0].code, "RULE\"7\\x") == 0;
    tx_event_destroy(ev);
    assert_true(same);
}

static void test_scored_nonfinite_score(void **state)
{
    /* a NaN/infinite score must not produce a body no consumer can parse: either the encoder
     * refuses it or what it writes decodes */
    static const double bad[] = { NAN, INFINITY, -INFINITY };
    struct tx_batch *b = seed_batch("Dados.json");
    struct tx_event_head h = { 0 };
    struct tx_verdict v;
    char uid[TX_UUID_STR_LEN + 1];
    size_t i;

    (void) state;
    new_upload_id(uid);
    h.upload_id = uid;
    h.index = 0;
    h.object = "raw/x.json";
    h.received_ms = RECEIVED_MS;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tx_buf out;
        struct tx_event *ev = NULL;
        struct tx_err err;
        int rc;

        fill_verdict(&v);
        v.score = bad[i];
        tx_buf_init(&out, BUF_MAX);
        rc = tx_event_encode_tx(&h, &b->records[0], &v, &out);
        if (rc == 0) {
            tx_err_clear(&err);
            rc = tx_event_decode(out.data, out.len, &ev, &err);
            tx_event_destroy(ev);
            if (rc != 0) {
                print_message("%s\n", out.data);
                tx_buf_cleanup(&out);
                tx_batch_destroy(b);
                fail_msg("score %g encoded as undecodable JSON (%s)", bad[i], err.msg);
            }
        }
        tx_buf_cleanup(&out);
    }
    tx_batch_destroy(b);
}

static void test_huge_integer_valor_round_trip(void **state)
{
    /* The upload parser accepts a valor of 123456789012345678901234567890 (§3: a number). The
     * event carrying that record must decode: the integers of the event itself ("index",
     * "schema_version") stay integers. */
    static const char up[] = "[{\"_id\":\"c1\",\"isActive\":true,\"cliente\":\"C\",\"email\":"
                             "\"a@b.co\",\"endereco\":\"E\",\"datatrasancao\":"
                             "\"2024-03-11T12:00:00Z\",\"valor\":123456789012345678901234567890}]";
    struct tx_batch *b = batch_of(up);
    char uid[TX_UUID_STR_LEN + 1];
    struct tx_event *ev = NULL;
    struct tx_err err;
    char *s;
    int rc;

    (void) state;
    assert_true(b->records[0].has_valor);
    new_upload_id(uid);
    s = encode_tx(uid, 3, &b->records[0], NULL);
    tx_err_clear(&err);
    rc = tx_event_decode(s, strlen(s), &ev, &err);
    if (rc != 0) {
        print_message("%s\n", s);
        free(s);
        tx_batch_destroy(b);
        fail_msg("event with a huge integer valor: %s (%s)", tx_status_name(rc), err.msg);
    }
    check_head(ev, uid, 3);
    assert_record_equal(&ev->record, &b->records[0]);
    tx_event_destroy(ev);
    free(s);
    tx_batch_destroy(b);
}

static void test_record_with_extras_round_trip(void **state)
{
    /* extra members, escapes and non-ASCII text travel unchanged in "transaction" */
    static const char up[] =
        "[ { \"_id\" : \"c-9\", \"isActive\" : false, \"cliente\" : \"Jo\\u00e3o \\\"Z\\\"\","
        "\r\n \"email\" : \"j@x.com.br\", \"endereco\" : \"Rua \xc3\xa3 \xf0\x9f\x98\x80, 10\","
        " \"datatrasancao\" : \"2024-03-11T09:00:00-03:00\", \"valor\" : 0.5,"
        " \"extra\" : { \"k\" : [ 1, null, \"a, b\" ] } } ]";
    struct tx_batch *b = batch_of(up);
    char uid[TX_UUID_STR_LEN + 1];
    struct tx_verdict v;
    struct tx_event *ev;
    char *s;

    (void) state;
    new_upload_id(uid);
    fill_verdict(&v);
    s = encode_tx(uid, 12, &b->records[0], &v);
    ev = decode_ok(s);
    assert_int_equal(ev->type, TX_EVENT_SCORED);
    check_head(ev, uid, 12);
    assert_record_equal(&ev->record, &b->records[0]);
    assert_true(ev->record.valor == 0.5);
    assert_string_equal(ev->record.cliente, "Jo\xc3\xa3o \"Z\"");
    tx_event_destroy(ev);
    free(s);
    tx_batch_destroy(b);
}

static void test_encode_limit(void **state)
{
    struct tx_batch *b = seed_batch("Dados.json");
    char uid[TX_UUID_STR_LEN + 1];
    struct tx_event_head h = { 0 };
    struct tx_buf out;

    (void) state;
    new_upload_id(uid);
    h.upload_id = uid;
    h.index = 0;
    h.object = "raw/x.json";
    h.received_ms = RECEIVED_MS;
    tx_buf_init(&out, 100);
    assert_int_equal(tx_event_encode_tx(&h, &b->records[0], NULL, &out), TX_ETOOBIG);
    assert_true(out.len <= 100);
    tx_buf_cleanup(&out);
    tx_batch_destroy(b);
}

static void test_event_id_and_names(void **state)
{
    char eid[TX_EVENT_ID_MAX + 1];
    char uid[TX_UUID_STR_LEN + 1];
    char expect[128];

    (void) state;
    new_upload_id(uid);
    tx_event_id_format(uid, 0, eid);
    snprintf(expect, sizeof(expect), "%s:0", uid);
    assert_string_equal(eid, expect);
    tx_event_id_format(uid, SIZE_MAX, eid);
    snprintf(expect, sizeof(expect), "%s:%zu", uid, (size_t) SIZE_MAX);
    assert_string_equal(eid, expect);

    assert_string_equal(tx_event_type_name(TX_EVENT_RECEIVED), "transaction.received");
    assert_string_equal(tx_event_type_name(TX_EVENT_SCORED), "transaction.scored");
    assert_string_equal(tx_event_type_name(TX_EVENT_NOTIFY_SENT), "notification.sent");
    assert_string_equal(tx_event_type_name(TX_EVENT_NOTIFY_FAILED), "notification.failed");
    assert_string_equal(tx_event_type_name((enum tx_event_type) 0), "unknown");
    assert_string_equal(tx_event_type_name((enum tx_event_type) 99), "unknown");
}

/* ---- notification events ------------------------------------------------------------------- */

static char *encode_notification(enum tx_event_type t, const char *eid, const char *tmpl,
                                 const char *to, const char *mid, const char *error)
{
    struct tx_buf out;

    tx_buf_init(&out, BUF_MAX);
    assert_int_equal(tx_event_encode_notification(t, eid, tmpl, to, mid, RECEIVED_MS, error, &out),
                     0);
    return tx_buf_steal(&out, NULL);
}

static void test_notification_round_trip(void **state)
{
    char uid[TX_UUID_STR_LEN + 1];
    char eid[TX_EVENT_ID_MAX + 1];
    char mid[128];
    struct tx_event *ev;
    char *s;
    json_t *j;

    (void) state;
    new_upload_id(uid);
    tx_event_id_format(uid, 3, eid);
    snprintf(mid, sizeof(mid), "<%s.3.receipt@txpipe>", uid);

    s = encode_notification(TX_EVENT_NOTIFY_SENT, eid, "receipt", "clientefulanoo@example.com", mid,
                            NULL);
    j = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "notification.sent");
    assert_int_equal(json_integer_value(json_object_get(j, "schema_version")),
                     TX_EVENT_SCHEMA_VERSION);
    json_decref(j);
    ev = decode_ok(s);
    assert_int_equal(ev->type, TX_EVENT_NOTIFY_SENT);
    assert_string_equal(ev->event_id, eid);
    assert_string_equal(ev->template_name, "receipt");
    assert_string_equal(ev->to, "clientefulanoo@example.com");
    assert_string_equal(ev->message_id, mid);
    assert_string_equal(ev->at, RECEIVED_AT);
    assert_string_equal(ev->error, "");
    tx_event_destroy(ev);
    free(s);

    s = encode_notification(TX_EVENT_NOTIFY_SENT, eid, "receipt", "a@b.c", mid, "");
    ev = decode_ok(s);
    assert_string_equal(ev->error, "");
    tx_event_destroy(ev);
    free(s);

    s = encode_notification(TX_EVENT_NOTIFY_FAILED, eid, "fraud_alert", "alerts@example.com", NULL,
                            "550 5.1.1 \"user\" unknown\r\n\\ \xc3\xa3");
    ev = decode_ok(s);
    assert_int_equal(ev->type, TX_EVENT_NOTIFY_FAILED);
    assert_string_equal(ev->event_id, eid);
    assert_string_equal(ev->template_name, "fraud_alert");
    assert_string_equal(ev->to, "alerts@example.com");
    assert_string_equal(ev->message_id, "");
    assert_string_equal(ev->at, RECEIVED_AT);
    assert_string_equal(ev->error, "550 5.1.1 \"user\" unknown\r\n\\ \xc3\xa3");
    tx_event_destroy(ev);
    free(s);
}

static void test_notification_rejections(void **state)
{
    static const char *const fields[] = { "template", "to", "message_id", "at", "error" };
    char *base =
        encode_notification(TX_EVENT_NOTIFY_FAILED, "x:1", "receipt", "a@b.c", "<m@x>", "boom");
    size_t i;

    (void) state;
    tx_event_destroy(decode_ok(base));
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        reject_mutation(base, fields[i], NULL, fields[i]);
        reject_mutation(base, fields[i], "1", fields[i]);
        /* null stands for "no error"; every other member must be a string */
        if (strcmp(fields[i], "error") != 0)
            reject_mutation(base, fields[i], "null", fields[i]);
    }
    {
        char *s = mutate(base, "error", "null");
        struct tx_event *ev = decode_ok(s);

        assert_string_equal(ev->error, "");
        tx_event_destroy(ev);
        free(s);
    }
    reject_mutation(base, "event_id", NULL, "no event_id");
    reject_mutation(base, "type", "\"notification.bounced\"", "unknown type");
    free(base);
}

/* ---- decoder rejections -------------------------------------------------------------------- */

static void test_decode_not_json(void **state)
{
    static const char *const bad[] = {
        "", "not json", "{", "{\"type\":", "{\"type\":\"x\",}", "\xff", "{\"a\":1,\"a\":2}"
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        decode_reject(bad[i], TX_ESYNTAX, bad[i]);
}

static void test_decode_not_object(void **state)
{
    static const char *const bad[] = { "[]",   "42",   "\"transaction.received\"",
                                       "null", "true", "[{\"type\":\"transaction.received\"}]" };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        decode_reject(bad[i], TX_EINVAL, bad[i]);
}

static void test_decode_tx_rejections(void **state)
{
    struct tx_batch *b = seed_batch("Dados.json");
    char uid[TX_UUID_STR_LEN + 1];
    char other[TX_UUID_STR_LEN + 1];
    char val[256];
    struct tx_verdict v;
    char *base;
    char *scored;
    size_t i;

    (void) state;
    new_upload_id(uid);
    do {
        new_upload_id(other);
    } while (strcmp(other, uid) == 0);
    base = encode_tx(uid, 5, &b->records[0], NULL);
    fill_verdict(&v);
    scored = encode_tx(uid, 5, &b->records[0], &v);
    tx_event_destroy(decode_ok(base));
    tx_event_destroy(decode_ok(scored));
    /* the mutation helper itself keeps a valid event valid */
    accept_mutation(base, "object", "\"raw/other.json\"");

    /* type */
    reject_mutation(base, "type", "\"transaction.deleted\"", "unknown type");
    reject_mutation(base, "type", "\"Transaction.Received\"", "type is case-sensitive");
    reject_mutation(base, "type", "\"\"", "empty type");
    reject_mutation(base, "type", "1", "type not a string");
    reject_mutation(base, "type", NULL, "no type");

    /* event_id must be <upload_id>:<index> */
    snprintf(val, sizeof(val), "\"%s:6\"", uid);
    reject_mutation(base, "event_id", val, "event_id index differs");
    snprintf(val, sizeof(val), "\"%s:05\"", uid);
    reject_mutation(base, "event_id", val, "event_id index with a leading zero");
    snprintf(val, sizeof(val), "\"%s:5\"", other);
    reject_mutation(base, "event_id", val, "event_id of another upload");
    snprintf(val, sizeof(val), "\"%s\"", uid);
    reject_mutation(base, "event_id", val, "event_id without index");
    snprintf(val, sizeof(val), "\"%s:5 \"", uid);
    reject_mutation(base, "event_id", val, "event_id with a trailing space");
    reject_mutation(base, "event_id", NULL, "no event_id");
    reject_mutation(base, "event_id", "5", "event_id not a string");

    /* upload_id */
    reject_mutation(base, "upload_id", NULL, "no upload_id");
    for (i = 0; uid[i] != '\0'; i++)
        val[i] = (char) (uid[i] >= 'a' && uid[i] <= 'f' ? uid[i] - 'a' + 'A' : uid[i]);
    val[i] = '\0';
    if (strcmp(val, uid) != 0) {
        char q[300];

        snprintf(q, sizeof(q), "\"%s\"", val);
        reject_mutation(base, "upload_id", q, "upload_id in upper case");
    }
    reject_mutation(base, "upload_id", "\"6ba7b810-9dad-41d1-80b4-00c04fd430c8\"",
                    "upload_id a UUIDv4");

    /* index */
    reject_mutation(base, "index", "-1", "negative index");
    reject_mutation(base, "index", "\"5\"", "index as a string");
    reject_mutation(base, "index", "5.5", "fractional index");
    reject_mutation(base, "index", NULL, "no index");

    /* object */
    reject_mutation(base, "object", NULL, "no object");
    reject_mutation(base, "object", "7", "object not a string");

    /* received_at */
    reject_mutation(base, "received_at", "\"yesterday\"", "received_at not a time");
    reject_mutation(base, "received_at", "\"2024-02-30T00:00:00Z\"", "received_at Feb 30");
    reject_mutation(base, "received_at", "\"2024-03-11T12:00:00\"", "received_at no offset");
    reject_mutation(base, "received_at", "\"\"", "received_at empty");
    reject_mutation(base, "received_at", "1710158400123", "received_at a number");
    reject_mutation(base, "received_at", NULL, "no received_at");

    /* the record inside */
    reject_mutation(base, "transaction", NULL, "no transaction");
    reject_mutation(base, "transaction", "\"x\"", "transaction a string");
    reject_mutation(base, "transaction", "[]", "transaction an array");
    reject_mutation(base, "transaction", "{}", "transaction empty");
    reject_mutation(base, "transaction.email", "\"sem-arroba\"", "invalid email");
    reject_mutation(base, "transaction.valor", "-1", "negative valor");
    reject_mutation(base, "transaction._id", NULL, "no _id");
    reject_mutation(base, "transaction.datatrasancao", "\"11/03/2024\"", "bad date");
    {
        char *s = mutate(base, "transaction.email", "\"sem-arroba\"");
        struct tx_event *ev = NULL;
        struct tx_err err;

        tx_err_clear(&err);
        assert_int_equal(tx_event_decode(s, strlen(s), &ev, &err), TX_EINVAL);
        assert_non_null(strstr(err.msg, "email"));
        free(s);
    }

    /* scored: the verdict */
    reject_mutation(scored, "verdict", NULL, "scored without verdict");
    reject_mutation(scored, "verdict", "null", "verdict null");
    reject_mutation(scored, "verdict", "[]", "verdict an array");
    reject_mutation(scored, "verdict.flagged", "\"yes\"", "flagged not boolean");
    reject_mutation(scored, "verdict.flagged", NULL, "no flagged");
    reject_mutation(scored, "verdict.score", "\"0.5\"", "score a string");
    reject_mutation(scored, "verdict.score", NULL, "no score");
    reject_mutation(scored, "verdict.reasons", "{}", "reasons an object");
    reject_mutation(scored, "verdict.reasons", NULL, "no reasons");
    reject_mutation(scored, "verdict.reasons", "[1]", "reason not an object");
    reject_mutation(scored, "verdict.reasons", "[{\"code\":\"X\"}]", "reason without detail");
    reject_mutation(scored, "verdict.reasons", "[{\"detail\":\"d\"}]", "reason without code");
    reject_mutation(scored, "verdict.reasons", "[{\"code\":1,\"detail\":\"d\"}]", "code a number");
    /* a code of 31 bytes fits, 32 does not */
    accept_mutation(scored, "verdict.reasons",
                    "[{\"code\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"detail\":\"d\"}]");
    reject_mutation(scored, "verdict.reasons",
                    "[{\"code\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"detail\":\"d\"}]",
                    "code too long");
    /* too many reasons: 16 pass, 17 do not */
    {
        char many[2048];
        size_t n = 0;
        size_t k;

        n += (size_t) snprintf(many + n, sizeof(many) - n, "[");
        for (k = 0; k < TX_REASONS_MAX; k++)
            n += (size_t) snprintf(many + n, sizeof(many) - n,
                                   "%s{\"code\":\"C%zu\",\"detail\":\"d\"}", k ? "," : "", k);
        snprintf(many + n, sizeof(many) - n, "]");
        accept_mutation(scored, "verdict.reasons", many);
        snprintf(many + n, sizeof(many) - n, ",{\"code\":\"C16\",\"detail\":\"d\"}]");
        reject_mutation(scored, "verdict.reasons", many, "17 reasons");
    }
    free(base);
    free(scored);
    tx_batch_destroy(b);
}

/* The optional facts about the whole upload survive a round trip and are absent when unset. */
static void test_upload_facts_round_trip(void **state)
{
    struct tx_batch *b = seed_batch("Dados.json");
    struct tx_event_head h = { 0 };
    struct tx_event *ev = NULL;
    struct tx_buf out;
    char uid[TX_UUID_STR_LEN + 1];
    char object[128];
    char sha[TX_SHA256_HEX_LEN + 1];

    (void) state;
    new_upload_id(uid);
    snprintf(object, sizeof(object), "raw/2024/03/11/%s.json", uid);
    tx_sha256_hex("x", 1, sha);
    h.upload_id = uid;
    h.object = object;
    h.received_ms = RECEIVED_MS;
    h.records = 7;
    h.sha256 = sha;
    tx_buf_init(&out, BUF_MAX);
    assert_int_equal(tx_event_encode_tx(&h, &b->records[0], NULL, &out), 0);
    assert_non_null(strstr(out.data, "\"idempotency_key\":null"));
    ev = decode_ok(out.data);
    assert_int_equal(ev->head.records, 7);
    assert_string_equal(ev->head.sha256, sha);
    assert_null(ev->head.idempotency_key);
    tx_event_destroy(ev);
    tx_buf_reset(&out);
    h.idempotency_key = "sha256:abc";
    assert_int_equal(tx_event_encode_tx(&h, &b->records[0], NULL, &out), 0);
    ev = decode_ok(out.data);
    assert_string_equal(ev->head.idempotency_key, "sha256:abc");
    tx_event_destroy(ev);
    tx_buf_cleanup(&out);
    tx_batch_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upload_facts_round_trip),
        cmocka_unit_test(test_received_round_trip),
        cmocka_unit_test(test_scored_round_trip),
        cmocka_unit_test(test_scored_score_precision),
        cmocka_unit_test(test_scored_output_is_json),
        cmocka_unit_test(test_scored_nonfinite_score),
        cmocka_unit_test(test_huge_integer_valor_round_trip),
        cmocka_unit_test(test_record_with_extras_round_trip),
        cmocka_unit_test(test_encode_limit),
        cmocka_unit_test(test_event_id_and_names),
        cmocka_unit_test(test_notification_round_trip),
        cmocka_unit_test(test_notification_rejections),
        cmocka_unit_test(test_decode_not_json),
        cmocka_unit_test(test_decode_not_object),
        cmocka_unit_test(test_decode_tx_rejections),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
