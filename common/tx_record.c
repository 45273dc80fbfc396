#include "common/tx_record.h"

#include "common/tx_record_internal.h"
#include "common/tx_time.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Private part of a batch: the parsed JSON values the records' strings point into. */
struct batch_priv {
    json_t *root;   /* JSON form: the array or object; NULL for NDJSON */
    json_t **lines; /* NDJSON form: one object per record */
    size_t nlines;
    char **dumps; /* compact JSON of each record */
};

/* Text position tracker over a buffer: offsets must be visited in increasing order. */
struct cursor {
    const char *buf;
    size_t off;
    unsigned line;
    unsigned col;
};

static void cursor_init(struct cursor *c, const char *buf)
{
    c->buf = buf;
    c->off = 0;
    c->line = 1;
    c->col = 1;
}

static void cursor_advance(struct cursor *c, size_t to)
{
    while (c->off < to) {
        unsigned char ch = (unsigned char) c->buf[c->off++];

        if (ch == '\n') {
            c->line++;
            c->col = 1;
        }
        else if ((ch & 0xc0) != 0x80) {
            c->col++;
        }
    }
}

size_t tx_utf8_chars(const char *s, size_t len)
{
    size_t i;
    size_t n = 0;

    for (i = 0; i < len; i++)
        n += ((unsigned char) s[i] & 0xc0) != 0x80;
    return n;
}

void tx_parse_limits_default(struct tx_parse_limits *lim)
{
    lim->max_records = 100000;
    lim->max_violations = 1000;
}

/* ---- validation ---------------------------------------------------------------------------- */

struct vlist {
    struct tx_violation *v;
    size_t n;     /* stored */
    size_t cap;   /* storage */
    size_t max;   /* stored at most */
    size_t total; /* counted */
    int oom;
};

static void vlist_add(struct vlist *l, size_t index, unsigned line, const char *field,
                      const char *code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void vlist_add(struct vlist *l, size_t index, unsigned line, const char *field,
                      const char *code, const char *fmt, ...)
{
    struct tx_violation *v;
    va_list ap;

    l->total++;
    if (l->n >= l->max)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 16;
        struct tx_violation *p = realloc(l->v, cap * sizeof(*p));

        if (p == NULL) {
            l->oom = 1;
            return;
        }
        l->v = p;
        l->cap = cap;
    }
    v = &l->v[l->n++];
    memset(v, 0, sizeof(*v));
    v->index = index;
    v->line = line;
    snprintf(v->field, sizeof(v->field), "%s", field);
    snprintf(v->code, sizeof(v->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof(v->message), fmt, ap);
    va_end(ap);
}

/* One JSON value seen through either parser: jansson (uploads) or tx_jdoc (events). */
struct jval {
    enum tx_jtype type; /* TX_JNONE when absent */
    const char *s;      /* strings: NUL-terminated */
    size_t len;
    double num; /* numbers */
};

/* An object to validate: a jansson value, or node `node` of a flat document. */
struct jsrc {
    json_t *obj;
    const struct tx_jdoc *doc;
    uint32_t node;
};

static void jansson_val(json_t *v, struct jval *out)
{
    memset(out, 0, sizeof(*out));
    switch (v == NULL ? -1 : (int) json_typeof(v)) {
    case JSON_OBJECT:
        out->type = TX_JOBJECT;
        break;
    case JSON_ARRAY:
        out->type = TX_JARRAY;
        break;
    case JSON_STRING:
        out->type = TX_JSTRING;
        out->s = json_string_value(v);
        out->len = json_string_length(v);
        break;
    case JSON_INTEGER:
        out->type = TX_JINT;
        out->num = json_number_value(v);
        break;
    case JSON_REAL:
        out->type = TX_JREAL;
        out->num = json_number_value(v);
        break;
    case JSON_TRUE:
        out->type = TX_JTRUE;
        break;
    case JSON_FALSE:
        out->type = TX_JFALSE;
        break;
    case JSON_NULL:
        out->type = TX_JNULL;
        break;
    default:
        out->type = TX_JNONE;
        break;
    }
}

static void jdoc_val(const struct tx_jdoc *d, uint32_t i, struct jval *out)
{
    memset(out, 0, sizeof(*out));
    out->type = tx_jdoc_type(d, i);
    out->s = tx_jdoc_str(d, i, &out->len);
    out->num = tx_jdoc_num(d, i);
}

static void jsrc_self(const struct jsrc *src, struct jval *out)
{
    if (src->doc != NULL)
        jdoc_val(src->doc, src->node, out);
    else
        jansson_val(src->obj, out);
}

static void jsrc_get(const struct jsrc *src, const char *key, struct jval *out)
{
    if (src->doc != NULL)
        jdoc_val(src->doc, tx_jdoc_get(src->doc, src->node, key), out);
    else
        jansson_val(json_object_get(src->obj, key), out);
}

static const char *json_type_name(const struct jval *v)
{
    switch (v->type) {
    case TX_JOBJECT:
        return "an object";
    case TX_JARRAY:
        return "an array";
    case TX_JSTRING:
        return "a string";
    case TX_JINT:
    case TX_JREAL:
        return "a number";
    case TX_JTRUE:
    case TX_JFALSE:
        return "a boolean";
    case TX_JNULL:
        return "null";
    case TX_JNONE:
        break;
    }
    return "unknown";
}

static int id_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("_.:@-", c) != NULL;
}

/* Code point at s (valid UTF-8 from jansson); *n gets its length in bytes. */
static unsigned long utf8_decode(const unsigned char *s, size_t *n)
{
    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }
    if ((s[0] & 0xe0) == 0xc0) {
        *n = 2;
        return ((unsigned long) (s[0] & 0x1f) << 6) | (s[1] & 0x3f);
    }
    if ((s[0] & 0xf0) == 0xe0) {
        *n = 3;
        return ((unsigned long) (s[0] & 0x0f) << 12) | ((unsigned long) (s[1] & 0x3f) << 6) |
               (s[2] & 0x3f);
    }
    *n = 4;
    return ((unsigned long) (s[0] & 0x07) << 18) | ((unsigned long) (s[1] & 0x3f) << 12) |
           ((unsigned long) (s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}

/* Control characters and every Unicode white space (the set of ECMAScript's \s). */
static int is_space_or_ctl(unsigned long cp)
{
    return cp <= 0x20 || cp == 0x7f || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

/* Checks the e-mail rule of §3 beyond length: one '@', no spaces, a dot inside the domain. */
static const char *email_problem(const char *s, size_t len)
{
    const char *at = NULL;
    const char *domain;
    size_t dlen;
    size_t i;

    for (i = 0; i < len;) {
        size_t n;
        unsigned long cp = utf8_decode((const unsigned char *) s + i, &n);

        if (is_space_or_ctl(cp))
            return "must not contain spaces or control characters";
        if (cp == '@') {
            if (at != NULL)
                return "must contain exactly one '@'";
            at = s + i;
        }
        i += n;
    }
    if (at == NULL)
        return "must contain exactly one '@'";
    if (at == s)
        return "must have a local part before '@'";
    domain = at + 1;
    dlen = len - (size_t) (domain - s);
    if (dlen == 0 || memchr(domain, '.', dlen) == NULL)
        return "the domain after '@' must contain a dot";
    if (domain[0] == '.' || domain[dlen - 1] == '.')
        return "the domain must not start or end with a dot";
    return NULL;
}

/* A required string field with a length range; returns the string or NULL after a violation. */
static const char *check_string(const struct jsrc *obj, const char *field, size_t min, size_t max,
                                struct vlist *l, size_t index, unsigned line)
{
    struct jval v;
    const char *s;
    size_t len;
    size_t chars;

    jsrc_get(obj, field, &v);
    if (v.type == TX_JNONE) {
        vlist_add(l, index, line, field, "required", "%s is required", field);
        return NULL;
    }
    if (v.type != TX_JSTRING) {
        vlist_add(l, index, line, field, "type", "%s must be a string, got %s", field,
                  json_type_name(&v));
        return NULL;
    }
    s = v.s;
    len = v.len;
    chars = tx_utf8_chars(s, len);
    if (chars < min || chars > max) {
        vlist_add(l, index, line, field, "length", "%s must be %zu to %zu characters long, got %zu",
                  field, min, max, chars);
        return NULL;
    }
    return s;
}

/*
 * Validates one element; fills rec (pointing into obj) when valid. Returns the number of
 * violations this record added.
 */
static size_t validate_record(const struct jsrc *obj, size_t index, unsigned line,
                              struct tx_record *rec, struct vlist *l)
{
    size_t before = l->total;
    const char *s;
    struct jval v;
    struct tx_time t;
    struct tx_err terr;

    memset(rec, 0, sizeof(*rec));
    rec->index = index;
    rec->line = line;
    jsrc_self(obj, &v);
    if (v.type != TX_JOBJECT) {
        vlist_add(l, index, line, "", "type", "record %zu must be a JSON object, got %s", index,
                  json_type_name(&v));
        return l->total - before;
    }

    s = check_string(obj, "_id", 1, TX_ID_MAX, l, index, line);
    if (s != NULL) {
        size_t i;

        for (i = 0; s[i] != '\0'; i++) {
            if (!id_char_ok((unsigned char) s[i])) {
                vlist_add(l, index, line, "_id", "pattern",
                          "_id may only contain letters, digits and _.:@- (found '%s%c' at "
                          "character %zu)",
                          (unsigned char) s[i] >= 0x80 ? "non-ASCII " : "",
                          (unsigned char) s[i] >= 0x80 ? '?' : s[i], i + 1);
                s = NULL;
                break;
            }
        }
        rec->id = s;
    }

    jsrc_get(obj, "isActive", &v);
    if (v.type == TX_JNONE)
        vlist_add(l, index, line, "isActive", "required", "isActive is required");
    else if (v.type != TX_JTRUE && v.type != TX_JFALSE)
        vlist_add(l, index, line, "isActive", "type", "isActive must be a boolean, got %s",
                  json_type_name(&v));
    else
        rec->is_active = v.type == TX_JTRUE;

    rec->cliente = check_string(obj, "cliente", 1, TX_CLIENTE_MAX, l, index, line);

    s = check_string(obj, "email", TX_EMAIL_MIN, TX_EMAIL_MAX, l, index, line);
    if (s != NULL) {
        const char *why = email_problem(s, strlen(s));

        if (why != NULL) {
            vlist_add(l, index, line, "email", "format", "email %s", why);
            s = NULL;
        }
        rec->email = s;
    }

    rec->endereco = check_string(obj, "endereco", 1, TX_ENDERECO_MAX, l, index, line);

    jsrc_get(obj, "datatrasancao", &v);
    if (v.type == TX_JNONE) {
        vlist_add(l, index, line, "datatrasancao", "required", "datatrasancao is required");
    }
    else if (v.type != TX_JSTRING) {
        vlist_add(l, index, line, "datatrasancao", "type", "datatrasancao must be a string, got %s",
                  json_type_name(&v));
    }
    else if (tx_time_parse(v.s, v.len, &t, &terr) != 0) {
        vlist_add(l, index, line, "datatrasancao", "format",
                  "datatrasancao must be an RFC 3339 date-time or \"YYYY-MM-DDTHH:MM:SS +HH:MM\": "
                  "%s",
                  terr.msg);
    }
    else {
        rec->datatrasancao = v.s;
        rec->ts_ms = tx_time_to_ms(&t);
    }

    jsrc_get(obj, "valor", &v);
    if (v.type != TX_JNONE) {
        if (v.type != TX_JINT && v.type != TX_JREAL) {
            vlist_add(l, index, line, "valor", "type", "valor must be a number, got %s",
                      json_type_name(&v));
        }
        else {
            double d = v.num;

            if (!isfinite(d) || d < 0)
                vlist_add(l, index, line, "valor", "range",
                          "valor must be a finite number >= 0, got %g", d);
            rec->has_valor = true;
            rec->valor = d;
        }
    }
    return l->total - before;
}

size_t tx_record_from_json(json_t *obj, size_t index, unsigned line, struct tx_record *rec,
                           struct tx_violation *v, size_t nmax, size_t *nv)
{
    struct vlist l = { .v = v, .n = *nv, .cap = nmax, .max = nmax };
    struct jsrc src = { .obj = obj };
    size_t found = validate_record(&src, index, line, rec, &l);

    *nv = l.n;
    return found;
}

size_t tx_record_from_jdoc(const struct tx_jdoc *doc, uint32_t node, size_t index, unsigned line,
                           struct tx_record *rec, struct tx_violation *v, size_t nmax, size_t *nv)
{
    struct vlist l = { .v = v, .n = *nv, .cap = nmax, .max = nmax };
    struct jsrc src = { .doc = doc, .node = node };
    size_t found = validate_record(&src, index, line, rec, &l);

    *nv = l.n;
    return found;
}

/* ---- parsing ------------------------------------------------------------------------------- */

/*
 * Refuses nesting deeper than TX_JSON_MAX_DEPTH before jansson sees the text: its parser recurses
 * once per level (about 90 bytes of stack each), and the gateway's CivetWeb worker threads have
 * 100 KiB stacks. Brackets inside strings do not count.
 */
static int depth_check(const char *buf, size_t len, struct tx_err *err)
{
    size_t depth = 0;
    size_t i;
    int in_str = 0;

    for (i = 0; i < len; i++) {
        char c = buf[i];

        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        }
        else if (c == '"') {
            in_str = 1;
        }
        else if (c == '[' || c == '{') {
            if (++depth > TX_JSON_MAX_DEPTH) {
                struct cursor cur;

                cursor_init(&cur, buf);
                cursor_advance(&cur, i);
                if (err != NULL) {
                    tx_err_set(err, TX_ESYNTAX, "nesting deeper than %d levels", TX_JSON_MAX_DEPTH);
                    err->line = cur.line;
                    err->col = cur.col;
                }
                return TX_ESYNTAX;
            }
        }
        else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

int tx_json_load(const char *buf, size_t len, json_t **out, struct tx_err *err)
{
    const size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    json_error_t je;
    const char *nul;
    json_t *v;

    *out = NULL;
    if (depth_check(buf, len, err) != 0)
        return TX_ESYNTAX;
    /* JSON never holds a raw NUL, but jansson 2.14 skips one right after a number or a literal
     * ("[1\0]" loads as [1]): the record text would then carry it into events and storage. */
    nul = memchr(buf, '\0', len);
    if (nul != NULL) {
        struct cursor cur;

        cursor_init(&cur, buf);
        cursor_advance(&cur, (size_t) (nul - buf));
        tx_err_set(err, TX_ESYNTAX, "NUL byte (0x00) is not allowed in JSON");
        if (err != NULL) {
            err->line = cur.line;
            err->col = cur.col;
        }
        return TX_ESYNTAX;
    }
    v = json_loadb(buf, len, flags, &je);
    if (v == NULL && json_error_code(&je) == json_error_numeric_overflow)
        v = json_loadb(buf, len, flags | JSON_DECODE_INT_AS_REAL, &je);
    if (v == NULL) {
        tx_err_set(err, TX_ESYNTAX, "%s", je.text);
        if (err != NULL) {
            err->line = je.line > 0 ? (unsigned) je.line : 1;
            err->col = je.column > 0 ? (unsigned) je.column : 1;
        }
        return TX_ESYNTAX;
    }
    *out = v;
    return 0;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t tx_json_skip_ws(const char *b, size_t len, size_t i)
{
    while (i < len && is_ws(b[i]))
        i++;
    return i;
}

static int ends_scalar(char c)
{
    return c == ',' || c == ']' || c == '}' || is_ws(c);
}

/* Offset just past the JSON value starting at i. Only called on text jansson accepted. */
size_t tx_json_skip_value(const char *b, size_t len, size_t i)
{
    size_t depth = 0;

    do {
        if (i >= len)
            return len;
        if (b[i] == '"') {
            for (i++; i < len && b[i] != '"'; i++) {
                if (b[i] == '\\')
                    i++;
            }
            i++;
        }
        else if (b[i] == '{' || b[i] == '[') {
            depth++;
            i++;
        }
        else if (b[i] == '}' || b[i] == ']') {
            depth--;
            i++;
        }
        else if (depth == 0) {
            while (i < len && !ends_scalar(b[i]))
                i++;
        }
        else {
            i++;
        }
    } while (depth > 0);
    return i;
}

/* Copies JSON text without the whitespace outside strings; NUL-terminated, caller frees. */
char *tx_json_minify(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(n + 1);
    size_t i;
    size_t o = 0;
    int in_str = 0;

    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        char c = s[i];

        if (in_str) {
            out[o++] = c;
            if (c == '\\' && i + 1 < n)
                out[o++] = s[++i];
            else if (c == '"')
                in_str = 0;
        }
        else if (!is_ws(c)) {
            out[o++] = c;
            in_str = c == '"';
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

struct span {
    size_t start;
    size_t end;
};

struct parse_state {
    const char *buf;
    size_t len;
    const struct tx_parse_limits *lim;
    struct tx_batch *b;
    struct batch_priv *p;
    struct vlist l;
    struct span *spans; /* byte span of each record in buf */
    size_t cap;
};

/* Makes room for one more record (records, spans, NDJSON values). */
static int grow(struct parse_state *st, int with_lines)
{
    size_t cap;
    void *np;

    if (st->b->nrecords >= st->lim->max_records)
        return TX_ETOOBIG;
    if (st->b->nrecords < st->cap)
        return 0;
    cap = st->cap != 0 ? st->cap * 2 : 64;
    if (cap > st->lim->max_records)
        cap = st->lim->max_records;
    np = realloc(st->b->records, cap * sizeof(*st->b->records));
    if (np == NULL)
        return TX_ENOMEM;
    st->b->records = np;
    np = realloc(st->spans, cap * sizeof(*st->spans));
    if (np == NULL)
        return TX_ENOMEM;
    st->spans = np;
    if (with_lines) {
        np = realloc(st->p->lines, cap * sizeof(*st->p->lines));
        if (np == NULL)
            return TX_ENOMEM;
        st->p->lines = np;
    }
    st->cap = cap;
    return 0;
}

static void add_record(struct parse_state *st, json_t *v, size_t start, size_t end, unsigned line,
                       unsigned col)
{
    size_t i = st->b->nrecords++;

    validate_record(&(struct jsrc){ .obj = v }, i, line, &st->b->records[i], &st->l);
    st->b->records[i].col = col;
    st->spans[i].start = start;
    st->spans[i].end = end;
}

static int parse_json(struct parse_state *st, struct tx_err *err)
{
    const char *buf = st->buf;
    size_t len = st->len;
    struct cursor cur;
    size_t i;
    size_t n;
    size_t k;
    int rc;

    rc = tx_json_load(buf, len, &st->p->root, err);
    if (rc != 0)
        return rc;
    cursor_init(&cur, buf);
    i = tx_json_skip_ws(buf, len, 0);
    if (!json_is_array(st->p->root)) {
        rc = grow(st, 0);
        if (rc != 0)
            return rc;
        cursor_advance(&cur, i);
        add_record(st, st->p->root, i, tx_json_skip_value(buf, len, i), cur.line, cur.col);
        return 0;
    }
    n = json_array_size(st->p->root);
    if (n == 0) {
        vlist_add(&st->l, 0, 1, "", "empty", "the upload holds no records (empty array)");
        return 0;
    }
    i++; /* past '[' */
    for (k = 0; k < n; k++) {
        size_t end;

        rc = grow(st, 0);
        if (rc != 0)
            return rc;
        i = tx_json_skip_ws(buf, len, i);
        end = tx_json_skip_value(buf, len, i);
        cursor_advance(&cur, i);
        add_record(st, json_array_get(st->p->root, k), i, end, cur.line, cur.col);
        i = tx_json_skip_ws(buf, len, end) + 1; /* past ',' or ']' */
    }
    return 0;
}

static int parse_ndjson(struct parse_state *st, struct tx_err *err)
{
    const char *buf = st->buf;
    size_t len = st->len;
    size_t off = 0;
    unsigned line = 0;
    int rc;

    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t end = nl != NULL ? (size_t) (nl - buf) : len;
        size_t s = tx_json_skip_ws(buf, end, off);
        size_t e = end;
        json_t *v = NULL;

        line++;
        while (e > s && is_ws(buf[e - 1]))
            e--;
        if (s < e) {
            rc = grow(st, 1);
            if (rc != 0)
                return rc;
            rc = tx_json_load(buf + s, e - s, &v, err);
            if (rc != 0) {
                if (err != NULL) {
                    err->col += err->line == 1 ? (unsigned) tx_utf8_chars(buf + off, s - off) : 0;
                    err->line = line + err->line - 1;
                }
                return rc;
            }
            st->p->lines[st->p->nlines++] = v;
            add_record(st, v, s, e, line, (unsigned) tx_utf8_chars(buf + off, s - off) + 1);
        }
        off = end + 1;
    }
    if (st->b->nrecords == 0)
        vlist_add(&st->l, 0, 1, "", "empty", "the upload holds no records");
    return 0;
}

/*
 * AUTO: one value => JSON; several values, the first one on one line => NDJSON.
 * Decided by scanning, not parsing: the parse that follows reports any syntax error.
 */
static enum tx_format detect_format(const char *buf, size_t len)
{
    size_t start = tx_json_skip_ws(buf, len, 0);
    size_t end;

    if (start >= len)
        return TX_FORMAT_JSON;
    end = tx_json_skip_value(buf, len, start);
    if (end >= len || tx_json_skip_ws(buf, len, end) >= len)
        return TX_FORMAT_JSON;
    /* A value spanning lines followed by more text is malformed JSON, not NDJSON. */
    return memchr(buf + start, '\n', end - start) == NULL ? TX_FORMAT_NDJSON : TX_FORMAT_JSON;
}

/* Releases the parsed JSON of a rejected batch: its violations hold copies of what they need. */
static void release_json(struct batch_priv *p)
{
    size_t i;

    for (i = 0; i < p->nlines; i++)
        json_decref(p->lines[i]);
    free(p->lines);
    p->lines = NULL;
    p->nlines = 0;
    json_decref(p->root);
    p->root = NULL;
}

int tx_batch_parse(const char *buf, size_t len, enum tx_format fmt,
                   const struct tx_parse_limits *lim, struct tx_batch **out, struct tx_err *err)
{
    struct tx_parse_limits deflim;
    struct parse_state st;
    struct tx_batch *b = NULL;
    size_t i;
    int rc;

    *out = NULL;
    memset(&st, 0, sizeof(st));
    if (lim == NULL) {
        tx_parse_limits_default(&deflim);
        lim = &deflim;
    }
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        buf += 3; /* a UTF-8 byte order mark is tolerated */
        len -= 3;
    }
    if (tx_json_skip_ws(buf, len, 0) == len) {
        if (err != NULL) {
            err->line = 1;
            err->col = 1;
        }
        return tx_err_set(err, TX_ESYNTAX,
                          "the upload is empty: expected a JSON array, a JSON "
                          "object or NDJSON records");
    }
    b = calloc(1, sizeof(*b));
    st.p = calloc(1, sizeof(*st.p));
    if (b == NULL || st.p == NULL) {
        rc = TX_ENOMEM;
        goto out;
    }
    b->priv = st.p;
    st.b = b;
    st.buf = buf;
    st.len = len;
    st.lim = lim;
    st.l.max = lim->max_violations;
    rc = depth_check(buf, len, err);
    if (rc != 0)
        goto out;
    if (fmt == TX_FORMAT_AUTO)
        fmt = detect_format(buf, len);
    b->format = fmt;
    rc = fmt == TX_FORMAT_NDJSON ? parse_ndjson(&st, err) : parse_json(&st, err);
    if (rc == TX_ETOOBIG)
        tx_err_set(err, rc, "the upload holds more than %zu records", lim->max_records);
    if (rc == 0 && st.l.oom)
        rc = TX_ENOMEM;
    if (rc != 0)
        goto out;

    if (st.l.total > 0) {
        b->violations = st.l.v;
        st.l.v = NULL;
        b->nviolations = st.l.n;
        b->nviolations_total = st.l.total;
        b->nrecords = 0;
        release_json(st.p);
        rc = tx_err_set(err, TX_EINVAL, "%zu validation error(s)", b->nviolations_total);
        *out = b;
        b = NULL;
        goto out;
    }
    st.p->dumps = calloc(b->nrecords, sizeof(*st.p->dumps));
    if (st.p->dumps == NULL) {
        rc = TX_ENOMEM;
        goto out;
    }
    for (i = 0; i < b->nrecords; i++) {
        size_t n;

        st.p->dumps[i] =
            tx_json_minify(buf + st.spans[i].start, st.spans[i].end - st.spans[i].start, &n);
        if (st.p->dumps[i] == NULL) {
            rc = TX_ENOMEM;
            goto out;
        }
        b->records[i].json = st.p->dumps[i];
        b->records[i].json_len = n;
    }
    *out = b;
    b = NULL;
out:
    if (rc == TX_ENOMEM)
        tx_err_set(err, rc, "out of memory while parsing the upload");
    free(st.spans);
    free(st.l.v);
    tx_batch_destroy(b);
    return rc;
}

void tx_batch_destroy(struct tx_batch *b)
{
    struct batch_priv *p;
    size_t i;

    if (b == NULL)
        return;
    p = b->priv;
    if (p != NULL) {
        if (p->dumps != NULL) {
            for (i = 0; i < b->nrecords; i++)
                free(p->dumps[i]);
        }
        free(p->dumps);
        for (i = 0; i < p->nlines; i++)
            json_decref(p->lines[i]);
        free(p->lines);
        json_decref(p->root);
        free(p);
    }
    free(b->records);
    free(b->violations);
    free(b);
}

int tx_record_check(const char *buf, size_t len, struct tx_violation *v, size_t nmax, size_t *nv,
                    struct tx_err *err)
{
    struct tx_record rec;
    json_t *obj = NULL;
    int rc;

    *nv = 0;
    rc = tx_json_load(buf, len, &obj, err);
    if (rc != 0)
        return rc;
    rc = tx_record_from_json(obj, 0, 1, &rec, v, nmax, nv) > 0 ? TX_EINVAL : 0;
    json_decref(obj);
    return rc;
}

int tx_json_member_span(const char *buf, size_t len, const char *key, size_t *start, size_t *end)
{
    size_t klen = strlen(key);
    size_t i = tx_json_skip_ws(buf, len, 0);

    if (i >= len || buf[i] != '{')
        return TX_EINVAL;
    i++;
    for (;;) {
        size_t ks;
        size_t ke;

        i = tx_json_skip_ws(buf, len, i);
        if (i >= len || buf[i] != '"')
            return TX_ENOTFOUND;
        ks = i + 1;
        ke = tx_json_skip_value(buf, len, i) - 1;  /* the closing quote */
        i = tx_json_skip_ws(buf, len, ke + 1) + 1; /* past ':' */
        i = tx_json_skip_ws(buf, len, i);
        if (ke - ks == klen && memcmp(buf + ks, key, klen) == 0) {
            *start = i;
            *end = tx_json_skip_value(buf, len, i);
            return 0;
        }
        i = tx_json_skip_ws(buf, len, tx_json_skip_value(buf, len, i));
        if (i >= len || buf[i] != ',')
            return TX_ENOTFOUND;
        i++;
    }
}
