#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/tx_time.h"

/* 2024-03-11T12:00:00Z, the instant in the seed files. */
#define SEED_MS 1710158400000LL

static int64_t parse_ms(const char *s)
{
    struct tx_time t;
    struct tx_err err;
    int rc;

    tx_err_clear(&err);
    rc = tx_time_parse(s, strlen(s), &t, &err);
    if (rc != 0)
        fail_msg("'%s' rejected: %s", s, err.msg);
    return tx_time_to_ms(&t);
}

static void expect_reject(const char *s, const char *reason)
{
    struct tx_time t = { 123, 456, 789 };
    struct tx_err err;
    int rc;

    tx_err_clear(&err);
    rc = tx_time_parse(s, strlen(s), &t, &err);
    if (rc != TX_EINVAL)
        fail_msg("'%s' accepted (rc %d), expected '%s'", s, rc, reason);
    assert_int_equal(err.code, TX_EINVAL);
    if (strstr(err.msg, reason) == NULL)
        fail_msg("'%s': reason '%s' does not contain '%s'", s, err.msg, reason);
    /* *out untouched on failure */
    assert_int_equal(t.unix_sec, 123);
    assert_int_equal(t.nsec, 456);
    assert_int_equal(t.offset_min, 789);
}

static void test_seed_literal(void **state)
{
    struct tx_time t;
    struct tx_err err;
    const char *s = "2024-03-11T12:00:00 +00:00";

    (void) state;
    assert_int_equal(tx_time_parse(s, strlen(s), &t, &err), 0);
    assert_int_equal(t.unix_sec, SEED_MS / 1000);
    assert_int_equal(t.nsec, 0);
    assert_int_equal(t.offset_min, 0);
    assert_int_equal(tx_time_to_ms(&t), SEED_MS);
}

/* Every "datatrasancao" value in the real seed files ($TX_SEED_DIR) parses to the seed instant. */
static void check_seed_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char buf[65536];
    size_t n;
    const char *p;
    int found = 0;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (p = strstr(buf, "\"datatrasancao\""); p != NULL; p = strstr(p + 1, "\"datatrasancao\"")) {
        const char *v = strchr(p + strlen("\"datatrasancao\""), '"');
        const char *e;
        struct tx_time t;
        struct tx_err err;

        assert_non_null(v);
        v++;
        e = strchr(v, '"');
        assert_non_null(e);
        tx_err_clear(&err);
        if (tx_time_parse(v, (size_t) (e - v), &t, &err) != 0)
            fail_msg("%s: '%.*s' rejected: %s", path, (int) (e - v), v, err.msg);
        assert_int_equal(tx_time_to_ms(&t), SEED_MS);
        found++;
    }
    assert_true(found > 0);
}

static void test_seed_files(void **state)
{
    const char *dir = getenv("TX_SEED_DIR");
    char path[4096];

    (void) state;
    if (dir == NULL)
        dir = "../shared/seed-data";
    snprintf(path, sizeof(path), "%s/Dados.json", dir);
    check_seed_file(path);
    snprintf(path, sizeof(path), "%s/Dados - Fraude1.json", dir);
    check_seed_file(path);
}

static void test_rfc3339_variants(void **state)
{
    struct tx_time t;
    struct tx_err err;
    const char *nonul = "2024-03-11T12:00:00Zgarbage";

    (void) state;
    assert_int_equal(parse_ms("2024-03-11T12:00:00Z"), SEED_MS);
    assert_int_equal(parse_ms("2024-03-11t12:00:00z"), SEED_MS);
    assert_int_equal(parse_ms("2024-03-11 12:00:00Z"), SEED_MS);
    assert_int_equal(parse_ms("2024-03-11T12:00:00+00:00"), SEED_MS);
    assert_int_equal(parse_ms("2024-03-11T12:00:00-00:00"), SEED_MS);
    assert_int_equal(parse_ms("2024-03-11T13:00:00+01:00"), SEED_MS);
    assert_int_equal(parse_ms("2024-03-11T06:30:00-05:30"), SEED_MS);
    assert_int_equal(parse_ms("2024-03-11T13:00:00 +01:00"), SEED_MS);
    assert_int_equal(parse_ms("2024-03-11 13:00:00 +01:00"), SEED_MS);
    assert_int_equal(parse_ms("2024-03-12T11:59:00+23:59"), SEED_MS);
    assert_int_equal(parse_ms("2024-03-10T12:01:00-23:59"), SEED_MS);
    /* Day, month and year change through the offset. */
    assert_int_equal(parse_ms("2024-01-01T00:30:00+01:00"), parse_ms("2023-12-31T23:30:00Z"));

    /* Examples from RFC 3339 section 5.8. */
    assert_int_equal(parse_ms("1985-04-12T23:20:50.52Z"), 482196050520LL);
    assert_int_equal(parse_ms("1996-12-19T16:39:57-08:00"), 851042397000LL);
    assert_int_equal(parse_ms("1937-01-01T12:00:27.87+00:20"), -1041337172130LL);

    /* Offset as written. */
    assert_int_equal(tx_time_parse("2024-03-11T06:30:00-05:30", 25, &t, &err), 0);
    assert_int_equal(t.offset_min, -330);
    assert_int_equal(tx_time_parse("2024-03-11T13:00:00 +01:00", 26, &t, &err), 0);
    assert_int_equal(t.offset_min, 60);

    /* Fractions of 1 to 9 digits. */
    assert_int_equal(tx_time_parse("2024-03-11T12:00:00.5Z", 22, &t, &err), 0);
    assert_int_equal(t.nsec, 500000000);
    assert_int_equal(tx_time_parse("2024-03-11T12:00:00.123456789Z", 30, &t, &err), 0);
    assert_int_equal(t.nsec, 123456789);
    assert_int_equal(t.unix_sec, SEED_MS / 1000);
    assert_int_equal(tx_time_parse("2024-03-11T12:00:00.000000001+00:00", 35, &t, &err), 0);
    assert_int_equal(t.nsec, 1);
    assert_int_equal(tx_time_parse("2024-03-11T12:00:00.999 +00:00", 30, &t, &err), 0);
    assert_int_equal(t.nsec, 999000000);
    assert_int_equal(tx_time_to_ms(&t), SEED_MS + 999);

    /* len bounds the input; no NUL needed. */
    assert_int_equal(tx_time_parse(nonul, 20, &t, &err), 0);
    assert_int_equal(tx_time_to_ms(&t), SEED_MS);
}

static void test_leap_second(void **state)
{
    struct tx_time t;
    struct tx_err err;
    const char *s = "1990-12-31T23:59:60Z";

    (void) state;
    /* RFC 3339 section 5.8: both denote the same leap second; stored as 23:59:59.999999999Z. */
    assert_int_equal(tx_time_parse(s, strlen(s), &t, &err), 0);
    assert_int_equal(t.unix_sec, 662687999LL);
    assert_int_equal(t.nsec, 999999999);
    s = "1990-12-31T15:59:60-08:00";
    assert_int_equal(tx_time_parse(s, strlen(s), &t, &err), 0);
    assert_int_equal(t.unix_sec, 662687999LL);
    assert_int_equal(parse_ms("2016-12-31T23:59:60.5Z"), parse_ms("2017-01-01T00:00:00Z") - 1);
    assert_int_equal(parse_ms("2015-06-30T23:59:60Z"), parse_ms("2015-07-01T00:00:00Z") - 1);
    assert_int_equal(parse_ms("2015-07-01T01:59:60+02:00"), parse_ms("2015-07-01T00:00:00Z") - 1);

    expect_reject("2024-03-11T12:00:60Z", "leap second");
    expect_reject("1990-12-31T23:59:60+01:00", "leap second");
    expect_reject("1990-12-30T23:59:60Z", "leap second");
    expect_reject("2015-06-30T23:58:60Z", "leap second");
    expect_reject("2015-06-29T23:59:60Z", "leap second");
    expect_reject("2015-03-31T23:59:60Z", "leap second");
    expect_reject("2015-12-30T23:59:60Z", "leap second");
}

static void test_rejections(void **state)
{
    struct tx_time t;
    struct tx_err err;

    (void) state;
    /* Impossible dates. */
    expect_reject("2024-02-30T12:00:00Z", "day 30 out of range for 2024-02 (01-29)");
    expect_reject("2023-02-29T12:00:00Z", "day 29 out of range for 2023-02");
    expect_reject("2023-02-29T12:00:00Z", "not a leap year");
    expect_reject("2024-04-31T12:00:00Z", "day 31 out of range for 2024-04 (01-30)");
    expect_reject("2024-13-01T12:00:00Z", "month 13 out of range (01-12)");
    expect_reject("2024-00-01T12:00:00Z", "month 00 out of range (01-12)");
    expect_reject("2024-03-00T12:00:00Z", "day 00 out of range for 2024-03 (01-31)");
    expect_reject("2024-03-32T12:00:00Z", "day 32 out of range");
    /* Times. */
    expect_reject("2024-03-11T24:00:00Z", "hour 24 out of range (00-23)");
    expect_reject("2024-03-11T12:60:00Z", "minute 60 out of range (00-59)");
    expect_reject("2024-03-11T12:00:61Z", "second 61 out of range");
    expect_reject("2024-03-11T12:00:99Z", "second 99 out of range");
    /* Offsets. */
    expect_reject("2024-03-11T12:00:00+25:00", "offset hour 25 out of range (00-23)");
    expect_reject("2024-03-11T12:00:00+24:00", "offset hour 24 out of range (00-23)");
    expect_reject("2024-03-11T12:00:00-23:60", "offset minute 60 out of range (00-59)");
    expect_reject("2024-03-11T12:00:00", "missing UTC offset");
    expect_reject("2024-03-11T12:00:00.123", "missing UTC offset");
    expect_reject("2024-03-11T12:00:00 ", "missing UTC offset");
    expect_reject("2024-03-11T12:00:00 Z", "expected +HH:MM or -HH:MM after the space");
    expect_reject("2024-03-11T12:00:00  +00:00", "expected +HH:MM or -HH:MM after the space");
    expect_reject("2024-03-11T12:00:00+0000", "expected ':' in offset");
    expect_reject("2024-03-11T12:00:00+00", "expected ':' in offset");
    expect_reject("2024-03-11T12:00:00+0:00", "expected 2-digit offset hour");
    expect_reject("2024-03-11T12:00:00+00:0", "expected 2-digit offset minute");
    expect_reject("2024-03-11T12:00:00UTC", "expected 'Z', +HH:MM or -HH:MM at offset 19");
    /* Trailing garbage. */
    expect_reject("2024-03-11T12:00:00Zx", "trailing characters after the offset at offset 20");
    expect_reject("2024-03-11T12:00:00+00:00 ", "trailing characters");
    expect_reject("2024-03-11T12:00:00 +00:00\r", "trailing characters");
    expect_reject("2024-03-11T12:00:00Z\n", "trailing characters");
    /* Years. */
    expect_reject("0000-01-01T00:00:00Z", "year 0000 out of range (0001-9999)");
    expect_reject("10000-01-01T00:00:00Z", "year has more than 4 digits (allowed 0001-9999)");
    expect_reject("-001-01-01T00:00:00Z", "expected 4-digit year");
    expect_reject("0001-01-01T00:00:00+00:01", "instant outside");
    expect_reject("9999-12-31T23:59:59-00:01", "instant outside");
    /* Syntax. */
    expect_reject("", "empty timestamp");
    expect_reject("24-03-11T12:00:00Z", "expected 4-digit year");
    expect_reject("2024/03/11T12:00:00Z", "expected '-' after the year at offset 4");
    expect_reject("2024-3-11T12:00:00Z", "expected 2-digit month at offset 5");
    expect_reject("2024-03-1T12:00:00Z", "expected 2-digit day");
    expect_reject("2024-03-11X12:00:00Z", "expected 'T', 't' or ' ' between date and time");
    expect_reject("2024-03-11", "expected 'T', 't' or ' ' between date and time at offset 10");
    expect_reject("2024-03-11T12:00Z", "expected ':' after the minute");
    expect_reject("2024-03-11T1:00:00Z", "expected 2-digit hour");
    expect_reject("2024-03-11T12:00:00.Z", "expected a digit after '.'");
    expect_reject("2024-03-11T12:00:00,5Z", "expected 'Z', +HH:MM or -HH:MM");
    expect_reject("2024-03-11T12:00:00.1234567890Z", "fractional seconds longer than 9 digits");
    expect_reject("2024-03-11T12:00:00 +00:00 ", "trailing characters");
    /* len cuts the offset off: missing, even though the bytes follow in memory. */
    tx_err_clear(&err);
    assert_int_equal(tx_time_parse("2024-03-11T12:00:00Z", 19, &t, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "missing UTC offset"));
    assert_int_equal(tx_time_parse(NULL, 0, &t, NULL), TX_EINVAL);
}

static void test_epoch(void **state)
{
    char buf[TX_TIME_FORMAT_LEN];

    (void) state;
    assert_int_equal(parse_ms("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ms("1970-01-01T01:00:00+01:00"), 0);
    assert_int_equal(tx_time_format_ms(0, buf, sizeof(buf)), 24);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    assert_int_equal(tx_time_format_ms(-1, buf, sizeof(buf)), 24);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    assert_int_equal(parse_ms("1969-12-31T23:59:59.999Z"), -1);
    /* Milliseconds round towards the past, also before the epoch. */
    assert_int_equal(parse_ms("1969-12-31T23:59:59.9999Z"), -1);
    assert_int_equal(parse_ms("1970-01-01T00:00:00.0009Z"), 0);
}

static void test_limits(void **state)
{
    char buf[64];
    struct tx_time t;
    struct tx_err err;
    const char *s = "9999-12-31T23:59:59.999999999Z";

    (void) state;
    assert_int_equal(tx_time_parse(s, strlen(s), &t, &err), 0);
    assert_int_equal(t.unix_sec, 253402300799LL);
    assert_int_equal(tx_time_to_ms(&t), 253402300799999LL);
    assert_int_equal(tx_time_format_ms(253402300799999LL, buf, sizeof(buf)), 24);
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
    assert_int_equal(parse_ms("9999-12-31T23:59:59+00:00"), 253402300799000LL);
    assert_int_equal(parse_ms("9999-12-31T23:59:60Z"), 253402300799999LL);

    assert_int_equal(parse_ms("0001-01-01T00:00:00Z"), -62135596800000LL);
    assert_int_equal(tx_time_format_ms(-62135596800000LL, buf, sizeof(buf)), 24);
    assert_string_equal(buf, "0001-01-01T00:00:00.000Z");

    /* Out of range or too small a buffer: 0 and an empty string. */
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(tx_time_format_ms(253402300800000LL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(tx_time_format_ms(-62135596800001LL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(tx_time_format_ms(0, buf, TX_TIME_FORMAT_LEN - 1), 0);
    assert_string_equal(buf, "");
    assert_int_equal(buf[1], 'x');
    assert_int_equal(tx_time_format_ms(0, buf, 0), 0);
    assert_int_equal(tx_time_format_ms(INT64_MIN, buf, sizeof(buf)), 0);
    assert_int_equal(tx_time_format_ms(INT64_MAX, buf, sizeof(buf)), 0);
}

static void test_leap_years(void **state)
{
    char buf[TX_TIME_FORMAT_LEN];

    (void) state;
    /* 2000: divisible by 400, leap. */
    assert_int_equal(parse_ms("2000-02-29T00:00:00Z"), 951782400000LL);
    assert_int_equal(parse_ms("2000-03-01T00:00:00Z") - parse_ms("2000-02-28T00:00:00Z"),
                     2 * 86400000LL);
    assert_int_equal(parse_ms("2001-01-01T00:00:00Z") - parse_ms("2000-01-01T00:00:00Z"),
                     366 * 86400000LL);
    /* 1900: divisible by 100 but not 400, not leap. */
    expect_reject("1900-02-29T00:00:00Z", "1900 is not a leap year");
    assert_int_equal(parse_ms("1900-03-01T00:00:00Z") - parse_ms("1900-02-28T00:00:00Z"),
                     86400000LL);
    assert_int_equal(parse_ms("1901-01-01T00:00:00Z") - parse_ms("1900-01-01T00:00:00Z"),
                     365 * 86400000LL);
    expect_reject("2100-02-29T00:00:00Z", "2100 is not a leap year");
    /* 2024: divisible by 4, leap. */
    assert_int_equal(parse_ms("2024-02-29T00:00:00Z"), 1709164800000LL);
    assert_int_equal(tx_time_format_ms(1709164800000LL + 86399999, buf, sizeof(buf)), 24);
    assert_string_equal(buf, "2024-02-29T23:59:59.999Z");
    assert_int_equal(tx_time_format_ms(1709164800000LL + 86400000, buf, sizeof(buf)), 24);
    assert_string_equal(buf, "2024-03-01T00:00:00.000Z");
    expect_reject("2023-02-29T00:00:00Z", "2023 is not a leap year");
}

/* Walks every day from 0001-01-01 to 9999-12-31 with a naive calendar and checks that format
 * and parse agree with it, including the day count. */
static void test_every_day(void **state)
{
    static const int mdays[13] = { 0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y = 1, m = 1, d = 1;
    int64_t day = -719162; /* 0001-01-01 */
    char want[64], got[TX_TIME_FORMAT_LEN];

    (void) state;
    for (;;) {
        int64_t ms = day * 86400000LL + 45296789; /* 12:34:56.789 */
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        int dim = m == 2 && leap ? 29 : mdays[m];

        snprintf(want, sizeof(want), "%04d-%02d-%02dT12:34:56.789Z", y, m, d);
        if (tx_time_format_ms(ms, got, sizeof(got)) != 24 || strcmp(got, want) != 0)
            fail_msg("day %lld: formatted '%s', want '%s'", (long long) day, got, want);
        if (parse_ms(want) != ms)
            fail_msg("'%s' parsed to %lld, want %lld", want, (long long) parse_ms(want),
                     (long long) ms);
        if (y == 9999 && m == 12 && d == 31)
            break;
        day++;
        if (++d > dim) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
    assert_int_equal(day, 2932896); /* 9999-12-31 */
}

static void test_round_trip(void **state)
{
    uint64_t x = 88172645463325252ULL;
    const int64_t lo = -62135596800000LL, span = 253402300799999LL - lo + 1;
    char buf[TX_TIME_FORMAT_LEN];
    int i;

    (void) state;
    assert_int_equal(tx_time_format_ms(SEED_MS, buf, sizeof(buf)), 24);
    assert_string_equal(buf, "2024-03-11T12:00:00.000Z");
    assert_int_equal(parse_ms(buf), SEED_MS);
    for (i = 0; i < 200000; i++) {
        int64_t ms;

        /* xorshift64: fixed sequence, so a failure is reproducible */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ms = lo + (int64_t) (x % (uint64_t) span);
        assert_int_equal(tx_time_format_ms(ms, buf, sizeof(buf)), 24);
        if (parse_ms(buf) != ms)
            fail_msg("%lld -> '%s' -> %lld", (long long) ms, buf, (long long) parse_ms(buf));
    }
}

static void test_clocks(void **state)
{
    int64_t now = tx_time_now_ms();
    int64_t m1 = tx_time_mono_ms(), m2;
    struct timespec ts = { 0, 20 * 1000000 };

    (void) state;
    /* After 2024-01-01 and before 2200-01-01. */
    assert_true(now > 1704067200000LL);
    assert_true(now < 7258118400000LL);
    nanosleep(&ts, NULL);
    m2 = tx_time_mono_ms();
    assert_true(m2 - m1 >= 19);
    assert_true(m2 - m1 < 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_literal),     cmocka_unit_test(test_seed_files),
        cmocka_unit_test(test_rfc3339_variants), cmocka_unit_test(test_leap_second),
        cmocka_unit_test(test_rejections),       cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_limits),           cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_every_day),        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_clocks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
