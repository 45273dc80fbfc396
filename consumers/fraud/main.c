/*
 * txfraud: scores each transaction.received event of queue tx.fraud against the rules file, sets
 * tx:flag:<_id> for flagged ones and publishes transaction.scored (with confirms) before acking.
 * The logic is in fraud_app.c; this file only describes the daemon to the consumer skeleton.
 */
#include "consumers/common/cons.h"
#include "consumers/fraud/fraud_app.h"

#include <string.h>

int main(int argc, char **argv)
{
    struct fraud_app app;
    struct cons_spec spec;
    size_t nconfig = 0;

    memset(&app, 0, sizeof(app));
    memset(&spec, 0, sizeof(spec));
    spec.prog = "txfraud";
    spec.summary = "Scores transactions for fraud (rules in TX_FRAUD_RULES), flags them in Redis "
                   "and publishes transaction.scored.";
    spec.queue = "tx.fraud";
    spec.health_listen = "127.0.0.1:9101";
    spec.default_prefetch = 1000;
    spec.publishes = true;
    spec.config = fraud_config_table(&nconfig);
    spec.nconfig = nconfig;
    spec.app_config = &app.cfg;
    spec.init = fraud_app_init;
    spec.fini = fraud_app_fini;
    spec.handle_batch = fraud_app_handle_batch;
    spec.ready = fraud_app_ready;
    spec.app = &app;
    return cons_main(argc, argv, &spec);
}
