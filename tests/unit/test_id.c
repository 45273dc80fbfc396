/* Unit tests for ids and digests (common/tx_id.h): UUIDv7 (RFC 9562), SHA-256, secure compare. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tx_id.h"
#include "common/tx_status.h"

#define SEED_MS   1710158400000LL
#define MAX_48BIT 281474976710655LL /* 2^48 - 1 */
#define NIDS      10000

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Checks the text form of a UUIDv7 by hand, independently of tx_uuid7_valid. */
static void check_format(const char *s, int64_t ms)
{
    char prefix[16];
    size_t i;

    assert_int_equal(strlen(s), TX_UUID_STR_LEN);
    for (i = 0; i < TX_UUID_STR_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            assert_int_equal(s[i], '-');
        }
        else if (!is_lower_hex(s[i])) {
            fail_msg("'%s': character %zu is not lowercase hex", s, i);
        }
    }
    assert_int_equal(s[14], '7');           /* version 7 */
    assert_non_null(strchr("89ab", s[19])); /* variant 10xx */
    snprintf(prefix, sizeof(prefix), "%012" PRIx64, (uint64_t) ms);
    assert_memory_equal(s, prefix, 8); /* unix_ts_ms, big-endian */
    assert_memory_equal(s + 9, prefix + 8, 4);
    assert_true(tx_uuid7_valid(s));
    assert_int_equal(tx_uuid7_ms(s), ms);
}

static void test_uuid7_format(void **state)
{
    static const int64_t ms[] = {
        0, 1, 255, 256, SEED_MS, SEED_MS + 1, 4102444800000LL, MAX_48BIT
    };
    char id[TX_UUID_STR_LEN + 1];
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        memset(id, 'Z', sizeof(id));
        assert_int_equal(tx_uuid7_make(ms[i], id), 0);
        assert_int_equal(id[TX_UUID_STR_LEN], '\0');
        check_format(id, ms[i]);
    }
    /* a known instant, by hand: 1710158400000 = 0x018e2d624a00 */
    assert_int_equal(tx_uuid7_make(SEED_MS, id), 0);
    assert_memory_equal(id, "018e2d62-4a00-7", 15);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *) a, (const char *) b);
}

static void test_uuid7_unique_and_ordered(void **state)
{
    char(*ids)[TX_UUID_STR_LEN + 1] = malloc(NIDS * sizeof(*ids));
    static const char variants[] = "89ab";
    int seen[4] = { 0 };
    size_t i;

    (void) state;
    assert_non_null(ids);
    /* one per millisecond: strictly increasing as strings (time-ordered) */
    for (i = 0; i < NIDS; i++) {
        assert_int_equal(tx_uuid7_make(SEED_MS + (int64_t) i, ids[i]), 0);
        check_format(ids[i], SEED_MS + (int64_t) i);
        if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0)
            fail_msg("not ordered: %s then %s", ids[i - 1], ids[i]);
    }
    /* all in the same millisecond: still all different (74 random bits) */
    for (i = 0; i < NIDS; i++) {
        assert_int_equal(tx_uuid7_make(SEED_MS, ids[i]), 0);
        check_format(ids[i], SEED_MS);
        seen[strchr(variants, ids[i][19]) - variants]++;
    }
    qsort(ids, NIDS, sizeof(*ids), cmp_str);
    for (i = 1; i < NIDS; i++) {
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate id %s", ids[i]);
    }
    /* the two random bits of the variant nibble take every value */
    for (i = 0; i < 4; i++)
        assert_true(seen[i] > 0);
    free(ids);
}

static void test_uuid7_valid_rejections(void **state)
{
    static const char *const bad[] = {
        "",
        "018e2d62-4a00-7d1e-aafb-1639aada595",   /* 35 characters */
        "018e2d62-4a00-7d1e-aafb-1639aada595d0", /* 37 characters */
        "018E2D62-4A00-7D1E-AAFB-1639AADA595D",  /* upper case */
        "018e2d62-4a00-7d1e-aafb-1639aada595D",  /* one upper-case digit */
        "018e2d62-4a00-4d1e-aafb-1639aada595d",  /* version 4 */
        "018e2d62-4a00-8d1e-aafb-1639aada595d",  /* version 8 */
        "018e2d62-4a00-7d1e-cafb-1639aada595d",  /* variant 110 */
        "018e2d62-4a00-7d1e-7afb-1639aada595d",  /* variant 0 */
        "018e2d62-4a00-7d1e-fafb-1639aada595d",  /* variant 111 */
        "018e2d624a007d1eaafb1639aada595d",      /* no hyphens */
        "018e2d62-4a007-d1e-aafb-1639aada595d",  /* hyphen moved */
        "018e2d62_4a00_7d1e_aafb_1639aada595d",  /* other separators */
        "018e2d62-4a00-7d1e-aafb-1639aada595g",  /* not hex */
        "018e2d62-4a00-7d1e-aafb-1639aada59 d",  /* a space */
        "{018e2d62-4a00-7d1e-aafb-1639aada595d}",
        "urn:uuid:018e2d62-4a00-7d1e-aafb-1639aada595d",
        "00000000-0000-0000-0000-000000000000", /* nil */
        "ffffffff-ffff-ffff-ffff-ffffffffffff", /* max */
        "018e2d62-4a00-7d1e-aafb-1639aada595d\n",
    };
    size_t i;

    (void) state;
    assert_true(tx_uuid7_valid("018e2d62-4a00-7d1e-aafb-1639aada595d"));
    assert_true(tx_uuid7_valid("018e2d62-4a00-7d1e-bafb-1639aada595d"));
    assert_false(tx_uuid7_valid(NULL));
    assert_int_equal(tx_uuid7_ms(NULL), -1);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (tx_uuid7_valid(bad[i]))
            fail_msg("'%s' accepted as a UUIDv7", bad[i]);
        assert_int_equal(tx_uuid7_ms(bad[i]), -1);
    }
    /* an embedded NUL ends the string: 36 bytes with a NUL inside is not a UUID */
    assert_false(tx_uuid7_valid("018e2d62-4a00-7d1e-aafb-1639aad\0"
                                "595d"));
}

static void check_sha(const void *data, size_t len, const char *want)
{
    char out[TX_SHA256_HEX_LEN + 2];

    memset(out, 'Z', sizeof(out));
    tx_sha256_hex(data, len, out);
    assert_int_equal(out[TX_SHA256_HEX_LEN], '\0');
    assert_int_equal(out[TX_SHA256_HEX_LEN + 1], 'Z'); /* writes 65 bytes, no more */
    assert_string_equal(out, want);
}

static void test_sha256_vectors(void **state)
{
    static const char *const two_blocks =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char *million = malloc(1000000);

    (void) state;
    /* FIPS 180-2 / NIST examples */
    check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_sha(two_blocks, strlen(two_blocks),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    assert_non_null(million);
    memset(million, 'a', 1000000);
    check_sha(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
    /* len is authoritative: bytes after it are not hashed, embedded NULs are */
    check_sha("abcdef", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_sha("\0", 1, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

static void test_secure_equal(void **state)
{
    static const unsigned char a[32] = { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                         12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                         23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
    unsigned char b[32];
    size_t i;

    (void) state;
    memcpy(b, a, sizeof(b));
    assert_true(tx_secure_equal(a, b, sizeof(a)));
    assert_true(tx_secure_equal(a, b, 0));
    assert_true(tx_secure_equal("secret", "secret", 6));
    assert_false(tx_secure_equal("secret", "secreT", 6));
    assert_false(tx_secure_equal("Secret", "secret", 6));
    /* a difference in any single byte, any bit */
    for (i = 0; i < sizeof(b); i++) {
        int bit;

        for (bit = 0; bit < 8; bit++) {
            memcpy(b, a, sizeof(b));
            b[i] ^= (unsigned char) (1u << bit);
            if (tx_secure_equal(a, b, sizeof(a)))
                fail_msg("byte %zu bit %d flipped but equal", i, bit);
        }
    }
    /* only n bytes are compared */
    memcpy(b, a, sizeof(b));
    b[31] ^= 0xff;
    assert_true(tx_secure_equal(a, b, 31));
    assert_false(tx_secure_equal(a, b, 32));
    /* the result is a truth value usable as such */
    assert_int_equal(tx_secure_equal(a, a, 32) != 0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid7_format),
        cmocka_unit_test(test_uuid7_unique_and_ordered),
        cmocka_unit_test(test_uuid7_valid_rejections),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_secure_equal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
