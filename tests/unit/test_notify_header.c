/* Unit tests of txnotify's header helpers: RFC 2047, mailboxes, addresses, Message-ID, Date. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/tx_buf.h"
#include "consumers/notify/notify_header.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *encode(const char *text, size_t used)
{
    struct tx_buf out;
    char *s;

    tx_buf_init(&out, 1 << 20);
    assert_int_equal(notify_header_encode(&out, text, used), 0);
    s = strdup(out.data != NULL ? out.data : "");
    tx_buf_cleanup(&out);
    return s;
}

static int b64val(char c)
{
    const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(tab, c);

    return (c != '\0' && p != NULL) ? (int) (p - tab) : -1;
}

/* Decodes base64 (independently of the code under test) into out; returns the length. */
static size_t b64dec(const char *s, size_t len, unsigned char *out)
{
    size_t i;
    size_t n = 0;

    assert_int_equal(len % 4, 0);
    for (i = 0; i < len; i += 4) {
        int a = b64val(s[i]);
        int b = b64val(s[i + 1]);
        int c = s[i + 2] == '=' ? 0 : b64val(s[i + 2]);
        int d = s[i + 3] == '=' ? 0 : b64val(s[i + 3]);

        assert_true(a >= 0 && b >= 0 && c >= 0 && d >= 0);
        out[n++] = (unsigned char) ((a << 2) | (b >> 4));
        if (s[i + 2] != '=')
            out[n++] = (unsigned char) (((b & 15) << 4) | (c >> 2));
        if (s[i + 3] != '=')
            out[n++] = (unsigned char) (((c & 3) << 6) | d);
    }
    return n;
}

static bool utf8_ok(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t n = s[i] < 0x80 ? 1 : (s[i] >> 5) == 6 ? 2 : (s[i] >> 4) == 14 ? 3 : 4;
        size_t k;

        if (s[i] >= 0x80 && (s[i] & 0xc0) == 0x80)
            return false;
        if (i + n > len)
            return false;
        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        }
        i += n;
    }
    return true;
}

/*
 * Checks an encoded header value: folded lines are "\r\n " separated, each line (the first one
 * after `used` bytes) at most 76 bytes, each encoded-word at most 75 bytes and decoding to
 * whole UTF-8 characters; returns the decoded text (malloc'd).
 */
static char *decode_words(const char *v, size_t used)
{
    unsigned char *out = malloc(strlen(v) + 1);
    size_t n = 0;
    const char *p = v;
    size_t line = used;

    assert_non_null(out);
    while (*p != '\0') {
        const char *end;
        size_t wlen;

        if (p[0] == '\r') {
            assert_int_equal(p[1], '\n');
            assert_int_equal(p[2], ' ');
            p += 3;
            line = 1;
            continue;
        }
        assert_int_equal(strncmp(p, "=?UTF-8?B?", 10), 0);
        end = strstr(p + 10, "?=");
        assert_non_null(end);
        wlen = (size_t) (end + 2 - p);
        assert_true(wlen <= 75);
        line += wlen;
        assert_true(line <= 76);
        {
            size_t k = b64dec(p + 10, (size_t) (end - (p + 10)), out + n);

            assert_true(utf8_ok(out + n, k));
            n += k;
        }
        p = end + 2;
    }
    out[n] = '\0';
    return (char *) out;
}

static void test_base64_vectors(void **state)
{
    static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const want[] = { "",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
    size_t i;

    (void) state;
    for (i = 0; i < 7; i++) {
        struct tx_buf out;

        tx_buf_init(&out, 100);
        assert_int_equal(notify_base64(&out, in[i], strlen(in[i])), 0);
        assert_string_equal(out.data != NULL ? out.data : "", want[i]);
        tx_buf_cleanup(&out);
    }
}

static void test_rfc2047(void **state)
{
    char *s;
    char *d;
    char longtext[2048];
    size_t i;

    (void) state;
    /* Short printable ASCII stays as is. */
    s = encode("Recibo da transacao c-1", 9);
    assert_string_equal(s, "Recibo da transacao c-1");
    free(s);
    /* Non-ASCII: one encoded-word. */
    s = encode("Olá mundo", 9);
    assert_string_equal(s, "=?UTF-8?B?T2zDoSBtdW5kbw==?=");
    free(s);
    /* ASCII that looks like an encoded-word is encoded, so it reads back literally. */
    s = encode("=?UTF-8?B?SGk=?=", 9);
    assert_int_equal(strncmp(s, "=?UTF-8?B?", 10), 0);
    d = decode_words(s, 9);
    assert_string_equal(d, "=?UTF-8?B?SGk=?=");
    free(d);
    free(s);
    /* Long mixed text: folded, words <= 75, lines <= 76, no character split. */
    longtext[0] = '\0';
    for (i = 0; i < 30; i++)
        strcat(longtext, "Transação ✓ €😀 ");
    s = encode(longtext, 9);
    assert_non_null(strstr(s, "\r\n "));
    d = decode_words(s, 9);
    assert_string_equal(d, longtext);
    free(d);
    free(s);
    /* Long ASCII is folded too. */
    memset(longtext, 'x', 150);
    longtext[150] = '\0';
    s = encode(longtext, 9);
    d = decode_words(s, 9);
    assert_string_equal(d, longtext);
    free(d);
    free(s);
    /* A control character left in the text forces the encoded form (never a raw CR/LF). */
    s = encode("a\r\nBcc: x@y.z", 9);
    assert_null(strstr(s, "Bcc"));
    d = decode_words(s, 9);
    assert_string_equal(d, "a  Bcc: x@y.z");
    free(d);
    free(s);
}

static char *mailbox(const char *name, const char *addr)
{
    struct tx_buf out;
    char *s;

    tx_buf_init(&out, 4096);
    assert_int_equal(notify_header_mailbox(&out, name, addr), 0);
    s = strdup(out.data);
    tx_buf_cleanup(&out);
    return s;
}

static void test_mailbox(void **state)
{
    char *s;
    char *d;

    (void) state;
    s = mailbox("", "a@b.test");
    assert_string_equal(s, "a@b.test");
    free(s);
    s = mailbox("txpipe", "no-reply@txpipe.local");
    assert_string_equal(s, "txpipe <no-reply@txpipe.local>");
    free(s);
    s = mailbox("Doe, John \"JD\"", "j@d.test");
    assert_string_equal(s, "\"Doe, John \\\"JD\\\"\" <j@d.test>");
    free(s);
    s = mailbox("Zoë", "z@d.test");
    assert_string_equal(s, "=?UTF-8?B?Wm/Dqw==?= <z@d.test>");
    free(s);
    /* A name carrying a header injection: encoded, no raw CR/LF anywhere. */
    s = mailbox("Eve\r\nBcc: x@evil.test", "e@d.test");
    assert_null(strstr(s, "\r\nBcc"));
    assert_null(strstr(s, "\nBcc"));
    *strstr(s, " <e@d.test>") = '\0';
    d = decode_words(s, 4);
    assert_string_equal(d, "Eve  Bcc: x@evil.test");
    free(d);
    free(s);
}

static void test_addr_check(void **state)
{
    static const char *const good[] = { "a@b.c", "first.last+tag@sub.example.test",
                                        "ção@exemplo.com.br", "x_y-z@a-b.test" };
    static const char *const bad[] = {
        "a<b@x.test", "a>b@x.test", "a,b@x.test",  "a b@x.test",  "@x.test",      "a@",
        "a@@x.test",  "a@x..test",  "a@.x.test",   "a@x.test.",   "a\r\n@x.test", "a\"b@x.test",
        "a;b@x.test", "a:b@x.test", "a(b)@x.test", "a@[1.2.3.4]", "ab",           "a\\b@x.test",
    };
    struct tx_err err = { 0 };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (notify_addr_check(good[i], &err) != 0)
            fail_msg("%s refused: %s", good[i], err.msg);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (notify_addr_check(bad[i], &err) != TX_EINVAL)
            fail_msg("%s accepted", bad[i]);
    }
    assert_int_equal(notify_addr_check("a@b.\xc3", &err), TX_EINVAL);
}

static void test_mailbox_parse(void **state)
{
    char name[128];
    char addr[256];
    struct tx_err err = { 0 };

    (void) state;
    assert_int_equal(notify_mailbox_parse("txpipe <no-reply@txpipe.local>", name, sizeof(name),
                                          addr, sizeof(addr), &err),
                     0);
    assert_string_equal(name, "txpipe");
    assert_string_equal(addr, "no-reply@txpipe.local");
    assert_int_equal(notify_mailbox_parse("  \"Fraud Team\"  < ops@x.test >", name, sizeof(name),
                                          addr, sizeof(addr), &err),
                     0);
    assert_string_equal(name, "Fraud Team");
    assert_string_equal(addr, "ops@x.test");
    assert_int_equal(
        notify_mailbox_parse("bare@x.test", name, sizeof(name), addr, sizeof(addr), &err), 0);
    assert_string_equal(name, "");
    assert_string_equal(addr, "bare@x.test");
    assert_int_equal(
        notify_mailbox_parse("Name <a@x.test", name, sizeof(name), addr, sizeof(addr), &err),
        TX_EINVAL);
    assert_int_equal(
        notify_mailbox_parse("Name <a@x.test> x", name, sizeof(name), addr, sizeof(addr), &err),
        TX_EINVAL);
    assert_int_equal(
        notify_mailbox_parse("Name <not an address>", name, sizeof(name), addr, sizeof(addr), &err),
        TX_EINVAL);
}

static void test_message_id(void **state)
{
    char a[NOTIFY_MSGID_MAX];
    char b[NOTIFY_MSGID_MAX];

    (void) state;
    /* Known values: the first 32 hex digits of sha256("<event_id>|<template>"). */
    assert_int_equal(
        notify_message_id("01a209d6-f2ab-7223-bbfc-334f390e510f:0", "receipt", "txpipe.local", a),
        0);
    assert_string_equal(a, "<83c093cd119cf5f17c2d2190e33fa420@txpipe.local>");
    assert_int_equal(
        notify_message_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:7", "alert_ops", "txpipe.local", a),
        0);
    assert_string_equal(a, "<4b86ef9ba323aef3f403aba04d46d9c2@txpipe.local>");
    /* Deterministic, and different per template and per event. */
    assert_int_equal(
        notify_message_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:7", "alert_ops", "txpipe.local", b),
        0);
    assert_string_equal(a, b);
    assert_int_equal(notify_message_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:7", "alert_client",
                                       "txpipe.local", b),
                     0);
    assert_string_not_equal(a, b);
    assert_int_equal(
        notify_message_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:8", "alert_ops", "txpipe.local", b),
        0);
    assert_string_not_equal(a, b);
    /* Bad domains. */
    assert_int_equal(notify_message_id("e", "t", "", a), TX_EINVAL);
    assert_int_equal(notify_message_id("e", "t", "a b", a), TX_EINVAL);
    assert_int_equal(notify_message_id("e", "t", "x>y", a), TX_EINVAL);
}

static void test_date(void **state)
{
    char d[NOTIFY_DATE_MAX];

    (void) state;
    assert_int_equal(notify_date_format(0, d, sizeof(d)), 31);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_true(notify_date_format(1710158400999LL, d, sizeof(d)) > 0);
    assert_string_equal(d, "Mon, 11 Mar 2024 12:00:00 +0000");
    assert_int_equal(notify_date_format(0, d, 10), 0);
    assert_string_equal(d, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_vectors), cmocka_unit_test(test_rfc2047),
        cmocka_unit_test(test_mailbox),        cmocka_unit_test(test_addr_check),
        cmocka_unit_test(test_mailbox_parse),  cmocka_unit_test(test_message_id),
        cmocka_unit_test(test_date),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
