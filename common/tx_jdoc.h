#ifndef TX_JDOC_H
#define TX_JDOC_H

/*
 * A flat, read-only JSON document for the consumers' hot path: one pass over the text builds an
 * array of nodes (in document order, each container followed by its children) and one arena of
 * decoded, NUL-terminated strings. Two allocations per document instead of one per value.
 *
 * It accepts exactly what the upload parser (jansson with duplicate keys refused, tx_json_load)
 * accepts: RFC 8259 JSON with any top-level value, valid UTF-8 only, no raw control character
 * in a string, no \u0000, no lone surrogate, no duplicate key in an object (compared after
 * unescaping), nesting up to TX_JSON_MAX_DEPTH, no NUL byte anywhere, no real number that
 * overflows a double. An integer outside int64 turns every integer of the document into a real,
 * as tx_json_load does. tests/fuzz/fuzz_jdoc.c checks both parsers against each other.
 */

#include "common/tx_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tx_jtype {
    TX_JNONE = 0, /* "no such member" (never a node's type) */
    TX_JOBJECT,
    TX_JARRAY,
    TX_JSTRING,
    TX_JINT,
    TX_JREAL,
    TX_JTRUE,
    TX_JFALSE,
    TX_JNULL,
};

/* Node index meaning "none". */
#define TX_JDOC_NONE UINT32_MAX

struct tx_jnode {
    uint8_t type;   /* enum tx_jtype */
    uint32_t next;  /* index of the first node after this value and its children */
    uint32_t count; /* object: members; array: elements */
    uint32_t start; /* the value's text is [start, end) of the source */
    uint32_t end;
    uint32_t str; /* string: offset of its decoded text in the arena (NUL-terminated) */
    uint32_t len; /* string: decoded length in bytes */
    union {
        long long i; /* TX_JINT */
        double d;    /* TX_JREAL */
    } num;
};

/* An object's members are (key string node, value node) pairs after the object's node. */
struct tx_jdoc {
    struct tx_jnode *nodes; /* nodes[0] is the root */
    uint32_t n;
    uint32_t cap;
    char *arena;
    size_t arena_len;
};

/**
 * Parses len bytes of JSON into d (which must be zeroed or cleaned up before). Returns 0;
 * TX_ESYNTAX with the byte offset and the reason in err; TX_ETOOBIG for text of 2 GiB or more;
 * TX_ENOMEM. On error d holds nothing (tx_jdoc_cleanup is still safe). Thread-safe (touches d).
 */
int tx_jdoc_parse(struct tx_jdoc *d, const char *buf, size_t len, struct tx_err *err);

/** Frees what d holds and zeroes it. Safe on a zeroed document. */
void tx_jdoc_cleanup(struct tx_jdoc *d);

/**
 * Index of the value of member key in the object at node obj, or TX_JDOC_NONE when obj is not an
 * object or has no such member. Keys are compared after unescaping.
 */
uint32_t tx_jdoc_get(const struct tx_jdoc *d, uint32_t obj, const char *key);

/** Type of node i; TX_JNONE for TX_JDOC_NONE. */
enum tx_jtype tx_jdoc_type(const struct tx_jdoc *d, uint32_t i);

/** Decoded text of string node i (NUL-terminated, owned by d), or NULL when it is no string. */
const char *tx_jdoc_str(const struct tx_jdoc *d, uint32_t i, size_t *len);

/** Value of number node i as a double (0 when it is no number). */
double tx_jdoc_num(const struct tx_jdoc *d, uint32_t i);

/**
 * Length of the valid UTF-8 sequence at s (n >= 1 bytes left): 1 to 4, or 0 when the sequence
 * is invalid (overlong, surrogate, above U+10FFFF, truncated) or s[0] is NUL.
 */
size_t tx_utf8_seq(const unsigned char *s, size_t n);

#endif
