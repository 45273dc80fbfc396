#ifndef TX_STATUS_H
#define TX_STATUS_H

#include <stdarg.h>
#include <stddef.h>

/* Work functions return 0 on success or one of these (negative) on failure. */
enum tx_status {
    TX_OK = 0,
    TX_EINVAL = -1,    /* bad argument or invalid input */
    TX_ENOMEM = -2,    /* allocation failed */
    TX_EIO = -3,       /* I/O or protocol failure, not known to be transient */
    TX_ETIMEDOUT = -4, /* deadline passed */
    TX_EUNAVAIL = -5,  /* dependency unavailable; retryable */
    TX_ENOTFOUND = -6, /* no such object/key */
    TX_EEXIST = -7,    /* already exists */
    TX_ETOOBIG = -8,   /* a size limit was exceeded */
    TX_ESYNTAX = -9,   /* malformed input (JSON syntax); position in struct tx_err */
    TX_EREJECT = -10,  /* refused by the peer (nack, returned message, constraint) */
};

/* Error detail: a status code, an optional position and a human-readable message. */
struct tx_err {
    int code;
    unsigned line; /* 1-based, 0 when not applicable */
    unsigned col;  /* 1-based, 0 when not applicable */
    char msg[256];
};

/** Returns a static, stable name for a status ("EINVAL", ...). Never NULL. */
const char *tx_status_name(int status);

/**
 * Fills err (if not NULL) with code and a printf-formatted message; returns code so callers can
 * write `return tx_err_set(err, TX_EINVAL, "...")`. Thread-safe (touches only *err).
 */
int tx_err_set(struct tx_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Resets err to "no error". NULL is a no-op. */
void tx_err_clear(struct tx_err *err);

#endif
