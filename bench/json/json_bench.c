/*
 * json_bench: parse throughput and error-reporting quality of jansson, json-c and cJSON on
 * txpipe-shaped input. Standalone (not part of the txpipe build):
 *
 *     cmake -S bench/json -B build-common/jsonbench && cmake --build build-common/jsonbench
 *     build-common/jsonbench/json_bench [--seed FILE] [--runs N] [--mib N] [--cpu N]
 *
 * Prints Markdown tables on stdout. Every timed parse is checked against the generator's totals
 * (record count, active count, sum of amounts in cents), so a parser that drops or misreads data
 * makes the program fail instead of looking fast.
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <malloc.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_bench.h"

#define MIB (1024.0 * 1024.0)

static const struct parser parsers[] = {
    { "jansson 2.14", false, jansson_parse, jansson_stats, jansson_destroy },
    { "jansson 2.14 REJECT_DUPLICATES", true, jansson_parse, jansson_stats, jansson_destroy },
    { "json-c 0.16", false, jsonc_parse, jsonc_stats, jsonc_destroy },
    { "json-c 0.16 STRICT+VALIDATE_UTF8", true, jsonc_parse, jsonc_stats, jsonc_destroy },
    { "cJSON 1.7.15", false, cjson_parse, cjson_stats, cjson_destroy },
    { "cJSON 1.7.15 + UTF-8 pass + dup-key walk", true, cjson_parse, cjson_stats, cjson_destroy },
};
#define NPARSERS (sizeof(parsers) / sizeof(parsers[0]))

/* ---- helpers ---- */

static double now_sec(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Growable output buffer for the generator; aborts on allocation failure (a benchmark tool). */
struct gbuf {
    char *p;
    size_t len, cap;
};

static void gbuf_printf(struct gbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void gbuf_printf(struct gbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            fprintf(stderr, "vsnprintf failed\n");
            exit(1);
        }
        if ((size_t) n < b->cap - b->len)
            break;
        b->cap = b->cap * 2 + (size_t) n + 1;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    b->len += (size_t) n;
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*, fixed seed: the same file every run */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/*
 * A JSON array of seed-like records (CRLF, 4-space indent, the seed's field names and timestamp
 * form), at least target bytes. Values vary: names with accents and escapes, some RFC 3339
 * timestamps, an optional amount, an occasional extra field.
 */
static char *generate(size_t target, size_t *len, struct doc_stats *want)
{
    static const char *const first[] = { "Ana",   "Bruno",  "Conceição", "Daniela", "Eduardo",
                                         "Fábio", "Gisele", "Hélio",     "Iara",    "João",
                                         "Lúcia", "Márcio", "Nívea",     "Otávio",  "Paula" };
    static const char *const last[] = { "Silva", "Souza",   "Gonçalves", "Araújo",
                                        "Lima",  "Pereira", "Conceição", "d'Ávila" };
    static const char *const city[] = { "São Paulo", "Rio de Janeiro", "Belo Horizonte",
                                        "Curitiba",  "Porto Alegre",   "Salvador",
                                        "Recife",    "Goiânia" };
    struct gbuf b = { NULL, 0, 0 };
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    unsigned i = 0;

    memset(want, 0, sizeof(*want));
    gbuf_printf(&b, "[");
    while (b.len < target) {
        uint64_t r = rng_next(&s);
        const char *fn = first[r % 15], *ln = last[(r >> 8) % 8], *ct = city[(r >> 16) % 8];
        bool active = (r >> 24) % 4 != 0;
        unsigned mon = 1 + (unsigned) ((r >> 28) % 12), day = 1 + (unsigned) ((r >> 32) % 28);
        unsigned hh = (unsigned) ((r >> 37) % 24), mi = (unsigned) ((r >> 42) % 60);
        unsigned ss = (unsigned) ((r >> 48) % 60);
        long long cents = (long long) (rng_next(&s) % 5000000);

        gbuf_printf(&b, "%s{\r\n    \"_id\": \"cliente%u\",\r\n    \"isActive\": %s,\r\n",
                    i ? ", " : "", i, active ? "true" : "false");
        if (r % 10 == 0)
            gbuf_printf(&b, "    \"cliente\": \"%s \\\"%s\\\" %s \\u00e9\",\r\n", fn, fn, ln);
        else
            gbuf_printf(&b, "    \"cliente\": \"%s %s\",\r\n", fn, ln);
        gbuf_printf(&b,
                    "    \"email\": \"cliente%u@example.com\",\r\n"
                    "    \"endereco\": \"%s, Estado %c, %u\",\r\n",
                    i, ct, 'A' + (int) ((r >> 20) % 26), (unsigned) (r % 9000) + 100);
        if (r % 3 == 0)
            gbuf_printf(&b, "    \"datatrasancao\": \"2024-%02u-%02uT%02u:%02u:%02u.%03uZ\"", mon,
                        day, hh, mi, ss, (unsigned) (r % 1000));
        else
            gbuf_printf(&b, "    \"datatrasancao\": \"2024-%02u-%02uT%02u:%02u:%02u +00:00\"", mon,
                        day, hh, mi, ss);
        if (r % 5 != 0) {
            gbuf_printf(&b, ",\r\n    \"valor\": %lld.%02lld", cents / 100, cents % 100);
            want->cents += cents;
        }
        if (r % 17 == 0)
            gbuf_printf(&b, ",\r\n    \"canal\": {\"tipo\": \"pix\", \"tentativas\": [1, 2, 3]}");
        gbuf_printf(&b, "\r\n  }");
        want->records++;
        if (active)
            want->active++;
        i++;
    }
    gbuf_printf(&b, "]");
    *len = b.len;
    return b.p;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t) n + 1);
    if (buf == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n)
        goto fail;
    buf[n] = '\0';
    *len = (size_t) n;
    fclose(f);
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

static bool only_space(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

/* ---- throughput ---- */

struct result {
    double best_cpu;   /* CPU time of this thread: immune to other processes on the core */
    double best_wall;  /* CLOCK_MONOTONIC, for comparison */
    double heap_ratio; /* live heap of the DOM / input bytes */
};

/* Parses buf reps times per run (each a new document), best of runs; checks every parse. */
static int measure(const struct parser *p, const char *buf, size_t len, size_t reps, int runs,
                   const struct doc_stats *want, struct result *res)
{
    int run;

    res->best_cpu = res->best_wall = 1e30;
    res->heap_ratio = 0;
    for (run = 0; run < runs; run++) {
        double cpu = 0, wall = 0;
        size_t r;

        for (r = 0; r < reps; r++) {
            void *dom = NULL;
            size_t consumed = 0;
            struct perr e = { -1, 0, 0, "" };
            struct doc_stats got = { 0, 0, 0 };
            size_t heap0 = r == 0 && run == 0 ? mallinfo2().uordblks : 0;
            double c0 = now_sec(CLOCK_THREAD_CPUTIME_ID), w0 = now_sec(CLOCK_MONOTONIC);
            double c1, w1, c2, w2;

            if (p->parse(p, buf, len, &dom, &consumed, &e) != 0) {
                fprintf(stderr, "%s: parse failed at %lld: %s\n", p->name, e.offset, e.text);
                return -1;
            }
            c1 = now_sec(CLOCK_THREAD_CPUTIME_ID);
            w1 = now_sec(CLOCK_MONOTONIC);
            if (r == 0 && run == 0)
                res->heap_ratio = (double) (mallinfo2().uordblks - heap0) / (double) len;
            if (!only_space(buf + consumed, len - consumed) || !p->stats(dom, &got) ||
                (r == 0 && (got.records != want->records || got.active != want->active ||
                            got.cents != want->cents))) {
                fprintf(stderr,
                        "%s: wrong result: records %zu/%zu active %zu/%zu cents %lld/%lld\n",
                        p->name, got.records, want->records, got.active, want->active, got.cents,
                        want->cents);
                p->destroy(dom);
                return -1;
            }
            c2 = now_sec(CLOCK_THREAD_CPUTIME_ID);
            w2 = now_sec(CLOCK_MONOTONIC);
            p->destroy(dom);
            cpu += c1 - c0 + now_sec(CLOCK_THREAD_CPUTIME_ID) - c2;
            wall += w1 - w0 + now_sec(CLOCK_MONOTONIC) - w2;
        }
        if (cpu < res->best_cpu)
            res->best_cpu = cpu;
        if (wall < res->best_wall)
            res->best_wall = wall;
    }
    return 0;
}

/* ---- error quality ---- */

/*
 * Malformed (or hostile) inputs. In the templates, \x01 marks where the error is and \x02 where
 * its span ends (the offending token); both are removed before parsing. No markers: position is
 * not judged.
 */
struct ecase {
    const char *name;
    const char *tmpl; /* NULL: generated */
    int deep;         /* nesting depth for generated cases */
    bool valid_json;  /* true when rejection is only a policy (depth) */
};

static const struct ecase ecases[] = {
    { "truncated inside a string",
      "[{\r\n    \"_id\": \"cliente1\",\r\n    \"cliente\": \x01\"Cliente ful\x02", 0, false },
    { "bad escape \\q",
      "[{\r\n    \"_id\": \"cliente1\",\r\n    \"cliente\": \"Cliente \x01\\q\x02\"\r\n}]", 0,
      false },
    { "invalid UTF-8 byte (Latin-1 0xE9)",
      "[{\r\n    \"_id\": \"c1\",\r\n    \"cliente\": \"Conceição Jos\x01\xe9\x02\"\r\n}]", 0,
      false },
    { "overlong UTF-8 (C0 AF)", "[{\r\n    \"cliente\": \"a\x01\xc0\xaf\x02\"\r\n}]", 0, false },
    { "lone surrogate \\ud800", "[{\r\n    \"cliente\": \"a\x01\\ud800\x02\"\r\n}]", 0, false },
    { "duplicate key",
      "[{\r\n    \"_id\": \"cliente1\",\r\n    \"isActive\": true,\r\n    \x01\"_id\"\x02: "
      "\"x\"\r\n}]",
      0, false },
    { "trailing comma in object",
      "[{\r\n    \"_id\": \"cliente1\",\r\n    \"isActive\": true\x01,\r\n  }\x02]", 0, false },
    { "trailing comma in array", "[\r\n  1,\r\n  2\x01,\r\n]\x02", 0, false },
    { "raw newline inside a string",
      "[{\r\n    \"cliente\": \"Cliente\x01\n\x02"
      "fulano\"\r\n}]",
      0, false },
    { "number with leading zero",
      "[{\r\n    \"valor\": \x01"
      "01\x02.5\r\n}]",
      0, false },
    { "garbage after the array", "[{\"_id\": \"c1\"}]\r\n\x01x\x02", 0, false },
    { "integer beyond 64 bits (valid JSON)", "[{\r\n    \"valor\": 123456789012345678901234\r\n}]",
      0, true },
    { "\\u0000 escape in a string (valid JSON)", "[{\r\n    \"cliente\": \"a\\u0000b\"\r\n}]", 0,
      true },
    { "2000-deep nesting (valid JSON)", NULL, 2000, true },
    { "100000-deep nesting (valid JSON)", NULL, 100000, true },
};
#define NECASES (sizeof(ecases) / sizeof(ecases[0]))

/* Builds the input of c; lo/hi = error span (-1 if none). */
static char *build_case(const struct ecase *c, size_t *len, long long *lo, long long *hi)
{
    char *buf;
    size_t i, n = 0;

    *lo = *hi = -1;
    if (c->tmpl == NULL) {
        buf = malloc((size_t) c->deep * 2 + 1);
        if (buf == NULL)
            exit(1);
        memset(buf, '[', (size_t) c->deep);
        memset(buf + c->deep, ']', (size_t) c->deep);
        *len = (size_t) c->deep * 2;
        return buf;
    }
    buf = malloc(strlen(c->tmpl) + 1);
    if (buf == NULL)
        exit(1);
    for (i = 0; c->tmpl[i] != '\0'; i++) {
        if (c->tmpl[i] == '\x01')
            *lo = (long long) n;
        else if (c->tmpl[i] == '\x02')
            *hi = (long long) n; /* one past the span */
        else
            buf[n++] = c->tmpl[i];
    }
    *len = n;
    return buf;
}

/* 1-based line and byte column of offset. */
static void line_col(const char *buf, size_t len, long long off, int *line, int *col)
{
    long long i;
    int l = 1, c = 1;

    for (i = 0; i < off && (size_t) i < len; i++) {
        if (buf[i] == '\n') {
            l++;
            c = 1;
        }
        else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static void md_escape(char *out, size_t outlen, const char *in)
{
    size_t o = 0;

    for (; *in != '\0' && o + 3 < outlen; in++) {
        unsigned char ch = (unsigned char) *in;

        if (ch == '|') {
            out[o++] = '\\';
            out[o++] = '|';
        }
        else if (ch < 0x20) {
            out[o++] = ' ';
        }
        else {
            out[o++] = (char) ch;
        }
    }
    out[o] = '\0';
}

static void error_table(void)
{
    size_t ci, pi;

    printf("\n## Error reporting\n\n");
    printf(
        "Position judged against the offending token (line:col, col in bytes). `lib L:C` is what "
        "the library reports itself; `offset` is the byte offset it reports or its error pointer "
        "gives (line:col derived from it in brackets). \"at\" = offset inside the offending "
        "token or one byte past it.\n\n");
    for (ci = 0; ci < NECASES; ci++) {
        const struct ecase *c = &ecases[ci];
        size_t len;
        long long lo, hi;
        char *buf = build_case(c, &len, &lo, &hi);
        int eline = 0, ecol = 0;

        if (lo >= 0)
            line_col(buf, len, lo, &eline, &ecol);
        printf("### %s\n\n", c->name);
        if (lo >= 0)
            printf("Offending token at %d:%d (byte %lld).\n\n", eline, ecol, lo);
        printf("| library | rejected | lib L:C | offset [L:C] | position | message |\n");
        printf("|---|---|---|---|---|---|\n");
        for (pi = 0; pi < NPARSERS; pi++) {
            const struct parser *p = &parsers[pi];
            void *dom = NULL;
            size_t consumed = 0;
            struct perr e = { -1, 0, 0, "" };
            char msg[200], libpos[32] = "-", offpos[64] = "-", verdict[48] = "-";
            const char *rej;
            int dl, dc;

            if (p->parse(p, buf, len, &dom, &consumed, &e) == 0) {
                if (!only_space(buf + consumed, len - consumed)) {
                    rej = "only by caller check";
                    e.offset = (long long) consumed;
                    snprintf(e.text, sizeof(e.text), "(library stopped after the first value)");
                }
                else {
                    rej = c->valid_json ? "no (accepted)" : "**no (accepted)**";
                }
                p->destroy(dom);
            }
            else {
                rej = "yes";
            }
            if (e.line > 0)
                snprintf(libpos, sizeof(libpos), "%d:%d", e.line, e.col);
            if (e.offset >= 0) {
                line_col(buf, len, e.offset, &dl, &dc);
                snprintf(offpos, sizeof(offpos), "%lld [%d:%d]", e.offset, dl, dc);
                if (lo >= 0 && strncmp(rej, "yes", 3) == 0) {
                    if (e.offset >= lo && e.offset <= hi)
                        snprintf(verdict, sizeof(verdict), "at");
                    else if (dl == eline)
                        snprintf(verdict, sizeof(verdict), "same line, %+lld bytes", e.offset - lo);
                    else
                        snprintf(verdict, sizeof(verdict), "**wrong** (%+lld bytes)",
                                 e.offset - lo);
                }
            }
            md_escape(msg, sizeof(msg), e.text);
            printf("| %s | %s | %s | %s | %s | %s |\n", p->name, rej, libpos, offpos, verdict, msg);
        }
        printf("\n");
        free(buf);
    }
}

/* ---- main ---- */

#define MAX_REPEAT 15

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[MAX_REPEAT];

    memcpy(s, v, sizeof(double) * (size_t) n);
    qsort(s, (size_t) n, sizeof(double), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* "123" for one value, "123 (110-130)" for several. */
static void spread(char *out, size_t len, const double *v, int n)
{
    double lo = v[0], hi = v[0];
    int i;

    for (i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    if (n == 1)
        snprintf(out, len, "%.0f", v[0]);
    else
        snprintf(out, len, "%.0f (%.0f-%.0f)", median(v, n), lo, hi);
}

int main(int argc, char **argv)
{
    const char *seed = NULL;
    int runs = 5, mib = 10, cpu = 0, repeat = 1, i, r;
    double a_cpu[NPARSERS][MAX_REPEAT], a_wall[NPARSERS][MAX_REPEAT], b_cpu[NPARSERS][MAX_REPEAT];
    double heap[NPARSERS];
    char *big = NULL, *small = NULL;
    size_t big_len, small_len, reps;
    struct doc_stats want_big, want_small = { 0, 0, 0 };
    cpu_set_t set;
    size_t pi;
    int rc = 1;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = argv[++i];
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc)
            mib = atoi(argv[++i]);
        else if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc)
            cpu = atoi(argv[++i]);
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--seed Dados.json] [--runs 5] [--repeat 1] [--mib 10] [--cpu 0]\n",
                    argv[0]);
            return 2;
        }
    }
    if (seed == NULL)
        seed = "/work/shared/seed-data/Dados.json";
    if (runs < 1 || mib < 1 || repeat < 1 || repeat > MAX_REPEAT) {
        fprintf(stderr, "--runs and --mib must be positive, --repeat 1..%d\n", MAX_REPEAT);
        return 2;
    }
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        perror("sched_setaffinity");
        return 1;
    }

    big = generate((size_t) mib * 1024 * 1024, &big_len, &want_big);
    small = read_file(seed, &small_len);
    if (small == NULL) {
        fprintf(stderr, "cannot read %s\n", seed);
        goto out;
    }
    reps = ((size_t) mib * 1024 * 1024 + small_len - 1) / small_len;
    {
        /* what (b) must give: jansson's reading of the seed file, which every library must match */
        void *dom = NULL;
        size_t consumed;
        struct perr e = { -1, 0, 0, "" };

        if (parsers[0].parse(&parsers[0], small, small_len, &dom, &consumed, &e) != 0 ||
            !parsers[0].stats(dom, &want_small) || want_small.records == 0) {
            fprintf(stderr, "%s: not a JSON array of records (%s)\n", seed, e.text);
            if (dom != NULL)
                parsers[0].destroy(dom);
            goto out;
        }
        parsers[0].destroy(dom);
    }

    printf("# json_bench\n\n");
    printf("Pinned to CPU %d; best of %d runs, that measurement repeated %d times in interleaved "
           "rounds: median (min-max) of the %d bests. MB/s = 10^6 input bytes per second of parse "
           "+ free, "
           "from the thread's CPU time (CLOCK_THREAD_CPUTIME_ID); \"wall\" uses CLOCK_MONOTONIC. "
           "DOM heap = live malloc bytes (mallinfo2) after parsing (a), per input byte.\n\n",
           cpu, runs, repeat, repeat);
    printf("- (a) generated array: %zu bytes, %zu records\n", big_len, want_big.records);
    printf("- (b) %s: %zu bytes, parsed %zu times per run (a new document each time)\n\n", seed,
           small_len, reps);
    printf("| library | (a) MB/s | (a) wall MB/s | (a) DOM heap / input | (b) MB/s | (b) docs/s "
           "|\n");
    printf("|---|---|---|---|---|---|\n");
    /* Rounds interleave the libraries so that background load hits all of them alike. */
    for (r = 0; r < repeat; r++) {
        for (pi = 0; pi < NPARSERS; pi++) {
            struct result ra, rb;

            if (measure(&parsers[pi], big, big_len, 1, runs, &want_big, &ra) != 0 ||
                measure(&parsers[pi], small, small_len, reps, runs, &want_small, &rb) != 0)
                goto out;
            a_cpu[pi][r] = (double) big_len / ra.best_cpu / 1e6;
            a_wall[pi][r] = (double) big_len / ra.best_wall / 1e6;
            b_cpu[pi][r] = (double) small_len * (double) reps / rb.best_cpu / 1e6;
            heap[pi] = ra.heap_ratio;
        }
        fprintf(stderr, "round %d of %d done\n", r + 1, repeat);
    }
    for (pi = 0; pi < NPARSERS; pi++) {
        char ca[48], wa[48], cb[48];
        double mb = median(b_cpu[pi], repeat);

        spread(ca, sizeof(ca), a_cpu[pi], repeat);
        spread(wa, sizeof(wa), a_wall[pi], repeat);
        spread(cb, sizeof(cb), b_cpu[pi], repeat);
        printf("| %s | %s | %s | %.1fx | %s | %.0f |\n", parsers[pi].name, ca, wa, heap[pi], cb,
               mb * 1e6 / (double) small_len);
    }
    error_table();
    rc = 0;
out:
    free(big);
    free(small);
    return rc;
}
