#ifndef GW_POOL_H
#define GW_POOL_H

#include <stddef.h>

/*
 * A fixed set of slots handed out to one thread at a time. The gateway keeps one connection set
 * (Redis, AMQP publisher, PostgreSQL) per slot, created lazily by the user of the slot, so a
 * worker thread never shares a vendor connection with another one.
 */

struct gw_pool;

/** Creates n slots of slot_size zeroed bytes each. NULL on ENOMEM. */
struct gw_pool *gw_pool_create(size_t n, size_t slot_size);

/** Calls fn on each slot (to close its connections), then frees. No slot may be in use. */
void gw_pool_destroy(struct gw_pool *p, void (*fn)(void *slot));

/** Takes a free slot, waiting up to timeout_ms; NULL when none came free in time. Thread-safe. */
void *gw_pool_acquire(struct gw_pool *p, long timeout_ms);

/** Gives a slot back. Thread-safe. */
void gw_pool_release(struct gw_pool *p, void *slot);

#endif
