#include "cli/cli_progress.h"

#include <stdio.h>
#include <string.h>

void cli_bytes_format(long long n, char *out, size_t outlen)
{
    if (n < 0)
        n = 0;
    if (n < 1000)
        snprintf(out, outlen, "%lld B", n);
    else if (n < 1000000)
        snprintf(out, outlen, "%.1f kB", (double) n / 1e3);
    else if (n < 1000000000)
        snprintf(out, outlen, "%.1f MB", (double) n / 1e6);
    else
        snprintf(out, outlen, "%.1f GB", (double) n / 1e9);
}

size_t cli_progress_render(const struct cli_progress_state *s, int width, char *out, size_t outlen)
{
    char done[32];
    char total[32];
    char tail[160];
    int pct;
    int tlen;
    int bar;
    int fill;
    int i;
    size_t n = 0;

    if (outlen == 0)
        return 0;
    if (width < 20)
        width = 20;
    cli_bytes_format(s->bytes_done, done, sizeof(done));
    if (s->bytes_total > 0) {
        long long d = s->bytes_done > s->bytes_total ? s->bytes_total : s->bytes_done;

        pct = (int) (d * 100 / s->bytes_total);
        cli_bytes_format(s->bytes_total, total, sizeof(total));
    }
    else {
        pct = s->files_total > 0 ? (int) (s->files_done * 100 / s->files_total) : 0;
        snprintf(total, sizeof(total), "?");
    }
    if (s->files_failed > 0)
        tlen = snprintf(tail, sizeof(tail), " %3d%%  %s/%s  %zu/%zu files, %zu failed", pct, done,
                        total, s->files_done, s->files_total, s->files_failed);
    else
        tlen = snprintf(tail, sizeof(tail), " %3d%%  %s/%s  %zu/%zu files", pct, done, total,
                        s->files_done, s->files_total);
    if (tlen < 0)
        tlen = 0;
    if (tlen > (int) sizeof(tail) - 1)
        tlen = (int) sizeof(tail) - 1;
    /* "[" bar "]" tail; the bar takes what is left, at most 40, at least 0. */
    bar = width - 2 - tlen;
    if (bar > 40)
        bar = 40;
    if (bar >= 5) {
        fill = bar * pct / 100;
        out[n++] = '[';
        for (i = 0; i < bar && n + 2 < outlen; i++)
            out[n++] = i < fill ? '#' : '.';
        if (n + 1 < outlen)
            out[n++] = ']';
    }
    for (i = 0; i < tlen && n + 1 < outlen && (int) n < width; i++)
        out[n++] = tail[i];
    out[n] = '\0';
    return n;
}
