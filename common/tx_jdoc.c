/* The flat JSON document (see tx_jdoc.h): one pass, no recursion, two allocations. */
#include "common/tx_jdoc.h"

#include "common/tx_record.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Objects with more members than this are checked for duplicate keys by sorting. */
#define DUP_PAIRWISE_MAX 16

size_t tx_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;

    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    }
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    }
    else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, UTF-16 surrogates, beyond U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* The parse in progress. */
struct parser {
    struct tx_jdoc *d;
    const unsigned char *b;
    size_t len;
    size_t i;
    bool ints_as_real; /* an integer did not fit int64 */
    struct tx_err *err;
};

static int fail(struct parser *p, size_t at, const char *why)
{
    return tx_err_set(p->err, TX_ESYNTAX, "JSON syntax error at byte %zu: %s", at, why);
}

static void skip_ws(struct parser *p)
{
    while (p->i < p->len &&
           (p->b[p->i] == ' ' || p->b[p->i] == '\n' || p->b[p->i] == '\r' || p->b[p->i] == '\t'))
        p->i++;
}

static int new_node(struct parser *p, enum tx_jtype type, uint32_t *out)
{
    struct tx_jdoc *d = p->d;
    struct tx_jnode *nd;

    if (d->n == d->cap) {
        uint32_t cap = d->cap < 32 ? 32 : d->cap * 2;
        struct tx_jnode *grown = realloc(d->nodes, (size_t) cap * sizeof(*grown));

        if (grown == NULL)
            return tx_err_set(p->err, TX_ENOMEM, "out of memory");
        d->nodes = grown;
        d->cap = cap;
    }
    *out = d->n++;
    nd = &d->nodes[*out];
    memset(nd, 0, sizeof(*nd));
    nd->type = (uint8_t) type;
    nd->start = (uint32_t) p->i;
    return 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at b[i]; -1 when they are not. */
static long hex4(const struct parser *p, size_t i)
{
    long v = 0;

    if (p->len - i < 4)
        return -1;
    for (size_t k = 0; k < 4; k++) {
        int h = hexval(p->b[i + k]);

        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char) (0xc0 | (cp >> 6));
        o[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char) (0xe0 | (cp >> 12));
        o[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char) (0xf0 | (cp >> 18));
    o[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}

/* The escape at b[i] (the backslash); writes its bytes at o. Returns the bytes consumed or 0. */
static size_t escape(struct parser *p, size_t i, char *o, size_t *olen)
{
    unsigned char c;
    long hi;
    long lo;

    if (i + 1 >= p->len)
        return 0;
    c = p->b[i + 1];
    *olen = 1;
    switch (c) {
    case '"':
    case '\\':
    case '/':
        o[0] = (char) c;
        return 2;
    case 'b':
        o[0] = '\b';
        return 2;
    case 'f':
        o[0] = '\f';
        return 2;
    case 'n':
        o[0] = '\n';
        return 2;
    case 'r':
        o[0] = '\r';
        return 2;
    case 't':
        o[0] = '\t';
        return 2;
    case 'u':
        break;
    default:
        return 0;
    }
    hi = hex4(p, i + 2);
    if (hi <= 0 || (hi >= 0xdc00 && hi <= 0xdfff))
        return 0; /* bad hex, \u0000, or a lone low surrogate */
    if (hi < 0xd800 || hi > 0xdbff) {
        *olen = put_utf8(o, (unsigned long) hi);
        return 6;
    }
    if (i + 7 >= p->len || p->b[i + 6] != '\\' || p->b[i + 7] != 'u')
        return 0;
    lo = hex4(p, i + 8);
    if (lo < 0xdc00 || lo > 0xdfff)
        return 0;
    *olen = put_utf8(o, 0x10000 + (((unsigned long) hi - 0xd800) << 10) +
                            ((unsigned long) lo - 0xdc00));
    return 12;
}

/* The string starting at b[i] ('"') into node out (its text decoded into the arena). */
static int parse_string(struct parser *p, uint32_t *out)
{
    struct tx_jdoc *d = p->d;
    char *o = d->arena + d->arena_len;
    size_t i = p->i + 1;
    size_t olen = 0;
    int rc;

    rc = new_node(p, TX_JSTRING, out);
    if (rc != 0)
        return rc;
    for (;;) {
        size_t run = i;
        unsigned char c;

        while (run < p->len && p->b[run] >= 0x20 && p->b[run] < 0x80 && p->b[run] != '"' &&
               p->b[run] != '\\')
            run++;
        memcpy(o + olen, p->b + i, run - i);
        olen += run - i;
        i = run;
        if (i >= p->len)
            return fail(p, p->i, "unterminated string");
        c = p->b[i];
        if (c == '"')
            break;
        if (c == '\\') {
            size_t n;
            size_t w;

            n = escape(p, i, o + olen, &w);
            if (n == 0)
                return fail(p, i, "invalid escape, \\u0000 or lone surrogate in a string");
            olen += w;
            i += n;
        }
        else if (c < 0x20) {
            return fail(p, i, "control character in a string");
        }
        else {
            size_t n = tx_utf8_seq(p->b + i, p->len - i);

            if (n == 0)
                return fail(p, i, "invalid UTF-8 in a string");
            memcpy(o + olen, p->b + i, n);
            olen += n;
            i += n;
        }
    }
    o[olen] = '\0';
    d->nodes[*out].str = (uint32_t) d->arena_len;
    d->nodes[*out].len = (uint32_t) olen;
    d->arena_len += olen + 1;
    p->i = i + 1;
    d->nodes[*out].end = (uint32_t) p->i;
    d->nodes[*out].next = d->n;
    return 0;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* strtod of b[start, end), which is a JSON number. */
static double text_to_double(const struct parser *p, size_t start, size_t end, bool *overflow)
{
    char small[64];
    char *t = small;
    double v;

    if (end - start >= sizeof(small)) {
        t = malloc(end - start + 1);
        if (t == NULL) {
            *overflow = false;
            return NAN;
        }
    }
    memcpy(t, p->b + start, end - start);
    t[end - start] = '\0';
    errno = 0;
    v = strtod(t, NULL);
    *overflow = errno == ERANGE && isinf(v);
    if (t != small)
        free(t);
    return v;
}

static int parse_number(struct parser *p, uint32_t *out)
{
    size_t start = p->i;
    size_t i = start;
    bool neg = false;
    bool real = false;
    bool overflow = false;
    unsigned long long mag = 0;
    struct tx_jnode *nd;
    int rc;

    if (p->b[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= p->len || !is_digit(p->b[i]))
        return fail(p, start, "invalid number");
    if (p->b[i] == '0') {
        i++;
    }
    else {
        while (i < p->len && is_digit(p->b[i])) {
            unsigned digit = p->b[i] - '0';

            if (mag > (ULLONG_MAX - digit) / 10)
                overflow = true;
            else
                mag = mag * 10 + digit;
            i++;
        }
    }
    if (i < p->len && p->b[i] == '.') {
        i++;
        if (i >= p->len || !is_digit(p->b[i]))
            return fail(p, start, "invalid number");
        while (i < p->len && is_digit(p->b[i]))
            i++;
        real = true;
    }
    if (i < p->len && (p->b[i] == 'e' || p->b[i] == 'E')) {
        i++;
        if (i < p->len && (p->b[i] == '+' || p->b[i] == '-'))
            i++;
        if (i >= p->len || !is_digit(p->b[i]))
            return fail(p, start, "invalid number");
        while (i < p->len && is_digit(p->b[i]))
            i++;
        real = true;
    }
    rc = new_node(p, real ? TX_JREAL : TX_JINT, out);
    if (rc != 0)
        return rc;
    nd = &p->d->nodes[*out];
    if (!real && !overflow &&
        (neg ? mag <= (unsigned long long) LLONG_MAX + 1ULL
             : mag <= (unsigned long long) LLONG_MAX)) {
        nd->num.i =
            neg ? (mag == (unsigned long long) LLONG_MAX + 1ULL ? LLONG_MIN : -(long long) mag)
                : (long long) mag;
    }
    else {
        bool inf = false;

        if (!real)
            p->ints_as_real = true;
        nd->type = TX_JREAL;
        nd->num.d = text_to_double(p, start, i, &inf);
        if (isnan(nd->num.d))
            return tx_err_set(p->err, TX_ENOMEM, "out of memory");
        if (inf)
            return fail(p, start, "real number overflow");
    }
    p->i = i;
    nd->end = (uint32_t) i;
    nd->next = p->d->n;
    return 0;
}

static int parse_literal(struct parser *p, uint32_t *out)
{
    static const struct {
        const char *text;
        size_t len;
        enum tx_jtype type;
    } lits[] = { { "true", 4, TX_JTRUE }, { "false", 5, TX_JFALSE }, { "null", 4, TX_JNULL } };

    for (size_t k = 0; k < sizeof(lits) / sizeof(lits[0]); k++) {
        int rc;

        if (p->len - p->i < lits[k].len || memcmp(p->b + p->i, lits[k].text, lits[k].len) != 0)
            continue;
        rc = new_node(p, lits[k].type, out);
        if (rc != 0)
            return rc;
        p->i += lits[k].len;
        p->d->nodes[*out].end = (uint32_t) p->i;
        p->d->nodes[*out].next = p->d->n;
        return 0;
    }
    return fail(p, p->i, "invalid token");
}

/* A key for the duplicate check. */
struct keyref {
    const char *s;
    uint32_t len;
};

static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a;
    const struct keyref *y = b;

    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->s, y->s, x->len);
}

/* Refuses an object (node obj, complete) whose keys repeat. */
static int check_duplicates(struct parser *p, uint32_t obj)
{
    const struct tx_jdoc *d = p->d;
    uint32_t count = d->nodes[obj].count;
    struct keyref *keys = NULL;
    uint32_t k = obj + 1;
    int rc = 0;

    if (count < 2)
        return 0;
    if (count <= DUP_PAIRWISE_MAX) {
        struct keyref small[DUP_PAIRWISE_MAX];

        for (uint32_t m = 0; m < count; m++) {
            small[m].s = d->arena + d->nodes[k].str;
            small[m].len = d->nodes[k].len;
            for (uint32_t j = 0; j < m; j++) {
                if (keyref_cmp(&small[j], &small[m]) == 0)
                    return fail(p, d->nodes[k].start, "duplicate object key");
            }
            k = d->nodes[k + 1].next;
        }
        return 0;
    }
    keys = malloc((size_t) count * sizeof(*keys));
    if (keys == NULL)
        return tx_err_set(p->err, TX_ENOMEM, "out of memory");
    for (uint32_t m = 0; m < count; m++) {
        keys[m].s = d->arena + d->nodes[k].str;
        keys[m].len = d->nodes[k].len;
        k = d->nodes[k + 1].next;
    }
    qsort(keys, count, sizeof(*keys), keyref_cmp);
    for (uint32_t m = 1; m < count && rc == 0; m++) {
        if (keyref_cmp(&keys[m - 1], &keys[m]) == 0)
            rc = fail(p, d->nodes[obj].start, "duplicate object key");
    }
    free(keys);
    return rc;
}

/* After a member's key: the ':' and the whitespace around it. */
static int parse_key(struct parser *p)
{
    uint32_t key;
    int rc;

    skip_ws(p);
    if (p->i >= p->len || p->b[p->i] != '"')
        return fail(p, p->i, "object key expected");
    rc = parse_string(p, &key);
    if (rc != 0)
        return rc;
    skip_ws(p);
    if (p->i >= p->len || p->b[p->i] != ':')
        return fail(p, p->i, "':' expected");
    p->i++;
    return 0;
}

static int parse(struct parser *p)
{
    uint32_t stack[TX_JSON_MAX_DEPTH];
    unsigned depth = 0;
    int rc;

    for (;;) {
        uint32_t node;
        unsigned char c;

        /* A value. */
        skip_ws(p);
        if (p->i >= p->len)
            return fail(p, p->i, "unexpected end of the text");
        c = p->b[p->i];
        if (c == '{' || c == '[') {
            if (depth == TX_JSON_MAX_DEPTH)
                return fail(p, p->i, "nesting deeper than 128 levels");
            rc = new_node(p, c == '{' ? TX_JOBJECT : TX_JARRAY, &node);
            if (rc != 0)
                return rc;
            stack[depth++] = node;
            p->i++;
            skip_ws(p);
            if (p->i < p->len && p->b[p->i] == (c == '{' ? '}' : ']')) {
                p->i++;
                p->d->nodes[node].end = (uint32_t) p->i;
                p->d->nodes[node].next = p->d->n;
                depth--;
            }
            else {
                if (c == '{') {
                    rc = parse_key(p);
                    if (rc != 0)
                        return rc;
                }
                continue;
            }
        }
        else if (c == '"') {
            rc = parse_string(p, &node);
        }
        else if (c == '-' || is_digit(c)) {
            rc = parse_number(p, &node);
        }
        else {
            rc = parse_literal(p, &node);
        }
        if (rc != 0)
            return rc;

        /* After a value: close containers, or go on to the next element or member. */
        for (;;) {
            struct tx_jnode *top;
            bool is_obj;

            skip_ws(p);
            if (depth == 0) {
                if (p->i != p->len)
                    return fail(p, p->i, "end of the text expected");
                return 0;
            }
            top = &p->d->nodes[stack[depth - 1]];
            is_obj = top->type == TX_JOBJECT;
            top->count++;
            if (p->i < p->len && p->b[p->i] == ',') {
                p->i++;
                if (is_obj) {
                    rc = parse_key(p);
                    if (rc != 0)
                        return rc;
                }
                break;
            }
            if (p->i < p->len && p->b[p->i] == (is_obj ? '}' : ']')) {
                p->i++;
                top->end = (uint32_t) p->i;
                top->next = p->d->n;
                depth--;
                if (is_obj) {
                    rc = check_duplicates(p, stack[depth]);
                    if (rc != 0)
                        return rc;
                }
                continue; /* the closed container is a value of its parent */
            }
            return fail(p, p->i, is_obj ? "',' or '}' expected" : "',' or ']' expected");
        }
    }
}

int tx_jdoc_parse(struct tx_jdoc *d, const char *buf, size_t len, struct tx_err *err)
{
    struct parser p = { .d = d, .b = (const unsigned char *) buf, .len = len, .err = err };
    int rc;

    memset(d, 0, sizeof(*d));
    if (len >= (size_t) INT32_MAX)
        return tx_err_set(err, TX_ETOOBIG, "JSON text of %zu bytes is too large", len);
    if (memchr(buf, '\0', len) != NULL)
        return fail(&p, (size_t) ((const char *) memchr(buf, '\0', len) - buf),
                    "NUL byte (0x00) is not allowed in JSON");
    /* Every decoded string is shorter than its quoted source, NUL included. */
    d->arena = malloc(len + 1);
    if (d->arena == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    rc = parse(&p);
    if (rc == 0 && p.ints_as_real) {
        for (uint32_t k = 0; k < d->n; k++) {
            if (d->nodes[k].type == TX_JINT) {
                d->nodes[k].type = TX_JREAL;
                d->nodes[k].num.d = (double) d->nodes[k].num.i;
            }
        }
    }
out:
    if (rc != 0)
        tx_jdoc_cleanup(d);
    return rc;
}

void tx_jdoc_cleanup(struct tx_jdoc *d)
{
    free(d->nodes);
    free(d->arena);
    memset(d, 0, sizeof(*d));
}

uint32_t tx_jdoc_get(const struct tx_jdoc *d, uint32_t obj, const char *key)
{
    size_t klen = strlen(key);
    uint32_t k;

    if (obj >= d->n || d->nodes[obj].type != TX_JOBJECT)
        return TX_JDOC_NONE;
    k = obj + 1;
    for (uint32_t m = 0; m < d->nodes[obj].count; m++) {
        if (d->nodes[k].len == klen && memcmp(d->arena + d->nodes[k].str, key, klen) == 0)
            return k + 1;
        k = d->nodes[k + 1].next;
    }
    return TX_JDOC_NONE;
}

enum tx_jtype tx_jdoc_type(const struct tx_jdoc *d, uint32_t i)
{
    return i < d->n ? (enum tx_jtype) d->nodes[i].type : TX_JNONE;
}

const char *tx_jdoc_str(const struct tx_jdoc *d, uint32_t i, size_t *len)
{
    if (i >= d->n || d->nodes[i].type != TX_JSTRING)
        return NULL;
    if (len != NULL)
        *len = d->nodes[i].len;
    return d->arena + d->nodes[i].str;
}

double tx_jdoc_num(const struct tx_jdoc *d, uint32_t i)
{
    if (i >= d->n)
        return 0;
    if (d->nodes[i].type == TX_JINT)
        return (double) d->nodes[i].num.i;
    if (d->nodes[i].type == TX_JREAL)
        return d->nodes[i].num.d;
    return 0;
}
