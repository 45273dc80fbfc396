#ifndef NOTIFY_SMTP_H
#define NOTIFY_SMTP_H

/*
 * Sending e-mail through libcurl's SMTP client. One struct notify_smtp holds one curl easy
 * handle for the life of the daemon, so consecutive messages reuse the open connection (no new
 * TCP handshake, greeting, EHLO, STARTTLS or AUTH per message). The message is assembled with
 * curl_mime: a multipart/alternative part (text/plain then text/html, UTF-8, quoted-printable)
 * inside the top-level part curl makes, and the headers (Date, From, To, Subject, Message-ID,
 * MIME-Version, Auto-Submitted) passed with CURLOPT_HTTPHEADER.
 *
 * Outcomes (negative enum tx_status; the server's reply or the transport error in err->msg):
 *   0            the server accepted the message (250 after the data)
 *   TX_EUNAVAIL  transient: connection refused/reset, timeout, a 4xx reply, or a 5xx reply about
 *                our own credentials or TLS (530, 534, 535, 538): try again later
 *   TX_EREJECT   permanent: any other 5xx reply (e.g. "550 5.1.1 user unknown")
 *   TX_EINVAL    bad argument (nothing sent)
 *   TX_ENOMEM
 * A transient failure after the message data went out (the connection broke while waiting for
 * the final reply) may still have delivered it; that is the window a deterministic Message-ID
 * lets receivers close.
 *
 * Not thread-safe: one thread uses a struct notify_smtp at a time. The wrapper does not log.
 */

#include "common/tx_status.h"

#include <stdbool.h>
#include <stdint.h>

enum notify_smtp_tls {
    NOTIFY_SMTP_TLS_NONE = 0,     /* smtp://, plain text */
    NOTIFY_SMTP_TLS_STARTTLS = 1, /* smtp://, STARTTLS required */
    NOTIFY_SMTP_TLS_IMPLICIT = 2, /* smtps://, TLS from the first byte */
};

/* Settings; strings are copied by notify_smtp_create. */
struct notify_smtp_config {
    const char *url; /* smtp://host:port/ehlo-domain (smtps:// with TLS_IMPLICIT) */
    enum notify_smtp_tls tls;
    const char *user;        /* NULL or "" for no AUTH */
    const char *password;    /* with user */
    const char *mail_from;   /* envelope sender, a bare address */
    long connect_timeout_ms; /* TCP + TLS connect; 0 means 5000 */
    long timeout_ms;         /* whole transfer of one message; 0 means 10000 */
    bool fresh_connection;   /* open (and QUIT) a connection per message instead of reusing */
};

/* One message. Header values must already be encoded (see notify_header.h): none may hold CR or
 * LF except as RFC 5322 folding ("\r\n "). Bodies are UTF-8 with any line endings. */
struct notify_smtp_msg {
    const char *rcpt;       /* envelope recipient, a bare address */
    const char *from;       /* From header value */
    const char *to;         /* To header value */
    const char *subject;    /* Subject header value */
    const char *date;       /* Date header value */
    const char *message_id; /* Message-ID header value, "<...@...>" */
    const char *text;       /* text/plain body */
    const char *html;       /* text/html body */
};

struct notify_smtp;

/** Parses "none", "starttls" or "tls". 0 or TX_EINVAL. */
int notify_smtp_tls_parse(const char *s, enum notify_smtp_tls *out);

/**
 * Checks cfg (the URL scheme must match tls: smtp:// for none and starttls, smtps:// for tls; no
 * credentials inside the URL) and creates the sender (curl_global_init is called here). Contacts
 * nothing: the first send connects. Returns NULL with TX_EINVAL or TX_ENOMEM in err. Free with
 * notify_smtp_destroy.
 */
struct notify_smtp *notify_smtp_create(const struct notify_smtp_config *cfg, struct tx_err *err);

/** Closes the connection (QUIT) and frees s. NULL is a no-op. */
void notify_smtp_destroy(struct notify_smtp *s);

/**
 * Sends one message to m->rcpt (outcomes above). On a reused connection that fails before the
 * server answered anything (closed while idle), the message is tried once more at once on a
 * new connection: nothing can have been accepted yet.
 */
int notify_smtp_send(struct notify_smtp *s, const struct notify_smtp_msg *m, struct tx_err *err);

/**
 * Reply code that decided the last send: its first refusal (>= 400), else its last reply other
 * than the 221 to QUIT (250 after a success); 0 when the server said nothing.
 */
long notify_smtp_last_code(const struct notify_smtp *s);

/** Connections opened so far (each send on a reused connection adds none). */
uint64_t notify_smtp_connections(const struct notify_smtp *s);

/**
 * Classifies the end of a transfer: curl_code is libcurl's CURLcode, smtp_code the reply code
 * that decided it (as notify_smtp_last_code; 0 for none). Returns 0 (sent), TX_EUNAVAIL (transient)
 * or TX_EREJECT (permanent) as described above. Pure.
 */
int notify_smtp_classify(int curl_code, long smtp_code);

#endif
