#ifndef CLI_IDEM_H
#define CLI_IDEM_H

#include <stdbool.h>
#include <stddef.h>

/* Idempotency keys and per-file upload properties. Pure functions, thread-safe. */

/* The gateway accepts 1-200 printable ASCII characters without spaces, quotes or backslashes. */
#define CLI_IDEM_KEY_MAX 200
/* Length of the random suffix --force adds, in hex digits. */
#define CLI_FORCE_SUFFIX_LEN 16

/** True when k is a key the gateway accepts (the same rule, checked before sending). */
bool cli_idem_key_valid(const char *k);

/**
 * Writes the Idempotency-Key of one upload into out: explicit when not NULL, else
 * "sha256:<sha256_hex>" (the content's hash, so a re-run of the same bytes is a replay). A
 * force_suffix (NULL for none) is appended as ":force-<suffix>" to make the upload new.
 * Returns 0, or TX_EINVAL when the result is not a valid key (too long, bad characters,
 * sha256_hex not 64 lowercase hex digits) or does not fit outlen.
 */
int cli_idem_key_derive(const char *sha256_hex, const char *explicit_key, const char *force_suffix,
                        char *out, size_t outlen);

/** Content type for a file name: "application/x-ndjson" for *.ndjson, else "application/json". */
const char *cli_content_type_for(const char *path);

/** True for a directory entry txupload uploads: *.json or *.ndjson (any case), not hidden. */
bool cli_name_is_upload(const char *name);

#endif
