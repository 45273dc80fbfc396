#include "consumers/fraud/fraud_rules.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const codes[FRAUD_NRULES] = {
    "ADDRESS_CHANGE", "EMAIL_CHANGE", "INACTIVE_ACCOUNT", "VELOCITY",
    "DUPLICATE",      "FUTURE_DATE",  "AMOUNT",
};

/* Which parameters each rule takes, besides "enabled" and "weight". */
enum {
    P_WINDOW = 1u << 0,
    P_THRESHOLD = 1u << 1,
    P_TOLERANCE = 1u << 2,
    P_MAX = 1u << 3,
};

static const unsigned params[FRAUD_NRULES] = {
    [FRAUD_ADDRESS_CHANGE] = P_WINDOW,
    [FRAUD_EMAIL_CHANGE] = P_WINDOW,
    [FRAUD_INACTIVE_ACCOUNT] = 0,
    [FRAUD_VELOCITY] = P_WINDOW | P_THRESHOLD,
    [FRAUD_DUPLICATE] = P_WINDOW,
    [FRAUD_FUTURE_DATE] = P_TOLERANCE,
    [FRAUD_AMOUNT] = P_MAX,
};

#define WEIGHT_MAX    1000000LL
#define WINDOW_MAX    604800LL /* 7 days */
#define THRESHOLD_MAX 100000LL
#define TOLERANCE_MAX 31536000LL /* 365 days */

const char *fraud_rule_code(enum fraud_rule_id id)
{
    if ((int) id < 0 || id >= FRAUD_NRULES)
        return "?";
    return codes[id];
}

int fraud_rule_from_code(const char *code)
{
    int i;

    for (i = 0; i < FRAUD_NRULES; i++) {
        if (strcmp(codes[i], code) == 0)
            return i;
    }
    return -1;
}

/* Where an error is: the top level (rule NULL) or one rule, and the field. */
static int bad(struct tx_err *err, const char *rule, const char *field, const char *what)
{
    if (rule == NULL)
        return tx_err_set(err, TX_EINVAL, "field \"%s\": %s", field != NULL ? field : "", what);
    if (field == NULL)
        return tx_err_set(err, TX_EINVAL, "rule \"%s\": %s", rule, what);
    return tx_err_set(err, TX_EINVAL, "rule \"%s\", field \"%s\": %s", rule, field, what);
}

static int get_int(json_t *obj, const char *rule, const char *field, long long min, long long max,
                   long long *out, struct tx_err *err)
{
    json_t *v = json_object_get(obj, field);
    char what[96];

    snprintf(what, sizeof(what), "must be an integer from %lld to %lld", min, max);
    if (v == NULL) {
        snprintf(what, sizeof(what), "missing (an integer from %lld to %lld)", min, max);
        return bad(err, rule, field, what);
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return bad(err, rule, field, what);
    *out = json_integer_value(v);
    return 0;
}

static int get_bool(json_t *obj, const char *rule, const char *field, bool *out, struct tx_err *err)
{
    json_t *v = json_object_get(obj, field);

    if (v == NULL)
        return bad(err, rule, field, "missing (true or false)");
    if (!json_is_boolean(v))
        return bad(err, rule, field, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

static int get_max(json_t *obj, const char *rule, const char *field, double *out,
                   struct tx_err *err)
{
    json_t *v = json_object_get(obj, field);

    if (v == NULL)
        return bad(err, rule, field, "missing (a number >= 0)");
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0)
        return bad(err, rule, field, "must be a number >= 0");
    *out = json_number_value(v);
    return 0;
}

/* Rejects any key of obj that is not in allowed (NULL-terminated) or "$comment". */
static int only_keys(json_t *obj, const char *rule, const char *const *allowed, struct tx_err *err)
{
    const char *key;
    json_t *v;
    size_t i;

    json_object_foreach(obj, key, v)
    {
        bool ok = strcmp(key, "$comment") == 0;

        for (i = 0; !ok && allowed[i] != NULL; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return bad(err, rule, key, "unknown field");
    }
    return 0;
}

static int parse_rule(json_t *obj, enum fraud_rule_id id, struct fraud_rule *r, struct tx_err *err)
{
    const char *name = codes[id];
    const char *allowed[8];
    size_t n = 0;
    int rc;

    if (!json_is_object(obj))
        return bad(err, name, NULL, "must be an object");
    allowed[n++] = "enabled";
    allowed[n++] = "weight";
    if (params[id] & P_WINDOW)
        allowed[n++] = "window_s";
    if (params[id] & P_THRESHOLD)
        allowed[n++] = "threshold";
    if (params[id] & P_TOLERANCE)
        allowed[n++] = "tolerance_s";
    if (params[id] & P_MAX)
        allowed[n++] = "max";
    allowed[n] = NULL;
    rc = only_keys(obj, name, allowed, err);
    if (rc == 0)
        rc = get_bool(obj, name, "enabled", &r->enabled, err);
    if (rc == 0)
        rc = get_int(obj, name, "weight", 0, WEIGHT_MAX, &r->weight, err);
    if (rc == 0 && (params[id] & P_WINDOW))
        rc = get_int(obj, name, "window_s", 1, WINDOW_MAX, &r->window_s, err);
    if (rc == 0 && (params[id] & P_THRESHOLD))
        rc = get_int(obj, name, "threshold", 1, THRESHOLD_MAX, &r->threshold, err);
    if (rc == 0 && (params[id] & P_TOLERANCE))
        rc = get_int(obj, name, "tolerance_s", 0, TOLERANCE_MAX, &r->tolerance_s, err);
    if (rc == 0 && (params[id] & P_MAX))
        rc = get_max(obj, name, "max", &r->max, err);
    return rc;
}

int fraud_rules_parse(const char *text, size_t len, struct fraud_rules *out, struct tx_err *err)
{
    static const char *const top_keys[] = { "flag_threshold", "flag_ttl_s", "verdict_ttl_s",
                                            "rules", NULL };
    struct fraud_rules r;
    json_error_t jerr;
    json_t *root = NULL;
    json_t *rules;
    const char *key;
    json_t *v;
    int rc;
    int i;

    memset(&r, 0, sizeof(r));
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rc = tx_err_set(err, TX_ESYNTAX, "line %d, column %d: %s", jerr.line, jerr.column,
                        jerr.text);
        if (err != NULL) {
            err->line = jerr.line > 0 ? (unsigned) jerr.line : 0;
            err->col = jerr.column > 0 ? (unsigned) jerr.column : 0;
        }
        goto out;
    }
    if (!json_is_object(root)) {
        rc = tx_err_set(err, TX_EINVAL, "the rules file must hold a JSON object");
        goto out;
    }
    rc = only_keys(root, NULL, top_keys, err);
    if (rc == 0)
        rc = get_int(root, NULL, "flag_threshold", 1, WEIGHT_MAX, &r.flag_threshold, err);
    if (rc == 0)
        rc = get_int(root, NULL, "flag_ttl_s", 1, 86400, &r.flag_ttl_s, err);
    if (rc == 0)
        rc = get_int(root, NULL, "verdict_ttl_s", 60, 2592000, &r.verdict_ttl_s, err);
    if (rc != 0)
        goto out;
    rules = json_object_get(root, "rules");
    if (rules == NULL) {
        rc = bad(err, NULL, "rules", "missing (an object with one member per rule)");
        goto out;
    }
    if (!json_is_object(rules)) {
        rc = bad(err, NULL, "rules", "must be an object with one member per rule");
        goto out;
    }
    json_object_foreach(rules, key, v)
    {
        if (fraud_rule_from_code(key) < 0) {
            rc = tx_err_set(err, TX_EINVAL,
                            "rule \"%s\": unknown rule (known: ADDRESS_CHANGE, EMAIL_CHANGE, "
                            "INACTIVE_ACCOUNT, VELOCITY, DUPLICATE, FUTURE_DATE, AMOUNT)",
                            key);
            goto out;
        }
    }
    for (i = 0; i < FRAUD_NRULES; i++) {
        v = json_object_get(rules, codes[i]);
        if (v == NULL) {
            rc = bad(err, codes[i], NULL, "missing (set \"enabled\": false to turn it off)");
            goto out;
        }
        rc = parse_rule(v, (enum fraud_rule_id) i, &r.rule[i], err);
        if (rc != 0)
            goto out;
    }
    *out = r;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int fraud_rules_load(const char *path, struct fraud_rules *out, struct tx_err *err)
{
    struct tx_err perr = { 0 };
    FILE *f = NULL;
    char *buf = NULL;
    size_t len;
    int rc;

    f = fopen(path, "rb");
    if (f == NULL) {
        rc = tx_err_set(err, TX_EIO, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(FRAUD_RULES_FILE_MAX + 1);
    if (buf == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    len = fread(buf, 1, FRAUD_RULES_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = tx_err_set(err, TX_EIO, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (len > FRAUD_RULES_FILE_MAX) {
        rc = tx_err_set(err, TX_ETOOBIG, "%s: larger than %d bytes", path, FRAUD_RULES_FILE_MAX);
        goto out;
    }
    rc = fraud_rules_parse(buf, len, out, &perr);
    if (rc != 0) {
        tx_err_set(err, rc, "%s: %s", path, perr.msg);
        if (err != NULL) {
            err->line = perr.line;
            err->col = perr.col;
        }
    }
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return rc;
}
