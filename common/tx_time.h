#ifndef TX_TIME_H
#define TX_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "common/tx_status.h"

/* A parsed timestamp: the instant in UTC plus the offset it was written with. */
struct tx_time {
    int64_t unix_sec;   /* seconds since 1970-01-01T00:00:00Z (negative before it) */
    int32_t nsec;       /* 0..999999999, added to unix_sec */
    int16_t offset_min; /* UTC offset as written, -1439..1439 ("Z" and "-00:00" give 0) */
};

/* Bytes tx_time_format_ms needs, NUL included ("YYYY-MM-DDTHH:MM:SS.mmmZ"). */
#define TX_TIME_FORMAT_LEN 25

/**
 * Parses len bytes of s (no NUL needed) as an RFC 3339 date-time or as the seed form
 * "2024-03-11T12:00:00 +00:00" (one space before a numeric offset) into *out.
 *
 * Accepted: "YYYY-MM-DD" then 'T', 't' or one space, "HH:MM:SS", an optional fraction of 1 to 9
 * digits, then 'Z', 'z', "+HH:MM" or "-HH:MM", optionally preceded by one space. Nothing may
 * follow the offset. A leap second ("23:59:60") is accepted only where RFC 3339 allows it: the
 * last second of June 30 or December 31 in UTC (after applying the offset); since POSIX time has
 * no leap seconds it is stored as the last nanosecond of 23:59:59 UTC.
 *
 * Errors: TX_EINVAL with the reason (and the byte offset for syntax errors) in err->msg for
 * malformed text, impossible dates (Feb 30, Feb 29 of a non-leap year, month 13, day 0), hour 24,
 * minute or second out of range, a missing offset, offsets beyond +-23:59, trailing characters,
 * and years (or a UTC instant) outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999999Z.
 * *out is written only on success. Thread-safe (no locale, no global state).
 */
int tx_time_parse(const char *s, size_t len, struct tx_time *out, struct tx_err *err);

/** Milliseconds since the epoch, UTC, rounded towards the past. Thread-safe. */
int64_t tx_time_to_ms(const struct tx_time *t);

/**
 * Formats unix_ms (UTC milliseconds) as "YYYY-MM-DDTHH:MM:SS.mmmZ" plus a NUL into out.
 * Returns the length written (24), or 0 (and an empty string when outlen > 0) if outlen is below
 * TX_TIME_FORMAT_LEN or the instant lies outside the years 0001-9999. Thread-safe.
 */
size_t tx_time_format_ms(int64_t unix_ms, char *out, size_t outlen);

/** Wall-clock time (CLOCK_REALTIME) in milliseconds since the epoch. Thread-safe. */
int64_t tx_time_now_ms(void);

/** Monotonic time (CLOCK_MONOTONIC) in milliseconds, for intervals and deadlines. Thread-safe. */
int64_t tx_time_mono_ms(void);

#endif
