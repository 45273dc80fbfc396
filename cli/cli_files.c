#include "cli/cli_files.h"

#include "cli/cli_idem.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Appends one file; takes ownership of path (freed on failure too). */
static int push(struct cli_filelist *l, char *path, long long size, struct tx_err *err)
{
    struct cli_file *f;
    char *display;

    if (l->n == l->cap) {
        size_t cap = l->cap == 0 ? 16 : l->cap * 2;
        struct cli_file *v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL) {
            free(path);
            return tx_err_set(err, TX_ENOMEM, "out of memory");
        }
        l->v = v;
        l->cap = cap;
    }
    display = strdup(strcmp(path, "-") == 0 ? "<stdin>" : path);
    if (display == NULL) {
        free(path);
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    }
    f = &l->v[l->n++];
    f->path = path;
    f->display = display;
    f->size = size;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int expand_dir(const char *dir, struct cli_filelist *out, struct tx_err *err)
{
    DIR *d = NULL;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    size_t cap = 0;
    size_t i;
    size_t dlen = strlen(dir);
    bool slash = dlen > 0 && dir[dlen - 1] == '/';
    int rc = 0;

    d = opendir(dir);
    if (d == NULL) {
        rc = tx_err_set(err, TX_EIO, "%s: cannot read the directory: %s", dir, strerror(errno));
        goto out;
    }
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (e == NULL)
            break;
        if (!cli_name_is_upload(e->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap == 0 ? 64 : cap * 2;
            char **v = realloc(names, ncap * sizeof(*v));

            if (v == NULL) {
                rc = tx_err_set(err, TX_ENOMEM, "out of memory");
                goto out;
            }
            names = v;
            cap = ncap;
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL) {
            rc = tx_err_set(err, TX_ENOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    if (errno != 0) {
        rc = tx_err_set(err, TX_EIO, "%s: cannot read the directory: %s", dir, strerror(errno));
        goto out;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_names);
    for (i = 0; i < n && rc == 0; i++) {
        size_t plen = dlen + 1 + strlen(names[i]) + 1;
        char *path = malloc(plen);
        struct stat st;

        if (path == NULL) {
            rc = tx_err_set(err, TX_ENOMEM, "out of memory");
            break;
        }
        snprintf(path, plen, "%s%s%s", dir, slash ? "" : "/", names[i]);
        /* Only regular files (symbolic links followed); sockets, directories named x.json: no. */
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        rc = push(out, path, (long long) st.st_size, err);
    }
    if (rc == 0 && n == 0)
        rc = tx_err_set(err, TX_ENOTFOUND, "%s: no *.json or *.ndjson file in this directory", dir);
out:
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (d != NULL)
        closedir(d);
    return rc;
}

int cli_files_expand(char *const *inputs, size_t n, struct cli_filelist *out, struct tx_err *err)
{
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        const char *in = inputs[i];
        struct stat st;
        char *copy;

        if (strcmp(in, "-") == 0) {
            copy = strdup("-");
            if (copy == NULL)
                return tx_err_set(err, TX_ENOMEM, "out of memory");
            rc = push(out, copy, -1, err);
            if (rc != 0)
                return rc;
            continue;
        }
        if (stat(in, &st) != 0)
            return tx_err_set(err, errno == ENOENT ? TX_ENOTFOUND : TX_EIO, "%s: %s", in,
                              strerror(errno));
        if (S_ISDIR(st.st_mode)) {
            rc = expand_dir(in, out, err);
            if (rc != 0)
                return rc;
            continue;
        }
        if (!S_ISREG(st.st_mode))
            return tx_err_set(err, TX_EINVAL, "%s: not a regular file or a directory", in);
        copy = strdup(in);
        if (copy == NULL)
            return tx_err_set(err, TX_ENOMEM, "out of memory");
        rc = push(out, copy, (long long) st.st_size, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void cli_files_cleanup(struct cli_filelist *l)
{
    size_t i;

    if (l == NULL)
        return;
    for (i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].display);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
    l->cap = 0;
}
