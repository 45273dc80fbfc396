/*
 * A small real SMTP server on 127.0.0.1 for txnotify's tests (included by test_notify_smtp.c and
 * tests/integration/test_notify.c; not a test on its own). It runs in a thread, serves one
 * connection at a time and answers by the recipient's local part:
 *   reject...    RCPT TO -> 550 5.1.1 (permanent)
 *   tempfail...  RCPT TO -> 451 4.7.1 the first FAKE_TEMPFAILS times for that address, then 250
 *   datafail...  final reply after the data -> 554 5.6.0 (permanent, after DATA)
 *   anything else is accepted (250 after the data).
 * It counts connections and accepted messages per recipient and keeps the last accepted message.
 */
#ifndef NOTIFY_FAKE_SMTP_H
#define NOTIFY_FAKE_SMTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAKE_TEMPFAILS 2
#define FAKE_ADDRS     64
#define FAKE_MSG_MAX   (256 * 1024)

struct fake_addr {
    char addr[256];
    int rcpt_seen;
    int accepted;
};

struct fake_smtp {
    int lfd;
    int port;
    pthread_t th;
    atomic_int stop;
    bool running;
    atomic_int hangup_after_message; /* close without QUIT after each accepted message */
    pthread_mutex_t mu;
    int connections;
    int messages;
    struct fake_addr addrs[FAKE_ADDRS];
    int naddrs;
    char last_msg[FAKE_MSG_MAX];
};

static struct fake_addr *fake_addr_of(struct fake_smtp *f, const char *addr)
{
    int i;

    for (i = 0; i < f->naddrs; i++) {
        if (strcmp(f->addrs[i].addr, addr) == 0)
            return &f->addrs[i];
    }
    if (f->naddrs == FAKE_ADDRS)
        return NULL;
    snprintf(f->addrs[f->naddrs].addr, sizeof(f->addrs[0].addr), "%s", addr);
    return &f->addrs[f->naddrs++];
}

static bool fake_send(int fd, const char *s)
{
    size_t len = strlen(s);

    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

        if (n <= 0)
            return false;
        s += n;
        len -= (size_t) n;
    }
    return true;
}

/* Reads one line (up to LF) into line; false on EOF, error or stop. */
static bool fake_read_line(struct fake_smtp *f, int fd, char *line, size_t cap)
{
    size_t n = 0;

    while (!atomic_load(&f->stop)) {
        struct pollfd p = { fd, POLLIN, 0 };
        char c;
        ssize_t r;

        if (poll(&p, 1, 100) <= 0)
            continue;
        r = recv(fd, &c, 1, 0);
        if (r <= 0)
            return false;
        if (n + 1 < cap)
            line[n++] = c;
        if (c == '\n') {
            line[n] = '\0';
            return true;
        }
    }
    return false;
}

/* The address inside "<...>" of a MAIL/RCPT line. */
static void fake_angle(const char *line, char *out, size_t cap)
{
    const char *a = strchr(line, '<');
    const char *b = a != NULL ? strchr(a, '>') : NULL;

    out[0] = '\0';
    if (a != NULL && b != NULL && (size_t) (b - a - 1) < cap)
        snprintf(out, cap, "%.*s", (int) (b - a - 1), a + 1);
}

static void fake_session(struct fake_smtp *f, int fd)
{
    char line[2048];
    char rcpt[256] = "";
    char *msg = malloc(FAKE_MSG_MAX);

    if (msg == NULL)
        return;
    fake_send(fd, "220 fake.test ESMTP txtest\r\n");
    while (fake_read_line(f, fd, line, sizeof(line))) {
        if (strncasecmp(line, "EHLO", 4) == 0) {
            fake_send(fd, "250-fake.test greets you\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
        }
        else if (strncasecmp(line, "HELO", 4) == 0 || strncasecmp(line, "NOOP", 4) == 0 ||
                 strncasecmp(line, "RSET", 4) == 0) {
            fake_send(fd, "250 OK\r\n");
        }
        else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
            rcpt[0] = '\0';
            fake_send(fd, "250 2.1.0 sender OK\r\n");
        }
        else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
            struct fake_addr *a;
            char reply[512];

            fake_angle(line, rcpt, sizeof(rcpt));
            pthread_mutex_lock(&f->mu);
            a = fake_addr_of(f, rcpt);
            if (a != NULL)
                a->rcpt_seen++;
            if (strncmp(rcpt, "reject", 6) == 0) {
                snprintf(reply, sizeof(reply),
                         "550 5.1.1 <%s>: Recipient address rejected: user unknown\r\n", rcpt);
            }
            else if (strncmp(rcpt, "tempfail", 8) == 0 && a != NULL &&
                     a->rcpt_seen <= FAKE_TEMPFAILS) {
                snprintf(reply, sizeof(reply), "451 4.7.1 <%s>: try again later\r\n", rcpt);
            }
            else {
                snprintf(reply, sizeof(reply), "250 2.1.5 recipient OK\r\n");
            }
            pthread_mutex_unlock(&f->mu);
            fake_send(fd, reply);
        }
        else if (strncasecmp(line, "DATA", 4) == 0) {
            size_t len = 0;
            bool ok = false;

            fake_send(fd, "354 go ahead\r\n");
            while (fake_read_line(f, fd, line, sizeof(line))) {
                size_t ll = strlen(line);

                if (strcmp(line, ".\r\n") == 0) {
                    ok = true;
                    break;
                }
                if (len + ll < FAKE_MSG_MAX) {
                    memcpy(msg + len, line, ll);
                    len += ll;
                }
            }
            if (!ok)
                break;
            msg[len] = '\0';
            if (strncmp(rcpt, "datafail", 8) == 0) {
                fake_send(fd, "554 5.6.0 message content refused\r\n");
                continue;
            }
            pthread_mutex_lock(&f->mu);
            {
                struct fake_addr *a = fake_addr_of(f, rcpt);

                if (a != NULL)
                    a->accepted++;
            }
            f->messages++;
            memcpy(f->last_msg, msg, len + 1);
            pthread_mutex_unlock(&f->mu);
            fake_send(fd, "250 2.0.0 queued\r\n");
            if (atomic_load(&f->hangup_after_message))
                break;
        }
        else if (strncasecmp(line, "QUIT", 4) == 0) {
            fake_send(fd, "221 2.0.0 bye\r\n");
            break;
        }
        else {
            fake_send(fd, "500 5.5.1 unknown command\r\n");
        }
    }
    free(msg);
}

static void *fake_main(void *arg)
{
    struct fake_smtp *f = arg;

    while (!atomic_load(&f->stop)) {
        struct pollfd p = { f->lfd, POLLIN, 0 };
        int fd;

        if (poll(&p, 1, 100) <= 0)
            continue;
        fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&f->mu);
        f->connections++;
        pthread_mutex_unlock(&f->mu);
        fake_session(f, fd);
        close(fd);
    }
    return NULL;
}

/* Starts the server on port (0: any free port); returns 0 and sets f->port. */
static int fake_smtp_start(struct fake_smtp *f, int port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int one = 1;

    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->lfd < 0)
        return -1;
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(f->lfd, (struct sockaddr *) &sa, sizeof(sa)) != 0 || listen(f->lfd, 16) != 0 ||
        getsockname(f->lfd, (struct sockaddr *) &sa, &sl) != 0) {
        fprintf(stderr, "fake SMTP server: cannot listen on 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        close(f->lfd);
        return -1;
    }
    f->port = ntohs(sa.sin_port);
    if (pthread_create(&f->th, NULL, fake_main, f) != 0) {
        close(f->lfd);
        return -1;
    }
    f->running = true;
    return 0;
}

static void fake_smtp_stop(struct fake_smtp *f)
{
    if (!f->running)
        return;
    atomic_store(&f->stop, 1);
    pthread_join(f->th, NULL);
    close(f->lfd);
    f->running = false;
    pthread_mutex_destroy(&f->mu);
}

/* Messages accepted for addr. */
static int fake_smtp_accepted(struct fake_smtp *f, const char *addr)
{
    int i;
    int n = 0;

    pthread_mutex_lock(&f->mu);
    for (i = 0; i < f->naddrs; i++) {
        if (strcmp(f->addrs[i].addr, addr) == 0)
            n = f->addrs[i].accepted;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* A free TCP port on 127.0.0.1 with nothing listening on it (bound, then closed). */
static int fake_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *) &sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

#endif
