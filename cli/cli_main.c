/* txupload: uploads transaction files to txpipe and follows them through the pipeline. */
#include "cli/cli_args.h"
#include "cli/cli_http.h"
#include "cli/cli_retry.h"
#include "cli/cli_run.h"

#include <signal.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    struct cli_opts o;
    struct tx_err err = { 0 };
    int code;

    if (cli_opts_parse(&o, argc, argv, NULL, NULL, &err) != 0) {
        fprintf(stderr, "txupload: %s\n", err.msg);
        return CLI_USAGE;
    }
    if (o.cmd == CLI_CMD_HELP) {
        cli_usage_print(stdout);
        cli_opts_cleanup(&o);
        return 0;
    }
    if (o.cmd == CLI_CMD_VERSION) {
        printf("txupload " CLI_VERSION "\n");
        cli_opts_cleanup(&o);
        return 0;
    }
    /* A closed stdout (txupload | head) ends the run through write errors, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    if (cli_http_global_init() != 0) {
        fprintf(stderr, "txupload: libcurl initialisation failed\n");
        cli_opts_cleanup(&o);
        return CLI_UNAVAILABLE;
    }
    switch (o.cmd) {
    case CLI_CMD_STATUS:
        code = cli_status_run(&o);
        break;
    case CLI_CMD_CLIENT:
        code = cli_client_run(&o);
        break;
    case CLI_CMD_REPLAY:
        code = cli_replay_run(&o);
        break;
    default:
        code = cli_upload_run(&o);
        break;
    }
    cli_http_global_cleanup();
    cli_opts_cleanup(&o);
    return code;
}
