#include "gateway/gw_multipart.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* memmem is a GNU extension; a small portable search keeps the build strictly C11 + POSIX. */
static const char *find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    const char *end;
    const char *p;

    if (nlen == 0 || hlen < nlen)
        return NULL;
    end = hay + hlen - nlen;
    for (p = hay; p <= end; p++) {
        p = memchr(p, needle[0], (size_t) (end - p) + 1);
        if (p == NULL)
            return NULL;
        if (memcmp(p, needle, nlen) == 0)
            return p;
    }
    return NULL;
}

static const char *skip_lws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Reads a parameter value (token or quoted string) into out; returns the position after it. */
static const char *param_value(const char *s, const char *end, char *out, size_t outlen, int *ok)
{
    size_t n = 0;

    *ok = 1;
    if (s < end && *s == '"') {
        s++;
        while (s < end && *s != '"') {
            if (*s == '\\' && s + 1 < end)
                s++;
            if (n + 1 >= outlen)
                *ok = 0;
            else
                out[n++] = *s;
            s++;
        }
        if (s >= end)
            *ok = 0;
        else
            s++;
    }
    else {
        while (s < end && *s != ';' && *s != ' ' && *s != '\t') {
            if (n + 1 >= outlen)
                *ok = 0;
            else
                out[n++] = *s;
            s++;
        }
    }
    out[n] = '\0';
    return s;
}

int gw_content_type_parse(const char *value, char *type, size_t tlen, char *boundary, size_t blen)
{
    const char *s = skip_lws(value);
    const char *end = value + strlen(value);
    size_t n = 0;

    if (blen > 0)
        boundary[0] = '\0';
    while (s < end && *s != ';' && *s != ' ' && *s != '\t') {
        if (n + 1 >= tlen)
            return TX_EINVAL;
        type[n++] = (char) tolower((unsigned char) *s);
        s++;
    }
    type[n] = '\0';
    if (n == 0 || strchr(type, '/') == NULL)
        return TX_EINVAL;
    while (s < end) {
        char name[32];
        char val[GW_BOUNDARY_MAX + 2];
        size_t k = 0;
        int ok;

        s = skip_lws(s);
        if (*s != ';')
            return s == end ? 0 : TX_EINVAL;
        s = skip_lws(s + 1);
        while (s < end && *s != '=' && *s != ';') {
            if (k + 1 < sizeof(name))
                name[k++] = (char) tolower((unsigned char) *s);
            s++;
        }
        name[k] = '\0';
        if (s >= end || *s != '=')
            return k == 0 && s >= end ? 0 : TX_EINVAL;
        s = param_value(s + 1, end, val, sizeof(val), &ok);
        if (strcmp(name, "boundary") == 0) {
            if (!ok || val[0] == '\0' || strlen(val) > GW_BOUNDARY_MAX || strlen(val) >= blen)
                return TX_EINVAL;
            memcpy(boundary, val, strlen(val) + 1);
        }
    }
    return 0;
}

/* Extracts parameter `name` from a Content-Disposition value into out ("" when absent). */
static void disposition_param(const char *v, const char *vend, const char *name, char *out,
                              size_t outlen)
{
    size_t nlen = strlen(name);
    const char *s = v;

    out[0] = '\0';
    while (s < vend) {
        const char *semi = memchr(s, ';', (size_t) (vend - s));
        int ok;

        if (semi == NULL)
            return;
        s = skip_lws(semi + 1);
        if ((size_t) (vend - s) > nlen && strncasecmp(s, name, nlen) == 0 && s[nlen] == '=') {
            param_value(s + nlen + 1, vend, out, outlen, &ok);
            if (!ok)
                out[0] = '\0';
            return;
        }
    }
}

/* Parses the header block [h, hend) of one part. */
static void part_headers(const char *h, const char *hend, char *name, size_t nlen,
                         struct gw_part *part)
{
    name[0] = '\0';
    part->filename[0] = '\0';
    part->content_type[0] = '\0';
    while (h < hend) {
        const char *eol = find(h, (size_t) (hend - h), "\r\n", 2);
        const char *lend = eol != NULL ? eol : hend;
        const char *colon = memchr(h, ':', (size_t) (lend - h));

        if (colon != NULL) {
            size_t klen = (size_t) (colon - h);
            const char *v = skip_lws(colon + 1);

            if (klen == 19 && strncasecmp(h, "Content-Disposition", klen) == 0) {
                disposition_param(v, lend, "name", name, nlen);
                disposition_param(v, lend, "filename", part->filename, sizeof(part->filename));
            }
            else if (klen == 12 && strncasecmp(h, "Content-Type", klen) == 0) {
                size_t n = (size_t) (lend - v);

                if (n >= sizeof(part->content_type))
                    n = sizeof(part->content_type) - 1;
                memcpy(part->content_type, v, n);
                part->content_type[n] = '\0';
            }
        }
        h = lend + 2;
    }
}

int gw_multipart_find(const char *body, size_t len, const char *boundary, const char *field,
                      struct gw_part *part, struct tx_err *err)
{
    char delim[GW_BOUNDARY_MAX + 5]; /* "\r\n--" + boundary */
    size_t blen = strlen(boundary);
    size_t dlen;
    const char *p;
    const char *end = body + len;

    if (blen == 0 || blen > GW_BOUNDARY_MAX)
        return tx_err_set(err, TX_ESYNTAX, "multipart boundary missing or longer than %d",
                          GW_BOUNDARY_MAX);
    dlen = (size_t) snprintf(delim, sizeof(delim), "\r\n--%s", boundary);

    /* The first delimiter may start the body (no preceding CRLF) or follow a preamble. */
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0)
        p = body + dlen - 2;
    else {
        p = find(body, len, delim, dlen);
        if (p == NULL)
            return tx_err_set(err, TX_ESYNTAX, "multipart body has no boundary \"--%s\"", boundary);
        p += dlen;
    }
    for (;;) {
        char name[128];
        const char *hend;
        const char *next;

        /* After a delimiter: "--" closes the body, else optional whitespace and CRLF. */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return tx_err_set(err, TX_ENOTFOUND, "multipart body has no field \"%s\"", field);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return tx_err_set(err, TX_ESYNTAX, "multipart delimiter not followed by CRLF");
        p += 2;
        hend = find(p, (size_t) (end - p), "\r\n\r\n", 4);
        if (p < end - 1 && p[0] == '\r' && p[1] == '\n')
            hend = p - 2; /* a part without headers */
        if (hend == NULL || hend - p > GW_PART_HEADERS_MAX)
            return tx_err_set(err, TX_ESYNTAX,
                              "multipart part headers unterminated or over %d "
                              "bytes",
                              GW_PART_HEADERS_MAX);
        part_headers(p, hend + 2, name, sizeof(name), part);
        p = hend + 4;
        next = find(p, (size_t) (end - p), delim, dlen);
        if (next == NULL)
            return tx_err_set(err, TX_ESYNTAX, "multipart part not terminated by its boundary");
        if (strcmp(name, field) == 0) {
            const char *after = next + dlen;

            part->data = p;
            part->len = (size_t) (next - p);
            /* The body must still be well formed after the part we want. */
            if (end - after < 2 || !((after[0] == '-' && after[1] == '-') || after[0] == '\r' ||
                                     after[0] == ' ' || after[0] == '\t'))
                return tx_err_set(err, TX_ESYNTAX,
                                  "multipart boundary not followed by CRLF or "
                                  "\"--\"");
            return 0;
        }
        p = next + dlen;
    }
}
