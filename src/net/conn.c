/* Outgoing connections over io_uring, with BearSSL pumped in between. See conn.h.
 *
 * The TLS pump looks at the engine's state after every completion: records to send go first
 * (the handshake and the application data alike), then plaintext is fed in, then plaintext out
 * is delivered, and only when nothing else can move does it receive a record. */
#include "src/net/conn.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/rt/alloc.h"

#define CONN_PLAIN_BUF 16384

enum { WANT_NONE, WANT_CONNECT, WANT_SEND, WANT_RECV };

struct conn {
    rd_op op; /* the socket operation in flight */
    rd_loop *loop;
    int fd;
    int busy;    /* a socket operation is in flight */
    int want;    /* what the caller asked for */
    int op_send; /* the op in flight is a send (else a receive or the connect) */
    conn_cb cb;
    void *ctx;
    const uint8_t *out; /* plaintext still to send */
    size_t out_len;
    uint8_t *data;  /* what the last receive delivered */
    size_t tls_ack; /* plaintext delivered by the engine, acknowledged on the next call */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    tls_client *tls; /* NULL: plain TCP */
    uint8_t *plain;  /* receive buffer of a plain conn */
};

static void op_done(rd_op *op, int res, uint32_t flags);

int conn_create(conn **out, rd_loop *loop, const struct sockaddr *addr, socklen_t addrlen,
                const tls_anchors *anchors, const char *server_name)
{
    assert(addrlen <= sizeof(struct sockaddr_storage));
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn *c = rd_calloc(1, sizeof(*c), "a connection");
    c->op.done = op_done;
    c->loop = loop;
    c->fd = fd;
    memcpy(&c->addr, addr, addrlen);
    c->addrlen = addrlen;
    if (anchors != NULL) {
        c->tls = rd_calloc(1, sizeof(*c->tls), "a TLS context");
        int r = tls_client_start(c->tls, anchors, server_name);
        if (r < 0) {
            conn_destroy(c);
            return r;
        }
    } else {
        c->plain = rd_calloc(1, CONN_PLAIN_BUF, "a receive buffer");
    }
    *out = c;
    return 0;
}

void conn_destroy(conn *c)
{
    if (c == NULL)
        return;
    assert(!c->busy);
    close(c->fd);
    free(c->tls);
    free(c->plain);
    free(c);
}

int conn_busy(const conn *c)
{
    return c->busy || c->want != WANT_NONE;
}

uint8_t *conn_data(conn *c)
{
    return c->data;
}

int conn_tls_error(conn *c)
{
    return c->tls ? br_ssl_engine_last_error(tls_engine(c->tls)) : 0;
}

static void finish(conn *c, int res)
{
    conn_cb cb = c->cb;
    c->want = WANT_NONE;
    c->cb = NULL;
    cb(c, res, c->ctx);
}

static void submit_send(conn *c, const void *buf, size_t len)
{
    struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->op);
    io_uring_prep_send(sqe, c->fd, buf, len, MSG_NOSIGNAL);
    c->busy = 1;
    c->op_send = 1;
}

static void submit_recv(conn *c, void *buf, size_t len)
{
    struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->op);
    io_uring_prep_recv(sqe, c->fd, buf, len, 0);
    c->busy = 1;
    c->op_send = 0;
}

/* Moves the TLS engine as far as it goes without waiting, then waits for one socket op or
 * finishes the caller's operation. */
static void tls_pump(conn *c)
{
    br_ssl_engine_context *eng = tls_engine(c->tls);
    for (;;) {
        unsigned st = br_ssl_engine_current_state(eng);
        if (st & BR_SSL_CLOSED) {
            int e = br_ssl_engine_last_error(eng);
            finish(c, e ? tls_errno(e) : c->want == WANT_RECV ? 0 : -ECONNRESET);
            return;
        }
        size_t len;
        if (st & BR_SSL_SENDREC) {
            unsigned char *buf = br_ssl_engine_sendrec_buf(eng, &len);
            submit_send(c, buf, len);
            return;
        }
        if (c->want == WANT_SEND) {
            if (c->out_len == 0) {
                finish(c, 0);
                return;
            }
            if (st & BR_SSL_SENDAPP) {
                unsigned char *buf = br_ssl_engine_sendapp_buf(eng, &len);
                if (len > c->out_len)
                    len = c->out_len;
                memcpy(buf, c->out, len);
                br_ssl_engine_sendapp_ack(eng, len);
                c->out += len;
                c->out_len -= len;
                if (c->out_len == 0)
                    br_ssl_engine_flush(eng, 0);
                continue;
            }
        }
        if (c->want == WANT_RECV && (st & BR_SSL_RECVAPP)) {
            unsigned char *buf = br_ssl_engine_recvapp_buf(eng, &len);
            c->data = buf;
            c->tls_ack = len;
            finish(c, (int)len);
            return;
        }
        if (st & BR_SSL_RECVREC) {
            unsigned char *buf = br_ssl_engine_recvrec_buf(eng, &len);
            submit_recv(c, buf, len);
            return;
        }
        finish(c, -EPROTO); /* the engine can move no further: should not happen */
        return;
    }
}

static void op_done(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    conn *c = (conn *)(void *)op;
    c->busy = 0;
    if (c->want == WANT_CONNECT) {
        finish(c, res);
        return;
    }
    if (c->tls != NULL) {
        br_ssl_engine_context *eng = tls_engine(c->tls);
        if (res < 0) {
            finish(c, res);
            return;
        }
        if (res == 0) {
            /* The peer closed. Between responses that is how keep-alive ends; inside one it
             * is a truncation, which the HTTP layer notices from its framing. */
            br_ssl_engine_close(eng);
            finish(c, c->want == WANT_RECV ? 0 : -ECONNRESET);
            return;
        }
        if (c->op_send)
            br_ssl_engine_sendrec_ack(eng, (size_t)res);
        else
            br_ssl_engine_recvrec_ack(eng, (size_t)res);
        tls_pump(c);
        return;
    }
    if (res < 0) {
        finish(c, res);
        return;
    }
    if (c->want == WANT_SEND) {
        if (res == 0) {
            finish(c, -ECONNRESET);
            return;
        }
        c->out += res;
        c->out_len -= (size_t)res;
        if (c->out_len == 0)
            finish(c, 0);
        else
            submit_send(c, c->out, c->out_len);
        return;
    }
    c->data = c->plain;
    finish(c, res);
}

static void start(conn *c, int want, conn_cb cb, void *ctx)
{
    assert(!c->busy && c->want == WANT_NONE);
    c->want = want;
    c->cb = cb;
    c->ctx = ctx;
    if (c->tls != NULL && c->tls_ack) {
        br_ssl_engine_recvapp_ack(tls_engine(c->tls), c->tls_ack);
        c->tls_ack = 0;
    }
}

void conn_connect(conn *c, conn_cb cb, void *ctx)
{
    start(c, WANT_CONNECT, cb, ctx);
    struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->op);
    io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)&c->addr, c->addrlen);
    c->busy = 1;
    c->op_send = 0;
}

void conn_send(conn *c, const void *buf, size_t len, conn_cb cb, void *ctx)
{
    start(c, WANT_SEND, cb, ctx);
    c->out = buf;
    c->out_len = len;
    if (c->tls != NULL)
        tls_pump(c);
    else if (len == 0)
        finish(c, 0);
    else
        submit_send(c, buf, len);
}

void conn_recv(conn *c, conn_cb cb, void *ctx)
{
    start(c, WANT_RECV, cb, ctx);
    if (c->tls != NULL)
        tls_pump(c);
    else
        submit_recv(c, c->plain, CONN_PLAIN_BUF);
}

void conn_cancel(conn *c)
{
    if (!c->busy)
        return;
    struct io_uring_sqe *sqe = loop_sqe(c->loop, NULL);
    io_uring_prep_cancel(sqe, &c->op, 0);
}
