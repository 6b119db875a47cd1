/* What the unit tests that talk to a real listener or server share: a free loopback port, a
 * connected socket with timeouts, a send that sends everything, and removing a temporary tree.
 * Static functions in a header (like test.h): each test program is one translation unit. */
#ifndef REELD_TEST_FIXTURE_NET_H
#define REELD_TEST_FIXTURE_NET_H

#include <arpa/inet.h>
#include <bearssl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* A fake HTTP peer's reading: the next request on fd into b[0..cap), where *have bytes are
 * already held (what came after the last request). Returns the request's length (head and
 * Content-Length body; its head ends at b + *head_len), or 0 when the peer closed or the
 * request does not fit. Drop it with request_done once answered. */
static inline size_t request_read(int fd, char *b, size_t cap, size_t *have, size_t *head_len)
{
    char *end;
    while ((end = memmem(b, *have, "\r\n\r\n", 4)) == NULL) {
        ssize_t n = *have < cap ? read(fd, b + *have, cap - *have) : 0;
        if (n <= 0)
            return 0;
        *have += (size_t)n;
    }
    size_t head = (size_t)(end - b) + 4, body = 0;
    for (char *p = b; p < end; p++)
        if ((p == b || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
            body = strtoul(p + 15, NULL, 10);
    if (head + body > cap)
        return 0;
    while (*have < head + body) {
        ssize_t n = read(fd, b + *have, cap - *have);
        if (n <= 0)
            return 0;
        *have += (size_t)n;
    }
    *head_len = head;
    return head + body;
}

/* A fake peer's accept loop: each connection of `listen_fd` to `conn` (given the descriptor as
 * (intptr_t)) on a detached thread of its own, until accept fails (the socket shut down). */
static inline void accept_each(int listen_fd, void *(*conn)(void *))
{
    for (;;) {
        int c = accept(listen_fd, NULL, NULL);
        if (c < 0)
            return;
        pthread_t t;
        pthread_create(&t, NULL, conn, (void *)(intptr_t)c);
        pthread_detach(t);
    }
}

/* Drops the request of `len` bytes request_read returned, keeping what follows it. */
static inline void request_done(char *b, size_t *have, size_t len)
{
    memmove(b, b + len, *have - len);
    *have -= len;
}

/* "\"<hex MD5>\"" of p[0..n): the ETag S3 gives a single PUT. */
static inline void md5_etag(const void *p, size_t n, char out[40])
{
    br_md5_context c;
    unsigned char d[16];
    br_md5_init(&c);
    br_md5_update(&c, p, n);
    br_md5_out(&c, d);
    out[0] = '"';
    for (int i = 0; i < 16; i++)
        snprintf(out + 1 + 2 * i, 3, "%02x", d[i]);
    out[33] = '"';
    out[34] = '\0';
}

/* A response read to the end of its connection (the requests say Connection: close). */
typedef struct response {
    int status;
    char head[4096]; /* status line and header lines, each ending in CRLF */
    char *body;      /* len bytes, NUL-terminated; the caller's (response_free) */
    size_t len;
} response;

static inline void response_free(response *r)
{
    free(r->body);
    r->body = NULL;
}

/* Reads fd to its end into `out`: 0, or -1 when no response head came. */
static inline int response_read(int fd, response *out)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL || sscanf(buf, "HTTP/1.1 %d ", &out->status) != 1) {
        free(buf);
        return -1;
    }
    size_t hlen = (size_t)(end - buf) + 2; /* the last header line's CRLF */
    if (hlen >= sizeof(out->head))
        hlen = sizeof(out->head) - 1;
    memcpy(out->head, buf, hlen);
    out->head[hlen] = '\0';
    out->len = len - (size_t)(end + 4 - buf);
    out->body = malloc(out->len + 1);
    memcpy(out->body, end + 4, out->len);
    out->body[out->len] = '\0';
    free(buf);
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
