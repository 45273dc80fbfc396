/* txupload's processing status, client text and progress line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_progress.h"
#include "cli/cli_status.h"

static const char done[] =
    "{\"upload_id\":\"01a209d0-52b1-7e03-afca-f9e3a51d0599\",\"records\":2,\"object\":\"raw/x\","
    "\"received_at\":\"2026-11-23T19:09:37.329Z\",\"received\":2,\"persisted\":2,\"scored\":2,"
    "\"flagged\":1,\"notified\":2,\"emails_sent\":3,\"emails_failed\":0,\"flagged_records\":[{"
    "\"index\":1,\"event_id\":\"e:1\",\"client_id\":\"cliente1\",\"score\":90,\"reasons\":[{"
    "\"code\":\"ADDRESS_CHANGE\",\"detail\":\"address changed within 60 s\"},{\"code\":"
    "\"VELOCITY\",\"detail\":null}]}]}";

static const char early[] =
    "{\"upload_id\":\"u\",\"records\":null,\"received\":2,\"persisted\":1,\"scored\":0,"
    "\"flagged\":0,\"notified\":0,\"emails_sent\":0,\"emails_failed\":0,\"flagged_records\":[]}";

static void test_parse_complete(void **state)
{
    struct cli_counts c;
    struct tx_err err = { 0 };

    (void) state;
    assert_int_equal(cli_status_parse(done, strlen(done), &c, &err), 0);
    assert_int_equal(c.records, 2);
    assert_int_equal(c.persisted, 2);
    assert_int_equal(c.flagged, 1);
    assert_int_equal(c.emails_sent, 3);
    assert_true(cli_status_complete(&c, 2));
    assert_true(cli_status_complete(&c, -1)); /* takes records from the status */
    assert_false(cli_status_complete(&c, 3));

    assert_int_equal(cli_status_parse(early, strlen(early), &c, &err), 0);
    assert_int_equal(c.records, -1);
    assert_false(cli_status_complete(&c, 2));
    assert_false(cli_status_complete(&c, -1)); /* unknown count: never complete */

    /* Notified plus failed e-mails cover the records: complete. */
    c = (struct cli_counts){
        .records = 3, .persisted = 3, .scored = 3, .notified = 2, .emails_failed = 1
    };
    assert_true(cli_status_complete(&c, 3));
    c.emails_failed = 0;
    assert_false(cli_status_complete(&c, 3));
    c.notified = 3;
    c.scored = 2;
    assert_false(cli_status_complete(&c, 3));

    assert_int_equal(cli_status_parse("{\"type\":\"x\"}", 12, &c, &err), TX_EINVAL);
    assert_int_equal(cli_status_parse("nope", 4, &c, &err), TX_EINVAL);
    assert_int_equal(cli_status_parse(NULL, 0, &c, &err), TX_EINVAL);
}

static void test_format(void **state)
{
    struct tx_buf b;

    (void) state;
    tx_buf_init(&b, 1u << 20);
    assert_int_equal(cli_status_format(done, strlen(done), "f.json: ", &b), 0);
    assert_string_equal(b.data, "f.json: 2 record(s): received 2, persisted 2, scored 2, flagged "
                                "1, notified 2 (e-mails: 3 sent, 0 failed)\n"
                                "f.json: suspected fraud: record 1, client cliente1: address "
                                "changed within 60 s; too many transactions in a short time\n");
    tx_buf_reset(&b);
    assert_int_equal(cli_status_format(early, strlen(early), "", &b), 0);
    assert_string_equal(b.data, "received 2, persisted 1, scored 0, flagged 0, notified 0 "
                                "(e-mails: 0 sent, 0 failed)\n");
    assert_int_equal(cli_status_format("[]", 2, "", &b), TX_EINVAL);
    tx_buf_cleanup(&b);
}

static void test_reason_words(void **state)
{
    (void) state;
    assert_string_equal(cli_reason_words("ADDRESS_CHANGE"), "address changed");
    assert_string_equal(cli_reason_words("INACTIVE_ACCOUNT"), "the account is inactive");
    assert_string_equal(cli_reason_words("FUTURE_DATE"), "the transaction date is in the future");
    assert_string_equal(cli_reason_words("NEW_RULE"), "NEW_RULE");
    assert_string_equal(cli_reason_words(NULL), "unknown reason");
}

static void test_client(void **state)
{
    const char summary[] =
        "{\"_id\":\"cliente1\",\"record\":{\"_id\":\"cliente1\",\"cliente\":\"Cliente fulano\","
        "\"email\":\"c@example.com\",\"endereco\":\"Cidade A\",\"datatrasancao\":\"2024-03-11T12:"
        "00:00 +00:00\"},\"count\":1,\"last_upload_id\":\"U1\",\"ttl_seconds\":58}";
    const char flagged[] =
        "{\"client_id\":\"cliente1\",\"flagged\":true,\"current\":{\"reasons\":[{\"code\":"
        "\"ADDRESS_CHANGE\",\"detail\":\"address changed within 60 s\"}]},\"history\":[{"
        "\"upload_id\":\"U2\",\"index\":0,\"scored_at\":\"T\",\"reasons\":[{\"code\":"
        "\"ADDRESS_CHANGE\"}]}]}";
    const char clean[] = "{\"client_id\":\"c2\",\"flagged\":false,\"current\":null,\"history\":[]}";
    const char list_flag[] =
        "{\"client_id\":\"c3\",\"flagged\":true,\"current\":[\"EMAIL_CHANGE\"],\"history\":[]}";
    struct tx_buf b;

    (void) state;
    tx_buf_init(&b, 1u << 20);
    assert_int_equal(
        cli_client_format("cliente1", 200, summary, strlen(summary), flagged, strlen(flagged), &b),
        0);
    assert_string_equal(b.data,
                        "client cliente1\n"
                        "  summary: 1 record(s) in upload U1; latest: Cliente fulano "
                        "<c@example.com>, Cidade A, 2024-03-11T12:00:00 +00:00 (cached for 58 s "
                        "more)\n"
                        "  fraud: Suspected fraud: cliente1, address changed within 60 s\n"
                        "  flagged transactions: 1 (latest first)\n"
                        "    T upload U2 record 0: address changed\n");
    tx_buf_reset(&b);
    assert_int_equal(cli_client_format("c2", 404, "{}", 2, clean, strlen(clean), &b), 0);
    assert_non_null(strstr(b.data, "summary: none cached"));
    assert_non_null(strstr(b.data, "fraud: not flagged now"));
    assert_non_null(strstr(b.data, "flagged transactions: 0\n"));
    tx_buf_reset(&b);
    assert_int_equal(cli_client_format("c3", 404, NULL, 0, list_flag, strlen(list_flag), &b), 0);
    assert_non_null(strstr(b.data, "Suspected fraud: c3, e-mail address changed\n"));
    assert_int_equal(cli_client_format("c3", 200, NULL, 0, "[]", 2, &b), TX_EINVAL);
    tx_buf_cleanup(&b);
}

static void test_progress(void **state)
{
    struct cli_progress_state s = {
        .bytes_done = 22500000, .bytes_total = 50000000, .files_done = 23, .files_total = 50
    };
    char line[256];
    char small[16];
    size_t n;

    (void) state;
    n = cli_progress_render(&s, 80, line, sizeof(line));
    assert_int_equal(n, strlen(line));
    assert_true(n <= 80);
    assert_non_null(strstr(line, "  45%  22.5 MB/50.0 MB  23/50 files"));
    assert_int_equal(line[0], '[');
    /* 45 % of a 40-column bar. */
    assert_int_equal(strspn(line + 1, "#"), 18);
    s.files_failed = 2;
    cli_progress_render(&s, 80, line, sizeof(line));
    assert_non_null(strstr(line, "23/50 files, 2 failed"));
    /* Narrow terminal: the bar goes first, the line never exceeds the width. */
    n = cli_progress_render(&s, 30, line, sizeof(line));
    assert_true(n <= 30);
    assert_int_not_equal(line[0], '[');
    /* Unknown total (standard input): percentage of files. */
    s = (struct cli_progress_state){ .bytes_done = 812, .files_done = 1, .files_total = 4 };
    cli_progress_render(&s, 80, line, sizeof(line));
    assert_non_null(strstr(line, "  25%  812 B/?  1/4 files"));
    /* Tiny buffer: truncated, terminated. */
    n = cli_progress_render(&s, 80, small, sizeof(small));
    assert_int_equal(n, strlen(small));
    assert_true(n < sizeof(small));
}

static void test_bytes(void **state)
{
    char b[32];

    (void) state;
    cli_bytes_format(0, b, sizeof(b));
    assert_string_equal(b, "0 B");
    cli_bytes_format(999, b, sizeof(b));
    assert_string_equal(b, "999 B");
    cli_bytes_format(1500, b, sizeof(b));
    assert_string_equal(b, "1.5 kB");
    cli_bytes_format(52428800, b, sizeof(b));
    assert_string_equal(b, "52.4 MB");
    cli_bytes_format(1200000000, b, sizeof(b));
    assert_string_equal(b, "1.2 GB");
    cli_bytes_format(-5, b, sizeof(b));
    assert_string_equal(b, "0 B");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_complete), cmocka_unit_test(test_format),
        cmocka_unit_test(test_reason_words),   cmocka_unit_test(test_client),
        cmocka_unit_test(test_progress),       cmocka_unit_test(test_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
