#include "consumers/fraud/fraud_score.h"

#include "common/tx_time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest part of a value quoted in a detail (bytes), so two of them fit in struct tx_reason. */
#define QUOTE_MAX 90

/* Length of the white-space character at s[i] (0 when it is not one). */
static size_t space_at(const unsigned char *s, size_t len, size_t i)
{
    unsigned char c = s[i];

    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f')
        return 1;
    if (c == 0xC2 && i + 1 < len && s[i + 1] == 0xA0)
        return 2;
    return 0;
}

long fraud_normalize(const char *in, size_t len, char *out, size_t outlen)
{
    const unsigned char *s = (const unsigned char *) in;
    size_t i = 0;
    size_t o = 0;
    size_t w;
    int pending = 0;

    if (outlen < len + 1) {
        if (outlen > 0)
            out[0] = '\0';
        return TX_ETOOBIG;
    }
    while (i < len) {
        w = space_at(s, len, i);
        if (w > 0) {
            pending = o > 0;
            i += w;
            continue;
        }
        if (pending) {
            out[o++] = ' ';
            pending = 0;
        }
        if (s[i] >= 'A' && s[i] <= 'Z') {
            out[o++] = (char) (s[i] + ('a' - 'A'));
            i++;
        }
        else if (s[i] == 0xC3 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9E &&
                 s[i + 1] != 0x97) {
            /* U+00C0..U+00DE (not U+00D7) -> U+00E0..U+00FE: same lead byte, +0x20 */
            out[o++] = (char) 0xC3;
            out[o++] = (char) (s[i + 1] + 0x20);
            i += 2;
        }
        else {
            out[o++] = (char) s[i++];
        }
    }
    out[o] = '\0';
    return (long) o;
}

/* Copies src into dst (cap bytes with the NUL), cutting at a UTF-8 boundary with "...". */
static void copy_cut(char *dst, size_t cap, const char *src, size_t max)
{
    size_t len = strlen(src);
    size_t keep;

    if (cap == 0)
        return;
    if (max > cap - 1)
        max = cap - 1;
    if (len <= max) {
        memcpy(dst, src, len + 1);
        return;
    }
    keep = max >= 3 ? max - 3 : 0;
    while (keep > 0 && ((unsigned char) src[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(dst, src, keep);
    memcpy(dst + keep, "...", max >= 3 ? 3 : 0);
    dst[keep + (max >= 3 ? 3 : 0)] = '\0';
}

size_t fraud_check_stateless(const struct fraud_rules *rules, const struct tx_record *rec,
                             int64_t now_ms, struct fraud_fact *out)
{
    const struct fraud_rule *r;
    size_t n = 0;

    r = &rules->rule[FRAUD_INACTIVE_ACCOUNT];
    if (r->enabled && !rec->is_active) {
        memset(&out[n], 0, sizeof(out[n]));
        out[n].rule = FRAUD_INACTIVE_ACCOUNT;
        n++;
    }
    r = &rules->rule[FRAUD_FUTURE_DATE];
    if (r->enabled && rec->ts_ms - now_ms > r->tolerance_s * 1000) {
        memset(&out[n], 0, sizeof(out[n]));
        out[n].rule = FRAUD_FUTURE_DATE;
        copy_cut(out[n].a, sizeof(out[n].a), rec->datatrasancao != NULL ? rec->datatrasancao : "",
                 sizeof(out[n].a) - 1);
        out[n].n1 = rec->ts_ms - now_ms;
        out[n].n2 = r->tolerance_s;
        n++;
    }
    r = &rules->rule[FRAUD_AMOUNT];
    if (r->enabled && rec->has_valor && rec->valor > r->max) {
        memset(&out[n], 0, sizeof(out[n]));
        out[n].rule = FRAUD_AMOUNT;
        snprintf(out[n].a, sizeof(out[n].a), "%.15g", rec->valor);
        snprintf(out[n].b, sizeof(out[n].b), "%.15g", r->max);
        n++;
    }
    return n;
}

void fraud_detail_format(enum fraud_rule_id id, const char *a, const char *b, long long n1,
                         long long n2, char *out, size_t outlen)
{
    char qa[QUOTE_MAX + 1];
    char qb[QUOTE_MAX + 1];

    if (outlen == 0)
        return;
    copy_cut(qa, sizeof(qa), a != NULL ? a : "", QUOTE_MAX);
    copy_cut(qb, sizeof(qb), b != NULL ? b : "", QUOTE_MAX);
    switch (id) {
    case FRAUD_ADDRESS_CHANGE:
    case FRAUD_EMAIL_CHANGE:
        snprintf(out, outlen, "%s changed within %lld s: '%s' -> '%s' (%.1f s apart)",
                 id == FRAUD_ADDRESS_CHANGE ? "address" : "email", n2, qa, qb,
                 (double) n1 / 1000.0);
        break;
    case FRAUD_INACTIVE_ACCOUNT:
        snprintf(out, outlen, "account is inactive (isActive false)");
        break;
    case FRAUD_VELOCITY:
        snprintf(out, outlen, "%lld transactions within %lld s (limit %s)", n1, n2, qa);
        break;
    case FRAUD_DUPLICATE:
        snprintf(out, outlen, "same record content as event %s, %.1f s earlier (window %lld s)", qa,
                 (double) n1 / 1000.0, n2);
        break;
    case FRAUD_FUTURE_DATE:
        snprintf(out, outlen, "datatrasancao '%s' is %.0f s in the future (tolerance %lld s)", qa,
                 (double) n1 / 1000.0, n2);
        break;
    case FRAUD_AMOUNT:
        snprintf(out, outlen, "valor %s above the maximum %s", qa, qb);
        break;
    default:
        snprintf(out, outlen, "unknown rule");
        break;
    }
}

/* A reply element as text ("" for nil); numbers are formatted into tmp. */
static const char *val_str(const struct cache_val *v, char *tmp, size_t tmplen)
{
    if (v->type == CACHE_VAL_STR)
        return v->str;
    if (v->type == CACHE_VAL_INT) {
        snprintf(tmp, tmplen, "%lld", v->num);
        return tmp;
    }
    return "";
}

static int val_num(const struct cache_val *v, long long *out)
{
    char *end;

    if (v->type == CACHE_VAL_INT) {
        *out = v->num;
        return 0;
    }
    if (v->type != CACHE_VAL_STR || v->len == 0)
        return -1;
    errno = 0;
    *out = strtoll(v->str, &end, 10);
    return errno == 0 && *end == '\0' ? 0 : -1;
}

int fraud_result_from_reply(const struct cache_reply *r, struct fraud_result *out,
                            struct tx_err *err)
{
    struct fraud_result res;
    const struct cache_val *v = r->vals;
    long long scored_at;
    long long flagged;
    long long score;
    long long nreasons;
    char ta[24];
    char tb[24];
    size_t i;
    size_t j;

    memset(&res, 0, sizeof(res));
    if (r->n < 5 || v[0].type != CACHE_VAL_STR)
        return tx_err_set(err, TX_EIO, "fraud script: reply of %zu elements", r->n);
    if (strcmp(v[0].str, "new") == 0)
        res.replayed = false;
    else if (strcmp(v[0].str, "cached") == 0)
        res.replayed = true;
    else
        return tx_err_set(err, TX_EIO, "fraud script: unexpected status \"%s\"", v[0].str);
    if (val_num(&v[1], &scored_at) != 0 || val_num(&v[2], &flagged) != 0 ||
        val_num(&v[3], &score) != 0 || val_num(&v[4], &nreasons) != 0 || flagged < 0 ||
        flagged > 1 || nreasons < 0 || nreasons > TX_REASONS_MAX)
        return tx_err_set(err, TX_EIO, "fraud script: malformed verdict header");
    if (r->n != 5 + 5 * (size_t) nreasons)
        return tx_err_set(err, TX_EIO, "fraud script: %lld reasons but %zu elements", nreasons,
                          r->n);
    res.scored_at_ms = scored_at;
    res.verdict.flagged = flagged == 1;
    res.verdict.score = (double) score;
    for (i = 0; i < (size_t) nreasons; i++) {
        const struct cache_val *e = &v[5 + 5 * i];
        int id = e[0].type == CACHE_VAL_STR ? fraud_rule_from_code(e[0].str) : -1;
        long long n1;
        long long n2;

        if (id < 0)
            return tx_err_set(err, TX_EIO, "fraud script: unknown reason code in reply");
        if (val_num(&e[3], &n1) != 0 || val_num(&e[4], &n2) != 0)
            return tx_err_set(err, TX_EIO, "fraud script: malformed numbers for %s",
                              fraud_rule_code((enum fraud_rule_id) id));
        /* Insertion in rule order. */
        for (j = i; j > 0 && res.facts[j - 1].rule > (enum fraud_rule_id) id; j--) {
            res.facts[j] = res.facts[j - 1];
            res.verdict.reasons[j] = res.verdict.reasons[j - 1];
        }
        res.facts[j].rule = (enum fraud_rule_id) id;
        res.facts[j].n1 = n1;
        res.facts[j].n2 = n2;
        snprintf(res.verdict.reasons[j].code, sizeof(res.verdict.reasons[j].code), "%s",
                 fraud_rule_code((enum fraud_rule_id) id));
        fraud_detail_format((enum fraud_rule_id) id, val_str(&e[1], ta, sizeof(ta)),
                            val_str(&e[2], tb, sizeof(tb)), n1, n2, res.verdict.reasons[j].detail,
                            sizeof(res.verdict.reasons[j].detail));
    }
    res.verdict.nreasons = (size_t) nreasons;
    *out = res;
    return 0;
}

int fraud_flag_value(const char *event_id, const char *upload_id, const char *client_id,
                     const struct fraud_result *res, struct tx_buf *out)
{
    char ts[TX_TIME_FORMAT_LEN];
    size_t i;
    int rc;

    tx_time_format_ms(res->scored_at_ms, ts, sizeof(ts));
    rc = tx_buf_puts(out, "{\"event_id\":");
    if (rc == 0)
        rc = tx_buf_json_str(out, event_id, strlen(event_id));
    if (rc == 0)
        rc = tx_buf_puts(out, ",\"upload_id\":");
    if (rc == 0)
        rc = tx_buf_json_str(out, upload_id, strlen(upload_id));
    if (rc == 0)
        rc = tx_buf_puts(out, ",\"client_id\":");
    if (rc == 0)
        rc = tx_buf_json_str(out, client_id, strlen(client_id));
    if (rc == 0)
        rc = tx_buf_printf(out, ",\"score\":%.17g,\"reasons\":[", res->verdict.score);
    for (i = 0; rc == 0 && i < res->verdict.nreasons; i++) {
        const struct tx_reason *r = &res->verdict.reasons[i];

        rc = tx_buf_puts(out, i > 0 ? ",{\"code\":" : "{\"code\":");
        if (rc == 0)
            rc = tx_buf_json_str(out, r->code, strlen(r->code));
        if (rc == 0)
            rc = tx_buf_puts(out, ",\"detail\":");
        if (rc == 0)
            rc = tx_buf_json_str(out, r->detail, strlen(r->detail));
        if (rc == 0)
            rc = tx_buf_puts(out, "}");
    }
    if (rc == 0)
        rc = tx_buf_printf(out, "],\"flagged_at\":\"%s\"}", ts);
    return rc;
}
