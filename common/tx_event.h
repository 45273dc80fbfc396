#ifndef TX_EVENT_H
#define TX_EVENT_H

#include "common/tx_buf.h"
#include "common/tx_record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Events on the tx.events exchange (ARCHITECTURE §6). Every event carries "type" and
 * "schema_version"; event_id is "<upload_id>:<index>", so a re-publish is recognisable.
 */

#define TX_EVENT_SCHEMA_VERSION 1
#define TX_EVENT_ID_MAX         64 /* upload id (36) + ':' + index digits, with room */
#define TX_REASONS_MAX          16

enum tx_event_type {
    TX_EVENT_RECEIVED = 1, /* transaction.received */
    TX_EVENT_SCORED,       /* transaction.scored */
    TX_EVENT_NOTIFY_SENT,  /* notification.sent */
    TX_EVENT_NOTIFY_FAILED /* notification.failed */
};

struct tx_reason {
    char code[32]; /* ADDRESS_CHANGE, EMAIL_CHANGE, ... */
    char detail[256];
};

struct tx_verdict {
    bool flagged;
    double score;
    size_t nreasons;
    struct tx_reason reasons[TX_REASONS_MAX];
};

/* What a transaction event says besides the record itself. */
struct tx_event_head {
    const char *upload_id;
    size_t index;
    const char *object;  /* object key in the bucket */
    int64_t received_ms; /* when the gateway accepted the upload */
    /* About the whole upload (optional: 0 / NULL when unknown). */
    size_t records;              /* records in the upload */
    const char *sha256;          /* hex SHA-256 of the stored bytes */
    const char *idempotency_key; /* the upload's Idempotency-Key, NULL for none */
};

/* A decoded event. Strings are owned by the event and live until tx_event_destroy. */
struct tx_event {
    enum tx_event_type type;
    char event_id[TX_EVENT_ID_MAX + 1];
    char upload_id[40];
    struct tx_event_head head; /* received/scored */
    struct tx_record record;   /* received/scored: validated record (json is the raw record) */
    bool has_verdict;
    struct tx_verdict verdict; /* scored */
    /* notification.*: */
    const char *template_name;
    const char *to;
    const char *message_id;
    const char *at;
    const char *error; /* "" when none */
    void *priv;
};

/** Routing key of a type ("transaction.received", ...). */
const char *tx_event_type_name(enum tx_event_type t);

/** Writes "<upload_id>:<index>" into out (TX_EVENT_ID_MAX + 1 bytes). */
void tx_event_id_format(const char *upload_id, size_t index, char out[TX_EVENT_ID_MAX + 1]);

/**
 * Appends the JSON of a transaction.received event (or transaction.scored when verdict is not
 * NULL) for record rec to out. rec->json is embedded as the "transaction" member as is.
 * Returns 0, TX_ETOOBIG or TX_ENOMEM from the buffer.
 */
int tx_event_encode_tx(const struct tx_event_head *h, const struct tx_record *rec,
                       const struct tx_verdict *verdict, struct tx_buf *out);

/** Appends the JSON of a notification.sent/failed event to out. error NULL or "" when sent. */
int tx_event_encode_notification(enum tx_event_type type, const char *event_id,
                                 const char *template_name, const char *to, const char *message_id,
                                 int64_t at_ms, const char *error, struct tx_buf *out);

/**
 * Decodes and validates an event body. TX_ESYNTAX for malformed JSON, TX_EINVAL (reason in err)
 * for a well-formed body that breaks the contract (unknown type, missing field, invalid record).
 * The caller frees *out with tx_event_destroy. Thread-safe.
 */
int tx_event_decode(const char *buf, size_t len, struct tx_event **out, struct tx_err *err);

/** Frees an event. NULL is a no-op. */
void tx_event_destroy(struct tx_event *ev);

#endif
