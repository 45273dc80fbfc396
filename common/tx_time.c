#include "common/tx_time.h"

#include <stdbool.h>
#include <time.h>

/* Days from 0001-01-01 to 1970-01-01 in the proleptic Gregorian calendar. */
#define EPOCH_ORDINAL 719162
#define SECS_PER_DAY  86400
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z as seconds since the epoch. */
#define MIN_UNIX_SEC (-62135596800LL)
#define MAX_UNIX_SEC 253402300799LL

/* Days before the first of each month in a non-leap year. */
static const int days_before_month[13] = {
    0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334
};

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int mdays[13] = { 0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return m == 2 && is_leap(y) ? 29 : mdays[m];
}

/* Days since 1970-01-01 of a valid date, year >= 1. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t y1 = y - 1;
    int64_t ordinal = 365 * y1 + y1 / 4 - y1 / 100 + y1 / 400;

    ordinal += days_before_month[m] + (m > 2 && is_leap(y) ? 1 : 0) + d - 1;
    return ordinal - EPOCH_ORDINAL;
}

/* Inverse of days_from_civil for days >= -EPOCH_ORDINAL (0001-01-01 and later). */
static void civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t n = days + EPOCH_ORDINAL;
    int64_t n400, n100, n4, n1;
    int mon;

    n400 = n / 146097; /* days in 400 years */
    n %= 146097;
    n100 = n / 36524; /* days in 100 years, the last one without Feb 29 */
    n %= 36524;
    n4 = n / 1461; /* days in 4 years */
    n %= 1461;
    n1 = n / 365;
    n %= 365;
    *y = n400 * 400 + n100 * 100 + n4 * 4 + n1 + 1;
    if (n100 == 4 || n1 == 4) {
        /* Day 366 of a leap year: the divisions overshoot into the next year. */
        *y -= 1;
        *m = 12;
        *d = 31;
        return;
    }
    for (mon = 12; mon > 1; mon--) {
        int start = days_before_month[mon] + (mon > 2 && is_leap(*y) ? 1 : 0);

        if (n >= start)
            break;
    }
    *m = mon;
    *d = (int) (n - days_before_month[mon] - (mon > 2 && is_leap(*y) ? 1 : 0)) + 1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly n digits at *pos; returns false (and leaves *pos) if they are not there. */
static bool read_digits(const char *s, size_t len, size_t *pos, int n, int *val)
{
    int v = 0;
    int i;

    if (len - *pos < (size_t) n)
        return false;
    for (i = 0; i < n; i++) {
        char c = s[*pos + (size_t) i];

        if (!is_digit(c))
            return false;
        v = v * 10 + (c - '0');
    }
    *pos += (size_t) n;
    *val = v;
    return true;
}

static bool expect_char(const char *s, size_t len, size_t *pos, char c)
{
    if (*pos >= len || s[*pos] != c)
        return false;
    (*pos)++;
    return true;
}

/* Parses "[+-]HH:MM" or 'Z'/'z' at *pos into minutes east of UTC. */
static int parse_offset(const char *s, size_t len, size_t *pos, bool after_space, int *offset,
                        struct tx_err *err)
{
    int sign, hh, mm;

    if (*pos >= len)
        return tx_err_set(err, TX_EINVAL,
                          "missing UTC offset (expected 'Z' or +HH:MM) at offset %zu", *pos);
    if (!after_space && (s[*pos] == 'Z' || s[*pos] == 'z')) {
        (*pos)++;
        *offset = 0;
        return 0;
    }
    if (s[*pos] == '+')
        sign = 1;
    else if (s[*pos] == '-')
        sign = -1;
    else if (after_space)
        return tx_err_set(err, TX_EINVAL, "expected +HH:MM or -HH:MM after the space at offset %zu",
                          *pos);
    else
        return tx_err_set(err, TX_EINVAL, "expected 'Z', +HH:MM or -HH:MM at offset %zu", *pos);
    (*pos)++;
    if (!read_digits(s, len, pos, 2, &hh))
        return tx_err_set(err, TX_EINVAL, "expected 2-digit offset hour at offset %zu", *pos);
    if (!expect_char(s, len, pos, ':'))
        return tx_err_set(err, TX_EINVAL, "expected ':' in offset at offset %zu", *pos);
    if (!read_digits(s, len, pos, 2, &mm))
        return tx_err_set(err, TX_EINVAL, "expected 2-digit offset minute at offset %zu", *pos);
    if (hh > 23)
        return tx_err_set(err, TX_EINVAL, "offset hour %02d out of range (00-23)", hh);
    if (mm > 59)
        return tx_err_set(err, TX_EINVAL, "offset minute %02d out of range (00-59)", mm);
    *offset = sign * (hh * 60 + mm);
    return 0;
}

int tx_time_parse(const char *s, size_t len, struct tx_time *out, struct tx_err *err)
{
    size_t pos = 0;
    int year, mon, day, hh, mi, ss, offset = 0, rc;
    int32_t nsec = 0;
    int64_t usec;
    bool space_offset = false;

    if (s == NULL || len == 0)
        return tx_err_set(err, TX_EINVAL, "empty timestamp");
    if (!read_digits(s, len, &pos, 4, &year))
        return tx_err_set(err, TX_EINVAL, "expected 4-digit year at offset 0");
    if (pos < len && is_digit(s[pos]))
        return tx_err_set(err, TX_EINVAL, "year has more than 4 digits (allowed 0001-9999)");
    if (year < 1)
        return tx_err_set(err, TX_EINVAL, "year 0000 out of range (0001-9999)");
    if (!expect_char(s, len, &pos, '-'))
        return tx_err_set(err, TX_EINVAL, "expected '-' after the year at offset %zu", pos);
    if (!read_digits(s, len, &pos, 2, &mon))
        return tx_err_set(err, TX_EINVAL, "expected 2-digit month at offset %zu", pos);
    if (!expect_char(s, len, &pos, '-'))
        return tx_err_set(err, TX_EINVAL, "expected '-' after the month at offset %zu", pos);
    if (!read_digits(s, len, &pos, 2, &day))
        return tx_err_set(err, TX_EINVAL, "expected 2-digit day at offset %zu", pos);
    if (mon < 1 || mon > 12)
        return tx_err_set(err, TX_EINVAL, "month %02d out of range (01-12)", mon);
    if (day < 1 || day > days_in_month(year, mon)) {
        if (mon == 2 && day == 29)
            return tx_err_set(err, TX_EINVAL,
                              "day 29 out of range for %04d-02 (01-28, %04d is not a leap year)",
                              year, year);
        return tx_err_set(err, TX_EINVAL, "day %02d out of range for %04d-%02d (01-%02d)", day,
                          year, mon, days_in_month(year, mon));
    }

    if (pos >= len || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
        return tx_err_set(err, TX_EINVAL,
                          "expected 'T', 't' or ' ' between date and time at offset %zu", pos);
    pos++;
    if (!read_digits(s, len, &pos, 2, &hh))
        return tx_err_set(err, TX_EINVAL, "expected 2-digit hour at offset %zu", pos);
    if (!expect_char(s, len, &pos, ':'))
        return tx_err_set(err, TX_EINVAL, "expected ':' after the hour at offset %zu", pos);
    if (!read_digits(s, len, &pos, 2, &mi))
        return tx_err_set(err, TX_EINVAL, "expected 2-digit minute at offset %zu", pos);
    if (!expect_char(s, len, &pos, ':'))
        return tx_err_set(err, TX_EINVAL, "expected ':' after the minute at offset %zu", pos);
    if (!read_digits(s, len, &pos, 2, &ss))
        return tx_err_set(err, TX_EINVAL, "expected 2-digit second at offset %zu", pos);
    if (hh > 23)
        return tx_err_set(err, TX_EINVAL, "hour %02d out of range (00-23)", hh);
    if (mi > 59)
        return tx_err_set(err, TX_EINVAL, "minute %02d out of range (00-59)", mi);
    if (ss > 60)
        return tx_err_set(err, TX_EINVAL, "second %02d out of range (00-59, 60 for a leap second)",
                          ss);

    if (pos < len && s[pos] == '.') {
        size_t start = ++pos;
        int32_t scale = 100000000;

        while (pos < len && is_digit(s[pos])) {
            if (pos - start == 9)
                return tx_err_set(err, TX_EINVAL, "fractional seconds longer than 9 digits");
            nsec += (int32_t) (s[pos] - '0') * scale;
            scale /= 10;
            pos++;
        }
        if (pos == start)
            return tx_err_set(err, TX_EINVAL, "expected a digit after '.' at offset %zu", pos);
    }

    if (pos < len && s[pos] == ' ') {
        space_offset = true;
        pos++;
    }
    rc = parse_offset(s, len, &pos, space_offset, &offset, err);
    if (rc != 0)
        return rc;
    if (pos != len)
        return tx_err_set(err, TX_EINVAL, "trailing characters after the offset at offset %zu",
                          pos);

    /* A leap second is computed as :59 and checked against the UTC calendar below. */
    usec = days_from_civil(year, mon, day) * SECS_PER_DAY + hh * 3600 + mi * 60 +
           (ss == 60 ? 59 : ss) - (int64_t) offset * 60;
    if (usec < MIN_UNIX_SEC || usec > MAX_UNIX_SEC)
        return tx_err_set(err, TX_EINVAL,
                          "instant outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z "
                          "after applying the offset");
    if (ss == 60) {
        int64_t uy;
        int um, ud;

        civil_from_days(floor_div(usec, SECS_PER_DAY), &uy, &um, &ud);
        if (usec - floor_div(usec, SECS_PER_DAY) * SECS_PER_DAY != SECS_PER_DAY - 1 ||
            !((um == 6 && ud == 30) || (um == 12 && ud == 31)))
            return tx_err_set(err, TX_EINVAL,
                              "second 60 (leap second) allowed only at 23:59:60 UTC on "
                              "June 30 or December 31");
        nsec = 999999999;
    }

    out->unix_sec = usec;
    out->nsec = nsec;
    out->offset_min = (int16_t) offset;
    return 0;
}

int64_t tx_time_to_ms(const struct tx_time *t)
{
    return t->unix_sec * 1000 + t->nsec / 1000000;
}

static char *put_digits(char *p, int64_t v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--) {
        p[i] = (char) ('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

size_t tx_time_format_ms(int64_t unix_ms, char *out, size_t outlen)
{
    int64_t secs, days, sod, y;
    int ms, m, d;
    char *p = out;

    if (out == NULL || outlen == 0)
        return 0;
    out[0] = '\0';
    if (outlen < TX_TIME_FORMAT_LEN || unix_ms < MIN_UNIX_SEC * 1000 ||
        unix_ms > MAX_UNIX_SEC * 1000 + 999)
        return 0;
    secs = floor_div(unix_ms, 1000);
    ms = (int) (unix_ms - secs * 1000);
    days = floor_div(secs, SECS_PER_DAY);
    sod = secs - days * SECS_PER_DAY;
    civil_from_days(days, &y, &m, &d);

    p = put_digits(p, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, sod / 3600, 2);
    *p++ = ':';
    p = put_digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, sod % 60, 2);
    *p++ = '.';
    p = put_digits(p, ms, 3);
    *p++ = 'Z';
    *p = '\0';
    return (size_t) (p - out);
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    /* Cannot fail for these two clocks on Linux; a zeroed value is returned if it ever does. */
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tx_time_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t tx_time_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}
