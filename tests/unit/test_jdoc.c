/*
 * Unit tests for the flat JSON document (common/tx_jdoc.h): what it accepts and refuses (the
 * same as the upload parser, tx_json_load, which every case is also checked against), the node
 * layout, member lookup, string decoding and numbers. tests/fuzz/fuzz_jdoc.c compares the two
 * parsers on generated inputs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <string.h>

#include "common/tx_jdoc.h"
#include "common/tx_record_internal.h"

/* Parses text (len bytes) with both parsers; returns the jdoc status and checks they agree. */
static int parse2(struct tx_jdoc *d, const char *text, size_t len)
{
    struct tx_err e1 = { 0 };
    struct tx_err e2 = { 0 };
    json_t *v = NULL;
    int rc = tx_jdoc_parse(d, text, len, &e1);
    int rc2 = tx_json_load(text, len, &v, &e2);

    json_decref(v);
    if ((rc == 0) != (rc2 == 0))
        fail_msg("parsers disagree on [%.*s]: jdoc %d (%s), jansson %d (%s)", (int) len, text, rc,
                 e1.msg, rc2, e2.msg);
    if (rc != 0) {
        assert_int_equal(rc, TX_ESYNTAX);
        assert_int_equal(e1.code, TX_ESYNTAX);
        assert_non_null(strstr(e1.msg, "JSON syntax error at byte "));
        assert_null(d->nodes);
        assert_null(d->arena);
    }
    return rc;
}

static int parse_s(struct tx_jdoc *d, const char *text)
{
    return parse2(d, text, strlen(text));
}

static void refused(const char *text)
{
    struct tx_jdoc d;

    if (parse_s(&d, text) == 0)
        fail_msg("accepted: %s", text);
    tx_jdoc_cleanup(&d);
}

static void accepted(const char *text)
{
    struct tx_jdoc d;

    if (parse_s(&d, text) != 0)
        fail_msg("refused: %s", text);
    tx_jdoc_cleanup(&d);
}

static void test_event_layout(void **state)
{
    const char *text = "{\"a\": [1, {\"b\": null}], \"c\": \"x\", \"d\": {}}";
    struct tx_jdoc d;
    uint32_t a;
    uint32_t c;
    uint32_t dd;

    (void) state;
    assert_int_equal(parse_s(&d, text), 0);
    /* root, "a", [, 1, {, "b", null, "c", "x", "d", {} */
    assert_int_equal(d.n, 11);
    assert_int_equal(d.nodes[0].type, TX_JOBJECT);
    assert_int_equal(d.nodes[0].count, 3);
    assert_int_equal(d.nodes[0].next, 11);
    assert_int_equal(d.nodes[0].start, 0);
    assert_int_equal(d.nodes[0].end, strlen(text));
    a = tx_jdoc_get(&d, 0, "a");
    assert_int_equal(a, 2);
    assert_int_equal(tx_jdoc_type(&d, a), TX_JARRAY);
    assert_int_equal(d.nodes[a].count, 2);
    assert_int_equal(d.nodes[a].next, 7);
    assert_memory_equal(text + d.nodes[a].start, "[1, {\"b\": null}]",
                        d.nodes[a].end - d.nodes[a].start);
    assert_int_equal(tx_jdoc_type(&d, tx_jdoc_get(&d, 4, "b")), TX_JNULL);
    c = tx_jdoc_get(&d, 0, "c");
    assert_string_equal(tx_jdoc_str(&d, c, NULL), "x");
    dd = tx_jdoc_get(&d, 0, "d");
    assert_int_equal(tx_jdoc_type(&d, dd), TX_JOBJECT);
    assert_int_equal(d.nodes[dd].count, 0);
    assert_int_equal(tx_jdoc_get(&d, 0, "e"), TX_JDOC_NONE);
    assert_int_equal(tx_jdoc_get(&d, a, "a"), TX_JDOC_NONE); /* not an object */
    assert_int_equal(tx_jdoc_get(&d, TX_JDOC_NONE, "a"), TX_JDOC_NONE);
    assert_int_equal(tx_jdoc_type(&d, TX_JDOC_NONE), TX_JNONE);
    assert_null(tx_jdoc_str(&d, a, NULL));
    assert_true(tx_jdoc_num(&d, c) == 0);
    tx_jdoc_cleanup(&d);
    assert_null(d.nodes);
    tx_jdoc_cleanup(&d); /* twice is fine */
}

static void test_strings(void **state)
{
    /* Escapes, a surrogate pair, raw UTF-8 and an escaped key equal to a plain one's text. */
    const char *text = "{\"s\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u20ac"
                       "\xc3\xa9\",\"\\u006b\":\"k\"}";
    struct tx_jdoc d;
    const char *s;
    size_t len = 0;

    (void) state;
    assert_int_equal(parse_s(&d, text), 0);
    s = tx_jdoc_str(&d, tx_jdoc_get(&d, 0, "s"), &len);
    assert_non_null(s);
    assert_string_equal(s, "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9");
    assert_int_equal(len, strlen(s));
    assert_string_equal(tx_jdoc_str(&d, tx_jdoc_get(&d, 0, "k"), NULL), "k");
    tx_jdoc_cleanup(&d);

    refused("\"\\u0000\"");          /* NUL through an escape */
    refused("\"\\ud800\"");          /* lone high surrogate */
    refused("\"\\ud800\\u0041\"");   /* high surrogate then no low one */
    refused("\"\\udc00\"");          /* lone low surrogate */
    refused("\"\\u12\"");            /* short escape */
    refused("\"\\x\"");              /* unknown escape */
    refused("\"a\tb\"");             /* raw control character */
    refused("\"\xc3\"");             /* truncated UTF-8 */
    refused("\"\xc0\xaf\"");         /* overlong */
    refused("\"\xed\xa0\x80\"");     /* UTF-8 encoded surrogate */
    refused("\"\xf4\x90\x80\x80\""); /* above U+10FFFF */
    refused("\"abc");                /* unterminated */
    accepted("\"\x7f\"");            /* DEL is not a control character for JSON */
    accepted("\"\\uDBFF\\uDFFF\"");
}

static void test_numbers(void **state)
{
    struct tx_jdoc d;

    (void) state;
    assert_int_equal(parse_s(&d, "[0, -0, 12, -9223372036854775808, 9223372036854775807, 1.5, "
                                 "-2e-3, 1E2, 1e-400]"),
                     0);
    assert_int_equal(d.nodes[1].type, TX_JINT);
    assert_int_equal(d.nodes[1].num.i, 0);
    assert_int_equal(d.nodes[2].num.i, 0);
    assert_int_equal(d.nodes[3].num.i, 12);
    assert_true(d.nodes[4].num.i == LLONG_MIN);
    assert_true(d.nodes[5].num.i == LLONG_MAX);
    assert_int_equal(d.nodes[6].type, TX_JREAL);
    assert_true(d.nodes[6].num.d == 1.5);
    assert_true(d.nodes[7].num.d == -2e-3);
    assert_int_equal(d.nodes[8].type, TX_JREAL);
    assert_true(tx_jdoc_num(&d, 8) == 100.0);
    assert_true(d.nodes[9].num.d == 0.0); /* underflow is fine, as in jansson */
    tx_jdoc_cleanup(&d);

    /* An integer outside int64: every integer of the document becomes a real. */
    assert_int_equal(parse_s(&d, "[1, 9223372036854775808, -9223372036854775809]"), 0);
    assert_int_equal(d.nodes[1].type, TX_JREAL);
    assert_true(d.nodes[1].num.d == 1.0);
    assert_int_equal(d.nodes[2].type, TX_JREAL);
    assert_true(d.nodes[2].num.d == 9223372036854775808.0);
    assert_int_equal(d.nodes[3].type, TX_JREAL);
    tx_jdoc_cleanup(&d);

    refused("1e400"); /* overflows a double */
    refused("-1e400");
    refused("01");
    refused("-");
    refused("1.");
    refused(".5");
    refused("+1");
    refused("1e");
    refused("1e+");
    refused("0x10");
    refused("NaN");
    refused("Infinity");
    accepted("-0.0e+0");
}

static void test_structure(void **state)
{
    char deep[2 * 130 + 1];
    struct tx_jdoc d;

    (void) state;
    refused("");
    refused("   ");
    refused("{");
    refused("[1,]");
    refused("[,1]");
    refused("{\"a\":1,}");
    refused("{\"a\" 1}");
    refused("{1:1}");
    refused("[1 2]");
    refused("{\"a\":1}}");
    refused("[1]x");
    refused("tru");
    refused("nul");
    refused("True");
    refused("\xef\xbb\xbf{}"); /* a byte order mark */
    accepted(" \t\r\n[ true , false , null ] \n");
    accepted("\"top-level string\"");
    accepted("42");
    accepted("{}");
    accepted("[[], {}, [[]]]");

    /* Duplicate keys, compared after unescaping; many members go through the sorted check. */
    refused("{\"a\":1,\"a\":2}");
    refused("{\"a\":1,\"\\u0061\":2}");
    refused("{\"x\":{\"a\":1,\"b\":2,\"a\":3}}");
    refused("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,"
            "\"k9\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15,\"k16\":16,"
            "\"k7\":17}");
    accepted("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,"
             "\"k9\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15,"
             "\"k16\":16,\"k17\":17}");
    accepted("{\"a\":1,\"A\":2,\"a \":3,\"\":4}");
    accepted("[{\"a\":1},{\"a\":2}]"); /* the same key in two objects */

    /* A NUL byte anywhere, even where whitespace would be. */
    assert_int_not_equal(parse2(&d, "[1]\0", 4), 0);
    assert_int_not_equal(parse2(&d, "[1\0]", 4), 0);
    assert_int_not_equal(parse2(&d, "\"a\0\"", 4), 0);

    /* Nesting: 128 levels are accepted, 129 are not. */
    memset(deep, '[', 128);
    memset(deep + 128, ']', 128);
    deep[256] = '\0';
    accepted(deep);
    memset(deep, '[', 129);
    memset(deep + 129, ']', 129);
    deep[258] = '\0';
    refused(deep);
}

static void test_record_through_jdoc(void **state)
{
    /* The record validator gives the same answers through either parser. */
    static const char *const records[] = {
        "{\"_id\":\"cliente1\",\"isActive\":true,\"cliente\":\"Ana\",\"email\":\"a@b.com\","
        "\"endereco\":\"Rua 1\",\"datatrasancao\":\"2024-03-11T12:00:00 +00:00\",\"valor\":10.5}",
        "{\"_id\":\"bad id\",\"isActive\":1,\"cliente\":\"\",\"email\":\"nope\","
        "\"endereco\":7,\"datatrasancao\":\"yesterday\",\"valor\":-1}",
        "{\"_id\":\"x\"}",
        "[1]",
    };

    (void) state;
    for (size_t k = 0; k < sizeof(records) / sizeof(records[0]); k++) {
        struct tx_violation v1[16];
        struct tx_violation v2[16];
        struct tx_record r1;
        struct tx_record r2;
        size_t n1 = 0;
        size_t n2 = 0;
        struct tx_jdoc d;
        json_t *j = NULL;

        assert_int_equal(tx_jdoc_parse(&d, records[k], strlen(records[k]), NULL), 0);
        assert_int_equal(tx_json_load(records[k], strlen(records[k]), &j, NULL), 0);
        assert_int_equal(tx_record_from_jdoc(&d, 0, 3, 1, &r1, v1, 16, &n1),
                         tx_record_from_json(j, 3, 1, &r2, v2, 16, &n2));
        assert_int_equal(n1, n2);
        for (size_t i = 0; i < n1; i++) {
            assert_string_equal(v1[i].field, v2[i].field);
            assert_string_equal(v1[i].code, v2[i].code);
            assert_string_equal(v1[i].message, v2[i].message);
        }
        if (n1 == 0) {
            assert_string_equal(r1.id, r2.id);
            assert_string_equal(r1.email, r2.email);
            assert_true(r1.ts_ms == r2.ts_ms);
            assert_true(r1.valor == r2.valor && r1.has_valor == r2.has_valor);
            assert_int_equal(r1.is_active, r2.is_active);
        }
        json_decref(j);
        tx_jdoc_cleanup(&d);
    }
}

static void test_utf8_seq(void **state)
{
    (void) state;
    assert_int_equal(tx_utf8_seq((const unsigned char *) "a", 1), 1);
    assert_int_equal(tx_utf8_seq((const unsigned char *) "", 1), 0);
    assert_int_equal(tx_utf8_seq((const unsigned char *) "\xc3\xa9", 2), 2);
    assert_int_equal(tx_utf8_seq((const unsigned char *) "\xc3\xa9", 1), 0);
    assert_int_equal(tx_utf8_seq((const unsigned char *) "\xe2\x82\xac", 3), 3);
    assert_int_equal(tx_utf8_seq((const unsigned char *) "\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(tx_utf8_seq((const unsigned char *) "\xe0\x80\x80", 3), 0);
    assert_int_equal(tx_utf8_seq((const unsigned char *) "\x80", 1), 0);
    assert_int_equal(tx_utf8_seq((const unsigned char *) "\xff", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_layout),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_record_through_jdoc),
        cmocka_unit_test(test_utf8_seq),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
