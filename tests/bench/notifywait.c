/* notifywait: runs a command as systemd's Type=notify would, and times its READY=1.
 *
 *   notifywait OUT_FILE COMMAND [ARG...]
 *
 * Binds a datagram socket, starts COMMAND with NOTIFY_SOCKET pointing at it, and when READY=1
 * arrives appends "ready_ms=M" (from fork to READY) to OUT_FILE, where "pid=P" is already. It
 * keeps reading the socket (STATUS= updates) until the command exits, and exits with its
 * status, so it can stand in for the command in a shell's job control. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child;

static void nw_forward(int sig)
{
    if (child > 0)
        kill(child, sig);
}

static double nw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool nw_has_ready(const char *msg)
{
    for (const char *p = msg; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, "READY=1", 7) == 0 && (p[7] == '\n' || p[7] == '\0'))
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: notifywait OUT_FILE COMMAND [ARG...]\n");
        return 2;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s.sock", argv[1]);
    unlink(sa.sun_path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "notifywait: %s: %s\n", sa.sun_path, strerror(errno));
        return 1;
    }
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    signal(SIGTERM, nw_forward);
    signal(SIGINT, nw_forward);
    double t0 = nw_now_ms();
    child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "notifywait: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    FILE *f = fopen(argv[1], "w");
    if (f) {
        fprintf(f, "pid=%d\n", (int)child);
        fclose(f);
    }
    bool ready = false;
    for (;;) {
        int status;
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child) {
            unlink(sa.sun_path);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        char msg[4096];
        ssize_t n = recv(fd, msg, sizeof msg - 1, 0);
        if (n <= 0)
            continue;
        msg[n] = '\0';
        if (!ready && nw_has_ready(msg)) {
            ready = true;
            double ms = nw_now_ms() - t0;
            f = fopen(argv[1], "a");
            if (f) {
                fprintf(f, "ready_ms=%.1f\n", ms);
                fclose(f);
            }
        }
    }
}
