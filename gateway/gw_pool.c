#include "gateway/gw_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct gw_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n;
    size_t slot_size;
    size_t nfree;
    void **free_slots;
    unsigned char *mem;
};

struct gw_pool *gw_pool_create(size_t n, size_t slot_size)
{
    struct gw_pool *p = calloc(1, sizeof(*p));
    pthread_condattr_t ca;
    size_t i;

    if (p == NULL)
        return NULL;
    p->mem = calloc(n, slot_size);
    p->free_slots = calloc(n, sizeof(*p->free_slots));
    if (p->mem == NULL || p->free_slots == NULL) {
        free(p->mem);
        free(p->free_slots);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->n = n;
    p->slot_size = slot_size;
    for (i = 0; i < n; i++)
        p->free_slots[i] = p->mem + i * slot_size;
    p->nfree = n;
    return p;
}

void gw_pool_destroy(struct gw_pool *p, void (*fn)(void *slot))
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; fn != NULL && i < p->n; i++)
        fn(p->mem + i * p->slot_size);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->free_slots);
    free(p->mem);
    free(p);
}

void *gw_pool_acquire(struct gw_pool *p, long timeout_ms)
{
    struct timespec deadline;
    void *slot = NULL;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT)
            break;
    }
    if (p->nfree > 0)
        slot = p->free_slots[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    return slot;
}

void gw_pool_release(struct gw_pool *p, void *slot)
{
    pthread_mutex_lock(&p->mu);
    p->free_slots[p->nfree++] = slot;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}
