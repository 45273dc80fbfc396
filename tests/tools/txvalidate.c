/*
 * txvalidate: runs the C record validator on files, for script-driven tests (the JSON Schema
 * agreement test) and for people checking a file offline.
 *
 *   txvalidate FILE          upload mode: prints one JSON object with status ok|syntax|invalid
 *   txvalidate --each FILE   FILE is NDJSON; each line is checked alone as one record
 */
#include "common/tx_buf.h"
#include "common/tx_record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (64u << 20)

static int read_file(const char *path, struct tx_buf *out)
{
    char chunk[65536];
    FILE *f = fopen(path, "rb");
    size_t n;
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "txvalidate: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = tx_buf_append(out, chunk, n);
    if (rc != 0 || ferror(f)) {
        fprintf(stderr, "txvalidate: %s: read failed or larger than %u bytes\n", path, MAX_FILE);
        rc = -1;
    }
    fclose(f);
    return rc;
}

static void print_violation(struct tx_buf *o, const struct tx_violation *v, int with_pos)
{
    if (with_pos)
        tx_buf_printf(o, "{\"index\":%zu,\"line\":%u,", v->index, v->line);
    else
        tx_buf_puts(o, "{");
    tx_buf_puts(o, "\"field\":");
    tx_buf_json_str(o, v->field, strlen(v->field));
    tx_buf_puts(o, ",\"code\":");
    tx_buf_json_str(o, v->code, strlen(v->code));
    tx_buf_puts(o, ",\"message\":");
    tx_buf_json_str(o, v->message, strlen(v->message));
    tx_buf_puts(o, "}");
}

static int run_each(const struct tx_buf *in)
{
    struct tx_violation v[32];
    struct tx_buf o;
    size_t off = 0;
    unsigned line = 0;

    tx_buf_init(&o, 1u << 20);
    while (off < in->len) {
        const char *nl = memchr(in->data + off, '\n', in->len - off);
        size_t end = nl != NULL ? (size_t) (nl - in->data) : in->len;
        struct tx_err err = { 0 };
        size_t nv = 0;
        size_t i;
        int rc;

        line++;
        if (end == off) {
            off = end + 1;
            continue;
        }
        rc = tx_record_check(in->data + off, end - off, v, 32, &nv, &err);
        tx_buf_reset(&o);
        tx_buf_printf(&o, "{\"line\":%u,\"valid\":%s,\"errors\":[", line,
                      rc == 0 ? "true" : "false");
        if (rc == TX_ESYNTAX) {
            tx_buf_puts(&o, "{\"field\":\"\",\"code\":\"syntax\",\"message\":");
            tx_buf_json_str(&o, err.msg, strlen(err.msg));
            tx_buf_puts(&o, "}");
        }
        for (i = 0; i < nv; i++) {
            if (i > 0)
                tx_buf_puts(&o, ",");
            print_violation(&o, &v[i], 0);
        }
        tx_buf_puts(&o, "]}\n");
        fwrite(o.data, 1, o.len, stdout);
        off = end + 1;
    }
    tx_buf_cleanup(&o);
    return 0;
}

static int run_upload(const struct tx_buf *in)
{
    struct tx_batch *b = NULL;
    struct tx_err err = { 0 };
    struct tx_buf o;
    size_t i;
    int rc;

    tx_buf_init(&o, 64u << 20);
    rc = tx_batch_parse(in->data != NULL ? in->data : "", in->len, TX_FORMAT_AUTO, NULL, &b, &err);
    if (rc == 0) {
        tx_buf_printf(&o, "{\"status\":\"ok\",\"records\":%zu,\"errors\":[]}\n", b->nrecords);
    }
    else if (rc == TX_EINVAL && b != NULL) {
        tx_buf_printf(&o, "{\"status\":\"invalid\",\"records\":0,\"total_errors\":%zu,\"errors\":[",
                      b->nviolations_total);
        for (i = 0; i < b->nviolations; i++) {
            if (i > 0)
                tx_buf_puts(&o, ",");
            print_violation(&o, &b->violations[i], 1);
        }
        tx_buf_puts(&o, "]}\n");
    }
    else {
        tx_buf_printf(&o,
                      "{\"status\":\"syntax\",\"records\":0,\"line\":%u,\"col\":%u,\"message\":",
                      err.line, err.col);
        tx_buf_json_str(&o, err.msg, strlen(err.msg));
        tx_buf_puts(&o, ",\"errors\":[]}\n");
    }
    fwrite(o.data, 1, o.len, stdout);
    tx_buf_cleanup(&o);
    tx_batch_destroy(b);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct tx_buf in;
    int each = argc == 3 && strcmp(argv[1], "--each") == 0;
    int rc;

    if (!(argc == 2 && argv[1][0] != '-') && !each) {
        fprintf(stderr, "usage: txvalidate [--each] FILE\n");
        return 2;
    }
    tx_buf_init(&in, MAX_FILE);
    if (read_file(argv[argc - 1], &in) != 0) {
        tx_buf_cleanup(&in);
        return 2;
    }
    rc = each ? run_each(&in) : run_upload(&in);
    tx_buf_cleanup(&in);
    return rc;
}
