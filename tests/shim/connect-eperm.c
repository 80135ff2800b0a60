/* connect-eperm: an LD_PRELOAD shim for the tests. connect() to the TCP port in $EPERM_PORT
 * fails with EPERM, as under a local firewall or systemd's IPAddressDeny=, so that the tests
 * can check what parkd says about it without root or a booted systemd. Other connects pass. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

static int blocked_port(const struct sockaddr *addr)
{
    const char *port = getenv("EPERM_PORT");
    if (!port || !addr)
        return 0;
    int want = atoi(port);
    if (addr->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)addr)->sin_port) == want;
    if (addr->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port) == want;
    return 0;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (blocked_port(addr)) {
        errno = EPERM;
        return -1;
    }
    connect_fn real = (connect_fn)dlsym(RTLD_NEXT, "connect");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    return real(fd, addr, len);
}
