/*
 * Unit tests of txpersist's pure part (consumers/persist/persist_rows.c): COPY text escaping,
 * decoded events -> staging rows, the poison checks made before the database sees a row, and the
 * classification of database errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tx_buf.h"
#include "common/tx_event.h"
#include "consumers/persist/persist.h"

#define UPLOAD  "01890a5d-ac96-774b-bcce-b302099a8057"
#define BUF_MAX (1u << 20)

/* ---- helpers ---- */

/* Decodes one COPY text field (the inverse of persist_copy_field); NULL for \N. */
static char *copy_unescape(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    assert_non_null(out);
    if (len == 2 && s[0] == '\\' && s[1] == 'N') {
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\') {
            out[o++] = s[i];
            continue;
        }
        assert_true(i + 1 < len);
        switch (s[++i]) {
        case '\\':
            out[o++] = '\\';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        default:
            fail_msg("unexpected escape \\%c", s[i]);
        }
    }
    out[o] = '\0';
    return out;
}

/* One staging line split into its fields, each decoded. */
struct fields {
    char *v[PERSIST_STAGE_NCOLUMNS];
    int n;
};

static void split_line(const char *line, size_t len, struct fields *f)
{
    size_t start = 0;

    memset(f, 0, sizeof(*f));
    assert_true(len > 0);
    assert_int_equal(line[len - 1], '\n');
    assert_null(memchr(line, '\n', len - 1)); /* one line: newlines inside are escaped */
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\t' || line[i] == '\n') {
            assert_true(f->n < PERSIST_STAGE_NCOLUMNS);
            f->v[f->n++] = copy_unescape(line + start, i - start);
            start = i + 1;
        }
    }
    assert_int_equal(f->n, PERSIST_STAGE_NCOLUMNS);
}

static void fields_free(struct fields *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->v[i]);
}

/* Index of a staging column by name, from PERSIST_STAGE_COLUMNS. */
static int col(const char *name)
{
    const char *p = PERSIST_STAGE_COLUMNS;
    size_t nlen = strlen(name);
    int i = 0;

    while (*p != '\0') {
        size_t n = strcspn(p, ",");

        if (n == nlen && strncmp(p, name, n) == 0)
            return i;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
        i++;
    }
    fail_msg("no staging column %s", name);
    return -1;
}

static void assert_field(const struct fields *f, const char *name, const char *want)
{
    const char *got = f->v[col(name)];

    if (want == NULL) {
        if (got != NULL)
            fail_msg("column %s: expected NULL, got \"%s\"", name, got);
        return;
    }
    if (got == NULL)
        fail_msg("column %s: expected \"%s\", got NULL", name, want);
    if (strcmp(got, want) != 0)
        fail_msg("column %s: expected \"%s\", got \"%s\"", name, want, got);
}

/* Decodes an event given as JSON text; fails the test when it does not decode. */
static struct tx_event *decode(const char *json)
{
    struct tx_event *ev = NULL;
    struct tx_err err;

    tx_err_clear(&err);
    if (tx_event_decode(json, strlen(json), &ev, &err) != 0)
        fail_msg("decode: %s", err.msg);
    return ev;
}

#define RECORD                                                                            \
    "{\"_id\":\"c-1\",\"cliente\":\"Ana \\\"A\\\" Souza\",\"email\":\"ana@example.com\"," \
    "\"endereco\":\"Rua\\tA\\n\\\\ 1\",\"datatrasancao\":\"2024-03-11T12:00:00 +02:00\"," \
    "\"isActive\":true,\"valor\":100.10}"

#define RECEIVED                                                                              \
    "{\"type\":\"transaction.received\",\"schema_version\":1,\"event_id\":\"" UPLOAD ":7\","  \
    "\"upload_id\":\"" UPLOAD "\",\"index\":7,\"object\":\"raw/2024/03/11/" UPLOAD ".json\"," \
    "\"received_at\":\"2024-03-11T12:00:00.123Z\",\"transaction\":" RECORD "}"

/* ---- COPY escaping ---- */

static void test_copy_field_escapes(void **state)
{
    struct tx_buf b;
    const char in[] = "a\tb\nc\rd\\e \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \\N";

    (void) state;
    tx_buf_init(&b, BUF_MAX);
    assert_int_equal(persist_copy_field(&b, in, strlen(in)), 0);
    assert_string_equal(b.data, "a\\tb\\nc\\rd\\\\e \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \\\\N");
    tx_buf_reset(&b);
    assert_int_equal(persist_copy_field(&b, "", 0), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(persist_copy_field(&b, "plain", 5), 0);
    assert_string_equal(b.data, "plain");
    tx_buf_cleanup(&b);
}

static void test_copy_field_refuses_nul_and_bad_utf8(void **state)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        { "a\0b", 3 },             /* NUL */
        { "\xff", 1 },             /* never valid */
        { "\xc0\x80", 2 },         /* overlong NUL */
        { "\xe0\x80\xaf", 3 },     /* overlong '/' */
        { "\xed\xa0\x80", 3 },     /* UTF-16 surrogate */
        { "\xf4\x90\x80\x80", 4 }, /* above U+10FFFF */
        { "ab\xe2\x82", 4 },       /* truncated */
        { "\x80", 1 },             /* lone continuation */
    };
    struct tx_buf b;

    (void) state;
    tx_buf_init(&b, BUF_MAX);
    assert_int_equal(tx_buf_puts(&b, "keep"), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (persist_copy_field(&b, bad[i].s, bad[i].len) != TX_EINVAL)
            fail_msg("case %zu accepted", i);
        assert_int_equal(b.len, 4); /* unchanged */
    }
    assert_string_equal(b.data, "keep");
    tx_buf_cleanup(&b);
}

/* Every byte string of valid UTF-8 survives escape + unescape unchanged. */
static void test_copy_field_round_trip(void **state)
{
    static const char alphabet[] = "ab\\\t\n\r N.\xc3\xa9";
    unsigned seed = 12345;
    struct tx_buf b;

    (void) state;
    tx_buf_init(&b, BUF_MAX);
    for (int round = 0; round < 2000; round++) {
        char in[64];
        size_t len = 0;
        char *back;
        int n = (int) (seed % 20);

        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t k = (seed >> 16) % (sizeof(alphabet) - 2); /* not the last byte of é */

            if ((unsigned char) alphabet[k] == 0xc3) {
                in[len++] = '\xc3';
                in[len++] = '\xa9';
            }
            else {
                in[len++] = alphabet[k];
            }
        }
        seed = seed * 1103515245u + 12345u;
        tx_buf_reset(&b);
        assert_int_equal(persist_copy_field(&b, in, len), 0);
        assert_null(b.len > 0 ? memchr(b.data, '\t', b.len) : NULL);
        assert_null(b.len > 0 ? memchr(b.data, '\n', b.len) : NULL);
        back = copy_unescape(b.len > 0 ? b.data : "", b.len);
        assert_non_null(back); /* text "\N" is written "\\N", never read back as NULL */
        assert_int_equal(strlen(back), len);
        assert_memory_equal(back, in, len);
        free(back);
    }
    tx_buf_cleanup(&b);
}

/* ---- rows from decoded events ---- */

static void test_row_received(void **state)
{
    struct tx_event *ev = decode(RECEIVED);
    struct tx_buf b;
    struct fields f;
    struct tx_err err;

    (void) state;
    tx_buf_init(&b, BUF_MAX);
    tx_err_clear(&err);
    assert_int_equal(persist_row_append(&b, 3, ev, &err), 0);
    split_line(b.data, b.len, &f);
    assert_field(&f, "seq", "3");
    assert_field(&f, "kind", "r");
    assert_field(&f, "event_id", UPLOAD ":7");
    assert_field(&f, "upload_id", UPLOAD);
    assert_field(&f, "idx", "7");
    assert_field(&f, "object_key", "raw/2024/03/11/" UPLOAD ".json");
    assert_field(&f, "received_at", "2024-03-11T12:00:00.123Z");
    assert_field(&f, "client_id", "c-1");
    assert_field(&f, "cliente", "Ana \"A\" Souza");
    assert_field(&f, "email", "ana@example.com");
    assert_field(&f, "endereco", "Rua\tA\n\\ 1"); /* real tab, newline, backslash */
    assert_field(&f, "datatrasancao", "2024-03-11T12:00:00 +02:00");
    assert_field(&f, "datatrasancao_at", "2024-03-11T10:00:00.000Z");
    assert_field(&f, "is_active", "t");
    /* raw is the record's JSON text: its escapes (backslashes) survive the COPY escaping. */
    assert_field(&f, "raw", ev->record.json);
    assert_non_null(strstr(f.v[col("raw")], "\"Rua\\tA\\n\\\\ 1\""));
    assert_non_null(strstr(f.v[col("raw")], "100.10"));
    assert_field(&f, "valor", "100.10"); /* the number's text, not a double's */
    assert_field(&f, "flagged", NULL);
    assert_field(&f, "score", NULL);
    assert_field(&f, "reasons", NULL);
    assert_field(&f, "template", NULL);
    assert_field(&f, "status", NULL);
    assert_field(&f, "at", NULL);
    fields_free(&f);
    tx_buf_cleanup(&b);
    tx_event_destroy(ev);
}

static void test_row_scored(void **state)
{
    const char *json =
        "{\"type\":\"transaction.scored\",\"schema_version\":1,\"event_id\":\"" UPLOAD ":0\","
        "\"upload_id\":\"" UPLOAD "\",\"index\":0,\"object\":\"o\","
        "\"received_at\":\"2024-03-11T12:00:00Z\",\"transaction\":" RECORD ","
        "\"verdict\":{\"flagged\":true,\"score\":0.1,\"reasons\":["
        "{\"code\":\"ADDRESS_CHANGE\",\"detail\":\"was \\\"Rua B\\\"\\tnow\"},"
        "{\"code\":\"VELOCITY\",\"detail\":\"6 in 60 s\"}]}}";
    struct tx_event *ev = decode(json);
    struct tx_buf b;
    struct fields f;
    struct tx_err err;

    (void) state;
    tx_buf_init(&b, BUF_MAX);
    tx_err_clear(&err);
    assert_int_equal(persist_row_append(&b, 0, ev, &err), 0);
    split_line(b.data, b.len, &f);
    assert_field(&f, "kind", "s");
    assert_field(&f, "flagged", "t");
    assert_field(&f, "score", "0.1"); /* shortest form that reads back as the same double */
    assert_field(&f, "reasons",
                 "[{\"code\":\"ADDRESS_CHANGE\",\"detail\":\"was \\\"Rua B\\\"\\tnow\"},"
                 "{\"code\":\"VELOCITY\",\"detail\":\"6 in 60 s\"}]");
    assert_field(&f, "client_id", "c-1");
    fields_free(&f);

    /* A score that needs 17 digits keeps them. */
    ev->verdict.score = 0.1 + 0.2;
    ev->verdict.flagged = false;
    ev->verdict.nreasons = 0;
    tx_buf_reset(&b);
    assert_int_equal(persist_row_append(&b, 1, ev, &err), 0);
    split_line(b.data, b.len, &f);
    assert_field(&f, "score", "0.30000000000000004");
    assert_field(&f, "flagged", "f");
    assert_field(&f, "reasons", "[]");
    fields_free(&f);
    tx_buf_cleanup(&b);
    tx_event_destroy(ev);
}

static void test_row_notification(void **state)
{
    const char *sent = "{\"type\":\"notification.sent\",\"schema_version\":1,\"event_id\":\"" UPLOAD
                       ":2\",\"template\":\"receipt\",\"to\":\"ana@example.com\","
                       "\"message_id\":\"<m1@txpipe>\",\"at\":\"2024-03-11T14:00:00+02:00\","
                       "\"error\":null}";
    const char *failed =
        "{\"type\":\"notification.failed\",\"schema_version\":1,\"event_id\":\"" UPLOAD
        ":2\",\"template\":\"alert\",\"to\":\"ana@example.com\","
        "\"message_id\":\"\",\"at\":\"2024-03-11T12:00:01.5Z\","
        "\"error\":\"550 mailbox\\tunavailable\"}";
    struct tx_event *ev = decode(sent);
    struct tx_buf b;
    struct fields f;
    struct tx_err err;

    (void) state;
    tx_buf_init(&b, BUF_MAX);
    tx_err_clear(&err);
    assert_int_equal(persist_row_append(&b, 9, ev, &err), 0);
    split_line(b.data, b.len, &f);
    assert_field(&f, "kind", "n");
    assert_field(&f, "event_id", UPLOAD ":2");
    assert_field(&f, "upload_id", NULL);
    assert_field(&f, "raw", NULL);
    assert_field(&f, "valor", NULL);
    assert_field(&f, "template", "receipt");
    assert_field(&f, "to_addr", "ana@example.com");
    assert_field(&f, "status", "sent");
    assert_field(&f, "message_id", "<m1@txpipe>");
    assert_field(&f, "error", NULL);
    assert_field(&f, "at", "2024-03-11T12:00:00.000Z"); /* normalised to UTC */
    fields_free(&f);
    tx_event_destroy(ev);

    ev = decode(failed);
    tx_buf_reset(&b);
    assert_int_equal(persist_row_append(&b, 10, ev, &err), 0);
    split_line(b.data, b.len, &f);
    assert_field(&f, "status", "failed");
    assert_field(&f, "message_id", NULL); /* "" is stored as NULL */
    assert_field(&f, "error", "550 mailbox\tunavailable");
    assert_field(&f, "at", "2024-03-11T12:00:01.500Z");
    fields_free(&f);
    tx_event_destroy(ev);
    tx_buf_cleanup(&b);
}

/* Several rows append one after the other, each a complete line. */
/* valor goes to PostgreSQL as written in the record: digits a double cannot hold survive; no
 * valor is NULL; a key written with escapes is still found (through the decoded value). */
static void test_row_valor_exact(void **state)
{
    static const struct {
        const char *valor_member; /* "" for none */
        const char *want;         /* NULL for SQL NULL */
    } cases[] = {
        { ",\"valor\":12345678901234567890.123456789", "12345678901234567890.123456789" },
        { ",\"valor\":0.1", "0.1" },
        { ",\"valor\":1E+2", "1E+2" },
        { ",\"valor\":7", "7" },
        { "", NULL },
        { ",\"\\u0076alor\":2.5", "2.5" },
    };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[1024];
        struct tx_event *ev;
        struct tx_buf b;
        struct fields f;
        struct tx_err err;

        snprintf(json, sizeof(json),
                 "{\"type\":\"transaction.received\",\"schema_version\":1,\"event_id\":\"" UPLOAD
                 ":1\",\"upload_id\":\"" UPLOAD "\",\"index\":1,\"object\":\"o\","
                 "\"received_at\":\"2024-03-11T12:00:00.123Z\",\"transaction\":{\"_id\":\"c-1\","
                 "\"cliente\":\"Ana\",\"email\":\"ana@example.com\",\"endereco\":\"Rua\","
                 "\"datatrasancao\":\"2024-03-11T12:00:00 +02:00\",\"isActive\":true%s}}",
                 cases[i].valor_member);
        ev = decode(json);
        tx_buf_init(&b, BUF_MAX);
        tx_err_clear(&err);
        assert_int_equal(persist_row_append(&b, 0, ev, &err), 0);
        split_line(b.data, b.len, &f);
        assert_field(&f, "valor", cases[i].want);
        fields_free(&f);
        tx_buf_cleanup(&b);
        tx_event_destroy(ev);
    }
}

static void test_rows_concatenate(void **state)
{
    struct tx_event *ev = decode(RECEIVED);
    struct tx_buf b;
    struct tx_err err;
    size_t lines = 0;

    (void) state;
    tx_buf_init(&b, BUF_MAX);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(persist_row_append(&b, i, ev, &err), 0);
    for (size_t i = 0; i < b.len; i++)
        lines += b.data[i] == '\n';
    assert_int_equal(lines, 5);
    assert_int_equal(strncmp(b.data, "0\tr\t", 4), 0);
    assert_non_null(strstr(b.data, "\n4\tr\t"));
    tx_buf_cleanup(&b);
    tx_event_destroy(ev);
}

/* ---- poison checks: refused before the database, the buffer left as it was ---- */

static void expect_refused(struct tx_event *ev, const char *why_part)
{
    struct tx_buf b;
    struct tx_err err;

    tx_buf_init(&b, BUF_MAX);
    assert_int_equal(tx_buf_puts(&b, "before\n"), 0);
    tx_err_clear(&err);
    assert_int_equal(persist_row_append(&b, 0, ev, &err), TX_EINVAL);
    assert_int_equal(b.len, 7);
    assert_string_equal(b.data, "before\n");
    if (strstr(err.msg, why_part) == NULL)
        fail_msg("reason \"%s\" does not mention \"%s\"", err.msg, why_part);
    tx_buf_cleanup(&b);
}

static void test_row_poison(void **state)
{
    struct tx_event *ev = decode(RECEIVED);
    const char *json;
    size_t len;
    char *bad_json;

    (void) state;
    ev->head.index = (size_t) INT32_MAX + 1;
    expect_refused(ev, "index");
    ev->head.index = 7;

    ev->head.received_ms = INT64_MAX / 2;
    expect_refused(ev, "received_at");
    ev->head.received_ms = 0;

    ev->record.ts_ms = -62135596800001LL; /* before 0001-01-01 */
    expect_refused(ev, "datatrasancao");
    ev->record.ts_ms = 0;

    ev->record.cliente = "bad \xff byte";
    expect_refused(ev, "cliente");
    ev->record.cliente = "ok";

    /* The record JSON holding \u0000, which jsonb cannot store, but not "\\u0000" (a
     * backslash followed by text), which it can. */
    json = ev->record.json;
    len = ev->record.json_len;
    ev->record.json = "{\"a\":\"x\\u0000\"}";
    ev->record.json_len = strlen(ev->record.json);
    expect_refused(ev, "u0000");
    bad_json = strdup("{\"a\":\"x\\\\u0000\"}");
    ev->record.json = bad_json;
    ev->record.json_len = strlen(bad_json);
    {
        struct tx_buf b;
        struct tx_err err;

        tx_buf_init(&b, BUF_MAX);
        assert_int_equal(persist_row_append(&b, 0, ev, &err), 0);
        tx_buf_cleanup(&b);
    }
    free(bad_json);
    ev->record.json = json;
    ev->record.json_len = len;

    ev->type = TX_EVENT_SCORED;
    ev->has_verdict = true;
    ev->verdict.score = INFINITY;
    expect_refused(ev, "score");
    tx_event_destroy(ev);

    ev = decode("{\"type\":\"notification.sent\",\"schema_version\":1,\"event_id\":\"e:1\","
                "\"template\":\"receipt\",\"to\":\"a@b.c\",\"message_id\":\"m\","
                "\"at\":\"yesterday\",\"error\":null}");
    expect_refused(ev, "at");
    tx_event_destroy(ev);
}

static void test_row_buffer_full_restores(void **state)
{
    struct tx_event *ev = decode(RECEIVED);
    struct tx_buf b;
    struct tx_err err;

    (void) state;
    tx_buf_init(&b, 300); /* room for the prefix, not for the row */
    assert_int_equal(tx_buf_puts(&b, "x\n"), 0);
    assert_int_equal(persist_row_append(&b, 0, ev, &err), TX_ETOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "x\n");
    tx_buf_cleanup(&b);
    tx_event_destroy(ev);
}

/* ---- error classes ---- */

static void test_error_class(void **state)
{
    (void) state;
    assert_int_equal(persist_error_class(TX_EREJECT, "23514"), PERSIST_ERR_ROW); /* check */
    assert_int_equal(persist_error_class(TX_EREJECT, "23502"), PERSIST_ERR_ROW); /* not null */
    assert_int_equal(persist_error_class(TX_EIO, "22P02"), PERSIST_ERR_ROW);     /* syntax */
    assert_int_equal(persist_error_class(TX_EIO, "22003"), PERSIST_ERR_ROW);     /* range */
    assert_int_equal(persist_error_class(TX_EUNAVAIL, ""), PERSIST_ERR_TRANSIENT);
    assert_int_equal(persist_error_class(TX_EUNAVAIL, "40P01"), PERSIST_ERR_TRANSIENT);
    assert_int_equal(persist_error_class(TX_ETIMEDOUT, "57014"), PERSIST_ERR_TRANSIENT);
    /* Not a row's fault: dead-lettering rows would lose them. */
    assert_int_equal(persist_error_class(TX_EREJECT, "42501"), PERSIST_ERR_SYSTEMIC);
    assert_int_equal(persist_error_class(TX_EREJECT, "25006"), PERSIST_ERR_SYSTEMIC);
    assert_int_equal(persist_error_class(TX_EIO, "42P01"), PERSIST_ERR_SYSTEMIC);
    assert_int_equal(persist_error_class(TX_EIO, ""), PERSIST_ERR_SYSTEMIC);
    assert_int_equal(persist_error_class(TX_EINVAL, NULL), PERSIST_ERR_SYSTEMIC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_field_escapes),
        cmocka_unit_test(test_copy_field_refuses_nul_and_bad_utf8),
        cmocka_unit_test(test_copy_field_round_trip),
        cmocka_unit_test(test_row_received),
        cmocka_unit_test(test_row_scored),
        cmocka_unit_test(test_row_notification),
        cmocka_unit_test(test_row_valor_exact),
        cmocka_unit_test(test_rows_concatenate),
        cmocka_unit_test(test_row_poison),
        cmocka_unit_test(test_row_buffer_full_restores),
        cmocka_unit_test(test_error_class),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
