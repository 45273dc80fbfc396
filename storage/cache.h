#ifndef STORAGE_CACHE_H
#define STORAGE_CACHE_H

#include <stddef.h>

#include "common/tx_status.h"

/*
 * Redis client (hiredis 0.14, RESP2) for the gateway's summaries and idempotency answers and the
 * fraud consumer's state.
 *
 * A struct cache_conn is one blocking connection. It is not thread-safe: one thread uses it at a
 * time (the gateway keeps one per pool slot). It survives failures: a call that loses the
 * connection (I/O error, EOF, timeout, protocol error) closes it and reports the error, and the
 * next call connects again (with AUTH and SELECT from the URL and the same timeout). Before
 * sending on a connection that sat idle, the client checks that the server has not closed it
 * (Redis restart, CLIENT KILL, idle timeout) and reconnects first, so such a loss costs no failed
 * call. Nothing is ever resent after it was written.
 *
 * The timeout bounds the connect and every socket read and write, so a call that waits for a
 * stalled server fails after about timeout_ms (a pipeline may take that long per blocked write
 * or read). SIGPIPE is blocked in the calling thread while it talks to Redis, so a write on a
 * connection the server closed never kills the process.
 *
 * Errors (negative enum tx_status, detail in err->msg; the password never appears):
 *   TX_EINVAL    bad argument or URL
 *   TX_EUNAVAIL  connection refused/reset/closed, or the server answered LOADING, BUSY,
 *                MASTERDOWN, TRYAGAIN or CLUSTERDOWN (retryable)
 *   TX_ETIMEDOUT no answer within the timeout (the connection was closed; also retryable)
 *   TX_EREJECT   AUTH or SELECT refused (wrong password, unknown user, bad database index)
 *   TX_EIO       any other error reply (the server's text in err->msg), an unexpected reply type
 *   TX_ENOTFOUND no such key (cache_get, cache_del)
 *   TX_EEXIST    the key exists (cache_set_nx)
 *   TX_ENOMEM
 * The wrapper does not log.
 */

struct cache_conn;

/* One key and its value for cache_set_many; val holds len bytes (binary safe). */
struct cache_kv {
    const char *key; /* NUL-terminated */
    const char *val;
    size_t len;
};

/**
 * Connects to url, "redis://[[user]:password@]host[:port][/db]" (port 6379 and database 0 by
 * default; user and password percent-decoded; host a name, an IPv4 address or [IPv6]), sends
 * AUTH (AUTH user password when a user is given) and SELECT when needed, and applies timeout_ms
 * (1..600000; 0 means 5000) to the connect and to every later read and write.
 * Returns NULL with TX_EINVAL (bad URL or timeout), TX_EUNAVAIL or TX_ETIMEDOUT (server not
 * reachable), TX_EREJECT (AUTH or SELECT refused) or TX_ENOMEM in err. Free with
 * cache_conn_destroy. Thread-safe (the new connection is the caller's).
 */
struct cache_conn *cache_conn_create(const char *url, long timeout_ms, struct tx_err *err);

/** Closes the connection and frees c. NULL is a no-op. */
void cache_conn_destroy(struct cache_conn *c);

/** PING; 0 when the server answered PONG. The readiness probe. */
int cache_ping(struct cache_conn *c, struct tx_err *err);

/**
 * Sends n "SET key value EX ttl_s" commands in one pipeline (one write, one round trip) and reads
 * every reply, also after an error reply. Returns 0 only if every command answered OK; else the
 * first failure (TX_EIO with the server's text and the key's index for an error reply). Keys that
 * were set stay set. n == 0 is a no-op. ttl_s must be > 0.
 */
int cache_set_many(struct cache_conn *c, const struct cache_kv *kv, size_t n, int ttl_s,
                   struct tx_err *err);

/**
 * GET key. On success *val is a malloc'd copy of the value (followed by a NUL not counted in
 * *len), which the caller frees with free(). len may be NULL. When ttl_s is not NULL, the value
 * and its remaining time to live are read atomically (MULTI/EXEC) and *ttl_s is the TTL in
 * seconds, or -1 for a key without expiry. TX_ENOTFOUND when the key does not exist; TX_EIO when
 * it holds a non-string type. On failure *val is NULL.
 */
int cache_get(struct cache_conn *c, const char *key, char **val, size_t *len, long *ttl_s,
              struct tx_err *err);

/**
 * SET key val NX EX ttl_s, atomically with a GET of the key (MULTI/EXEC). 0 when the key was
 * set. TX_EEXIST when it already existed: it is left unchanged and, if old is not NULL, *old is a
 * malloc'd, NUL-terminated copy of its current value (*oldlen bytes; oldlen may be NULL) for the
 * caller to free. On any other result *old is NULL. ttl_s must be > 0.
 */
int cache_set_nx(struct cache_conn *c, const char *key, const char *val, size_t len, int ttl_s,
                 char **old, size_t *oldlen, struct tx_err *err);

/** SET key val EX ttl_s (replacing any value). 0 when the server answered OK. ttl_s > 0. */
int cache_set(struct cache_conn *c, const char *key, const char *val, size_t len, int ttl_s,
              struct tx_err *err);

/** DEL key. 0 when a key was deleted, TX_ENOTFOUND when there was none. */
int cache_del(struct cache_conn *c, const char *key, struct tx_err *err);

/*
 * Lua scripts for cache_eval. A script is created once (its SHA1 computed locally) and is
 * immutable afterwards, so one script may be shared by every thread and connection.
 */
struct cache_script;

/**
 * Copies the Lua source lua (NUL-terminated, non-empty) and computes its SHA1. NULL with
 * TX_EINVAL or TX_ENOMEM in err. Free with cache_script_destroy. Thread-safe.
 */
struct cache_script *cache_script_create(const char *lua, struct tx_err *err);

/** Frees s. NULL is a no-op. No cache_eval may be using it. */
void cache_script_destroy(struct cache_script *s);

/** The script's SHA1 as 40 lowercase hex digits (what EVALSHA and SCRIPT LOAD use). */
const char *cache_script_sha1(const struct cache_script *s);

/* One element of a flattened script reply. */
enum cache_val_type {
    CACHE_VAL_NIL, /* Lua false / nil */
    CACHE_VAL_INT, /* Lua number (truncated to an integer by Redis) or true (1) */
    CACHE_VAL_STR, /* Lua string, or a status reply such as redis.status_reply("OK") */
};

struct cache_val {
    enum cache_val_type type;
    long long num; /* CACHE_VAL_INT */
    char *str;     /* CACHE_VAL_STR: malloc'd, NUL-terminated (the NUL not counted in len) */
    size_t len;
};

/* A script's reply as a flat list: a scalar gives one element, an array its elements in order,
 * nested arrays depth-first (their structure is lost, so scripts should return flat arrays). */
struct cache_reply {
    struct cache_val *vals;
    size_t n;
};

/** Frees what cache_eval stored in r and empties it. Safe on a zeroed or already cleaned r. */
void cache_reply_cleanup(struct cache_reply *r);

/**
 * Runs script s atomically on the server: EVALSHA with the nkeys keys and nargs args
 * (NUL-terminated strings; KEYS[i] and ARGV[i] in Lua). When the server does not have the script
 * (NOSCRIPT: a restart, SCRIPT FLUSH) it is sent with SCRIPT LOAD and EVALSHA is tried once more.
 * On success, if out is not NULL, the reply is stored in *out (the caller calls
 * cache_reply_cleanup). A script that raised an error (redis.error_reply, a failing redis.call)
 * gives TX_EIO with its message. On failure *out is empty.
 *
 * Not resent after a lost connection: when the result is TX_EUNAVAIL or TX_ETIMEDOUT the script
 * may or may not have run.
 */
int cache_eval(struct cache_conn *c, const struct cache_script *s, const char *const *keys,
               size_t nkeys, const char *const *args, size_t nargs, struct cache_reply *out,
               struct tx_err *err);

#endif
