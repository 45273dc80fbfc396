/* Output for people and the retry loop shared by every txupload command. */
#include "cli/cli_run.h"

#include "cli/cli_status.h"
#include "common/tx_time.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Redraws at most this often. */
#define DRAW_EVERY_MS 100

int cli_ui_init(struct cli_ui *ui, const struct cli_opts *o, size_t njobs, size_t files_total,
                long long bytes_total)
{
    struct winsize ws;

    memset(ui, 0, sizeof(*ui));
    ui->job_sent = calloc(njobs > 0 ? njobs : 1, sizeof(*ui->job_sent));
    if (ui->job_sent == NULL)
        return TX_ENOMEM;
    pthread_mutex_init(&ui->mu, NULL);
    ui->njobs = njobs;
    ui->quiet = o->quiet;
    ui->bar = o->progress == CLI_PROGRESS_ON ||
              (o->progress == CLI_PROGRESS_AUTO && !o->quiet && isatty(STDERR_FILENO));
    ui->width = 80;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        ui->width = ws.ws_col - 1;
    ui->st.files_total = files_total;
    ui->st.bytes_total = bytes_total;
    return 0;
}

/* Erases the bar; mu held. */
static void erase(struct cli_ui *ui)
{
    if (ui->drawn) {
        fputs("\r\033[K", stderr);
        ui->drawn = false;
    }
}

/* Draws the bar; mu held. */
static void draw(struct cli_ui *ui, bool force)
{
    char line[512];
    int64_t now = tx_time_mono_ms();
    size_t i;

    if (!ui->bar || (!force && now - ui->last_draw_ms < DRAW_EVERY_MS))
        return;
    ui->st.bytes_done = ui->bytes_finished;
    for (i = 0; i < ui->njobs; i++)
        ui->st.bytes_done += ui->job_sent[i];
    cli_progress_render(&ui->st, ui->width, line, sizeof(line));
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    ui->drawn = true;
    ui->last_draw_ms = now;
}

void cli_ui_cleanup(struct cli_ui *ui)
{
    if (ui->job_sent == NULL)
        return;
    pthread_mutex_lock(&ui->mu);
    if (ui->bar) {
        draw(ui, true);
        fputs("\n", stderr);
        ui->drawn = false;
    }
    pthread_mutex_unlock(&ui->mu);
    pthread_mutex_destroy(&ui->mu);
    free(ui->job_sent);
    ui->job_sent = NULL;
}

void cli_ui_write(struct cli_ui *ui, FILE *f, const char *text)
{
    pthread_mutex_lock(&ui->mu);
    erase(ui);
    fputs(text, f);
    fflush(f);
    draw(ui, true);
    pthread_mutex_unlock(&ui->mu);
}

void cli_ui_printf(struct cli_ui *ui, FILE *f, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&ui->mu);
    erase(ui);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fflush(f);
    draw(ui, true);
    pthread_mutex_unlock(&ui->mu);
}

void cli_ui_sent(struct cli_ui *ui, size_t job, long long sent)
{
    if (!ui->bar || job >= ui->njobs)
        return;
    pthread_mutex_lock(&ui->mu);
    ui->job_sent[job] = sent;
    draw(ui, false);
    pthread_mutex_unlock(&ui->mu);
}

void cli_ui_file_done(struct cli_ui *ui, size_t job, long long size, bool failed)
{
    pthread_mutex_lock(&ui->mu);
    if (job < ui->njobs)
        ui->job_sent[job] = 0;
    if (size > 0)
        ui->bytes_finished += size;
    ui->st.files_done++;
    if (failed)
        ui->st.files_failed++;
    draw(ui, true);
    pthread_mutex_unlock(&ui->mu);
}

static double jitter(void)
{
    unsigned int r = 0;

    if (getrandom(&r, sizeof(r), 0) != (ssize_t) sizeof(r))
        return 0.5;
    return (double) r / 4294967295.0;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

enum cli_outcome cli_call(struct cli_http *h, const struct cli_opts *o, struct cli_ui *ui,
                          const char *label, const struct cli_request *req,
                          struct cli_response *resp, int *attempts, struct tx_err *err)
{
    int max = (int) o->retries + 1;
    int attempt;
    int rc;

    *attempts = 0;
    for (attempt = 1;; attempt++) {
        long long ra = -1;
        long long delay;
        char why[300];

        tx_err_clear(err);
        *attempts = attempt;
        rc = cli_http_do(h, req, resp, err);
        if (rc == TX_EINVAL)
            return CLI_USAGE;
        if (rc == 0 && !cli_status_retryable(resp->status))
            return cli_outcome_for_status(resp->status);
        if (rc == 0) {
            tx_err_set(err, TX_EUNAVAIL, "HTTP %d", resp->status);
            if (cli_status_has_retry_after(resp->status))
                ra = resp->retry_after_s;
        }
        if (attempt >= max)
            return CLI_UNAVAILABLE;
        delay = cli_backoff_ms(attempt, ra, CLI_BACKOFF_BASE_MS, CLI_BACKOFF_CAP_MS, jitter());
        snprintf(why, sizeof(why), "%s", err->msg);
        if (!o->quiet)
            cli_ui_printf(ui, stderr, "%s: %s; retrying in %.1f s (attempt %d of %d)\n", label, why,
                          (double) delay / 1000.0, attempt + 1, max);
        sleep_ms(delay);
    }
}

const char *cli_auth_header(const struct cli_opts *o, char *buf, size_t n)
{
    if (o->api_key == NULL || o->api_key[0] == '\0')
        return NULL;
    snprintf(buf, n, "Authorization: Bearer %s", o->api_key);
    return buf;
}

enum cli_outcome cli_wait_processing(struct cli_http *h, const struct cli_opts *o,
                                     struct cli_ui *ui, const char *label, const char *upload_id,
                                     long long records, struct cli_response *resp,
                                     struct tx_err *err)
{
    int64_t deadline = tx_time_mono_ms() + o->wait_timeout_s * 1000;
    long long interval = 250;
    char url[2300];
    char auth[1100];
    const char *hdrs[] = { "Accept: application/json", NULL, NULL };
    struct cli_request req = { .method = "GET", .url = url, .headers = hdrs };
    struct cli_counts c;
    int rc;

    (void) ui;
    (void) label;
    hdrs[1] = cli_auth_header(o, auth, sizeof(auth));
    snprintf(url, sizeof(url), "%s/api/v1/uploads/%s", o->url, upload_id);
    for (;;) {
        int64_t left = deadline - tx_time_mono_ms();

        req.timeout_ms = o->timeout_s * 1000 < left ? o->timeout_s * 1000 : left;
        if (req.timeout_ms < 1000)
            req.timeout_ms = 1000;
        rc = cli_http_do(h, &req, resp, err);
        if (rc == TX_EINVAL)
            return CLI_USAGE;
        if (rc == 0 && resp->status == 404) {
            tx_err_set(err, TX_ENOTFOUND, "no upload %s", upload_id);
            return CLI_REJECTED;
        }
        if (rc == 0 && (resp->status == 401 || resp->status == 403)) {
            tx_err_set(err, TX_EREJECT,
                       "the status request was refused (HTTP %d): the API key is %s", resp->status,
                       hdrs[1] != NULL ? "not valid" : "missing (--api-key or TX_API_KEY)");
            return CLI_AUTH;
        }
        if (rc == 0 && resp->status == 200 &&
            cli_status_parse(resp->body.data, resp->body.len, &c, err) == 0 &&
            cli_status_complete(&c, records))
            return CLI_OK;
        if (tx_time_mono_ms() + interval > deadline) {
            char last[sizeof(err->msg)];

            if (rc != 0)
                snprintf(last, sizeof(last), "%s", err->msg);
            else
                snprintf(last, sizeof(last), "HTTP %d", resp->status);
            if (rc == 0 && resp->status == 200)
                tx_err_set(err, TX_ETIMEDOUT, "processing not finished after %lld s",
                           o->wait_timeout_s);
            else
                tx_err_set(err, TX_ETIMEDOUT,
                           "processing not finished after %lld s (last status request: %s)",
                           o->wait_timeout_s, last);
            return CLI_UNAVAILABLE;
        }
        sleep_ms(interval);
        interval = interval * 3 / 2 > 2000 ? 2000 : interval * 3 / 2;
    }
}
