/*
 * Unit tests of txfraud's pure-C logic: the rules file parser (every invalid form names the rule
 * and the field), the normaliser, the stateless rules, the details and the verdict built from the
 * state script's reply, and the tx:flag value. The Redis half is in
 * tests/integration/test_fraud.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tx_buf.h"
#include "common/tx_record.h"
#include "common/tx_time.h"
#include "consumers/fraud/fraud_rules.h"
#include "consumers/fraud/fraud_score.h"

/* ---- rules file ---- */

static const char *const good_rule[FRAUD_NRULES] = {
    "{\"enabled\":true,\"weight\":100,\"window_s\":60}",
    "{\"enabled\":true,\"weight\":90,\"window_s\":120}",
    "{\"enabled\":false,\"weight\":100}",
    "{\"enabled\":true,\"weight\":60,\"window_s\":30,\"threshold\":5}",
    "{\"enabled\":true,\"weight\":40,\"window_s\":3600,\"$comment\":\"x\"}",
    "{\"enabled\":true,\"weight\":60,\"tolerance_s\":0}",
    "{\"enabled\":true,\"weight\":60,\"max\":1234.5}",
};

#define GOOD_TOP "\"flag_threshold\":100,\"flag_ttl_s\":300,\"verdict_ttl_s\":86400"

/*
 * A rules file with the top-level fields top and rule `which` replaced by rule_json (omitted
 * when rule_json is NULL; which = -1 changes no rule). extra is appended inside "rules".
 */
static char *make_rules(const char *top, int which, const char *rule_json, const char *extra)
{
    struct tx_buf b;
    int i;
    int n = 0;

    tx_buf_init(&b, 1 << 16);
    tx_buf_printf(&b, "{%s,\"rules\":{", top);
    for (i = 0; i < FRAUD_NRULES; i++) {
        const char *body = i == which ? rule_json : good_rule[i];

        if (body == NULL)
            continue;
        tx_buf_printf(&b, "%s\"%s\":%s", n++ > 0 ? "," : "",
                      fraud_rule_code((enum fraud_rule_id) i), body);
    }
    if (extra != NULL)
        tx_buf_printf(&b, "%s%s", n > 0 ? "," : "", extra);
    tx_buf_puts(&b, "}}");
    return tx_buf_steal(&b, NULL);
}

static void test_rules_good(void **state)
{
    struct fraud_rules r;
    struct tx_err err = { 0 };
    char *text = make_rules(GOOD_TOP, -1, NULL, NULL);

    (void) state;
    assert_int_equal(fraud_rules_parse(text, strlen(text), &r, &err), 0);
    assert_int_equal(r.flag_threshold, 100);
    assert_int_equal(r.flag_ttl_s, 300);
    assert_int_equal(r.verdict_ttl_s, 86400);
    assert_true(r.rule[FRAUD_ADDRESS_CHANGE].enabled);
    assert_int_equal(r.rule[FRAUD_ADDRESS_CHANGE].window_s, 60);
    assert_int_equal(r.rule[FRAUD_EMAIL_CHANGE].weight, 90);
    assert_int_equal(r.rule[FRAUD_EMAIL_CHANGE].window_s, 120);
    assert_false(r.rule[FRAUD_INACTIVE_ACCOUNT].enabled);
    assert_int_equal(r.rule[FRAUD_VELOCITY].threshold, 5);
    assert_int_equal(r.rule[FRAUD_VELOCITY].window_s, 30);
    assert_int_equal(r.rule[FRAUD_DUPLICATE].window_s, 3600);
    assert_int_equal(r.rule[FRAUD_FUTURE_DATE].tolerance_s, 0);
    assert_true(r.rule[FRAUD_AMOUNT].max == 1234.5);
    free(text);
}

/* The rules file shipped in volumes/fraud/ parses, and encodes the seed's rule. */
static void test_rules_repo_file(void **state)
{
    const char *src = getenv("TX_SOURCE_DIR");
    char path[1024];
    struct fraud_rules r;
    struct tx_err err = { 0 };
    int i;

    (void) state;
    snprintf(path, sizeof(path), "%s/volumes/fraud/rules.json", src != NULL ? src : ".");
    assert_int_equal(fraud_rules_load(path, &r, &err), 0);
    for (i = 0; i < FRAUD_NRULES; i++)
        assert_true(r.rule[i].enabled);
    assert_int_equal(r.rule[FRAUD_ADDRESS_CHANGE].window_s, 60);
    assert_true(r.rule[FRAUD_ADDRESS_CHANGE].weight >= r.flag_threshold);
    assert_int_equal(r.flag_ttl_s, 300);
}

static void test_rules_load_errors(void **state)
{
    struct fraud_rules r;
    struct tx_err err = { 0 };
    char path[] = "/tmp/test_fraud_rules_XXXXXX";
    FILE *f;
    int fd;

    (void) state;
    assert_int_equal(fraud_rules_load("/nonexistent/rules.json", &r, &err), TX_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/rules.json"));

    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("{\n  \"flag_threshold\": 100,\n  \"flag_ttl_s\": 300,,\n}", f);
    fclose(f);
    assert_int_equal(fraud_rules_load(path, &r, &err), TX_ESYNTAX);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(err.line, 3);
    unlink(path);
}

struct bad_case {
    const char *top;       /* NULL: GOOD_TOP */
    int which;             /* rule replaced, -1 none */
    const char *rule_json; /* NULL with which >= 0: rule omitted */
    const char *extra;
    const char *want1; /* substrings err.msg must hold */
    const char *want2;
};

static const struct bad_case bad_cases[] = {
    /* each rule field, wrong value */
    { NULL, FRAUD_VELOCITY, "{\"enabled\":true,\"weight\":60,\"window_s\":0,\"threshold\":5}", NULL,
      "rule \"VELOCITY\"", "field \"window_s\"" },
    { NULL, FRAUD_VELOCITY, "{\"enabled\":true,\"weight\":60,\"window_s\":\"60\",\"threshold\":5}",
      NULL, "rule \"VELOCITY\"", "field \"window_s\"" },
    { NULL, FRAUD_VELOCITY, "{\"enabled\":true,\"weight\":60,\"window_s\":60.5,\"threshold\":5}",
      NULL, "rule \"VELOCITY\"", "field \"window_s\"" },
    { NULL, FRAUD_VELOCITY, "{\"enabled\":true,\"weight\":60,\"window_s\":604801,\"threshold\":5}",
      NULL, "rule \"VELOCITY\"", "field \"window_s\"" },
    { NULL, FRAUD_VELOCITY, "{\"enabled\":true,\"weight\":60,\"window_s\":60}", NULL,
      "rule \"VELOCITY\"", "field \"threshold\"" },
    { NULL, FRAUD_VELOCITY, "{\"enabled\":true,\"weight\":60,\"window_s\":60,\"threshold\":0}",
      NULL, "rule \"VELOCITY\"", "field \"threshold\"" },
    { NULL, FRAUD_ADDRESS_CHANGE, "{\"enabled\":true,\"weight\":100,\"windows_s\":60}", NULL,
      "rule \"ADDRESS_CHANGE\"", "field \"windows_s\": unknown field" },
    { NULL, FRAUD_ADDRESS_CHANGE, "{\"enabled\":true,\"weight\":100}", NULL,
      "rule \"ADDRESS_CHANGE\"", "field \"window_s\": missing" },
    { NULL, FRAUD_INACTIVE_ACCOUNT, "{\"enabled\":true,\"weight\":100,\"window_s\":60}", NULL,
      "rule \"INACTIVE_ACCOUNT\"", "field \"window_s\": unknown field" },
    { NULL, FRAUD_DUPLICATE, "{\"enabled\":\"yes\",\"weight\":40,\"window_s\":60}", NULL,
      "rule \"DUPLICATE\"", "field \"enabled\"" },
    { NULL, FRAUD_DUPLICATE, "{\"weight\":40,\"window_s\":60}", NULL, "rule \"DUPLICATE\"",
      "field \"enabled\": missing" },
    { NULL, FRAUD_EMAIL_CHANGE, "{\"enabled\":true,\"weight\":-1,\"window_s\":60}", NULL,
      "rule \"EMAIL_CHANGE\"", "field \"weight\"" },
    { NULL, FRAUD_EMAIL_CHANGE, "{\"enabled\":true,\"weight\":1.5,\"window_s\":60}", NULL,
      "rule \"EMAIL_CHANGE\"", "field \"weight\"" },
    { NULL, FRAUD_EMAIL_CHANGE, "{\"enabled\":true,\"window_s\":60}", NULL, "rule \"EMAIL_CHANGE\"",
      "field \"weight\": missing" },
    { NULL, FRAUD_FUTURE_DATE, "{\"enabled\":true,\"weight\":60}", NULL, "rule \"FUTURE_DATE\"",
      "field \"tolerance_s\": missing" },
    { NULL, FRAUD_FUTURE_DATE, "{\"enabled\":true,\"weight\":60,\"tolerance_s\":-5}", NULL,
      "rule \"FUTURE_DATE\"", "field \"tolerance_s\"" },
    { NULL, FRAUD_AMOUNT, "{\"enabled\":true,\"weight\":60,\"max\":-1}", NULL, "rule \"AMOUNT\"",
      "field \"max\"" },
    { NULL, FRAUD_AMOUNT, "{\"enabled\":true,\"weight\":60,\"max\":\"10000\"}", NULL,
      "rule \"AMOUNT\"", "field \"max\"" },
    { NULL, FRAUD_AMOUNT, "{\"enabled\":true,\"weight\":60}", NULL, "rule \"AMOUNT\"",
      "field \"max\": missing" },
    /* whole rules */
    { NULL, FRAUD_AMOUNT, NULL, NULL, "rule \"AMOUNT\"", "missing" },
    { NULL, FRAUD_VELOCITY, "true", NULL, "rule \"VELOCITY\"", "must be an object" },
    { NULL, -1, NULL, "\"FOO\":{\"enabled\":true,\"weight\":1}", "rule \"FOO\"", "unknown rule" },
    /* top level */
    { "\"flag_threshold\":0,\"flag_ttl_s\":300,\"verdict_ttl_s\":86400", -1, NULL, NULL,
      "field \"flag_threshold\"", "from 1 to" },
    { "\"flag_threshold\":100,\"verdict_ttl_s\":86400", -1, NULL, NULL, "field \"flag_ttl_s\"",
      "missing" },
    { "\"flag_threshold\":100,\"flag_ttl_s\":300,\"verdict_ttl_s\":10", -1, NULL, NULL,
      "field \"verdict_ttl_s\"", "from 60 to" },
    { GOOD_TOP ",\"flag_treshold\":1", -1, NULL, NULL, "field \"flag_treshold\"", "unknown field" },
};

static void test_rules_bad(void **state)
{
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        char *text =
            make_rules(c->top != NULL ? c->top : GOOD_TOP, c->which, c->rule_json, c->extra);
        struct fraud_rules r;
        struct tx_err err = { 0 };
        int rc = fraud_rules_parse(text, strlen(text), &r, &err);

        if (rc != TX_EINVAL || strstr(err.msg, c->want1) == NULL ||
            strstr(err.msg, c->want2) == NULL)
            fail_msg("case %zu: rc %d msg \"%s\"; wanted \"%s\" and \"%s\" in\n%s", i, rc, err.msg,
                     c->want1, c->want2, text);
        free(text);
    }
}

static void test_rules_bad_shapes(void **state)
{
    static const char *const no_rules = "{" GOOD_TOP "}";
    static const char *const rules_array = "{" GOOD_TOP ",\"rules\":[]}";
    static const char *const dup = "{\"flag_threshold\":1,\"flag_threshold\":2}";
    struct fraud_rules r;
    struct tx_err err = { 0 };

    (void) state;
    assert_int_equal(fraud_rules_parse("[]", 2, &r, &err), TX_EINVAL);
    assert_int_equal(fraud_rules_parse(no_rules, strlen(no_rules), &r, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "field \"rules\": missing"));
    assert_int_equal(fraud_rules_parse(rules_array, strlen(rules_array), &r, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "field \"rules\": must be an object"));
    assert_int_equal(fraud_rules_parse(dup, strlen(dup), &r, &err), TX_ESYNTAX);
    assert_int_equal(fraud_rules_parse("{\"a\":", 5, &r, &err), TX_ESYNTAX);
    assert_int_equal(err.line, 1);
    assert_true(err.col > 0);
    assert_int_equal(fraud_rules_parse("", 0, &r, &err), TX_ESYNTAX);
}

static void test_rule_codes(void **state)
{
    int i;

    (void) state;
    for (i = 0; i < FRAUD_NRULES; i++)
        assert_int_equal(fraud_rule_from_code(fraud_rule_code((enum fraud_rule_id) i)), i);
    assert_int_equal(fraud_rule_from_code("address_change"), -1);
    assert_string_equal(fraud_rule_code(FRAUD_NRULES), "?");
}

/* ---- normaliser ---- */

static void check_norm(const char *in, const char *want)
{
    char out[512];
    long n = fraud_normalize(in, strlen(in), out, sizeof(out));

    assert_true(n >= 0);
    assert_int_equal((size_t) n, strlen(want));
    assert_string_equal(out, want);
}

static void test_normalize(void **state)
{
    char small[4];

    (void) state;
    check_norm("Cidade A, Estado A, 1000", "cidade a, estado a, 1000");
    check_norm("  Cidade A,   Estado A,\t1000 \r\n", "cidade a, estado a, 1000");
    check_norm("\xc2\xa0Rua\xc2\xa0X\xc2\xa0", "rua x"); /* no-break spaces */
    /* Latin-1 capitals fold: "SÃO JOSÉ ÇÑÀÞ" */
    check_norm("S\xc3\x83O JOS\xc3\x89 \xc3\x87\xc3\x91\xc3\x80\xc3\x9e",
               "s\xc3\xa3o jos\xc3\xa9 \xc3\xa7\xc3\xb1\xc3\xa0\xc3\xbe");
    /* U+00D7 (multiplication sign) and U+00DF (sharp s) are not letters to fold */
    check_norm("A\xc3\x97"
               "B \xc3\x9f",
               "a\xc3\x97"
               "b \xc3\x9f");
    /* accents are kept: Sao and São differ */
    check_norm("Sao", "sao");
    check_norm("S\xc3\xa3o", "s\xc3\xa3o");
    /* other scripts untouched (Greek capital alpha, CJK) */
    check_norm("\xce\x91\xe4\xb8\xad", "\xce\x91\xe4\xb8\xad");
    check_norm("", "");
    check_norm(" \t ", "");
    assert_int_equal(fraud_normalize("abcd", 4, small, sizeof(small)), TX_ETOOBIG);
    assert_string_equal(small, "");
}

/* ---- stateless rules ---- */

struct parsed {
    struct tx_batch *batch;
};

static const struct tx_record *parse_one(struct parsed *p, const char *json)
{
    struct tx_err err = { 0 };

    if (tx_batch_parse(json, strlen(json), TX_FORMAT_JSON, NULL, &p->batch, &err) != 0)
        fail_msg("record does not parse: %s (%s)", err.msg, json);
    assert_int_equal(p->batch->nrecords, 1);
    return &p->batch->records[0];
}

static struct fraud_rules all_rules(void)
{
    struct fraud_rules r;
    struct tx_err err = { 0 };
    char *text =
        make_rules(GOOD_TOP, FRAUD_INACTIVE_ACCOUNT, "{\"enabled\":true,\"weight\":100}", NULL);

    assert_int_equal(fraud_rules_parse(text, strlen(text), &r, &err), 0);
    free(text);
    return r;
}

#define REC(active, date, valor)                                                             \
    "{\"_id\":\"c1\",\"isActive\":" active ",\"cliente\":\"C\",\"email\":\"c@example.com\"," \
    "\"endereco\":\"Rua 1\",\"datatrasancao\":\"" date "\"" valor "}"

static void test_stateless(void **state)
{
    struct fraud_rules r = all_rules();
    struct fraud_fact f[FRAUD_STATELESS_MAX];
    struct parsed p = { 0 };
    const struct tx_record *rec;
    int64_t now;
    char detail[256];

    (void) state;
    /* 2024-03-11T12:00:00Z = 1710158400000 ms */
    now = 1710158400000LL;

    /* nothing fires: active, date now, valor at the maximum, no valor */
    rec = parse_one(&p, REC("true", "2024-03-11T12:00:00 +00:00", ",\"valor\":1234.5"));
    assert_int_equal(fraud_check_stateless(&r, rec, now, f), 0);
    tx_batch_destroy(p.batch);
    rec = parse_one(&p, REC("true", "2024-03-11T12:00:00 +00:00", ""));
    assert_int_equal(fraud_check_stateless(&r, rec, now, f), 0);
    tx_batch_destroy(p.batch);

    /* INACTIVE_ACCOUNT */
    rec = parse_one(&p, REC("false", "2024-03-11T12:00:00 +00:00", ""));
    assert_int_equal(fraud_check_stateless(&r, rec, now, f), 1);
    assert_int_equal(f[0].rule, FRAUD_INACTIVE_ACCOUNT);
    r.rule[FRAUD_INACTIVE_ACCOUNT].enabled = false;
    assert_int_equal(fraud_check_stateless(&r, rec, now, f), 0);
    r.rule[FRAUD_INACTIVE_ACCOUNT].enabled = true;
    tx_batch_destroy(p.batch);

    /* FUTURE_DATE: tolerance 0 in good_rule; 1 s ahead fires, now does not; with tolerance 300,
     * 300 s ahead does not and 301 s does */
    rec = parse_one(&p, REC("true", "2024-03-11T12:00:01Z", ""));
    assert_int_equal(fraud_check_stateless(&r, rec, now, f), 1);
    assert_int_equal(f[0].rule, FRAUD_FUTURE_DATE);
    assert_string_equal(f[0].a, "2024-03-11T12:00:01Z");
    assert_int_equal(f[0].n1, 1000);
    assert_int_equal(fraud_check_stateless(&r, rec, now + 1000, f), 0);
    r.rule[FRAUD_FUTURE_DATE].tolerance_s = 300;
    assert_int_equal(fraud_check_stateless(&r, rec, now - 298000, f), 0);
    assert_int_equal(fraud_check_stateless(&r, rec, now - 299000, f), 0); /* exactly 300 s */
    assert_int_equal(fraud_check_stateless(&r, rec, now - 299001, f), 1);
    fraud_detail_format(FRAUD_FUTURE_DATE, f[0].a, f[0].b, f[0].n1, f[0].n2, detail,
                        sizeof(detail));
    assert_string_equal(detail,
                        "datatrasancao '2024-03-11T12:00:01Z' is 300 s in the future (tolerance "
                        "300 s)");
    r.rule[FRAUD_FUTURE_DATE].tolerance_s = 0;
    tx_batch_destroy(p.batch);

    /* AMOUNT: above max fires; exactly max and no valor do not (checked above) */
    rec = parse_one(&p, REC("true", "2024-03-11T12:00:00Z", ",\"valor\":1234.51"));
    assert_int_equal(fraud_check_stateless(&r, rec, now, f), 1);
    assert_int_equal(f[0].rule, FRAUD_AMOUNT);
    assert_string_equal(f[0].a, "1234.51");
    assert_string_equal(f[0].b, "1234.5");
    r.rule[FRAUD_AMOUNT].enabled = false;
    assert_int_equal(fraud_check_stateless(&r, rec, now, f), 0);
    r.rule[FRAUD_AMOUNT].enabled = true;
    tx_batch_destroy(p.batch);

    /* all three at once, in rule order */
    rec = parse_one(&p, REC("false", "2030-01-01T00:00:00Z", ",\"valor\":99999"));
    assert_int_equal(fraud_check_stateless(&r, rec, now, f), 3);
    assert_int_equal(f[0].rule, FRAUD_INACTIVE_ACCOUNT);
    assert_int_equal(f[1].rule, FRAUD_FUTURE_DATE);
    assert_int_equal(f[2].rule, FRAUD_AMOUNT);
    tx_batch_destroy(p.batch);
}

/* ---- details ---- */

static bool valid_utf8(const char *s)
{
    json_t *j = json_stringn(s, strlen(s)); /* jansson refuses invalid UTF-8 */
    bool ok = j != NULL;

    json_decref(j);
    return ok;
}

static void test_details(void **state)
{
    char d[256];
    char longa[400];
    size_t i;

    (void) state;
    fraud_detail_format(FRAUD_ADDRESS_CHANGE, "Cidade A, Estado A, 1000",
                        "Cidade B, Estado B, 1000", 2500, 60, d, sizeof(d));
    assert_string_equal(d, "address changed within 60 s: 'Cidade A, Estado A, 1000' -> 'Cidade B, "
                           "Estado B, 1000' (2.5 s apart)");
    fraud_detail_format(FRAUD_EMAIL_CHANGE, "a@x.com", "b@x.com", 100, 60, d, sizeof(d));
    assert_string_equal(d, "email changed within 60 s: 'a@x.com' -> 'b@x.com' (0.1 s apart)");
    fraud_detail_format(FRAUD_VELOCITY, "10", "", 11, 60, d, sizeof(d));
    assert_string_equal(d, "11 transactions within 60 s (limit 10)");
    fraud_detail_format(FRAUD_DUPLICATE, "0190a0a0-0000-7000-8000-000000000000:3", "", 4200, 3600,
                        d, sizeof(d));
    assert_string_equal(d, "same record content as event 0190a0a0-0000-7000-8000-000000000000:3, "
                           "4.2 s earlier (window 3600 s)");
    fraud_detail_format(FRAUD_INACTIVE_ACCOUNT, "", "", 0, 0, d, sizeof(d));
    assert_string_equal(d, "account is inactive (isActive false)");
    fraud_detail_format(FRAUD_AMOUNT, "20000", "10000", 0, 0, d, sizeof(d));
    assert_string_equal(d, "valor 20000 above the maximum 10000");

    /* 300 two-byte characters on each side: cut at a character boundary, still valid UTF-8 */
    for (i = 0; i + 2 < sizeof(longa); i += 2) {
        longa[i] = (char) 0xc3;
        longa[i + 1] = (char) 0xa9;
    }
    longa[i] = '\0';
    fraud_detail_format(FRAUD_ADDRESS_CHANGE, longa, longa, 1000, 60, d, sizeof(d));
    assert_true(strlen(d) < sizeof(d) - 1);
    assert_true(valid_utf8(d));
    assert_non_null(strstr(d, "...' -> '"));
    assert_non_null(strstr(d, "...' (1.0 s apart)"));
    /* the other parity: the cut point falls inside a character */
    memmove(longa + 1, longa, sizeof(longa) - 2);
    longa[0] = 'x';
    longa[sizeof(longa) - 1] = '\0';
    assert_true(valid_utf8(longa));
    fraud_detail_format(FRAUD_EMAIL_CHANGE, longa, "b", 1000, 60, d, sizeof(d));
    assert_true(valid_utf8(d));
    assert_non_null(strstr(d, "...' -> 'b'"));
}

/* ---- verdict from the script's reply ---- */

static void set_reply(struct cache_reply *r, const char *const *v, size_t n)
{
    size_t i;

    r->vals = calloc(n, sizeof(*r->vals));
    r->n = n;
    for (i = 0; i < n; i++) {
        r->vals[i].type = CACHE_VAL_STR;
        r->vals[i].str = strdup(v[i]);
        r->vals[i].len = strlen(v[i]);
    }
}

static void test_result_from_reply(void **state)
{
    /* Reasons out of rule order, as the script produces them (stateful first). */
    static const char *const flagged[] = {
        "new",
        "1710158400000",
        "1",
        "160",
        "2",
        "VELOCITY",
        "10",
        "",
        "11",
        "60",
        "ADDRESS_CHANGE",
        "Cidade A, Estado A, 1000",
        "Cidade B, Estado B, 1000",
        "2500",
        "60",
    };
    static const char *const clean[] = { "cached", "1710158400000", "0", "0", "0" };
    static const char *const wrong_len[] = { "new", "1", "0", "0", "1" };
    static const char *const bad_code[] = { "new", "1", "1", "5", "1", "NOPE", "", "", "1", "1" };
    static const char *const bad_num[] = { "new", "1", "1", "5", "1", "AMOUNT", "", "", "x", "1" };
    static const char *const bad_status[] = { "old", "1", "0", "0", "0" };
    static const char *const bad_flag[] = { "new", "1", "2", "0", "0" };
    struct cache_reply r = { 0 };
    struct fraud_result res;
    struct tx_err err = { 0 };

    (void) state;
    set_reply(&r, flagged, sizeof(flagged) / sizeof(flagged[0]));
    assert_int_equal(fraud_result_from_reply(&r, &res, &err), 0);
    cache_reply_cleanup(&r);
    assert_false(res.replayed);
    assert_true(res.verdict.flagged);
    assert_true(res.verdict.score == 160.0);
    assert_int_equal(res.scored_at_ms, 1710158400000LL);
    assert_int_equal(res.verdict.nreasons, 2);
    assert_string_equal(res.verdict.reasons[0].code, "ADDRESS_CHANGE");
    assert_int_equal(res.facts[0].rule, FRAUD_ADDRESS_CHANGE);
    assert_int_equal(res.facts[0].n1, 2500);
    assert_string_equal(res.verdict.reasons[0].detail,
                        "address changed within 60 s: 'Cidade A, Estado A, 1000' -> 'Cidade B, "
                        "Estado B, 1000' (2.5 s apart)");
    assert_string_equal(res.verdict.reasons[1].code, "VELOCITY");
    assert_int_equal(res.facts[1].n1, 11);
    assert_string_equal(res.verdict.reasons[1].detail, "11 transactions within 60 s (limit 10)");

    set_reply(&r, clean, 5);
    assert_int_equal(fraud_result_from_reply(&r, &res, &err), 0);
    cache_reply_cleanup(&r);
    assert_true(res.replayed);
    assert_false(res.verdict.flagged);
    assert_int_equal(res.verdict.nreasons, 0);

    /* integers (not strings) are accepted for the numbers */
    set_reply(&r, clean, 5);
    free(r.vals[3].str);
    r.vals[3].str = NULL;
    r.vals[3].type = CACHE_VAL_INT;
    r.vals[3].num = 42;
    assert_int_equal(fraud_result_from_reply(&r, &res, &err), 0);
    assert_true(res.verdict.score == 42.0);
    cache_reply_cleanup(&r);

    set_reply(&r, wrong_len, 5);
    assert_int_equal(fraud_result_from_reply(&r, &res, &err), TX_EIO);
    cache_reply_cleanup(&r);
    set_reply(&r, bad_code, 10);
    assert_int_equal(fraud_result_from_reply(&r, &res, &err), TX_EIO);
    cache_reply_cleanup(&r);
    set_reply(&r, bad_num, 10);
    assert_int_equal(fraud_result_from_reply(&r, &res, &err), TX_EIO);
    cache_reply_cleanup(&r);
    set_reply(&r, bad_status, 5);
    assert_int_equal(fraud_result_from_reply(&r, &res, &err), TX_EIO);
    cache_reply_cleanup(&r);
    set_reply(&r, bad_flag, 5);
    assert_int_equal(fraud_result_from_reply(&r, &res, &err), TX_EIO);
    cache_reply_cleanup(&r);
    set_reply(&r, clean, 3);
    assert_int_equal(fraud_result_from_reply(&r, &res, &err), TX_EIO);
    cache_reply_cleanup(&r);
}

/* ---- the flag value ---- */

static void test_flag_value(void **state)
{
    struct fraud_result res;
    struct tx_buf b;
    json_t *j;
    json_error_t jerr;

    (void) state;
    memset(&res, 0, sizeof(res));
    res.scored_at_ms = 1710158400123LL;
    res.verdict.flagged = true;
    res.verdict.score = 100;
    res.verdict.nreasons = 1;
    snprintf(res.verdict.reasons[0].code, sizeof(res.verdict.reasons[0].code), "ADDRESS_CHANGE");
    snprintf(res.verdict.reasons[0].detail, sizeof(res.verdict.reasons[0].detail),
             "address changed within 60 s: 'Rua \"1\"' -> 'Rua 2' (1.0 s apart)");
    tx_buf_init(&b, 8192);
    assert_int_equal(fraud_flag_value("u:1", "u", "cliente1", &res, &b), 0);
    j = json_loadb(b.data, b.len, 0, &jerr);
    if (j == NULL)
        fail_msg("flag value is not JSON: %s: %s", jerr.text, b.data);
    assert_string_equal(json_string_value(json_object_get(j, "event_id")), "u:1");
    assert_string_equal(json_string_value(json_object_get(j, "upload_id")), "u");
    assert_string_equal(json_string_value(json_object_get(j, "client_id")), "cliente1");
    assert_string_equal(json_string_value(json_object_get(j, "flagged_at")),
                        "2024-03-11T12:00:00.123Z");
    assert_int_equal(json_integer_value(json_object_get(j, "score")), 100);
    assert_int_equal(json_array_size(json_object_get(j, "reasons")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "reasons"), 0), "detail")),
                        "address changed within 60 s: 'Rua \"1\"' -> 'Rua 2' (1.0 s apart)");
    json_decref(j);
    tx_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_good),        cmocka_unit_test(test_rules_repo_file),
        cmocka_unit_test(test_rules_load_errors), cmocka_unit_test(test_rules_bad),
        cmocka_unit_test(test_rules_bad_shapes),  cmocka_unit_test(test_rule_codes),
        cmocka_unit_test(test_normalize),         cmocka_unit_test(test_stateless),
        cmocka_unit_test(test_details),           cmocka_unit_test(test_result_from_reply),
        cmocka_unit_test(test_flag_value),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
