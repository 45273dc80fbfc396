#ifndef GW_HTTP_H
#define GW_HTTP_H

#include "common/tx_buf.h"

#include <stddef.h>

/* Response helpers over CivetWeb; every answer of the gateway goes through these. */

struct mg_connection;

/* Extra response headers: a NULL-terminated array of "Name: value" strings, or NULL. */
typedef const char *const *gw_headers;

/** Sends status with a body of content_type. Returns the status (for access logging). */
int gw_send(struct mg_connection *c, int status, const char *content_type, const char *body,
            size_t len, gw_headers extra);

/** Sends a JSON body. */
int gw_send_json(struct mg_connection *c, int status, const struct tx_buf *body, gw_headers extra);

/**
 * Sends an RFC 9457 problem: {"type":"https://txpipe.dev/problems/<slug>","title","status",
 * "detail"} plus the members in extra_json (a string of ",\"k\":v" pairs, or NULL).
 */
int gw_send_problem(struct mg_connection *c, int status, const char *slug, const char *title,
                    const char *detail, const char *extra_json, gw_headers extra);

/** Reason phrase of a status code. */
const char *gw_status_text(int status);

#endif
