/*
 * libFuzzer harness: the flat JSON document (tx_jdoc_parse) against the upload parser
 * (tx_json_load, jansson with duplicate keys refused), which it must match exactly.
 *
 * Invariants:
 * - both accept the same inputs: rc == 0 for one exactly when rc == 0 for the other;
 * - a refusal is TX_ESYNTAX (TX_ENOMEM aside) with a message, and leaves the document empty;
 * - on acceptance the two trees are equal: same types (an integer is an integer in both, a real
 *   a real), same numbers, same decoded strings (length included), same array elements in
 *   order, same object sizes and every member of one found under the same key in the other;
 * - every node's [start, end) is inside the input, and a container's children lie inside it.
 */
#include "common/tx_jdoc.h"
#include "common/tx_record_internal.h"
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include <string.h>

static void same(const struct tx_jdoc *d, uint32_t i, json_t *v, size_t size)
{
    const struct tx_jnode *nd = &d->nodes[i];

    FUZZ_CHECK(i < d->n);
    FUZZ_CHECK(nd->start < nd->end && nd->end <= size);
    FUZZ_CHECK(nd->next > i && nd->next <= d->n);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        uint32_t k = i + 1;

        FUZZ_CHECK(nd->type == TX_JOBJECT);
        FUZZ_CHECK(nd->count == json_object_size(v));
        for (uint32_t m = 0; m < nd->count; m++) {
            const char *key = tx_jdoc_str(d, k, NULL);
            json_t *mv;

            FUZZ_CHECK(key != NULL);
            mv = json_object_getn(v, key, d->nodes[k].len);
            FUZZ_CHECK(mv != NULL);
            FUZZ_CHECK(tx_jdoc_get(d, i, key) == k + 1);
            FUZZ_CHECK(d->nodes[k].start >= nd->start && d->nodes[k + 1].end <= nd->end);
            same(d, k + 1, mv, size);
            k = d->nodes[k + 1].next;
        }
        FUZZ_CHECK(k == nd->next);
        break;
    }
    case JSON_ARRAY: {
        uint32_t k = i + 1;

        FUZZ_CHECK(nd->type == TX_JARRAY);
        FUZZ_CHECK(nd->count == json_array_size(v));
        for (uint32_t m = 0; m < nd->count; m++) {
            FUZZ_CHECK(d->nodes[k].start >= nd->start && d->nodes[k].end <= nd->end);
            same(d, k, json_array_get(v, m), size);
            k = d->nodes[k].next;
        }
        FUZZ_CHECK(k == nd->next);
        break;
    }
    case JSON_STRING: {
        size_t len = 0;
        const char *s = tx_jdoc_str(d, i, &len);

        FUZZ_CHECK(s != NULL && s[len] == '\0');
        FUZZ_CHECK(len == json_string_length(v));
        FUZZ_CHECK(memcmp(s, json_string_value(v), len) == 0);
        break;
    }
    case JSON_INTEGER:
        FUZZ_CHECK(nd->type == TX_JINT);
        FUZZ_CHECK(nd->num.i == json_integer_value(v));
        break;
    case JSON_REAL:
        FUZZ_CHECK(nd->type == TX_JREAL);
        FUZZ_CHECK(nd->num.d == json_real_value(v));
        break;
    case JSON_TRUE:
        FUZZ_CHECK(nd->type == TX_JTRUE);
        break;
    case JSON_FALSE:
        FUZZ_CHECK(nd->type == TX_JFALSE);
        break;
    case JSON_NULL:
        FUZZ_CHECK(nd->type == TX_JNULL);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tx_jdoc d;
    struct tx_err e1;
    struct tx_err e2;
    json_t *v = NULL;
    int rc1;
    int rc2;

    memset(&e1, 0, sizeof(e1));
    memset(&e2, 0, sizeof(e2));
    rc1 = tx_jdoc_parse(&d, (const char *) data, size, &e1);
    rc2 = tx_json_load((const char *) data, size, &v, &e2);
    if (rc1 == TX_ENOMEM || rc2 == TX_ENOMEM)
        goto out;
    if ((rc1 == 0) != (rc2 == 0))
        fprintf(stderr, "jdoc: %d %s / jansson: %d %s\n", rc1, e1.msg, rc2, e2.msg);
    FUZZ_CHECK((rc1 == 0) == (rc2 == 0));
    if (rc1 != 0) {
        FUZZ_CHECK(rc1 == TX_ESYNTAX && e1.code == rc1 && e1.msg[0] != '\0');
        FUZZ_CHECK(d.n == 0 && d.nodes == NULL && d.arena == NULL);
        goto out;
    }
    FUZZ_CHECK(d.n > 0 && d.nodes[0].next == d.n);
    same(&d, 0, v, size);
out:
    json_decref(v);
    tx_jdoc_cleanup(&d);
    return 0;
}
