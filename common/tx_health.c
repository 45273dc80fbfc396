#include "common/tx_health.h"

#include "common/tx_log.h"
#include "common/tx_time.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBLEM_BASE      "https://txpipe.dev/problems/"
#define METRICS_BODY_MAX  (8u << 20)
#define SMALL_BODY_MAX    65536
#define PROBE_ANSWER_MAX  8192
#define PROBE_PATH_MAX    2048
#define SERVER_THREADS    "4"
#define SERVER_TIMEOUT_MS "5000"

/* ---- readiness cache ---- */

struct tx_readiness {
    tx_ready_fn fn;
    void *ctx;
    long ttl_ms;
    pthread_mutex_t lock; /* guards everything below */
    bool running;         /* a thread is inside fn */
    bool have;            /* body/rc hold an answer */
    int64_t at_ms;        /* monotonic time the answer was made */
    int rc;               /* 0 ready, TX_EUNAVAIL not ready */
    char *body;
    size_t body_len;
};

struct tx_readiness *tx_readiness_create(tx_ready_fn fn, void *ctx, long ttl_ms)
{
    struct tx_readiness *r;

    if (ttl_ms < 0)
        return NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    r->fn = fn;
    r->ctx = ctx;
    r->ttl_ms = ttl_ms;
    return r;
}

void tx_readiness_destroy(struct tx_readiness *r)
{
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r->body);
    free(r);
}

/* Runs the callback and builds a complete /readyz body in out. Returns 0 or TX_EUNAVAIL, or a
 * tx_buf error (out then unusable). */
static int readiness_run(struct tx_readiness *r, struct tx_buf *out)
{
    struct tx_buf detail;
    char ts[TX_TIME_FORMAT_LEN];
    const char *problem = NULL;
    char why[256];
    json_t *j = NULL;
    json_error_t jerr;
    int fn_rc = 0;
    int rc;

    tx_buf_init(&detail, TX_READINESS_DETAIL_MAX);
    if (r->fn != NULL)
        fn_rc = r->fn(r->ctx, &detail);
    if (detail.len > 0) {
        j = json_loadb(detail.data, detail.len, 0, &jerr);
        if (j == NULL) {
            snprintf(why, sizeof(why), "the readiness callback wrote invalid JSON: %s", jerr.text);
            problem = why;
        }
        else if (!json_is_object(j)) {
            problem = "the readiness callback wrote a JSON value that is not an object";
        }
        json_decref(j);
    }
    tx_time_format_ms(tx_time_now_ms(), ts, sizeof(ts));

    rc = tx_buf_printf(out, "{\"status\":\"%s\",\"checks\":",
                       fn_rc == 0 && problem == NULL ? "ready" : "not ready");
    if (rc == 0 && problem != NULL) {
        rc = tx_buf_puts(out, "{\"readiness\":");
        if (rc == 0)
            rc = tx_buf_json_str(out, problem, strlen(problem));
        if (rc == 0)
            rc = tx_buf_puts(out, "}");
    }
    else if (rc == 0 && detail.len > 0) {
        rc = tx_buf_append(out, detail.data, detail.len);
    }
    else if (rc == 0) {
        rc = tx_buf_puts(out, "{}");
    }
    if (rc == 0)
        rc = tx_buf_printf(out, ",\"checked_at\":\"%s\"}", ts);
    tx_buf_cleanup(&detail);
    if (rc != 0)
        return rc;
    return fn_rc == 0 && problem == NULL ? 0 : TX_EUNAVAIL;
}

int tx_readiness_check(struct tx_readiness *r, struct tx_buf *body)
{
    static const char in_progress[] =
        "{\"status\":\"not ready\",\"checks\":{\"readiness\":\"first check in progress\"}}";
    struct tx_buf fresh;
    char *stolen;
    size_t len;
    int rc;

    if (r == NULL || body == NULL)
        return TX_EINVAL;
    pthread_mutex_lock(&r->lock);
    if (r->have && (r->running || tx_time_mono_ms() - r->at_ms < r->ttl_ms)) {
        rc = tx_buf_append(body, r->body, r->body_len);
        if (rc == 0)
            rc = r->rc;
        pthread_mutex_unlock(&r->lock);
        return rc;
    }
    if (r->running) {
        pthread_mutex_unlock(&r->lock);
        rc = tx_buf_append(body, in_progress, sizeof(in_progress) - 1);
        return rc != 0 ? rc : TX_EUNAVAIL;
    }
    r->running = true;
    pthread_mutex_unlock(&r->lock);

    tx_buf_init(&fresh, TX_READINESS_DETAIL_MAX + 1024);
    rc = readiness_run(r, &fresh);

    pthread_mutex_lock(&r->lock);
    r->running = false;
    if (rc == 0 || rc == TX_EUNAVAIL) {
        stolen = tx_buf_steal(&fresh, &len);
        if (stolen != NULL) {
            free(r->body);
            r->body = stolen;
            r->body_len = len;
            r->rc = rc;
            r->have = true;
            r->at_ms = tx_time_mono_ms();
            rc = tx_buf_append(body, r->body, r->body_len);
            if (rc == 0)
                rc = r->rc;
        }
        else {
            rc = TX_ENOMEM;
        }
    }
    pthread_mutex_unlock(&r->lock);
    tx_buf_cleanup(&fresh);
    return rc;
}

/* ---- HTTP server ---- */

struct tx_health {
    struct mg_context *mg;
    struct tx_metrics *metrics;
    struct tx_readiness *ready;
    struct sockaddr_in addr; /* where to reach the server (loopback for 0.0.0.0), real port */
    int port;
};

static bool printable_ascii(const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= max || s[i] < 0x20 || s[i] > 0x7e)
            return false;
    }
    return true;
}

static int send_answer(struct mg_connection *conn, int status, const char *ctype, const char *allow,
                       const char *body, size_t body_len, bool head)
{
    char len[32];

    snprintf(len, sizeof(len), "%zu", body_len);
    mg_response_header_start(conn, status);
    mg_response_header_add(conn, "Content-Type", ctype, -1);
    mg_response_header_add(conn, "Content-Length", len, -1);
    mg_response_header_add(conn, "Cache-Control", "no-store", -1);
    if (allow != NULL)
        mg_response_header_add(conn, "Allow", allow, -1);
    mg_response_header_send(conn);
    if (!head && body_len > 0)
        mg_write(conn, body, body_len);
    return status;
}

/* RFC 9457 problem document; detail is omitted unless it is short printable ASCII. */
static int send_problem(struct mg_connection *conn, int status, const char *type, const char *title,
                        const char *detail, const char *allow, bool head)
{
    struct tx_buf b;
    int rc;

    tx_buf_init(&b, SMALL_BODY_MAX);
    rc = tx_buf_printf(&b, "{\"type\":\"%s%s\",\"title\":", PROBLEM_BASE, type);
    if (rc == 0)
        rc = tx_buf_json_str(&b, title, strlen(title));
    if (rc == 0)
        rc = tx_buf_printf(&b, ",\"status\":%d", status);
    if (rc == 0 && detail != NULL && printable_ascii(detail, 1024)) {
        rc = tx_buf_puts(&b, ",\"detail\":");
        if (rc == 0)
            rc = tx_buf_json_str(&b, detail, strlen(detail));
    }
    if (rc == 0)
        rc = tx_buf_puts(&b, "}");
    if (rc != 0) {
        tx_buf_reset(&b);
        tx_buf_printf(&b, "{\"type\":\"%s%s\",\"status\":%d}", PROBLEM_BASE, type, status);
    }
    send_answer(conn, status, "application/problem+json", allow, b.data, b.len, head);
    tx_buf_cleanup(&b);
    return status;
}

static int serve_metrics(struct mg_connection *conn, struct tx_health *h, bool head)
{
    struct tx_buf b;
    int rc;
    int status;

    tx_buf_init(&b, METRICS_BODY_MAX);
    rc = tx_metrics_render(h->metrics, &b);
    if (rc == 0) {
        status = send_answer(conn, 200, TX_METRICS_CONTENT_TYPE, NULL, b.data, b.len, head);
    }
    else {
        tx_log_error(TX_KV("component", "health"), "rendering /metrics failed: %s",
                     tx_status_name(rc));
        status = send_problem(conn, 500, "internal", "Internal Server Error",
                              "rendering the metrics failed", NULL, head);
    }
    tx_buf_cleanup(&b);
    return status;
}

static int serve_ready(struct mg_connection *conn, struct tx_health *h, bool head)
{
    struct tx_buf b;
    int rc;
    int status;

    tx_buf_init(&b, TX_READINESS_DETAIL_MAX + 1024);
    rc = tx_readiness_check(h->ready, &b);
    if (rc == 0 || rc == TX_EUNAVAIL) {
        status =
            send_answer(conn, rc == 0 ? 200 : 503, "application/json", NULL, b.data, b.len, head);
    }
    else {
        tx_log_error(TX_KV("component", "health"), "building /readyz failed: %s",
                     tx_status_name(rc));
        status = send_problem(conn, 500, "internal", "Internal Server Error",
                              "building the readiness answer failed", NULL, head);
    }
    tx_buf_cleanup(&b);
    return status;
}

static int handle_request(struct mg_connection *conn, void *cbdata)
{
    static const char healthz[] = "{\"status\":\"ok\"}";
    struct tx_health *h = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *path = ri->local_uri != NULL ? ri->local_uri : "";
    const char *method = ri->request_method != NULL ? ri->request_method : "";
    bool head = strcmp(method, "HEAD") == 0;
    bool known;
    char detail[160];

    known = strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
            (strcmp(path, "/metrics") == 0 && h->metrics != NULL);
    if (!known) {
        if (strlen(path) <= 100)
            snprintf(detail, sizeof(detail), "no resource at %s", path);
        else
            snprintf(detail, sizeof(detail), "no resource at this path");
        return send_problem(conn, 404, "not-found", "Not Found", detail, NULL, head);
    }
    if (!head && strcmp(method, "GET") != 0) {
        if (strlen(method) <= 20)
            snprintf(detail, sizeof(detail), "%s is not allowed on %s; use GET or HEAD", method,
                     path);
        else
            snprintf(detail, sizeof(detail), "use GET or HEAD on %s", path);
        return send_problem(conn, 405, "method-not-allowed", "Method Not Allowed", detail,
                            "GET, HEAD", false);
    }
    if (strcmp(path, "/healthz") == 0)
        return send_answer(conn, 200, "application/json", NULL, healthz, sizeof(healthz) - 1, head);
    if (strcmp(path, "/readyz") == 0)
        return serve_ready(conn, h, head);
    return serve_metrics(conn, h, head);
}

/* Errors CivetWeb answers itself (malformed request, ...) also as problem documents. */
static int http_error_cb(struct mg_connection *conn, int status, const char *errmsg)
{
    const char *title = mg_get_response_code_text(conn, status);
    const char *type;

    switch (status) {
    case 400:
        type = "bad-request";
        break;
    case 404:
        type = "not-found";
        break;
    case 405:
        type = "method-not-allowed";
        break;
    case 413:
        type = "payload-too-large";
        break;
    default:
        type = status >= 500 ? "internal" : "http-error";
        break;
    }
    send_problem(conn, status, type, title != NULL ? title : "Error", errmsg, NULL, false);
    return 0;
}

static int log_message_cb(const struct mg_connection *conn, const char *message)
{
    tx_log_warn(TX_KV("component", "civetweb"), "%s", message);
    return 1;
}

/* "a.b.c.d:port" only: this CivetWeb build has no IPv6 and no host names in listening_ports. */
static int parse_listen(const char *listen, struct sockaddr_in *sin, struct tx_err *err)
{
    char host[INET_ADDRSTRLEN];
    const char *colon;
    size_t hlen;
    unsigned long port;
    char *end;

    if (listen == NULL)
        return tx_err_set(err, TX_EINVAL, "no listen address");
    colon = strrchr(listen, ':');
    if (listen[0] == '[')
        return tx_err_set(err, TX_EINVAL,
                          "listen address '%s': IPv6 is not supported by this CivetWeb build",
                          listen);
    if (colon == NULL || colon == listen)
        return tx_err_set(err, TX_EINVAL, "listen address '%s' is not IPv4:port", listen);
    hlen = (size_t) (colon - listen);
    if (hlen >= sizeof(host))
        return tx_err_set(err, TX_EINVAL, "listen address '%s' is not IPv4:port", listen);
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return tx_err_set(err, TX_EINVAL, "listen address '%s': '%s' is not an IPv4 address",
                          listen, host);
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 || port > 65535)
        return tx_err_set(err, TX_EINVAL, "listen address '%s': port is not 0..65535", listen);
    sin->sin_port = htons((uint16_t) port);
    return 0;
}

/* mg_start2 says only "Failed to setup server ports": bind the address ourselves to say why. */
static int explain_start_failure(const char *listen, const struct sockaddr_in *sin,
                                 const char *mg_text, struct tx_err *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    int e = 0;

    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (const struct sockaddr *) sin, sizeof(*sin)) != 0)
            e = errno;
        close(fd);
    }
    if (e == EADDRINUSE)
        return tx_err_set(err, TX_EUNAVAIL, "%s is already in use", listen);
    if (e == EADDRNOTAVAIL)
        return tx_err_set(err, TX_EINVAL,
                          "cannot listen on %s: no local interface has that "
                          "address",
                          listen);
    if (e == EACCES)
        return tx_err_set(err, TX_EINVAL, "cannot listen on %s: permission denied", listen);
    return tx_err_set(err, TX_EIO, "cannot start the HTTP server on %s: %s", listen,
                      mg_text[0] != '\0' ? mg_text : "unknown CivetWeb error");
}

struct tx_health *tx_health_start(const char *listen, struct tx_metrics *m, tx_ready_fn ready,
                                  void *ctx, struct tx_err *err)
{
    struct tx_health *h = NULL;
    struct tx_health *ret = NULL;
    struct sockaddr_in sin;
    struct mg_callbacks cbs;
    struct mg_init_data init;
    struct mg_error_data mgerr;
    struct mg_server_port ports[4];
    unsigned mgcode = 0;
    char mgtext[256] = "";
    bool lib = false;
    const char *options[] = {
        "listening_ports",
        listen,
        "num_threads",
        SERVER_THREADS,
        "request_timeout_ms",
        SERVER_TIMEOUT_MS,
        "enable_keep_alive",
        "no",
        NULL,
    };

    if (parse_listen(listen, &sin, err) != 0)
        goto out;
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    h->metrics = m;
    h->ready = tx_readiness_create(ready, ctx, 1000);
    if (h->ready == NULL) {
        tx_err_set(err, TX_ENOMEM, "out of memory");
        goto out;
    }
    mg_init_library(0);
    lib = true;
    memset(&cbs, 0, sizeof(cbs));
    cbs.log_message = log_message_cb;
    cbs.http_error = http_error_cb;
    memset(&init, 0, sizeof(init));
    init.callbacks = &cbs;
    init.user_data = h;
    init.configuration_options = options;
    memset(&mgerr, 0, sizeof(mgerr));
    mgerr.code = &mgcode;
    mgerr.text = mgtext;
    mgerr.text_buffer_size = sizeof(mgtext);
    h->mg = mg_start2(&init, &mgerr);
    if (h->mg == NULL) {
        explain_start_failure(listen, &sin, mgtext, err);
        goto out;
    }
    mg_set_request_handler(h->mg, "/", handle_request, h);
    memset(ports, 0, sizeof(ports));
    if (mg_get_server_ports(h->mg, 4, ports) < 1 || ports[0].port <= 0) {
        tx_err_set(err, TX_EIO, "the HTTP server on %s reports no listening port", listen);
        goto out;
    }
    h->port = ports[0].port;
    h->addr = sin;
    h->addr.sin_port = htons((uint16_t) h->port);
    if (h->addr.sin_addr.s_addr == htonl(INADDR_ANY))
        h->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ret = h;
    h = NULL;
    lib = false; /* balanced by tx_health_stop */
out:
    if (h != NULL) {
        if (h->mg != NULL)
            mg_stop(h->mg);
        tx_readiness_destroy(h->ready);
        free(h);
    }
    if (lib)
        mg_exit_library();
    return ret;
}

int tx_health_port(const struct tx_health *h)
{
    return h != NULL ? h->port : 0;
}

/*
 * CivetWeb's master thread notices the stop flag only between polls of the listening socket,
 * which time out every 2 s: while mg_stop waits for it, connect now and then so the poll returns
 * at once. The connections carry no request; CivetWeb closes them.
 */
struct nudge {
    struct sockaddr_in addr;
    atomic_bool done;
};

static void *nudge_run(void *arg)
{
    struct nudge *n = arg;
    struct timespec pause = { 0, 20 * 1000000L };

    while (!atomic_load(&n->done)) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd >= 0) {
            connect(fd, (const struct sockaddr *) &n->addr, sizeof(n->addr));
            close(fd);
        }
        nanosleep(&pause, NULL);
    }
    return NULL;
}

void tx_health_stop(struct tx_health *h)
{
    struct nudge n;
    pthread_t t;
    bool nudging;

    if (h == NULL)
        return;
    n.addr = h->addr;
    atomic_init(&n.done, false);
    nudging = pthread_create(&t, NULL, nudge_run, &n) == 0;
    mg_stop(h->mg);
    if (nudging) {
        atomic_store(&n.done, true);
        pthread_join(t, NULL);
    }
    mg_exit_library();
    tx_readiness_destroy(h->ready);
    free(h);
}

/* ---- probe client ---- */

static long remaining_ms(int64_t deadline)
{
    int64_t left = deadline - tx_time_mono_ms();

    return left > 0 ? (long) left : 0;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, -1 error (errno). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p;
    int rc;

    for (;;) {
        long left = remaining_ms(deadline);

        if (left <= 0)
            return 0;
        p.fd = fd;
        p.events = events;
        p.revents = 0;
        rc = poll(&p, 1, left > 1000000 ? 1000000 : (int) left);
        if (rc > 0)
            return 1;
        if (rc == 0)
            continue;
        if (errno != EINTR)
            return -1;
    }
}

static int split_hostport(const char *hostport, char *host, size_t hostlen, char *port,
                          size_t portlen)
{
    const char *hs = hostport;
    const char *he;
    const char *ps;
    size_t i;

    if (hostport[0] == '[') {
        hs = hostport + 1;
        he = strchr(hs, ']');
        if (he == NULL || he[1] != ':')
            return -1;
        ps = he + 2;
    }
    else {
        he = strrchr(hostport, ':');
        if (he == NULL || memchr(hostport, ':', (size_t) (he - hostport)) != NULL)
            return -1;
        ps = he + 1;
    }
    if (he == hs || (size_t) (he - hs) >= hostlen || strlen(ps) == 0 || strlen(ps) >= portlen)
        return -1;
    for (i = 0; ps[i] != '\0'; i++) {
        if (ps[i] < '0' || ps[i] > '9')
            return -1;
    }
    if (strtoul(ps, NULL, 10) == 0 || strtoul(ps, NULL, 10) > 65535)
        return -1;
    memcpy(host, hs, (size_t) (he - hs));
    host[he - hs] = '\0';
    strcpy(port, ps);
    return 0;
}

/* Connects to one of the addresses within the deadline. Returns the socket or a negative status
 * (detail in err). */
static int probe_connect(const char *hostport, const char *host, const char *port, int64_t deadline,
                         struct tx_err *err)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    struct addrinfo *ai;
    int last_errno = 0;
    bool timed_out = false;
    int fd = -1;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return tx_err_set(err, TX_EUNAVAIL, "cannot resolve %s: %s", host, gai_strerror(rc));
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int soerr = 0;
        socklen_t slen = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            rc = wait_fd(fd, POLLOUT, deadline);
            if (rc > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0)
                break;
            if (rc == 0)
                timed_out = true;
            last_errno = rc > 0 ? soerr : errno;
        }
        else {
            last_errno = errno;
        }
        close(fd);
        fd = -1;
        if (timed_out)
            break;
    }
    freeaddrinfo(res);
    if (fd >= 0)
        return fd;
    if (timed_out)
        return tx_err_set(err, TX_ETIMEDOUT, "connect to %s timed out", hostport);
    if (last_errno == ECONNREFUSED || last_errno == ENETUNREACH || last_errno == EHOSTUNREACH)
        return tx_err_set(err, TX_EUNAVAIL, "connect to %s: %s", hostport,
                          last_errno == ECONNREFUSED ? "connection refused" : "unreachable");
    return tx_err_set(err, TX_EIO, "connect to %s failed (errno %d)", hostport, last_errno);
}

int tx_health_probe(const char *hostport, const char *path, long timeout_ms, struct tx_err *err)
{
    char host[256];
    char port[8];
    struct tx_buf req;
    struct tx_buf ans;
    char chunk[1024];
    int64_t deadline;
    size_t sent = 0;
    int fd = -1;
    int status = 0;
    int rc;
    const char *body;

    tx_buf_init(&req, PROBE_PATH_MAX + 512);
    tx_buf_init(&ans, PROBE_ANSWER_MAX);
    if (hostport == NULL || split_hostport(hostport, host, sizeof(host), port, sizeof(port)) != 0) {
        rc = tx_err_set(err, TX_EINVAL, "'%s' is not host:port",
                        hostport != NULL ? hostport : "(null)");
        goto out;
    }
    if (path == NULL || path[0] != '/' || strchr(path, ' ') != NULL ||
        !printable_ascii(path, PROBE_PATH_MAX)) {
        rc = tx_err_set(err, TX_EINVAL,
                        "the path must start with '/' and be printable ASCII "
                        "without spaces");
        goto out;
    }
    if (timeout_ms <= 0) {
        rc = tx_err_set(err, TX_EINVAL, "timeout must be positive, got %ld ms", timeout_ms);
        goto out;
    }
    deadline = tx_time_mono_ms() + timeout_ms;
    rc = tx_buf_printf(&req,
                       "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: txpipe-healthcheck\r\n"
                       "Accept: */*\r\nConnection: close\r\n\r\n",
                       path, hostport);
    if (rc != 0) {
        rc = tx_err_set(err, rc, "request too long");
        goto out;
    }
    fd = probe_connect(hostport, host, port, deadline, err);
    if (fd < 0) {
        rc = fd;
        fd = -1;
        goto out;
    }
    while (sent < req.len) {
        ssize_t n = send(fd, req.data + sent, req.len - sent, MSG_NOSIGNAL);

        if (n > 0) {
            sent += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = wait_fd(fd, POLLOUT, deadline);
            if (rc > 0)
                continue;
            if (rc == 0) {
                rc = tx_err_set(err, TX_ETIMEDOUT, "sending to %s timed out", hostport);
                goto out;
            }
        }
        rc = tx_err_set(err, TX_EIO, "sending to %s failed (errno %d)", hostport, errno);
        goto out;
    }
    /* Read until the server closes (HTTP/1.0) or the answer fills the buffer. */
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

        if (n > 0) {
            size_t room = ans.max - ans.len;

            tx_buf_append(&ans, chunk, (size_t) n < room ? (size_t) n : room);
            if (ans.len == ans.max)
                break;
            continue;
        }
        if (n == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = wait_fd(fd, POLLIN, deadline);
            if (rc > 0)
                continue;
            if (rc == 0) {
                /* A complete status line is enough to judge. */
                if (ans.len > 0 && memchr(ans.data, '\n', ans.len) != NULL)
                    break;
                rc = tx_err_set(err, TX_ETIMEDOUT, "no answer from %s within %ld ms", hostport,
                                timeout_ms);
                goto out;
            }
        }
        if (ans.len > 0 && memchr(ans.data, '\n', ans.len) != NULL)
            break; /* e.g. a reset after a complete answer */
        rc = tx_err_set(err, TX_EIO, "receiving from %s failed (errno %d)", hostport, errno);
        goto out;
    }
    if (ans.len < 12 || strncmp(ans.data, "HTTP/1.", 7) != 0 || ans.data[8] != ' ' ||
        sscanf(ans.data + 9, "%3d", &status) != 1 || status < 100 || status > 999) {
        rc = tx_err_set(err, TX_EIO, "malformed HTTP answer from %s", hostport);
        goto out;
    }
    if (status >= 200 && status <= 299) {
        rc = 0;
        goto out;
    }
    body = ans.data != NULL ? strstr(ans.data, "\r\n\r\n") : NULL;
    body = body != NULL ? body + 4 : "";
    rc = tx_err_set(err, TX_EUNAVAIL, "GET %s: HTTP %d: %.160s", path, status, body);
out:
    if (fd >= 0)
        close(fd);
    tx_buf_cleanup(&req);
    tx_buf_cleanup(&ans);
    return rc;
}
