/*
 * Throwaway benchmark of txnotify's SMTP sender: e-mails per second with one connection reused
 * for every message versus a new connection (greeting, EHLO, QUIT) per message, sending the
 * rendered receipt template to TX_SMTP_URL (maildev in ci/stack).
 *
 * usage: notify_smtp_bench [count]       default 300 messages per mode
 * Needs TX_SMTP_URL and TX_MAIL_API_URL (eval "$(ci/stack env)") and TX_SOURCE_DIR (the repo).
 * Recipients are "bench-<pid>-<mode>-<i>@example.test"; the messages it sent are deleted from
 * maildev one by one afterwards (never "delete all": the mailbox is shared).
 *
 * Build (not part of the CMake build), after building txnotifylib in build-notify:
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. bench/notify_smtp_bench.c \
 *      build-notify/consumers/notify/libtxnotifylib.a build-notify/common/libtxcommon.a \
 *      -lcurl -ljansson -lcrypto -lpthread -lm -o notify_smtp_bench
 */
#include "common/tx_buf.h"
#include "common/tx_time.h"
#include "consumers/notify/notify_header.h"
#include "consumers/notify/notify_smtp.h"
#include "consumers/notify/notify_template.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t collect(char *p, size_t s, size_t n, void *ud)
{
    return tx_buf_append(ud, p, s * n) == 0 ? s * n : 0;
}

/* Deletes from maildev every message whose recipient starts with prefix; returns the count. */
static int cleanup(const char *api, const char *prefix)
{
    CURL *h = curl_easy_init();
    struct tx_buf out;
    char url[512];
    json_t *all;
    json_t *m;
    size_t i;
    int n = 0;

    tx_buf_init(&out, 1u << 30);
    snprintf(url, sizeof(url), "%s/api/email", api);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    if (curl_easy_perform(h) != CURLE_OK) {
        curl_easy_cleanup(h);
        tx_buf_cleanup(&out);
        return -1;
    }
    all = json_loadb(out.data, out.len, 0, NULL);
    json_array_foreach(all, i, m)
    {
        const char *to = json_string_value(
            json_object_get(json_array_get(json_object_get(m, "to"), 0), "address"));

        if (to == NULL || strncmp(to, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(url, sizeof(url), "%s/api/email/%s", api,
                 json_string_value(json_object_get(m, "id")));
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
        tx_buf_reset(&out);
        if (curl_easy_perform(h) == CURLE_OK)
            n++;
    }
    json_decref(all);
    curl_easy_cleanup(h);
    tx_buf_cleanup(&out);
    return n;
}

int main(int argc, char **argv)
{
    const char *url = getenv("TX_SMTP_URL");
    const char *api = getenv("TX_MAIL_API_URL");
    const char *src = getenv("TX_SOURCE_DIR");
    int count = argc > 1 ? atoi(argv[1]) : 300;
    char dir[4096];
    char prefix[64];
    struct tx_err err = { 0 };
    struct notify_template *t;
    struct notify_vars v;
    struct tx_buf subj, enc, text, html;
    int mode;

    if (url == NULL || api == NULL || src == NULL || count <= 0) {
        fprintf(stderr, "usage: notify_smtp_bench [count]; needs TX_SMTP_URL, TX_MAIL_API_URL, "
                        "TX_SOURCE_DIR\n");
        return 2;
    }
    snprintf(dir, sizeof(dir), "%s/volumes/notify/templates", src);
    t = notify_template_load(dir, "receipt", &err);
    if (t == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    memset(&v, 0, sizeof(v));
    v.cliente = "Zoë Bench";
    v.id = "c-bench";
    v.email = "bench@example.test";
    v.endereco = "Rua A, 1";
    v.datatrasancao = "2024-03-11T12:00:00Z";
    v.has_valor = true;
    v.valor = 99.9;
    v.event_id = "bench:0";
    v.upload_id = "bench";
    tx_buf_init(&subj, 1 << 20);
    tx_buf_init(&enc, 1 << 20);
    tx_buf_init(&text, 1 << 20);
    tx_buf_init(&html, 1 << 20);
    notify_template_render(t, NOTIFY_PART_SUBJECT, &v, &subj);
    notify_header_encode(&enc, subj.data, 9);
    notify_template_render(t, NOTIFY_PART_TEXT, &v, &text);
    notify_template_render(t, NOTIFY_PART_HTML, &v, &html);
    snprintf(prefix, sizeof(prefix), "bench-%ld-", (long) getpid());
    curl_global_init(CURL_GLOBAL_DEFAULT);

    for (mode = 0; mode < 2; mode++) {
        struct notify_smtp_config c;
        struct notify_smtp *s;
        int64_t t0;
        double secs;
        int i;
        int ok = 0;

        memset(&c, 0, sizeof(c));
        c.url = url;
        c.mail_from = "no-reply@txpipe.local";
        c.fresh_connection = mode == 1;
        s = notify_smtp_create(&c, &err);
        if (s == NULL) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        t0 = tx_time_mono_ms();
        for (i = 0; i < count; i++) {
            char rcpt[128];
            char mid[NOTIFY_MSGID_MAX];
            char date[NOTIFY_DATE_MAX];
            char eid[32];
            struct notify_smtp_msg m;

            snprintf(rcpt, sizeof(rcpt), "%s%d-%d@example.test", prefix, mode, i);
            snprintf(eid, sizeof(eid), "bench:%d:%d", mode, i);
            notify_message_id(eid, "receipt", "txpipe.local", mid);
            notify_date_format(tx_time_now_ms(), date, sizeof(date));
            memset(&m, 0, sizeof(m));
            m.rcpt = rcpt;
            m.from = "txpipe <no-reply@txpipe.local>";
            m.to = rcpt;
            m.subject = enc.data;
            m.date = date;
            m.message_id = mid;
            m.text = text.data;
            m.html = html.data;
            if (notify_smtp_send(s, &m, &err) == 0)
                ok++;
            else
                fprintf(stderr, "send %d: %s\n", i, err.msg);
        }
        secs = (double) (tx_time_mono_ms() - t0) / 1000.0;
        printf("%-28s %d/%d sent in %.2f s = %.0f e-mails/s, %llu connection(s)\n",
               mode == 0 ? "one connection reused:" : "new connection per message:", ok, count,
               secs, ok / secs, (unsigned long long) notify_smtp_connections(s));
        notify_smtp_destroy(s);
    }
    printf("deleted %d bench message(s) from maildev\n", cleanup(api, prefix));
    tx_buf_cleanup(&subj);
    tx_buf_cleanup(&enc);
    tx_buf_cleanup(&text);
    tx_buf_cleanup(&html);
    notify_template_destroy(t);
    curl_global_cleanup();
    return 0;
}
