#ifndef CLI_ARGS_H
#define CLI_ARGS_H

#include "common/tx_config.h"
#include "common/tx_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* txupload's command line: options, sub-commands and the environment they fall back on. */

#define CLI_VERSION "0.1.0"

#define CLI_DEFAULT_URL            "http://127.0.0.1:8080"
#define CLI_DEFAULT_RETRIES        5
#define CLI_DEFAULT_TIMEOUT_S      120
#define CLI_DEFAULT_WAIT_TIMEOUT_S 300
#define CLI_DEFAULT_JOBS           2
#define CLI_MAX_JOBS               32
#define CLI_MAX_RETRIES            100
#define CLI_MAX_SECONDS            86400

enum cli_cmd {
    CLI_CMD_UPLOAD,  /* txupload [options] FILE|DIR|- ... */
    CLI_CMD_STATUS,  /* txupload status UPLOAD_ID */
    CLI_CMD_CLIENT,  /* txupload client CLIENT_ID */
    CLI_CMD_REPLAY,  /* txupload replay UPLOAD_ID */
    CLI_CMD_HELP,    /* --help */
    CLI_CMD_VERSION, /* --version */
};

enum cli_progress_mode {
    CLI_PROGRESS_AUTO, /* a bar when stderr is a terminal */
    CLI_PROGRESS_ON,
    CLI_PROGRESS_OFF,
};

/* Everything a run needs. Strings are heap copies owned by the struct (cli_opts_cleanup). */
struct cli_opts {
    enum cli_cmd cmd;
    char *url;          /* base URL without a trailing '/' */
    char *api_key;      /* "" when none */
    char *admin_key;    /* "" when none */
    char *idem_key;     /* --idempotency-key, NULL when derived from the content */
    char *content_type; /* --content-type, NULL when chosen by extension */
    bool force;
    bool wait;
    bool json;
    bool quiet;
    enum cli_progress_mode progress;
    long long retries;
    long long timeout_s;
    long long wait_timeout_s;
    long long jobs;
    char **inputs; /* upload: files, directories or "-"; sub-commands: the one id */
    size_t ninputs;
};

/**
 * Parses argv (argv[0] is the program name) into o, after reading the environment through
 * getenv_fn (NULL = getenv(3); see cli_env_table for the variables). Options override the
 * environment. Fills o completely on success; on failure returns TX_EINVAL with a one-line reason
 * in err (the caller prints it and exits 2) and o needs no cleanup. TX_ENOMEM. Not thread-safe
 * (reads the environment); call once at start. o->inputs is allocated, its strings point into
 * argv.
 */
int cli_opts_parse(struct cli_opts *o, int argc, char **argv, tx_getenv_fn getenv_fn, void *ctx,
                   struct tx_err *err);

/** Frees what cli_opts_parse stored. Idempotent; a zeroed struct is fine. */
void cli_opts_cleanup(struct cli_opts *o);

/** Prints the --help text, including the environment variables. */
void cli_usage_print(FILE *out);

/** True when s is a client id the gateway accepts: 1-64 of [A-Za-z0-9_.:@-]. */
bool cli_client_id_valid(const char *s);

#endif
