#include "cli/cli_args.h"

#include "cli/cli_idem.h"
#include "common/tx_id.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The environment txupload reads once at start; the command line overrides it. */
struct cli_env {
    char *url;
    char *api_key;
    char *admin_key;
};

static const struct tx_config_entry env_table[] = {
    { "TX_UPLOAD_URL", TX_CONFIG_STRING, CLI_DEFAULT_URL, 1, 2048, offsetof(struct cli_env, url), 0,
      "base URL of txpipe (nginx, or the gateway itself); --url overrides" },
    { "TX_API_KEY", TX_CONFIG_STRING, "", 0, 0, offsetof(struct cli_env, api_key), TX_CONFIG_SECRET,
      "API key sent as \"Authorization: Bearer <key>\"; --api-key overrides" },
    { "TX_ADMIN_API_KEY", TX_CONFIG_STRING, "", 0, 0, offsetof(struct cli_env, admin_key),
      TX_CONFIG_SECRET, "admin API key for `txupload replay`; --admin-key overrides" },
};

#define ENV_N (sizeof(env_table) / sizeof(env_table[0]))

void cli_usage_print(FILE *out)
{
    fputs(
        "usage: txupload [options] FILE|DIR|- ...     upload transaction files\n"
        "       txupload [options] status UPLOAD_ID    processing status of an upload\n"
        "       txupload [options] client CLIENT_ID    a client's cached summary and fraud flag\n"
        "       txupload [options] replay UPLOAD_ID    re-publish a stored upload (admin key)\n"
        "\n"
        "Uploads each FILE (a DIR: its *.json and *.ndjson files, sorted by name; -: standard\n"
        "input) to txpipe's gateway and prints one line (or, with --json, one JSON object) per\n"
        "file. The Idempotency-Key is derived from the file's SHA-256, so running the same\n"
        "command again does not upload anything twice: the first answer is returned (replayed).\n"
        "A file named like a sub-command is uploaded with ./status etc.\n"
        "\n"
        "options:\n"
        "  --url URL              txpipe base URL (default " CLI_DEFAULT_URL
        ", env TX_UPLOAD_URL)\n"
        "  --api-key KEY          API key for uploads, status, client and --wait (env\n"
        "                         TX_API_KEY or TX_API_KEY_FILE)\n"
        "  --admin-key KEY        admin key for replay (env TX_ADMIN_API_KEY[_FILE])\n"
        "  --idempotency-key KEY  use KEY instead of sha256:<hex of the content> (one input only)\n"
        "  --force                upload again: adds a random suffix to the Idempotency-Key\n"
        "  --content-type TYPE    override the type chosen from the extension (.ndjson:\n"
        "                         application/x-ndjson, else application/json)\n"
        "  --retries N            retries of a request after a transient failure (default 5);\n"
        "                         Retry-After is honoured on 409/429/503, otherwise capped\n"
        "                         exponential backoff (0.5 s doubling up to 30 s)\n"
        "  --timeout SECONDS      limit on each HTTP request, connect included (default 120)\n"
        "  --wait                 follow processing until every record is persisted, scored\n"
        "                         and notified, or until --wait-timeout\n"
        "  --wait-timeout SECONDS limit of --wait (default 300)\n"
        "  -j, --jobs N           parallel uploads (default 2, at most 32)\n"
        "  --json                 machine output: one JSON object per file (or per command)\n"
        "  -q, --quiet            no progress bar and no line for accepted files\n"
        "  --progress, --no-progress\n"
        "                         force the progress bar on or off (default: on when stderr is\n"
        "                         a terminal)\n"
        "  -h, --help             this text;  -V, --version  the version\n"
        "\n"
        "Errors are printed as file:line: field: message (validation) and\n"
        "file:line:column: malformed JSON: reason (syntax).\n"
        "\n"
        "exit status:\n"
        "  0  every file accepted (or replayed); the command succeeded\n"
        "  1  some file rejected (400 malformed JSON, 422 invalid records, 413, 415, ...) or\n"
        "     the upload or client was not found\n"
        "  2  usage error, or a local file that cannot be read\n"
        "  3  server unavailable after the retries (no answer, 5xx, 429, 409), or --wait timed "
        "out\n"
        "  4  the API key is missing or was refused (401/403)\n"
        "\n"
        "environment:\n",
        out);
    tx_config_print_help(out, env_table, ENV_N);
}

bool cli_client_id_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    size_t i;

    if (n == 0 || n > 64)
        return false;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) s[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              strchr("_.:@-", ch) != NULL))
            return false;
    }
    return true;
}

static int set_str(char **dst, const char *v, struct tx_err *err)
{
    char *c = strdup(v);

    if (c == NULL)
        return tx_err_set(err, TX_ENOMEM, "out of memory");
    free(*dst);
    *dst = c;
    return 0;
}

static int set_num(long long *dst, const char *opt, const char *v, long long min, long long max,
                   struct tx_err *err)
{
    char *end = NULL;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || n < min || n > max)
        return tx_err_set(err, TX_EINVAL, "%s: \"%.40s\" is not a whole number in [%lld, %lld]",
                          opt, v, min, max);
    *dst = n;
    return 0;
}

/* Options that take a value. */
static const char *const valued[] = {
    "--url",          "--api-key", "--admin-key", "--idempotency-key",
    "--content-type", "--retries", "--timeout",   "--wait-timeout",
    "--jobs",         "-j",
};

static bool takes_value(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(valued) / sizeof(valued[0]); i++) {
        if (strcmp(name, valued[i]) == 0)
            return true;
    }
    return false;
}

static int apply_value(struct cli_opts *o, const char *name, const char *v, struct tx_err *err)
{
    if (strcmp(name, "--url") == 0)
        return set_str(&o->url, v, err);
    if (strcmp(name, "--api-key") == 0)
        return set_str(&o->api_key, v, err);
    if (strcmp(name, "--admin-key") == 0)
        return set_str(&o->admin_key, v, err);
    if (strcmp(name, "--idempotency-key") == 0) {
        if (!cli_idem_key_valid(v))
            return tx_err_set(err, TX_EINVAL,
                              "--idempotency-key: must be 1-%d printable ASCII characters without "
                              "spaces, quotes or backslashes",
                              CLI_IDEM_KEY_MAX);
        return set_str(&o->idem_key, v, err);
    }
    if (strcmp(name, "--content-type") == 0) {
        if (strcmp(v, "application/json") != 0 && strcmp(v, "application/x-ndjson") != 0 &&
            strcmp(v, "application/ndjson") != 0)
            return tx_err_set(err, TX_EINVAL,
                              "--content-type: use application/json or application/x-ndjson");
        return set_str(&o->content_type, v, err);
    }
    if (strcmp(name, "--retries") == 0)
        return set_num(&o->retries, name, v, 0, CLI_MAX_RETRIES, err);
    if (strcmp(name, "--timeout") == 0)
        return set_num(&o->timeout_s, name, v, 1, CLI_MAX_SECONDS, err);
    if (strcmp(name, "--wait-timeout") == 0)
        return set_num(&o->wait_timeout_s, name, v, 1, CLI_MAX_SECONDS, err);
    return set_num(&o->jobs, name, v, 1, CLI_MAX_JOBS, err);
}

static int apply_flag(struct cli_opts *o, const char *a, bool *help, bool *version,
                      struct tx_err *err)
{
    if (strcmp(a, "--force") == 0)
        o->force = true;
    else if (strcmp(a, "--wait") == 0)
        o->wait = true;
    else if (strcmp(a, "--json") == 0)
        o->json = true;
    else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
        o->quiet = true;
    else if (strcmp(a, "--progress") == 0)
        o->progress = CLI_PROGRESS_ON;
    else if (strcmp(a, "--no-progress") == 0)
        o->progress = CLI_PROGRESS_OFF;
    else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
        *help = true;
    else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
        *version = true;
    else
        return tx_err_set(err, TX_EINVAL, "unknown option %.60s (see --help)", a);
    return 0;
}

/* Checks the whole command once everything is read. */
static int check(struct cli_opts *o, struct tx_err *err)
{
    size_t n = strlen(o->url);
    size_t i;
    size_t stdin_count = 0;

    while (n > 0 && o->url[n - 1] == '/')
        o->url[--n] = '\0';
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)
        return tx_err_set(err, TX_EINVAL, "--url: \"%.80s\" must start with http:// or https://",
                          o->url);
    if (o->ninputs > 0 && strcmp(o->inputs[0], "status") == 0)
        o->cmd = CLI_CMD_STATUS;
    else if (o->ninputs > 0 && strcmp(o->inputs[0], "client") == 0)
        o->cmd = CLI_CMD_CLIENT;
    else if (o->ninputs > 0 && strcmp(o->inputs[0], "replay") == 0)
        o->cmd = CLI_CMD_REPLAY;
    if (o->cmd != CLI_CMD_UPLOAD) {
        const char *name = o->inputs[0];

        if (o->ninputs != 2)
            return tx_err_set(err, TX_EINVAL, "%s takes exactly one %s", name,
                              o->cmd == CLI_CMD_CLIENT ? "CLIENT_ID" : "UPLOAD_ID");
        memmove(o->inputs, o->inputs + 1, sizeof(*o->inputs));
        o->ninputs = 1;
        if (o->cmd == CLI_CMD_CLIENT && !cli_client_id_valid(o->inputs[0]))
            return tx_err_set(
                err, TX_EINVAL,
                "client: \"%.70s\" is not a client id (1-64 of A-Z a-z 0-9 _ . : @ -)",
                o->inputs[0]);
        if (o->cmd != CLI_CMD_CLIENT && !tx_uuid7_valid(o->inputs[0]))
            return tx_err_set(err, TX_EINVAL,
                              "%s: \"%.70s\" is not an upload id (a lowercase UUIDv7)", name,
                              o->inputs[0]);
        return 0;
    }
    if (o->ninputs == 0)
        return tx_err_set(err, TX_EINVAL,
                          "nothing to upload: name a FILE, a DIR or - (see --help)");
    for (i = 0; i < o->ninputs; i++)
        stdin_count += strcmp(o->inputs[i], "-") == 0;
    if (stdin_count > 1)
        return tx_err_set(err, TX_EINVAL, "- (standard input) may be given only once");
    if (o->idem_key != NULL && o->ninputs > 1)
        return tx_err_set(err, TX_EINVAL,
                          "--idempotency-key needs exactly one input (each file gets its own key)");
    return 0;
}

int cli_opts_parse(struct cli_opts *o, int argc, char **argv, tx_getenv_fn getenv_fn, void *ctx,
                   struct tx_err *err)
{
    struct cli_env env = { 0 };
    bool help = false;
    bool version = false;
    bool positional_only = false;
    int i;
    int rc;

    memset(o, 0, sizeof(*o));
    o->cmd = CLI_CMD_UPLOAD;
    o->progress = CLI_PROGRESS_AUTO;
    o->retries = CLI_DEFAULT_RETRIES;
    o->timeout_s = CLI_DEFAULT_TIMEOUT_S;
    o->wait_timeout_s = CLI_DEFAULT_WAIT_TIMEOUT_S;
    o->jobs = CLI_DEFAULT_JOBS;
    rc = tx_config_load(env_table, ENV_N, &env, getenv_fn, ctx, err);
    if (rc != 0)
        return rc;
    o->url = env.url;
    o->api_key = env.api_key;
    o->admin_key = env.admin_key;
    o->inputs = calloc(argc > 0 ? (size_t) argc : 1, sizeof(*o->inputs));
    if (o->inputs == NULL) {
        rc = tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    for (i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        const char *eq;
        char name[32];

        if (positional_only || a[0] != '-' || strcmp(a, "-") == 0) {
            o->inputs[o->ninputs++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            positional_only = true;
            continue;
        }
        eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq != NULL && (size_t) (eq - a) < sizeof(name)) {
            memcpy(name, a, (size_t) (eq - a));
            name[eq - a] = '\0';
            if (!takes_value(name)) {
                rc = tx_err_set(err, TX_EINVAL, "%s takes no value", name);
                break;
            }
            rc = apply_value(o, name, eq + 1, err);
            continue;
        }
        if (takes_value(a)) {
            if (i + 1 >= argc) {
                rc = tx_err_set(err, TX_EINVAL, "%s needs a value", a);
                break;
            }
            rc = apply_value(o, a, argv[++i], err);
            continue;
        }
        rc = apply_flag(o, a, &help, &version, err);
    }
    if (rc != 0)
        goto out;
    if (help || version) {
        o->cmd = help ? CLI_CMD_HELP : CLI_CMD_VERSION;
        goto out;
    }
    rc = check(o, err);
out:
    if (rc != 0)
        cli_opts_cleanup(o);
    return rc;
}

void cli_opts_cleanup(struct cli_opts *o)
{
    if (o == NULL)
        return;
    free(o->url);
    free(o->api_key);
    free(o->admin_key);
    free(o->idem_key);
    free(o->content_type);
    free(o->inputs);
    o->url = NULL;
    o->api_key = NULL;
    o->admin_key = NULL;
    o->idem_key = NULL;
    o->content_type = NULL;
    o->inputs = NULL;
    o->ninputs = 0;
}
