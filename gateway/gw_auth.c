#include "gateway/gw_auth.h"

#include "common/tx_id.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct gw_key {
    char name[GW_AUTH_NAME_MAX + 1];
    unsigned char hash[32];
};

struct gw_auth {
    size_t n;
    struct gw_key keys[GW_AUTH_MAX_KEYS];
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char) tolower((unsigned char) c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int name_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > GW_AUTH_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        if (!isalnum((unsigned char) s[i]) && strchr("_.-", s[i]) == NULL)
            return 0;
    }
    return 1;
}

static int parse_entry(const char *s, size_t n, struct gw_key *k)
{
    const char *colon = memchr(s, ':', n);
    size_t nlen;
    size_t i;

    if (colon == NULL)
        return TX_EINVAL;
    nlen = (size_t) (colon - s);
    if (!name_ok(s, nlen) || n - nlen - 1 != 64)
        return TX_EINVAL;
    memcpy(k->name, s, nlen);
    k->name[nlen] = '\0';
    for (i = 0; i < 32; i++) {
        int hi = hexval(colon[1 + 2 * i]);
        int lo = hexval(colon[2 + 2 * i]);

        if (hi < 0 || lo < 0)
            return TX_EINVAL;
        k->hash[i] = (unsigned char) (hi << 4 | lo);
    }
    return 0;
}

struct gw_auth *gw_auth_create(const char *spec, struct tx_err *err)
{
    struct gw_auth *a = calloc(1, sizeof(*a));
    const char *s = spec != NULL ? spec : "";

    if (a == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        return NULL;
    }
    while (*s != '\0') {
        const char *comma = strchr(s, ',');
        const char *end = comma != NULL ? comma : s + strlen(s);
        const char *b = s;
        const char *e = end;

        while (b < e && isspace((unsigned char) *b))
            b++;
        while (e > b && isspace((unsigned char) e[-1]))
            e--;
        if (b < e) {
            if (a->n == GW_AUTH_MAX_KEYS) {
                tx_err_set(err, TX_EINVAL, "TX_API_KEYS: more than %d keys", GW_AUTH_MAX_KEYS);
                goto fail;
            }
            if (parse_entry(b, (size_t) (e - b), &a->keys[a->n]) != 0) {
                const char *colon = memchr(b, ':', (size_t) (e - b));
                int shown = (int) ((colon != NULL ? colon : e) - b);

                tx_err_set(err, TX_EINVAL,
                           "TX_API_KEYS: entry %zu (\"%.*s:...\") must be name:<64 hex digits of "
                           "the key's SHA-256>",
                           a->n + 1, shown > 64 ? 64 : shown, b);
                goto fail;
            }
            a->n++;
        }
        s = comma != NULL ? comma + 1 : end;
    }
    return a;
fail:
    free(a);
    return NULL;
}

void gw_auth_destroy(struct gw_auth *a)
{
    free(a);
}

size_t gw_auth_count(const struct gw_auth *a)
{
    return a != NULL ? a->n : 0;
}

const char *gw_auth_check(const struct gw_auth *a, const char *key, size_t len)
{
    char hex[TX_SHA256_HEX_LEN + 1];
    unsigned char hash[32];
    const char *found = NULL;
    size_t i;

    if (a == NULL || key == NULL)
        return NULL;
    tx_sha256_hex(key, len, hex);
    for (i = 0; i < 32; i++)
        hash[i] = (unsigned char) (hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    for (i = 0; i < a->n; i++) {
        if (tx_secure_equal(hash, a->keys[i].hash, sizeof(hash)) && found == NULL)
            found = a->keys[i].name;
    }
    return found;
}

int gw_auth_extract(const char *authorization, const char *x_api_key, const char **key, size_t *len)
{
    if (authorization != NULL) {
        const char *s = authorization;

        while (*s == ' ')
            s++;
        if (strncasecmp(s, "Bearer ", 7) == 0) {
            s += 7;
            while (*s == ' ')
                s++;
            *len = strlen(s);
            while (*len > 0 && s[*len - 1] == ' ')
                (*len)--;
            if (*len > 0) {
                *key = s;
                return 0;
            }
        }
    }
    if (x_api_key != NULL && x_api_key[0] != '\0') {
        *key = x_api_key;
        *len = strlen(x_api_key);
        return 0;
    }
    return TX_ENOTFOUND;
}
