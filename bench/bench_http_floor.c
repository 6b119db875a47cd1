/* The HTTP floor: the least an io_uring server can do per request on this machine, so reeld's
 * listener can be judged by its distance to it (bench/http_floor runs it beside reeld and
 * nginx).
 *
 * One thread, one ring: multishot accept, multishot recv into a provided-buffer ring, and for
 * every request head that ends in the bytes received ("\r\n\r\n", counted across buffer
 * boundaries) one constant response, all the responses of one receive in one send. No parsing,
 * no routing, no allocation per request, no timers: what is left is the transport's cost.
 *
 *     bench_http_floor PORT [BODY_FILE CONTENT_TYPE]
 *
 * Runs until killed. The response carries the same body as reeld's GET /api/ping, or the file's
 * bytes (read once at start: a playlist, say), with fewer headers (no Date, no Connection): the
 * floor does the least. */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFS      1024
#define BUF_SIZE  4096
#define BGID      1
#define MAX_CONNS 65536
#define OUT_MAX   (64 * 1024)

static char response[16384] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: 11\r\n\r\n{\"ok\":true}";
static size_t response_len;

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND };

typedef struct conn {
    int fd;
    uint32_t last4; /* the last four bytes received, the newest lowest */
    int since;      /* bytes received since the last head's end, up to 4 */
    int sending;
    size_t out_len, pending; /* responses queued while a send is in flight */
    char out[OUT_MAX];
} conn;

static conn *conns[MAX_CONNS];

/* How many request heads end in these `n` bytes: each "\r\n\r\n" (counted across receives)
 * that does not overlap the one before. Only the line feeds are looked at, found with memchr;
 * the three bytes before each come from the buffer or, at its start, from `last4`. A byte at a
 * time with the state in memory cost ~0.5 us a request here, more than all of reeld's parsing. */
static int heads_in(conn *c, const char *b, int n)
{
    int heads = 0;
    const char *p = b, *end = b + n;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        int at = (int)(p - b);
        uint32_t w = 0;
        for (int k = 3; k >= 1; k--) /* the three bytes before the line feed, oldest highest */
            w = w << 8 |
                (at - k >= 0 ? (uint8_t)b[at - k] : (uint8_t)(c->last4 >> (8 * (k - at - 1))));
        int since = c->since + at + 1;
        if (w == ('\r' << 16 | '\n' << 8 | '\r') && since >= 4) {
            heads++;
            c->since = -(at + 1); /* counts from this head's end */
        }
        p++;
    }
    c->since += n;
    if (c->since > 4)
        c->since = 4;
    for (int i = n >= 4 ? n - 4 : 0; i < n; i++)
        c->last4 = c->last4 << 8 | (uint8_t)b[i];
    return heads;
}

static uint64_t ud(int op, int fd)
{
    return ((uint64_t)op << 32) | (uint32_t)fd;
}

static void arm_recv(struct io_uring *ring, int fd)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, ud(OP_RECV, fd));
}

static void flush(struct io_uring *ring, conn *c)
{
    if (c->sending || c->pending == 0)
        return;
    size_t n = c->pending;
    if (n * response_len > OUT_MAX)
        n = OUT_MAX / response_len;
    for (size_t i = 0; i < n; i++)
        memcpy(c->out + i * response_len, response, response_len);
    c->out_len = n * response_len;
    c->pending -= n;
    c->sending = 1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_send(sqe, c->fd, c->out, c->out_len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud(OP_SEND, c->fd));
}

static void drop(int fd)
{
    if (fd >= 0 && fd < MAX_CONNS && conns[fd] != NULL) {
        close(fd);
        free(conns[fd]);
        conns[fd] = NULL;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: bench_http_floor PORT [BODY_FILE CONTENT_TYPE]\n");
        return 2;
    }
    response_len = strlen(response);
    if (argc == 4) {
        char body[8192];
        FILE *f = fopen(argv[2], "rb");
        size_t n = f ? fread(body, 1, sizeof(body), f) : 0;
        if (f == NULL || !feof(f)) {
            fprintf(stderr, "bench_http_floor: %s: missing or larger than 8 KiB\n", argv[2]);
            return 2;
        }
        fclose(f);
        int h = snprintf(response, sizeof(response),
                         "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                         argv[3], n);
        if (h < 0 || (size_t)h + n > sizeof(response))
            return 2;
        memcpy(response + h, body, n);
        response_len = (size_t)h + n;
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
        perror("bench_http_floor: listen");
        return 1;
    }
    struct io_uring ring;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
        memset(&p, 0, sizeof(p));
        if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
            fprintf(stderr, "bench_http_floor: no io_uring here\n");
            return 1;
        }
    }
    /* liburing 2.3 (Debian 12) has no io_uring_setup_buf_ring: registered by hand, as the
     * listener does. */
    struct io_uring_buf_ring *br = NULL;
    char *mem = malloc((size_t)BUFS * BUF_SIZE);
    if (posix_memalign((void **)&br, 4096, BUFS * sizeof(struct io_uring_buf)) != 0 || !mem)
        return 1;
    memset(br, 0, BUFS * sizeof(struct io_uring_buf));
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)br, .ring_entries = BUFS, .bgid = BGID};
    int err = io_uring_register_buf_ring(&ring, &reg, 0);
    if (err < 0) {
        fprintf(stderr, "bench_http_floor: no buffer ring (%s)\n", strerror(-err));
        return 1;
    }
    io_uring_buf_ring_init(br);
    for (int i = 0; i < BUFS; i++)
        io_uring_buf_ring_add(br, mem + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(BUFS), i);
    io_uring_buf_ring_advance(br, BUFS);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud(OP_ACCEPT, lfd));
    printf("listening on 127.0.0.1:%s\n", argv[1]);
    fflush(stdout);
    for (;;) {
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            int op = (int)(cqe->user_data >> 32), fd = (int)(uint32_t)cqe->user_data;
            int res = cqe->res;
            int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
            if (op == OP_ACCEPT) {
                if (res >= 0 && res < MAX_CONNS) {
                    conns[res] = calloc(1, sizeof(conn));
                    conns[res]->fd = res;
                    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    arm_recv(&ring, res);
                } else if (res >= 0) {
                    close(res);
                }
                if (!more) {
                    sqe = io_uring_get_sqe(&ring);
                    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
                    io_uring_sqe_set_data64(sqe, ud(OP_ACCEPT, lfd));
                }
            } else if (op == OP_RECV) {
                conn *c = conns[fd];
                if (res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
                    int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
                    const char *b = mem + (size_t)bid * BUF_SIZE;
                    if (c != NULL) {
                        c->pending += heads_in(c, b, res);
                        flush(&ring, c);
                    }
                    io_uring_buf_ring_add(br, (void *)b, BUF_SIZE, (unsigned short)bid,
                                          io_uring_buf_ring_mask(BUFS), 0);
                    io_uring_buf_ring_advance(br, 1);
                }
                if (res <= 0 && res != -ENOBUFS) {
                    drop(fd);
                } else if (!more && c != NULL) {
                    arm_recv(&ring, fd); /* out of buffers for a moment, or ended: again */
                }
            } else if (op == OP_SEND) {
                conn *c = conns[fd];
                if (c == NULL)
                    continue;
                c->sending = 0;
                if (res < 0) {
                    drop(fd);
                } else if ((size_t)res < c->out_len) {
                    /* A short send: the rest first (rare with small responses). */
                    memmove(c->out, c->out + res, c->out_len - (size_t)res);
                    c->out_len -= (size_t)res;
                    c->sending = 1;
                    sqe = io_uring_get_sqe(&ring);
                    io_uring_prep_send(sqe, fd, c->out, c->out_len, MSG_NOSIGNAL);
                    io_uring_sqe_set_data64(sqe, ud(OP_SEND, fd));
                } else {
                    flush(&ring, c);
                }
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
}
