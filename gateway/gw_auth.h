#ifndef GW_AUTH_H
#define GW_AUTH_H

#include "common/tx_status.h"

#include <stddef.h>

/* API keys: TX_API_KEYS="name:sha256hex,name2:sha256hex". Only hashes are configured. */

#define GW_AUTH_MAX_KEYS 64
#define GW_AUTH_NAME_MAX 64

struct gw_auth;

/**
 * Parses a key list. Each entry is name (1-64 of [A-Za-z0-9_.-]) ':' 64 hex digits; entries are
 * separated by commas; spaces around entries are ignored. An empty list is allowed (no key then
 * passes). Returns NULL with TX_EINVAL naming the bad entry (never its hash) or TX_ENOMEM.
 * Free with gw_auth_destroy. The result is read-only and thread-safe.
 */
struct gw_auth *gw_auth_create(const char *spec, struct tx_err *err);

/** NULL is a no-op. */
void gw_auth_destroy(struct gw_auth *a);

/** Number of configured keys. */
size_t gw_auth_count(const struct gw_auth *a);

/**
 * Checks a presented key (len bytes) by hashing it and comparing with every configured hash in
 * constant time (all entries are compared, whatever matches). Returns the key's name, or NULL.
 */
const char *gw_auth_check(const struct gw_auth *a, const char *key, size_t len);

/**
 * Extracts the presented key from an Authorization header ("Bearer <key>", scheme
 * case-insensitive) or an X-API-Key header (either may be NULL). Sets *key and *len; returns 0, or
 * TX_ENOTFOUND when neither carries a key.
 */
int gw_auth_extract(const char *authorization, const char *x_api_key, const char **key,
                    size_t *len);

#endif
