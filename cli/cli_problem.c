#include "cli/cli_problem.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define TYPE_PREFIX "https://txpipe.dev/problems/"

static const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long int_of(json_t *o, const char *key, long long def)
{
    json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? (long long) json_integer_value(v) : def;
}

void cli_problem_slug(const char *body, size_t len, char *out, size_t outlen)
{
    json_t *root;
    const char *type;

    if (outlen == 0)
        return;
    out[0] = '\0';
    if (body == NULL || len == 0)
        return;
    root = json_loadb(body, len, 0, NULL);
    type = json_is_object(root) ? str_of(root, "type") : NULL;
    if (type != NULL && strncmp(type, TYPE_PREFIX, strlen(TYPE_PREFIX)) == 0)
        snprintf(out, outlen, "%s", type + strlen(TYPE_PREFIX));
    json_decref(root);
}

static int validation_lines(const char *file, json_t *root, struct tx_buf *out)
{
    json_t *errors = json_object_get(root, "errors");
    long long total = int_of(root, "total_errors", -1);
    size_t i;
    json_t *e;
    int rc = 0;

    json_array_foreach(errors, i, e)
    {
        const char *field = str_of(e, "field");
        const char *msg = str_of(e, "message");
        const char *code = str_of(e, "code");
        long long line = int_of(e, "line", 0);
        long long index = int_of(e, "index", -1);

        if (field == NULL || field[0] == '\0')
            field = "record";
        if (line > 0)
            rc = tx_buf_printf(out, "%s:%lld: %s: %s", file, line, field,
                               msg != NULL ? msg : "invalid");
        else
            rc = tx_buf_printf(out, "%s: %s: %s", file, field, msg != NULL ? msg : "invalid");
        if (rc == 0 && index >= 0)
            rc = tx_buf_printf(out, " (record %lld%s%s)", index, code != NULL ? ", " : "",
                               code != NULL ? code : "");
        if (rc == 0)
            rc = tx_buf_puts(out, "\n");
        if (rc != 0)
            return rc;
    }
    if (total > (long long) json_array_size(errors))
        rc = tx_buf_printf(out, "%s: %lld more error(s) not listed (%lld in all)\n", file,
                           total - (long long) json_array_size(errors), total);
    else if (json_array_size(errors) == 0)
        rc = tx_buf_printf(out, "%s: error: %s\n", file,
                           str_of(root, "detail") != NULL ? str_of(root, "detail")
                                                          : "invalid records");
    return rc;
}

static int syntax_line(const char *file, json_t *root, struct tx_buf *out)
{
    long long line = int_of(root, "line", 0);
    long long col = int_of(root, "column", 0);
    const char *detail = str_of(root, "detail");
    char prefix[96];

    if (detail == NULL)
        detail = "malformed JSON";
    /* The gateway's detail repeats the position: keep only the reason. */
    snprintf(prefix, sizeof(prefix), "malformed JSON at line %lld, column %lld: ", line, col);
    if (strncmp(detail, prefix, strlen(prefix)) == 0)
        detail += strlen(prefix);
    if (line > 0 && col > 0)
        return tx_buf_printf(out, "%s:%lld:%lld: malformed JSON: %s\n", file, line, col, detail);
    if (line > 0)
        return tx_buf_printf(out, "%s:%lld: malformed JSON: %s\n", file, line, detail);
    return tx_buf_printf(out, "%s: malformed JSON: %s\n", file, detail);
}

int cli_problem_format(const char *file, int status, const char *body, size_t len,
                       struct tx_buf *out)
{
    json_t *root = NULL;
    const char *type;
    const char *title;
    const char *detail;
    int rc;

    if (body != NULL && len > 0)
        root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        rc = tx_buf_printf(out, "%s: error: HTTP %d\n", file, status);
        goto out;
    }
    type = str_of(root, "type");
    if (type != NULL && strcmp(type, TYPE_PREFIX "validation-failed") == 0) {
        rc = validation_lines(file, root, out);
        goto out;
    }
    if (type != NULL && strcmp(type, TYPE_PREFIX "malformed-json") == 0) {
        rc = syntax_line(file, root, out);
        goto out;
    }
    title = str_of(root, "title");
    detail = str_of(root, "detail");
    rc = tx_buf_printf(out, "%s: error: %s (HTTP %d)%s%s\n", file,
                       title != NULL ? title : "request failed", status, detail != NULL ? ": " : "",
                       detail != NULL ? detail : "");
out:
    json_decref(root);
    return rc;
}
