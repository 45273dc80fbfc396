#ifndef TX_ID_H
#define TX_ID_H

#include <stddef.h>
#include <stdint.h>

#define TX_UUID_STR_LEN   36 /* without the NUL */
#define TX_SHA256_HEX_LEN 64 /* without the NUL */

/**
 * Writes a new UUIDv7 (RFC 9562: 48-bit Unix milliseconds, version 7, variant 10, random bits
 * from getrandom) as 36 lowercase characters plus NUL into out. unix_ms is the timestamp to embed.
 * Returns 0 or TX_EIO when the system has no randomness. Thread-safe.
 */
int tx_uuid7_make(int64_t unix_ms, char out[TX_UUID_STR_LEN + 1]);

/** True when s (NUL-terminated) is a lowercase UUIDv7 string. */
int tx_uuid7_valid(const char *s);

/** Milliseconds embedded in a UUIDv7 string, or -1 when s is not one. */
int64_t tx_uuid7_ms(const char *s);

/** Hex SHA-256 of len bytes into out (64 chars + NUL). Thread-safe. */
void tx_sha256_hex(const void *data, size_t len, char out[TX_SHA256_HEX_LEN + 1]);

/** Constant-time equality of two byte strings of the same length n. */
int tx_secure_equal(const void *a, const void *b, size_t n);

#endif
