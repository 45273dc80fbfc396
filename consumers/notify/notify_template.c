#include "consumers/notify/notify_template.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum var {
    VAR_CLIENTE,
    VAR_ID,
    VAR_EMAIL,
    VAR_ENDERECO,
    VAR_DATA,
    VAR_VALOR,
    VAR_UPLOAD_ID,
    VAR_EVENT_ID,
    VAR_SCORE,
    VAR_REASONS,
    NVARS
};

static const char *const var_names[NVARS] = {
    [VAR_CLIENTE] = "cliente",     [VAR_ID] = "_id",
    [VAR_EMAIL] = "email",         [VAR_ENDERECO] = "endereco",
    [VAR_DATA] = "datatrasancao",  [VAR_VALOR] = "valor",
    [VAR_UPLOAD_ID] = "upload_id", [VAR_EVENT_ID] = "event_id",
    [VAR_SCORE] = "score",         [VAR_REASONS] = "reasons",
};

static const char *const part_ext[NOTIFY_PARTS] = { "subject", "txt", "html" };

/* A piece of a part: literal text of the source, or a placeholder. */
struct seg {
    int var; /* enum var, or -1 for literal text */
    size_t off;
    size_t len;
};

struct part {
    char *src;
    size_t len;
    struct seg *segs;
    size_t nsegs;
};

struct notify_template {
    char name[NOTIFY_TEMPLATE_NAME_MAX + 1];
    struct part parts[NOTIFY_PARTS];
};

void notify_vars_from_event(const struct tx_event *ev, struct notify_vars *v)
{
    memset(v, 0, sizeof(*v));
    v->cliente = ev->record.cliente;
    v->id = ev->record.id;
    v->email = ev->record.email;
    v->endereco = ev->record.endereco;
    v->datatrasancao = ev->record.datatrasancao;
    v->has_valor = ev->record.has_valor;
    v->valor = ev->record.valor;
    v->upload_id = ev->upload_id;
    v->event_id = ev->event_id;
    if (ev->has_verdict) {
        v->score = ev->verdict.score;
        v->reasons = ev->verdict.reasons;
        v->nreasons = ev->verdict.nreasons;
    }
}

/* ---- UTF-8 ---------------------------------------------------------------------------------- */

/*
 * Decodes one code point of s[0..len) (len > 0). Returns its byte length, or 0 for an invalid
 * sequence (overlong forms, surrogates and values above U+10FFFF included).
 */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t n;
    size_t i;
    uint32_t c = s[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        c &= 0x1f;
    }
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        c &= 0x0f;
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        c &= 0x07;
    }
    else {
        return 0;
    }
    if (len < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* Line and column (1-based, column in code points) of byte offset off of s. */
static void position(const char *s, size_t off, unsigned *line, unsigned *col)
{
    size_t i = 0;
    uint32_t cp;

    *line = 1;
    *col = 1;
    while (i < off) {
        size_t n = utf8_next((const unsigned char *) s + i, off - i, &cp);

        if (n == 0)
            n = 1;
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        }
        else {
            (*col)++;
        }
        i += n;
    }
}

/* ---- parsing -------------------------------------------------------------------------------- */

static int fail_at(struct tx_err *err, const char *origin, const char *src, size_t off,
                   const char *what)
{
    unsigned line;
    unsigned col;

    position(src, off, &line, &col);
    return tx_err_set(err, TX_EINVAL, "%s:%u:%u: %s", origin, line, col, what);
}

static int add_seg(struct part *p, size_t *cap, int var, size_t off, size_t len)
{
    if (var < 0 && len == 0)
        return 0;
    if (p->nsegs == *cap) {
        size_t ncap = *cap != 0 ? *cap * 2 : 8;
        struct seg *n = realloc(p->segs, ncap * sizeof(*n));

        if (n == NULL)
            return TX_ENOMEM;
        p->segs = n;
        *cap = ncap;
    }
    p->segs[p->nsegs].var = var;
    p->segs[p->nsegs].off = off;
    p->segs[p->nsegs].len = len;
    p->nsegs++;
    return 0;
}

static int lookup_var(const char *name, size_t len)
{
    int i;

    for (i = 0; i < NVARS; i++) {
        if (strlen(var_names[i]) == len && memcmp(var_names[i], name, len) == 0)
            return i;
    }
    return -1;
}

/* Parses src (len bytes, NUL-terminated, copied) into p; origin names the file in errors. */
static int parse_part(const char *origin, const char *src, size_t len, bool subject, struct part *p,
                      struct tx_err *err)
{
    size_t cap = 0;
    size_t i;
    size_t lit;
    uint32_t cp;
    int rc;

    for (i = 0; i < len;) {
        size_t n = utf8_next((const unsigned char *) src + i, len - i, &cp);

        if (n == 0 || cp == 0)
            return fail_at(err, origin, src, i, "not valid UTF-8 text");
        i += n;
    }
    if (subject) {
        if (len > 0 && src[len - 1] == '\n')
            len--;
        if (len > 0 && src[len - 1] == '\r')
            len--;
        for (i = 0; i < len; i++) {
            if (src[i] == '\n' || src[i] == '\r')
                return fail_at(err, origin, src, i, "a subject must be a single line");
        }
        if (len == 0)
            return tx_err_set(err, TX_EINVAL, "%s: the subject is empty", origin);
    }
    p->src = malloc(len + 1);
    if (p->src == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    memcpy(p->src, src, len);
    p->src[len] = '\0';
    p->len = len;

    lit = 0;
    for (i = 0; i + 1 < len;) {
        const char *close;
        size_t a;
        size_t b;
        int var;

        if (p->src[i] != '{' || p->src[i + 1] != '{') {
            i++;
            continue;
        }
        rc = add_seg(p, &cap, -1, lit, i - lit);
        if (rc != 0)
            return tx_err_set(err, rc, "out of memory");
        close = strstr(p->src + i + 2, "}}");
        if (close == NULL)
            return fail_at(err, origin, p->src, i, "unterminated placeholder (no \"}}\")");
        a = i + 2;
        b = (size_t) (close - p->src);
        while (a < b && (p->src[a] == ' ' || p->src[a] == '\t'))
            a++;
        while (b > a && (p->src[b - 1] == ' ' || p->src[b - 1] == '\t'))
            b--;
        if (a == b)
            return fail_at(err, origin, p->src, i, "empty placeholder \"{{}}\"");
        var = lookup_var(p->src + a, b - a);
        if (var < 0) {
            char what[200];

            snprintf(what, sizeof(what),
                     "unknown placeholder {{%.*s}} (known: cliente, _id, email, endereco, "
                     "datatrasancao, valor, upload_id, event_id, score, reasons)",
                     (int) (b - a > 40 ? 40 : b - a), p->src + a);
            return fail_at(err, origin, p->src, i, what);
        }
        rc = add_seg(p, &cap, var, 0, 0);
        if (rc != 0)
            return tx_err_set(err, rc, "out of memory");
        i = (size_t) (close - p->src) + 2;
        lit = i;
    }
    rc = add_seg(p, &cap, -1, lit, len - lit);
    if (rc != 0)
        return tx_err_set(err, rc, "out of memory");
    return 0;
}

static int name_ok(const char *name)
{
    size_t i;
    size_t n = strlen(name);

    if (n == 0 || n > NOTIFY_TEMPLATE_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* Parses the three sources; origins[i] names each in error messages. */
static struct notify_template *build(const char *name, const char *const src[NOTIFY_PARTS],
                                     const size_t len[NOTIFY_PARTS],
                                     const char *const origins[NOTIFY_PARTS], struct tx_err *err)
{
    struct notify_template *t = NULL;
    struct notify_template *ret = NULL;
    int i;

    if (!name_ok(name)) {
        tx_err_set(err, TX_EINVAL, "template name \"%.64s\" must be 1 to %d of [a-z0-9_]", name,
                   NOTIFY_TEMPLATE_NAME_MAX);
        goto out;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(t->name, sizeof(t->name), "%s", name);
    for (i = 0; i < NOTIFY_PARTS; i++) {
        if (parse_part(origins[i], src[i], len[i], i == NOTIFY_PART_SUBJECT, &t->parts[i], err) !=
            0)
            goto out;
    }
    ret = t;
    t = NULL;
out:
    notify_template_destroy(t);
    return ret;
}

struct notify_template *notify_template_create(const char *name, const char *subject,
                                               const char *text, const char *html,
                                               struct tx_err *err)
{
    const char *src[NOTIFY_PARTS] = { subject, text, html };
    size_t len[NOTIFY_PARTS];
    char origins[NOTIFY_PARTS][NOTIFY_TEMPLATE_NAME_MAX + 16];
    const char *op[NOTIFY_PARTS];
    int i;

    for (i = 0; i < NOTIFY_PARTS; i++) {
        if (src[i] == NULL) {
            tx_err_set(err, TX_EINVAL, "template %.64s: part %s missing", name, part_ext[i]);
            return NULL;
        }
        len[i] = strlen(src[i]);
        snprintf(origins[i], sizeof(origins[i]), "%.*s.%s", NOTIFY_TEMPLATE_NAME_MAX, name,
                 part_ext[i]);
        op[i] = origins[i];
    }
    return build(name, src, len, op, err);
}

/* Reads a whole file of at most NOTIFY_TEMPLATE_MAX_BYTES into a malloc'd, NUL-terminated
 * buffer. */
static int read_file(const char *path, char **out, size_t *outlen, struct tx_err *err)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t n;
    int rc = 0;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;

        rc = tx_err_set(err, e == ENOENT ? TX_ENOTFOUND : TX_EIO, "template %s: cannot open: %s",
                        path, strerror(e));
        goto out;
    }
    buf = malloc(NOTIFY_TEMPLATE_MAX_BYTES + 2);
    if (buf == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    n = fread(buf, 1, NOTIFY_TEMPLATE_MAX_BYTES + 1, f);
    if (ferror(f)) {
        rc = tx_err_set(err, TX_EIO, "template %s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (n > NOTIFY_TEMPLATE_MAX_BYTES) {
        rc = tx_err_set(err, TX_EINVAL, "template %s: larger than %d bytes", path,
                        NOTIFY_TEMPLATE_MAX_BYTES);
        goto out;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        rc = tx_err_set(err, TX_EINVAL, "template %s: contains a NUL byte", path);
        goto out;
    }
    *out = buf;
    *outlen = n;
    buf = NULL;
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return rc;
}

struct notify_template *notify_template_load(const char *dir, const char *name, struct tx_err *err)
{
    char *src[NOTIFY_PARTS] = { NULL, NULL, NULL };
    const char *csrc[NOTIFY_PARTS];
    size_t len[NOTIFY_PARTS] = { 0, 0, 0 };
    char paths[NOTIFY_PARTS][4096];
    const char *op[NOTIFY_PARTS];
    struct notify_template *t = NULL;
    int i;

    if (!name_ok(name)) {
        tx_err_set(err, TX_EINVAL, "template name \"%.64s\" must be 1 to %d of [a-z0-9_]", name,
                   NOTIFY_TEMPLATE_NAME_MAX);
        return NULL;
    }
    for (i = 0; i < NOTIFY_PARTS; i++) {
        int n = snprintf(paths[i], sizeof(paths[i]), "%s/%s.%s", dir, name, part_ext[i]);

        if (n < 0 || (size_t) n >= sizeof(paths[i])) {
            tx_err_set(err, TX_EINVAL, "template directory path too long");
            goto out;
        }
        op[i] = paths[i];
        if (read_file(paths[i], &src[i], &len[i], err) != 0)
            goto out;
        csrc[i] = src[i];
    }
    t = build(name, csrc, len, op, err);
out:
    for (i = 0; i < NOTIFY_PARTS; i++)
        free(src[i]);
    return t;
}

void notify_template_destroy(struct notify_template *t)
{
    int i;

    if (t == NULL)
        return;
    for (i = 0; i < NOTIFY_PARTS; i++) {
        free(t->parts[i].src);
        free(t->parts[i].segs);
    }
    free(t);
}

const char *notify_template_name(const struct notify_template *t)
{
    return t->name;
}

/* ---- rendering ------------------------------------------------------------------------------ */

int notify_html_escape(struct tx_buf *out, const char *s, size_t len)
{
    size_t i;
    size_t start = 0;
    int rc = 0;

    for (i = 0; i < len && rc == 0; i++) {
        const char *ent;

        switch (s[i]) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            continue;
        }
        rc = tx_buf_append(out, s + start, i - start);
        if (rc == 0)
            rc = tx_buf_puts(out, ent);
        start = i + 1;
    }
    if (rc == 0)
        rc = tx_buf_append(out, s + start, len - start);
    return rc;
}

/* Appends s with control characters and line/paragraph separators turned into spaces (and an
 * invalid byte into U+FFFD). */
static int header_safe(struct tx_buf *out, const char *s, size_t len)
{
    size_t i = 0;
    uint32_t cp;
    int rc = 0;

    while (i < len && rc == 0) {
        size_t n = utf8_next((const unsigned char *) s + i, len - i, &cp);

        if (n == 0) {
            rc = tx_buf_puts(out, "\xef\xbf\xbd");
            n = 1;
        }
        else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 ||
                 cp == 0x2029) {
            rc = tx_buf_puts(out, " ");
        }
        else {
            rc = tx_buf_append(out, s + i, n);
        }
        i += n;
    }
    return rc;
}

static int put_value(struct tx_buf *out, enum notify_part part, const char *s)
{
    size_t len;

    if (s == NULL)
        return 0;
    len = strlen(s);
    switch (part) {
    case NOTIFY_PART_SUBJECT:
        return header_safe(out, s, len);
    case NOTIFY_PART_HTML:
        return notify_html_escape(out, s, len);
    case NOTIFY_PART_TEXT:
        break;
    }
    return tx_buf_append(out, s, len);
}

static int put_reasons(struct tx_buf *out, enum notify_part part, const struct notify_vars *v)
{
    size_t i;
    int rc = 0;

    if (v->nreasons == 0)
        return part == NOTIFY_PART_HTML ? 0 : tx_buf_puts(out, "-");
    if (part == NOTIFY_PART_HTML)
        rc = tx_buf_puts(out, "<ul>");
    for (i = 0; i < v->nreasons && rc == 0; i++) {
        const struct tx_reason *r = &v->reasons[i];

        switch (part) {
        case NOTIFY_PART_SUBJECT:
            if (i > 0)
                rc = tx_buf_puts(out, ", ");
            if (rc == 0)
                rc = put_value(out, part, r->code);
            break;
        case NOTIFY_PART_TEXT:
            rc = tx_buf_puts(out, i > 0 ? "\n- " : "- ");
            if (rc == 0)
                rc = put_value(out, part, r->code);
            if (rc == 0 && r->detail[0] != '\0') {
                rc = tx_buf_puts(out, ": ");
                if (rc == 0)
                    rc = put_value(out, part, r->detail);
            }
            break;
        case NOTIFY_PART_HTML:
            rc = tx_buf_puts(out, "<li><strong>");
            if (rc == 0)
                rc = put_value(out, part, r->code);
            if (rc == 0)
                rc = tx_buf_puts(out, "</strong>");
            if (rc == 0 && r->detail[0] != '\0') {
                rc = tx_buf_puts(out, ": ");
                if (rc == 0)
                    rc = put_value(out, part, r->detail);
            }
            if (rc == 0)
                rc = tx_buf_puts(out, "</li>");
            break;
        }
    }
    if (rc == 0 && part == NOTIFY_PART_HTML)
        rc = tx_buf_puts(out, "</ul>");
    return rc;
}

static int put_var(struct tx_buf *out, enum notify_part part, int var, const struct notify_vars *v)
{
    char num[64];

    switch ((enum var) var) {
    case VAR_CLIENTE:
        return put_value(out, part, v->cliente);
    case VAR_ID:
        return put_value(out, part, v->id);
    case VAR_EMAIL:
        return put_value(out, part, v->email);
    case VAR_ENDERECO:
        return put_value(out, part, v->endereco);
    case VAR_DATA:
        return put_value(out, part, v->datatrasancao);
    case VAR_VALOR:
        if (!v->has_valor)
            return tx_buf_puts(out, "-");
        snprintf(num, sizeof(num), "%.2f", v->valor);
        return tx_buf_puts(out, num);
    case VAR_UPLOAD_ID:
        return put_value(out, part, v->upload_id);
    case VAR_EVENT_ID:
        return put_value(out, part, v->event_id);
    case VAR_SCORE:
        snprintf(num, sizeof(num), "%g", v->score);
        return tx_buf_puts(out, num);
    case VAR_REASONS:
        return put_reasons(out, part, v);
    case NVARS:
        break;
    }
    return TX_EINVAL;
}

/* Drops the spaces at both ends of out->data[start..len). */
static void trim_from(struct tx_buf *out, size_t start)
{
    size_t a = start;
    size_t b = out->len;

    while (a < b && out->data[a] == ' ')
        a++;
    while (b > a && out->data[b - 1] == ' ')
        b--;
    if (out->data == NULL)
        return;
    memmove(out->data + start, out->data + a, b - a);
    out->len = start + (b - a);
    out->data[out->len] = '\0';
}

int notify_template_render(const struct notify_template *t, enum notify_part part,
                           const struct notify_vars *v, struct tx_buf *out)
{
    const struct part *p;
    size_t start = out->len;
    size_t i;
    int rc = 0;

    if (part < NOTIFY_PART_SUBJECT || part > NOTIFY_PART_HTML)
        return TX_EINVAL;
    p = &t->parts[part];
    for (i = 0; i < p->nsegs && rc == 0; i++) {
        const struct seg *s = &p->segs[i];

        if (s->var < 0 && part == NOTIFY_PART_SUBJECT)
            rc = header_safe(out, p->src + s->off, s->len);
        else if (s->var < 0)
            rc = tx_buf_append(out, p->src + s->off, s->len);
        else
            rc = put_var(out, part, s->var, v);
    }
    if (rc == 0 && part == NOTIFY_PART_SUBJECT)
        trim_from(out, start);
    return rc;
}
