#include "gateway/gw_http.h"

#include <civetweb.h>
#include <stdio.h>
#include <string.h>

const char *gw_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 505:
        return "HTTP Version Not Supported";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

int gw_send(struct mg_connection *c, int status, const char *content_type, const char *body,
            size_t len, gw_headers extra)
{
    char clen[32];
    size_t i;

    snprintf(clen, sizeof(clen), "%zu", len);
    mg_response_header_start(c, status);
    mg_response_header_add(c, "Content-Type", content_type, -1);
    mg_response_header_add(c, "Content-Length", clen, -1);
    mg_response_header_add(c, "Cache-Control", "no-store", -1);
    mg_response_header_add(c, "X-Content-Type-Options", "nosniff", -1);
    for (i = 0; extra != NULL && extra[i] != NULL; i++)
        mg_response_header_add_lines(c, extra[i]);
    mg_response_header_send(c);
    /* HEAD gets the headers of the GET answer (Content-Length included) and no body. */
    {
        /* CivetWeb's own errors may come before the method was parsed: NULL then. */
        const char *m = mg_get_request_info(c)->request_method;

        if (len > 0 && (m == NULL || strcmp(m, "HEAD") != 0))
            mg_write(c, body, len);
    }
    return status;
}

int gw_send_json(struct mg_connection *c, int status, const struct tx_buf *body, gw_headers extra)
{
    return gw_send(c, status, "application/json", body->data != NULL ? body->data : "", body->len,
                   extra);
}

int gw_send_problem(struct mg_connection *c, int status, const char *slug, const char *title,
                    const char *detail, const char *extra_json, gw_headers extra)
{
    struct tx_buf b;
    int rc;

    tx_buf_init(&b, 1u << 24);
    rc = tx_buf_printf(&b, "{\"type\":\"https://txpipe.dev/problems/%s\",\"title\":", slug);
    if (rc == 0)
        rc = tx_buf_json_str(&b, title, strlen(title));
    if (rc == 0)
        rc = tx_buf_printf(&b, ",\"status\":%d,\"detail\":", status);
    if (rc == 0)
        rc = tx_buf_json_str(&b, detail, strlen(detail));
    if (rc == 0 && extra_json != NULL)
        rc = tx_buf_puts(&b, extra_json);
    if (rc == 0)
        rc = tx_buf_puts(&b, "}");
    if (rc != 0) {
        tx_buf_reset(&b);
        tx_buf_printf(&b,
                      "{\"type\":\"https://txpipe.dev/problems/%s\",\"title\":\"%s\","
                      "\"status\":%d}",
                      slug, gw_status_text(status), status);
    }
    gw_send(c, status, "application/problem+json", b.data, b.len, extra);
    tx_buf_cleanup(&b);
    return status;
}
