/*
 * libtxnodelay.so: an LD_PRELOAD shim for ci/bench that sets TCP_NODELAY on every socket the
 * process accepts. It demonstrates, without changing txgateway, what CivetWeb's "tcp_nodelay"
 * option would do: txgateway writes each response header line with its own send(), and without
 * TCP_NODELAY Nagle's algorithm holds the rest of the answer until the client's delayed ACK
 * (about 40 ms on Linux) on every kept-alive request after the first few.
 * Benchmark-only; never used by ci/up.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/socket.h>

typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);

static int nodelay(int fd)
{
    int one = 1;

    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int accept(int s, struct sockaddr *addr, socklen_t *len)
{
    static accept_fn next;

    if (next == NULL)
        *(void **) &next = dlsym(RTLD_NEXT, "accept");
    return nodelay(next(s, addr, len));
}

int accept4(int s, struct sockaddr *addr, socklen_t *len, int flags)
{
    static accept4_fn next;

    if (next == NULL)
        *(void **) &next = dlsym(RTLD_NEXT, "accept4");
    return nodelay(next(s, addr, len, flags));
}
