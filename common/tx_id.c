#include "common/tx_id.h"

#include "common/tx_status.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <sys/random.h>

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hexdigits[in[i] >> 4];
        out[2 * i + 1] = hexdigits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

int tx_uuid7_make(int64_t unix_ms, char out[TX_UUID_STR_LEN + 1])
{
    unsigned char b[16];
    char hex[33];
    uint64_t ms = (uint64_t) unix_ms;
    int i;

    if (getrandom(b + 6, 10, 0) != 10)
        return TX_EIO;
    for (i = 5; i >= 0; i--) {
        b[i] = (unsigned char) (ms & 0xff);
        ms >>= 8;
    }
    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x70);
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);
    to_hex(b, sizeof(b), hex);
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
    return 0;
}

int tx_uuid7_valid(const char *s)
{
    size_t i;

    if (s == NULL || strlen(s) != TX_UUID_STR_LEN)
        return 0;
    for (i = 0; i < TX_UUID_STR_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        }
        else if (strchr(hexdigits, s[i]) == NULL || s[i] == '\0') {
            return 0;
        }
    }
    return s[14] == '7' && strchr("89ab", s[19]) != NULL;
}

int64_t tx_uuid7_ms(const char *s)
{
    int64_t ms = 0;
    size_t i;

    if (!tx_uuid7_valid(s))
        return -1;
    for (i = 0; i < 13; i++) {
        if (i == 8)
            continue;
        ms = ms * 16 + (int64_t) (strchr(hexdigits, s[i]) - hexdigits);
    }
    return ms;
}

void tx_sha256_hex(const void *data, size_t len, char out[TX_SHA256_HEX_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256(data, len, md);
    to_hex(md, sizeof(md), out);
}

int tx_secure_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
