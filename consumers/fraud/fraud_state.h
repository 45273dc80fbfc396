#ifndef FRAUD_STATE_H
#define FRAUD_STATE_H

/*
 * txfraud's state in Redis and the scoring of one transaction with ONE Lua script run, so that
 * any number of txfraud instances scoring the same client are serialised by Redis and never lose
 * an update.
 *
 * Keys (prefix "tx:fraud:" by default; every key of a client shares the hash tag {<_id>}, so
 * they live in one Redis Cluster slot and one script may touch them all):
 *   <prefix>{<_id>}:v:<event_id>  the stored verdict of an event (verdict_ttl_s): a redelivered
 *                                 event gets it back and changes no state (counts once)
 *   <prefix>{<_id>}:last          hash of the client's previous transaction seen by txfraud:
 *                                 t (ms), e (event_id), a/ar (address normalised/raw), m/mr
 *                                 (email); expires after the longest *_CHANGE window
 *   <prefix>{<_id>}:times         sorted set event_id -> arrival ms, trimmed to the VELOCITY
 *                                 window (and to at most max(threshold + 1, 1000) members)
 *   <prefix>{<_id>}:dup:<sha256>  "<ms>|<event_id>" of the last record whose compact JSON had
 *                                 that SHA-256 (DUPLICATE window)
 * The gateway-visible flag <flag_prefix><_id> ("tx:flag:" by default) has no hash tag (its
 * name is the seed's contract), so it is set by a separate SET after the script; a failure
 * there is repaired by the redelivery, which gets the stored verdict back and sets it again.
 *
 * Arrival order and the windows use the Redis server's clock (TIME inside the script) unless the
 * caller passes its own time (tests). FUTURE_DATE uses the caller's wall clock.
 *
 * A struct fraud_state is one Redis connection: one thread at a time. The wrapper does not log.
 */

#include "common/tx_record.h"
#include "common/tx_status.h"
#include "consumers/fraud/fraud_rules.h"
#include "consumers/fraud/fraud_score.h"

#include <stdint.h>

struct fraud_state;

struct fraud_state_config {
    const char *redis_url;   /* redis://[[user]:password@]host[:port][/db] */
    long timeout_ms;         /* connect and per-call timeout; 0 means 5000 */
    const char *key_prefix;  /* NULL means "tx:fraud:" (tests use a private prefix) */
    const char *flag_prefix; /* NULL means "tx:flag:" */
};

/**
 * Creates the state handle: copies the settings, prepares the script and tries to connect.
 * Redis being unreachable is not an error (the next call connects); a malformed URL is
 * (TX_EINVAL). Returns NULL with the reason in err. Free with fraud_state_destroy.
 */
struct fraud_state *fraud_state_create(const struct fraud_state_config *cfg, struct tx_err *err);

/** Closes the connection and frees st. NULL is a no-op. */
void fraud_state_destroy(struct fraud_state *st);

/**
 * Scores rec (the transaction of event event_id) against rules and the client's state, updating
 * the state, in one script run, and fills *out. When the event was scored before, the stored
 * verdict is returned (out->replayed) and nothing changes. window_ms is the arrival time used for
 * the windows (0: the Redis server's clock); wall_ms the wall-clock time FUTURE_DATE compares
 * datatrasancao with (0: now). Errors: those of cache_eval (TX_EUNAVAIL, TX_ETIMEDOUT: the
 * script may or may not have run, which is harmless since a rerun returns the stored verdict;
 * TX_EIO for an error reply such as OOM), TX_EINVAL for an over-long key, TX_EIO for a reply
 * of the wrong shape.
 */
int fraud_state_score(struct fraud_state *st, const struct fraud_rules *rules, const char *event_id,
                      const struct tx_record *rec, int64_t window_ms, int64_t wall_ms,
                      struct fraud_result *out, struct tx_err *err);

/**
 * Sets the flag of a flagged result: <flag_prefix><client_id> = fraud_flag_value(...) for
 * rules->flag_ttl_s counted from res->scored_at_ms. For a replayed result the flag is only
 * written when the key does not exist (a newer flag is kept) and when some of its lifetime is
 * left. Not flagged, or nothing left: 0 without writing. Errors of cache_set / cache_set_nx.
 */
int fraud_state_set_flag(struct fraud_state *st, const struct fraud_rules *rules,
                         const char *client_id, const char *event_id, const char *upload_id,
                         const struct fraud_result *res, struct tx_err *err);

/** PING (connecting first when needed): the readiness probe. */
int fraud_state_ping(struct fraud_state *st, struct tx_err *err);

#endif
