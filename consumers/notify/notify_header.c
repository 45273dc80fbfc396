#include "consumers/notify/notify_header.h"

#include "common/tx_id.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* RFC 2047: an encoded-word is at most 75 bytes; "=?UTF-8?B?" + "?=" take 12, so 39 bytes of
 * text (52 base64 characters) give a 64-byte word, which fits after "Subject: " on a 76-byte
 * line. */
#define WORD_RAW_MAX 39
#define LINE_MAX_RAW 78

static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i];
        size_t n;
        size_t k;
        unsigned long cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;
        }
        else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;
        }
        else {
            return false;
        }
        if (len - i < n)
            return false;
        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

int notify_addr_check(const char *addr, struct tx_err *err)
{
    size_t len = strlen(addr);
    const char *at = NULL;
    const char *domain;
    size_t i;

    if (len < 3 || len > NOTIFY_ADDR_MAX)
        return tx_err_set(err, TX_EINVAL, "address must be 3 to %d bytes long", NOTIFY_ADDR_MAX);
    if (!utf8_valid((const unsigned char *) addr, len))
        return tx_err_set(err, TX_EINVAL, "address is not valid UTF-8");
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) addr[i];

        if (c <= 0x20 || c == 0x7f || strchr("<>()[]\\,;:\"", c) != NULL)
            return tx_err_set(err, TX_EINVAL,
                              "address contains a space, control character or one of "
                              "<>()[]\\,;:\" at byte %zu",
                              i + 1);
        if (c == '@') {
            if (at != NULL)
                return tx_err_set(err, TX_EINVAL, "address contains more than one '@'");
            at = addr + i;
        }
    }
    if (at == NULL || at == addr || at[1] == '\0')
        return tx_err_set(err, TX_EINVAL, "address needs a local part, '@' and a domain");
    domain = at + 1;
    if (domain[0] == '.' || addr[len - 1] == '.' || strstr(domain, "..") != NULL)
        return tx_err_set(err, TX_EINVAL, "address domain has an empty label");
    return 0;
}

int notify_mailbox_parse(const char *spec, char *name, size_t namelen, char *addr, size_t addrlen,
                         struct tx_err *err)
{
    const char *lt = strchr(spec, '<');
    const char *a;
    const char *b;
    size_t alen;
    int rc;

    if (namelen == 0 || addrlen == 0)
        return tx_err_set(err, TX_EINVAL, "no room for the result");
    name[0] = '\0';
    addr[0] = '\0';
    if (lt == NULL) {
        a = spec;
        b = spec + strlen(spec);
    }
    else {
        const char *gt = strchr(lt, '>');

        if (gt == NULL || gt[1] != '\0')
            return tx_err_set(err, TX_EINVAL, "mailbox must be \"Name <addr>\" or \"addr\"");
        a = spec;
        b = lt;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        if (b - a >= 2 && *a == '"' && b[-1] == '"') {
            a++;
            b--;
        }
        if ((size_t) (b - a) >= namelen)
            return tx_err_set(err, TX_EINVAL, "display name too long");
        memcpy(name, a, (size_t) (b - a));
        name[b - a] = '\0';
        a = lt + 1;
        b = gt;
    }
    while (a < b && *a == ' ')
        a++;
    while (b > a && b[-1] == ' ')
        b--;
    alen = (size_t) (b - a);
    if (alen >= addrlen)
        return tx_err_set(err, TX_EINVAL, "address too long");
    memcpy(addr, a, alen);
    addr[alen] = '\0';
    rc = notify_addr_check(addr, err);
    if (rc == 0 && !utf8_valid((const unsigned char *) name, strlen(name)))
        rc = tx_err_set(err, TX_EINVAL, "display name is not valid UTF-8");
    return rc;
}

int notify_base64(struct tx_buf *out, const void *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    char q[4];
    size_t i;
    int rc = 0;

    for (i = 0; i + 2 < len && rc == 0; i += 3) {
        unsigned long v = ((unsigned long) p[i] << 16) | ((unsigned long) p[i + 1] << 8) | p[i + 2];

        q[0] = tab[(v >> 18) & 63];
        q[1] = tab[(v >> 12) & 63];
        q[2] = tab[(v >> 6) & 63];
        q[3] = tab[v & 63];
        rc = tx_buf_append(out, q, 4);
    }
    if (rc == 0 && i < len) {
        unsigned long v = (unsigned long) p[i] << 16;

        if (i + 1 < len)
            v |= (unsigned long) p[i + 1] << 8;
        q[0] = tab[(v >> 18) & 63];
        q[1] = tab[(v >> 12) & 63];
        q[2] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        q[3] = '=';
        rc = tx_buf_append(out, q, 4);
    }
    return rc;
}

/* Appends text as encoded-words, folded with CRLF SP between words. */
static int encode_words(struct tx_buf *out, const char *text, size_t len)
{
    size_t i = 0;
    int rc = 0;

    while (i < len && rc == 0) {
        size_t n = len - i < WORD_RAW_MAX ? len - i : WORD_RAW_MAX;

        /* Never split a character: back off to the start of the one that does not fit. */
        if (i + n < len) {
            while (n > 1 && ((unsigned char) text[i + n] & 0xc0) == 0x80)
                n--;
        }
        if (i > 0)
            rc = tx_buf_puts(out, "\r\n ");
        if (rc == 0)
            rc = tx_buf_puts(out, "=?UTF-8?B?");
        if (rc == 0)
            rc = notify_base64(out, text + i, n);
        if (rc == 0)
            rc = tx_buf_puts(out, "?=");
        i += n;
    }
    return rc;
}

/* Printable ASCII only, and no "=?" that a reader could take for an encoded-word. */
static bool plain_ascii(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c < 0x20 || c > 0x7e)
            return false;
        if (c == '=' && i + 1 < len && s[i + 1] == '?')
            return false;
    }
    return true;
}

/* A copy of s with every control character turned into a space, as encode_words input. */
static int put_sanitized_words(struct tx_buf *out, const char *s, size_t len)
{
    struct tx_buf tmp;
    size_t i;
    int rc = 0;

    tx_buf_init(&tmp, len + 1);
    for (i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char) s[i];

        rc = tx_buf_append(&tmp, (c < 0x20 || c == 0x7f) ? " " : s + i, 1);
    }
    if (rc == 0)
        rc = encode_words(out, tmp.data != NULL ? tmp.data : "", tmp.len);
    tx_buf_cleanup(&tmp);
    return rc;
}

int notify_header_encode(struct tx_buf *out, const char *text, size_t used)
{
    size_t len = strlen(text);

    if (plain_ascii(text, len) && used + len <= LINE_MAX_RAW)
        return tx_buf_append(out, text, len);
    return put_sanitized_words(out, text, len);
}

/* RFC 5322 atext plus space: a display name made only of these needs no quoting. */
static bool plain_phrase(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr(" !#$%&'*+-/=?^_`{|}~", c) != NULL)))
            return false;
    }
    return true;
}

int notify_header_mailbox(struct tx_buf *out, const char *name, const char *addr)
{
    size_t len = name != NULL ? strlen(name) : 0;
    size_t i;
    int rc = 0;

    if (len == 0)
        return tx_buf_puts(out, addr);
    if (plain_phrase(name, len) && len <= LINE_MAX_RAW) {
        rc = tx_buf_append(out, name, len);
    }
    else if (plain_ascii(name, len) && len <= LINE_MAX_RAW) {
        rc = tx_buf_puts(out, "\"");
        for (i = 0; i < len && rc == 0; i++) {
            if (name[i] == '"' || name[i] == '\\')
                rc = tx_buf_puts(out, "\\");
            if (rc == 0)
                rc = tx_buf_append(out, name + i, 1);
        }
        if (rc == 0)
            rc = tx_buf_puts(out, "\"");
    }
    else {
        rc = put_sanitized_words(out, name, len);
    }
    if (rc == 0)
        rc = tx_buf_printf(out, " <%s>", addr);
    return rc;
}

int notify_message_id(const char *event_id, const char *template_name, const char *domain,
                      char out[NOTIFY_MSGID_MAX])
{
    char input[512];
    char hex[TX_SHA256_HEX_LEN + 1];
    size_t dlen = strlen(domain);
    size_t i;
    int n;

    out[0] = '\0';
    if (dlen == 0 || dlen > 200)
        return TX_EINVAL;
    for (i = 0; i < dlen; i++) {
        unsigned char c = (unsigned char) domain[i];

        if (c <= 0x20 || c >= 0x7f || strchr("<>@()[]\\,;:\"", c) != NULL)
            return TX_EINVAL;
    }
    n = snprintf(input, sizeof(input), "%s|%s", event_id, template_name);
    if (n < 0 || (size_t) n >= sizeof(input))
        return TX_EINVAL;
    tx_sha256_hex(input, (size_t) n, hex);
    snprintf(out, NOTIFY_MSGID_MAX, "<%.32s@%s>", hex, domain);
    return 0;
}

size_t notify_date_format(int64_t unix_ms, char *out, size_t outlen)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t t;
    struct tm tm;
    int n;

    if (outlen > 0)
        out[0] = '\0';
    if (outlen < NOTIFY_DATE_MAX)
        return 0;
    t = (time_t) (unix_ms >= 0 ? unix_ms / 1000 : -((-unix_ms + 999) / 1000));
    if (gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11 || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 1)
        return 0;
    n = snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t) n >= outlen) {
        out[0] = '\0';
        return 0;
    }
    return (size_t) n;
}
