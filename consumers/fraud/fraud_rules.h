#ifndef FRAUD_RULES_H
#define FRAUD_RULES_H

/*
 * The fraud rules of txfraud (volumes/fraud/rules.json): which rules are enabled, what each one
 * adds to a transaction's score, their parameters, and the score at which a transaction is
 * flagged. Pure C: no I/O besides fraud_rules_load reading the file.
 *
 * File format (every key required, unknown keys are errors so that a typo cannot silently turn
 * a rule off; "$comment" is allowed at the top level and in each rule):
 *
 *     {
 *       "flag_threshold": 100,       score at which a transaction is flagged (1..1000000)
 *       "flag_ttl_s": 300,           lifetime of tx:flag:<_id> (1..86400)
 *       "verdict_ttl_s": 86400,      how long a verdict is kept for redeliveries (60..2592000)
 *       "rules": {
 *         "ADDRESS_CHANGE":   { "enabled": true, "weight": 100, "window_s": 60 },
 *         "EMAIL_CHANGE":     { "enabled": true, "weight": 100, "window_s": 60 },
 *         "INACTIVE_ACCOUNT": { "enabled": true, "weight": 100 },
 *         "VELOCITY":         { "enabled": true, "weight": 60, "window_s": 60, "threshold": 10 },
 *         "DUPLICATE":        { "enabled": true, "weight": 40, "window_s": 3600 },
 *         "FUTURE_DATE":      { "enabled": true, "weight": 60, "tolerance_s": 300 },
 *         "AMOUNT":           { "enabled": true, "weight": 60, "max": 10000 }
 *       }
 *     }
 *
 * Every one of the seven rules must be present (set "enabled": false to turn one off), each with
 * exactly the fields shown for it. weight is an integer 0..1000000; window_s 1..604800;
 * threshold 1..100000 (VELOCITY fires when the client has MORE than threshold transactions in
 * the window, the current one included); tolerance_s 0..31536000; max a number >= 0.
 */

#include "common/tx_status.h"

#include <stdbool.h>
#include <stddef.h>

/* The rules, in the order their reasons are reported. */
enum fraud_rule_id {
    FRAUD_ADDRESS_CHANGE = 0,
    FRAUD_EMAIL_CHANGE,
    FRAUD_INACTIVE_ACCOUNT,
    FRAUD_VELOCITY,
    FRAUD_DUPLICATE,
    FRAUD_FUTURE_DATE,
    FRAUD_AMOUNT,
    FRAUD_NRULES
};

/* Largest rules file read (bytes). */
#define FRAUD_RULES_FILE_MAX (1024 * 1024)

/* One rule's settings; fields a rule does not use are 0. */
struct fraud_rule {
    bool enabled;
    long long weight;      /* added to the score when the rule fires */
    long long window_s;    /* ADDRESS_CHANGE, EMAIL_CHANGE, VELOCITY, DUPLICATE */
    long long threshold;   /* VELOCITY: most transactions allowed in the window */
    long long tolerance_s; /* FUTURE_DATE: how far in the future datatrasancao may lie */
    double max;            /* AMOUNT: largest valor that does not fire */
};

/* The whole rules file. An embedded value: nothing to free. */
struct fraud_rules {
    long long flag_threshold; /* flagged when score >= flag_threshold */
    long long flag_ttl_s;     /* tx:flag:<_id> lifetime */
    long long verdict_ttl_s;  /* stored verdict lifetime (idempotency on redelivery) */
    struct fraud_rule rule[FRAUD_NRULES];
};

/** The reason code of a rule ("ADDRESS_CHANGE", ...); "?" for an out-of-range id. */
const char *fraud_rule_code(enum fraud_rule_id id);

/** The rule id of a reason code, or -1 when the code is unknown. */
int fraud_rule_from_code(const char *code);

/**
 * Parses and validates the rules file text (len bytes, no NUL needed) into *out. Returns 0, or
 * TX_ESYNTAX for malformed JSON (err has line, column and message), or TX_EINVAL for a file that
 * breaks the format above, with err->msg naming the rule and the field
 * ("rule \"VELOCITY\", field \"window_s\": must be an integer from 1 to 604800"). *out is
 * written only on success. Thread-safe.
 */
int fraud_rules_parse(const char *text, size_t len, struct fraud_rules *out, struct tx_err *err);

/**
 * Reads the file at path (at most FRAUD_RULES_FILE_MAX bytes) and parses it. Returns 0, TX_EIO
 * (unreadable file), TX_ETOOBIG, or the errors of fraud_rules_parse; err->msg starts with the
 * path. Thread-safe.
 */
int fraud_rules_load(const char *path, struct fraud_rules *out, struct tx_err *err);

#endif
