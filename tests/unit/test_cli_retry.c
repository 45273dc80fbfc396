/* txupload's exit codes, retry decisions, Retry-After parsing and backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "cli/cli_retry.h"

static void test_outcomes(void **state)
{
    (void) state;
    assert_int_equal(cli_outcome_for_status(202), CLI_OK);
    assert_int_equal(cli_outcome_for_status(200), CLI_OK);
    assert_int_equal(cli_outcome_for_status(400), CLI_REJECTED);
    assert_int_equal(cli_outcome_for_status(404), CLI_REJECTED);
    assert_int_equal(cli_outcome_for_status(405), CLI_REJECTED);
    assert_int_equal(cli_outcome_for_status(411), CLI_REJECTED);
    assert_int_equal(cli_outcome_for_status(413), CLI_REJECTED);
    assert_int_equal(cli_outcome_for_status(415), CLI_REJECTED);
    assert_int_equal(cli_outcome_for_status(422), CLI_REJECTED);
    assert_int_equal(cli_outcome_for_status(401), CLI_AUTH);
    assert_int_equal(cli_outcome_for_status(403), CLI_AUTH);
    assert_int_equal(cli_outcome_for_status(408), CLI_UNAVAILABLE);
    assert_int_equal(cli_outcome_for_status(409), CLI_UNAVAILABLE);
    assert_int_equal(cli_outcome_for_status(429), CLI_UNAVAILABLE);
    assert_int_equal(cli_outcome_for_status(500), CLI_UNAVAILABLE);
    assert_int_equal(cli_outcome_for_status(502), CLI_UNAVAILABLE);
    assert_int_equal(cli_outcome_for_status(503), CLI_UNAVAILABLE);
    assert_int_equal(cli_outcome_for_status(504), CLI_UNAVAILABLE);
    /* The enum values are the documented exit codes. */
    assert_int_equal(CLI_OK, 0);
    assert_int_equal(CLI_REJECTED, 1);
    assert_int_equal(CLI_USAGE, 2);
    assert_int_equal(CLI_UNAVAILABLE, 3);
    assert_int_equal(CLI_AUTH, 4);
}

static void test_retryable(void **state)
{
    (void) state;
    assert_true(cli_status_retryable(503));
    assert_true(cli_status_retryable(429));
    assert_true(cli_status_retryable(409));
    assert_true(cli_status_retryable(408));
    assert_false(cli_status_retryable(422));
    assert_false(cli_status_retryable(401));
    assert_false(cli_status_retryable(202));
    assert_true(cli_status_has_retry_after(409));
    assert_true(cli_status_has_retry_after(429));
    assert_true(cli_status_has_retry_after(503));
    assert_false(cli_status_has_retry_after(502));
    assert_false(cli_status_has_retry_after(500));
}

static void test_exit_code(void **state)
{
    enum cli_outcome all_ok[] = { CLI_OK, CLI_OK };
    enum cli_outcome one_bad[] = { CLI_OK, CLI_REJECTED, CLI_OK };
    enum cli_outcome down[] = { CLI_REJECTED, CLI_UNAVAILABLE, CLI_OK };
    enum cli_outcome auth[] = { CLI_UNAVAILABLE, CLI_AUTH, CLI_REJECTED };
    enum cli_outcome local[] = { CLI_USAGE, CLI_REJECTED };

    (void) state;
    assert_int_equal(cli_exit_code(all_ok, 2), 0);
    assert_int_equal(cli_exit_code(one_bad, 3), 1);
    assert_int_equal(cli_exit_code(down, 3), 3);
    assert_int_equal(cli_exit_code(auth, 3), 4);
    assert_int_equal(cli_exit_code(local, 2), 2);
    assert_int_equal(cli_exit_code(NULL, 0), 0);
}

static void test_retry_after(void **state)
{
    long long s = -1;
    /* 1994-11-06 08:49:37 UTC */
    const time_t when = 784111777;

    (void) state;
    assert_int_equal(cli_retry_after_parse("2", 0, &s), 0);
    assert_int_equal(s, 2);
    assert_int_equal(cli_retry_after_parse("  120 \r\n", 0, &s), 0);
    assert_int_equal(s, 120);
    assert_int_equal(cli_retry_after_parse("0", 0, &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(cli_retry_after_parse("99999999999999999999999", 0, &s), 0);
    assert_true(s > 1000000);
    /* The three HTTP-date forms, 10 s after now. */
    assert_int_equal(cli_retry_after_parse("Sun, 06 Nov 1994 08:49:47 GMT", when, &s), 0);
    assert_int_equal(s, 10);
    assert_int_equal(cli_retry_after_parse("Sunday, 06-Nov-94 08:49:47 GMT", when, &s), 0);
    assert_int_equal(s, 10);
    assert_int_equal(cli_retry_after_parse("Sun Nov  6 08:49:47 1994", when, &s), 0);
    assert_int_equal(s, 10);
    /* A date in the past means now. */
    assert_int_equal(cli_retry_after_parse("Sun, 06 Nov 1994 08:49:00 GMT", when, &s), 0);
    assert_int_equal(s, 0);
    /* Leap-year arithmetic: 2024-02-29 00:00:00 is 1709164800. */
    assert_int_equal(cli_retry_after_parse("Thu, 29 Feb 2024 00:00:05 GMT", 1709164800, &s), 0);
    assert_int_equal(s, 5);

    assert_int_equal(cli_retry_after_parse("", 0, &s), -1);
    assert_int_equal(cli_retry_after_parse(NULL, 0, &s), -1);
    assert_int_equal(cli_retry_after_parse("-1", 0, &s), -1);
    assert_int_equal(cli_retry_after_parse("1.5", 0, &s), -1);
    assert_int_equal(cli_retry_after_parse("soon", 0, &s), -1);
    assert_int_equal(cli_retry_after_parse("Sun, 06 Nov 1994 08:49:37 UTC", when, &s), -1);
    assert_int_equal(cli_retry_after_parse("Sun, 06 Foo 1994 08:49:37 GMT", when, &s), -1);
    assert_int_equal(cli_retry_after_parse("Sun, 36 Nov 1994 08:49:37 GMT", when, &s), -1);
    assert_int_equal(cli_retry_after_parse("Sun, 06 Nov 1994 25:49:37 GMT", when, &s), -1);
}

static void test_backoff(void **state)
{
    (void) state;
    /* Retry-After wins, capped. */
    assert_int_equal(cli_backoff_ms(1, 2, 500, 30000, 0.0), 2000);
    assert_int_equal(cli_backoff_ms(4, 0, 500, 30000, 1.0), 0);
    assert_int_equal(cli_backoff_ms(1, 100000, 500, 30000, 1.0), CLI_RETRY_AFTER_MAX_S * 1000);
    /* Exponential, full jitter range [50 %, 100 %]. */
    assert_int_equal(cli_backoff_ms(1, -1, 500, 30000, 1.0), 500);
    assert_int_equal(cli_backoff_ms(1, -1, 500, 30000, 0.0), 250);
    assert_int_equal(cli_backoff_ms(2, -1, 500, 30000, 1.0), 1000);
    assert_int_equal(cli_backoff_ms(3, -1, 500, 30000, 1.0), 2000);
    assert_int_equal(cli_backoff_ms(7, -1, 500, 30000, 1.0), 30000);
    assert_int_equal(cli_backoff_ms(60, -1, 500, 30000, 1.0), 30000);
    assert_int_equal(cli_backoff_ms(60, -1, 500, 30000, 0.0), 15000);
    /* Out-of-range jitter is clamped. */
    assert_int_equal(cli_backoff_ms(1, -1, 500, 30000, 7.0), 500);
    assert_int_equal(cli_backoff_ms(1, -1, 500, 30000, -3.0), 250);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcomes),  cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_exit_code), cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_backoff),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
