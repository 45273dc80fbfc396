/* txnotify: e-mails receipts and fraud alerts for scored transactions (see notify_daemon.h). */
#include "consumers/notify/notify_daemon.h"

#include <string.h>

int main(int argc, char **argv)
{
    struct notify_daemon nd;
    struct cons_spec spec;

    memset(&nd, 0, sizeof(nd));
    memset(&spec, 0, sizeof(spec));
    spec.prog = "txnotify";
    spec.summary = "E-mails a receipt for each scored transaction, or fraud alerts to the client "
                   "and to TX_ALERT_EMAIL when it is flagged; publishes notification.sent|failed.";
    spec.queue = "tx.notify";
    spec.health_listen = "127.0.0.1:9102";
    spec.default_prefetch = 64;
    spec.publishes = true;
    spec.config = notify_config_table;
    spec.nconfig = notify_config_table_len;
    spec.app_config = &nd.cfg;
    spec.init = notify_daemon_init;
    spec.fini = notify_daemon_fini;
    spec.handle_batch = notify_daemon_handle_batch;
    spec.ready = notify_daemon_ready;
    spec.app = &nd;
    spec.queue_override = &nd.cfg.queue;
    return cons_main(argc, argv, &spec);
}
