#ifndef CLI_PROGRESS_H
#define CLI_PROGRESS_H

#include <stddef.h>

/* The progress line txupload draws on a terminal. Pure, thread-safe. */

struct cli_progress_state {
    long long bytes_done;
    long long bytes_total; /* 0 when unknown (standard input only) */
    size_t files_done;
    size_t files_total;
    size_t files_failed;
};

/**
 * Renders one line (no newline) into out, at most width columns (at least 20 assumed):
 * "[#########.........]  45%  22.5/50.0 MB  23/50 files, 1 failed". The bar shrinks first when
 * width is small. Always NUL-terminates when outlen > 0. Returns the length written.
 */
size_t cli_progress_render(const struct cli_progress_state *s, int width, char *out, size_t outlen);

/** Formats a byte count for people: "812 B", "1.5 kB", "22.5 MB", "1.2 GB" (powers of 1000). */
void cli_bytes_format(long long n, char *out, size_t outlen);

#endif
