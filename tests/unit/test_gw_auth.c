/* API key parsing and checking of the gateway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/tx_id.h"
#include "gateway/gw_auth.h"

static void test_check(void **state)
{
    char h1[TX_SHA256_HEX_LEN + 1];
    char h2[TX_SHA256_HEX_LEN + 1];
    char spec[256];
    struct tx_err err = { 0 };
    struct gw_auth *a;

    (void) state;
    tx_sha256_hex("secret-one", 10, h1);
    tx_sha256_hex("secret-two", 10, h2);
    snprintf(spec, sizeof(spec), " demo:%s , ci.bot-2:%s ", h1, h2);
    a = gw_auth_create(spec, &err);
    assert_non_null(a);
    assert_int_equal(gw_auth_count(a), 2);
    assert_string_equal(gw_auth_check(a, "secret-one", 10), "demo");
    assert_string_equal(gw_auth_check(a, "secret-two", 10), "ci.bot-2");
    assert_null(gw_auth_check(a, "secret-on", 9));
    assert_null(gw_auth_check(a, "", 0));
    gw_auth_destroy(a);
}

static void test_bad_specs(void **state)
{
    struct tx_err err = { 0 };
    struct gw_auth *a;

    (void) state;
    a = gw_auth_create("", &err);
    assert_non_null(a);
    assert_int_equal(gw_auth_count(a), 0);
    assert_null(gw_auth_check(a, "x", 1));
    gw_auth_destroy(a);
    assert_null(gw_auth_create("demo", &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(gw_auth_create("demo:abc", &err));
    assert_null(
        gw_auth_create(":0123456789012345678901234567890123456789012345678901234567890123", &err));
    assert_null(gw_auth_create("bad name:01234567890123456789012345678901234567890123456789012345"
                               "67890123",
                               &err));
    assert_null(gw_auth_create("demo:g123456789012345678901234567890123456789012345678901234567890"
                               "123",
                               &err));
    /* The message names the entry, never a hash. */
    assert_non_null(strstr(err.msg, "demo"));
    assert_null(strstr(err.msg, "g1234"));
}

static void test_extract(void **state)
{
    const char *k = NULL;
    size_t n = 0;

    (void) state;
    assert_int_equal(gw_auth_extract("Bearer abc", NULL, &k, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(k, "abc", 3);
    assert_int_equal(gw_auth_extract("bearer   xyz  ", NULL, &k, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(k, "xyz", 3);
    assert_int_equal(gw_auth_extract("Basic abc", "key1", &k, &n), 0);
    assert_string_equal(k, "key1");
    assert_int_equal(gw_auth_extract("Bearer ", NULL, &k, &n), TX_ENOTFOUND);
    assert_int_equal(gw_auth_extract(NULL, "", &k, &n), TX_ENOTFOUND);
    assert_int_equal(gw_auth_extract(NULL, NULL, &k, &n), TX_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_extract),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
