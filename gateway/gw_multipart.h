#ifndef GW_MULTIPART_H
#define GW_MULTIPART_H

#include "common/tx_status.h"

#include <stddef.h>

/* Longest accepted boundary (RFC 2046 allows 70) and part header block. */
#define GW_BOUNDARY_MAX     70
#define GW_PART_HEADERS_MAX 8192

/* A part found in a multipart/form-data body: spans point into the body given to the parser. */
struct gw_part {
    const char *data; /* the part's bytes, exactly as sent */
    size_t len;
    char filename[256];     /* "" when the part has no filename */
    char content_type[128]; /* "" when the part has no Content-Type */
};

/**
 * Finds the form field named `field` in a multipart/form-data body (RFC 7578) delimited by
 * boundary. Returns 0 and fills *part (zero-copy), TX_ENOTFOUND when the body is well formed but
 * has no such field, TX_ESYNTAX with the reason in err for a malformed body (no opening
 * boundary, unterminated part, part headers too long, missing closing boundary).
 * Pure function: thread-safe, no allocation.
 */
int gw_multipart_find(const char *body, size_t len, const char *boundary, const char *field,
                      struct gw_part *part, struct tx_err *err);

/**
 * Parses a Content-Type header value: writes the lowercased media type ("multipart/form-data")
 * into type and, when present, the boundary parameter (quotes removed) into boundary.
 * TX_EINVAL when the value is malformed or a part does not fit. Pure function.
 */
int gw_content_type_parse(const char *value, char *type, size_t tlen, char *boundary, size_t blen);

#endif
