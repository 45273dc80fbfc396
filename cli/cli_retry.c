#include "cli/cli_retry.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum cli_outcome cli_outcome_for_status(int http_status)
{
    if (http_status >= 200 && http_status < 300)
        return CLI_OK;
    if (http_status == 401 || http_status == 403)
        return CLI_AUTH;
    if (cli_status_retryable(http_status))
        return CLI_UNAVAILABLE;
    return CLI_REJECTED;
}

bool cli_status_retryable(int http_status)
{
    switch (http_status) {
    case 408: /* the body did not arrive whole: nothing was stored */
    case 409: /* the same Idempotency-Key is being processed: its answer comes later */
    case 425:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return true;
    default:
        return false;
    }
}

bool cli_status_has_retry_after(int http_status)
{
    return http_status == 409 || http_status == 429 || http_status == 503;
}

int cli_exit_code(const enum cli_outcome *v, size_t n)
{
    int worst = CLI_OK;
    size_t i;

    for (i = 0; i < n; i++) {
        if ((int) v[i] > worst)
            worst = (int) v[i];
    }
    return worst;
}

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static int month_of(const char *s)
{
    int i;

    for (i = 0; i < 12; i++) {
        if (strncmp(s, months[i], 3) == 0)
            return i;
    }
    return -1;
}

/* Reads exactly n digits; -1 when they are not all digits. */
static int digits(const char *s, int n)
{
    int v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char) s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "HH:MM:SS" into seconds of the day, -1 when malformed. */
static int clock_of(const char *s)
{
    int h = digits(s, 2);
    int m = digits(s + 3, 2);
    int sec = digits(s + 6, 2);

    if (h < 0 || m < 0 || sec < 0 || s[2] != ':' || s[5] != ':' || h > 23 || m > 59 || sec > 60)
        return -1;
    return h * 3600 + m * 60 + sec;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 0-11). */
static long long days_from_civil(long long y, int m, int d)
{
    long long era;
    long long yoe;
    long long doy;
    long long doe;

    m += 1;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The three HTTP-date forms of RFC 9110 5.6.7, case-sensitive as specified. -1 when malformed. */
static int http_date(const char *s, size_t n, long long *out)
{
    int day;
    int mon;
    int year;
    int secs;
    const char *comma = memchr(s, ',', n);

    if (comma != NULL && comma - s == 3 && n == 29 && strncmp(s + 25, " GMT", 4) == 0) {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        day = digits(s + 5, 2);
        mon = month_of(s + 8);
        year = digits(s + 12, 4);
        secs = clock_of(s + 17);
        if (s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ')
            return -1;
    }
    else if (comma != NULL && n >= 30 && strncmp(s + n - 4, " GMT", 4) == 0) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (two-digit year: 1970-2069) */
        const char *p = comma + 2;

        if ((size_t) (s + n - p) != 22 || comma[1] != ' ' || p[2] != '-' || p[6] != '-' ||
            p[9] != ' ')
            return -1;
        day = digits(p, 2);
        mon = month_of(p + 3);
        year = digits(p + 7, 2);
        if (year >= 0)
            year += year < 70 ? 2000 : 1900;
        secs = clock_of(p + 10);
    }
    else if (comma == NULL && n == 24) {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        if (s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
            return -1;
        mon = month_of(s + 4);
        day = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
        secs = clock_of(s + 11);
        year = digits(s + 20, 4);
    }
    else {
        return -1;
    }
    if (day < 1 || day > 31 || mon < 0 || year < 0 || secs < 0)
        return -1;
    *out = days_from_civil(year, mon, day) * 86400 + secs;
    return 0;
}

int cli_retry_after_parse(const char *value, time_t now, long long *seconds)
{
    const char *s = value;
    size_t n;
    size_t i;
    long long v = 0;
    long long when;

    if (s == NULL)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (n == 0)
        return -1;
    if (isdigit((unsigned char) s[0])) {
        for (i = 0; i < n; i++) {
            if (!isdigit((unsigned char) s[i]))
                return -1;
            if (v > (LLONG_MAX - 9) / 10)
                v = LLONG_MAX / 10; /* saturate: absurdly long waits are capped by the caller */
            else
                v = v * 10 + (s[i] - '0');
        }
        *seconds = v;
        return 0;
    }
    if (http_date(s, n, &when) != 0)
        return -1;
    *seconds = when > (long long) now ? when - (long long) now : 0;
    return 0;
}

long long cli_backoff_ms(int attempt, long long retry_after_s, long long base_ms, long long cap_ms,
                         double jitter)
{
    long long d = base_ms;
    int i;

    if (retry_after_s >= 0) {
        if (retry_after_s > CLI_RETRY_AFTER_MAX_S)
            retry_after_s = CLI_RETRY_AFTER_MAX_S;
        return retry_after_s * 1000;
    }
    for (i = 1; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    if (jitter < 0)
        jitter = 0;
    if (jitter > 1)
        jitter = 1;
    return (long long) ((double) d * (0.5 + 0.5 * jitter));
}
