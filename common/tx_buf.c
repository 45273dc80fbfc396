#include "common/tx_buf.h"

#include "common/tx_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tx_buf_init(struct tx_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void tx_buf_cleanup(struct tx_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void tx_buf_reset(struct tx_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static int reserve(struct tx_buf *b, size_t extra)
{
    size_t need;
    size_t cap;
    char *p;

    if (extra > b->max || b->len > b->max - extra)
        return TX_ETOOBIG;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap != 0 ? b->cap : 256;
    while (cap < need)
        cap = cap > ((size_t) -1) / 2 ? need : cap * 2;
    if (cap - 1 > b->max)
        cap = b->max + 1;
    p = realloc(b->data, cap);
    if (p == NULL)
        return TX_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int tx_buf_append(struct tx_buf *b, const void *data, size_t len)
{
    int rc = reserve(b, len);

    if (rc != 0)
        return rc;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int tx_buf_puts(struct tx_buf *b, const char *s)
{
    return tx_buf_append(b, s, strlen(s));
}

int tx_buf_printf(struct tx_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    int rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TX_EINVAL;
    rc = reserve(b, (size_t) n);
    if (rc != 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
    return 0;
}

int tx_buf_json_str(struct tx_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    size_t run = 0;
    int rc;

    rc = tx_buf_append(b, "\"", 1);
    for (i = 0; rc == 0 && i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        char esc[7];
        size_t elen = 0;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            elen = 2;
        }
        else if (c < 0x20) {
            esc[0] = '\\';
            switch (c) {
            case '\n':
                esc[1] = 'n';
                elen = 2;
                break;
            case '\r':
                esc[1] = 'r';
                elen = 2;
                break;
            case '\t':
                esc[1] = 't';
                elen = 2;
                break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xf];
                elen = 6;
                break;
            }
        }
        if (elen == 0) {
            run++;
            continue;
        }
        rc = tx_buf_append(b, s + i - run, run);
        run = 0;
        if (rc == 0)
            rc = tx_buf_append(b, esc, elen);
    }
    if (rc == 0)
        rc = tx_buf_append(b, s + len - run, run);
    if (rc == 0)
        rc = tx_buf_append(b, "\"", 1);
    return rc;
}

char *tx_buf_steal(struct tx_buf *b, size_t *len)
{
    char *p = b->data;

    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
