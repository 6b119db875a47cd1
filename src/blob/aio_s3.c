/* The s3 backend of the asynchronous blob interface: each request an s3_op on the asking
 * loop's client. See aio.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/blob/aio_impl.h"
#include "src/rt/alloc.h"

#define CHUNK (256 * 1024) /* the client's pieces are gathered into buffers this big */

typedef struct s3_store {
    blob_aio base;
    s3_client **clients; /* by loop index; NULL for a loop the store was not opened with */
    int nclients;
    tls_anchors *anchors; /* owned, or NULL */
} s3_store;

typedef struct s3_req {
    blob_req r;
    s3_op op;
    uint8_t have_head;
    rd_buf *chunk; /* GET: bytes gathered, not yet handed on */
} s3_req;

static s3_req *req_of(s3_op *op)
{
    return (s3_req *)(void *)((char *)op - offsetof(s3_req, op));
}

static int head(s3_req *q)
{
    q->have_head = 1;
    blob_meta m = {.mtime = (int64_t)time(NULL)};
    int64_t size = q->op.object_size >= 0 ? q->op.object_size : q->op.content_length;
    if (q->r.kind == BLOB_OP_PUT) {
        m.size = q->r.body_len;
        snprintf(m.content_type, sizeof(m.content_type), "%s", q->r.content_type);
    } else {
        m.size = size > 0 ? (uint64_t)size : 0;
        snprintf(m.content_type, sizeof(m.content_type), "%s", q->op.content_type_out);
    }
    snprintf(m.etag, sizeof(m.etag), "%s", q->op.etag);
    return blob_req_head(&q->r, &m);
}

static int deliver(s3_req *q)
{
    if (q->chunk == NULL || q->chunk->len == 0)
        return 1;
    rd_buf *b = q->chunk;
    q->chunk = NULL;
    return blob_req_data(&q->r, b);
}

static int on_chunk(s3_op *op, const uint8_t *data, size_t len)
{
    s3_req *q = req_of(op);
    if (q->r.cancelled || (!q->have_head && !head(q)))
        return -ECANCELED;
    while (len > 0) {
        if (q->chunk == NULL)
            q->chunk = buf_new(CHUNK);
        size_t room = q->chunk->cap - q->chunk->len, n = room < len ? room : len;
        memcpy(q->chunk->data + q->chunk->len, data, n);
        q->chunk->len += n;
        data += n;
        len -= n;
        if (q->chunk->len == q->chunk->cap && !deliver(q))
            return -ECANCELED;
    }
    return 0;
}

static void on_done(s3_op *op)
{
    s3_req *q = req_of(op);
    int res = op->res;
    if (res == 0 && !q->r.cancelled) {
        if (!q->have_head && q->r.kind != BLOB_OP_DELETE)
            head(q); /* HEAD, PUT, or a GET of an empty object: no chunk came */
        if (q->r.kind == BLOB_OP_GET)
            deliver(q);
    }
    buf_unref(q->chunk);
    q->chunk = NULL;
    blob_req_end(&q->r, res, op->message[0] ? op->message : "S3 failed.");
}

static int s3_start_req(blob_req *r)
{
    s3_req *q = (s3_req *)(void *)r;
    const s3_store *s = (const s3_store *)(void *)r->store;
    int i = loop_index(r->loop);
    if (i < 0 || i >= s->nclients || s->clients[i] == NULL)
        return -EINVAL;
    q->op.bucket = r->bucket;
    q->op.key = r->key;
    q->op.done = on_done;
    switch (r->kind) {
    case BLOB_OP_GET:
        q->op.method = S3_GET;
        q->op.range_start = r->off;
        q->op.range_len = r->len;
        q->op.on_chunk = on_chunk;
        break;
    case BLOB_OP_HEAD:
        q->op.method = S3_HEAD;
        break;
    case BLOB_OP_PUT:
        q->op.method = S3_PUT;
        q->op.body = r->body;
        q->op.body_len = r->body_len;
        q->op.content_type = r->content_type;
        q->op.cache_control = r->cache_control[0] ? r->cache_control : NULL;
        break;
    case BLOB_OP_DELETE:
        q->op.method = S3_DELETE;
        break;
    }
    return s3_start(s->clients[i], &q->op);
}

static void s3_cancel(blob_req *r)
{
    /* The client has no cancel: the next piece of a GET's body stops it (on_chunk), or its
     * attempt timeout does; on_done then frees it unseen. */
    (void)r;
}

static s3_client *s3_client_of(const blob_aio *b, const rd_loop *loop)
{
    const s3_store *s = (const s3_store *)(const void *)b;
    int i = loop_index(loop);
    return i >= 0 && i < s->nclients ? s->clients[i] : NULL;
}

static void s3_close(blob_aio *b)
{
    s3_store *s = (s3_store *)(void *)b;
    for (int i = 0; i < s->nclients; i++)
        s3_client_destroy(s->clients[i]);
    free(s->clients);
    if (s->anchors != NULL) {
        tls_anchors_free(s->anchors);
        free(s->anchors);
    }
    free(s);
}

static const blob_aio_ops s3_ops = {
    .name = "s3",
    .req_size = sizeof(s3_req),
    .start = s3_start_req,
    .cancel = s3_cancel,
    .client = s3_client_of,
    .close = s3_close,
};

int blob_aio_s3_create(const s3_config *sc, rd_loop *const *loops, int nloops, tls_anchors *anchors,
                       blob_aio **out, char *err, size_t errlen)
{
    s3_store *s = rd_calloc(1, sizeof(*s), "blob store");
    s->anchors = anchors;
    for (int i = 0; i < nloops; i++)
        if (loop_index(loops[i]) + 1 > s->nclients)
            s->nclients = loop_index(loops[i]) + 1;
    s->clients = rd_calloc((size_t)s->nclients, sizeof(*s->clients), "blob store");
    int r = 0;
    for (int i = 0; i < nloops && r == 0; i++)
        r = s3_client_create(&s->clients[loop_index(loops[i])], loops[i], sc, err, errlen);
    if (r == 0)
        r = blob_aio_init(&s->base, &s3_ops, loops[0]);
    if (r < 0) {
        s3_close(&s->base);
        return r;
    }
    *out = &s->base;
    return 0;
}
