#ifndef CLI_PROBLEM_H
#define CLI_PROBLEM_H

#include "common/tx_buf.h"

#include <stddef.h>

/* Gateway error answers (RFC 9457 problem+json) as lines for people. Pure, thread-safe. */

/**
 * Appends the lines describing an error answer for file to out, each ending in '\n':
 *   422 validation-failed  one "file:LINE: FIELD: MESSAGE (record INDEX, CODE)" per errors[]
 *                          entry ("record" stands for an empty field), then
 *                          "file: N more error(s) not listed" when total_errors says so;
 *   400 malformed-json     "file:LINE:COLUMN: malformed JSON: REASON";
 *   other problem+json     "file: error: TITLE (HTTP STATUS): DETAIL";
 *   anything else          "file: error: HTTP STATUS" (for example nginx's HTML pages).
 * body may be NULL or not JSON. Returns 0, or the tx_buf error (TX_ETOOBIG, TX_ENOMEM).
 */
int cli_problem_format(const char *file, int status, const char *body, size_t len,
                       struct tx_buf *out);

/** Writes the problem's slug (after ".../problems/") into out, "" when the body has no type. */
void cli_problem_slug(const char *body, size_t len, char *out, size_t outlen);

#endif
