#include "json_bench.h"

#include <math.h>
#include <stdio.h>

#include <json.h>

/* json-c: a new tokener per document (as a server would per request). */

int jsonc_parse(const struct parser *p, const char *buf, size_t len, void **dom, size_t *consumed,
                struct perr *e)
{
    struct json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
    struct json_object *root;
    enum json_tokener_error jerr;
    int rc = -1;

    if (tok == NULL) {
        e->offset = -1;
        snprintf(e->text, sizeof(e->text), "out of memory");
        return -1;
    }
    json_tokener_set_flags(tok, p->strict ? JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 : 0);
    root = json_tokener_parse_ex(tok, buf, (int) len);
    jerr = json_tokener_get_error(tok);
    if (root == NULL || jerr != json_tokener_success) {
        e->offset = (long long) json_tokener_get_parse_end(tok);
        e->line = e->col = 0;
        if (jerr == json_tokener_continue)
            snprintf(e->text, sizeof(e->text), "incomplete (json_tokener_continue)");
        else
            snprintf(e->text, sizeof(e->text), "%s", json_tokener_error_desc(jerr));
        json_object_put(root);
        goto out;
    }
    *consumed = json_tokener_get_parse_end(tok);
    *dom = root;
    rc = 0;
out:
    json_tokener_free(tok);
    return rc;
}

bool jsonc_stats(void *dom, struct doc_stats *st)
{
    struct json_object *root = dom;
    size_t i, n;

    if (!json_object_is_type(root, json_type_array))
        return false;
    n = json_object_array_length(root);
    for (i = 0; i < n; i++) {
        struct json_object *rec = json_object_array_get_idx(root, i);
        struct json_object *v;

        if (!json_object_is_type(rec, json_type_object) ||
            !json_object_object_get_ex(rec, "_id", NULL))
            return false;
        if (json_object_object_get_ex(rec, "isActive", &v) && json_object_get_boolean(v))
            st->active++;
        if (json_object_object_get_ex(rec, "valor", &v))
            st->cents += llround(json_object_get_double(v) * 100.0);
        st->records++;
    }
    return true;
}

void jsonc_destroy(void *dom)
{
    json_object_put(dom);
}
