/* txupload's command line: options, environment, sub-commands and their errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"

/* A fake environment: NULL-terminated "KEY=value" strings. */
static const char *fake_env(void *ctx, const char *key)
{
    const char *const *e = ctx;
    size_t n = strlen(key);

    for (; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, key, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    }
    return NULL;
}

static const char *const no_env[] = { NULL };

/* Parses a NULL-terminated argument list (without argv[0]). */
static int parse(struct cli_opts *o, const char *const *env, struct tx_err *err, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    const char *a;

    argv[argc++] = "txupload";
    va_start(ap, err);
    for (a = va_arg(ap, const char *); a != NULL && argc < 63; a = va_arg(ap, const char *))
        argv[argc++] = (char *) a;
    va_end(ap);
    argv[argc] = NULL;
    return cli_opts_parse(o, argc, argv, fake_env, (void *) env, err);
}

static void test_defaults(void **state)
{
    struct cli_opts o;
    struct tx_err err = { 0 };

    (void) state;
    assert_int_equal(parse(&o, no_env, &err, "a.json", NULL), 0);
    assert_int_equal(o.cmd, CLI_CMD_UPLOAD);
    assert_string_equal(o.url, "http://127.0.0.1:8080");
    assert_string_equal(o.api_key, "");
    assert_string_equal(o.admin_key, "");
    assert_null(o.idem_key);
    assert_null(o.content_type);
    assert_int_equal(o.retries, 5);
    assert_int_equal(o.timeout_s, CLI_DEFAULT_TIMEOUT_S);
    assert_int_equal(o.jobs, CLI_DEFAULT_JOBS);
    assert_false(o.force);
    assert_false(o.wait);
    assert_false(o.json);
    assert_int_equal(o.progress, CLI_PROGRESS_AUTO);
    assert_int_equal(o.ninputs, 1);
    assert_string_equal(o.inputs[0], "a.json");
    cli_opts_cleanup(&o);
    cli_opts_cleanup(&o); /* idempotent */
}

static void test_env_and_override(void **state)
{
    const char *const env[] = { "TX_UPLOAD_URL=http://gw.example:8000/", "TX_API_KEY=envkey",
                                "TX_ADMIN_API_KEY=adm", NULL };
    struct cli_opts o;
    struct tx_err err = { 0 };

    (void) state;
    assert_int_equal(parse(&o, env, &err, "a.json", NULL), 0);
    assert_string_equal(o.url, "http://gw.example:8000"); /* trailing slash dropped */
    assert_string_equal(o.api_key, "envkey");
    assert_string_equal(o.admin_key, "adm");
    cli_opts_cleanup(&o);

    assert_int_equal(parse(&o, env, &err, "--url", "https://x.test", "--api-key=cli", "a.json",
                           "--admin-key", "adm2", NULL),
                     0);
    assert_string_equal(o.url, "https://x.test");
    assert_string_equal(o.api_key, "cli");
    assert_string_equal(o.admin_key, "adm2");
    cli_opts_cleanup(&o);
}

static void test_all_options(void **state)
{
    struct cli_opts o;
    struct tx_err err = { 0 };

    (void) state;
    assert_int_equal(parse(&o, no_env, &err, "--force", "--wait", "--json", "-q", "--retries", "0",
                           "--timeout=3", "--wait-timeout", "9", "-j", "7", "--no-progress",
                           "--content-type", "application/x-ndjson", "dir", "-", "--",
                           "--odd-name.json", NULL),
                     0);
    assert_true(o.force);
    assert_true(o.wait);
    assert_true(o.json);
    assert_true(o.quiet);
    assert_int_equal(o.retries, 0);
    assert_int_equal(o.timeout_s, 3);
    assert_int_equal(o.wait_timeout_s, 9);
    assert_int_equal(o.jobs, 7);
    assert_int_equal(o.progress, CLI_PROGRESS_OFF);
    assert_string_equal(o.content_type, "application/x-ndjson");
    assert_int_equal(o.ninputs, 3);
    assert_string_equal(o.inputs[0], "dir");
    assert_string_equal(o.inputs[1], "-");
    assert_string_equal(o.inputs[2], "--odd-name.json");
    cli_opts_cleanup(&o);

    assert_int_equal(
        parse(&o, no_env, &err, "--progress", "--idempotency-key", "k-1", "f.json", NULL), 0);
    assert_int_equal(o.progress, CLI_PROGRESS_ON);
    assert_string_equal(o.idem_key, "k-1");
    cli_opts_cleanup(&o);
}

static void test_subcommands(void **state)
{
    struct cli_opts o;
    struct tx_err err = { 0 };
    const char *id = "01a209d0-52b1-7e03-afca-f9e3a51d0599";

    (void) state;
    assert_int_equal(parse(&o, no_env, &err, "status", id, NULL), 0);
    assert_int_equal(o.cmd, CLI_CMD_STATUS);
    assert_int_equal(o.ninputs, 1);
    assert_string_equal(o.inputs[0], id);
    cli_opts_cleanup(&o);
    assert_int_equal(parse(&o, no_env, &err, "--json", "replay", id, NULL), 0);
    assert_int_equal(o.cmd, CLI_CMD_REPLAY);
    cli_opts_cleanup(&o);
    assert_int_equal(parse(&o, no_env, &err, "client", "cliente1", "--json", NULL), 0);
    assert_int_equal(o.cmd, CLI_CMD_CLIENT);
    assert_string_equal(o.inputs[0], "cliente1");
    cli_opts_cleanup(&o);
    /* A file named like a sub-command is reached through a path. */
    assert_int_equal(parse(&o, no_env, &err, "./status", NULL), 0);
    assert_int_equal(o.cmd, CLI_CMD_UPLOAD);
    cli_opts_cleanup(&o);

    assert_int_equal(parse(&o, no_env, &err, "status", NULL), TX_EINVAL);
    assert_non_null(strstr(err.msg, "exactly one"));
    assert_int_equal(parse(&o, no_env, &err, "status", id, id, NULL), TX_EINVAL);
    assert_int_equal(parse(&o, no_env, &err, "status", "not-a-uuid", NULL), TX_EINVAL);
    assert_non_null(strstr(err.msg, "not an upload id"));
    /* UUIDv4, not v7 */
    assert_int_equal(
        parse(&o, no_env, &err, "replay", "01a209d0-52b1-4e03-afca-f9e3a51d0599", NULL), TX_EINVAL);
    assert_int_equal(parse(&o, no_env, &err, "client", "bad id", NULL), TX_EINVAL);
    assert_non_null(strstr(err.msg, "not a client id"));
}

static void test_help_version(void **state)
{
    struct cli_opts o;
    struct tx_err err = { 0 };

    (void) state;
    assert_int_equal(parse(&o, no_env, &err, "--help", NULL), 0);
    assert_int_equal(o.cmd, CLI_CMD_HELP);
    cli_opts_cleanup(&o);
    assert_int_equal(parse(&o, no_env, &err, "-V", NULL), 0);
    assert_int_equal(o.cmd, CLI_CMD_VERSION);
    cli_opts_cleanup(&o);
}

static void test_errors(void **state)
{
    const char *const bad_url[] = { "TX_UPLOAD_URL=ftp://x", NULL };
    struct cli_opts o;
    struct tx_err err = { 0 };

    (void) state;
    assert_int_equal(parse(&o, no_env, &err, NULL), TX_EINVAL);
    assert_non_null(strstr(err.msg, "nothing to upload"));
    assert_int_equal(parse(&o, no_env, &err, "--bogus", "a.json", NULL), TX_EINVAL);
    assert_non_null(strstr(err.msg, "--bogus"));
    assert_int_equal(parse(&o, no_env, &err, "a.json", "--retries", NULL), TX_EINVAL);
    assert_non_null(strstr(err.msg, "needs a value"));
    assert_int_equal(parse(&o, no_env, &err, "--retries", "-1", "a.json", NULL), TX_EINVAL);
    assert_int_equal(parse(&o, no_env, &err, "--retries", "101", "a.json", NULL), TX_EINVAL);
    assert_int_equal(parse(&o, no_env, &err, "--retries", "2x", "a.json", NULL), TX_EINVAL);
    assert_int_equal(parse(&o, no_env, &err, "--timeout", "0", "a.json", NULL), TX_EINVAL);
    assert_int_equal(parse(&o, no_env, &err, "--jobs", "33", "a.json", NULL), TX_EINVAL);
    assert_int_equal(parse(&o, no_env, &err, "--force=1", "a.json", NULL), TX_EINVAL);
    assert_non_null(strstr(err.msg, "takes no value"));
    assert_int_equal(parse(&o, no_env, &err, "--url", "127.0.0.1:8080", "a.json", NULL), TX_EINVAL);
    assert_non_null(strstr(err.msg, "http://"));
    assert_int_equal(parse(&o, bad_url, &err, "a.json", NULL), TX_EINVAL);
    assert_int_equal(parse(&o, no_env, &err, "-", "-", NULL), TX_EINVAL);
    assert_int_equal(parse(&o, no_env, &err, "--idempotency-key", "k", "a.json", "b.json", NULL),
                     TX_EINVAL);
    assert_non_null(strstr(err.msg, "exactly one input"));
    assert_int_equal(parse(&o, no_env, &err, "--idempotency-key", "has space", "a.json", NULL),
                     TX_EINVAL);
    assert_int_equal(parse(&o, no_env, &err, "--content-type", "text/plain", "a.json", NULL),
                     TX_EINVAL);
}

static void test_client_id(void **state)
{
    (void) state;
    assert_true(cli_client_id_valid("cliente1"));
    assert_true(cli_client_id_valid("a.b:c@d-e_f"));
    assert_false(cli_client_id_valid(""));
    assert_false(cli_client_id_valid("a/b"));
    assert_false(cli_client_id_valid("a b"));
    assert_true(
        cli_client_id_valid("0123456789012345678901234567890123456789012345678901234567890123"));
    assert_false(
        cli_client_id_valid("01234567890123456789012345678901234567890123456789012345678901234"));
}

static void test_usage_text(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    (void) state;
    assert_non_null(f);
    cli_usage_print(f);
    fclose(f);
    /* Every option and variable is documented, and the exit codes are listed. */
    assert_non_null(strstr(buf, "--idempotency-key"));
    assert_non_null(strstr(buf, "--wait-timeout"));
    assert_non_null(strstr(buf, "TX_UPLOAD_URL"));
    assert_non_null(strstr(buf, "TX_API_KEY"));
    assert_non_null(strstr(buf, "TX_ADMIN_API_KEY"));
    assert_non_null(strstr(buf, "  4  the API key"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_env_and_override),
        cmocka_unit_test(test_all_options),  cmocka_unit_test(test_subcommands),
        cmocka_unit_test(test_help_version), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_client_id),    cmocka_unit_test(test_usage_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
