#ifndef CLI_RUN_H
#define CLI_RUN_H

#include "cli/cli_args.h"
#include "cli/cli_http.h"
#include "cli/cli_progress.h"
#include "cli/cli_retry.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The commands of txupload and what they share: the terminal output and retried requests. */

/*
 * Everything printed goes through one of these, so lines from parallel uploads never mix and the
 * progress bar (stderr, terminals only) is erased before a line and drawn again after it.
 */
struct cli_ui {
    pthread_mutex_t mu;
    bool bar;
    bool quiet;
    int width;
    struct cli_progress_state st;
    long long bytes_finished;
    long long *job_sent; /* bytes of the body in flight, per job */
    size_t njobs;
    int64_t last_draw_ms;
    bool drawn;
};

/** Sets up ui for njobs parallel jobs. 0 or TX_ENOMEM. */
int cli_ui_init(struct cli_ui *ui, const struct cli_opts *o, size_t njobs, size_t files_total,
                long long bytes_total);

/** Erases the bar (when drawn) and frees ui. */
void cli_ui_cleanup(struct cli_ui *ui);

/** Prints text (whole lines) to f without tearing the bar; thread-safe. Flushes f. */
void cli_ui_write(struct cli_ui *ui, FILE *f, const char *text);

/** printf form of cli_ui_write. */
void cli_ui_printf(struct cli_ui *ui, FILE *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Reports sent bytes of job's current body (0 when a retry starts over); thread-safe. */
void cli_ui_sent(struct cli_ui *ui, size_t job, long long sent);

/** Counts one finished file of size bytes (-1 unknown); thread-safe. */
void cli_ui_file_done(struct cli_ui *ui, size_t job, long long size, bool failed);

/**
 * Sends req, retrying transient failures (no answer, 408, 409, 429, 5xx) up to o->retries
 * times: Retry-After is honoured on 409/429/503, otherwise capped exponential backoff with
 * jitter. label names the file or command in "retrying" notes (printed unless quiet). Returns
 * the outcome of the last answer: CLI_OK (2xx), CLI_REJECTED, CLI_AUTH, CLI_UNAVAILABLE (retries
 * exhausted; resp->status is 0 when no answer came, err says why) or CLI_USAGE (bad URL).
 * *attempts gets the number of requests sent.
 */
enum cli_outcome cli_call(struct cli_http *h, const struct cli_opts *o, struct cli_ui *ui,
                          const char *label, const struct cli_request *req,
                          struct cli_response *resp, int *attempts, struct tx_err *err);

/**
 * The header carrying the API key (o->api_key), "Authorization: Bearer <key>", written to buf (n
 * bytes); returns buf, or NULL when no key is configured. Uploads and the read routes (upload
 * status, client summary and fraud) need it.
 */
const char *cli_auth_header(const struct cli_opts *o, char *buf, size_t n);

/**
 * Polls GET {url}/api/v1/uploads/{id} (with the API key) until cli_status_complete (records: the
 * upload's count, or -1 to take it from the status) or o->wait_timeout_s. Leaves the last status
 * body in resp. Returns CLI_OK when complete, CLI_UNAVAILABLE on timeout, CLI_REJECTED (404),
 * CLI_AUTH (401/403: the key is missing or refused), CLI_USAGE.
 */
enum cli_outcome cli_wait_processing(struct cli_http *h, const struct cli_opts *o,
                                     struct cli_ui *ui, const char *label, const char *upload_id,
                                     long long records, struct cli_response *resp,
                                     struct tx_err *err);

/** txupload FILE|DIR|- ...: returns the exit code. */
int cli_upload_run(const struct cli_opts *o);

/** txupload status ID: returns the exit code. */
int cli_status_run(const struct cli_opts *o);

/** txupload client ID: returns the exit code. */
int cli_client_run(const struct cli_opts *o);

/** txupload replay ID: returns the exit code. */
int cli_replay_run(const struct cli_opts *o);

#endif
