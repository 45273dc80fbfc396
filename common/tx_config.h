#ifndef TX_CONFIG_H
#define TX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/tx_status.h"

/*
 * Configuration from the environment: each module describes its settings in a static table of
 * struct tx_config_entry and loads them once at start into its own config struct.
 *
 *     struct gw_config { char *bucket; long long max_upload; long long timeout_ms; bool tls; };
 *     static const struct tx_config_entry gw_config_table[] = {
 *         { "TX_S3_BUCKET", TX_CONFIG_STRING, NULL, 1, 63,
 *           offsetof(struct gw_config, bucket), 0, "bucket for raw uploads" },
 *         { "TX_MAX_UPLOAD_BYTES", TX_CONFIG_SIZE, "10MiB", 1, 1LL << 30,
 *           offsetof(struct gw_config, max_upload), 0, "largest accepted body" },
 *     };
 *
 * Value syntax, after trimming nothing (a space is an error):
 *   STRING  any bytes; if max > 0 its length must lie in [min, max].
 *   INT     decimal integer with optional sign, in [min, max].
 *   BOOL    1/0, true/false, yes/no, on/off (any case). min/max ignored.
 *   SIZE    bytes: a non-negative integer with an optional unit (any case): b; k, m, g, t (x1024,
 *           as nginx's "10m"); KiB, MiB, GiB, TiB (x1024); kB, MB, GB, TB (x1000). In [min, max].
 *   MS      milliseconds: a non-negative integer with an optional unit: ms (the default), s, m or
 *           min, h, d. In [min, max] (milliseconds).
 * An empty variable counts as unset. A default ("def") is parsed and bounds-checked like a value,
 * so a broken table fails at start; def NULL makes the variable required.
 */
enum tx_config_type {
    TX_CONFIG_STRING, /* target: char * (heap, owned by target, freed by tx_config_cleanup) */
    TX_CONFIG_INT,    /* target: long long */
    TX_CONFIG_BOOL,   /* target: bool */
    TX_CONFIG_SIZE,   /* target: long long, bytes ("10MiB", "512k") */
    TX_CONFIG_MS,     /* target: long long, milliseconds ("5s", "200ms") */
};

/* A secret: its value may also come from the file named by KEY_FILE (both set is an error), and
 * neither error messages nor --help ever show its value or default. */
#define TX_CONFIG_SECRET 0x1u

/* Largest file accepted for a KEY_FILE variable. */
#define TX_CONFIG_FILE_MAX 65536

struct tx_config_entry {
    const char *key;          /* environment variable, "TX_MAX_UPLOAD_BYTES" */
    enum tx_config_type type; /* how the text is parsed and what the target field is */
    const char *def;          /* default as text; NULL = required; "" = optional, empty string */
    long long min, max;       /* inclusive bounds (strings: length bounds when max > 0) */
    size_t offset;            /* offsetof(target struct, field) */
    unsigned flags;           /* TX_CONFIG_SECRET or 0 */
    const char *desc;         /* one line for --help */
};

/* Looks up key; returns NULL when unset. The returned string must stay valid during the load. */
typedef const char *(*tx_getenv_fn)(void *ctx, const char *key);

/**
 * Loads every entry of tab into target (a struct the entries' offsets refer to). getenv_fn NULL
 * means getenv(3) (ctx unused). For a non-secret entry, KEY_FILE being set is an error unless
 * KEY_FILE is itself a key of tab.
 *
 * Errors: TX_EINVAL on the first missing, malformed, out-of-range or overflowing value, or an
 * unreadable or oversized KEY_FILE; err->msg names the variable, the value (never for secrets)
 * and the allowed range. TX_ENOMEM if a string cannot be copied. On failure every string this
 * call stored is freed and its field set to NULL, so nothing needs cleaning up; other fields may
 * have been written. On success the strings belong to target: free them with
 * tx_config_cleanup. target must not hold strings from an earlier load (they would leak).
 * Not thread-safe with respect to setenv(3): call once at start, before threads exist.
 */
int tx_config_load(const struct tx_config_entry *tab, size_t n, void *target,
                   tx_getenv_fn getenv_fn, void *ctx, struct tx_err *err);

/** Frees the strings tx_config_load stored in target and sets them to NULL. Idempotent. */
void tx_config_cleanup(const struct tx_config_entry *tab, size_t n, void *target);

/**
 * Prints tab for --help: key, type, default (or "required"), range and description, one entry
 * per two lines. Secrets show neither default nor value, but mention KEY_FILE. Reads no variable.
 */
void tx_config_print_help(FILE *out, const struct tx_config_entry *tab, size_t n);

#endif
