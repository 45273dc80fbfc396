#ifndef CLI_FILES_H
#define CLI_FILES_H

#include "common/tx_status.h"

#include <stddef.h>

/* The list of files one run uploads, in order. */

struct cli_file {
    char *path;     /* as given or dir + "/" + name; "-" for standard input */
    char *display;  /* the name used in messages: the path, or "<stdin>" */
    long long size; /* bytes at expansion time; -1 for standard input */
};

struct cli_filelist {
    struct cli_file *v;
    size_t n;
    size_t cap;
};

/**
 * Expands inputs into files: a regular file as is, a directory into its *.json and *.ndjson
 * regular files (not recursive, hidden names skipped) sorted by name in byte order, "-" into
 * standard input. Appends to out (zero it first). TX_ENOTFOUND when an input does not exist or a
 * directory holds no such file, TX_EINVAL when an input is neither a file nor a directory,
 * TX_EIO when a directory cannot be read, TX_ENOMEM; err names the input. On failure out keeps
 * what was appended: free it with cli_files_cleanup either way.
 */
int cli_files_expand(char *const *inputs, size_t n, struct cli_filelist *out, struct tx_err *err);

/** Frees the list; it is empty and reusable afterwards. */
void cli_files_cleanup(struct cli_filelist *l);

#endif
