/* The s3 backend of the asynchronous blob interface: each request one s3_op on the asking
 * loop's client, run again for each step of a request that takes more than one (a file in
 * parts, a copy, a delete that first asks for the retention). See aio.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/s3_wire.h"
#include "src/blob/aio_impl.h"
#include "src/rt/alloc.h"

#define CHUNK (256 * 1024) /* the client's pieces are gathered into buffers this big */

typedef struct s3_store {
    blob_aio base;
    s3_client **clients; /* by loop index; NULL for a loop the store was not opened with */
    int nclients;
    tls_anchors *anchors; /* owned, or NULL */
    int borrowed;         /* the clients are the caller's */
} s3_store;

/* Where a request of more than one S3 operation is: each step is one operation of the
 * request's s3_op, started again from the last one's `done`. */
typedef enum qstep {
    Q_ONE,      /* GET, HEAD, PUT, DELETE and the uploads: their one operation */
    Q_SRC_HEAD, /* COPY: the source's size, when the caller did not know it; its type, for parts */
    Q_COPY,     /* COPY: CopyObject */
    Q_MPU_CREATE, /* PUT_FD or COPY in parts: CreateMultipartUpload */
    Q_PART,       /* UploadPart (PUT_FD) or UploadPartCopy (COPY), part q->i */
    Q_COMPLETE,   /* CompleteMultipartUpload */
    Q_RETENTION,  /* COPY in parts with retention: set again on the object */
    Q_DST_HEAD,   /* COPY: what the copy is */
    Q_ABORT,      /* a part or the completion failed: the upload aborted, then q->err */
    Q_KEPT_HEAD,  /* DELETE_KEPT: the object's retention and version */
    Q_KEPT_DELETE,
    Q_LIST, /* LIST: a page of ListObjectsV2, then the next from its continuation token */
} qstep;

#define LIST_DOC 16384 /* a page's document: BLOB_LIST_PAGE keys fit what the client keeps */

typedef struct s3_req {
    blob_req r;
    s3_op op;
    s3_client *cl;
    uint8_t have_head;
    rd_buf *chunk; /* GET: bytes gathered, not yet handed on */
    qstep step;
    uint64_t size, part; /* in parts: the whole, and each part but the last */
    size_t i, nparts;
    s3_part *parts; /* the parts done so far */
    int err;        /* Q_ABORT: what the request ends with */
    char upload_id[sizeof(((s3_op *)0)->upload_id_out)];
    char version_id[sizeof(((s3_op *)0)->version_id_out)];
    char doc[256];    /* Q_RETENTION: the <Retention> document */
    char *page;       /* Q_LIST: the page's document (LIST_DOC bytes) */
    char token[1024]; /* Q_LIST: the next page's continuation token */
    char why[sizeof(((s3_op *)0)->message)];
} s3_req;

static s3_req *req_of(s3_op *op)
{
    return (s3_req *)(void *)((char *)op - offsetof(s3_req, op));
}

/* What a request that ends well tells its sink's head, from its last operation. */
static void meta_of(s3_req *q, blob_meta *m)
{
    *m = (blob_meta){.mtime = (int64_t)time(NULL)};
    snprintf(m->etag, sizeof(m->etag), "%s", q->op.etag);
    switch (q->r.kind) {
    case BLOB_OP_PUT:
    case BLOB_OP_PUT_FD:
        m->size = q->r.body_len;
        snprintf(m->content_type, sizeof(m->content_type), "%s", q->r.content_type);
        break;
    case BLOB_OP_UPLOAD_START:
        snprintf(m->upload_id, sizeof(m->upload_id), "%s", q->op.upload_id_out);
        break;
    case BLOB_OP_UPLOAD_COMPLETE:
        break;
    default: { /* GET, HEAD, and COPY's HEAD of the copy */
        int64_t size = q->op.object_size >= 0 ? q->op.object_size : q->op.content_length;
        m->size = size > 0 ? (uint64_t)size : 0;
        snprintf(m->content_type, sizeof(m->content_type), "%s", q->op.content_type_out);
    }
    }
}

static int head(s3_req *q)
{
    q->have_head = 1;
    blob_meta m;
    meta_of(q, &m);
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

static void finish(s3_req *q, int res, const char *why)
{
    buf_unref(q->chunk);
    q->chunk = NULL;
    free(q->parts);
    q->parts = NULL;
    free(q->page);
    q->page = NULL;
    blob_req_end(&q->r, res, res < 0 && why[0] == '\0' ? "S3 failed." : why);
}

static void on_done(s3_op *op);

/* The request's next operation: `op` with the request's names and callback; `done` follows
 * (or the request ends here when the client refuses to start it). */
static void launch(s3_req *q, qstep step, s3_op op)
{
    q->step = step;
    q->op = op;
    if (q->op.bucket == NULL) {
        q->op.bucket = q->r.bucket;
        q->op.key = q->r.key;
    }
    q->op.done = on_done;
    if (s3_start(q->cl, &q->op) < 0)
        finish(q, q->op.res < 0 ? q->op.res : -EINVAL, q->op.message);
}

/* A part or the completion failed: the upload is aborted (so no part is left behind, billed),
 * then the request ends with that failure. */
static void abort_upload(s3_req *q, int err, const char *why)
{
    q->err = err;
    snprintf(q->why, sizeof(q->why), "%s", why);
    launch(q, Q_ABORT, (s3_op){.method = S3_MPU_ABORT, .upload_id = q->upload_id});
}

static void next_part(s3_req *q)
{
    uint64_t off = q->i * q->part, len = q->size - off < q->part ? q->size - off : q->part;
    s3_op op = {.upload_id = q->upload_id, .part_number = (int)q->i + 1};
    if (q->r.kind == BLOB_OP_PUT_FD) {
        op.method = S3_MPU_PART;
        op.from_file = 1;
        op.body_fd = q->r.fd;
        op.file_off = (int64_t)off;
        op.file_len = len;
    } else {
        op.method = S3_MPU_PART_COPY;
        op.copy_bucket = q->r.src_bucket;
        op.copy_key = q->r.src_key;
        op.range_start = off;
        op.range_len = len;
    }
    launch(q, Q_PART, op);
}

/* PUT_FD or COPY of q->size bytes in parts of at most q->part (at most 10,000 parts, S3's
 * limit: the part grows when needed). */
static void in_parts(s3_req *q, uint64_t part)
{
    if (part > q->size)
        part = q->size ? q->size : 1; /* one part (and no overflow below) */
    if (q->size > 0 && (q->size + part - 1) / part > 10000)
        part = (q->size + 9999) / 10000;
    q->part = part;
    q->nparts = q->size ? (size_t)((q->size + part - 1) / part) : 1;
    q->parts = rd_calloc(q->nparts, sizeof(*q->parts), "the parts of an upload");
    s3_op op = {.method = S3_MPU_CREATE};
    if (q->r.kind == BLOB_OP_PUT_FD) {
        op.content_type = q->r.content_type;
    } else {
        op.content_type = q->r.content_type[0] ? q->r.content_type : NULL; /* the source's */
        op.lock_days = q->r.lock_days;
        op.lock_mode = q->r.lock_mode[0] ? q->r.lock_mode : NULL;
    }
    launch(q, Q_MPU_CREATE, op);
}

/* COPY, once the source's size is known. */
static void copy_sized(s3_req *q)
{
    const blob_aio *s = q->r.store;
    if (q->size > s->copy_part_max) {
        in_parts(q, s->copy_part_max);
        return;
    }
    launch(q, Q_COPY,
           (s3_op){.method = S3_COPY,
                   .copy_bucket = q->r.src_bucket,
                   .copy_key = q->r.src_key,
                   .lock_days = q->r.lock_days,
                   .lock_mode = q->r.lock_mode[0] ? q->r.lock_mode : NULL});
}

static void retention(s3_req *q)
{
    /* The upload carried the retention (S3 applies it at Complete); it is set again on the
     * object, since not every S3-compatible store takes it from CreateMultipartUpload. */
    char until[32];
    /* By the server's clock, as the upload's date was: a date set again by ours alone would be
     * earlier when the server runs ahead, and S3 refuses to shorten COMPLIANCE retention. */
    s3wire_iso8601(s3_client_now(q->cl) + (int64_t)q->r.lock_days * 86400, until, sizeof(until));
    int n = snprintf(q->doc, sizeof(q->doc),
                     "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>%s"
                     "</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>",
                     q->r.lock_mode[0] ? q->r.lock_mode : "COMPLIANCE", until);
    launch(q, Q_RETENTION,
           (s3_op){.method = S3_PUT_RETENTION, .body = q->doc, .body_len = (size_t)n});
}

/* The request ends well: its head (unless nothing is to be told), then done. */
/* The LIST's operation for the page from `token` ("": the first). */
static s3_op list_op(s3_req *q)
{
    return (s3_op){.method = S3_LIST_OBJECTS,
                   .bucket = q->r.bucket,
                   .prefix = q->r.key[0] ? q->r.key : NULL,
                   .continuation = q->token[0] ? q->token : NULL,
                   .max_keys = BLOB_LIST_PAGE,
                   .resp = q->page,
                   .resp_cap = LIST_DOC,
                   .done = on_done};
}

/* A page came: its keys to the sink, then the next page or the end. */
static void list_keys(s3_req *q)
{
    const char *doc = q->page, *p = doc, *end = doc + q->op.resp_len;
    rd_buf *b = buf_new(q->op.resp_len + 1); /* a decoded key is never longer than its XML */
    for (;;) {
        const char *k = strstr(p, "<Contents>");
        const char *ke = k != NULL && k < end ? strstr(k, "</Contents>") : NULL;
        if (ke == NULL)
            break;
        int n =
            s3wire_xml_text(k, (size_t)(ke - k), "Key", b->data + b->len,
                            b->cap - b->len < S3_MAX_KEY + 1 ? b->cap - b->len : S3_MAX_KEY + 1);
        if (n > 0)
            b->len += (size_t)n + 1; /* and its NUL */
        p = ke + 11;
    }
    char trunc[8] = "";
    s3wire_xml_text(doc, q->op.resp_len, "IsTruncated", trunc, sizeof(trunc));
    int more =
        strcmp(trunc, "true") == 0 && s3wire_xml_text(doc, q->op.resp_len, "NextContinuationToken",
                                                      q->token, sizeof(q->token)) > 0;
    if (b->len == 0)
        buf_unref(b);
    else if (!blob_req_data(&q->r, b)) { /* the reference moved to the sink */
        finish(q, -ECANCELED, "cancelled");
        return;
    }
    if (more)
        launch(q, Q_LIST, list_op(q));
    else
        finish(q, 0, "");
}

static void succeed(s3_req *q)
{
    if (!q->r.cancelled && !q->have_head && q->r.kind != BLOB_OP_DELETE &&
        q->r.kind != BLOB_OP_DELETE_KEPT && q->r.kind != BLOB_OP_UPLOAD_ABORT)
        head(q); /* HEAD, PUT, or a GET of an empty object: no chunk came */
    if (q->r.kind == BLOB_OP_GET && !q->r.cancelled)
        deliver(q);
    finish(q, 0, "");
}

static void on_done(s3_op *op)
{
    s3_req *q = req_of(op);
    int res = op->res;
    switch (q->step) {
    case Q_ONE:
        if (res == -ENOENT && q->r.kind == BLOB_OP_UPLOAD_ABORT)
            res = 0; /* gone already */
        if (res < 0)
            finish(q, res, op->message);
        else
            succeed(q);
        return;
    case Q_SRC_HEAD:
        if (res < 0) {
            finish(q, res, op->message);
            return;
        }
        if (q->r.src_size >= 0) /* the caller's size: the one the parts are cut to */
            q->size = (uint64_t)q->r.src_size;
        else
            q->size = op->object_size >= 0     ? (uint64_t)op->object_size
                      : op->content_length > 0 ? (uint64_t)op->content_length
                                               : 0;
        snprintf(q->r.content_type, sizeof(q->r.content_type), "%s", op->content_type_out);
        copy_sized(q);
        return;
    case Q_MPU_CREATE:
        if (res < 0) {
            finish(q, res, op->message);
            return;
        }
        snprintf(q->upload_id, sizeof(q->upload_id), "%s", op->upload_id_out);
        q->i = 0;
        next_part(q);
        return;
    case Q_PART:
        if (res < 0) {
            abort_upload(q, res, op->message);
            return;
        }
        q->parts[q->i].number = (int)q->i + 1;
        snprintf(q->parts[q->i].etag, sizeof(q->parts[q->i].etag), "%s", op->etag);
        if (++q->i < q->nparts) {
            next_part(q);
            return;
        }
        launch(q, Q_COMPLETE,
               (s3_op){.method = S3_MPU_COMPLETE,
                       .upload_id = q->upload_id,
                       .parts = q->parts,
                       .nparts = q->nparts});
        return;
    case Q_COMPLETE:
        if (res < 0) {
            abort_upload(q, res, op->message);
            return;
        }
        if (q->r.kind == BLOB_OP_PUT_FD)
            succeed(q);
        else if (q->r.lock_days > 0)
            retention(q);
        else
            launch(q, Q_DST_HEAD, (s3_op){.method = S3_HEAD});
        return;
    case Q_COPY:
    case Q_RETENTION:
        /* After Complete the object is made: a failed retention has nothing left to abort. */
        if (res < 0)
            finish(q, res, op->message);
        else
            launch(q, Q_DST_HEAD, (s3_op){.method = S3_HEAD});
        return;
    case Q_DST_HEAD:
        if (res < 0)
            finish(q, res, op->message);
        else
            succeed(q);
        return;
    case Q_ABORT:
        finish(q, q->err, q->why);
        return;
    case Q_KEPT_HEAD: {
        if (res < 0) {
            finish(q, res, op->message);
            return;
        }
        int64_t t = 0;
        if (op->lock_until_out[0] &&
            s3wire_parse_iso8601(op->lock_until_out, strlen(op->lock_until_out), &t) < 0)
            t = 0; /* a date S3 would not write: as if none (the delete then says why) */
        if (t > (int64_t)time(NULL)) {
            blob_meta m = {.retained_until = t};
            blob_req_head(&q->r, &m);
            finish(q, 0, "");
            return;
        }
        snprintf(q->version_id, sizeof(q->version_id), "%s", op->version_id_out);
        launch(q, Q_KEPT_DELETE,
               (s3_op){.method = S3_DELETE, .version_id = q->version_id[0] ? q->version_id : NULL});
        return;
    }
    case Q_KEPT_DELETE:
        finish(q, res, op->message);
        return;
    case Q_LIST:
        if (res < 0)
            finish(q, res, op->message);
        else
            list_keys(q);
        return;
    }
}

static int s3_start_req(blob_req *r)
{
    s3_req *q = (s3_req *)(void *)r;
    const s3_store *s = (const s3_store *)(void *)r->store;
    int i = loop_index(r->loop);
    if (i < 0 || i >= s->nclients || s->clients[i] == NULL)
        return -EINVAL;
    q->cl = s->clients[i];
    s3_op op = {0};
    qstep step = Q_ONE;
    switch (r->kind) {
    case BLOB_OP_GET:
        op.method = S3_GET;
        op.range_start = r->off;
        op.range_len = r->len;
        op.on_chunk = on_chunk;
        break;
    case BLOB_OP_HEAD:
        op.method = S3_HEAD;
        break;
    case BLOB_OP_PUT:
        op.method = S3_PUT;
        op.body = r->body;
        op.body_len = r->body_len;
        op.content_type = r->content_type;
        op.cache_control = r->cache_control[0] ? r->cache_control : NULL;
        break;
    case BLOB_OP_DELETE:
        op.method = S3_DELETE;
        break;
    case BLOB_OP_PUT_FD:
        q->size = r->body_len;
        if (r->body_len > r->store->multipart_threshold) {
            in_parts(q, r->store->part_size);
            return 0;
        }
        op.method = S3_PUT;
        op.from_file = 1;
        op.body_fd = r->fd;
        op.file_len = r->body_len;
        op.content_type = r->content_type;
        break;
    case BLOB_OP_COPY:
        /* The source's size, when not given; its type, when the copy goes in parts (a
         * CopyObject keeps the type itself; CreateMultipartUpload must be told it). */
        if (r->src_size < 0 || (uint64_t)r->src_size > r->store->copy_part_max) {
            launch(q, Q_SRC_HEAD,
                   (s3_op){.method = S3_HEAD, .bucket = r->src_bucket, .key = r->src_key});
            return 0;
        }
        q->size = (uint64_t)r->src_size;
        copy_sized(q);
        return 0;
    case BLOB_OP_DELETE_KEPT:
        step = Q_KEPT_HEAD;
        op.method = S3_HEAD;
        break;
    case BLOB_OP_UPLOAD_START:
        op.method = S3_MPU_CREATE;
        op.content_type = r->content_type;
        break;
    case BLOB_OP_UPLOAD_COMPLETE:
        op.method = S3_MPU_COMPLETE;
        op.upload_id = r->upload_id;
        op.parts = r->parts;
        op.nparts = r->nparts;
        break;
    case BLOB_OP_UPLOAD_ABORT:
        op.method = S3_MPU_ABORT;
        op.upload_id = r->upload_id;
        break;
    case BLOB_OP_LIST:
        q->page = rd_malloc(LIST_DOC, "a page of keys");
        q->token[0] = '\0';
        q->step = Q_LIST;
        q->op = list_op(q);
        int e = s3_start(q->cl, &q->op);
        if (e < 0) {
            free(q->page);
            q->page = NULL;
        }
        return e;
    }
    q->step = step;
    q->op = op;
    q->op.bucket = r->bucket;
    q->op.key = r->key;
    q->op.done = on_done;
    return s3_start(q->cl, &q->op);
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
    for (int i = 0; i < s->nclients && !s->borrowed; i++)
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
    .uploads = 1,
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

int blob_aio_open_s3_client(s3_client *client, rd_loop *loop, blob_aio **out)
{
    s3_store *s = rd_calloc(1, sizeof(*s), "blob store");
    s->borrowed = 1;
    s->nclients = loop_index(loop) + 1;
    s->clients = rd_calloc((size_t)s->nclients, sizeof(*s->clients), "blob store");
    s->clients[loop_index(loop)] = client;
    int r = blob_aio_init(&s->base, &s3_ops, loop);
    if (r < 0) {
        s3_close(&s->base);
        return r;
    }
    *out = &s->base;
    return 0;
}
