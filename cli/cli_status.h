#ifndef CLI_STATUS_H
#define CLI_STATUS_H

#include "common/tx_buf.h"
#include "common/tx_status.h"

#include <stdbool.h>
#include <stddef.h>

/* The processing status of an upload (GET /api/v1/uploads/{id}) and of a client, for people. */

struct cli_counts {
    long long records; /* -1 when the status does not know it yet */
    long long received;
    long long persisted;
    long long scored;
    long long flagged;
    long long notified;
    long long emails_sent;
    long long emails_failed;
};

/** Reads the counts of a status body. TX_EINVAL when it is not a status object. */
int cli_status_parse(const char *body, size_t len, struct cli_counts *c, struct tx_err *err);

/**
 * True when processing of an upload of records records is over: every record persisted and
 * scored, and notified (events with an e-mail sent) plus failed e-mails covering them all.
 */
bool cli_status_complete(const struct cli_counts *c, long long records);

/** Plain words for a fraud reason code ("ADDRESS_CHANGE" -> "address changed"); the code if
 * unknown. */
const char *cli_reason_words(const char *code);

/**
 * Appends the status body as text: the counts, one line each, then every flagged record with its
 * reasons in words. prefix starts every line ("" for none). TX_EINVAL when the body is not a
 * status object.
 */
int cli_status_format(const char *body, size_t len, const char *prefix, struct tx_buf *out);

/**
 * Appends a client's state as text from the bodies of /clients/{id}/summary (summary_status 200
 * or 404) and /clients/{id}/fraud. TX_EINVAL when the fraud body is not an object.
 */
int cli_client_format(const char *id, int summary_status, const char *summary, size_t slen,
                      const char *fraud, size_t flen, struct tx_buf *out);

#endif
