#ifndef TX_RECORD_H
#define TX_RECORD_H

#include "common/tx_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The transaction record (ARCHITECTURE §3) and the upload parser/validator.
 * An upload is a JSON array of records, one record object, or NDJSON (one object per line).
 */

enum tx_format {
    TX_FORMAT_AUTO = 0, /* array or object => JSON; several values one per line => NDJSON */
    TX_FORMAT_JSON,     /* application/json: an array of records or one record */
    TX_FORMAT_NDJSON,   /* application/x-ndjson: one record per non-blank line */
};

/* Deepest nesting of arrays and objects accepted in any JSON the library parses. */
#define TX_JSON_MAX_DEPTH 128

/* Field limits of §3, in Unicode code points. */
#define TX_ID_MAX       64
#define TX_CLIENTE_MAX  200
#define TX_EMAIL_MIN    3
#define TX_EMAIL_MAX    254
#define TX_ENDERECO_MAX 300

/* One valid record. Strings are NUL-terminated UTF-8 owned by the batch. */
struct tx_record {
    size_t index;  /* 0-based position in the upload */
    unsigned line; /* 1-based line where the record starts */
    unsigned col;  /* 1-based column (in characters) where the record starts */
    const char *id;
    const char *cliente;
    const char *email;
    const char *endereco;
    const char *datatrasancao;
    bool is_active;
    bool has_valor;
    double valor;
    int64_t ts_ms;    /* datatrasancao in UTC milliseconds */
    const char *json; /* the whole record as compact JSON, every field kept in order */
    size_t json_len;
};

/* One rule broken by one record. */
struct tx_violation {
    size_t index;   /* record index */
    unsigned line;  /* line where the record starts (NDJSON: its line) */
    char field[32]; /* "_id", "email", ... or "" for the record itself */
    char code[16];  /* "required", "type", "length", "pattern", "format", "range", "empty" */
    char message[192];
};

struct tx_parse_limits {
    size_t max_records;    /* more records => TX_ETOOBIG */
    size_t max_violations; /* violations kept in detail; the total is always counted */
};

/* The outcome of parsing an upload. */
struct tx_batch {
    enum tx_format format; /* the format actually parsed */
    struct tx_record *records;
    size_t nrecords;
    struct tx_violation *violations;
    size_t nviolations;       /* kept in `violations` */
    size_t nviolations_total; /* including those past max_violations */
    void *priv;
};

/** Default limits: 100,000 records, 1,000 detailed violations. */
void tx_parse_limits_default(struct tx_parse_limits *lim);

/**
 * Parses and validates an upload of len bytes (no NUL needed). Returns:
 * - 0: *out holds every record (all valid).
 * - TX_EINVAL: *out holds the violations of every invalid record (and no records).
 * - TX_ESYNTAX: malformed JSON, *out is NULL, err has line, col and message.
 * - TX_ETOOBIG: more than lim->max_records records; TX_ENOMEM.
 * The caller destroys *out with tx_batch_destroy. lim NULL = defaults. Thread-safe (no shared
 * state).
 */
int tx_batch_parse(const char *buf, size_t len, enum tx_format fmt,
                   const struct tx_parse_limits *lim, struct tx_batch **out, struct tx_err *err);

/** Frees a batch. NULL is a no-op. */
void tx_batch_destroy(struct tx_batch *b);

/**
 * Validates one record object given as JSON text (len bytes). Returns 0 when valid; TX_EINVAL
 * with up to nmax violations written to v (the count in *nv); TX_ESYNTAX for malformed JSON.
 * Used by the event decoder and tests.
 */
int tx_record_check(const char *buf, size_t len, struct tx_violation *v, size_t nmax, size_t *nv,
                    struct tx_err *err);

/** Number of Unicode code points in a valid UTF-8 string of len bytes. */
size_t tx_utf8_chars(const char *s, size_t len);

/**
 * Byte span [*start, *end) of the value of top-level member key (compared as written, no
 * escapes) in buf, len bytes of JSON that a parser of this library accepted (it is not checked
 * again). TX_ENOTFOUND when absent, TX_EINVAL when buf is no object. Thread-safe.
 */
int tx_json_member_span(const char *buf, size_t len, const char *key, size_t *start, size_t *end);

#endif
