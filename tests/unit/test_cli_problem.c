/* txupload's error lines from the gateway's problem+json answers (bodies as the gateway sends). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_problem.h"

static const char validation[] =
    "{\"type\":\"https://txpipe.dev/problems/validation-failed\",\"title\":\"Invalid records\","
    "\"status\":422,\"detail\":\"3 validation error(s); the whole upload was rejected and nothing "
    "was stored\",\"total_errors\":3,\"errors\":[{\"index\":0,\"line\":1,\"field\":\"email\","
    "\"code\":\"format\",\"message\":\"email must contain exactly one '@'\"},{\"index\":1,"
    "\"line\":9,\"field\":\"isActive\",\"code\":\"type\",\"message\":\"isActive must be a "
    "boolean, got a string\"},{\"index\":2,\"line\":12,\"field\":\"\",\"code\":\"type\","
    "\"message\":\"record 2 must be a JSON object, got a number\"}]}";

static void fmt(const char *file, int status, const char *body, char *out, size_t outlen)
{
    struct tx_buf b;

    tx_buf_init(&b, 1u << 20);
    assert_int_equal(cli_problem_format(file, status, body, body != NULL ? strlen(body) : 0, &b),
                     0);
    assert_true(b.len < outlen);
    memcpy(out, b.data != NULL ? b.data : "", b.len + 1);
    if (b.data == NULL)
        out[0] = '\0';
    tx_buf_cleanup(&b);
}

static void test_validation(void **state)
{
    char out[4096];

    (void) state;
    fmt("dir/bad.json", 422, validation, out, sizeof(out));
    assert_string_equal(out, "dir/bad.json:1: email: email must contain exactly one '@' (record 0, "
                             "format)\n"
                             "dir/bad.json:9: isActive: isActive must be a boolean, got a string "
                             "(record 1, type)\n"
                             "dir/bad.json:12: record: record 2 must be a JSON object, got a "
                             "number (record 2, type)\n");
}

static void test_validation_truncated(void **state)
{
    const char body[] = "{\"type\":\"https://txpipe.dev/problems/validation-failed\",\"status\":"
                        "422,\"total_errors\":1500,\"errors\":[{\"index\":7,\"line\":3,\"field\":"
                        "\"_id\",\"code\":\"required\",\"message\":\"_id is required\"}]}";
    char out[1024];

    (void) state;
    fmt("f.json", 422, body, out, sizeof(out));
    assert_string_equal(out, "f.json:3: _id: _id is required (record 7, required)\n"
                             "f.json: 1499 more error(s) not listed (1500 in all)\n");
}

static void test_malformed(void **state)
{
    const char body[] = "{\"type\":\"https://txpipe.dev/problems/malformed-json\",\"title\":"
                        "\"Malformed JSON\",\"status\":400,\"detail\":\"malformed JSON at line 2, "
                        "column 6: string or '}' expected near ','\",\"line\":2,\"column\":6}";
    const char noline[] = "{\"type\":\"https://txpipe.dev/problems/malformed-json\",\"status\":400,"
                          "\"detail\":\"empty body\"}";
    char out[1024];

    (void) state;
    fmt("x.ndjson", 400, body, out, sizeof(out));
    assert_string_equal(out, "x.ndjson:2:6: malformed JSON: string or '}' expected near ','\n");
    fmt("x.ndjson", 400, noline, out, sizeof(out));
    assert_string_equal(out, "x.ndjson: malformed JSON: empty body\n");
}

static void test_other(void **state)
{
    const char unauthorized[] = "{\"type\":\"https://txpipe.dev/problems/unauthorized\",\"title\":"
                                "\"Invalid API key\",\"status\":401,\"detail\":\"the API key is "
                                "not valid\"}";
    const char notitle[] = "{\"status\":413}";
    char out[1024];

    (void) state;
    fmt("a.json", 401, unauthorized, out, sizeof(out));
    assert_string_equal(out,
                        "a.json: error: Invalid API key (HTTP 401): the API key is not valid\n");
    fmt("a.json", 413, notitle, out, sizeof(out));
    assert_string_equal(out, "a.json: error: request failed (HTTP 413)\n");
    /* nginx's own pages are HTML; an empty body; not an object. */
    fmt("a.json", 429, "<html><body>429 Too Many Requests</body></html>", out, sizeof(out));
    assert_string_equal(out, "a.json: error: HTTP 429\n");
    fmt("a.json", 502, NULL, out, sizeof(out));
    assert_string_equal(out, "a.json: error: HTTP 502\n");
    fmt("a.json", 500, "[1,2]", out, sizeof(out));
    assert_string_equal(out, "a.json: error: HTTP 500\n");
}

static void test_slug(void **state)
{
    char slug[64];

    (void) state;
    cli_problem_slug(validation, strlen(validation), slug, sizeof(slug));
    assert_string_equal(slug, "validation-failed");
    cli_problem_slug("{\"type\":\"about:blank\"}", 22, slug, sizeof(slug));
    assert_string_equal(slug, "");
    cli_problem_slug("nope", 4, slug, sizeof(slug));
    assert_string_equal(slug, "");
    cli_problem_slug(NULL, 0, slug, sizeof(slug));
    assert_string_equal(slug, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation), cmocka_unit_test(test_validation_truncated),
        cmocka_unit_test(test_malformed),  cmocka_unit_test(test_other),
        cmocka_unit_test(test_slug),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
