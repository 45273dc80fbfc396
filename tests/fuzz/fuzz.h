#ifndef TX_FUZZ_H
#define TX_FUZZ_H

/*
 * Shared by the libFuzzer harnesses in tests/fuzz (built only with -DTX_FUZZ=ON). A broken
 * invariant prints what failed and aborts, which libFuzzer reports as a crash with the input.
 * libFuzzer passes each input in a heap buffer of exactly its size, so ASan sees any read past it.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** The libFuzzer entry point each harness defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* A NUL-terminated heap copy (for APIs that take C strings). */
static inline char *fuzz_strdup(const uint8_t *data, size_t size)
{
    char *p = malloc(size + 1);

    FUZZ_CHECK(p != NULL);
    if (size > 0)
        memcpy(p, data, size);
    p[size] = '\0';
    return p;
}

#endif
