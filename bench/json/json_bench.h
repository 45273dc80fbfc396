/* Shared by json_bench.c and one file per library: each library is compiled in its own
 * translation unit because jansson and json-c declare (and export) functions with the same names
 * (json_object_get, json_object_iter_next). The wrappers avoid calling those two names so the
 * executable's references cannot bind to the wrong library. */
#ifndef JSON_BENCH_H
#define JSON_BENCH_H

#include <stdbool.h>
#include <stddef.h>

/* Totals a parse must reproduce. */
struct doc_stats {
    size_t records;
    size_t active;
    long long cents;
};

/* Where and why a parse failed. line/col are 0 when the library gives none. */
struct perr {
    long long offset; /* byte offset reported (or derived from a pointer), -1 if none */
    int line, col;
    char text[160];
};

struct parser {
    const char *name;
    bool strict; /* jansson: REJECT_DUPLICATES; json-c: STRICT+VALIDATE_UTF8; cJSON: bench checks */
    /* 0 and *dom on success, -1 and *e on failure; *consumed = bytes the value used */
    int (*parse)(const struct parser *p, const char *buf, size_t len, void **dom, size_t *consumed,
                 struct perr *e);
    /* false if the document does not have the expected shape */
    bool (*stats)(void *dom, struct doc_stats *st);
    void (*destroy)(void *dom);
};

int jansson_parse(const struct parser *p, const char *buf, size_t len, void **dom, size_t *consumed,
                  struct perr *e);
bool jansson_stats(void *dom, struct doc_stats *st);
void jansson_destroy(void *dom);

int jsonc_parse(const struct parser *p, const char *buf, size_t len, void **dom, size_t *consumed,
                struct perr *e);
bool jsonc_stats(void *dom, struct doc_stats *st);
void jsonc_destroy(void *dom);

int cjson_parse(const struct parser *p, const char *buf, size_t len, void **dom, size_t *consumed,
                struct perr *e);
bool cjson_stats(void *dom, struct doc_stats *st);
void cjson_destroy(void *dom);

#endif
