#include "common/tx_log.h"

#include "common/tx_buf.h"
#include "common/tx_status.h"
#include "common/tx_time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 65536

/* Start-up configuration: written once by tx_log_init before threads exist, then read-only. */
static const char *log_prog = "txpipe";
static enum tx_log_level log_min = TX_LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void tx_log_init(const char *prog, enum tx_log_level min)
{
    if (prog != NULL)
        log_prog = prog;
    log_min = min;
}

int tx_log_level_parse(const char *s, enum tx_log_level *out)
{
    size_t i;

    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum tx_log_level) i;
            return 0;
        }
    }
    return TX_EINVAL;
}

int tx_log_enabled(enum tx_log_level lvl)
{
    return lvl >= log_min;
}

void tx_log_write(enum tx_log_level lvl, const char *const *kv, const char *fmt, ...)
{
    char msg[4096];
    char ts[40];
    struct tx_buf b;
    va_list ap;
    size_t i;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t) n >= sizeof(msg))
        n = sizeof(msg) - 1;

    tx_time_format_ms(tx_time_now_ms(), ts, sizeof(ts));
    tx_buf_init(&b, LINE_MAX_BYTES);
    tx_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":", ts,
                  level_names[lvl <= TX_LOG_ERROR ? lvl : TX_LOG_ERROR]);
    tx_buf_json_str(&b, log_prog, strlen(log_prog));
    tx_buf_puts(&b, ",\"msg\":");
    tx_buf_json_str(&b, msg, (size_t) n);
    for (i = 0; kv != NULL && kv[i] != NULL && kv[i + 1] != NULL; i += 2) {
        tx_buf_puts(&b, ",");
        tx_buf_json_str(&b, kv[i], strlen(kv[i]));
        tx_buf_puts(&b, ":");
        tx_buf_json_str(&b, kv[i + 1], strlen(kv[i + 1]));
    }
    if (tx_buf_puts(&b, "}\n") != 0) {
        /* Only reachable with huge kv values: say so rather than write broken JSON. */
        tx_buf_reset(&b);
        tx_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"error\",\"msg\":\"log line too long\"}\n",
                      ts);
    }
    if (b.data != NULL) {
        ssize_t w = write(STDERR_FILENO, b.data, b.len);
        (void) w;
    }
    tx_buf_cleanup(&b);
}
