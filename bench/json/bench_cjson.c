#include "json_bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

/*
 * cJSON: cJSON_ParseWithLengthOpts; trailing data is left to the caller. In strict mode the bench
 * adds what cJSON lacks and txpipe needs, to price it: a UTF-8 validation pass over the whole
 * input before parsing and a duplicate-key walk over the tree after it.
 */

/* Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        unsigned char lo = 0x80, hi = 0xBF;
        size_t need, k;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        }
        else {
            return i;
        }
        if (len - i <= need)
            return i;
        for (k = 1; k <= need; k++) {
            unsigned char cc = s[i + k];

            if (k == 1 ? (cc < lo || cc > hi) : (cc < 0x80 || cc > 0xBF))
                return i;
        }
        i += need + 1;
    }
    return len;
}

/* True if some object in the tree has the same key twice (quadratic per object). */
static bool has_duplicate_key(const cJSON *node)
{
    const cJSON *a, *b;

    for (a = node->child; a != NULL; a = a->next) {
        if (cJSON_IsObject(node))
            for (b = a->next; b != NULL; b = b->next)
                if (strcmp(a->string, b->string) == 0)
                    return true;
        if (a->child != NULL && has_duplicate_key(a))
            return true;
    }
    return false;
}

int cjson_parse(const struct parser *p, const char *buf, size_t len, void **dom, size_t *consumed,
                struct perr *e)
{
    const char *end = NULL;
    cJSON *root;

    e->line = e->col = 0;
    if (p->strict) {
        size_t bad = utf8_invalid_at((const unsigned char *) buf, len);

        if (bad < len) {
            e->offset = (long long) bad;
            snprintf(e->text, sizeof(e->text), "invalid UTF-8 (bench pre-pass)");
            return -1;
        }
    }
    root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (root == NULL) {
        e->offset = end != NULL ? end - buf : -1;
        snprintf(e->text, sizeof(e->text), "(no message; error pointer only)");
        return -1;
    }
    if (p->strict && has_duplicate_key(root)) {
        e->offset = -1;
        snprintf(e->text, sizeof(e->text), "duplicate key (bench tree walk, no position)");
        cJSON_Delete(root);
        return -1;
    }
    *consumed = (size_t) (end - buf);
    *dom = root;
    return 0;
}

bool cjson_stats(void *dom, struct doc_stats *st)
{
    cJSON *root = dom;
    cJSON *rec;

    if (!cJSON_IsArray(root))
        return false;
    cJSON_ArrayForEach(rec, root)
    {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "valor");

        if (!cJSON_IsObject(rec) || cJSON_GetObjectItemCaseSensitive(rec, "_id") == NULL)
            return false;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "isActive")))
            st->active++;
        if (v != NULL)
            st->cents += llround(v->valuedouble * 100.0);
        st->records++;
    }
    return true;
}

void cjson_destroy(void *dom)
{
    cJSON_Delete(dom);
}
