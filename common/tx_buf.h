#ifndef TX_BUF_H
#define TX_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A growable byte buffer with a hard size limit, always NUL-terminated when non-empty.
 * Embedded: tx_buf_init/tx_buf_cleanup. Not thread-safe; one owner.
 */
struct tx_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len; appends beyond it fail with TX_ETOOBIG */
};

/** Initialises an empty buffer that may grow to max bytes. Allocates nothing. */
void tx_buf_init(struct tx_buf *b, size_t max);

/** Frees the storage; the buffer is empty and reusable afterwards. */
void tx_buf_cleanup(struct tx_buf *b);

/** Empties the buffer, keeping its storage. */
void tx_buf_reset(struct tx_buf *b);

/** Appends len bytes. TX_ETOOBIG past the limit (buffer unchanged), TX_ENOMEM. */
int tx_buf_append(struct tx_buf *b, const void *data, size_t len);

/** Appends a NUL-terminated string. */
int tx_buf_puts(struct tx_buf *b, const char *s);

/** Appends printf-formatted text. */
int tx_buf_printf(struct tx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Appends s (len bytes, valid UTF-8) as a quoted, escaped JSON string. */
int tx_buf_json_str(struct tx_buf *b, const char *s, size_t len);

/** Takes the data out (caller frees with free()); the buffer is left empty. May return NULL. */
char *tx_buf_steal(struct tx_buf *b, size_t *len);

#endif
