#include "cli/cli_http.h"

#include "cli/cli_args.h"
#include "cli/cli_retry.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct cli_http {
    CURL *curl;
};

/* What the callbacks of one transfer write into. */
struct xfer {
    const struct cli_request *req;
    struct cli_response *resp;
    bool too_big;
};

int cli_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : TX_EIO;
}

void cli_http_global_cleanup(void)
{
    curl_global_cleanup();
}

struct cli_http *cli_http_create(void)
{
    struct cli_http *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->curl = curl_easy_init();
    if (h->curl == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

void cli_http_destroy(struct cli_http *h)
{
    if (h == NULL)
        return;
    curl_easy_cleanup(h->curl);
    free(h);
}

void cli_response_init(struct cli_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    tx_buf_init(&resp->body, CLI_HTTP_BODY_MAX);
    resp->retry_after_s = -1;
}

void cli_response_cleanup(struct cli_response *resp)
{
    tx_buf_cleanup(&resp->body);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t n = size * nmemb;

    if (tx_buf_append(&x->resp->body, data, n) != 0) {
        x->too_big = true;
        return 0;
    }
    return n;
}

/* Copies a header's value (blanks trimmed) when line is "name: value". */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    size_t b;
    size_t e;

    if (len <= nlen || line[nlen] != ':' || strncasecmp(line, name, nlen) != 0)
        return false;
    b = nlen + 1;
    e = len;
    while (b < e && (line[b] == ' ' || line[b] == '\t'))
        b++;
    while (e > b && (line[e - 1] == '\r' || line[e - 1] == '\n' || line[e - 1] == ' '))
        e--;
    if (e - b >= outlen)
        e = b + outlen - 1;
    memcpy(out, line + b, e - b);
    out[e - b] = '\0';
    return true;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t n = size * nmemb;
    char v[128];

    /* A new status line (after 100 Continue, say): forget the previous answer's headers. */
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        x->resp->retry_after_s = -1;
        x->resp->replayed = false;
        x->resp->content_type[0] = '\0';
        return n;
    }
    if (header_value(data, n, "Retry-After", v, sizeof(v))) {
        long long s;

        if (cli_retry_after_parse(v, time(NULL), &s) == 0)
            x->resp->retry_after_s = s;
    }
    else if (header_value(data, n, "Idempotent-Replayed", v, sizeof(v))) {
        x->resp->replayed = strcasecmp(v, "true") == 0;
    }
    else if (header_value(data, n, "Content-Type", v, sizeof(v))) {
        snprintf(x->resp->content_type, sizeof(x->resp->content_type), "%s", v);
    }
    return n;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct xfer *x = ctx;

    (void) dltotal;
    (void) dlnow;
    (void) ultotal;
    x->req->progress(x->req->progress_ctx, (long long) ulnow);
    return 0;
}

int cli_http_do(struct cli_http *h, const struct cli_request *req, struct cli_response *resp,
                struct tx_err *err)
{
    struct curl_slist *hdrs = NULL;
    struct curl_slist *tmp;
    struct xfer x = { .req = req, .resp = resp };
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *c = h->curl;
    CURLcode cc;
    long status = 0;
    long long connect_ms = req->timeout_ms < 10000 ? req->timeout_ms : 10000;
    size_t i;
    int rc = 0;

    tx_buf_reset(&resp->body);
    resp->status = 0;
    resp->retry_after_s = -1;
    resp->replayed = false;
    resp->content_type[0] = '\0';
    for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        tmp = curl_slist_append(hdrs, req->headers[i]);
        if (tmp == NULL)
            goto nomem;
        hdrs = tmp;
    }
    /* The body is sent at once: no 100-continue round trip. */
    tmp = curl_slist_append(hdrs, "Expect:");
    if (tmp == NULL)
        goto nomem;
    hdrs = tmp;

    /* A reset keeps the handle's connection cache, so keep-alive survives between requests. */
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "txupload/" CLI_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) req->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) connect_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
    }
    else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    if (req->progress != NULL) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    }
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    switch (cc) {
    case CURLE_OK:
        resp->status = (int) status;
        break;
    case CURLE_WRITE_ERROR:
        rc = x.too_big ? tx_err_set(err, TX_ETOOBIG, "the answer is larger than %u bytes",
                                    CLI_HTTP_BODY_MAX)
                       : tx_err_set(err, TX_EIO, "%s", errbuf[0] ? errbuf : "write error");
        break;
    case CURLE_OPERATION_TIMEDOUT:
        rc = tx_err_set(err, TX_ETIMEDOUT, "no answer within %lld s: %s", req->timeout_ms / 1000,
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        rc = tx_err_set(err, TX_EINVAL, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        break;
    case CURLE_OUT_OF_MEMORY:
        goto nomem;
    default:
        rc = tx_err_set(err, TX_EUNAVAIL, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        break;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    return rc;
nomem:
    curl_slist_free_all(hdrs);
    return tx_err_set(err, TX_ENOMEM, "out of memory");
}
