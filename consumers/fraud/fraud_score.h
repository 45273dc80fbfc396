#ifndef FRAUD_SCORE_H
#define FRAUD_SCORE_H

/*
 * The pure-C half of scoring: the normaliser used by ADDRESS_CHANGE and EMAIL_CHANGE, the rules
 * that need no state (INACTIVE_ACCOUNT, FUTURE_DATE, AMOUNT), turning the state script's reply
 * into a verdict with human details, and the value of the tx:flag:<_id> key. No I/O; every
 * function is thread-safe.
 */

#include "common/tx_buf.h"
#include "common/tx_event.h"
#include "common/tx_record.h"
#include "consumers/fraud/fraud_rules.h"
#include "storage/cache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest string a stateless fact carries (bytes, NUL included). */
#define FRAUD_FACT_STR 64

/* Most stateless facts one record can produce (INACTIVE_ACCOUNT, FUTURE_DATE, AMOUNT). */
#define FRAUD_STATELESS_MAX 3

/*
 * What made a rule fire. Meaning of the fields per rule:
 *   ADDRESS_CHANGE, EMAIL_CHANGE: a previous value, b new value (raw, as written), n1 ms since the
 *     previous transaction, n2 the window in seconds.
 *   VELOCITY: a the limit (threshold), n1 transactions in the window (current included), n2 the
 *     window in seconds.
 *   DUPLICATE: a the event_id of the identical record, n1 ms since it, n2 the window in seconds.
 *   INACTIVE_ACCOUNT: nothing.
 *   FUTURE_DATE: a datatrasancao as written, n1 ms it lies ahead of now, n2 the tolerance in s.
 *   AMOUNT: a the valor, b the maximum (both "%.15g").
 */
struct fraud_fact {
    enum fraud_rule_id rule;
    char a[FRAUD_FACT_STR];
    char b[FRAUD_FACT_STR];
    long long n1;
    long long n2;
};

/* A scored transaction: the verdict plus what the state script reported about it. */
struct fraud_result {
    bool replayed;        /* the verdict was stored by an earlier delivery of the same event */
    int64_t scored_at_ms; /* when it was first scored (the Redis server's clock) */
    struct tx_verdict verdict;
    /* Per reason (same index as verdict.reasons): its rule and numbers. */
    struct {
        enum fraud_rule_id rule;
        long long n1;
        long long n2;
    } facts[TX_REASONS_MAX];
};

/**
 * Normalises a value for the *_CHANGE comparisons: removes leading and trailing white space,
 * turns every inner run of white space into one ASCII space, and folds case: ASCII A-Z and the
 * Latin-1 capitals U+00C0..U+00DE except U+00D7 (À..Þ, so "SÃO JOSÉ" equals "são josé") become
 * lower case. White space is ASCII space, tab, CR, LF, VT, FF and U+00A0 (no-break space).
 * Accents are NOT removed ("Sao" differs from "São"), and other characters are kept as they are.
 * in holds len bytes of UTF-8; out receives at most len bytes plus a NUL, so outlen must be at
 * least len + 1. Returns the length written, or TX_ETOOBIG (out is then "") when outlen is too
 * small.
 */
long fraud_normalize(const char *in, size_t len, char *out, size_t outlen);

/**
 * Evaluates the enabled stateless rules for rec at wall-clock time now_ms: INACTIVE_ACCOUNT
 * (isActive false), FUTURE_DATE (datatrasancao more than tolerance_s after now_ms), AMOUNT
 * (valor present and above max). Writes the facts of the rules that fire into out (room for
 * FRAUD_STATELESS_MAX) and returns how many fired.
 */
size_t fraud_check_stateless(const struct fraud_rules *rules, const struct tx_record *rec,
                             int64_t now_ms, struct fraud_fact *out);

/**
 * Writes the human detail of a fired rule into out (at most outlen - 1 bytes, always
 * NUL-terminated when outlen > 0), from the fact fields described at struct fraud_fact. Long
 * values are cut at a UTF-8 character boundary and marked with "...".
 * Example: "address changed within 60 s: 'Cidade A, Estado A, 1000' -> 'Cidade B, Estado B,
 * 1000' (2.5 s apart)".
 */
void fraud_detail_format(enum fraud_rule_id id, const char *a, const char *b, long long n1,
                         long long n2, char *out, size_t outlen);

/**
 * Turns the reply of the state script (see fraud_state.c: a flat list "new"|"cached",
 * scored_at_ms, flagged 0|1, score, nreasons, then code, a, b, n1, n2 per reason) into *out,
 * with the reasons in rule order and their details formatted. TX_EIO with the reason in err when
 * the reply does not have that shape (unknown code, bad number, wrong length).
 */
int fraud_result_from_reply(const struct cache_reply *r, struct fraud_result *out,
                            struct tx_err *err);

/**
 * Appends the value of tx:flag:<_id> to out: {"event_id","upload_id","client_id","score",
 * "reasons":[{"code","detail"}],"flagged_at"}. Returns 0 or the buffer's TX_ETOOBIG / TX_ENOMEM.
 */
int fraud_flag_value(const char *event_id, const char *upload_id, const char *client_id,
                     const struct fraud_result *res, struct tx_buf *out);

#endif
