/*
 * Unit tests for the upload parser and record validator (common/tx_record.h, ARCHITECTURE §3).
 * Line/column conventions checked here: lines are 1-based and counted at '\n' (CRLF counts once);
 * columns are 1-based and counted in characters. For syntax errors the column must lie within
 * the offending token (jansson reports the last character it read), so each check gives the
 * range [first character of the faulty token, the fault itself].
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tx_record.h"

/* 2024-03-11T12:00:00Z, the instant in the seed files. */
#define SEED_MS 1710158400000LL

#define UTF8_A_TILDE "\xc3\xa3"         /* "ã", 2 bytes, 1 code point */
#define UTF8_EMOJI   "\xf0\x9f\x98\x80" /* U+1F600, 4 bytes, 1 code point */

/* A valid record on one line (ASCII only, so bytes == characters). */
#define GOOD(id)                                                                           \
    "{\"_id\":\"" id "\",\"isActive\":true,\"cliente\":\"Cliente " id "\",\"email\":\"" id \
    "@example.com\",\"endereco\":\"Rua " id "\",\"datatrasancao\":\"2024-03-11T12:00:00 "  \
    "+00:00\",\"valor\":10.5}"

#define REC_A GOOD("c1")

/* ---- helpers ------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    if (fseek(f, 0, SEEK_END) != 0)
        fail_msg("cannot seek %s", path);
    n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
        fail_msg("cannot size %s", path);
    buf = malloc((size_t) n + 1);
    assert_non_null(buf);
    if (fread(buf, 1, (size_t) n, f) != (size_t) n)
        fail_msg("short read on %s", path);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t) n;
    return buf;
}

static char *read_seed(const char *name, size_t *len)
{
    const char *dir = getenv("TX_SEED_DIR");
    char path[4096];

    if (dir == NULL)
        fail_msg("TX_SEED_DIR is not set (ctest sets it)");
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return read_file(path, len);
}

static void dump_batch(const struct tx_batch *b)
{
    size_t i;

    if (b == NULL) {
        print_message("  (no batch)\n");
        return;
    }
    print_message("  format %d, %zu records, %zu/%zu violations\n", (int) b->format, b->nrecords,
                  b->nviolations, b->nviolations_total);
    for (i = 0; i < b->nviolations && i < 20; i++)
        print_message("  [%zu] index %zu line %u field '%s' code '%s': %s\n", i,
                      b->violations[i].index, b->violations[i].line, b->violations[i].field,
                      b->violations[i].code, b->violations[i].message);
}

/* Parses buf (len bytes) and fails the test with details unless the status is want. */
static struct tx_batch *parse_expect(const char *buf, size_t len, enum tx_format fmt,
                                     const struct tx_parse_limits *lim, int want)
{
    struct tx_batch *b = (struct tx_batch *) 0x1;
    struct tx_err err;
    int rc;

    tx_err_clear(&err);
    rc = tx_batch_parse(buf, len, fmt, lim, &b, &err);
    if (rc != want) {
        print_message("input (%zu bytes): %.300s\n", len, buf);
        print_message("got %s (%s) line %u col %u\n", tx_status_name(rc), err.msg, err.line,
                      err.col);
        dump_batch(rc == 0 || rc == TX_EINVAL ? b : NULL);
        fail_msg("expected %s, got %s", tx_status_name(want), tx_status_name(rc));
    }
    if (rc == 0 || rc == TX_EINVAL) {
        assert_non_null(b);
        assert_int_equal(err.code, rc);
    }
    else {
        assert_null(b);
        assert_int_equal(err.code, rc);
    }
    return b;
}

static struct tx_batch *parse_str(const char *s, enum tx_format fmt, int want)
{
    return parse_expect(s, strlen(s), fmt, NULL, want);
}

/* Expects TX_ESYNTAX at line, with a column in [col_lo, col_hi]. */
static void expect_syntax_n(const char *buf, size_t len, enum tx_format fmt, unsigned line,
                            unsigned col_lo, unsigned col_hi)
{
    struct tx_batch *b = (struct tx_batch *) 0x1;
    struct tx_err err;
    int rc;

    tx_err_clear(&err);
    rc = tx_batch_parse(buf, len, fmt, NULL, &b, &err);
    if (rc != TX_ESYNTAX || err.line != line || err.col < col_lo || err.col > col_hi) {
        print_message("input (%zu bytes, format %d): %.200s\n", len, (int) fmt, buf);
        print_message("got %s '%s' at line %u col %u\n", tx_status_name(rc), err.msg, err.line,
                      err.col);
        if (rc == 0 || rc == TX_EINVAL)
            tx_batch_destroy(b);
        fail_msg("expected ESYNTAX at line %u col %u..%u", line, col_lo, col_hi);
    }
    assert_null(b);
    assert_int_equal(err.code, TX_ESYNTAX);
    assert_true(err.msg[0] != '\0');
}

static void expect_syntax(const char *s, enum tx_format fmt, unsigned line, unsigned col_lo,
                          unsigned col_hi)
{
    expect_syntax_n(s, strlen(s), fmt, line, col_lo, col_hi);
}

/* Joins a NULL-terminated list of strings into a new heap string. */
static char *cat(const char *first, ...)
{
    va_list ap;
    const char *s;
    size_t n = 0;
    char *out;

    va_start(ap, first);
    for (s = first; s != NULL; s = va_arg(ap, const char *))
        n += strlen(s);
    va_end(ap);
    out = malloc(n + 1);
    assert_non_null(out);
    out[0] = '\0';
    n = 0;
    va_start(ap, first);
    for (s = first; s != NULL; s = va_arg(ap, const char *)) {
        memcpy(out + n, s, strlen(s));
        n += strlen(s);
    }
    va_end(ap);
    out[n] = '\0';
    return out;
}

/* unit repeated n times, without quotes. */
static char *rep(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *out = malloc(u * n + 1);
    size_t i;

    assert_non_null(out);
    for (i = 0; i < n; i++)
        memcpy(out + i * u, unit, u);
    out[u * n] = '\0';
    return out;
}

/* unit repeated n times as a JSON string literal (with quotes). */
static char *jrep(const char *pre, const char *unit, size_t n, const char *post)
{
    char *body = rep(unit, n);
    char *out = cat("\"", pre, body, post, "\"", (const char *) NULL);

    free(body);
    return out;
}

/* ---- a record built field by field --------------------------------------------------------- */

enum {
    F_ID,
    F_ACTIVE,
    F_CLIENTE,
    F_EMAIL,
    F_ENDERECO,
    F_DATA,
    F_VALOR,
    NF
};

static const char *const field_names[NF] = {
    "_id", "isActive", "cliente", "email", "endereco", "datatrasancao", "valor",
};

static const char *const field_defaults[NF] = {
    "\"c1\"",
    "true",
    "\"Cliente fulano\"",
    "\"fulano@example.com\"",
    "\"Cidade A, Estado A, 1000\"",
    "\"2024-03-11T12:00:00 +00:00\"",
    NULL, /* optional: absent by default */
};

#define OMIT "<omit>"

/* The record with field f given the JSON value text val (OMIT removes it). Caller frees. */
static char *rec_with(int f, const char *val)
{
    char *out = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&out, &n);
    int i;
    int first = 1;

    assert_non_null(m);
    fputc('{', m);
    for (i = 0; i < NF; i++) {
        const char *v = i == f ? val : field_defaults[i];

        if (v == NULL || strcmp(v, OMIT) == 0)
            continue;
        fprintf(m, "%s\"%s\":%s", first ? "" : ",", field_names[i], v);
        first = 0;
    }
    fputc('}', m);
    fclose(m);
    return out;
}

/* rec must be valid both as the single object of an upload and inside an array. */
static struct tx_batch *expect_valid(const char *rec)
{
    struct tx_violation v[8];
    struct tx_err err;
    size_t nv = 99;
    char *arr = cat("[\r\n  ", rec, "\r\n]", (const char *) NULL);
    struct tx_batch *b = parse_str(arr, TX_FORMAT_AUTO, 0);

    assert_int_equal(b->nrecords, 1);
    assert_int_equal(b->records[0].line, 2);
    assert_int_equal(b->records[0].col, 3);
    tx_batch_destroy(b);
    free(arr);

    tx_err_clear(&err);
    assert_int_equal(tx_record_check(rec, strlen(rec), v, 8, &nv, &err), 0);
    assert_int_equal(nv, 0);

    b = parse_str(rec, TX_FORMAT_JSON, 0);
    assert_int_equal(b->nrecords, 1);
    assert_int_equal(b->nviolations_total, 0);
    return b;
}

static void expect_valid_free(const char *rec)
{
    tx_batch_destroy(expect_valid(rec));
}

/* rec must break exactly one rule: field/code, at index 0, in every way of submitting it. */
static void expect_one_violation(const char *rec, const char *field, const char *code)
{
    struct tx_violation v[8];
    struct tx_err err;
    struct tx_batch *b;
    size_t nv = 0;
    char *arr;
    int rc;

    b = parse_str(rec, TX_FORMAT_AUTO, TX_EINVAL);
    if (b->nviolations != 1 || strcmp(b->violations[0].field, field) != 0 ||
        strcmp(b->violations[0].code, code) != 0) {
        print_message("record: %s\n", rec);
        dump_batch(b);
        fail_msg("expected exactly one violation %s/%s", field, code);
    }
    assert_int_equal(b->nviolations_total, 1);
    assert_int_equal(b->nrecords, 0);
    assert_int_equal(b->violations[0].index, 0);
    assert_int_equal(b->violations[0].line, 1);
    assert_true(b->violations[0].message[0] != '\0');
    tx_batch_destroy(b);

    /* inside an array, as the second element on the third line */
    arr = cat("[\n" REC_A ",\n", rec, "\n]", (const char *) NULL);
    b = parse_str(arr, TX_FORMAT_JSON, TX_EINVAL);
    assert_int_equal(b->nviolations, 1);
    assert_string_equal(b->violations[0].field, field);
    assert_string_equal(b->violations[0].code, code);
    assert_int_equal(b->violations[0].index, 1);
    assert_int_equal(b->violations[0].line, 3);
    tx_batch_destroy(b);
    free(arr);

    tx_err_clear(&err);
    rc = tx_record_check(rec, strlen(rec), v, 8, &nv, &err);
    assert_int_equal(rc, TX_EINVAL);
    assert_int_equal(nv, 1);
    assert_string_equal(v[0].field, field);
    assert_string_equal(v[0].code, code);
}

static void field_ok(int f, const char *val)
{
    char *rec = rec_with(f, val);

    expect_valid_free(rec);
    free(rec);
}

static void field_bad(int f, const char *val, const char *code)
{
    char *rec = rec_with(f, val);

    expect_one_violation(rec, field_names[f], code);
    free(rec);
}

/* Like field_ok/field_bad with the value built by jrep (and freed here). */
static void field_ok_owned(int f, char *val)
{
    field_ok(f, val);
    free(val);
}

static void field_bad_owned(int f, char *val, const char *code)
{
    field_bad(f, val, code);
    free(val);
}

/* ---- the seed files ------------------------------------------------------------------------ */

static void check_seed(const char *name, const char *endereco)
{
    size_t len;
    char *buf = read_seed(name, &len);
    struct tx_batch *b;
    const struct tx_record *r;
    char expect[512];
    json_t *j;
    json_error_t je;
    enum tx_format fmts[] = { TX_FORMAT_AUTO, TX_FORMAT_JSON };
    size_t k;

    /* The file is as the seed shipped it: CRLF, trailing spaces, no final newline. */
    assert_non_null(strstr(buf, "\r\n"));
    assert_true(len > 0 && buf[len - 1] != '\n');
    assert_true(buf[len - 1] == ' ');

    snprintf(expect, sizeof(expect),
             "{\"_id\":\"cliente1\",\"isActive\":true,\"cliente\":\"Cliente fulano\","
             "\"email\":\"clientefulanoo@example.com\",\"endereco\":\"%s\","
             "\"datatrasancao\":\"2024-03-11T12:00:00 +00:00\"}",
             endereco);
    for (k = 0; k < sizeof(fmts) / sizeof(fmts[0]); k++) {
        b = parse_expect(buf, len, fmts[k], NULL, 0);
        assert_int_equal(b->format, TX_FORMAT_JSON);
        assert_int_equal(b->nrecords, 1);
        assert_int_equal(b->nviolations, 0);
        assert_int_equal(b->nviolations_total, 0);
        r = &b->records[0];
        assert_int_equal(r->index, 0);
        assert_int_equal(r->line, 1);
        assert_int_equal(r->col, 2);
        assert_string_equal(r->id, "cliente1");
        assert_true(r->is_active);
        assert_string_equal(r->cliente, "Cliente fulano");
        assert_string_equal(r->email, "clientefulanoo@example.com");
        assert_string_equal(r->endereco, endereco);
        assert_string_equal(r->datatrasancao, "2024-03-11T12:00:00 +00:00");
        assert_int_equal(r->ts_ms, SEED_MS);
        assert_false(r->has_valor);
        assert_non_null(r->json);
        assert_int_equal(r->json_len, strlen(r->json));
        assert_string_equal(r->json, expect);

        /* the json member is itself a valid JSON object with every field */
        j = json_loadb(r->json, r->json_len, JSON_REJECT_DUPLICATES, &je);
        if (j == NULL)
            fail_msg("record json does not parse: %s", je.text);
        assert_true(json_is_object(j));
        assert_int_equal(json_object_size(j), 6);
        assert_string_equal(json_string_value(json_object_get(j, "_id")), "cliente1");
        assert_true(json_is_true(json_object_get(j, "isActive")));
        assert_string_equal(json_string_value(json_object_get(j, "endereco")), endereco);
        json_decref(j);
        tx_batch_destroy(b);
    }

    /* Declared as NDJSON, the first line "[{" is no complete JSON value. */
    expect_syntax_n(buf, len, TX_FORMAT_NDJSON, 1, 1, 3);
    free(buf);
}

static void test_seed_dados(void **state)
{
    (void) state;
    check_seed("Dados.json", "Cidade A, Estado A, 1000");
}

static void test_seed_fraude1(void **state)
{
    (void) state;
    check_seed("Dados - Fraude1.json", "Cidade B, Estado B, 1000");
}

/* ---- formats ------------------------------------------------------------------------------- */

static void test_json_array(void **state)
{
    /* three records: two on line 2 (columns 3 and after), one pretty-printed from line 3 */
    static const char in[] =
        "  [\r\n"
        "  " GOOD("a") ", " GOOD(
            "b") ",\r\n"
                 "\t{ \"_id\" : \"c\", \"isActive\" : false,\r\n"
                 "     \"cliente\":\"Cliente " UTF8_A_TILDE "\", \"email\" : "
                 "\"c@example.com\",\r\n"
                 "     \"endereco\":\"R\", \"datatrasancao\":\"2024-03-11T09:00:00-03:00\""
                 "}  \r\n"
                 "]  \r\n  ";
    enum tx_format fmts[] = { TX_FORMAT_AUTO, TX_FORMAT_JSON };
    size_t k;

    (void) state;
    for (k = 0; k < 2; k++) {
        struct tx_batch *b = parse_str(in, fmts[k], 0);

        assert_int_equal(b->format, TX_FORMAT_JSON);
        assert_int_equal(b->nrecords, 3);
        assert_int_equal(b->records[0].index, 0);
        assert_int_equal(b->records[0].line, 2);
        assert_int_equal(b->records[0].col, 3);
        assert_string_equal(b->records[0].id, "a");
        assert_string_equal(b->records[0].json, GOOD("a"));
        assert_int_equal(b->records[1].index, 1);
        assert_int_equal(b->records[1].line, 2);
        assert_int_equal(b->records[1].col, 3 + strlen(GOOD("a")) + 2);
        assert_string_equal(b->records[1].id, "b");
        assert_true(b->records[1].has_valor);
        assert_true(b->records[1].valor == 10.5);
        assert_int_equal(b->records[2].index, 2);
        assert_int_equal(b->records[2].line, 3);
        assert_int_equal(b->records[2].col, 2); /* after one tab */
        assert_string_equal(b->records[2].id, "c");
        assert_false(b->records[2].is_active);
        assert_string_equal(b->records[2].cliente, "Cliente " UTF8_A_TILDE);
        assert_int_equal(b->records[2].ts_ms, SEED_MS);
        assert_false(b->records[2].has_valor);
        assert_string_equal(b->records[2].json,
                            "{\"_id\":\"c\",\"isActive\":false,\"cliente\":\"Cliente " UTF8_A_TILDE
                            "\",\"email\":\"c@example.com\",\"endereco\":\"R\","
                            "\"datatrasancao\":\"2024-03-11T09:00:00-03:00\"}");
        tx_batch_destroy(b);
    }
}

static void test_columns_count_characters(void **state)
{
    /* the second record starts after multi-byte characters: its column counts characters */
    static const char in[] =
        "[{\"_id\":\"a\",\"isActive\":true,\"cliente\":\"" UTF8_A_TILDE UTF8_EMOJI
        "\",\"email\":\"a@b.co\",\"endereco\":\"e\","
        "\"datatrasancao\":\"2024-03-11T12:00:00Z\"}," REC_A "]";
    static const char first[] = "[{\"_id\":\"a\",\"isActive\":true,\"cliente\":\"xx\",\"email\":"
                                "\"a@b.co\",\"endereco\":\"e\",\"datatrasancao\":"
                                "\"2024-03-11T12:00:00Z\"},";
    struct tx_batch *b;

    (void) state;
    b = parse_str(in, TX_FORMAT_JSON, 0);
    assert_int_equal(b->nrecords, 2);
    assert_int_equal(b->records[0].col, 2);
    assert_int_equal(b->records[1].line, 1);
    assert_int_equal(b->records[1].col, strlen(first) + 1);
    assert_int_equal(tx_utf8_chars(b->records[0].cliente, strlen(b->records[0].cliente)), 2);
    tx_batch_destroy(b);
}

static void test_single_object(void **state)
{
    static const char pretty[] =
        "\r\n\r\n   {\r\n  \"_id\": \"solo\",\r\n  \"isActive\": false,\r\n"
        "  \"cliente\": \"C\",\r\n  \"email\": \"s@x.io\",\r\n"
        "  \"endereco\": \"E\",\r\n"
        "  \"datatrasancao\": \"2024-03-11T12:00:00Z\"\r\n}  \r\n";
    struct tx_batch *b;

    (void) state;
    b = parse_str(REC_A, TX_FORMAT_AUTO, 0);
    assert_int_equal(b->format, TX_FORMAT_JSON);
    assert_int_equal(b->nrecords, 1);
    assert_int_equal(b->records[0].line, 1);
    assert_int_equal(b->records[0].col, 1);
    assert_string_equal(b->records[0].json, REC_A);
    tx_batch_destroy(b);

    /* a pretty-printed object over several lines is one JSON record, not NDJSON */
    b = parse_str(pretty, TX_FORMAT_AUTO, 0);
    assert_int_equal(b->format, TX_FORMAT_JSON);
    assert_int_equal(b->nrecords, 1);
    assert_int_equal(b->records[0].line, 3);
    assert_int_equal(b->records[0].col, 4);
    assert_string_equal(b->records[0].id, "solo");
    assert_string_equal(
        b->records[0].json,
        "{\"_id\":\"solo\",\"isActive\":false,\"cliente\":\"C\",\"email\":"
        "\"s@x.io\",\"endereco\":\"E\",\"datatrasancao\":\"2024-03-11T12:00:00Z\"}");
    tx_batch_destroy(b);

    b = parse_str(pretty, TX_FORMAT_JSON, 0);
    assert_int_equal(b->nrecords, 1);
    tx_batch_destroy(b);

    /* declared NDJSON, a multi-line object breaks the one-value-per-line rule at line 3 */
    expect_syntax(pretty, TX_FORMAT_NDJSON, 3, 4, 5);
}

static void test_ndjson(void **state)
{
    /* CRLF, blank lines (also whitespace-only ones), leading and trailing whitespace, no final
     * newline */
    static const char in[] = GOOD("n0") "\r\n"
                                        "\r\n"
                                        "   \t \r\n"
                                        "  " GOOD("n1") "   \r\n" GOOD("n2") "\t ";
    enum tx_format fmts[] = { TX_FORMAT_AUTO, TX_FORMAT_NDJSON };
    size_t k;

    (void) state;
    for (k = 0; k < 2; k++) {
        struct tx_batch *b = parse_str(in, fmts[k], 0);

        assert_int_equal(b->format, TX_FORMAT_NDJSON);
        assert_int_equal(b->nrecords, 3);
        assert_string_equal(b->records[0].id, "n0");
        assert_int_equal(b->records[0].line, 1);
        assert_int_equal(b->records[0].col, 1);
        assert_string_equal(b->records[0].json, GOOD("n0"));
        assert_int_equal(b->records[1].index, 1);
        assert_string_equal(b->records[1].id, "n1");
        assert_int_equal(b->records[1].line, 4);
        assert_int_equal(b->records[1].col, 3);
        assert_string_equal(b->records[1].json, GOOD("n1"));
        assert_int_equal(b->records[2].index, 2);
        assert_string_equal(b->records[2].id, "n2");
        assert_int_equal(b->records[2].line, 5);
        assert_int_equal(b->records[2].col, 1);
        assert_string_equal(b->records[2].json, GOOD("n2"));
        tx_batch_destroy(b);
    }

    /* LF only, final newline, and several blank lines at the end */
    {
        struct tx_batch *b = parse_str(GOOD("x") "\n" GOOD("y") "\n\n\n", TX_FORMAT_AUTO, 0);

        assert_int_equal(b->format, TX_FORMAT_NDJSON);
        assert_int_equal(b->nrecords, 2);
        assert_int_equal(b->records[1].line, 2);
        tx_batch_destroy(b);
    }

    /* one NDJSON line is one JSON object: AUTO calls it JSON, NDJSON accepts it */
    {
        struct tx_batch *b = parse_str(GOOD("x") "\r\n", TX_FORMAT_AUTO, 0);

        assert_int_equal(b->format, TX_FORMAT_JSON);
        assert_int_equal(b->nrecords, 1);
        tx_batch_destroy(b);
        b = parse_str(GOOD("x") "\r\n", TX_FORMAT_NDJSON, 0);
        assert_int_equal(b->format, TX_FORMAT_NDJSON);
        assert_int_equal(b->nrecords, 1);
        tx_batch_destroy(b);
    }
}

static void test_ndjson_huge_integer_auto(void **state)
{
    /* Huge integers are accepted as numbers (§3 valor is a number). AUTO detection must not turn
     * an NDJSON upload whose first record holds one into a syntax error. */
    static const char in[] =
        "{\"_id\":\"c1\",\"isActive\":true,\"cliente\":\"x\",\"email\":\"a@b.co\",\"endereco\":"
        "\"e\",\"datatrasancao\":\"2024-03-11T12:00:00Z\",\"valor\":123456789012345678901234567890}"
        "\r\n" GOOD("c2") "\r\n";
    struct tx_batch *b;

    (void) state;
    b = parse_str(in, TX_FORMAT_NDJSON, 0);
    assert_int_equal(b->nrecords, 2);
    tx_batch_destroy(b);

    b = parse_str(in, TX_FORMAT_AUTO, 0);
    assert_int_equal(b->format, TX_FORMAT_NDJSON);
    assert_int_equal(b->nrecords, 2);
    assert_true(b->records[0].has_valor);
    assert_true(b->records[0].valor > 1.2345e29 && b->records[0].valor < 1.2346e29);
    tx_batch_destroy(b);
}

static void test_format_mismatch(void **state)
{
    static const char arr_lines[] = "[\n" REC_A ",\n" REC_A "\n]\n";
    static const char nd[] = REC_A "\n" GOOD("c2") "\n";
    struct tx_batch *b;

    (void) state;
    /* NDJSON declared, array over several lines: each line must be a complete JSON value; the
     * first line "[" is not, so the error is on line 1 (column 1 or just past the bracket). */
    expect_syntax(arr_lines, TX_FORMAT_NDJSON, 1, 1, 2);

    /* NDJSON declared, array on one line: a complete value, but not a record object */
    b = parse_str("[" REC_A "," REC_A "]\n", TX_FORMAT_NDJSON, TX_EINVAL);
    assert_int_equal(b->format, TX_FORMAT_NDJSON);
    assert_int_equal(b->nviolations, 1);
    assert_string_equal(b->violations[0].field, "");
    assert_string_equal(b->violations[0].code, "type");
    assert_int_equal(b->violations[0].line, 1);
    tx_batch_destroy(b);

    /* JSON declared, NDJSON given: a second value where the end of input was expected */
    expect_syntax(nd, TX_FORMAT_JSON, 2, 1, 1);
}

static void test_auto_detection(void **state)
{
    struct tx_batch *b;

    (void) state;
    b = parse_str("[" REC_A "]", TX_FORMAT_AUTO, 0);
    assert_int_equal(b->format, TX_FORMAT_JSON);
    tx_batch_destroy(b);
    b = parse_str("\n\n" REC_A "\n\n", TX_FORMAT_AUTO, 0);
    assert_int_equal(b->format, TX_FORMAT_JSON);
    assert_int_equal(b->records[0].line, 3);
    tx_batch_destroy(b);
    b = parse_str(REC_A "\n" REC_A, TX_FORMAT_AUTO, 0);
    assert_int_equal(b->format, TX_FORMAT_NDJSON);
    assert_int_equal(b->nrecords, 2);
    tx_batch_destroy(b);
    /* several values one per line that are not objects: NDJSON, each a "type" violation */
    b = parse_str("1\n\"s\"\n", TX_FORMAT_AUTO, TX_EINVAL);
    assert_int_equal(b->format, TX_FORMAT_NDJSON);
    assert_int_equal(b->nviolations, 2);
    assert_int_equal(b->violations[1].index, 1);
    assert_int_equal(b->violations[1].line, 2);
    tx_batch_destroy(b);
}

/* ---- malformed JSON ------------------------------------------------------------------------ */

static void test_syntax_errors(void **state)
{
    const size_t r = strlen(REC_A);
    char *s;

    (void) state;
    /* truncated after the second record: the fault is the end of input on line 3 */
    s = cat("[\n", REC_A, ",\n", REC_A, (const char *) NULL);
    expect_syntax(s, TX_FORMAT_JSON, 3, (unsigned) r, (unsigned) r + 1);
    expect_syntax(s, TX_FORMAT_AUTO, 3, (unsigned) r, (unsigned) r + 1);
    free(s);

    /* truncated inside a record */
    expect_syntax("[\r\n  {\"_id\":\"c1\",", TX_FORMAT_AUTO, 2, 14, 15);

    /* trailing comma: the ']' on line 3 is the fault */
    s = cat("[\n", REC_A, ",\n]", (const char *) NULL);
    expect_syntax(s, TX_FORMAT_AUTO, 3, 1, 1);
    free(s);
    expect_syntax("[\"a\",\r\n  ]", TX_FORMAT_JSON, 2, 3, 3);
    /* trailing comma inside a record */
    expect_syntax("[\n{\"_id\":\"c1\",\n}]", TX_FORMAT_AUTO, 3, 1, 1);

    /* missing comma between elements: the '{' on line 3 */
    s = cat("[\n", REC_A, "\n", REC_A, "\n]", (const char *) NULL);
    expect_syntax(s, TX_FORMAT_AUTO, 3, 1, 1);
    free(s);
    /* missing comma between members */
    expect_syntax("[\n{\"_id\":\"c1\"\n \"isActive\":true}]", TX_FORMAT_AUTO, 3, 2, 11);

    /* garbage after the array, same line */
    s = cat("[", REC_A, "]x", (const char *) NULL);
    expect_syntax(s, TX_FORMAT_JSON, 1, (unsigned) r + 3, (unsigned) r + 3);
    expect_syntax(s, TX_FORMAT_AUTO, 1, (unsigned) r + 3, (unsigned) r + 3);
    free(s);

    /* unterminated string */
    expect_syntax("[\n{\"_id\":\"c1", TX_FORMAT_AUTO, 2, 8, 11);
    /* a raw newline cannot be inside a string */
    expect_syntax("[{\"_id\":\"c1\n\"}]", TX_FORMAT_AUTO, 1, 9, 12);
}

static void test_garbage_after_multiline_array(void **state)
{
    /* A well-formed array over several lines followed by garbage: the fault is the garbage on
     * line 4, whichever format was declared. */
    static const char in[] = "[\n" REC_A "\n]\nxyz";
    static const char in2[] = "[\r\n" REC_A "\r\n],\r\n";

    (void) state;
    expect_syntax(in, TX_FORMAT_JSON, 4, 1, 3);
    expect_syntax(in, TX_FORMAT_AUTO, 4, 1, 3);
    expect_syntax(in2, TX_FORMAT_JSON, 3, 2, 2);
    expect_syntax(in2, TX_FORMAT_AUTO, 3, 2, 2);
}

static void test_bad_encodings(void **state)
{
    (void) state;
    /* Line 2 is `{"_id":"c<bad>"}`: the string token starts at column 8, the bad byte or escape
     * is at column 10. */
    expect_syntax("[\r\n{\"_id\":\"c\xff\"}]", TX_FORMAT_AUTO, 2, 8, 10);
    expect_syntax("[\r\n{\"_id\":\"c\xfe\"}]", TX_FORMAT_AUTO, 2, 8, 10);
    /* a stray continuation byte */
    expect_syntax("[\r\n{\"_id\":\"c\x80\"}]", TX_FORMAT_AUTO, 2, 8, 10);
    /* overlong encodings of '/' (2, 3 and 4 bytes) */
    expect_syntax("[\r\n{\"_id\":\"c\xc0\xaf\"}]", TX_FORMAT_AUTO, 2, 8, 10);
    expect_syntax("[\r\n{\"_id\":\"c\xe0\x80\xaf\"}]", TX_FORMAT_AUTO, 2, 8, 10);
    expect_syntax("[\r\n{\"_id\":\"c\xf0\x80\x80\xaf\"}]", TX_FORMAT_AUTO, 2, 8, 10);
    /* a UTF-16 surrogate encoded in UTF-8 (CESU) */
    expect_syntax("[\r\n{\"_id\":\"c\xed\xa0\x80\"}]", TX_FORMAT_AUTO, 2, 8, 10);
    /* truncated multi-byte sequence */
    expect_syntax("[\r\n{\"_id\":\"c\xe2\x82\"}]", TX_FORMAT_AUTO, 2, 8, 10);
    /* after multi-byte characters: `  {"cliente":"ãã<ff>"}`, string at 14, bad byte at 17 */
    expect_syntax("[\n  {\"cliente\":\"" UTF8_A_TILDE UTF8_A_TILDE "\xff\"}]", TX_FORMAT_AUTO, 2,
                  14, 17);
    /* in the value of a valid record: every other field is fine */
    expect_syntax("[{\"_id\":\"c1\",\"isActive\":true,\"cliente\":\"\xff\"}]", TX_FORMAT_JSON, 1,
                  40, 41);

    /* lone surrogates and \u0000: the escape starts at column 10, the string ends at 16/22 */
    expect_syntax("[\n{\"_id\":\"c\\ud800\"}]", TX_FORMAT_AUTO, 2, 8, 16);
    expect_syntax("[\n{\"_id\":\"c\\udc00\"}]", TX_FORMAT_AUTO, 2, 8, 16);
    expect_syntax("[\n{\"_id\":\"c\\ud800\\u0041\"}]", TX_FORMAT_AUTO, 2, 8, 22);
    expect_syntax("[\n{\"_id\":\"c\\u0000\"}]", TX_FORMAT_AUTO, 2, 8, 16);
    expect_syntax("[\n{\"_id\":\"c\\u0000\"}]", TX_FORMAT_JSON, 2, 8, 16);
    /* in NDJSON, on line 2 */
    expect_syntax(REC_A "\n{\"_id\":\"c\\u0000\"}", TX_FORMAT_NDJSON, 2, 8, 16);
}

static void test_duplicate_keys(void **state)
{
    (void) state;
    /* the second "_id" is on line 3, columns 1-5 */
    expect_syntax("[\n{\"_id\":\"c\",\n\"_id\":\"d\"}]", TX_FORMAT_AUTO, 3, 1, 5);
    expect_syntax("{\"_id\":\"c\",\n\"_id\":\"d\"}", TX_FORMAT_JSON, 2, 1, 5);
    /* duplicates in a nested extra object are duplicates too */
    expect_syntax("[{\"x\":{\"a\":1,\"a\":2}}]", TX_FORMAT_AUTO, 1, 14, 16);
    /* NDJSON: on line 2 */
    expect_syntax(REC_A "\n{\"a\":1,\"a\":2}", TX_FORMAT_NDJSON, 2, 8, 10);
    expect_syntax(REC_A "\n{\"a\":1,\"a\":2}", TX_FORMAT_AUTO, 2, 8, 10);
}

static void test_deep_nesting(void **state)
{
    /* 5000 nested arrays inside a record on line 2: rejected (no stack overflow), the error is
     * on line 2 somewhere inside the run of brackets (columns 6 .. 5005). */
    size_t n = 0;
    char *s = malloc(11000);
    int i;

    (void) state;
    assert_non_null(s);
    n += (size_t) sprintf(s + n, "[\n{\"x\":");
    for (i = 0; i < 5000; i++)
        s[n++] = '[';
    for (i = 0; i < 5000; i++)
        s[n++] = ']';
    n += (size_t) sprintf(s + n, "}]");
    expect_syntax_n(s, n, TX_FORMAT_AUTO, 2, 6, 5005);
    expect_syntax_n(s, n, TX_FORMAT_JSON, 2, 6, 5005);
    /* also as NDJSON (line 2) */
    s[0] = '1'; /* "1\n{...}": a valid line 1, then the deep value on line 2 */
    expect_syntax_n(s, n - 1, TX_FORMAT_NDJSON, 2, 6, 5005);
    free(s);
}

static void test_empty_bodies(void **state)
{
    (void) state;
    expect_syntax_n("", 0, TX_FORMAT_AUTO, 1, 1, 1);
    expect_syntax_n("", 0, TX_FORMAT_JSON, 1, 1, 1);
    expect_syntax_n("", 0, TX_FORMAT_NDJSON, 1, 1, 1);
    expect_syntax(" \r\n\t\r\n  ", TX_FORMAT_AUTO, 1, 1, 1);
    expect_syntax(" \r\n\t\r\n  ", TX_FORMAT_NDJSON, 1, 1, 1);
    expect_syntax("\xef\xbb\xbf", TX_FORMAT_AUTO, 1, 1, 1);
    expect_syntax("\xef\xbb\xbf \n", TX_FORMAT_AUTO, 1, 1, 1);
    /* len is authoritative: the NUL-free bytes before it only */
    expect_syntax_n(REC_A, 0, TX_FORMAT_AUTO, 1, 1, 1);
}

static void test_bom(void **state)
{
    struct tx_batch *b;

    (void) state;
    b = parse_str("\xef\xbb\xbf[" REC_A "]", TX_FORMAT_AUTO, 0);
    assert_int_equal(b->nrecords, 1);
    assert_string_equal(b->records[0].json, REC_A);
    assert_int_equal(b->records[0].line, 1);
    tx_batch_destroy(b);
    b = parse_str("\xef\xbb\xbf" REC_A "\r\n" REC_A, TX_FORMAT_AUTO, 0);
    assert_int_equal(b->format, TX_FORMAT_NDJSON);
    assert_int_equal(b->nrecords, 2);
    tx_batch_destroy(b);
    /* a BOM anywhere else is not whitespace */
    expect_syntax("[\xef\xbb\xbf" REC_A "]", TX_FORMAT_JSON, 1, 1, 2);
}

static void test_ndjson_syntax_error_line(void **state)
{
    /* line 3 is `  {"_id":}`: the '}' at column 10 is the fault */
    expect_syntax(REC_A "\r\n\r\n  {\"_id\":}\r\n" REC_A, TX_FORMAT_NDJSON, 3, 10, 10);
    expect_syntax(REC_A "\r\n\r\n  {\"_id\":}\r\n" REC_A, TX_FORMAT_AUTO, 3, 10, 10);
    /* truncated last line 4 */
    expect_syntax(REC_A "\n" REC_A "\n" REC_A "\n{\"_id\":\"x\"", TX_FORMAT_AUTO, 4, 10, 11);
    /* an error on line 1 of NDJSON */
    expect_syntax("  {\"a\" 1}\n" REC_A, TX_FORMAT_NDJSON, 1, 8, 8);
    (void) state;
}

/* ---- validation: fields -------------------------------------------------------------------- */

static void test_field_id(void **state)
{
    (void) state;
    field_ok(F_ID, "\"a\"");
    field_ok(F_ID, "\"Az09_.:@-\"");
    field_ok(F_ID, "\"cliente1\"");
    field_ok_owned(F_ID, jrep("", "x", 64, ""));
    field_bad_owned(F_ID, jrep("", "x", 65, ""), "length");
    field_bad(F_ID, "\"\"", "length");
    field_bad(F_ID, "\"a b\"", "pattern");
    field_bad(F_ID, "\"a/b\"", "pattern");
    field_bad(F_ID, "\"a+b\"", "pattern");
    field_bad(F_ID, "\"a\\\\b\"", "pattern");
    field_bad(F_ID, "\"a\\\"b\"", "pattern");
    field_bad(F_ID, "\"a\\u0001\"", "pattern");
    field_bad(F_ID, "\" a\"", "pattern");
    field_bad(F_ID, "\"" UTF8_A_TILDE "\"", "pattern");
    field_bad(F_ID, "\"" UTF8_EMOJI "\"", "pattern");
    /* 64 characters but non-ASCII: the length passes, the pattern does not */
    field_bad_owned(F_ID, jrep("", UTF8_A_TILDE, 64, ""), "pattern");
    field_bad(F_ID, OMIT, "required");
    field_bad(F_ID, "1", "type");
    field_bad(F_ID, "null", "type");
    field_bad(F_ID, "true", "type");
    field_bad(F_ID, "[\"c1\"]", "type");
    field_bad(F_ID, "{\"id\":\"c1\"}", "type");
}

static void test_field_is_active(void **state)
{
    struct tx_batch *b;
    char *rec;

    (void) state;
    rec = rec_with(F_ACTIVE, "false");
    b = expect_valid(rec);
    assert_false(b->records[0].is_active);
    tx_batch_destroy(b);
    free(rec);
    rec = rec_with(F_ACTIVE, "true");
    b = expect_valid(rec);
    assert_true(b->records[0].is_active);
    tx_batch_destroy(b);
    free(rec);
    field_bad(F_ACTIVE, "\"true\"", "type");
    field_bad(F_ACTIVE, "1", "type");
    field_bad(F_ACTIVE, "0", "type");
    field_bad(F_ACTIVE, "null", "type");
    field_bad(F_ACTIVE, "[]", "type");
    field_bad(F_ACTIVE, OMIT, "required");
}

static void test_field_cliente(void **state)
{
    (void) state;
    field_ok(F_CLIENTE, "\"x\"");
    field_ok_owned(F_CLIENTE, jrep("", "x", 200, ""));
    field_bad_owned(F_CLIENTE, jrep("", "x", 201, ""), "length");
    /* 200 code points of 2 bytes (400 bytes) is within the limit, 201 is not */
    field_ok_owned(F_CLIENTE, jrep("", UTF8_A_TILDE, 200, ""));
    field_bad_owned(F_CLIENTE, jrep("", UTF8_A_TILDE, 201, ""), "length");
    /* 4-byte characters, raw and as escaped surrogate pairs */
    field_ok_owned(F_CLIENTE, jrep("", UTF8_EMOJI, 200, ""));
    field_bad_owned(F_CLIENTE, jrep("", UTF8_EMOJI, 201, ""), "length");
    field_ok_owned(F_CLIENTE, jrep("", "\\ud83d\\ude00", 200, ""));
    field_bad_owned(F_CLIENTE, jrep("", "\\ud83d\\ude00", 201, ""), "length");
    /* escapes count once: 200 x "\u00e3" is 200 characters */
    field_ok_owned(F_CLIENTE, jrep("", "\\u00e3", 200, ""));
    field_bad_owned(F_CLIENTE, jrep("", "\\u00e3", 201, ""), "length");
    field_bad(F_CLIENTE, "\"\"", "length");
    field_ok(F_CLIENTE, "\"Jo\\u00e3o \\\"Z\\u00e9\\\" \\\\ fim\"");
    field_bad(F_CLIENTE, OMIT, "required");
    field_bad(F_CLIENTE, "42", "type");
    field_bad(F_CLIENTE, "null", "type");
    field_bad(F_CLIENTE, "false", "type");
    field_bad(F_CLIENTE, "{}", "type");
}

static void test_field_email(void **state)
{
    (void) state;
    field_ok(F_EMAIL, "\"a@b.c\"");
    field_ok(F_EMAIL, "\"clientefulanoo@example.com\"");
    field_ok(F_EMAIL, "\"first.last+tag@sub.example.com.br\"");
    field_ok(F_EMAIL, "\"" UTF8_A_TILDE "@b.c\"");
    /* 254 = 242 + "@example.com"; 255 is too long. Also with 2-byte characters. */
    field_ok_owned(F_EMAIL, jrep("", "a", 242, "@example.com"));
    field_bad_owned(F_EMAIL, jrep("", "a", 243, "@example.com"), "length");
    field_ok_owned(F_EMAIL, jrep("", UTF8_A_TILDE, 242, "@example.com"));
    field_bad_owned(F_EMAIL, jrep("", UTF8_A_TILDE, 243, "@example.com"), "length");
    /* minimum 3: two characters fail on length, three pass the length and fail the format */
    field_bad(F_EMAIL, "\"\"", "length");
    field_bad(F_EMAIL, "\"a@\"", "length");
    field_bad(F_EMAIL, "\"a@b\"", "format");
    field_bad(F_EMAIL, "\"fulano.example.com\"", "format");        /* no @ */
    field_bad(F_EMAIL, "\"a@b@example.com\"", "format");           /* two @ */
    field_bad(F_EMAIL, "\"a@@example.com\"", "format");            /* two @ */
    field_bad(F_EMAIL, "\"fulano@example\"", "format");            /* no dot in the domain */
    field_bad(F_EMAIL, "\"ful.ano@example\"", "format");           /* dot only in the local part */
    field_bad(F_EMAIL, "\"fulano@.example.com\"", "format");       /* domain starts with a dot */
    field_bad(F_EMAIL, "\"fulano@example.com.\"", "format");       /* domain ends with a dot */
    field_bad(F_EMAIL, "\"@example.com\"", "format");              /* no local part */
    field_bad(F_EMAIL, "\"fulano@\"", "format");                   /* no domain */
    field_bad(F_EMAIL, "\"ful ano@example.com\"", "format");       /* space */
    field_bad(F_EMAIL, "\"fulano@example.com \"", "format");       /* trailing space */
    field_bad(F_EMAIL, "\" fulano@example.com\"", "format");       /* leading space */
    field_bad(F_EMAIL, "\"fulano@exa\\tmple.com\"", "format");     /* tab */
    field_bad(F_EMAIL, "\"fulano\\u00a0@example.com\"", "format"); /* no-break space */
    field_bad(F_EMAIL, "\"fulano@example.com\\u2028\"", "format"); /* line separator */
    field_bad(F_EMAIL, "\"fulano@example.com\\r\\n\"", "format");
    field_bad(F_EMAIL, OMIT, "required");
    field_bad(F_EMAIL, "1", "type");
    field_bad(F_EMAIL, "null", "type");
    field_bad(F_EMAIL, "[\"a@b.c\"]", "type");
}

static void test_field_endereco(void **state)
{
    (void) state;
    field_ok(F_ENDERECO, "\"R\"");
    field_ok_owned(F_ENDERECO, jrep("", "r", 300, ""));
    field_bad_owned(F_ENDERECO, jrep("", "r", 301, ""), "length");
    field_ok_owned(F_ENDERECO, jrep("", UTF8_A_TILDE, 300, ""));
    field_bad_owned(F_ENDERECO, jrep("", UTF8_A_TILDE, 301, ""), "length");
    field_ok_owned(F_ENDERECO, jrep("", UTF8_EMOJI, 300, ""));
    field_bad_owned(F_ENDERECO, jrep("", UTF8_EMOJI, 301, ""), "length");
    field_bad(F_ENDERECO, "\"\"", "length");
    field_bad(F_ENDERECO, OMIT, "required");
    field_bad(F_ENDERECO, "1000", "type");
    field_bad(F_ENDERECO, "null", "type");
    field_bad(F_ENDERECO, "{\"cidade\":\"A\"}", "type");
}

static void test_field_datatrasancao(void **state)
{
    static const struct {
        const char *v;
        int64_t ms;
    } good[] = {
        { "\"2024-03-11T12:00:00 +00:00\"", SEED_MS }, /* the seed form */
        { "\"2024-03-11T12:00:00Z\"", SEED_MS },
        { "\"2024-03-11T12:00:00+00:00\"", SEED_MS },
        { "\"2024-03-11t12:00:00z\"", SEED_MS },
        { "\"2024-03-11T09:00:00-03:00\"", SEED_MS },
        { "\"2024-03-11T09:00:00 -03:00\"", SEED_MS },
        { "\"2024-03-11T12:00:00.123Z\"", SEED_MS + 123 },
        { "\"2024-03-11T12:00:00.123456789+00:00\"", SEED_MS + 123 },
    };
    static const char *const bad[] = {
        "\"\"",
        "\"2024-03-11\"",
        "\"2024-03-11T12:00:00\"",         /* no offset */
        "\"2024-03-11T12:00:00  +00:00\"", /* two spaces */
        "\"2024-03-11T12:00:00 +0000\"",   /* offset without colon */
        "\"2024-03-11T12:00:00Z \"",       /* trailing space */
        "\"2024-02-30T12:00:00Z\"",        /* no such day */
        "\"2023-02-29T12:00:00Z\"",        /* not a leap year */
        "\"2024-13-11T12:00:00Z\"",
        "\"2024-03-11T24:00:00Z\"",
        "\"2024-03-11T12:60:00Z\"",
        "\"11/03/2024 12:00\"",
        "\"1710158400\"",
        "\"2024-03-11T12:00:00+24:00\"",
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char *rec = rec_with(F_DATA, good[i].v);
        struct tx_batch *b = expect_valid(rec);
        size_t vlen = strlen(good[i].v) - 2;

        assert_int_equal(b->records[0].ts_ms, good[i].ms);
        assert_int_equal(strlen(b->records[0].datatrasancao), vlen);
        assert_memory_equal(b->records[0].datatrasancao, good[i].v + 1, vlen);
        tx_batch_destroy(b);
        free(rec);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        field_bad(F_DATA, bad[i], "format");
    field_bad(F_DATA, OMIT, "required");
    field_bad(F_DATA, "1710158400000", "type");
    field_bad(F_DATA, "null", "type");
    field_bad(F_DATA, "true", "type");
}

static void test_field_valor(void **state)
{
    static const struct {
        const char *v;
        double d;
    } good[] = {
        { "0", 0.0 },
        { "0.0", 0.0 },
        { "-0", 0.0 },
        { "10", 10.0 },
        { "10.5", 10.5 },
        { "1e308", 1e308 },
        { "1.5E2", 150.0 },
        { "9007199254740993", 9007199254740992.0 },
        { "123456789012345678901234567890", 123456789012345678901234567890.0 },
    };
    size_t i;
    struct tx_batch *b;
    char *rec;

    (void) state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        rec = rec_with(F_VALOR, good[i].v);
        b = expect_valid(rec);
        assert_true(b->records[0].has_valor);
        if (b->records[0].valor != good[i].d)
            fail_msg("valor %s read as %.17g, expected %.17g", good[i].v, b->records[0].valor,
                     good[i].d);
        /* the number is kept as written in json */
        assert_non_null(strstr(b->records[0].json, good[i].v));
        tx_batch_destroy(b);
        free(rec);
    }
    /* absent: valid, has_valor false */
    rec = rec_with(F_VALOR, OMIT);
    b = expect_valid(rec);
    assert_false(b->records[0].has_valor);
    tx_batch_destroy(b);
    free(rec);

    field_bad(F_VALOR, "-1", "range");
    field_bad(F_VALOR, "-0.01", "range");
    field_bad(F_VALOR, "-1e308", "range");
    field_bad(F_VALOR, "-123456789012345678901234567890", "range");
    field_bad(F_VALOR, "\"10\"", "type");
    field_bad(F_VALOR, "\"10.5\"", "type");
    field_bad(F_VALOR, "null", "type");
    field_bad(F_VALOR, "true", "type");
    field_bad(F_VALOR, "[10]", "type");
    field_bad(F_VALOR, "{\"v\":10}", "type");
}

/* null and a value of each wrong JSON type, for every field */
static void test_wrong_types_every_field(void **state)
{
    static const char *const values[] = { "null", "true", "7", "-2.5", "\"s\"", "[]", "{}" };
    static const char *const kinds[] = { "null", "bool", "num", "num", "str", "arr", "obj" };
    static const char *const accepts[NF] = { "str", "bool", "str", "str", "str", "str", "num" };
    size_t i;
    int f;

    (void) state;
    for (f = 0; f < NF; f++) {
        for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            if (strcmp(kinds[i], accepts[f]) == 0)
                continue;
            field_bad(f, values[i], "type");
        }
    }
}

static void test_empty_object_every_field_required(void **state)
{
    struct tx_batch *b;
    int f;

    (void) state;
    b = parse_str("[{}]", TX_FORMAT_AUTO, TX_EINVAL);
    assert_int_equal(b->nviolations, NF - 1);
    assert_int_equal(b->nviolations_total, NF - 1);
    for (f = 0; f < NF - 1; f++) {
        assert_string_equal(b->violations[f].field, field_names[f]);
        assert_string_equal(b->violations[f].code, "required");
        assert_int_equal(b->violations[f].index, 0);
    }
    tx_batch_destroy(b);
    /* a single object starting on line 3: its violations are on line 3 */
    b = parse_str("\r\n\r\n  {}", TX_FORMAT_AUTO, TX_EINVAL);
    assert_int_equal(b->nviolations, NF - 1);
    for (f = 0; f < NF - 1; f++)
        assert_int_equal(b->violations[f].line, 3);
    tx_batch_destroy(b);
}

static void test_non_object_elements(void **state)
{
    static const char in[] = "[\n1,\n[],\nnull,\n\"s\",\ntrue,\n" REC_A "\n]";
    struct tx_batch *b;
    size_t i;

    (void) state;
    b = parse_str(in, TX_FORMAT_AUTO, TX_EINVAL);
    assert_int_equal(b->nrecords, 0);
    assert_int_equal(b->nviolations, 5);
    assert_int_equal(b->nviolations_total, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(b->violations[i].index, i);
        assert_int_equal(b->violations[i].line, i + 2);
        assert_string_equal(b->violations[i].field, "");
        assert_string_equal(b->violations[i].code, "type");
    }
    tx_batch_destroy(b);
    /* a bare scalar upload is one non-object record */
    b = parse_str("42", TX_FORMAT_AUTO, TX_EINVAL);
    assert_int_equal(b->nviolations, 1);
    assert_string_equal(b->violations[0].code, "type");
    tx_batch_destroy(b);
    b = parse_str("null", TX_FORMAT_JSON, TX_EINVAL);
    assert_int_equal(b->nviolations, 1);
    tx_batch_destroy(b);
    /* an array inside an array is a non-object record, not a nested upload */
    b = parse_str("[[" REC_A "]]", TX_FORMAT_AUTO, TX_EINVAL);
    assert_int_equal(b->nviolations, 1);
    assert_string_equal(b->violations[0].code, "type");
    tx_batch_destroy(b);
}

static void test_empty_array(void **state)
{
    struct tx_batch *b;

    (void) state;
    b = parse_str("[]", TX_FORMAT_AUTO, TX_EINVAL);
    assert_int_equal(b->nrecords, 0);
    assert_int_equal(b->nviolations, 1);
    assert_int_equal(b->nviolations_total, 1);
    assert_string_equal(b->violations[0].code, "empty");
    assert_string_equal(b->violations[0].field, "");
    tx_batch_destroy(b);
    b = parse_str(" [ \r\n ] ", TX_FORMAT_JSON, TX_EINVAL);
    assert_string_equal(b->violations[0].code, "empty");
    tx_batch_destroy(b);
    /* NDJSON of one empty array line: a complete value, not a record */
    b = parse_str("[]\n", TX_FORMAT_NDJSON, TX_EINVAL);
    assert_int_equal(b->nviolations, 1);
    tx_batch_destroy(b);
}

/* ---- validation: whole uploads ------------------------------------------------------------- */

#define BAD1                                                                               \
    "{\"_id\":\"c1\",\"isActive\":true,\"cliente\":\"C\",\"email\":\"no-at.example.com\"," \
    "\"endereco\":\"E\",\"datatrasancao\":\"2024-03-11T12:00:00Z\",\"valor\":-1}"
#define BAD3                                                                     \
    "{\"_id\":\"c3\",\"isActive\":true,\"email\":\"c@d.ef\",\"endereco\":\"E\"," \
    "\"datatrasancao\":\"2024-03-11T12:00:00Z\"}"

static void check_five(struct tx_batch *b, unsigned line1, unsigned line3)
{
    if (b->nviolations != 3) {
        dump_batch(b);
        fail_msg("expected 3 violations");
    }
    assert_int_equal(b->nviolations_total, 3);
    assert_int_equal(b->nrecords, 0);
    assert_int_equal(b->violations[0].index, 1);
    assert_int_equal(b->violations[0].line, line1);
    assert_string_equal(b->violations[0].field, "email");
    assert_string_equal(b->violations[0].code, "format");
    assert_int_equal(b->violations[1].index, 1);
    assert_int_equal(b->violations[1].line, line1);
    assert_string_equal(b->violations[1].field, "valor");
    assert_string_equal(b->violations[1].code, "range");
    assert_int_equal(b->violations[2].index, 3);
    assert_int_equal(b->violations[2].line, line3);
    assert_string_equal(b->violations[2].field, "cliente");
    assert_string_equal(b->violations[2].code, "required");
}

static void test_all_bad_records_reported(void **state)
{
    static const char arr[] =
        "[\r\n"
        "  " GOOD("c0") ",\r\n"           /* line 2, index 0 */
                        "  " BAD1 ",\r\n" /* line 3, index 1 */
                        "  {\r\n"         /* line 4, index 2 */
                        "    \"_id\": \"c2\", \"isActive\": false, \"cliente\": \"C\",\r\n"
                        "    \"email\": \"c@d.ef\", \"endereco\": \"E\", "
                        "\"datatrasancao\": \"2024-03-11T12:00:00Z\"\r\n"
                        "  },\r\n" BAD3 ",\r\n" /* line 8, index 3 */
                        "  " GOOD("c4") "\r\n"  /* line 9, index 4 */
                                        "]";
    static const char nd[] =
        GOOD("c0") "\n" BAD1 "\n\n" GOOD("c2") "\r\n\r\n\r\n" BAD3 "\n" GOOD("c4");
    struct tx_batch *b;

    (void) state;
    b = parse_str(arr, TX_FORMAT_AUTO, TX_EINVAL);
    assert_int_equal(b->format, TX_FORMAT_JSON);
    check_five(b, 3, 8);
    tx_batch_destroy(b);

    /* NDJSON: lines are NDJSON line numbers, blank lines included */
    b = parse_str(nd, TX_FORMAT_AUTO, TX_EINVAL);
    assert_int_equal(b->format, TX_FORMAT_NDJSON);
    check_five(b, 2, 7);
    tx_batch_destroy(b);
    b = parse_str(nd, TX_FORMAT_NDJSON, TX_EINVAL);
    check_five(b, 2, 7);
    tx_batch_destroy(b);
}

static void test_extra_fields_kept(void **state)
{
    static const char in[] = "[ {\"_id\" : \"c1\", \"extra\" : { \"a\" : [ 1, 2.5e3, \"x  y\" ] , "
                             "\"b\" : null },\r\n  \"isActive\": true, \"cliente\": \"Jo\\u00e3o "
                             "\\\"Z\\u00e9\\\"  \\\\ fim\", \"email\": \"a@b.co\",\r\n"
                             "  \"endereco\": \"E\", \"datatrasancao\": \"2024-03-11T12:00:00Z\", "
                             "\"valor\" : 0 , \"zz\" : \"tail\\n\" , \"n\" : -1.5e-3 } ]";
    static const char expect[] =
        "{\"_id\":\"c1\",\"extra\":{\"a\":[1,2.5e3,\"x  y\"],\"b\":null},\"isActive\":true,"
        "\"cliente\":\"Jo\\u00e3o \\\"Z\\u00e9\\\"  \\\\ fim\",\"email\":\"a@b.co\","
        "\"endereco\":\"E\",\"datatrasancao\":\"2024-03-11T12:00:00Z\",\"valor\":0,"
        "\"zz\":\"tail\\n\",\"n\":-1.5e-3}";
    struct tx_batch *b;
    json_t *j;
    json_error_t je;

    (void) state;
    b = parse_str(in, TX_FORMAT_AUTO, 0);
    assert_int_equal(b->nrecords, 1);
    assert_string_equal(b->records[0].json, expect);
    assert_int_equal(b->records[0].json_len, strlen(expect));
    assert_string_equal(b->records[0].cliente, "Jo" UTF8_A_TILDE "o \"Z\xc3\xa9\"  \\ fim");
    j = json_loadb(b->records[0].json, b->records[0].json_len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        fail_msg("record json does not parse: %s", je.text);
    assert_int_equal(json_object_size(j), 10);
    assert_string_equal(json_string_value(json_object_get(j, "zz")), "tail\n");
    assert_string_equal(json_string_value(json_object_get(j, "cliente")), b->records[0].cliente);
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "extra"), "a")), 3);
    json_decref(j);
    tx_batch_destroy(b);
}

static void test_max_records(void **state)
{
    struct tx_parse_limits lim;
    struct tx_batch *b;
    struct tx_err err;
    char *s;
    size_t n;
    size_t i;

    (void) state;
    tx_parse_limits_default(&lim);
    assert_int_equal(lim.max_records, 100000);
    assert_int_equal(lim.max_violations, 1000);

    lim.max_records = 3;
    s = cat("[", REC_A, ",", REC_A, ",", REC_A, "]", (const char *) NULL);
    b = parse_expect(s, strlen(s), TX_FORMAT_AUTO, &lim, 0);
    assert_int_equal(b->nrecords, 3);
    tx_batch_destroy(b);
    free(s);
    s = cat("[", REC_A, ",", REC_A, ",", REC_A, ",", REC_A, "]", (const char *) NULL);
    parse_expect(s, strlen(s), TX_FORMAT_AUTO, &lim, TX_ETOOBIG);
    free(s);
    s = cat(REC_A, "\n", REC_A, "\n", REC_A, "\n", REC_A, "\n", (const char *) NULL);
    parse_expect(s, strlen(s), TX_FORMAT_AUTO, &lim, TX_ETOOBIG);
    parse_expect(s, strlen(s), TX_FORMAT_NDJSON, &lim, TX_ETOOBIG);
    free(s);
    /* invalid records count too: the limit wins over validation */
    parse_expect("[1,2,3,4]", 9, TX_FORMAT_AUTO, &lim, TX_ETOOBIG);

    /* the default limit, exactly at and just past it (records are invalid "{}" objects) */
    n = 100001;
    s = malloc(3 * n + 2);
    assert_non_null(s);
    s[0] = '[';
    for (i = 0; i < n; i++)
        memcpy(s + 1 + 3 * i, "{},", 3);
    s[3 * n] = ']'; /* replaces the last comma */
    tx_err_clear(&err);
    b = (struct tx_batch *) 0x1;
    assert_int_equal(tx_batch_parse(s, 3 * n + 1, TX_FORMAT_AUTO, NULL, &b, &err), TX_ETOOBIG);
    assert_null(b);
    assert_int_equal(err.code, TX_ETOOBIG);
    /* 100000 records: not too big; every one is invalid (6 required fields each) */
    s[3 * (n - 1)] = ']';
    b = parse_expect(s, 3 * (n - 1) + 1, TX_FORMAT_AUTO, NULL, TX_EINVAL);
    assert_int_equal(b->nviolations, 1000);
    assert_int_equal(b->nviolations_total, 6 * (n - 1));
    tx_batch_destroy(b);
    free(s);
}

static void test_max_violations(void **state)
{
    struct tx_parse_limits lim;
    struct tx_batch *b;
    char *s = cat("[", BAD3, ",", BAD3, ",", BAD3, ",", BAD3, ",", BAD3, ",", BAD3, ",", BAD3, ",",
                  BAD3, ",", BAD3, ",", BAD3, "]", (const char *) NULL);
    size_t i;

    (void) state;
    tx_parse_limits_default(&lim);
    lim.max_violations = 3;
    b = parse_expect(s, strlen(s), TX_FORMAT_AUTO, &lim, TX_EINVAL);
    assert_int_equal(b->nviolations, 3);
    assert_int_equal(b->nviolations_total, 10);
    for (i = 0; i < 3; i++)
        assert_int_equal(b->violations[i].index, i);
    tx_batch_destroy(b);

    lim.max_violations = 0;
    b = parse_expect(s, strlen(s), TX_FORMAT_AUTO, &lim, TX_EINVAL);
    assert_int_equal(b->nviolations, 0);
    assert_int_equal(b->nviolations_total, 10);
    tx_batch_destroy(b);

    lim.max_violations = 10;
    b = parse_expect(s, strlen(s), TX_FORMAT_AUTO, &lim, TX_EINVAL);
    assert_int_equal(b->nviolations, 10);
    assert_int_equal(b->nviolations_total, 10);
    assert_int_equal(b->violations[9].index, 9);
    tx_batch_destroy(b);
    free(s);
}

static void test_record_check(void **state)
{
    struct tx_violation v[3];
    struct tx_err err;
    size_t nv = 99;

    (void) state;
    tx_err_clear(&err);
    assert_int_equal(tx_record_check(REC_A, strlen(REC_A), v, 3, &nv, &err), 0);
    assert_int_equal(nv, 0);
    /* six violations, at most three written */
    assert_int_equal(tx_record_check("{}", 2, v, 3, &nv, &err), TX_EINVAL);
    assert_int_equal(nv, 3);
    assert_string_equal(v[0].field, "_id");
    assert_string_equal(v[2].field, "cliente");
    assert_int_equal(tx_record_check("{}", 2, v, 0, &nv, &err), TX_EINVAL);
    assert_int_equal(nv, 0);
    assert_int_equal(tx_record_check("[]", 2, v, 3, &nv, &err), TX_EINVAL);
    assert_int_equal(nv, 1);
    assert_string_equal(v[0].code, "type");
    tx_err_clear(&err);
    assert_int_equal(tx_record_check("{\"_id\":\n}", 9, v, 3, &nv, &err), TX_ESYNTAX);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 1);
    assert_int_equal(tx_record_check("{\"a\":1,\"a\":1}", 13, v, 3, &nv, &err), TX_ESYNTAX);
}

static void test_utf8_chars(void **state)
{
    (void) state;
    assert_int_equal(tx_utf8_chars("", 0), 0);
    assert_int_equal(tx_utf8_chars("abc", 3), 3);
    assert_int_equal(tx_utf8_chars(UTF8_A_TILDE, 2), 1);
    assert_int_equal(tx_utf8_chars(UTF8_EMOJI, 4), 1);
    assert_int_equal(tx_utf8_chars("a" UTF8_A_TILDE UTF8_EMOJI "b", 8), 4);
    assert_int_equal(tx_utf8_chars("\xe2\x82\xac", 3), 1); /* euro sign, 3 bytes */
}

/* ---- size ---------------------------------------------------------------------------------- */

#define TEN_MIB (10u * 1024u * 1024u)

/* A >= 10 MiB upload of one record per line; bad records have 2 violations each. */
static char *big_upload(int bad, int ndjson, size_t *len, size_t *count)
{
    size_t cap = TEN_MIB + 4096;
    char *s = malloc(cap);
    size_t n = 0;
    size_t k = 0;

    assert_non_null(s);
    if (!ndjson)
        s[n++] = '[';
    while (n < TEN_MIB) {
        n += (size_t) snprintf(s + n, cap - n,
                               "%s{\"_id\":\"c%07zu\",\"isActive\":%s,\"cliente\":\"Cliente %zu "
                               "da Silva\",\"email\":\"%s\",\"endereco\":\"Rua %zu, Cidade A, "
                               "Estado A\",\"datatrasancao\":\"2024-03-11T12:00:00 +00:00\","
                               "\"valor\":%s%zu.25}",
                               k == 0 ? "\r\n" : (ndjson ? "\r\n" : ",\r\n"), k,
                               k % 2 ? "true" : "false", k, bad ? "sem-arroba" : "a@b.com", k,
                               bad ? "-" : "", k);
        k++;
    }
    if (!ndjson)
        n += (size_t) snprintf(s + n, cap - n, "\r\n]");
    *len = n;
    *count = k;
    return s;
}

static void test_big_valid(void **state)
{
    size_t len;
    size_t count;
    int nd;

    (void) state;
    for (nd = 0; nd < 2; nd++) {
        char *s = big_upload(0, nd, &len, &count);
        struct tx_batch *b = NULL;
        struct tx_err err;
        size_t k;
        char id[32];
        int rc;

        tx_err_clear(&err);
        rc = tx_batch_parse(s, len, TX_FORMAT_AUTO, NULL, &b, &err);
        if (rc != 0) {
            free(s);
            if (rc == TX_EINVAL)
                dump_batch(b);
            tx_batch_destroy(b);
            fail_msg("%s upload: %s (%s) at line %u col %u", nd ? "NDJSON" : "JSON",
                     tx_status_name(rc), err.msg, err.line, err.col);
        }
        assert_true(len >= TEN_MIB);
        assert_int_equal(b->format, nd ? TX_FORMAT_NDJSON : TX_FORMAT_JSON);
        assert_int_equal(b->nrecords, count);
        for (k = 0; k < count; k++) {
            const struct tx_record *r = &b->records[k];

            snprintf(id, sizeof(id), "c%07zu", k);
            if (r->index != k || r->line != k + 2 || r->col != 1 || strcmp(r->id, id) != 0 ||
                r->valor != (double) k + 0.25 || r->is_active != (k % 2 == 1))
                fail_msg("record %zu: index %zu line %u col %u id %s valor %g", k, r->index,
                         r->line, r->col, r->id, r->valor);
            assert_true(r->json[0] == '{' && r->json[r->json_len - 1] == '}');
        }
        tx_batch_destroy(b);
        free(s);
    }
}

static void test_big_all_bad(void **state)
{
    struct tx_parse_limits lim;
    size_t len;
    size_t count;
    char *s = big_upload(1, 0, &len, &count);
    struct tx_batch *b;

    (void) state;
    b = parse_expect(s, len, TX_FORMAT_AUTO, NULL, TX_EINVAL);
    assert_int_equal(b->nrecords, 0);
    assert_int_equal(b->nviolations, 1000);
    assert_int_equal(b->nviolations_total, 2 * count);
    assert_int_equal(b->violations[999].index, 499);
    assert_int_equal(b->violations[999].line, 499 + 2);
    assert_string_equal(b->violations[999].field, "valor");
    tx_batch_destroy(b);

    tx_parse_limits_default(&lim);
    lim.max_violations = 10;
    b = parse_expect(s, len, TX_FORMAT_AUTO, &lim, TX_EINVAL);
    assert_int_equal(b->nviolations, 10);
    assert_int_equal(b->nviolations_total, 2 * count);
    tx_batch_destroy(b);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_dados),
        cmocka_unit_test(test_seed_fraude1),
        cmocka_unit_test(test_json_array),
        cmocka_unit_test(test_columns_count_characters),
        cmocka_unit_test(test_single_object),
        cmocka_unit_test(test_ndjson),
        cmocka_unit_test(test_ndjson_huge_integer_auto),
        cmocka_unit_test(test_format_mismatch),
        cmocka_unit_test(test_auto_detection),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_garbage_after_multiline_array),
        cmocka_unit_test(test_bad_encodings),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_empty_bodies),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_ndjson_syntax_error_line),
        cmocka_unit_test(test_field_id),
        cmocka_unit_test(test_field_is_active),
        cmocka_unit_test(test_field_cliente),
        cmocka_unit_test(test_field_email),
        cmocka_unit_test(test_field_endereco),
        cmocka_unit_test(test_field_datatrasancao),
        cmocka_unit_test(test_field_valor),
        cmocka_unit_test(test_wrong_types_every_field),
        cmocka_unit_test(test_empty_object_every_field_required),
        cmocka_unit_test(test_non_object_elements),
        cmocka_unit_test(test_empty_array),
        cmocka_unit_test(test_all_bad_records_reported),
        cmocka_unit_test(test_extra_fields_kept),
        cmocka_unit_test(test_max_records),
        cmocka_unit_test(test_max_violations),
        cmocka_unit_test(test_record_check),
        cmocka_unit_test(test_utf8_chars),
        cmocka_unit_test(test_big_valid),
        cmocka_unit_test(test_big_all_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
