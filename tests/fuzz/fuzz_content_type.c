/*
 * libFuzzer harness: the Content-Type parser (gw_content_type_parse), with the buffer sizes the
 * gateway uses (96-byte type, GW_BOUNDARY_MAX + 1 boundary; 4 for a part's Content-Type) and
 * with small ones taken from the input's last byte.
 *
 * Invariants:
 * - the result is 0 or TX_EINVAL;
 * - on 0 the type fits its buffer, is non-empty, lowercase and contains '/'; the boundary fits
 *   its buffer, is at most GW_BOUNDARY_MAX bytes, and is "" or appears in the value as written;
 * - nothing is written past either buffer (guard bytes after each, checked by ASan and here).
 */
#include "gateway/gw_multipart.h"
#include "tests/fuzz/fuzz.h"

#include <ctype.h>
#include <string.h>

#define GUARD 0x5a

static void parse(const char *value, size_t tlen, size_t blen)
{
    char *type = malloc(tlen + 1);
    char *boundary = malloc(blen + 1);
    size_t i;
    int rc;

    FUZZ_CHECK(type != NULL && boundary != NULL);
    memset(type, GUARD, tlen + 1);
    memset(boundary, GUARD, blen + 1);
    rc = gw_content_type_parse(value, type, tlen, boundary, blen);
    FUZZ_CHECK(rc == 0 || rc == TX_EINVAL);
    FUZZ_CHECK((unsigned char) type[tlen] == GUARD);
    FUZZ_CHECK((unsigned char) boundary[blen] == GUARD);
    if (rc == 0) {
        size_t n = strnlen(type, tlen);
        size_t b = strnlen(boundary, blen);

        FUZZ_CHECK(n > 0 && n < tlen);
        FUZZ_CHECK(strchr(type, '/') != NULL);
        for (i = 0; i < n; i++)
            FUZZ_CHECK(tolower((unsigned char) type[i]) == (unsigned char) type[i]);
        FUZZ_CHECK(b < blen && b <= GW_BOUNDARY_MAX);
        /* A quoted boundary may have had backslash escapes removed: check plain ones only. */
        if (b > 0 && strchr(value, '\\') == NULL)
            FUZZ_CHECK(strstr(value, boundary) != NULL);
    }
    free(type);
    free(boundary);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = fuzz_strdup(data, size);
    unsigned char last = size > 0 ? data[size - 1] : 0;

    parse(value, 96, GW_BOUNDARY_MAX + 1);
    parse(value, 96, 4);
    parse(value, 1 + (last & 0x1f), 1 + (last >> 3));
    free(value);
    return 0;
}
