/* txupload FILE|DIR|- ...: parallel, idempotent uploads with retries and optional --wait. */
#include "cli/cli_run.h"

#include "cli/cli_files.h"
#include "cli/cli_idem.h"
#include "cli/cli_problem.h"
#include "cli/cli_status.h"
#include "common/tx_id.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest local file read (the gateway's own limit, 10 MiB by default, is far below). */
#define FILE_MAX (1LL << 30)

struct run {
    const struct cli_opts *o;
    const struct cli_filelist *files;
    struct cli_ui ui;
    pthread_mutex_t mu; /* guards next, stop, auth_hint */
    size_t next;
    bool stop; /* the key was refused or the URL is bad: start no new file */
    bool auth_hint;
    enum cli_outcome *outcomes; /* per file; each written by the one job that uploads it */
    bool *started;
};

struct job {
    struct run *r;
    size_t id;
    struct cli_http *http;
    pthread_t thread;
};

/* Reads a whole file (or standard input for "-") into *data (caller frees). */
static int read_all(const char *path, char **data, size_t *len, struct tx_err *err)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    struct tx_buf b;
    char chunk[65536];
    int rc = 0;

    *data = NULL;
    *len = 0;
    if (fd < 0)
        return tx_err_set(err, TX_EIO, "cannot open: %s", strerror(errno));
    tx_buf_init(&b, (size_t) FILE_MAX);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = tx_err_set(err, TX_EIO, "cannot read: %s", strerror(errno));
            break;
        }
        if (n == 0)
            break;
        rc = tx_buf_append(&b, chunk, (size_t) n);
        if (rc != 0) {
            tx_err_set(err, rc, "larger than %lld bytes", FILE_MAX);
            break;
        }
    }
    if (fd != STDIN_FILENO)
        close(fd);
    if (rc != 0) {
        tx_buf_cleanup(&b);
        return rc;
    }
    *data = tx_buf_steal(&b, len);
    if (*data == NULL) {
        *data = strdup("");
        if (*data == NULL)
            return tx_err_set(err, TX_ENOMEM, "out of memory");
    }
    return 0;
}

static int force_suffix(char out[CLI_FORCE_SUFFIX_LEN + 1])
{
    unsigned char r[CLI_FORCE_SUFFIX_LEN / 2];
    size_t i;

    if (getrandom(r, sizeof(r), 0) != (ssize_t) sizeof(r))
        return TX_EIO;
    for (i = 0; i < sizeof(r); i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    return 0;
}

static const char *result_name(enum cli_outcome oc)
{
    switch (oc) {
    case CLI_OK:
        return "accepted";
    case CLI_REJECTED:
        return "rejected";
    case CLI_AUTH:
        return "unauthorized";
    case CLI_UNAVAILABLE:
        return "unavailable";
    default:
        return "error";
    }
}

/* Prints obj as one line on stdout and releases it. */
static void emit_json(struct run *r, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);

    if (s != NULL)
        cli_ui_printf(&r->ui, stdout, "%s\n", s);
    free(s);
    json_decref(obj);
}

/* The answer's body as JSON when it is JSON, else as a string (nginx error pages). */
static json_t *body_json(const struct cli_response *resp)
{
    json_t *v;

    if (resp->body.len == 0)
        return json_null();
    v = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    if (v != NULL)
        return v;
    return json_stringn_nocheck(resp->body.data, resp->body.len);
}

static void print_problem(struct run *r, const char *name, const struct cli_response *resp)
{
    struct tx_buf lines;

    tx_buf_init(&lines, 1u << 24);
    cli_problem_format(name, resp->status, resp->body.data, resp->body.len, &lines);
    if (lines.len > 0)
        cli_ui_write(&r->ui, stderr, lines.data);
    tx_buf_cleanup(&lines);
}

/* After a 202: the human line, and --wait. Returns the file's outcome. */
static enum cli_outcome accepted(struct run *r, struct job *j, const struct cli_file *f,
                                 struct cli_response *resp, json_t *out)
{
    const struct cli_opts *o = r->o;
    json_t *ans = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    const char *id = json_string_value(json_object_get(ans, "upload_id"));
    long long records = json_is_integer(json_object_get(ans, "records"))
                            ? (long long) json_integer_value(json_object_get(ans, "records"))
                            : -1;
    struct cli_response st;
    struct tx_err err = { 0 };
    enum cli_outcome oc = CLI_OK;
    char id_copy[TX_UUID_STR_LEN + 1];

    if (!json_is_object(ans) || id == NULL || !tx_uuid7_valid(id)) {
        cli_ui_printf(&r->ui, stderr, "%s: error: the 202 answer has no valid upload_id\n",
                      f->display);
        json_decref(ans);
        return CLI_UNAVAILABLE;
    }
    snprintf(id_copy, sizeof(id_copy), "%s", id);
    if (out != NULL)
        json_object_update(out, ans);
    if (!o->quiet && !o->json)
        cli_ui_printf(&r->ui, stdout, "%s: %s, %lld record(s), upload %s\n", f->display,
                      resp->replayed ? "already uploaded (answer replayed)" : "accepted", records,
                      id_copy);
    json_decref(ans);
    if (!o->wait)
        return CLI_OK;

    cli_response_init(&st);
    oc = cli_wait_processing(j->http, o, &r->ui, f->display, id_copy, records, &st, &err);
    if (out != NULL) {
        json_t *p = json_loadb(st.body.data != NULL ? st.body.data : "", st.body.len, 0, NULL);

        json_object_set_new(out, "processing", p != NULL ? p : json_null());
        json_object_set_new(out, "processed", json_boolean(oc == CLI_OK));
        if (oc != CLI_OK)
            json_object_set_new(out, "wait_error", json_string(err.msg));
    }
    if (oc == CLI_OK && !o->json && !o->quiet) {
        struct tx_buf b;
        char prefix[600];

        tx_buf_init(&b, 1u << 22);
        snprintf(prefix, sizeof(prefix), "%s: processed: ", f->display);
        if (cli_status_format(st.body.data, st.body.len, prefix, &b) == 0)
            cli_ui_write(&r->ui, stdout, b.data);
        tx_buf_cleanup(&b);
    }
    else if (oc != CLI_OK) {
        struct tx_buf b;
        char prefix[600];

        tx_buf_init(&b, 1u << 22);
        snprintf(prefix, sizeof(prefix), "%s: so far: ", f->display);
        cli_ui_printf(&r->ui, stderr, "%s: %s\n", f->display, err.msg);
        if (!o->json && cli_status_format(st.body.data, st.body.len, prefix, &b) == 0)
            cli_ui_write(&r->ui, stderr, b.data);
        tx_buf_cleanup(&b);
    }
    cli_response_cleanup(&st);
    return oc;
}

static void on_sent(void *ctx, long long sent)
{
    struct job *j = ctx;

    cli_ui_sent(&j->r->ui, j->id, sent);
}

static enum cli_outcome upload_one(struct run *r, struct job *j, const struct cli_file *f)
{
    const struct cli_opts *o = r->o;
    char *data = NULL;
    size_t len = 0;
    char sha[TX_SHA256_HEX_LEN + 1];
    char suffix[CLI_FORCE_SUFFIX_LEN + 1];
    char key[CLI_IDEM_KEY_MAX + 1];
    char h_auth[1100];
    char h_type[64];
    char h_key[CLI_IDEM_KEY_MAX + 24];
    const char *hdrs[6];
    size_t nh = 0;
    char url[2100];
    struct cli_request req = { .method = "POST", .url = url };
    struct cli_response resp;
    struct tx_err err = { 0 };
    enum cli_outcome oc;
    int attempts = 0;
    json_t *out = o->json ? json_object() : NULL;

    cli_response_init(&resp);
    if (out != NULL)
        json_object_set_new(out, "file", json_string(f->display));
    if (read_all(f->path, &data, &len, &err) != 0) {
        cli_ui_printf(&r->ui, stderr, "%s: error: %s\n", f->display, err.msg);
        oc = CLI_USAGE;
        goto out;
    }
    tx_sha256_hex(data, len, sha);
    if (o->force && force_suffix(suffix) != 0) {
        cli_ui_printf(&r->ui, stderr, "%s: error: no randomness for --force\n", f->display);
        oc = CLI_USAGE;
        goto out;
    }
    if (cli_idem_key_derive(sha, o->idem_key, o->force ? suffix : NULL, key, sizeof(key)) != 0) {
        cli_ui_printf(&r->ui, stderr,
                      "%s: error: the Idempotency-Key would be invalid or too long\n", f->display);
        oc = CLI_USAGE;
        goto out;
    }
    if (out != NULL)
        json_object_set_new(out, "idempotency_key", json_string(key));
    if (o->api_key[0] != '\0') {
        snprintf(h_auth, sizeof(h_auth), "Authorization: Bearer %s", o->api_key);
        hdrs[nh++] = h_auth;
    }
    snprintf(h_type, sizeof(h_type), "Content-Type: %s",
             o->content_type != NULL ? o->content_type : cli_content_type_for(f->path));
    hdrs[nh++] = h_type;
    snprintf(h_key, sizeof(h_key), "Idempotency-Key: %s", key);
    hdrs[nh++] = h_key;
    hdrs[nh++] = "Accept: application/json, application/problem+json";
    hdrs[nh] = NULL;
    snprintf(url, sizeof(url), "%s/api/v1/uploads", o->url);
    req.headers = hdrs;
    req.body = data;
    req.len = len;
    req.timeout_ms = o->timeout_s * 1000;
    req.progress = r->ui.bar ? on_sent : NULL;
    req.progress_ctx = j;

    oc = cli_call(j->http, o, &r->ui, f->display, &req, &resp, &attempts, &err);
    if (out != NULL) {
        json_object_set_new(out, "attempts", json_integer(attempts));
        if (resp.status != 0)
            json_object_set_new(out, "http_status", json_integer(resp.status));
    }
    switch (oc) {
    case CLI_OK:
        if (out != NULL)
            json_object_set_new(out, "replayed", json_boolean(resp.replayed));
        oc = accepted(r, j, f, &resp, out);
        break;
    case CLI_REJECTED:
        print_problem(r, f->display, &resp);
        if (out != NULL)
            json_object_set_new(out, "problem", body_json(&resp));
        break;
    case CLI_AUTH:
        print_problem(r, f->display, &resp);
        if (out != NULL)
            json_object_set_new(out, "problem", body_json(&resp));
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        if (!r->auth_hint) {
            r->auth_hint = true;
            cli_ui_printf(&r->ui, stderr,
                          "txupload: the API key %s: pass --api-key or set TX_API_KEY; no further "
                          "file is sent\n",
                          o->api_key[0] != '\0' ? "was refused" : "is missing");
        }
        pthread_mutex_unlock(&r->mu);
        break;
    case CLI_UNAVAILABLE:
        if (resp.status != 0) {
            print_problem(r, f->display, &resp);
            if (out != NULL)
                json_object_set_new(out, "problem", body_json(&resp));
        }
        cli_ui_printf(&r->ui, stderr, "%s: error: server unavailable after %d attempt(s): %s\n",
                      f->display, attempts, err.msg);
        if (out != NULL)
            json_object_set_new(out, "error", json_string(err.msg));
        break;
    default:
        cli_ui_printf(&r->ui, stderr, "%s: error: %s\n", f->display, err.msg);
        if (out != NULL)
            json_object_set_new(out, "error", json_string(err.msg));
        pthread_mutex_lock(&r->mu);
        r->stop = true; /* a bad URL fails every file the same way */
        pthread_mutex_unlock(&r->mu);
        break;
    }
out:
    if (out != NULL) {
        if (json_object_get(out, "error") == NULL && oc == CLI_USAGE)
            json_object_set_new(out, "error", json_string(err.msg));
        json_object_set_new(out, "result", json_string(result_name(oc)));
        emit_json(r, out);
    }
    cli_ui_file_done(&r->ui, j->id, f->size >= 0 ? f->size : (long long) len, oc != CLI_OK);
    cli_response_cleanup(&resp);
    free(data);
    return oc;
}

static void *worker(void *arg)
{
    struct job *j = arg;
    struct run *r = j->r;

    for (;;) {
        size_t i;

        pthread_mutex_lock(&r->mu);
        if (r->stop || r->next >= r->files->n) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        i = r->next++;
        r->started[i] = true;
        pthread_mutex_unlock(&r->mu);
        r->outcomes[i] = upload_one(r, j, &r->files->v[i]);
    }
    return NULL;
}

int cli_upload_run(const struct cli_opts *o)
{
    struct cli_filelist files = { 0 };
    struct run r;
    struct job *jobs = NULL;
    struct tx_err err = { 0 };
    long long total = 0;
    size_t njobs;
    size_t started_jobs = 0;
    size_t i;
    int code = CLI_USAGE;

    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.mu, NULL);
    if (cli_files_expand(o->inputs, o->ninputs, &files, &err) != 0) {
        fprintf(stderr, "txupload: %s\n", err.msg);
        goto out;
    }
    for (i = 0; i < files.n; i++)
        total += files.v[i].size > 0 ? files.v[i].size : 0;
    njobs = (size_t) o->jobs < files.n ? (size_t) o->jobs : files.n;
    r.o = o;
    r.files = &files;
    r.outcomes = calloc(files.n, sizeof(*r.outcomes));
    r.started = calloc(files.n, sizeof(*r.started));
    jobs = calloc(njobs, sizeof(*jobs));
    if (r.outcomes == NULL || r.started == NULL || jobs == NULL ||
        cli_ui_init(&r.ui, o, njobs, files.n, total) != 0) {
        fprintf(stderr, "txupload: out of memory\n");
        goto out;
    }
    for (i = 0; i < njobs; i++) {
        jobs[i].r = &r;
        jobs[i].id = i;
        jobs[i].http = cli_http_create();
        if (jobs[i].http == NULL) {
            fprintf(stderr, "txupload: out of memory\n");
            goto join;
        }
    }
    /* One job runs on this thread; the others on their own. */
    for (i = 1; i < njobs; i++) {
        if (pthread_create(&jobs[i].thread, NULL, worker, &jobs[i]) != 0)
            break;
        started_jobs++;
    }
    worker(&jobs[0]);
join:
    for (i = 1; i <= started_jobs; i++)
        pthread_join(jobs[i].thread, NULL);
    for (i = 0; i < files.n; i++) {
        if (r.started[i])
            continue;
        /* Not sent because the key was refused (or the URL is bad): say so, count it. */
        r.outcomes[i] = r.auth_hint ? CLI_AUTH : CLI_USAGE;
        if (o->json) {
            json_t *s = json_pack("{s:s,s:s}", "file", files.v[i].display, "result", "skipped");

            emit_json(&r, s);
        }
    }
    code = cli_exit_code(r.outcomes, files.n);
    cli_ui_cleanup(&r.ui); /* the bar's last state stays on screen, the summary goes below it */
    if (!o->json && !o->quiet && files.n > 1) {
        size_t ok = 0;

        for (i = 0; i < files.n; i++)
            ok += r.outcomes[i] == CLI_OK;
        fprintf(stderr, "txupload: %zu of %zu file(s) accepted\n", ok, files.n);
    }
out:
    if (jobs != NULL) {
        for (i = 0; i < njobs; i++)
            cli_http_destroy(jobs[i].http);
    }
    cli_ui_cleanup(&r.ui);
    free(jobs);
    free(r.outcomes);
    free(r.started);
    pthread_mutex_destroy(&r.mu);
    cli_files_cleanup(&files);
    return code;
}
