#ifndef NOTIFY_HEADER_H
#define NOTIFY_HEADER_H

/*
 * Header values of txnotify's e-mails (RFC 5322, RFC 2047): addresses, mailboxes, encoded
 * subjects, the deterministic Message-ID and the Date. Pure functions: no I/O, no global state,
 * all thread-safe.
 */

#include "common/tx_buf.h"
#include "common/tx_status.h"

#include <stddef.h>
#include <stdint.h>

/* Longest address accepted (RFC 5321 path limit). */
#define NOTIFY_ADDR_MAX 254
/* Bytes notify_message_id writes, NUL included. */
#define NOTIFY_MSGID_MAX 300
/* Bytes notify_date_format needs, NUL included ("Mon, 11 Mar 2024 12:00:00 +0000"). */
#define NOTIFY_DATE_MAX 32

/**
 * Checks that addr can be used as an SMTP envelope address and in a header as is: 3 to
 * NOTIFY_ADDR_MAX bytes of valid UTF-8, exactly one '@' with something on each side, a domain
 * with no empty label, and none of: control characters, spaces, < > ( ) [ ] \ , ; : ". The
 * transaction schema allows some of these; such an address is refused (a permanent failure)
 * rather than risk a malformed RCPT TO or header. 0 or TX_EINVAL with the reason in err.
 */
int notify_addr_check(const char *addr, struct tx_err *err);

/**
 * Splits a mailbox setting, "Display Name <addr@example.com>" or "addr@example.com", into its
 * display name (may be empty; surrounding spaces and one pair of double quotes removed) and
 * address (checked with notify_addr_check). 0 or TX_EINVAL with the reason in err.
 */
int notify_mailbox_parse(const char *spec, char *name, size_t namelen, char *addr, size_t addrlen,
                         struct tx_err *err);

/**
 * Appends a header value (no header name, no CRLF at the end) for text: as is when it is
 * printable ASCII without "=?" and fits on the line after used bytes (the "Subject: " before
 * it); else as RFC 2047 B encoded-words of UTF-8 ("=?UTF-8?B?...?="), each at most 75 bytes,
 * split between characters and folded with CRLF and a space, so no line passes 76 bytes. text
 * must already be header-safe (no CR or LF: see notify_template_render); any control character
 * left forces the encoded form. 0, TX_ETOOBIG or TX_ENOMEM from out.
 */
int notify_header_encode(struct tx_buf *out, const char *text, size_t used);

/**
 * Appends a mailbox header value: "addr" when name is empty, "name <addr>" when name is plain
 * ASCII words, "\"quoted\" <addr>" for other printable ASCII, and RFC 2047 encoded-words for
 * anything else (non-ASCII, control characters, which are turned into spaces first). addr must
 * have passed notify_addr_check. 0, TX_ETOOBIG or TX_ENOMEM.
 */
int notify_header_mailbox(struct tx_buf *out, const char *name, const char *addr);

/**
 * Writes the deterministic Message-ID of an e-mail, "<H@domain>" where H is the first 32 hex
 * digits of SHA-256("<event_id>|<template>"), into out (NOTIFY_MSGID_MAX bytes). The same
 * (event_id, template, domain) always gives the same id, so a receiving system can drop a
 * duplicate sent after a crash. Returns 0, or TX_EINVAL when domain is empty, longer than 200
 * bytes or holds a character not allowed in a msg-id.
 */
int notify_message_id(const char *event_id, const char *template_name, const char *domain,
                      char out[NOTIFY_MSGID_MAX]);

/**
 * Formats unix_ms as an RFC 5322 date in UTC ("Mon, 11 Mar 2024 12:00:00 +0000") into out.
 * Returns the length, or 0 (and "" when outlen > 0) if outlen < NOTIFY_DATE_MAX.
 */
size_t notify_date_format(int64_t unix_ms, char *out, size_t outlen);

/** Appends the standard base64 encoding (with '=' padding) of len bytes of data to out. */
int notify_base64(struct tx_buf *out, const void *data, size_t len);

#endif
