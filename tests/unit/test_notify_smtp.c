/*
 * Unit tests of txnotify's SMTP sender: reply classification (transient vs permanent), settings
 * checks, and real sends to an in-process fake SMTP server on 127.0.0.1 (notify_fake_smtp.h):
 * MIME structure and headers, connection reuse, the server's reply text, and each failure class.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "consumers/notify/notify_smtp.h"
#include "notify_fake_smtp.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static void test_classify(void **state)
{
    (void) state;
    /* Success. */
    assert_int_equal(notify_smtp_classify(CURLE_OK, 250), 0);
    /* Permanent: 5xx replies to MAIL/RCPT/DATA or after the data. */
    assert_int_equal(notify_smtp_classify(CURLE_SEND_ERROR, 550), TX_EREJECT);
    assert_int_equal(notify_smtp_classify(CURLE_SEND_ERROR, 553), TX_EREJECT);
    assert_int_equal(notify_smtp_classify(CURLE_SEND_ERROR, 552), TX_EREJECT);
    assert_int_equal(notify_smtp_classify(CURLE_WEIRD_SERVER_REPLY, 554), TX_EREJECT);
    assert_int_equal(notify_smtp_classify(CURLE_SEND_ERROR, 501), TX_EREJECT);
    /* Transient: 4xx, and 5xx about our own credentials / TLS. */
    assert_int_equal(notify_smtp_classify(CURLE_SEND_ERROR, 421), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_SEND_ERROR, 450), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_SEND_ERROR, 451), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_WEIRD_SERVER_REPLY, 452), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_LOGIN_DENIED, 535), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_SEND_ERROR, 530), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_USE_SSL_FAILED, 538), TX_EUNAVAIL);
    /* Transient: the transport failed without a verdict from the server. */
    assert_int_equal(notify_smtp_classify(CURLE_COULDNT_CONNECT, 0), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_COULDNT_RESOLVE_HOST, 0), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_OPERATION_TIMEDOUT, 354), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_RECV_ERROR, 250), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_GOT_NOTHING, 0), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_classify(CURLE_SSL_CONNECT_ERROR, 220), TX_EUNAVAIL);
}

static void test_tls_parse(void **state)
{
    enum notify_smtp_tls t;

    (void) state;
    assert_int_equal(notify_smtp_tls_parse("none", &t), 0);
    assert_int_equal(t, NOTIFY_SMTP_TLS_NONE);
    assert_int_equal(notify_smtp_tls_parse("starttls", &t), 0);
    assert_int_equal(t, NOTIFY_SMTP_TLS_STARTTLS);
    assert_int_equal(notify_smtp_tls_parse("tls", &t), 0);
    assert_int_equal(t, NOTIFY_SMTP_TLS_IMPLICIT);
    assert_int_equal(notify_smtp_tls_parse("ssl", &t), TX_EINVAL);
    assert_int_equal(notify_smtp_tls_parse("", &t), TX_EINVAL);
}

static void test_create_checks(void **state)
{
    struct notify_smtp_config c;
    struct tx_err err = { 0 };
    struct notify_smtp *s;

    (void) state;
    memset(&c, 0, sizeof(c));
    c.mail_from = "a@b.test";
    c.url = "smtps://127.0.0.1:465/x";
    c.tls = NOTIFY_SMTP_TLS_NONE;
    assert_null(notify_smtp_create(&c, &err));
    assert_int_equal(err.code, TX_EINVAL);
    c.url = "smtp://127.0.0.1:25/x";
    c.tls = NOTIFY_SMTP_TLS_IMPLICIT;
    assert_null(notify_smtp_create(&c, &err));
    c.tls = NOTIFY_SMTP_TLS_STARTTLS;
    c.url = "smtp://user:pw@127.0.0.1:25/x";
    assert_null(notify_smtp_create(&c, &err));
    assert_non_null(strstr(err.msg, "TX_SMTP_USER"));
    c.url = "smtp:///x";
    assert_null(notify_smtp_create(&c, &err));
    c.url = "smtp://127.0.0.1:25/x";
    s = notify_smtp_create(&c, &err);
    assert_non_null(s);
    assert_int_equal(notify_smtp_connections(s), 0);
    notify_smtp_destroy(s);
    notify_smtp_destroy(NULL);
}

static struct notify_smtp *sender(int port, bool fresh)
{
    struct notify_smtp_config c;
    struct tx_err err = { 0 };
    char url[128];
    struct notify_smtp *s;

    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d/txtest.local", port);
    memset(&c, 0, sizeof(c));
    c.url = url;
    c.mail_from = "no-reply@txpipe.local";
    c.connect_timeout_ms = 2000;
    c.timeout_ms = 5000;
    c.fresh_connection = fresh;
    s = notify_smtp_create(&c, &err);
    if (s == NULL)
        fail_msg("%s", err.msg);
    return s;
}

static struct notify_smtp_msg message(const char *rcpt)
{
    struct notify_smtp_msg m;

    memset(&m, 0, sizeof(m));
    m.rcpt = rcpt;
    m.from = "txpipe <no-reply@txpipe.local>";
    m.to = rcpt;
    m.subject = "=?UTF-8?B?T2zDoQ==?=\r\n =?UTF-8?B?IG11bmRv?=";
    m.date = "Mon, 11 Mar 2024 12:00:00 +0000";
    m.message_id = "<0123456789abcdef0123456789abcdef@txpipe.local>";
    m.text = "line one\nline two é\n.\nlast";
    m.html = "<p>Olá</p>\n";
    return m;
}

static void test_send_and_reuse(void **state)
{
    struct fake_smtp f;
    struct notify_smtp *s;
    struct notify_smtp_msg m = message("ok1@x.test");
    struct tx_err err = { 0 };
    const char *p;
    int i;

    (void) state;
    assert_int_equal(fake_smtp_start(&f, 0), 0);
    s = sender(f.port, false);
    for (i = 0; i < 5; i++) {
        if (notify_smtp_send(s, &m, &err) != 0)
            fail_msg("send %d: %s", i, err.msg);
        assert_int_equal(notify_smtp_last_code(s), 250);
    }
    /* Five messages, one connection. */
    assert_int_equal(fake_smtp_accepted(&f, "ok1@x.test"), 5);
    assert_int_equal(notify_smtp_connections(s), 1);
    pthread_mutex_lock(&f.mu);
    assert_int_equal(f.connections, 1);
    /* The message: our headers, curl's MIME tree, CRLF line endings, dot-stuffing. */
    p = f.last_msg;
    assert_non_null(strstr(p, "\r\nFrom: txpipe <no-reply@txpipe.local>\r\n"));
    assert_non_null(strstr(p, "\r\nTo: ok1@x.test\r\n"));
    assert_non_null(strstr(p, "\r\nSubject: =?UTF-8?B?T2zDoQ==?=\r\n =?UTF-8?B?IG11bmRv?=\r\n"));
    assert_non_null(strstr(p, "\r\nDate: Mon, 11 Mar 2024 12:00:00 +0000\r\n"));
    assert_non_null(
        strstr(p, "\r\nMessage-ID: <0123456789abcdef0123456789abcdef@txpipe.local>\r\n"));
    assert_non_null(strstr(p, "MIME-Version: 1.0\r\n"));
    assert_null(strstr(p + 1, "\r\nMime-Version:")); /* curl did not add a second one */
    assert_non_null(strstr(p, "Content-Type: multipart/mixed; boundary="));
    assert_non_null(strstr(p, "Content-Type: multipart/alternative; boundary="));
    assert_non_null(strstr(p, "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Transfer-Encoding: quoted-printable\r\n"));
    assert_non_null(strstr(p, "Content-Type: text/html; charset=utf-8\r\n"));
    assert_non_null(strstr(p, "line one\r\nline two =C3=A9\r\n..\r\nlast"));
    assert_true(strstr(p, "text/plain") < strstr(p, "text/html"));
    for (i = 1; p[i] != '\0'; i++) {
        if (p[i] == '\n' && p[i - 1] != '\r')
            fail_msg("bare LF at byte %d", i);
    }
    pthread_mutex_unlock(&f.mu);
    notify_smtp_destroy(s);
    fake_smtp_stop(&f);
}

static void test_fresh_connection_per_message(void **state)
{
    struct fake_smtp f;
    struct notify_smtp *s;
    struct notify_smtp_msg m = message("ok2@x.test");
    struct tx_err err = { 0 };
    int i;

    (void) state;
    assert_int_equal(fake_smtp_start(&f, 0), 0);
    s = sender(f.port, true);
    for (i = 0; i < 3; i++)
        assert_int_equal(notify_smtp_send(s, &m, &err), 0);
    assert_int_equal(notify_smtp_connections(s), 3);
    assert_int_equal(fake_smtp_accepted(&f, "ok2@x.test"), 3);
    notify_smtp_destroy(s);
    fake_smtp_stop(&f);
}

/* The server closes the connection after each message: the next send still goes through. */
static void test_server_closed_idle_connection(void **state)
{
    struct fake_smtp f;
    struct notify_smtp *s;
    struct notify_smtp_msg m = message("ok3@x.test");
    struct tx_err err = { 0 };

    (void) state;
    assert_int_equal(fake_smtp_start(&f, 0), 0);
    atomic_store(&f.hangup_after_message, 1);
    s = sender(f.port, false);
    assert_int_equal(notify_smtp_send(s, &m, &err), 0);
    usleep(200 * 1000);
    if (notify_smtp_send(s, &m, &err) != 0)
        fail_msg("second send: %s", err.msg);
    assert_int_equal(fake_smtp_accepted(&f, "ok3@x.test"), 2);
    assert_int_equal(notify_smtp_connections(s), 2);
    notify_smtp_destroy(s);
    fake_smtp_stop(&f);
}

static void test_failures(void **state)
{
    struct fake_smtp f;
    struct notify_smtp *s;
    struct notify_smtp_msg m;
    struct tx_err err = { 0 };
    int port;

    (void) state;
    assert_int_equal(fake_smtp_start(&f, 0), 0);
    s = sender(f.port, false);

    /* 550 to RCPT: permanent, with the server's text. */
    m = message("reject-1@x.test");
    assert_int_equal(notify_smtp_send(s, &m, &err), TX_EREJECT);
    assert_int_equal(notify_smtp_last_code(s), 550);
    assert_string_equal(err.msg,
                        "550 5.1.1 <reject-1@x.test>: Recipient address rejected: user unknown");

    /* 451 twice, then accepted: transient, transient, sent. */
    m = message("tempfail-1@x.test");
    assert_int_equal(notify_smtp_send(s, &m, &err), TX_EUNAVAIL);
    assert_string_equal(err.msg, "451 4.7.1 <tempfail-1@x.test>: try again later");
    assert_int_equal(notify_smtp_send(s, &m, &err), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_send(s, &m, &err), 0);
    assert_int_equal(fake_smtp_accepted(&f, "tempfail-1@x.test"), 1);

    /* 554 after the data: permanent. */
    m = message("datafail-1@x.test");
    assert_int_equal(notify_smtp_send(s, &m, &err), TX_EREJECT);
    assert_int_equal(notify_smtp_last_code(s), 554);
    assert_string_equal(err.msg, "554 5.6.0 message content refused");

    /* Still usable afterwards. */
    m = message("ok4@x.test");
    assert_int_equal(notify_smtp_send(s, &m, &err), 0);
    notify_smtp_destroy(s);
    fake_smtp_stop(&f);

    /* Nothing listening: transient, with the transport error. */
    port = fake_free_port();
    assert_true(port > 0);
    s = sender(port, false);
    m = message("ok5@x.test");
    assert_int_equal(notify_smtp_send(s, &m, &err), TX_EUNAVAIL);
    assert_int_equal(notify_smtp_last_code(s), 0);
    assert_true(err.msg[0] != '\0');
    notify_smtp_destroy(s);
}

static void test_bad_message(void **state)
{
    struct notify_smtp *s = sender(1, false);
    struct notify_smtp_msg m = message("a@x.test");
    struct tx_err err = { 0 };

    (void) state;
    m.subject = "x\r\nBcc: y@z.test";
    assert_int_equal(notify_smtp_send(s, &m, &err), TX_EINVAL);
    m = message("a@x.test");
    m.to = "a@x.test\nBcc: y@z.test";
    assert_int_equal(notify_smtp_send(s, &m, &err), TX_EINVAL);
    m = message("a@x.test>\r\nRCPT TO:<b@x.test");
    assert_int_equal(notify_smtp_send(s, &m, &err), TX_EINVAL);
    m = message("a@x.test");
    m.html = NULL;
    assert_int_equal(notify_smtp_send(s, &m, &err), TX_EINVAL);
    notify_smtp_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_tls_parse),
        cmocka_unit_test(test_create_checks),
        cmocka_unit_test(test_send_and_reuse),
        cmocka_unit_test(test_fresh_connection_per_message),
        cmocka_unit_test(test_server_closed_idle_connection),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_bad_message),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
