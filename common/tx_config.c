#include "common/tx_config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest key accepted (KEY_FILE must fit in a fixed buffer). */
#define KEY_MAX 120
/* Longest value or path quoted in an error message. */
#define SHOW_MAX 64

struct unit {
    const char *name;
    long long mult;
};

static const struct unit size_units[] = {
    { "", 1 },
    { "b", 1 },
    { "k", 1LL << 10 },
    { "kib", 1LL << 10 },
    { "kb", 1000LL },
    { "m", 1LL << 20 },
    { "mib", 1LL << 20 },
    { "mb", 1000000LL },
    { "g", 1LL << 30 },
    { "gib", 1LL << 30 },
    { "gb", 1000000000LL },
    { "t", 1LL << 40 },
    { "tib", 1LL << 40 },
    { "tb", 1000000000000LL },
    { NULL, 0 },
};

static const struct unit ms_units[] = {
    { "", 1 },        { "ms", 1 },        { "s", 1000 },       { "m", 60000 },
    { "min", 60000 }, { "h", 3600000LL }, { "d", 86400000LL }, { NULL, 0 },
};

static const char *env_getenv(void *ctx, const char *key)
{
    (void) ctx;
    return getenv(key);
}

static const char *type_name(enum tx_config_type t)
{
    switch (t) {
    case TX_CONFIG_STRING:
        return "string";
    case TX_CONFIG_INT:
        return "integer";
    case TX_CONFIG_BOOL:
        return "boolean";
    case TX_CONFIG_SIZE:
        return "size";
    case TX_CONFIG_MS:
        return "duration";
    }
    return "?";
}

/* The allowed values of e, for messages and --help ("range 1..64 bytes"); "" for booleans. */
static void describe_range(const struct tx_config_entry *e, char *buf, size_t len)
{
    switch (e->type) {
    case TX_CONFIG_STRING:
        if (e->max > 0)
            snprintf(buf, len, "length %lld..%lld", e->min, e->max);
        else
            snprintf(buf, len, "any length");
        break;
    case TX_CONFIG_INT:
        snprintf(buf, len, "range %lld..%lld", e->min, e->max);
        break;
    case TX_CONFIG_BOOL:
        snprintf(buf, len, "true/false, yes/no, on/off, 1/0");
        break;
    case TX_CONFIG_SIZE:
        snprintf(buf, len, "range %lld..%lld bytes", e->min, e->max);
        break;
    case TX_CONFIG_MS:
        snprintf(buf, len, "range %lld..%lld ms", e->min, e->max);
        break;
    }
}

/* Decimal digits at s (at least one) into *v; *end gets the first non-digit. False on overflow
 * (*end then points at the digits) or when there is no digit. */
static bool parse_digits(const char *s, long long *v, const char **end, bool *overflow)
{
    long long acc = 0;
    const char *p = s;

    *overflow = false;
    while (*p >= '0' && *p <= '9') {
        int d = *p - '0';

        if (acc > (LLONG_MAX - d) / 10)
            *overflow = true;
        else
            acc = acc * 10 + d;
        p++;
    }
    *end = p;
    *v = acc;
    return p != s && !*overflow;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/*
 * Parses text for e into *num (numbers, booleans as 0/1) and checks the bounds. On failure writes
 * the reason (without the variable's name or value) into reason and returns TX_EINVAL.
 */
static int parse_value(const struct tx_config_entry *e, const char *text, long long *num,
                       char *reason, size_t rlen)
{
    char range[96];
    long long v = 0;
    const char *end = text;
    bool neg = false, overflow = false;
    bool ok;

    describe_range(e, range, sizeof(range));
    switch (e->type) {
    case TX_CONFIG_STRING:
        v = (long long) strlen(text);
        if (e->max > 0 && (v < e->min || v > e->max)) {
            snprintf(reason, rlen, "length %lld out of range (%s)", v, range);
            return TX_EINVAL;
        }
        *num = v;
        return 0;
    case TX_CONFIG_BOOL:
        ok = parse_bool(text, &neg);
        if (!ok) {
            snprintf(reason, rlen, "not a boolean (%s)", range);
            return TX_EINVAL;
        }
        *num = neg ? 1 : 0;
        return 0;
    case TX_CONFIG_INT:
        if (*end == '-' || *end == '+') {
            neg = *end == '-';
            end++;
        }
        ok = parse_digits(end, &v, &end, &overflow);
        if (overflow) {
            snprintf(reason, rlen, "too large (%s)", range);
            return TX_EINVAL;
        }
        if (!ok || *end != '\0') {
            snprintf(reason, rlen, "not an integer (%s)", range);
            return TX_EINVAL;
        }
        if (neg)
            v = -v;
        break;
    case TX_CONFIG_SIZE:
    case TX_CONFIG_MS: {
        const struct unit *units = e->type == TX_CONFIG_SIZE ? size_units : ms_units;
        const struct unit *u;

        if (*end == '-') {
            snprintf(reason, rlen, "must not be negative (%s)", range);
            return TX_EINVAL;
        }
        ok = parse_digits(end, &v, &end, &overflow);
        if (overflow) {
            snprintf(reason, rlen, "too large (%s)", range);
            return TX_EINVAL;
        }
        if (!ok) {
            snprintf(reason, rlen, "expected a number%s (%s)",
                     e->type == TX_CONFIG_SIZE ? " with an optional unit such as 512k or 10MiB"
                                               : " with an optional unit such as 200ms or 5s",
                     range);
            return TX_EINVAL;
        }
        for (u = units; u->name != NULL; u++)
            if (strcasecmp(end, u->name) == 0)
                break;
        if (u->name == NULL) {
            snprintf(reason, rlen, "unknown unit \"%.16s\" (%s)", end,
                     e->type == TX_CONFIG_SIZE ? "b, k, m, g, t, KiB..TiB, kB..TB"
                                               : "ms, s, m, min, h, d");
            return TX_EINVAL;
        }
        if (v > LLONG_MAX / u->mult) {
            snprintf(reason, rlen, "too large (%s)", range);
            return TX_EINVAL;
        }
        v *= u->mult;
        break;
    }
    }
    if (v < e->min || v > e->max) {
        snprintf(reason, rlen, "%lld out of range (%s)", v, range);
        return TX_EINVAL;
    }
    *num = v;
    return 0;
}

static bool table_has_key(const struct tx_config_entry *tab, size_t n, const char *key)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(tab[i].key, key) == 0)
            return true;
    return false;
}

/* Reads a secret file: at most TX_CONFIG_FILE_MAX bytes, no NUL, trailing CR/LF removed.
 * *out is heap-allocated for the caller. */
static int read_secret_file(const char *fkey, const char *path, char **out, struct tx_err *err)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len;
    int rc = 0;

    f = fopen(path, "rb");
    if (f == NULL) {
        char ebuf[128];
        int e = errno;

        if (strerror_r(e, ebuf, sizeof(ebuf)) != 0)
            snprintf(ebuf, sizeof(ebuf), "errno %d", e);
        rc = tx_err_set(err, TX_EINVAL, "%s: cannot open \"%.*s\": %s", fkey, SHOW_MAX, path, ebuf);
        goto out;
    }
    buf = malloc(TX_CONFIG_FILE_MAX + 1);
    if (buf == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "%s: out of memory", fkey);
        goto out;
    }
    len = fread(buf, 1, TX_CONFIG_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = tx_err_set(err, TX_EINVAL, "%s: cannot read \"%.*s\"", fkey, SHOW_MAX, path);
        goto out;
    }
    if (len > TX_CONFIG_FILE_MAX) {
        rc = tx_err_set(err, TX_EINVAL, "%s: \"%.*s\" is larger than %d bytes", fkey, SHOW_MAX,
                        path, TX_CONFIG_FILE_MAX);
        goto out;
    }
    if (memchr(buf, '\0', len) != NULL) {
        rc = tx_err_set(err, TX_EINVAL, "%s: \"%.*s\" contains a NUL byte", fkey, SHOW_MAX, path);
        goto out;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    if (len == 0) {
        rc = tx_err_set(err, TX_EINVAL, "%s: \"%.*s\" is empty", fkey, SHOW_MAX, path);
        goto out;
    }
    *out = buf;
    buf = NULL;
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return rc;
}

/* Checks the entry itself: a broken table is a programming error, reported like a bad value. */
static int check_entry(const struct tx_config_entry *e, struct tx_err *err)
{
    if (e->key == NULL || strlen(e->key) > KEY_MAX)
        return tx_err_set(err, TX_EINVAL, "config table: key missing or longer than %d", KEY_MAX);
    if ((unsigned) e->type > TX_CONFIG_MS)
        return tx_err_set(err, TX_EINVAL, "config table: %s has an unknown type", e->key);
    if (e->type == TX_CONFIG_BOOL || (e->type == TX_CONFIG_STRING && e->max <= 0))
        return 0;
    if (e->min > e->max)
        return tx_err_set(err, TX_EINVAL, "config table: %s has min %lld > max %lld", e->key,
                          e->min, e->max);
    return 0;
}

static int load_entry(const struct tx_config_entry *tab, size_t n, const struct tx_config_entry *e,
                      void *target, tx_getenv_fn get, void *ctx, struct tx_err *err)
{
    char fkey[KEY_MAX + 8];
    char reason[192];
    char *filebuf = NULL;
    char *copy = NULL;
    const char *val, *fval, *text;
    bool secret = (e->flags & TX_CONFIG_SECRET) != 0;
    long long num = 0;
    char *field = (char *) target + e->offset;
    int rc;

    rc = check_entry(e, err);
    if (rc != 0)
        goto out;
    snprintf(fkey, sizeof(fkey), "%s_FILE", e->key);
    val = get(ctx, e->key);
    if (val != NULL && val[0] == '\0')
        val = NULL;
    fval = get(ctx, fkey);
    if (fval != NULL && fval[0] == '\0')
        fval = NULL;

    if (fval != NULL && !secret) {
        if (!table_has_key(tab, n, fkey)) {
            rc = tx_err_set(err, TX_EINVAL,
                            "%s is set, but %s is not a secret and has no _FILE variant; set %s",
                            fkey, e->key, e->key);
            goto out;
        }
        fval = NULL;
    }
    if (fval != NULL && val != NULL) {
        rc = tx_err_set(err, TX_EINVAL, "both %s and %s are set; set only one", e->key, fkey);
        goto out;
    }

    if (fval != NULL) {
        rc = read_secret_file(fkey, fval, &filebuf, err);
        if (rc != 0)
            goto out;
        text = filebuf;
    }
    else if (val != NULL) {
        text = val;
    }
    else if (e->def != NULL) {
        text = e->def;
    }
    else {
        describe_range(e, reason, sizeof(reason));
        rc = tx_err_set(err, TX_EINVAL, "%s%s%s%s is required but not set or empty (%s, %s)",
                        e->key, secret ? " (or " : "", secret ? fkey : "", secret ? ")" : "",
                        type_name(e->type), reason);
        goto out;
    }

    rc = parse_value(e, text, &num, reason, sizeof(reason));
    if (rc != 0) {
        const char *src = fval != NULL ? fkey : e->key;
        const char *what = text == e->def ? " default" : "";

        if (secret)
            tx_err_set(err, rc, "%s%s (value hidden): %s", src, what, reason);
        else
            tx_err_set(err, rc, "%s%s=\"%.*s%s\": %s", src, what, SHOW_MAX, text,
                       strlen(text) > SHOW_MAX ? "..." : "", reason);
        goto out;
    }

    switch (e->type) {
    case TX_CONFIG_STRING:
        if (filebuf != NULL) {
            copy = filebuf;
            filebuf = NULL;
        }
        else {
            copy = strdup(text);
            if (copy == NULL) {
                rc = tx_err_set(err, TX_ENOMEM, "%s: out of memory", e->key);
                goto out;
            }
        }
        memcpy(field, &copy, sizeof(copy));
        copy = NULL;
        break;
    case TX_CONFIG_BOOL: {
        bool b = num != 0;

        memcpy(field, &b, sizeof(b));
        break;
    }
    case TX_CONFIG_INT:
    case TX_CONFIG_SIZE:
    case TX_CONFIG_MS:
        memcpy(field, &num, sizeof(num));
        break;
    }
out:
    free(copy);
    if (filebuf != NULL) {
        /* may hold a secret */
        explicit_bzero(filebuf, strlen(filebuf));
        free(filebuf);
    }
    return rc;
}

int tx_config_load(const struct tx_config_entry *tab, size_t n, void *target,
                   tx_getenv_fn getenv_fn, void *ctx, struct tx_err *err)
{
    tx_getenv_fn get = getenv_fn != NULL ? getenv_fn : env_getenv;
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        rc = load_entry(tab, n, &tab[i], target, get, ctx, err);
        if (rc != 0) {
            tx_config_cleanup(tab, i, target);
            return rc;
        }
    }
    return 0;
}

void tx_config_cleanup(const struct tx_config_entry *tab, size_t n, void *target)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char *field = (char *) target + tab[i].offset;
        char *s;

        if (tab[i].type != TX_CONFIG_STRING)
            continue;
        memcpy(&s, field, sizeof(s));
        if (s != NULL && (tab[i].flags & TX_CONFIG_SECRET) != 0)
            explicit_bzero(s, strlen(s));
        free(s);
        s = NULL;
        memcpy(field, &s, sizeof(s));
    }
}

void tx_config_print_help(FILE *out, const struct tx_config_entry *tab, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const struct tx_config_entry *e = &tab[i];
        bool secret = (e->flags & TX_CONFIG_SECRET) != 0;
        char range[96];

        describe_range(e, range, sizeof(range));
        fprintf(out, "  %s (%s", e->key, type_name(e->type));
        if (secret)
            fprintf(out, ", secret, or %s_FILE", e->key);
        if (e->def == NULL)
            fprintf(out, ", required");
        else if (secret)
            fprintf(out, ", has a default");
        else if (e->def[0] == '\0')
            fprintf(out, ", default empty");
        else
            fprintf(out, ", default %s", e->def);
        fprintf(out, ", %s)\n      %s\n", range, e->desc != NULL ? e->desc : "");
    }
}
