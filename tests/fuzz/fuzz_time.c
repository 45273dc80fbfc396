/*
 * libFuzzer harness: the timestamp parser (tx_time_parse) and formatter (tx_time_format_ms).
 *
 * Invariants:
 * - the result is 0 or TX_EINVAL; *out is untouched on failure; err.msg is NUL-terminated;
 * - an accepted value lies in 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999999Z, nsec in
 *   0..999999999 and the offset within +-23:59;
 * - it round-trips: tx_time_format_ms(tx_time_to_ms(t)) gives a 24-character UTC string that
 *   parses again to the same milliseconds (offset 0), and formats again to the same string;
 * - an accepted value equals an independent computation from its digits (Howard Hinnant's
 *   days_from_civil), a leap second being the last nanosecond of 23:59:59;
 * - the first 8 bytes as milliseconds: a value the formatter accepts parses back to itself.
 */
#include "common/tx_time.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

#define MIN_MS (-62135596800000LL)
#define MAX_MS (253402300799999LL)

static int num(const uint8_t *p, int n)
{
    int v = 0;
    int i;

    for (i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

/* Days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"). */
static int64_t oracle_days(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe;
    int64_t doy;
    int64_t doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Recomputes an accepted timestamp from its text (its shape is known once it was accepted). */
static void oracle(const uint8_t *s, size_t n, const struct tx_time *t)
{
    int ss = num(s + 17, 2);
    int32_t nsec = 0;
    int off = 0;
    int64_t sec;
    size_t i;

    FUZZ_CHECK(n >= 20);
    if (s[n - 1] != 'Z' && s[n - 1] != 'z') {
        off = num(s + n - 5, 2) * 60 + num(s + n - 2, 2);
        if (s[n - 6] == '-')
            off = -off;
    }
    if (n > 20 && s[19] == '.') {
        int32_t scale = 100000000;

        for (i = 20; i < n && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
            nsec += (s[i] - '0') * scale;
    }
    sec = oracle_days(num(s, 4), num(s + 5, 2), num(s + 8, 2)) * 86400 + num(s + 11, 2) * 3600 +
          num(s + 14, 2) * 60 + (ss == 60 ? 59 : ss) - (int64_t) off * 60;
    if (ss == 60)
        nsec = 999999999;
    FUZZ_CHECK(t->unix_sec == sec);
    FUZZ_CHECK(t->nsec == nsec);
    FUZZ_CHECK(t->offset_min == off);
}

/* Formats ms and checks the text parses back to exactly ms. */
static void round_trip(int64_t ms)
{
    char s[TX_TIME_FORMAT_LEN];
    char s2[TX_TIME_FORMAT_LEN];
    struct tx_time t;
    struct tx_err err;
    size_t n = tx_time_format_ms(ms, s, sizeof(s));

    if (ms < MIN_MS || ms > MAX_MS) {
        FUZZ_CHECK(n == 0 && s[0] == '\0');
        return;
    }
    FUZZ_CHECK(n == TX_TIME_FORMAT_LEN - 1 && strlen(s) == n);
    FUZZ_CHECK(s[4] == '-' && s[10] == 'T' && s[19] == '.' && s[23] == 'Z');
    FUZZ_CHECK(tx_time_parse(s, n, &t, &err) == 0);
    FUZZ_CHECK(t.offset_min == 0);
    FUZZ_CHECK(tx_time_to_ms(&t) == ms);
    FUZZ_CHECK(tx_time_format_ms(tx_time_to_ms(&t), s2, sizeof(s2)) == n);
    FUZZ_CHECK(strcmp(s, s2) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tx_time t;
    struct tx_time before;
    struct tx_err err;
    int rc;

    memset(&t, 0xa5, sizeof(t));
    before = t;
    memset(&err, 0, sizeof(err));
    rc = tx_time_parse((const char *) data, size, &t, &err);
    FUZZ_CHECK(rc == 0 || rc == TX_EINVAL);
    FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
    if (rc != 0) {
        FUZZ_CHECK(memcmp(&t, &before, sizeof(t)) == 0);
        FUZZ_CHECK(err.msg[0] != '\0');
    }
    else {
        int64_t ms = tx_time_to_ms(&t);

        FUZZ_CHECK(t.nsec >= 0 && t.nsec <= 999999999);
        FUZZ_CHECK(t.offset_min >= -1439 && t.offset_min <= 1439);
        FUZZ_CHECK(ms >= MIN_MS && ms <= MAX_MS);
        oracle(data, size, &t);
        round_trip(ms);
    }
    if (size >= 8) {
        uint64_t u;

        memcpy(&u, data, 8);
        round_trip((int64_t) u);
        /* Also a value inside the range, so most inputs exercise the formatter fully. */
        round_trip(MIN_MS + (int64_t) (u % (uint64_t) (MAX_MS - MIN_MS + 1)));
    }
    return 0;
}
