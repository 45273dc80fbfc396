/*
 * libFuzzer harness: the multipart/form-data parser (gw_multipart_find).
 *
 * Input: "<boundary>\n<body>" when the first line is 1-70 bytes without CR or NUL (the seeds
 * use this form), else the whole input is the body and the boundary is "XBOUNDARYX".
 * Both fields the gateway looks for ("file", "api_key") are searched.
 *
 * Invariants:
 * - the result is 0, TX_ENOTFOUND or TX_ESYNTAX (with a message);
 * - on 0 the part lies within the body, is followed there by "\r\n--<boundary>", and its
 *   filename and content type are NUL-terminated.
 */
#include "gateway/gw_multipart.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

static void find_field(const char *body, size_t len, const char *boundary, const char *field)
{
    struct gw_part part;
    struct tx_err err;
    size_t blen = strlen(boundary);
    int rc;

    memset(&part, 0, sizeof(part));
    memset(&err, 0, sizeof(err));
    rc = gw_multipart_find(body, len, boundary, field, &part, &err);
    FUZZ_CHECK(rc == 0 || rc == TX_ENOTFOUND || rc == TX_ESYNTAX);
    FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
    if (rc != 0) {
        FUZZ_CHECK(err.code == rc && err.msg[0] != '\0');
        return;
    }
    FUZZ_CHECK(part.data != NULL);
    FUZZ_CHECK(part.data >= body && part.data <= body + len);
    FUZZ_CHECK(part.len <= (size_t) (body + len - part.data));
    FUZZ_CHECK((size_t) (body + len - (part.data + part.len)) >= 4 + blen);
    FUZZ_CHECK(memcmp(part.data + part.len, "\r\n--", 4) == 0);
    FUZZ_CHECK(memcmp(part.data + part.len + 4, boundary, blen) == 0);
    FUZZ_CHECK(memchr(part.filename, '\0', sizeof(part.filename)) != NULL);
    FUZZ_CHECK(memchr(part.content_type, '\0', sizeof(part.content_type)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char boundary[GW_BOUNDARY_MAX + 1] = "XBOUNDARYX";
    const char *body = (const char *) data;
    size_t len = size;
    const uint8_t *nl = memchr(data, '\n', size < GW_BOUNDARY_MAX + 1 ? size : GW_BOUNDARY_MAX + 1);

    if (nl != NULL && nl > data && memchr(data, '\r', (size_t) (nl - data)) == NULL &&
        memchr(data, '\0', (size_t) (nl - data)) == NULL) {
        size_t blen = (size_t) (nl - data);

        memcpy(boundary, data, blen);
        boundary[blen] = '\0';
        body = (const char *) nl + 1;
        len = size - blen - 1;
    }
    find_field(body, len, boundary, "file");
    find_field(body, len, boundary, "api_key");
    return 0;
}
