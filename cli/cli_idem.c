#include "cli/cli_idem.h"

#include "common/tx_status.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool cli_idem_key_valid(const char *k)
{
    size_t n;
    size_t i;

    if (k == NULL)
        return false;
    n = strlen(k);
    if (n == 0 || n > CLI_IDEM_KEY_MAX)
        return false;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) k[i];

        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            return false;
    }
    return true;
}

static bool lower_hex(const char *s, size_t n)
{
    size_t i;

    if (strlen(s) != n)
        return false;
    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

int cli_idem_key_derive(const char *sha256_hex, const char *explicit_key, const char *force_suffix,
                        char *out, size_t outlen)
{
    int n;

    if (out == NULL || outlen == 0)
        return TX_EINVAL;
    out[0] = '\0';
    if (explicit_key != NULL)
        n = snprintf(out, outlen, "%s", explicit_key);
    else if (sha256_hex != NULL && lower_hex(sha256_hex, 64))
        n = snprintf(out, outlen, "sha256:%s", sha256_hex);
    else
        return TX_EINVAL;
    if (n < 0 || (size_t) n >= outlen)
        goto fail;
    if (force_suffix != NULL) {
        int m = snprintf(out + n, outlen - (size_t) n, ":force-%s", force_suffix);

        if (m < 0 || (size_t) m >= outlen - (size_t) n)
            goto fail;
    }
    if (!cli_idem_key_valid(out))
        goto fail;
    return 0;
fail:
    out[0] = '\0';
    return TX_EINVAL;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n > m && strcasecmp(s + n - m, suffix) == 0;
}

const char *cli_content_type_for(const char *path)
{
    if (path != NULL && has_suffix(path, ".ndjson"))
        return "application/x-ndjson";
    return "application/json";
}

bool cli_name_is_upload(const char *name)
{
    if (name == NULL || name[0] == '.' || name[0] == '\0')
        return false;
    return has_suffix(name, ".json") || has_suffix(name, ".ndjson");
}
