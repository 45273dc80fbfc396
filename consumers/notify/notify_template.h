#ifndef NOTIFY_TEMPLATE_H
#define NOTIFY_TEMPLATE_H

/*
 * E-mail templates of txnotify: for each template name three files in one directory,
 * <name>.subject (one line), <name>.txt and <name>.html, with {{placeholder}} substitution.
 *
 * Placeholders: {{cliente}} {{_id}} {{email}} {{endereco}} {{datatrasancao}} {{valor}}
 * {{upload_id}} {{event_id}} {{score}} {{reasons}} (spaces inside the braces are allowed:
 * {{ cliente }}). Any other name, an empty or unterminated "{{", a file that is missing,
 * unreadable, larger than NOTIFY_TEMPLATE_MAX_BYTES or not UTF-8, and a subject of more than one
 * line are errors that name the file (and the line and column), so the daemon refuses to start.
 *
 * Values are inserted per part: as is in the text part; HTML-escaped (& < > " ') in the HTML
 * part; in the subject with every control character (CR, LF, TAB, ...) and Unicode line or
 * paragraph separator replaced by a space, so a value can never start a new header line. The
 * subject is returned as UTF-8 text; notify_header_encode turns it into a header value.
 * {{reasons}} is a list: "CODE: detail" lines prefixed with "- " in the text part, a <ul> in
 * the HTML part, the codes separated by ", " in the subject. {{valor}} is "-" when the record
 * has none.
 */

#include "common/tx_buf.h"
#include "common/tx_event.h"
#include "common/tx_status.h"

#include <stdbool.h>
#include <stddef.h>

/* Largest template file accepted. */
#define NOTIFY_TEMPLATE_MAX_BYTES 65536
/* Longest template name ([a-z0-9_]). */
#define NOTIFY_TEMPLATE_NAME_MAX 63

enum notify_part {
    NOTIFY_PART_SUBJECT = 0,
    NOTIFY_PART_TEXT = 1,
    NOTIFY_PART_HTML = 2,
};
#define NOTIFY_PARTS 3

/* The values a template can refer to. Strings are UTF-8, not copied; NULL renders as "". */
struct notify_vars {
    const char *cliente;
    const char *id;
    const char *email;
    const char *endereco;
    const char *datatrasancao;
    bool has_valor;
    double valor;
    const char *upload_id;
    const char *event_id;
    double score;
    const struct tx_reason *reasons;
    size_t nreasons;
};

struct notify_template;

/**
 * Fills v from a decoded transaction.scored (or received) event; v points into ev, which must
 * outlive it. Without a verdict the score is 0 and the list of reasons empty.
 */
void notify_vars_from_event(const struct tx_event *ev, struct notify_vars *v);

/**
 * Parses a template from three NUL-terminated sources (subject, text, html). name is the
 * template name, used with the extensions ".subject", ".txt" and ".html" in error messages.
 * Returns NULL with TX_EINVAL (err->msg: "<name>.<ext>:<line>:<col>: reason") or TX_ENOMEM.
 * A final newline of the subject is dropped. Free with notify_template_destroy. Thread-safe.
 */
struct notify_template *notify_template_create(const char *name, const char *subject,
                                               const char *text, const char *html,
                                               struct tx_err *err);

/**
 * Reads <dir>/<name>.subject, .txt and .html and parses them as notify_template_create does;
 * error messages name the full path of the file. Errors: TX_EINVAL (bad name, parse error, file
 * too big), TX_ENOTFOUND (a file is missing), TX_EIO (a file cannot be read), TX_ENOMEM.
 */
struct notify_template *notify_template_load(const char *dir, const char *name, struct tx_err *err);

/** Frees a template. NULL is a no-op. */
void notify_template_destroy(struct notify_template *t);

/** The template's name. */
const char *notify_template_name(const struct notify_template *t);

/**
 * Appends the rendering of one part for v to out (escaped as the part needs, see above; the
 * subject is also trimmed of surrounding spaces). Returns 0, TX_ETOOBIG past out's limit (out
 * may then hold a partial rendering) or TX_ENOMEM. Thread-safe for concurrent renders of one
 * template (the template is read-only).
 */
int notify_template_render(const struct notify_template *t, enum notify_part part,
                           const struct notify_vars *v, struct tx_buf *out);

/** Appends s HTML-escaped (& < > " ' as entities) to out. 0, TX_ETOOBIG or TX_ENOMEM. */
int notify_html_escape(struct tx_buf *out, const char *s, size_t len);

#endif
