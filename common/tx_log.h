#ifndef TX_LOG_H
#define TX_LOG_H

/*
 * JSON-lines logging on stderr: one object per line with "ts", "level", "prog", "msg" and the ids
 * in scope. Each line is written with a single write(2), so lines from threads do not interleave.
 */

enum tx_log_level {
    TX_LOG_DEBUG = 0,
    TX_LOG_INFO = 1,
    TX_LOG_WARN = 2,
    TX_LOG_ERROR = 3,
};

/**
 * Sets the program name and minimum level. Call once at start, before any thread is created
 * (this is start-up configuration, read-only afterwards). prog is not copied: pass a literal.
 */
void tx_log_init(const char *prog, enum tx_log_level min);

/** Parses "debug", "info", "warn", "error". Returns 0 or TX_EINVAL. */
int tx_log_level_parse(const char *s, enum tx_log_level *out);

/** True when a message of this level would be written. Thread-safe. */
int tx_log_enabled(enum tx_log_level lvl);

/**
 * Writes one line. kv is NULL or a NULL-terminated array of alternating keys and values (values
 * must not be NULL: pass "" instead). Thread-safe. Messages are truncated at 4 KiB.
 */
void tx_log_write(enum tx_log_level lvl, const char *const *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Builds the kv array in place: TX_KV("upload_id", id, "event_id", eid). */
#define TX_KV(...) ((const char *const[]){ __VA_ARGS__, (const char *) 0 })
#define TX_NOKV    ((const char *const *) 0)

#define TX_LOG(lvl, kv, ...)                        \
    do {                                            \
        if (tx_log_enabled(lvl))                    \
            tx_log_write((lvl), (kv), __VA_ARGS__); \
    } while (0)
#define tx_log_debug(kv, ...) TX_LOG(TX_LOG_DEBUG, kv, __VA_ARGS__)
#define tx_log_info(kv, ...)  TX_LOG(TX_LOG_INFO, kv, __VA_ARGS__)
#define tx_log_warn(kv, ...)  TX_LOG(TX_LOG_WARN, kv, __VA_ARGS__)
#define tx_log_error(kv, ...) TX_LOG(TX_LOG_ERROR, kv, __VA_ARGS__)

#endif
