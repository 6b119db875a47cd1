/* What the unit tests that talk to a real listener or server share: a free loopback port, a
 * connected socket with timeouts, a send that sends everything, and removing a temporary tree.
 * Static functions in a header (like test.h): each test program is one translation unit. */
#ifndef REELD_TEST_FIXTURE_NET_H
#define REELD_TEST_FIXTURE_NET_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A loopback TCP port nothing listens on now (bound and released). */
static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* A socket connected to ip:port (NULL: 127.0.0.1), with 5 s send and receive timeouts so a
 * server that never answers fails the test instead of hanging it; -1 when refused. */
static inline int dial_ip(const char *ip, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (ip == NULL)
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else
        inet_pton(AF_INET, ip, &a.sin_addr);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    close(fd);
    return -1;
}

/* 0 when all n bytes were sent, -1 otherwise. */
static inline int send_all(int fd, const void *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = send(fd, (const char *)p + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

/* Removes `path` and everything under it (a test's temporary directory). */
static inline void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[1024];
        int n = snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        if (n > 0 && (size_t)n < sizeof(sub))
            rm_rf(sub);
    }
    closedir(d);
    rmdir(path);
}

#endif
