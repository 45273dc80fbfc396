#include "cli/cli_status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long long count_of(json_t *o, const char *key, long long def)
{
    json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? (long long) json_integer_value(v) : def;
}

static const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

int cli_status_parse(const char *body, size_t len, struct cli_counts *c, struct tx_err *err)
{
    json_t *root = json_loadb(body != NULL ? body : "", len, 0, NULL);
    int rc = 0;

    memset(c, 0, sizeof(*c));
    if (!json_is_object(root) || !json_is_integer(json_object_get(root, "persisted")) ||
        !json_is_integer(json_object_get(root, "scored"))) {
        rc = tx_err_set(err, TX_EINVAL, "the status answer is not an upload status object");
        goto out;
    }
    c->records = count_of(root, "records", -1);
    c->received = count_of(root, "received", 0);
    c->persisted = count_of(root, "persisted", 0);
    c->scored = count_of(root, "scored", 0);
    c->flagged = count_of(root, "flagged", 0);
    c->notified = count_of(root, "notified", 0);
    c->emails_sent = count_of(root, "emails_sent", 0);
    c->emails_failed = count_of(root, "emails_failed", 0);
out:
    json_decref(root);
    return rc;
}

bool cli_status_complete(const struct cli_counts *c, long long records)
{
    if (records < 0)
        records = c->records;
    if (records < 0)
        return false;
    return c->persisted >= records && c->scored >= records &&
           c->notified + c->emails_failed >= records;
}

const char *cli_reason_words(const char *code)
{
    static const struct {
        const char *code;
        const char *words;
    } words[] = {
        { "ADDRESS_CHANGE", "address changed" },
        { "EMAIL_CHANGE", "e-mail address changed" },
        { "INACTIVE_ACCOUNT", "the account is inactive" },
        { "VELOCITY", "too many transactions in a short time" },
        { "DUPLICATE", "the same transaction was seen before" },
        { "FUTURE_DATE", "the transaction date is in the future" },
        { "AMOUNT", "unusual amount" },
    };
    size_t i;

    if (code == NULL)
        return "unknown reason";
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(code, words[i].code) == 0)
            return words[i].words;
    }
    return code;
}

/* "detail" when present, else the code in words; reasons joined by "; ". */
static int reasons_format(json_t *reasons, struct tx_buf *out)
{
    size_t i;
    json_t *r;
    int rc = 0;

    if (!json_is_array(reasons) || json_array_size(reasons) == 0)
        return tx_buf_puts(out, "no reason given");
    json_array_foreach(reasons, i, r)
    {
        const char *detail = json_is_object(r) ? str_of(r, "detail") : NULL;
        const char *code = json_is_object(r)   ? str_of(r, "code")
                           : json_is_string(r) ? json_string_value(r)
                                               : NULL;

        if (i > 0)
            rc = tx_buf_puts(out, "; ");
        if (rc == 0)
            rc = tx_buf_puts(out,
                             detail != NULL && detail[0] != '\0' ? detail : cli_reason_words(code));
        if (rc != 0)
            break;
    }
    return rc;
}

int cli_status_format(const char *body, size_t len, const char *prefix, struct tx_buf *out)
{
    json_t *root = json_loadb(body != NULL ? body : "", len, 0, NULL);
    json_t *flagged;
    json_t *r;
    size_t i;
    int rc;

    if (!json_is_object(root) || !json_is_integer(json_object_get(root, "persisted"))) {
        json_decref(root);
        return TX_EINVAL;
    }
    if (json_is_integer(json_object_get(root, "records")))
        rc = tx_buf_printf(out, "%s%lld record(s): ", prefix, count_of(root, "records", 0));
    else
        rc = tx_buf_printf(out, "%s", prefix);
    if (rc == 0)
        rc = tx_buf_printf(out,
                           "received %lld, persisted %lld, scored %lld, flagged %lld, notified "
                           "%lld (e-mails: %lld sent, %lld failed)\n",
                           count_of(root, "received", 0), count_of(root, "persisted", 0),
                           count_of(root, "scored", 0), count_of(root, "flagged", 0),
                           count_of(root, "notified", 0), count_of(root, "emails_sent", 0),
                           count_of(root, "emails_failed", 0));
    flagged = json_object_get(root, "flagged_records");
    json_array_foreach(flagged, i, r)
    {
        const char *client = str_of(r, "client_id");

        if (rc == 0)
            rc = tx_buf_printf(out, "%ssuspected fraud: record %lld, client %s: ", prefix,
                               count_of(r, "index", -1), client != NULL ? client : "?");
        if (rc == 0)
            rc = reasons_format(json_object_get(r, "reasons"), out);
        if (rc == 0)
            rc = tx_buf_puts(out, "\n");
    }
    json_decref(root);
    return rc;
}

static int summary_lines(int status, const char *body, size_t len, struct tx_buf *out)
{
    json_t *root = NULL;
    json_t *rec;
    const char *upload;
    int rc;

    if (status == 404)
        return tx_buf_puts(out, "  summary: none cached (no upload for this client in the last "
                                "60 s)\n");
    root = json_loadb(body != NULL ? body : "", len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return tx_buf_printf(out, "  summary: unavailable (HTTP %d)\n", status);
    }
    rec = json_object_get(root, "record");
    upload = str_of(root, "last_upload_id");
    rc = tx_buf_printf(out, "  summary: %lld record(s) in upload %s", count_of(root, "count", 0),
                       upload != NULL ? upload : "?");
    if (rc == 0 && json_is_object(rec))
        rc = tx_buf_printf(out, "; latest: %s <%s>, %s, %s",
                           str_of(rec, "cliente") != NULL ? str_of(rec, "cliente") : "?",
                           str_of(rec, "email") != NULL ? str_of(rec, "email") : "?",
                           str_of(rec, "endereco") != NULL ? str_of(rec, "endereco") : "?",
                           str_of(rec, "datatrasancao") != NULL ? str_of(rec, "datatrasancao")
                                                                : "?");
    if (rc == 0 && json_is_integer(json_object_get(root, "ttl_seconds")))
        rc = tx_buf_printf(out, " (cached for %lld s more)", count_of(root, "ttl_seconds", 0));
    if (rc == 0)
        rc = tx_buf_puts(out, "\n");
    json_decref(root);
    return rc;
}

/* The live flag's value is txfraud's: an object with reasons, a reason list, or something else. */
static int current_reasons(json_t *cur, struct tx_buf *out)
{
    json_t *reasons = json_is_array(cur)    ? cur
                      : json_is_object(cur) ? json_object_get(cur, "reasons")
                                            : NULL;
    char *dump;
    int rc;

    if (json_is_array(reasons))
        return reasons_format(reasons, out);
    if (json_is_object(cur) && str_of(cur, "code") != NULL) {
        json_t *one = json_pack("[O]", cur);

        rc = reasons_format(one, out);
        json_decref(one);
        return rc;
    }
    if (cur == NULL || json_is_null(cur))
        return tx_buf_puts(out, "no reason recorded");
    dump = json_dumps(cur, JSON_COMPACT);
    rc = tx_buf_puts(out, dump != NULL ? dump : "?");
    free(dump);
    return rc;
}

int cli_client_format(const char *id, int summary_status, const char *summary, size_t slen,
                      const char *fraud, size_t flen, struct tx_buf *out)
{
    json_t *root = json_loadb(fraud != NULL ? fraud : "", flen, 0, NULL);
    json_t *hist;
    json_t *h;
    size_t i;
    int rc;

    if (!json_is_object(root)) {
        json_decref(root);
        return TX_EINVAL;
    }
    rc = tx_buf_printf(out, "client %s\n", id);
    if (rc == 0)
        rc = summary_lines(summary_status, summary, slen, out);
    if (rc == 0 && json_is_true(json_object_get(root, "flagged"))) {
        rc = tx_buf_printf(out, "  fraud: Suspected fraud: %s, ", id);
        if (rc == 0)
            rc = current_reasons(json_object_get(root, "current"), out);
        if (rc == 0)
            rc = tx_buf_puts(out, "\n");
    }
    else if (rc == 0) {
        rc = tx_buf_puts(out, "  fraud: not flagged now\n");
    }
    hist = json_object_get(root, "history");
    if (rc == 0)
        rc = tx_buf_printf(out, "  flagged transactions: %zu%s\n", json_array_size(hist),
                           json_array_size(hist) > 0 ? " (latest first)" : "");
    json_array_foreach(hist, i, h)
    {
        const char *at = str_of(h, "scored_at");
        const char *up = str_of(h, "upload_id");

        if (rc == 0)
            rc = tx_buf_printf(out, "    %s upload %s record %lld: ", at != NULL ? at : "?",
                               up != NULL ? up : "?", count_of(h, "index", -1));
        if (rc == 0)
            rc = reasons_format(json_object_get(h, "reasons"), out);
        if (rc == 0)
            rc = tx_buf_puts(out, "\n");
        if (i >= 9 && json_array_size(hist) > 10) {
            if (rc == 0)
                rc = tx_buf_printf(out, "    ... and %zu more\n", json_array_size(hist) - 10);
            break;
        }
    }
    json_decref(root);
    return rc;
}
