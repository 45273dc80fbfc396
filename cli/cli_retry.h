#ifndef CLI_RETRY_H
#define CLI_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* What an answer means for txupload: outcome classes, exit codes and when to retry. Pure. */

/* The outcome of one file or command; the values are txupload's exit codes. */
enum cli_outcome {
    CLI_OK = 0,          /* accepted (or replayed) */
    CLI_REJECTED = 1,    /* refused for its content: 400, 413, 415, 422, 404, ... */
    CLI_USAGE = 2,       /* bad command line, unreadable local file */
    CLI_UNAVAILABLE = 3, /* no answer, or only transient failures, after every retry */
    CLI_AUTH = 4,        /* 401 or 403: the API key is missing or refused */
};

/* Retry-After values above this are shortened to it, so a bad header cannot stall a run. */
#define CLI_RETRY_AFTER_MAX_S 300
/* Exponential backoff between attempts when the answer names no delay. */
#define CLI_BACKOFF_BASE_MS 500
#define CLI_BACKOFF_CAP_MS  30000

/** The outcome class of an HTTP status (transient ones are CLI_UNAVAILABLE). */
enum cli_outcome cli_outcome_for_status(int http_status);

/** True when a request that got this status may succeed if sent again unchanged. */
bool cli_status_retryable(int http_status);

/** True when txupload honours a Retry-After header on this status (409, 429, 503). */
bool cli_status_has_retry_after(int http_status);

/** The exit code of a run: the most severe outcome (the highest value); 0 for n == 0. */
int cli_exit_code(const enum cli_outcome *v, size_t n);

/**
 * Parses a Retry-After value (RFC 9110 10.2.3): delta-seconds, or an HTTP-date (IMF-fixdate,
 * the obsolete RFC 850 and asctime forms) turned into seconds after now (0 when in the past).
 * Leading and trailing blanks are ignored. Returns 0 and *seconds, or -1 when malformed.
 */
int cli_retry_after_parse(const char *value, time_t now, long long *seconds);

/**
 * Milliseconds to wait before retry number attempt (1 for the first retry): retry_after_s
 * seconds when >= 0 (capped at CLI_RETRY_AFTER_MAX_S), else min(cap_ms, base_ms * 2^(attempt-1))
 * scaled by jitter, a number in [0, 1] mapped onto [50 %, 100 %] of the delay.
 */
long long cli_backoff_ms(int attempt, long long retry_after_s, long long base_ms, long long cap_ms,
                         double jitter);

#endif
