/*
 * Unit tests of the parts of storage/queue that need no broker: AMQP URL parsing and redaction,
 * and the validation done by the _create functions (which contact nothing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "storage/queue.h"

#include <stdio.h>
#include <string.h>

static void expect_url(const char *url, const char *user, const char *password, const char *host,
                       int port, const char *vhost)
{
    struct queue_url u;
    struct tx_err err;
    int rc;

    memset(&u, 0x55, sizeof(u));
    tx_err_clear(&err);
    rc = queue_url_parse(url, &u, &err);
    if (rc != 0)
        fail_msg("'%s' rejected: %s", url, err.msg);
    assert_string_equal(u.user, user);
    assert_string_equal(u.password, password);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
    assert_string_equal(u.vhost, vhost);
}

static void expect_bad_url(const char *url, const char *reason)
{
    struct queue_url u;
    struct tx_err err;
    int rc;

    tx_err_clear(&err);
    rc = queue_url_parse(url, &u, &err);
    if (rc != TX_EINVAL)
        fail_msg("'%s' accepted (rc %d), expected: %s", url, rc, reason);
    assert_int_equal(err.code, TX_EINVAL);
    assert_true(err.msg[0] != '\0');
    /* The password must never leak into messages. */
    assert_null(strstr(err.msg, "s3cret"));
}

static void test_parse_good(void **state)
{
    (void) state;
    expect_url("amqp://txadmin:txadmin-local@127.0.0.1:5672/%2f", "txadmin", "txadmin-local",
               "127.0.0.1", 5672, "/");
    expect_url("amqp://u:p@broker.example:5673/%2F", "u", "p", "broker.example", 5673, "/");
    expect_url("amqp://u:p@host", "u", "p", "host", 5672, "/");
    expect_url("amqp://u:p@host/", "u", "p", "host", 5672, "");
    expect_url("amqp://u:p@host/tx", "u", "p", "host", 5672, "tx");
    expect_url("amqp://u:p%40ss%3Aw%2Frd@host:1/v", "u", "p@ss:w/rd", "host", 1, "v");
    expect_url("amqp://u:p@[::1]:5674/v", "u", "p", "::1", 5674, "v");
    expect_url("amqp://host:5672/v", "guest", "guest", "host", 5672, "v");
    expect_url("amqp://", "guest", "guest", "localhost", 5672, "/");
}

static void test_parse_bad(void **state)
{
    char longurl[600];

    (void) state;
    expect_bad_url(NULL, "missing");
    expect_bad_url("", "empty");
    expect_bad_url("http://u:s3cret@host/", "wrong scheme");
    expect_bad_url("amqps://u:s3cret@host/", "TLS");
    expect_bad_url("amqp://u:s3cret@host:0/", "port 0");
    expect_bad_url("amqp://u:s3cret@host:70000/", "port too large");
    expect_bad_url("amqp://u:s3cret@host:x/", "port not a number");
    expect_bad_url("amqp://u:s3cret@host/v?heartbeat=10", "query string");
    expect_bad_url("amqp://u:s3cret@host/a/b", "two path segments");
    expect_bad_url("amqp://u:s3cret@host/%zz", "bad escape");
    expect_bad_url("amqp://u:s3cret@[::1/", "unclosed bracket");
    snprintf(longurl, sizeof(longurl), "amqp://%300s:s3cret@host/", "u");
    for (char *p = longurl; *p != '\0'; p++)
        if (*p == ' ')
            *p = 'u';
    expect_bad_url(longurl, "user too long");
}

static void test_amqps_message(void **state)
{
    struct queue_url u;
    struct tx_err err;

    (void) state;
    assert_int_equal(queue_url_parse("amqps://u:p@h/", &u, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "TLS"));
}

static void test_redact(void **state)
{
    char out[128];
    char small[12];

    (void) state;
    assert_string_equal(
        queue_url_redact("amqp://txadmin:txadmin-local@127.0.0.1:5672/%2f", out, sizeof(out)),
        "amqp://txadmin@127.0.0.1:5672/%2f");
    assert_string_equal(queue_url_redact("amqp://u:p@host", out, sizeof(out)),
                        "amqp://u@host:5672/%2f");
    assert_string_equal(queue_url_redact("amqp://a%20b:p@[::1]:1/v%20h", out, sizeof(out)),
                        "amqp://a%20b@[::1]:1/v%20h");
    assert_string_equal(queue_url_redact("amqps://u:s3cret@h/", out, sizeof(out)),
                        "<invalid amqp url>");
    assert_string_equal(queue_url_redact(NULL, out, sizeof(out)), "<invalid amqp url>");
    queue_url_redact("amqp://user:s3cret@a-long-host-name:5672/%2f", small, sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_null(strstr(small, "s3cret"));
    assert_null(queue_url_redact("amqp://u:p@h/", NULL, 0));
}

static void test_create_validates(void **state)
{
    struct queue_config cfg = { .url = "amqp://u:p@127.0.0.1:1/%2f" };
    struct queue_publisher *p;
    struct queue_consumer *c;
    struct tx_err err;

    (void) state;
    /* Valid: contacts nothing (port 1 would refuse). */
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    assert_int_equal(queue_publisher_last_confirmed(p), 0);
    queue_publisher_destroy(p);
    c = queue_consumer_create(&cfg, "tx.fraud", 1, &err);
    assert_non_null(c);
    assert_int_equal(queue_consumer_is_connected(c), 0);
    queue_consumer_destroy(c);
    queue_publisher_destroy(NULL);
    queue_consumer_destroy(NULL);

    assert_null(queue_publisher_create(NULL, &err));
    assert_int_equal(err.code, TX_EINVAL);
    cfg.window = 65536;
    assert_null(queue_publisher_create(&cfg, &err));
    assert_int_equal(err.code, TX_EINVAL);
    cfg.window = 0;
    cfg.heartbeat_s = 3601;
    assert_null(queue_publisher_create(&cfg, &err));
    assert_int_equal(err.code, TX_EINVAL);
    cfg.heartbeat_s = -1; /* disabled: allowed */
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    queue_publisher_destroy(p);
    cfg.heartbeat_s = 0;
    cfg.connect_timeout_ms = -5;
    assert_null(queue_publisher_create(&cfg, &err));
    cfg.connect_timeout_ms = 600001;
    assert_null(queue_consumer_create(&cfg, "q", 1, &err));
    cfg.connect_timeout_ms = 0;
    cfg.confirm_timeout_ms = -1;
    assert_null(queue_publisher_create(&cfg, &err));
    cfg.confirm_timeout_ms = 0;
    cfg.url = "amqps://u:p@h/";
    assert_null(queue_publisher_create(&cfg, &err));
    assert_null(queue_consumer_create(&cfg, "q", 1, &err));
    cfg.url = "amqp://u:p@h/";

    assert_null(queue_consumer_create(&cfg, NULL, 1, &err));
    assert_null(queue_consumer_create(&cfg, "", 1, &err));
    assert_null(queue_consumer_create(&cfg, "q", 0, &err));
    assert_null(queue_consumer_create(&cfg, "q", 65536, &err));
    assert_int_equal(err.code, TX_EINVAL);
}

static void test_publish_validates_before_connecting(void **state)
{
    struct queue_config cfg = { .url = "amqp://u:p@127.0.0.1:1/%2f" };
    struct queue_header hdrs[QUEUE_HEADERS_MAX + 1];
    struct queue_msg m = { .routing_key = "k", .body = "{}", .len = 2 };
    struct queue_publisher *p;
    struct tx_err err;
    char longkey[300];

    (void) state;
    p = queue_publisher_create(&cfg, &err);
    assert_non_null(p);
    assert_int_equal(queue_publish_confirmed(p, "x", &m, 0, &err), 0); /* nothing to do */
    assert_int_equal(queue_publish_confirmed(p, NULL, &m, 1, &err), TX_EINVAL);
    assert_int_equal(queue_publish_confirmed(p, "x", NULL, 1, &err), TX_EINVAL);
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    m.routing_key = longkey;
    assert_int_equal(queue_publish_confirmed(p, "x", &m, 1, &err), TX_EINVAL);
    m.routing_key = "k";
    m.message_id = longkey;
    assert_int_equal(queue_publish_confirmed(p, "x", &m, 1, &err), TX_EINVAL);
    m.message_id = NULL;
    m.body = NULL;
    assert_int_equal(queue_publish_confirmed(p, "x", &m, 1, &err), TX_EINVAL);
    m.body = "{}";
    for (int i = 0; i <= QUEUE_HEADERS_MAX; i++) {
        hdrs[i].key = "h";
        hdrs[i].value = "v";
    }
    m.headers = hdrs;
    m.nheaders = QUEUE_HEADERS_MAX + 1;
    assert_int_equal(queue_publish_confirmed(p, "x", &m, 1, &err), TX_EINVAL);
    m.nheaders = 1;
    hdrs[0].value = NULL;
    assert_int_equal(queue_publish_confirmed(p, "x", &m, 1, &err), TX_EINVAL);
    assert_non_null(strstr(err.msg, "header"));
    assert_int_equal(queue_publish_confirmed(NULL, "x", &m, 1, &err), TX_EINVAL);
    assert_int_equal(queue_publisher_ping(NULL, &err), TX_EINVAL);
    queue_publisher_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_amqps_message),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_create_validates),
        cmocka_unit_test(test_publish_validates_before_connecting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
