/* Multipart/form-data and Content-Type parsing of the gateway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "gateway/gw_multipart.h"

#define B "----txpipeBoundary7MA4YWxk"

static void test_content_type(void **state)
{
    char type[64];
    char boundary[GW_BOUNDARY_MAX + 1];

    (void) state;
    assert_int_equal(gw_content_type_parse("Application/JSON; charset=utf-8", type, sizeof(type),
                                           boundary, sizeof(boundary)),
                     0);
    assert_string_equal(type, "application/json");
    assert_string_equal(boundary, "");
    assert_int_equal(gw_content_type_parse("multipart/form-data; boundary=" B, type, sizeof(type),
                                           boundary, sizeof(boundary)),
                     0);
    assert_string_equal(type, "multipart/form-data");
    assert_string_equal(boundary, B);
    assert_int_equal(gw_content_type_parse("multipart/form-data; boundary=\"a b;c\"", type,
                                           sizeof(type), boundary, sizeof(boundary)),
                     0);
    assert_string_equal(boundary, "a b;c");
    assert_int_equal(gw_content_type_parse("", type, sizeof(type), boundary, sizeof(boundary)),
                     TX_EINVAL);
    assert_int_equal(gw_content_type_parse("json", type, sizeof(type), boundary, sizeof(boundary)),
                     TX_EINVAL);
    /* A boundary over 70 characters is refused. */
    assert_int_equal(gw_content_type_parse("multipart/form-data; boundary="
                                           "0123456789012345678901234567890123456789012345678901234"
                                           "567890123456789X",
                                           type, sizeof(type), boundary, sizeof(boundary)),
                     TX_EINVAL);
    assert_int_equal(gw_content_type_parse("multipart/form-data; boundary=\"unterminated", type,
                                           sizeof(type), boundary, sizeof(boundary)),
                     TX_EINVAL);
}

static const char form[] =
    "preamble is ignored\r\n"
    "--" B "\r\n"
    "Content-Disposition: form-data; name=\"note\"\r\n"
    "\r\n"
    "hello\r\n"
    "--" B "\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"Dados.json\"\r\n"
    "Content-Type: application/json\r\n"
    "\r\n"
    "[{\"a\":1}]\r\n  \r\n"
    "--" B "--\r\n";

static void test_find_file(void **state)
{
    struct gw_part p;
    struct tx_err err = { 0 };

    (void) state;
    assert_int_equal(gw_multipart_find(form, sizeof(form) - 1, B, "file", &p, &err), 0);
    assert_int_equal(p.len, strlen("[{\"a\":1}]\r\n  "));
    assert_memory_equal(p.data, "[{\"a\":1}]\r\n  ", p.len);
    assert_string_equal(p.filename, "Dados.json");
    assert_string_equal(p.content_type, "application/json");
    assert_int_equal(gw_multipart_find(form, sizeof(form) - 1, B, "note", &p, &err), 0);
    assert_memory_equal(p.data, "hello", 5);
    assert_int_equal(p.len, 5);
    assert_int_equal(gw_multipart_find(form, sizeof(form) - 1, B, "other", &p, &err), TX_ENOTFOUND);
}

static void test_malformed(void **state)
{
    struct gw_part p;
    struct tx_err err = { 0 };
    char buf[sizeof(form)];

    (void) state;
    /* Wrong boundary. */
    assert_int_equal(gw_multipart_find(form, sizeof(form) - 1, "nope", "file", &p, &err),
                     TX_ESYNTAX);
    /* Truncated before the closing boundary of the file part. */
    memcpy(buf, form, sizeof(form));
    assert_int_equal(gw_multipart_find(buf, strstr(form, "[{") - form + 4, B, "file", &p, &err),
                     TX_ESYNTAX);
    /* Headers never end. */
    {
        static const char h[] = "--" B "\r\nContent-Disposition: form-data; name=\"file\"\r\n";

        assert_int_equal(gw_multipart_find(h, sizeof(h) - 1, B, "file", &p, &err), TX_ESYNTAX);
    }
    /* Empty body, boundary only. */
    assert_int_equal(gw_multipart_find("", 0, B, "file", &p, &err), TX_ESYNTAX);
    {
        static const char closed[] = "--" B "--\r\n";

        assert_int_equal(gw_multipart_find(closed, sizeof(closed) - 1, B, "file", &p, &err),
                         TX_ENOTFOUND);
    }
    /* Binary content with NUL bytes and a near-boundary inside is kept exactly. */
    {
        static const char bin[] = "--" B "\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                                  "a\0b\r\n--" B "x\r\n--" B "--";
        assert_int_equal(gw_multipart_find(bin, sizeof(bin) - 1, B, "file", &p, &err), TX_ESYNTAX);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_find_file),
        cmocka_unit_test(test_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
