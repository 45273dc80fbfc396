/* txupload status | client | replay: one resource each, printed for people or as JSON. */
#include "cli/cli_run.h"

#include "cli/cli_problem.h"
#include "cli/cli_status.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Prints why a command failed and returns its exit code. */
static int failed(struct cli_ui *ui, const char *label, enum cli_outcome oc,
                  const struct cli_response *resp, int attempts, const struct tx_err *err)
{
    struct tx_buf lines;

    if (resp->status != 0) {
        tx_buf_init(&lines, 1u << 22);
        cli_problem_format(label, resp->status, resp->body.data, resp->body.len, &lines);
        if (lines.len > 0)
            cli_ui_write(ui, stderr, lines.data);
        tx_buf_cleanup(&lines);
    }
    if (oc == CLI_UNAVAILABLE)
        cli_ui_printf(ui, stderr, "%s: error: server unavailable after %d attempt(s): %s\n", label,
                      attempts, err->msg);
    else if (oc == CLI_USAGE)
        cli_ui_printf(ui, stderr, "%s: error: %s\n", label, err->msg);
    return (int) oc;
}

/* After a 401/403: says which key the command needs. */
static void auth_hint(struct cli_ui *ui, const struct cli_opts *o, enum cli_outcome oc)
{
    if (oc != CLI_AUTH)
        return;
    cli_ui_printf(ui, stderr, "txupload: this command needs an API key: %s\n",
                  o->api_key[0] != '\0' ? "the one given (--api-key or TX_API_KEY) was refused"
                                        : "pass --api-key or set TX_API_KEY");
}

/* GET url; the answer in resp (with the API key). */
static enum cli_outcome get(struct cli_http *h, const struct cli_opts *o, struct cli_ui *ui,
                            const char *label, const char *url, struct cli_response *resp,
                            int *attempts, struct tx_err *err)
{
    char auth[1100];
    const char *hdrs[] = { "Accept: application/json, application/problem+json", NULL, NULL };
    struct cli_request req = {
        .method = "GET", .url = url, .headers = hdrs, .timeout_ms = o->timeout_s * 1000
    };

    /* The read routes answer personal data: they need the API key, like uploads. */
    hdrs[1] = cli_auth_header(o, auth, sizeof(auth));
    return cli_call(h, o, ui, label, &req, resp, attempts, err);
}

static void print_body(struct cli_ui *ui, const struct cli_response *resp)
{
    cli_ui_printf(ui, stdout, "%.*s\n", (int) resp->body.len,
                  resp->body.data != NULL ? resp->body.data : "");
}

int cli_status_run(const struct cli_opts *o)
{
    struct cli_http *h = cli_http_create();
    struct cli_ui ui;
    struct cli_response resp;
    struct tx_err err = { 0 };
    struct tx_buf b;
    char url[2300];
    char label[64];
    const char *id = o->inputs[0];
    enum cli_outcome oc;
    int attempts = 0;
    int code;

    cli_response_init(&resp);
    tx_buf_init(&b, 1u << 22);
    if (h == NULL || cli_ui_init(&ui, o, 0, 0, 0) != 0) {
        fprintf(stderr, "txupload: out of memory\n");
        cli_http_destroy(h);
        return CLI_USAGE;
    }
    ui.bar = false;
    snprintf(label, sizeof(label), "upload %s", id);
    snprintf(url, sizeof(url), "%s/api/v1/uploads/%s", o->url, id);
    oc = get(h, o, &ui, label, url, &resp, &attempts, &err);
    if (oc == CLI_OK && o->wait)
        oc = cli_wait_processing(h, o, &ui, label, id, -1, &resp, &err);
    if (oc != CLI_OK && !(o->wait && oc == CLI_UNAVAILABLE && resp.status == 200)) {
        code = failed(&ui, label, oc, &resp, attempts, &err);
        auth_hint(&ui, o, oc);
        goto out;
    }
    if (oc != CLI_OK)
        cli_ui_printf(&ui, stderr, "%s: %s\n", label, err.msg);
    code = (int) oc;
    if (o->json) {
        print_body(&ui, &resp);
        goto out;
    }
    if (cli_status_format(resp.body.data, resp.body.len, "  ", &b) != 0) {
        cli_ui_printf(&ui, stderr, "%s: error: the answer is not an upload status\n", label);
        code = CLI_UNAVAILABLE;
        goto out;
    }
    {
        json_t *root = json_loadb(resp.body.data, resp.body.len, 0, NULL);
        const char *obj = json_string_value(json_object_get(root, "object"));
        const char *at = json_string_value(json_object_get(root, "received_at"));

        cli_ui_printf(&ui, stdout, "upload %s (received %s, object %s)\n%s", id,
                      at != NULL ? at : "?", obj != NULL ? obj : "?", b.data);
        json_decref(root);
    }
out:
    tx_buf_cleanup(&b);
    cli_response_cleanup(&resp);
    cli_ui_cleanup(&ui);
    cli_http_destroy(h);
    return code;
}

int cli_client_run(const struct cli_opts *o)
{
    struct cli_http *h = cli_http_create();
    struct cli_ui ui;
    struct cli_response sum;
    struct cli_response fraud;
    struct tx_err err = { 0 };
    struct tx_buf b;
    char url[2300];
    char label[96];
    const char *id = o->inputs[0];
    enum cli_outcome oc;
    int attempts = 0;
    int code;

    cli_response_init(&sum);
    cli_response_init(&fraud);
    tx_buf_init(&b, 1u << 22);
    if (h == NULL || cli_ui_init(&ui, o, 0, 0, 0) != 0) {
        fprintf(stderr, "txupload: out of memory\n");
        cli_http_destroy(h);
        return CLI_USAGE;
    }
    ui.bar = false;
    snprintf(label, sizeof(label), "client %s", id);
    snprintf(url, sizeof(url), "%s/api/v1/clients/%s/summary", o->url, id);
    oc = get(h, o, &ui, label, url, &sum, &attempts, &err);
    /* No summary (none in the last 60 s) is an answer, not a failure. */
    if (oc != CLI_OK && !(oc == CLI_REJECTED && sum.status == 404)) {
        code = failed(&ui, label, oc, &sum, attempts, &err);
        auth_hint(&ui, o, oc);
        goto out;
    }
    snprintf(url, sizeof(url), "%s/api/v1/clients/%s/fraud", o->url, id);
    oc = get(h, o, &ui, label, url, &fraud, &attempts, &err);
    if (oc != CLI_OK) {
        code = failed(&ui, label, oc, &fraud, attempts, &err);
        auth_hint(&ui, o, oc);
        goto out;
    }
    code = CLI_OK;
    if (o->json) {
        json_t *s = sum.status == 200 ? json_loadb(sum.body.data, sum.body.len, 0, NULL) : NULL;
        json_t *f = json_loadb(fraud.body.data, fraud.body.len, 0, NULL);
        json_t *all = json_pack("{s:s,s:o,s:o}", "client_id", id, "summary",
                                s != NULL ? s : json_null(), "fraud", f != NULL ? f : json_null());
        char *text = json_dumps(all, JSON_COMPACT);

        cli_ui_printf(&ui, stdout, "%s\n", text != NULL ? text : "null");
        free(text);
        json_decref(all);
        goto out;
    }
    if (cli_client_format(id, sum.status, sum.body.data, sum.body.len, fraud.body.data,
                          fraud.body.len, &b) != 0) {
        cli_ui_printf(&ui, stderr, "%s: error: the fraud answer is not an object\n", label);
        code = CLI_UNAVAILABLE;
        goto out;
    }
    cli_ui_write(&ui, stdout, b.data);
out:
    tx_buf_cleanup(&b);
    cli_response_cleanup(&sum);
    cli_response_cleanup(&fraud);
    cli_ui_cleanup(&ui);
    cli_http_destroy(h);
    return code;
}

int cli_replay_run(const struct cli_opts *o)
{
    struct cli_http *h = cli_http_create();
    struct cli_ui ui;
    struct cli_response resp;
    struct tx_err err = { 0 };
    char url[2300];
    char label[64];
    char auth[1100];
    const char *hdrs[3] = { "Accept: application/json, application/problem+json", NULL, NULL };
    struct cli_request req = { .method = "POST", .url = url, .headers = hdrs };
    const char *id = o->inputs[0];
    enum cli_outcome oc;
    int attempts = 0;
    int code;

    cli_response_init(&resp);
    if (h == NULL || cli_ui_init(&ui, o, 0, 0, 0) != 0) {
        fprintf(stderr, "txupload: out of memory\n");
        cli_http_destroy(h);
        return CLI_USAGE;
    }
    ui.bar = false;
    snprintf(label, sizeof(label), "replay %s", id);
    snprintf(url, sizeof(url), "%s/api/v1/uploads/%s/replay", o->url, id);
    if (o->admin_key[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->admin_key);
        hdrs[1] = auth;
    }
    req.timeout_ms = o->timeout_s * 1000;
    /* Re-publishing uses the same event ids, so a retried replay is harmless. */
    oc = cli_call(h, o, &ui, label, &req, &resp, &attempts, &err);
    if (oc != CLI_OK) {
        code = failed(&ui, label, oc, &resp, attempts, &err);
        if (oc == CLI_AUTH)
            cli_ui_printf(&ui, stderr,
                          "txupload: replay needs an admin key: pass --admin-key or "
                          "set TX_ADMIN_API_KEY\n");
        else if (resp.status == 405)
            cli_ui_printf(&ui, stderr, "txupload: this gateway has no replay route\n");
        goto out;
    }
    code = CLI_OK;
    if (o->json) {
        print_body(&ui, &resp);
        goto out;
    }
    {
        json_t *root = json_loadb(resp.body.data, resp.body.len, 0, NULL);
        json_t *n = json_object_get(root, "republished");
        json_t *rec = json_object_get(root, "records");

        cli_ui_printf(&ui, stdout, "upload %s: %lld of %lld event(s) re-published\n", id,
                      json_is_integer(n) ? (long long) json_integer_value(n) : -1LL,
                      json_is_integer(rec) ? (long long) json_integer_value(rec) : -1LL);
        json_decref(root);
    }
out:
    cli_response_cleanup(&resp);
    cli_ui_cleanup(&ui);
    cli_http_destroy(h);
    return code;
}
