/* Unit tests for the bounded byte buffer (common/tx_buf.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tx_buf.h"
#include "common/tx_status.h"

/* The buffer's invariants: NUL-terminated when it has storage, len within cap and max. */
static void check_invariants(const struct tx_buf *b)
{
    assert_true(b->len <= b->max);
    if (b->data != NULL) {
        assert_true(b->len < b->cap);
        assert_int_equal(b->data[b->len], '\0');
    }
    else {
        assert_int_equal(b->len, 0);
    }
}

static void test_init_append(void **state)
{
    struct tx_buf b;

    (void) state;
    tx_buf_init(&b, 64);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 64);
    check_invariants(&b);
    assert_int_equal(tx_buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
    check_invariants(&b);
    assert_int_equal(tx_buf_puts(&b, "def"), 0);
    assert_string_equal(b.data, "abcdef");
    /* appending nothing is fine, also with a NULL pointer */
    assert_int_equal(tx_buf_append(&b, "", 0), 0);
    assert_int_equal(tx_buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, 6);
    /* embedded NUL bytes are data */
    assert_int_equal(tx_buf_append(&b, "x\0y", 3), 0);
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "abcdefx\0y", 10);
    check_invariants(&b);
    tx_buf_cleanup(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    /* reusable after cleanup, with the same limit */
    assert_int_equal(tx_buf_puts(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    assert_int_equal(b.max, 64);
    tx_buf_cleanup(&b);
    tx_buf_cleanup(&b); /* twice is harmless */
}

static void test_limit(void **state)
{
    struct tx_buf b;
    char *before;
    size_t cap;

    (void) state;
    tx_buf_init(&b, 10);
    /* too big for an empty buffer: nothing allocated, nothing written */
    assert_int_equal(tx_buf_append(&b, "0123456789A", 11), TX_ETOOBIG);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    /* exactly the limit */
    assert_int_equal(tx_buf_append(&b, "01234", 5), 0);
    assert_int_equal(tx_buf_append(&b, "56789", 5), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    check_invariants(&b);
    /* one byte more fails and changes nothing */
    before = b.data;
    cap = b.cap;
    assert_int_equal(tx_buf_append(&b, "X", 1), TX_ETOOBIG);
    assert_int_equal(tx_buf_puts(&b, "XY"), TX_ETOOBIG);
    assert_int_equal(tx_buf_printf(&b, "%d", 7), TX_ETOOBIG);
    assert_int_equal(tx_buf_json_str(&b, "", 0), TX_ETOOBIG);
    assert_int_equal(tx_buf_append(&b, "X", SIZE_MAX), TX_ETOOBIG); /* no overflow in the check */
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    assert_int_equal(tx_buf_append(&b, "", 0), 0);
    check_invariants(&b);
    tx_buf_cleanup(&b);

    /* a printf that does not fit leaves the buffer as it was */
    tx_buf_init(&b, 8);
    assert_int_equal(tx_buf_puts(&b, "ab"), 0);
    assert_int_equal(tx_buf_printf(&b, "%s-%d", "xyz", 12), 0); /* 6 bytes: 8 in all */
    assert_string_equal(b.data, "abxyz-12");
    tx_buf_reset(&b);
    assert_int_equal(tx_buf_puts(&b, "ab"), 0);
    assert_int_equal(tx_buf_printf(&b, "%s-%d", "xyz", 123), TX_ETOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "ab");
    tx_buf_cleanup(&b);

    /* a zero limit accepts nothing but empty appends */
    tx_buf_init(&b, 0);
    assert_int_equal(tx_buf_append(&b, "a", 1), TX_ETOOBIG);
    assert_int_equal(b.len, 0);
    tx_buf_cleanup(&b);
}

static void test_unlimited(void **state)
{
    /* SIZE_MAX as the limit means "no practical limit"; the buffer must still allocate what it
     * writes (cap > len) */
    struct tx_buf b;
    char big[1000];
    int i;

    (void) state;
    memset(big, 'q', sizeof(big));
    tx_buf_init(&b, SIZE_MAX);
    /* one byte first: small enough not to corrupt the heap if too little was allocated, so the
     * check below reports the fault instead of a crash (ASan reports the overflow itself) */
    assert_int_equal(tx_buf_append(&b, "h", 1), 0);
    if (b.cap < 2)
        fail_msg("limit SIZE_MAX: 1 byte stored in a block of %zu bytes", b.cap);
    assert_int_equal(tx_buf_puts(&b, "ello, this is more than a few bytes of text"), 0);
    check_invariants(&b);
    for (i = 0; i < 100; i++)
        assert_int_equal(tx_buf_append(&b, big, sizeof(big)), 0);
    check_invariants(&b);
    assert_int_equal(b.len, 44 + 100 * sizeof(big));
    tx_buf_cleanup(&b);

    tx_buf_init(&b, SIZE_MAX - 1);
    assert_int_equal(tx_buf_puts(&b, "hello, this is more than a few bytes of text"), 0);
    check_invariants(&b);
    tx_buf_cleanup(&b);
}

static void test_printf_growth(void **state)
{
    struct tx_buf b;
    char expect[64];
    char *big = malloc(5001);
    size_t off = 0;
    int i;

    (void) state;
    assert_non_null(big);
    memset(big, 'z', 5000);
    big[5000] = '\0';
    tx_buf_init(&b, 1 << 20);
    /* one printf much larger than any initial capacity */
    assert_int_equal(tx_buf_printf(&b, "<%s>", big), 0);
    assert_int_equal(b.len, 5002);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[5001], '>');
    check_invariants(&b);
    tx_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    /* many small ones, checked against snprintf */
    for (i = 0; i < 10000; i++) {
        int n = snprintf(expect, sizeof(expect), "%d:%s,", i, i % 2 ? "odd" : "even");

        assert_int_equal(tx_buf_printf(&b, "%d:%s,", i, i % 2 ? "odd" : "even"), 0);
        assert_memory_equal(b.data + off, expect, (size_t) n);
        off += (size_t) n;
        assert_int_equal(b.len, off);
    }
    check_invariants(&b);
    /* an empty format writes nothing */
    assert_int_equal(tx_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, off);
    tx_buf_cleanup(&b);
    free(big);
}

static void test_reset_keeps_storage(void **state)
{
    struct tx_buf b;
    char *p;
    size_t cap;

    (void) state;
    tx_buf_init(&b, 100);
    tx_buf_reset(&b); /* on an empty buffer: no crash, nothing allocated */
    assert_null(b.data);
    assert_int_equal(tx_buf_puts(&b, "some text"), 0);
    p = b.data;
    cap = b.cap;
    tx_buf_reset(&b);
    assert_ptr_equal(b.data, p);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    /* the limit applies again from zero */
    assert_int_equal(tx_buf_append(&b,
                                   "0123456789012345678901234567890123456789012345678901234567"
                                   "890123456789012345678901234567890123456789",
                                   100),
                     0);
    tx_buf_cleanup(&b);
}

static char *json_of(const char *s, size_t len)
{
    struct tx_buf b;

    tx_buf_init(&b, 1 << 16);
    assert_int_equal(tx_buf_json_str(&b, s, len), 0);
    check_invariants(&b);
    return tx_buf_steal(&b, NULL);
}

static void expect_json(const char *s, size_t len, const char *want)
{
    char *got = json_of(s, len);

    assert_string_equal(got, want);
    free(got);
}

static void test_json_str(void **state)
{
    (void) state;
    expect_json("", 0, "\"\"");
    expect_json("plain", 5, "\"plain\"");
    expect_json("a\"b", 3, "\"a\\\"b\"");
    expect_json("\"", 1, "\"\\\"\"");
    expect_json("back\\slash", 10, "\"back\\\\slash\"");
    expect_json("\\\"", 2, "\"\\\\\\\"\"");
    expect_json("\n\r\t", 3, "\"\\n\\r\\t\"");
    expect_json("\x01", 1, "\"\\u0001\"");
    expect_json("a\x1f", 2, "\"a\\u001f\"");
    expect_json("\b\f", 2, "\"\\u0008\\u000c\"");
    expect_json("x\0y", 3, "\"x\\u0000y\"");
    /* only len bytes are read */
    expect_json("abcdef", 3, "\"abc\"");
    /* UTF-8 is kept as is, DEL and '/' need no escape */
    expect_json("\xc3\xa3\xf0\x9f\x98\x80\xe2\x82\xac", 9,
                "\"\xc3\xa3\xf0\x9f\x98\x80\xe2\x82\xac\"");
    expect_json("\x7f/", 2, "\"\x7f/\"");
    expect_json("Jo\xc3\xa3o \"Z\" \\ fim\n", 16, "\"Jo\xc3\xa3o \\\"Z\\\" \\\\ fim\\n\"");
}

static void test_json_str_appends(void **state)
{
    struct tx_buf b;

    (void) state;
    tx_buf_init(&b, 64);
    assert_int_equal(tx_buf_puts(&b, "{\"k\":"), 0);
    assert_int_equal(tx_buf_json_str(&b, "v\"", 2), 0);
    assert_int_equal(tx_buf_puts(&b, "}"), 0);
    assert_string_equal(b.data, "{\"k\":\"v\\\"\"}");
    tx_buf_cleanup(&b);

    /* past the limit: an error (and never more than max bytes) */
    tx_buf_init(&b, 8);
    assert_int_equal(tx_buf_json_str(&b, "abcdefgh", 8), TX_ETOOBIG);
    assert_true(b.len <= 8);
    check_invariants(&b);
    tx_buf_cleanup(&b);
    tx_buf_init(&b, 8);
    assert_int_equal(tx_buf_json_str(&b, "abc\"\"", 5), TX_ETOOBIG); /* 9 bytes escaped */
    assert_true(b.len <= 8);
    tx_buf_cleanup(&b);
    tx_buf_init(&b, 9);
    assert_int_equal(tx_buf_json_str(&b, "abc\"\"", 5), 0);
    assert_string_equal(b.data, "\"abc\\\"\\\"\"");
    tx_buf_cleanup(&b);
}

static void test_json_str_round_trip(void **state)
{
    /* every byte 0x01..0x7f, plus multi-byte text, decodes back to the same string */
    char in[160];
    size_t n = 0;
    int c;
    char *out;
    json_t *j;
    json_error_t je;

    (void) state;
    for (c = 1; c < 0x80; c++)
        in[n++] = (char) c;
    memcpy(in + n, "\xc3\xa3\xf0\x9f\x98\x80", 6);
    n += 6;
    out = json_of(in, n);
    j = json_loads(out, JSON_DECODE_ANY, &je);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", je.text, out);
    assert_true(json_is_string(j));
    assert_int_equal(json_string_length(j), n);
    assert_memory_equal(json_string_value(j), in, n);
    /* and no raw control character is left in the output */
    for (c = 0; out[c] != '\0'; c++)
        assert_true((unsigned char) out[c] >= 0x20);
    json_decref(j);
    free(out);
}

static void test_steal(void **state)
{
    struct tx_buf b;
    size_t len = 99;
    char *p;

    (void) state;
    tx_buf_init(&b, 100);
    /* nothing to steal */
    p = tx_buf_steal(&b, &len);
    assert_null(p);
    assert_int_equal(len, 0);

    assert_int_equal(tx_buf_puts(&b, "stolen data"), 0);
    p = tx_buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 11);
    assert_string_equal(p, "stolen data");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 100);
    /* the buffer works again, independently of the stolen block */
    assert_int_equal(tx_buf_puts(&b, "new"), 0);
    assert_string_equal(b.data, "new");
    assert_string_equal(p, "stolen data");
    free(p);
    p = tx_buf_steal(&b, NULL); /* len may be NULL */
    assert_string_equal(p, "new");
    free(p);
    tx_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_append),
        cmocka_unit_test(test_limit),

        cmocka_unit_test(test_printf_growth),
        cmocka_unit_test(test_reset_keeps_storage),
        cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_json_str_appends),
        cmocka_unit_test(test_json_str_round_trip),
        cmocka_unit_test(test_steal),
        /* last: with the bug it reports, an ASan build aborts here */
        cmocka_unit_test(test_unlimited),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
