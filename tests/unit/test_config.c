#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tx_config.h"

/* A fake environment: NULL-terminated pairs. */
struct kv {
    const char *key;
    const char *val;
};

static const char *fake_getenv(void *ctx, const char *key)
{
    const struct kv *p;

    for (p = ctx; p->key != NULL; p++)
        if (strcmp(p->key, key) == 0)
            return p->val;
    return NULL;
}

struct cfg {
    char *name;
    long long workers;
    bool tls;
    long long max_upload;
    long long timeout;
    char *api_key;
    char *note;
};

static const struct tx_config_entry table[] = {
    { "TX_NAME", TX_CONFIG_STRING, "gateway", 1, 16, offsetof(struct cfg, name), 0, "name" },
    { "TX_WORKERS", TX_CONFIG_INT, "4", 1, 64, offsetof(struct cfg, workers), 0, "threads" },
    { "TX_TLS", TX_CONFIG_BOOL, "false", 0, 0, offsetof(struct cfg, tls), 0, "use TLS" },
    { "TX_MAX_UPLOAD_BYTES", TX_CONFIG_SIZE, "10MiB", 1, 1LL << 40,
      offsetof(struct cfg, max_upload), 0, "largest body" },
    { "TX_TIMEOUT", TX_CONFIG_MS, "5s", 0, 86400000LL, offsetof(struct cfg, timeout), 0,
      "deadline" },
    { "TX_API_KEY", TX_CONFIG_STRING, NULL, 8, 128, offsetof(struct cfg, api_key), TX_CONFIG_SECRET,
      "API key" },
    { "TX_NOTE", TX_CONFIG_STRING, "", 0, 0, offsetof(struct cfg, note), 0, "free text" },
};
#define NTAB (sizeof(table) / sizeof(table[0]))

static char tmpdir[] = "/tmp/txcfgtestXXXXXX";

static int setup_dir(void **state)
{
    (void) state;
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
    char cmd[128];

    (void) state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes len bytes to a file in the temp dir; returns its path (static buffer per name). */
static const char *write_file(const char *name, const char *data, size_t len)
{
    static char path[8][256];
    static int next;
    char *p = path[next++ % 8];
    FILE *f;

    snprintf(p, 256, "%s/%s", tmpdir, name);
    f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return p;
}

/* Loads with env; the key is always supplied unless env names TX_API_KEY(_FILE) itself. */
static int load(const struct kv *env, struct cfg *c, struct tx_err *err)
{
    struct kv all[32];
    size_t n = 0;
    bool has_key = false;
    const struct kv *p;

    for (p = env; p->key != NULL; p++) {
        if (strncmp(p->key, "TX_API_KEY", 10) == 0)
            has_key = true;
        all[n++] = *p;
    }
    if (!has_key)
        all[n++] = (struct kv){ "TX_API_KEY", "0123456789" };
    all[n] = (struct kv){ NULL, NULL };
    memset(c, 0, sizeof(*c));
    tx_err_clear(err);
    return tx_config_load(table, NTAB, c, fake_getenv, all, err);
}

static void expect_ok(const struct kv *env, struct cfg *c)
{
    struct tx_err err;

    if (load(env, c, &err) != 0)
        fail_msg("load failed: %s", err.msg);
}

/* One variable set to value must fail with every fragment in the message. */
static void expect_fail(const char *key, const char *value, const char *frag1, const char *frag2)
{
    struct kv env[] = { { key, value }, { NULL, NULL } };
    struct cfg c;
    struct tx_err err;
    int rc = load(env, &c, &err);

    if (rc != TX_EINVAL)
        fail_msg("%s=\"%s\" accepted (rc %d)", key, value, rc);
    assert_int_equal(err.code, TX_EINVAL);
    if (strstr(err.msg, frag1) == NULL || (frag2 != NULL && strstr(err.msg, frag2) == NULL))
        fail_msg("%s=\"%s\": message \"%s\" lacks \"%s\"/\"%s\"", key, value, err.msg, frag1,
                 frag2 != NULL ? frag2 : "");
    /* nothing left allocated on failure */
    assert_null(c.name);
    assert_null(c.api_key);
    assert_null(c.note);
}

static void test_defaults(void **state)
{
    struct kv env[] = { { NULL, NULL } };
    struct cfg c;

    (void) state;
    expect_ok(env, &c);
    assert_string_equal(c.name, "gateway");
    assert_int_equal(c.workers, 4);
    assert_false(c.tls);
    assert_int_equal(c.max_upload, 10LL * 1024 * 1024);
    assert_int_equal(c.timeout, 5000);
    assert_string_equal(c.api_key, "0123456789");
    assert_non_null(c.note);
    assert_string_equal(c.note, "");
    tx_config_cleanup(table, NTAB, &c);
    assert_null(c.name);
    assert_null(c.api_key);
    assert_null(c.note);
    tx_config_cleanup(table, NTAB, &c); /* idempotent */
}

static void test_string(void **state)
{
    struct kv env[] = { { "TX_NAME", "fraud" }, { "TX_NOTE", "hello world" }, { NULL, NULL } };
    struct kv empty[] = { { "TX_NAME", "" }, { NULL, NULL } };
    struct kv edge[] = { { "TX_NAME", "x" }, { NULL, NULL } };
    struct kv edge2[] = { { "TX_NAME", "0123456789abcdef" }, { NULL, NULL } };
    struct cfg c;

    (void) state;
    expect_ok(env, &c);
    assert_string_equal(c.name, "fraud");
    assert_string_equal(c.note, "hello world");
    tx_config_cleanup(table, NTAB, &c);
    /* empty counts as unset: the default */
    expect_ok(empty, &c);
    assert_string_equal(c.name, "gateway");
    tx_config_cleanup(table, NTAB, &c);
    expect_ok(edge, &c);
    assert_string_equal(c.name, "x");
    tx_config_cleanup(table, NTAB, &c);
    expect_ok(edge2, &c);
    assert_string_equal(c.name, "0123456789abcdef");
    tx_config_cleanup(table, NTAB, &c);
    expect_fail("TX_NAME", "0123456789abcdefg", "TX_NAME=\"0123456789abcdefg\"",
                "length 17 out of range (length 1..16)");
}

static void test_int(void **state)
{
    struct kv env[] = { { "TX_WORKERS", "64" }, { NULL, NULL } };
    struct kv env2[] = { { "TX_WORKERS", "+1" }, { NULL, NULL } };
    struct cfg c;

    (void) state;
    expect_ok(env, &c);
    assert_int_equal(c.workers, 64);
    tx_config_cleanup(table, NTAB, &c);
    expect_ok(env2, &c);
    assert_int_equal(c.workers, 1);
    tx_config_cleanup(table, NTAB, &c);
    expect_fail("TX_WORKERS", "65", "TX_WORKERS=\"65\"", "65 out of range (range 1..64)");
    expect_fail("TX_WORKERS", "0", "TX_WORKERS=\"0\"", "0 out of range (range 1..64)");
    expect_fail("TX_WORKERS", "-3", "-3 out of range (range 1..64)", NULL);
    expect_fail("TX_WORKERS", "abc", "TX_WORKERS=\"abc\": not an integer (range 1..64)", NULL);
    expect_fail("TX_WORKERS", "12x", "not an integer", NULL);
    expect_fail("TX_WORKERS", " 5", "not an integer", NULL);
    expect_fail("TX_WORKERS", "5 ", "not an integer", NULL);
    expect_fail("TX_WORKERS", "-", "not an integer", NULL);
    expect_fail("TX_WORKERS", "0x10", "not an integer", NULL);
    expect_fail("TX_WORKERS", "99999999999999999999", "too large", "range 1..64");
    expect_fail("TX_WORKERS", "9223372036854775808", "too large", NULL);
}

static void test_int_extremes(void **state)
{
    long long v = 0;
    const struct tx_config_entry t[] = {
        { "TX_V", TX_CONFIG_INT, NULL, -LLONG_MAX, LLONG_MAX, 0, 0, "" },
    };
    struct kv env[] = { { "TX_V", "9223372036854775807" }, { NULL, NULL } };
    struct kv env2[] = { { "TX_V", "-9223372036854775807" }, { NULL, NULL } };
    struct tx_err err;

    (void) state;
    assert_int_equal(tx_config_load(t, 1, &v, fake_getenv, env, &err), 0);
    assert_true(v == LLONG_MAX);
    assert_int_equal(tx_config_load(t, 1, &v, fake_getenv, env2, &err), 0);
    assert_true(v == -LLONG_MAX);
}

static void test_bool(void **state)
{
    static const char *const yes[] = { "1", "true", "TRUE", "True", "yes", "YES", "on", "On" };
    static const char *const no[] = { "0", "false", "FALSE", "no", "No", "off", "OFF" };
    struct cfg c;
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        struct kv env[] = { { "TX_TLS", yes[i] }, { NULL, NULL } };

        expect_ok(env, &c);
        assert_true(c.tls);
        tx_config_cleanup(table, NTAB, &c);
    }
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        struct kv env[] = { { "TX_TLS", no[i] }, { NULL, NULL } };

        c.tls = true;
        expect_ok(env, &c);
        assert_false(c.tls);
        tx_config_cleanup(table, NTAB, &c);
    }
    expect_fail("TX_TLS", "maybe", "TX_TLS=\"maybe\": not a boolean", NULL);
    expect_fail("TX_TLS", "2", "not a boolean", NULL);
    expect_fail("TX_TLS", "truee", "not a boolean", NULL);
}

static void test_size(void **state)
{
    static const struct {
        const char *text;
        long long want;
    } ok[] = {
        { "7", 7 },
        { "7b", 7 },
        { "7B", 7 },
        { "512k", 512 * 1024 },
        { "512K", 512 * 1024 },
        { "512KiB", 512 * 1024 },
        { "1kB", 1000 },
        { "10m", 10 * 1024 * 1024 },
        { "10MiB", 10 * 1024 * 1024 },
        { "10mib", 10 * 1024 * 1024 },
        { "10MB", 10000000 },
        { "2g", 2LL << 30 },
        { "2GiB", 2LL << 30 },
        { "2GB", 2000000000LL },
        { "1t", 1LL << 40 },
        { "1TiB", 1LL << 40 },
        { "1TB", 1000000000000LL },
        { "1", 1 },
    };
    struct cfg c;
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct kv env[] = { { "TX_MAX_UPLOAD_BYTES", ok[i].text }, { NULL, NULL } };

        expect_ok(env, &c);
        if (c.max_upload != ok[i].want)
            fail_msg("\"%s\" gave %lld, want %lld", ok[i].text, c.max_upload, ok[i].want);
        tx_config_cleanup(table, NTAB, &c);
    }
    expect_fail("TX_MAX_UPLOAD_BYTES", "0", "0 out of range (range 1..1099511627776 bytes)", NULL);
    expect_fail("TX_MAX_UPLOAD_BYTES", "1099511627777", "out of range", NULL);
    expect_fail("TX_MAX_UPLOAD_BYTES", "1025g", "1100585369600 out of range", NULL);
    expect_fail("TX_MAX_UPLOAD_BYTES", "-1", "must not be negative", NULL);
    expect_fail("TX_MAX_UPLOAD_BYTES", "-10MiB", "must not be negative", NULL);
    expect_fail("TX_MAX_UPLOAD_BYTES", "10XB", "TX_MAX_UPLOAD_BYTES=\"10XB\"",
                "unknown unit \"XB\"");
    expect_fail("TX_MAX_UPLOAD_BYTES", "10 MiB", "unknown unit \" MiB\"", NULL);
    expect_fail("TX_MAX_UPLOAD_BYTES", "1.5MiB", "unknown unit \".5MiB\"", NULL);
    expect_fail("TX_MAX_UPLOAD_BYTES", "MiB", "expected a number", NULL);
    expect_fail("TX_MAX_UPLOAD_BYTES", "9223372036854775807k", "too large", NULL);
    expect_fail("TX_MAX_UPLOAD_BYTES", "99999999999999999999", "too large", NULL);
    expect_fail("TX_MAX_UPLOAD_BYTES", "8796093022208t", "too large", NULL);
}

static void test_ms(void **state)
{
    static const struct {
        const char *text;
        long long want;
    } ok[] = {
        { "200ms", 200 },   { "200", 200 },
        { "0", 0 },         { "5s", 5000 },
        { "5S", 5000 },     { "2m", 120000 },
        { "1min", 60000 },  { "1h", 3600000 },
        { "1d", 86400000 }, { "86400000ms", 86400000 },
    };
    struct cfg c;
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct kv env[] = { { "TX_TIMEOUT", ok[i].text }, { NULL, NULL } };

        expect_ok(env, &c);
        if (c.timeout != ok[i].want)
            fail_msg("\"%s\" gave %lld, want %lld", ok[i].text, c.timeout, ok[i].want);
        tx_config_cleanup(table, NTAB, &c);
    }
    expect_fail("TX_TIMEOUT", "2d",
                "TX_TIMEOUT=\"2d\": 172800000 out of range (range 0..86400000 ms)", NULL);
    expect_fail("TX_TIMEOUT", "86400001", "out of range", NULL);
    expect_fail("TX_TIMEOUT", "-1s", "must not be negative", NULL);
    expect_fail("TX_TIMEOUT", "1.5s", "unknown unit \".5s\"", "ms, s, m, min, h, d");
    expect_fail("TX_TIMEOUT", "5ss", "unknown unit \"ss\"", NULL);
    expect_fail("TX_TIMEOUT", "5us", "unknown unit", NULL);
    expect_fail("TX_TIMEOUT", "s", "expected a number", NULL);
    expect_fail("TX_TIMEOUT", "9223372036854775807h", "too large", NULL);
}

static void test_required(void **state)
{
    struct kv unset[] = { { "TX_API_KEY", NULL }, { NULL, NULL } };
    struct kv empty[] = { { "TX_API_KEY", "" }, { NULL, NULL } };
    struct cfg c;
    struct tx_err err;

    (void) state;
    assert_int_equal(load(unset, &c, &err), TX_EINVAL);
    assert_string_equal(err.msg, "TX_API_KEY (or TX_API_KEY_FILE) is required but not set or "
                                 "empty (string, length 8..128)");
    assert_null(c.name); /* loaded before the failure, freed again */
    assert_int_equal(load(empty, &c, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "TX_API_KEY (or TX_API_KEY_FILE) is required"));
}

static void test_secret_env(void **state)
{
    struct kv env[] = { { "TX_API_KEY", "abcdefgh" }, { NULL, NULL } };
    struct kv shortkey[] = { { "TX_API_KEY", "hunter2" }, { NULL, NULL } };
    struct cfg c;
    struct tx_err err;

    (void) state;
    expect_ok(env, &c);
    assert_string_equal(c.api_key, "abcdefgh");
    tx_config_cleanup(table, NTAB, &c);
    assert_int_equal(load(shortkey, &c, &err), TX_EINVAL);
    assert_string_equal(err.msg,
                        "TX_API_KEY (value hidden): length 7 out of range (length 8..128)");
    assert_null(strstr(err.msg, "hunter2"));
}

static void test_secret_file(void **state)
{
    const char *p1 = write_file("key1", "s3cr3t-value\n", 13);
    const char *p2 = write_file("key2", "s3cr3t-value\r\n\r\n", 16);
    const char *p3 = write_file("key3", "line1\nline2", 11);
    const char *pe = write_file("empty", "\n", 1);
    const char *pn = write_file("nul", "abcdefgh\0ij", 11);
    const char *ps = write_file("short", "hunter2\n", 8);
    struct cfg c;
    struct tx_err err;
    char *big;
    const char *pb;

    (void) state;
    {
        struct kv env[] = { { "TX_API_KEY_FILE", p1 }, { NULL, NULL } };

        expect_ok(env, &c);
        assert_string_equal(c.api_key, "s3cr3t-value");
        tx_config_cleanup(table, NTAB, &c);
    }
    {
        struct kv env[] = { { "TX_API_KEY_FILE", p2 }, { "TX_API_KEY", "" }, { NULL, NULL } };

        expect_ok(env, &c);
        assert_string_equal(c.api_key, "s3cr3t-value");
        tx_config_cleanup(table, NTAB, &c);
    }
    {
        struct kv env[] = { { "TX_API_KEY_FILE", p3 }, { NULL, NULL } };

        expect_ok(env, &c);
        assert_string_equal(c.api_key, "line1\nline2");
        tx_config_cleanup(table, NTAB, &c);
    }
    {
        struct kv env[] = { { "TX_API_KEY_FILE", p1 },
                            { "TX_API_KEY", "abcdefgh" },
                            { NULL, NULL } };

        assert_int_equal(load(env, &c, &err), TX_EINVAL);
        assert_string_equal(err.msg, "both TX_API_KEY and TX_API_KEY_FILE are set; set only one");
        assert_null(c.name);
    }
    {
        struct kv env[] = { { "TX_API_KEY_FILE", "/nonexistent/txkey" }, { NULL, NULL } };

        assert_int_equal(load(env, &c, &err), TX_EINVAL);
        assert_string_equal(err.msg, "TX_API_KEY_FILE: cannot open \"/nonexistent/txkey\": No "
                                     "such file or directory");
    }
    {
        struct kv env[] = { { "TX_API_KEY_FILE", pe }, { NULL, NULL } };

        assert_int_equal(load(env, &c, &err), TX_EINVAL);
        assert_non_null(strstr(err.msg, "is empty"));
    }
    {
        struct kv env[] = { { "TX_API_KEY_FILE", pn }, { NULL, NULL } };

        assert_int_equal(load(env, &c, &err), TX_EINVAL);
        assert_non_null(strstr(err.msg, "contains a NUL byte"));
    }
    {
        struct kv env[] = { { "TX_API_KEY_FILE", ps }, { NULL, NULL } };

        assert_int_equal(load(env, &c, &err), TX_EINVAL);
        assert_string_equal(
            err.msg, "TX_API_KEY_FILE (value hidden): length 7 out of range (length 8..128)");
    }
    big = malloc(TX_CONFIG_FILE_MAX + 1);
    assert_non_null(big);
    memset(big, 'a', TX_CONFIG_FILE_MAX + 1);
    pb = write_file("big", big, TX_CONFIG_FILE_MAX + 1);
    {
        struct kv env[] = { { "TX_API_KEY_FILE", pb }, { NULL, NULL } };

        assert_int_equal(load(env, &c, &err), TX_EINVAL);
        assert_non_null(strstr(err.msg, "is larger than 65536 bytes"));
    }
    /* exactly the limit is fine (the key's own max is 128, so use an unbounded secret) */
    pb = write_file("big", big, TX_CONFIG_FILE_MAX);
    {
        char *s = NULL;
        const struct tx_config_entry t[] = {
            { "TX_S", TX_CONFIG_STRING, NULL, 0, 0, 0, TX_CONFIG_SECRET, "" },
        };
        struct kv env[] = { { "TX_S_FILE", pb }, { NULL, NULL } };

        assert_int_equal(tx_config_load(t, 1, &s, fake_getenv, env, &err), 0);
        assert_int_equal(strlen(s), TX_CONFIG_FILE_MAX);
        tx_config_cleanup(t, 1, &s);
        assert_null(s);
    }
    free(big);
}

static void test_file_for_non_secret(void **state)
{
    const char *p = write_file("name", "fraud\n", 6);
    struct cfg c;
    struct tx_err err;
    struct kv env[] = { { "TX_NAME_FILE", p }, { NULL, NULL } };
    struct {
        char *log;
        char *log_file;
    } t2 = { NULL, NULL };
    const struct tx_config_entry tab2[] = {
        { "TX_LOG", TX_CONFIG_STRING, "info", 0, 0, 0, 0, "" },
        { "TX_LOG_FILE", TX_CONFIG_STRING, "", 0, 0, sizeof(char *), 0, "" },
    };
    struct kv env2[] = { { "TX_LOG_FILE", "/var/log/x" }, { NULL, NULL } };

    (void) state;
    assert_int_equal(load(env, &c, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "TX_NAME_FILE is set, but TX_NAME is not a secret"));
    /* TX_LOG_FILE is a key of its own, not TX_LOG's file variant */
    assert_int_equal(tx_config_load(tab2, 2, &t2, fake_getenv, env2, &err), 0);
    assert_string_equal(t2.log, "info");
    assert_string_equal(t2.log_file, "/var/log/x");
    tx_config_cleanup(tab2, 2, &t2);
}

static void test_bad_default_and_table(void **state)
{
    long long v = 0;
    char *s = NULL;
    const struct tx_config_entry bad_def[] = {
        { "TX_V", TX_CONFIG_MS, "10q", 0, 1000, 0, 0, "" },
    };
    const struct tx_config_entry out_def[] = {
        { "TX_V", TX_CONFIG_INT, "0", 1, 10, 0, 0, "" },
    };
    const struct tx_config_entry bad_range[] = {
        { "TX_V", TX_CONFIG_INT, "5", 10, 1, 0, 0, "" },
    };
    const struct tx_config_entry secret_def[] = {
        { "TX_S", TX_CONFIG_STRING, "short", 8, 16, 0, TX_CONFIG_SECRET, "" },
    };
    struct kv env[] = { { NULL, NULL } };
    struct tx_err err;

    (void) state;
    assert_int_equal(tx_config_load(bad_def, 1, &v, fake_getenv, env, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "TX_V default=\"10q\": unknown unit \"q\""));
    assert_int_equal(tx_config_load(out_def, 1, &v, fake_getenv, env, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "TX_V default=\"0\": 0 out of range (range 1..10)"));
    assert_int_equal(tx_config_load(bad_range, 1, &v, fake_getenv, env, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "config table: TX_V has min 10 > max 1"));
    assert_int_equal(tx_config_load(secret_def, 1, &s, fake_getenv, env, &err), TX_EINVAL);
    assert_string_equal(err.msg,
                        "TX_S default (value hidden): length 5 out of range (length 8..16)");
    assert_null(s);
}

static void test_long_value_truncated(void **state)
{
    char val[300];
    struct cfg c;
    struct tx_err err;
    struct kv env[] = { { "TX_WORKERS", val }, { NULL, NULL } };

    (void) state;
    memset(val, '7', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    val[10] = 'x';
    assert_int_equal(load(env, &c, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "...\": not an integer (range 1..64)"));
    assert_true(strlen(err.msg) < 160);
}

static void test_real_getenv(void **state)
{
    struct cfg c;
    struct tx_err err;

    (void) state;
    assert_int_equal(setenv("TX_API_KEY", "from-the-environment", 1), 0);
    assert_int_equal(setenv("TX_WORKERS", "9", 1), 0);
    unsetenv("TX_API_KEY_FILE");
    unsetenv("TX_NAME_FILE");
    memset(&c, 0, sizeof(c));
    assert_int_equal(tx_config_load(table, NTAB, &c, NULL, NULL, &err), 0);
    assert_string_equal(c.api_key, "from-the-environment");
    assert_int_equal(c.workers, 9);
    tx_config_cleanup(table, NTAB, &c);
    unsetenv("TX_API_KEY");
    unsetenv("TX_WORKERS");
    /* err may be NULL */
    assert_int_equal(tx_config_load(table, NTAB, &c, NULL, NULL, NULL), TX_EINVAL);
}

static void test_help(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const struct tx_config_entry t[] = {
        { "TX_DEMO_KEY", TX_CONFIG_STRING, "demo-default-secret", 0, 0, 0, TX_CONFIG_SECRET,
          "demo key" },
    };

    (void) state;
    assert_non_null(f);
    tx_config_print_help(f, table, NTAB);
    tx_config_print_help(f, t, 1);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(buf, "  TX_NAME (string, default gateway, length 1..16)\n      name\n"));
    assert_non_null(strstr(buf, "  TX_WORKERS (integer, default 4, range 1..64)\n      threads\n"));
    assert_non_null(strstr(buf, "  TX_TLS (boolean, default false, true/false"));
    assert_non_null(strstr(buf, "  TX_MAX_UPLOAD_BYTES (size, default 10MiB, range "
                                "1..1099511627776 bytes)\n      largest body\n"));
    assert_non_null(strstr(buf, "  TX_TIMEOUT (duration, default 5s, range 0..86400000 ms)"));
    assert_non_null(strstr(buf, "  TX_API_KEY (string, secret, or TX_API_KEY_FILE, required, "
                                "length 8..128)\n      API key\n"));
    assert_non_null(strstr(buf, "  TX_NOTE (string, default empty, any length)"));
    assert_non_null(strstr(buf, "  TX_DEMO_KEY (string, secret, or TX_DEMO_KEY_FILE, has a "
                                "default, any length)"));
    assert_null(strstr(buf, "demo-default-secret"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_string),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_int_extremes),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_ms),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_secret_env),
        cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_file_for_non_secret),
        cmocka_unit_test(test_bad_default_and_table),
        cmocka_unit_test(test_long_value_truncated),
        cmocka_unit_test(test_real_getenv),
        cmocka_unit_test(test_help),
    };

    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
