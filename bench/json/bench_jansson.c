#include "json_bench.h"

#include <math.h>
#include <stdio.h>

#include <jansson.h>

/* jansson: json_loadb, one call per document. */

int jansson_parse(const struct parser *p, const char *buf, size_t len, void **dom, size_t *consumed,
                  struct perr *e)
{
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, p->strict ? JSON_REJECT_DUPLICATES : 0, &jerr);

    if (root == NULL) {
        e->offset = jerr.position;
        e->line = jerr.line;
        e->col = jerr.column;
        snprintf(e->text, sizeof(e->text), "%s", jerr.text);
        return -1;
    }
    *dom = root;
    *consumed = len; /* jansson itself rejects trailing data */
    return 0;
}

bool jansson_stats(void *dom, struct doc_stats *st)
{
    json_t *root = dom;
    size_t i;

    if (!json_is_array(root))
        return false;
    for (i = 0; i < json_array_size(root); i++) {
        json_t *rec = json_array_get(root, i);
        json_t *v = json_object_getn(rec, "valor", 5);

        if (!json_is_object(rec) || json_object_getn(rec, "_id", 3) == NULL)
            return false;
        if (json_is_true(json_object_getn(rec, "isActive", 8)))
            st->active++;
        if (v != NULL)
            st->cents += llround(json_number_value(v) * 100.0);
        st->records++;
    }
    return true;
}

void jansson_destroy(void *dom)
{
    json_decref(dom);
}
