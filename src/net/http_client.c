/* HTTP/1.1 exchanges over a conn. See http_client.h. */
#include "src/net/http_client.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "src/rt/alloc.h"

enum { PH_SEND, PH_HEAD, PH_BODY, PH_DONE };

static void send_body(httpc_exchange *x);
static void recv_more(httpc_exchange *x);

static void finish(httpc_exchange *x, int res)
{
    assert(x->phase != PH_DONE);
    x->phase = PH_DONE;
    if (res < 0)
        x->reusable = 0;
    free(x->filebuf);
    x->filebuf = NULL;
    x->done(x, res);
}

/* Hands body bytes to the caller according to the framing; finishes when the body is whole. */
static void body_bytes(httpc_exchange *x, uint8_t *data, size_t len)
{
    int r = 0;
    switch (x->kind) {
    case HTTP1_BODY_NONE:
        x->reusable = x->resp.keep_alive && len == 0 && x->pend_len == 0;
        finish(x, 0);
        return;
    case HTTP1_BODY_LENGTH: {
        size_t take = len < x->body_left ? len : (size_t)x->body_left;
        if (take)
            r = x->on_body(x, data, take);
        x->body_left -= take;
        if (r < 0) {
            finish(x, r);
        } else if (x->body_left == 0) {
            x->reusable = x->resp.keep_alive && take == len && x->pend_len == 0;
            finish(x, 0);
        } else {
            recv_more(x);
        }
        return;
    }
    case HTTP1_BODY_CHUNKED: {
        size_t used, n;
        int st = http1_chunked_decode(&x->chunked, (char *)data, len, &used, (char *)data, &n);
        if (st == HTTP1_BAD) {
            finish(x, -EPROTO);
            return;
        }
        if (n)
            r = x->on_body(x, data, n);
        if (r < 0) {
            finish(x, r);
        } else if (st == 1) {
            x->reusable = x->resp.keep_alive && used == len && x->pend_len == 0;
            finish(x, 0);
        } else {
            recv_more(x);
        }
        return;
    }
    case HTTP1_BODY_CLOSE:
        if (len)
            r = x->on_body(x, data, len);
        if (r < 0)
            finish(x, r);
        else
            recv_more(x);
        return;
    }
}

/* Parses what the head buffer holds; on a whole head, moves to the body. */
static void head_bytes(httpc_exchange *x)
{
    for (;;) {
        int n =
            http1_parse_response(x->headbuf, x->headlen, &x->resp, x->headers, HTTP1_MAX_HEADERS);
        if (n == HTTP1_PARTIAL) {
            if (x->headlen == sizeof(x->headbuf))
                finish(x, -EMSGSIZE);
            else
                recv_more(x);
            return;
        }
        if (n < 0) {
            finish(x, -EPROTO);
            return;
        }
        if (x->resp.status < 200) {
            /* 100 Continue and friends: skip, the real head follows. */
            memmove(x->headbuf, x->headbuf + n, x->headlen - (size_t)n);
            x->headlen -= (size_t)n;
            continue;
        }
        int r = x->on_head ? x->on_head(x, &x->resp) : 0;
        if (r < 0) {
            finish(x, r);
            return;
        }
        x->phase = PH_BODY;
        x->kind = http1_body_kind(&x->resp, x->head_request);
        x->body_left = x->kind == HTTP1_BODY_LENGTH ? (uint64_t)x->resp.content_length : 0;
        /* The bytes after the head are body; they stay in headbuf, after the head's own. */
        body_bytes(x, (uint8_t *)x->headbuf + n, x->headlen - (size_t)n);
        return;
    }
}

/* Received bytes: into the head buffer until the head is whole, then to the body. What does
 * not fit in the head buffer waits in `pend` (it stays valid until the conn's next operation). */
static void got_bytes(httpc_exchange *x, uint8_t *data, size_t len)
{
    if (x->phase == PH_BODY) {
        body_bytes(x, data, len);
        return;
    }
    size_t room = sizeof(x->headbuf) - x->headlen;
    size_t take = len < room ? len : room;
    memcpy(x->headbuf + x->headlen, data, take);
    x->headlen += take;
    x->pend = data + take;
    x->pend_len = len - take;
    head_bytes(x);
}

static void recv_done(conn *c, int res, void *ctx)
{
    httpc_exchange *x = ctx;
    if (x->cancel_err) {
        finish(x, x->cancel_err);
        return;
    }
    if (res < 0) {
        finish(x, res);
        return;
    }
    if (res == 0) {
        if (x->phase == PH_BODY && x->kind == HTTP1_BODY_CLOSE) {
            x->reusable = 0;
            finish(x, 0);
        } else {
            finish(x, x->got_response ? -EPROTO : -ECONNRESET);
        }
        return;
    }
    x->got_response = 1;
    got_bytes(x, conn_data(c), (size_t)res);
}

static void recv_more(httpc_exchange *x)
{
    if (x->pend_len) {
        uint8_t *data = x->pend;
        size_t len = x->pend_len;
        x->pend_len = 0;
        got_bytes(x, data, len);
        return;
    }
    conn_recv(x->c, recv_done, x);
}

static void body_sent(conn *c, int res, void *ctx)
{
    (void)c;
    httpc_exchange *x = ctx;
    if (x->cancel_err || res < 0) {
        finish(x, x->cancel_err ? x->cancel_err : res);
        return;
    }
    if (x->from_file && x->file_sent < x->file_len) {
        send_body(x);
        return;
    }
    x->phase = PH_HEAD;
    recv_more(x);
}

static void file_read_done(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    httpc_exchange *x = (httpc_exchange *)(void *)((char *)op - offsetof(httpc_exchange, read_op));
    if (x->cancel_err) {
        finish(x, x->cancel_err);
        return;
    }
    if (res <= 0) {
        finish(x, res < 0 ? res : -EIO); /* the file is shorter than announced */
        return;
    }
    x->file_sent += (uint64_t)res;
    conn_send(x->c, x->filebuf, (size_t)res, body_sent, x);
}

static void send_body(httpc_exchange *x)
{
    if (!x->from_file) {
        conn_send(x->c, x->body, x->body_len, body_sent, x);
        return;
    }
    if (x->filebuf == NULL)
        x->filebuf = rd_calloc(1, HTTPC_FILE_CHUNK, "a file send buffer");
    uint64_t left = x->file_len - x->file_sent;
    unsigned want = left < HTTPC_FILE_CHUNK ? (unsigned)left : HTTPC_FILE_CHUNK;
    x->read_op.done = file_read_done;
    struct io_uring_sqe *sqe = loop_sqe(loop_current(), &x->read_op);
    io_uring_prep_read(sqe, x->body_fd, x->filebuf, want, (uint64_t)x->file_off + x->file_sent);
}

static void head_sent(conn *c, int res, void *ctx)
{
    (void)c;
    httpc_exchange *x = ctx;
    if (x->cancel_err || res < 0) {
        finish(x, x->cancel_err ? x->cancel_err : res);
        return;
    }
    if ((x->from_file && x->file_len > 0) || (!x->from_file && x->body_len > 0)) {
        send_body(x);
        return;
    }
    x->phase = PH_HEAD;
    recv_more(x);
}

void httpc_start(httpc_exchange *x, conn *c)
{
    assert(x->done != NULL && x->on_body != NULL && !conn_busy(c));
    x->c = c;
    x->phase = PH_SEND;
    x->cancel_err = 0;
    x->reusable = 0;
    x->got_response = 0;
    x->headlen = 0;
    x->pend_len = 0;
    x->file_sent = 0;
    x->filebuf = NULL;
    memset(&x->chunked, 0, sizeof(x->chunked));
    conn_send(c, x->head, x->head_len, head_sent, x);
}

void httpc_cancel(httpc_exchange *x, int err)
{
    if (x->phase == PH_DONE || x->cancel_err)
        return;
    x->cancel_err = err;
    conn_cancel(x->c);
}
