#ifndef TX_RECORD_INTERNAL_H
#define TX_RECORD_INTERNAL_H

/* Shared by the record parser and the event codec inside common/ only; not a public header. */

#include "common/tx_jdoc.h"
#include "common/tx_record.h"

#include <jansson.h>

/**
 * Parses len bytes as one JSON value with the upload rules: duplicate keys rejected, integers
 * too large for int64 read as reals. On TX_ESYNTAX err has the 1-based line and column (relative
 * to buf) and a message. *out is a new reference the caller releases with json_decref.
 */
int tx_json_load(const char *buf, size_t len, json_t **out, struct tx_err *err);

/**
 * Validates one record value. When it is valid, fills rec with pointers into obj (valid while obj
 * lives; rec->json stays NULL) and returns 0; otherwise appends its violations to v (up to nmax
 * entries in all, *nv updated) and returns the number it found.
 */
size_t tx_record_from_json(json_t *obj, size_t index, unsigned line, struct tx_record *rec,
                           struct tx_violation *v, size_t nmax, size_t *nv);

/** tx_record_from_json for the object at node of a flat document (rec points into doc). */
size_t tx_record_from_jdoc(const struct tx_jdoc *doc, uint32_t node, size_t index, unsigned line,
                           struct tx_record *rec, struct tx_violation *v, size_t nmax, size_t *nv);

/* Text helpers for JSON that jansson already accepted (they do not validate). */

/** Offset of the first non-whitespace byte at or after i. */
size_t tx_json_skip_ws(const char *b, size_t len, size_t i);

/** Offset just past the JSON value that starts at i. */
size_t tx_json_skip_value(const char *b, size_t len, size_t i);

/** Copy of n bytes of JSON text without whitespace outside strings; caller frees. NULL on OOM. */
char *tx_json_minify(const char *s, size_t n, size_t *outlen);

#endif
