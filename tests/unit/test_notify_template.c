/* Unit tests of txnotify's templates: loading, parse errors, rendering and escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/tx_buf.h"
#include "consumers/notify/notify_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct notify_vars sample_vars(void)
{
    static const struct tx_reason reasons[2] = {
        { "ADDRESS_CHANGE", "endereco mudou de <A> para \"B\"" },
        { "VELOCITY", "6 transactions in 60 s" },
    };
    struct notify_vars v;

    memset(&v, 0, sizeof(v));
    v.cliente = "Zoë";
    v.id = "c-1";
    v.email = "zoe@example.test";
    v.endereco = "Rua A, 1";
    v.datatrasancao = "2024-03-11T12:00:00Z";
    v.has_valor = true;
    v.valor = 12.5;
    v.upload_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    v.event_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:7";
    v.score = 0.75;
    v.reasons = reasons;
    v.nreasons = 2;
    return v;
}

/* Renders one part of a template made from the three sources; returns a malloc'd string. */
static char *render(const char *subject, const char *text, const char *html, enum notify_part part,
                    const struct notify_vars *v)
{
    struct tx_err err = { 0 };
    struct notify_template *t = notify_template_create("t", subject, text, html, &err);
    struct tx_buf out;
    char *s;

    if (t == NULL)
        fail_msg("template rejected: %s", err.msg);
    tx_buf_init(&out, 1 << 20);
    assert_int_equal(notify_template_render(t, part, v, &out), 0);
    s = strdup(out.data != NULL ? out.data : "");
    tx_buf_cleanup(&out);
    notify_template_destroy(t);
    return s;
}

static void expect_error(const char *subject, const char *text, const char *html,
                         const char *needle)
{
    struct tx_err err = { 0 };
    struct notify_template *t = notify_template_create("t", subject, text, html, &err);

    assert_null(t);
    assert_int_equal(err.code, TX_EINVAL);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err.msg, needle);
}

static void test_every_placeholder(void **state)
{
    struct notify_vars v = sample_vars();
    char *s;

    (void) state;
    s = render("s",
               "{{cliente}}|{{_id}}|{{email}}|{{endereco}}|{{datatrasancao}}|{{valor}}|"
               "{{upload_id}}|{{event_id}}|{{score}}|{{ cliente }}",
               "h", NOTIFY_PART_TEXT, &v);
    assert_string_equal(s, "Zoë|c-1|zoe@example.test|Rua A, 1|2024-03-11T12:00:00Z|12.50|"
                           "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b|"
                           "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:7|0.75|Zoë");
    free(s);
    v.has_valor = false;
    s = render("s", "valor={{valor}} {single} }} {", "h", NOTIFY_PART_TEXT, &v);
    assert_string_equal(s, "valor=- {single} }} {");
    free(s);
}

static void test_html_escaping(void **state)
{
    struct notify_vars v = sample_vars();
    char *s;

    (void) state;
    v.cliente = "<script>alert('x')</script> & \"co\"";
    s = render("s", "t", "<p>{{cliente}}</p>", NOTIFY_PART_HTML, &v);
    assert_string_equal(s, "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
                           "&quot;co&quot;</p>");
    free(s);
    /* The text part keeps the value as is. */
    s = render("s", "{{cliente}}", "h", NOTIFY_PART_TEXT, &v);
    assert_string_equal(s, "<script>alert('x')</script> & \"co\"");
    free(s);
}

static void test_reasons_list(void **state)
{
    struct notify_vars v = sample_vars();
    char *s;

    (void) state;
    s = render("Alert: {{reasons}}", "{{reasons}}", "{{reasons}}", NOTIFY_PART_TEXT, &v);
    assert_string_equal(s, "- ADDRESS_CHANGE: endereco mudou de <A> para \"B\"\n"
                           "- VELOCITY: 6 transactions in 60 s");
    free(s);
    s = render("Alert: {{reasons}}", "{{reasons}}", "{{reasons}}", NOTIFY_PART_HTML, &v);
    assert_string_equal(s, "<ul><li><strong>ADDRESS_CHANGE</strong>: endereco mudou de &lt;A&gt; "
                           "para &quot;B&quot;</li><li><strong>VELOCITY</strong>: 6 transactions "
                           "in 60 s</li></ul>");
    free(s);
    s = render("Alert: {{reasons}}", "{{reasons}}", "{{reasons}}", NOTIFY_PART_SUBJECT, &v);
    assert_string_equal(s, "Alert: ADDRESS_CHANGE, VELOCITY");
    free(s);
    v.nreasons = 0;
    s = render("Alert: {{reasons}}", "{{reasons}}", "[{{reasons}}]", NOTIFY_PART_HTML, &v);
    assert_string_equal(s, "[]");
    free(s);
}

static void test_subject_header_injection(void **state)
{
    struct notify_vars v = sample_vars();
    char *s;

    (void) state;
    v.cliente = "Eve\r\nBcc: victim@example.test\n\tX-Evil: 1";
    s = render("  Hello {{cliente}}  \n", "t", "h", NOTIFY_PART_SUBJECT, &v);
    assert_null(strchr(s, '\r'));
    assert_null(strchr(s, '\n'));
    assert_null(strchr(s, '\t'));
    assert_string_equal(s, "Hello Eve  Bcc: victim@example.test  X-Evil: 1");
    free(s);
    /* U+2028/U+2029 (line/paragraph separators), NEL (U+0085) and DEL become spaces too. */
    v.cliente = "a\xe2\x80\xa8"
                "b\xe2\x80\xa9"
                "c\xc2\x85"
                "d\x7f"
                "e";
    s = render("{{cliente}}", "t", "h", NOTIFY_PART_SUBJECT, &v);
    assert_string_equal(s, "a b c d e");
    free(s);
}

static void test_parse_errors(void **state)
{
    (void) state;
    expect_error("Hi {{nome}}", "t", "h", "t.subject:1:4: unknown placeholder {{nome}}");
    expect_error("s", "line one\nx {{cliente", "h", "t.txt:2:3: unterminated placeholder");
    expect_error("s", "t", "<p>\n\n  {{ }}</p>", "t.html:3:3: empty placeholder");
    expect_error("s", "t", "{{valor}} {{Cliente}}", "t.html:1:11: unknown placeholder {{Cliente}}");
    expect_error("one\ntwo\n", "t", "h", "t.subject:1:4: a subject must be a single line");
    expect_error("\n", "t", "h", "t.subject: the subject is empty");
    expect_error("s", "bad \xc3\x28 byte", "h", "t.txt:1:5: not valid UTF-8");
    expect_error("s", "overlong \xc0\xaf", "h", "not valid UTF-8");
}

static void test_subject_final_newline_dropped(void **state)
{
    struct notify_vars v = sample_vars();
    char *s;

    (void) state;
    s = render("Recibo {{_id}}\r\n", "t", "h", NOTIFY_PART_SUBJECT, &v);
    assert_string_equal(s, "Recibo c-1");
    free(s);
}

static void test_bad_template_name(void **state)
{
    struct tx_err err = { 0 };

    (void) state;
    assert_null(notify_template_create("../etc", "s", "t", "h", &err));
    assert_int_equal(err.code, TX_EINVAL);
    assert_null(notify_template_load("/tmp", "Receipt", &err));
    assert_int_equal(err.code, TX_EINVAL);
}

/* The templates shipped in volumes/notify/templates load and render. */
static void test_shipped_templates(void **state)
{
    static const char *const names[] = { "receipt", "alert_client", "alert_ops" };
    const char *src = getenv("TX_SOURCE_DIR");
    char dir[4096];
    struct notify_vars v = sample_vars();
    size_t i;

    (void) state;
    if (src == NULL)
        skip();
    snprintf(dir, sizeof(dir), "%s/volumes/notify/templates", src);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct tx_err err = { 0 };
        struct notify_template *t = notify_template_load(dir, names[i], &err);
        struct tx_buf out;
        int p;

        if (t == NULL)
            fail_msg("%s: %s", names[i], err.msg);
        assert_string_equal(notify_template_name(t), names[i]);
        for (p = 0; p < NOTIFY_PARTS; p++) {
            tx_buf_init(&out, 1 << 20);
            assert_int_equal(notify_template_render(t, (enum notify_part) p, &v, &out), 0);
            assert_non_null(out.data);
            assert_true(out.len > 0);
            assert_null(strstr(out.data, "{{"));
            tx_buf_cleanup(&out);
        }
        notify_template_destroy(t);
    }
}

/* A scratch directory with one template; files[i] NULL leaves that file out. */
static void write_file(const char *dir, const char *name, const char *content)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
    fclose(f);
}

static void test_load_errors(void **state)
{
    char dir[] = "/tmp/txtest-notify-tpl-XXXXXX";
    char path[4096];
    struct tx_err err = { 0 };
    struct notify_template *t;
    char *big;

    (void) state;
    assert_non_null(mkdtemp(dir));
    write_file(dir, "x.subject", "Olá {{cliente}}\n");
    write_file(dir, "x.txt", "text {{_id}}\n");
    /* Missing .html: refused, naming the file. */
    t = notify_template_load(dir, "x", &err);
    assert_null(t);
    assert_int_equal(err.code, TX_ENOTFOUND);
    snprintf(path, sizeof(path), "%s/x.html", dir);
    assert_non_null(strstr(err.msg, path));

    /* An unknown placeholder on line 2 of the HTML: the error names the full path and place. */
    write_file(dir, "x.html", "<p>\n<b>{{clientes}}</b>\n");
    t = notify_template_load(dir, "x", &err);
    assert_null(t);
    assert_int_equal(err.code, TX_EINVAL);
    snprintf(path, sizeof(path), "%s/x.html:2:4: unknown placeholder {{clientes}}", dir);
    if (strstr(err.msg, path) == NULL)
        fail_msg("unexpected error: %s", err.msg);

    write_file(dir, "x.html", "<p>{{cliente}}</p>\n");
    t = notify_template_load(dir, "x", &err);
    if (t == NULL)
        fail_msg("%s", err.msg);
    notify_template_destroy(t);

    /* Unreadable: a directory where the file should be. */
    snprintf(path, sizeof(path), "%s/y.subject", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file(dir, "y.txt", "t");
    write_file(dir, "y.html", "h");
    t = notify_template_load(dir, "y", &err);
    assert_null(t);
    assert_int_equal(err.code, TX_EIO);
    assert_non_null(strstr(err.msg, path));
    rmdir(path);

    /* Too big. */
    big = malloc(NOTIFY_TEMPLATE_MAX_BYTES + 2);
    assert_non_null(big);
    memset(big, 'a', NOTIFY_TEMPLATE_MAX_BYTES + 1);
    big[NOTIFY_TEMPLATE_MAX_BYTES + 1] = '\0';
    write_file(dir, "y.subject", "s");
    write_file(dir, "y.txt", big);
    free(big);
    t = notify_template_load(dir, "y", &err);
    assert_null(t);
    assert_int_equal(err.code, TX_EINVAL);
    assert_non_null(strstr(err.msg, "larger than"));

    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

static void test_render_limit(void **state)
{
    struct notify_vars v = sample_vars();
    struct tx_err err = { 0 };
    struct notify_template *t =
        notify_template_create("t", "s", "{{cliente}}{{cliente}}", "h", &err);
    struct tx_buf out;

    (void) state;
    assert_non_null(t);
    tx_buf_init(&out, 5);
    assert_int_equal(notify_template_render(t, NOTIFY_PART_TEXT, &v, &out), TX_ETOOBIG);
    tx_buf_cleanup(&out);
    notify_template_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_placeholder),
        cmocka_unit_test(test_html_escaping),
        cmocka_unit_test(test_reasons_list),
        cmocka_unit_test(test_subject_header_injection),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_subject_final_newline_dropped),
        cmocka_unit_test(test_bad_template_name),
        cmocka_unit_test(test_shipped_templates),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_render_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
