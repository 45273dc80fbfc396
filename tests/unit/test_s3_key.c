/* Unit tests of storage/s3's pure parts: key rules, raw key format, config validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "storage/s3.h"

#include <stdlib.h>
#include <string.h>

static void t_key_valid(void **state)
{
    static const char *const good[] = {
        "a",           "raw/2024/03/11/01HRZ3Q8M5K2V7N4B6C9D0E1F2.json",
        "x.y_z-0/A.B", "...x/y..",
        "a/.hidden",   "a/b/c/d/e/f/g",
    };
    struct tx_err err = { 0 };
    char *longest = malloc(S3_KEY_MAX + 1);

    (void) state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (s3_key_check(good[i], &err) != 0)
            fail_msg("%s: %s", good[i], err.msg);
    }
    assert_non_null(longest);
    memset(longest, 'k', S3_KEY_MAX);
    longest[S3_KEY_MAX] = '\0';
    assert_int_equal(s3_key_check(longest, &err), 0);
    free(longest);
}

static void t_key_invalid(void **state)
{
    static const char *const bad[] = { "",      "/a",          "a/",  "a//b", ".",     "..",
                                       "a/./b", "a/../b",      "a b", "a?b",  "a%41b", "a+b",
                                       "a:b",   "a*b",         "a~b", "a\\b", "a\tb",  "a\rb",
                                       "\x7f",  "caf\xc3\xa9", "a#b", "a&b=", "a'b",   "a\"b",
                                       "a<b",   "a\x01" };
    struct tx_err err = { 0 };
    char *toolong = malloc(S3_KEY_MAX + 2);

    (void) state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (s3_key_check(bad[i], &err) != TX_EINVAL)
            fail_msg("key #%zu was accepted", i);
        assert_int_equal(err.code, TX_EINVAL);
        assert_true(err.msg[0] != '\0');
    }
    assert_int_equal(s3_key_check(NULL, &err), TX_EINVAL);
    assert_int_equal(s3_key_check("a b", NULL), TX_EINVAL); /* err is optional */
    assert_non_null(toolong);
    memset(toolong, 'k', S3_KEY_MAX + 1);
    toolong[S3_KEY_MAX + 1] = '\0';
    assert_int_equal(s3_key_check(toolong, &err), TX_EINVAL);
    free(toolong);
}

static void t_raw_key_format(void **state)
{
    struct tx_err err = { 0 };
    char out[128];
    char tiny[20];

    (void) state;
    /* 2024-03-11T12:00:00Z */
    assert_int_equal(s3_raw_key_format(out, sizeof(out), 1710158400000LL, "01HRZ3Q8M5", &err), 0);
    assert_string_equal(out, "raw/2024/03/11/01HRZ3Q8M5.json");
    assert_int_equal(s3_key_check(out, &err), 0);
    /* The last millisecond of a day stays on that day (UTC). */
    assert_int_equal(s3_raw_key_format(out, sizeof(out), 1709251199999LL, "u-1_x", &err), 0);
    assert_string_equal(out, "raw/2024/02/29/u-1_x.json");
    assert_int_equal(s3_raw_key_format(out, sizeof(out), 0, "a", &err), 0);
    assert_string_equal(out, "raw/1970/01/01/a.json");

    assert_int_equal(s3_raw_key_format(out, sizeof(out), -1, "a", &err), TX_EINVAL);
    assert_int_equal(s3_raw_key_format(out, sizeof(out), 0, "", &err), TX_EINVAL);
    assert_int_equal(s3_raw_key_format(out, sizeof(out), 0, NULL, &err), TX_EINVAL);
    assert_int_equal(s3_raw_key_format(out, sizeof(out), 0, "a/b", &err), TX_EINVAL);
    assert_int_equal(s3_raw_key_format(out, sizeof(out), 0, "a.b", &err), TX_EINVAL);
    assert_int_equal(s3_raw_key_format(out, sizeof(out), 0, "a b", &err), TX_EINVAL);
    memset(out, 'x', 70);
    out[70] = '\0';
    assert_int_equal(s3_raw_key_format(out, sizeof(out), 0, out, &err), TX_EINVAL); /* 70 > 64 */
    assert_int_equal(s3_raw_key_format(tiny, sizeof(tiny), 0, "0123456789", &err), TX_ETOOBIG);
    assert_string_equal(tiny, "");
}

static struct s3_config base_config(void)
{
    struct s3_config cfg = {
        .endpoint = "http://127.0.0.1:9000",
        .access_key = "ak",
        .secret_key = "sk",
        .bucket = "txpipe-raw",
        .region = "us-east-1",
        .signature = 2,
        .timeout_ms = 1000,
    };

    return cfg;
}

static void expect_create(const struct s3_config *cfg, int ok)
{
    struct tx_err err = { 0 };
    struct s3_client *c = s3_client_create(cfg, &err);

    if (ok && c == NULL)
        fail_msg("endpoint %s bucket %s sig %d: refused: %s",
                 cfg->endpoint ? cfg->endpoint : "(null)", cfg->bucket ? cfg->bucket : "(null)",
                 cfg->signature, err.msg);
    if (!ok && c != NULL)
        fail_msg("endpoint %s bucket %s sig %d: accepted", cfg->endpoint ? cfg->endpoint : "(null)",
                 cfg->bucket ? cfg->bucket : "(null)", cfg->signature);
    if (!ok)
        assert_int_equal(err.code, TX_EINVAL);
    s3_client_destroy(c);
}

static void t_config_endpoints(void **state)
{
    static const char *const good[] = {
        "http://127.0.0.1:9000", "http://127.0.0.1:9000/",      "http://minio",
        "http://minio:1",        "http://s3.example.com:65535", "http://[::1]:9000",
    };
    static const char *const bad[] = {
        "",
        "127.0.0.1:9000",
        "ftp://host",
        "http://",
        "http:///",
        "http://host/path",
        "http://host:9000/bucket",
        "http://user@host",
        "http://host:0",
        "http://host:65536",
        "http://host:12a",
        "http://host:",
        "http://host?x=1",
        "http://[::1",
        "http://ho st",
    };
    struct s3_config cfg = base_config();

    (void) state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cfg.endpoint = good[i];
        expect_create(&cfg, 1);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg.endpoint = bad[i];
        expect_create(&cfg, 0);
    }
    cfg.endpoint = NULL;
    expect_create(&cfg, 0);
    /* libs3 2.0 does not verify certificates: https only through the V4 (libcurl) path. */
    cfg.endpoint = "https://s3.example.com";
    expect_create(&cfg, 0);
    cfg.signature = 4;
    expect_create(&cfg, 1);
}

static void t_config_other(void **state)
{
    static const char *const bad_buckets[] = {
        "ab",  "Upper", "-abc",  "abc-",
        "a_b", "a b",   "abc/d", "a234567890123456789012345678901234567890123456789012345678901234",
    };
    struct s3_config cfg = base_config();

    (void) state;
    for (size_t i = 0; i < sizeof(bad_buckets) / sizeof(bad_buckets[0]); i++) {
        cfg.bucket = bad_buckets[i];
        expect_create(&cfg, 0);
    }
    cfg.bucket = NULL;
    expect_create(&cfg, 0);
    cfg = base_config();
    cfg.bucket = "a.b-c";
    expect_create(&cfg, 1);

    cfg = base_config();
    cfg.signature = 3;
    expect_create(&cfg, 0);
    cfg.signature = 0; /* default: 2 */
    expect_create(&cfg, 1);
    cfg = base_config();
    cfg.timeout_ms = -1;
    expect_create(&cfg, 0);
    cfg.timeout_ms = 600001;
    expect_create(&cfg, 0);
    cfg.timeout_ms = 0; /* default */
    expect_create(&cfg, 1);
    cfg = base_config();
    cfg.access_key = "";
    expect_create(&cfg, 0);
    cfg = base_config();
    cfg.secret_key = NULL;
    expect_create(&cfg, 0);
    cfg = base_config();
    cfg.region = "us:east";
    expect_create(&cfg, 0);
    cfg.region = NULL; /* default us-east-1 */
    expect_create(&cfg, 1);
    assert_null(s3_client_create(NULL, NULL));
    s3_client_destroy(NULL);
}

static void t_bad_arguments(void **state)
{
    struct s3_config cfg = base_config();
    struct tx_err err = { 0 };
    struct s3_client *c;
    struct s3_meta meta = {
        .sha256_hex = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef",
        .records = 1,
    };
    char *data = (char *) 1;
    size_t len = 7;

    (void) state;
    cfg.endpoint = "http://127.0.0.1:1"; /* never contacted: every call fails validation */
    c = s3_client_create(&cfg, &err);
    assert_non_null(c);
    assert_int_equal(s3_object_put(c, "k", NULL, 1, &meta, &err), TX_EINVAL);
    assert_int_equal(s3_object_put(c, "k", "x", 1, NULL, &err), TX_EINVAL);
    meta.sha256_hex = "0123";
    assert_int_equal(s3_object_put(c, "k", "x", 1, &meta, &err), TX_EINVAL);
    meta.sha256_hex = "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(s3_object_put(c, "k", "x", 1, &meta, &err), TX_EINVAL);
    meta.sha256_hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    meta.content_type = "text/plain\r\nX-Injected: 1";
    assert_int_equal(s3_object_put(c, "k", "x", 1, &meta, &err), TX_EINVAL);
    meta.content_type = NULL;
    meta.idempotency_key = "";
    assert_int_equal(s3_object_put(c, "k", "x", 1, &meta, &err), TX_EINVAL);
    meta.idempotency_key = "k\xc3\xa9";
    assert_int_equal(s3_object_put(c, "k", "x", 1, &meta, &err), TX_EINVAL);
    assert_int_equal(s3_object_get(c, "k", 10, NULL, &len, &err), TX_EINVAL);
    assert_int_equal(s3_object_get(c, "a b", 10, &data, &len, &err), TX_EINVAL);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_int_equal(s3_object_put(NULL, "k", "x", 1, &meta, &err), TX_EINVAL);
    assert_int_equal(s3_object_head(NULL, "k", NULL, &err), TX_EINVAL);
    assert_int_equal(s3_bucket_check(NULL, &err), TX_EINVAL);
    s3_client_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_key_valid),      cmocka_unit_test(t_key_invalid),
        cmocka_unit_test(t_raw_key_format), cmocka_unit_test(t_config_endpoints),
        cmocka_unit_test(t_config_other),   cmocka_unit_test(t_bad_arguments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
