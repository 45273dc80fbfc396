/*
 * libFuzzer harness: the upload parser and validator (tx_batch_parse) in every format, with the
 * default limits and with small ones (so TX_ETOOBIG and the violation cap are reached).
 *
 * Invariants checked on every input:
 * - the result is one of 0, TX_EINVAL, TX_ESYNTAX, TX_ETOOBIG (TX_ENOMEM only under a limit);
 * - *out is non-NULL exactly for 0 and TX_EINVAL;
 * - on 0: records and no violations; every record has non-NULL id, cliente, email, endereco,
 *   datatrasancao and json; index i; line/col >= 1; json_len == strlen(json); json parses to an
 *   object whose fields equal the record's, and it validates again on its own
 *   (tx_record_check); ts_ms equals the parse of datatrasancao;
 * - on TX_EINVAL: violations and no records; nviolations <= max_violations, <= the total, and
 *   equal to min(total, max); every text field NUL-terminated;
 * - AUTO gives the same result as the format it detected;
 * - a syntax error has a position (line and column >= 1).
 */
#include "common/tx_record.h"
#include "common/tx_time.h"
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include <string.h>

static int str_field_is(json_t *obj, const char *key, const char *want)
{
    json_t *v = json_object_get(obj, key);

    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

static void check_record(const struct tx_record *r, size_t i)
{
    struct tx_violation v[4];
    struct tx_err err;
    struct tx_time t;
    json_error_t je;
    json_t *obj;
    size_t nv = 0;

    FUZZ_CHECK(r->index == i);
    FUZZ_CHECK(r->line >= 1 && r->col >= 1);
    FUZZ_CHECK(r->id != NULL && r->cliente != NULL && r->email != NULL && r->endereco != NULL &&
               r->datatrasancao != NULL && r->json != NULL);
    FUZZ_CHECK(r->id[0] != '\0' && strlen(r->id) <= TX_ID_MAX);
    FUZZ_CHECK(strchr(r->email, '@') != NULL);
    FUZZ_CHECK(r->json_len == strlen(r->json));
    FUZZ_CHECK(!r->has_valor || r->valor >= 0);
    FUZZ_CHECK(tx_time_parse(r->datatrasancao, strlen(r->datatrasancao), &t, &err) == 0);
    FUZZ_CHECK(tx_time_to_ms(&t) == r->ts_ms);

    /* The compact JSON is the record itself: it parses, to the same fields. */
    obj = json_loadb(r->json, r->json_len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    FUZZ_CHECK(json_is_object(obj));
    FUZZ_CHECK(str_field_is(obj, "_id", r->id));
    FUZZ_CHECK(str_field_is(obj, "cliente", r->cliente));
    FUZZ_CHECK(str_field_is(obj, "email", r->email));
    FUZZ_CHECK(str_field_is(obj, "endereco", r->endereco));
    FUZZ_CHECK(str_field_is(obj, "datatrasancao", r->datatrasancao));
    FUZZ_CHECK(json_is_boolean(json_object_get(obj, "isActive")) &&
               json_is_true(json_object_get(obj, "isActive")) == r->is_active);
    FUZZ_CHECK((json_object_get(obj, "valor") != NULL) == r->has_valor);
    json_decref(obj);

    /* ... and it is a valid record on its own. */
    FUZZ_CHECK(tx_record_check(r->json, r->json_len, v, 4, &nv, &err) == 0);
    FUZZ_CHECK(nv == 0);
}

static void check_violation(const struct tx_violation *v)
{
    FUZZ_CHECK(memchr(v->field, '\0', sizeof(v->field)) != NULL);
    FUZZ_CHECK(memchr(v->code, '\0', sizeof(v->code)) != NULL);
    FUZZ_CHECK(memchr(v->message, '\0', sizeof(v->message)) != NULL);
    FUZZ_CHECK(v->code[0] != '\0' && v->message[0] != '\0');
}

/* Parses and checks every invariant; returns rc, and the detected format / record count. */
static int run(const char *buf, size_t len, enum tx_format fmt, const struct tx_parse_limits *lim,
               enum tx_format *format, size_t *nrecords)
{
    struct tx_parse_limits def;
    struct tx_batch *b = (struct tx_batch *) 1;
    struct tx_err err;
    size_t i;
    int rc;

    tx_parse_limits_default(&def);
    if (lim == NULL)
        lim = &def;
    memset(&err, 0, sizeof(err));
    rc = tx_batch_parse(buf, len, fmt, lim, &b, &err);
    FUZZ_CHECK(rc == 0 || rc == TX_EINVAL || rc == TX_ESYNTAX || rc == TX_ETOOBIG);
    FUZZ_CHECK((b != NULL) == (rc == 0 || rc == TX_EINVAL));
    FUZZ_CHECK(rc == 0 || err.code == rc);
    FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
    if (rc == TX_ESYNTAX)
        FUZZ_CHECK(err.line >= 1 && err.col >= 1 && err.msg[0] != '\0');
    *format = TX_FORMAT_AUTO;
    *nrecords = 0;
    if (b == NULL)
        return rc;
    FUZZ_CHECK(b->format == TX_FORMAT_JSON || b->format == TX_FORMAT_NDJSON);
    FUZZ_CHECK(fmt == TX_FORMAT_AUTO || b->format == fmt);
    if (rc == 0) {
        FUZZ_CHECK(b->nrecords >= 1 && b->nrecords <= lim->max_records);
        FUZZ_CHECK(b->records != NULL);
        FUZZ_CHECK(b->nviolations == 0 && b->nviolations_total == 0);
        for (i = 0; i < b->nrecords; i++)
            check_record(&b->records[i], i);
    }
    else {
        FUZZ_CHECK(b->nrecords == 0);
        FUZZ_CHECK(b->nviolations_total >= 1);
        FUZZ_CHECK(b->nviolations <= lim->max_violations);
        FUZZ_CHECK(b->nviolations <= b->nviolations_total);
        FUZZ_CHECK(b->nviolations == (b->nviolations_total < lim->max_violations
                                          ? b->nviolations_total
                                          : lim->max_violations));
        FUZZ_CHECK(b->nviolations == 0 || b->violations != NULL);
        for (i = 0; i < b->nviolations; i++)
            check_violation(&b->violations[i]);
    }
    *format = b->format;
    *nrecords = b->nrecords;
    tx_batch_destroy(b);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct tx_parse_limits small = { .max_records = 3, .max_violations = 2 };
    const char *buf = (const char *) data;
    enum tx_format detected;
    enum tx_format f;
    size_t n;
    size_t n2;
    int rc;

    rc = run(buf, size, TX_FORMAT_AUTO, NULL, &detected, &n);
    if (detected != TX_FORMAT_AUTO) {
        FUZZ_CHECK(run(buf, size, detected, NULL, &f, &n2) == rc);
        FUZZ_CHECK(f == detected && n2 == n);
    }
    run(buf, size, TX_FORMAT_JSON, NULL, &f, &n2);
    run(buf, size, TX_FORMAT_NDJSON, NULL, &f, &n2);
    run(buf, size, TX_FORMAT_AUTO, &small, &f, &n2);
    run(buf, size, TX_FORMAT_NDJSON, &small, &f, &n2);
    return 0;
}
