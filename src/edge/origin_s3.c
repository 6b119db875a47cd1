/* The s3 origin: objects of the previews bucket fetched with the S3 client's streamed GET, one
 * client per loop. See origin.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/blob/s3.h"
#include "src/edge/origin.h"
#include "src/net/tls.h"

#define CHUNK (256 * 1024) /* the client's pieces are gathered into buffers this big */

typedef struct s3_origin {
    origin base;
    s3_client **clients; /* one per loop, by loop index */
    int nclients;
    char bucket[64];
    tls_anchors anchors;
} s3_origin;

/* The s3 backend's origin_get. */
typedef struct s3_get {
    s3_op op;
    origin_sink *sink;
    uint8_t cancelled, have_head;
    rd_buf *chunk; /* bytes gathered, not yet handed on */
    char key[S3_MAX_KEY + 1];
} s3_get;

static void deliver(s3_get *g)
{
    if (g->chunk != NULL && g->chunk->len > 0) {
        rd_buf *b = g->chunk;
        g->chunk = NULL;
        g->sink->data(g->sink, b);
    }
}

static void head(s3_get *g)
{
    g->have_head = 1;
    /* S3's Last-Modified is not among what the client returns: the fetch time stands for it
     * (the cached copy keeps it, so hits and misses agree). */
    uint64_t size = g->op.object_size > 0 ? (uint64_t)g->op.object_size : 0;
    g->sink->head(g->sink, size, (int64_t)time(NULL));
}

static int on_chunk(s3_op *op, const uint8_t *data, size_t len)
{
    s3_get *g = (s3_get *)(void *)op;
    if (g->cancelled)
        return -ECANCELED;
    if (!g->have_head) {
        head(g);
        if (g->cancelled)
            return -ECANCELED;
    }
    while (len > 0) {
        if (g->chunk == NULL)
            g->chunk = buf_new(CHUNK);
        size_t n = g->chunk->cap - g->chunk->len < len ? g->chunk->cap - g->chunk->len : len;
        memcpy(g->chunk->data + g->chunk->len, data, n);
        g->chunk->len += n;
        data += n;
        len -= n;
        if (g->chunk->len == g->chunk->cap) {
            deliver(g);
            if (g->cancelled)
                return -ECANCELED;
        }
    }
    return 0;
}

static void on_done(s3_op *op)
{
    s3_get *g = (s3_get *)(void *)op;
    origin_sink *s = g->sink;
    int res = op->res;
    if (!g->cancelled && res == 0) {
        if (!g->have_head)
            head(g); /* an empty object: no chunk came */
        if (!g->cancelled)
            deliver(g);
    }
    int cancelled = g->cancelled;
    buf_unref(g->chunk);
    free(g);
    if (!cancelled)
        s->done(s, res == -ERANGE ? -EIO : res);
}

static int s3o_get(origin *o, rd_loop *loop, const char *asset, const char *path, origin_sink *sink,
                   origin_get **out)
{
    s3_origin *so = (s3_origin *)(void *)o;
    int i = loop_index(loop);
    if (i < 0 || i >= so->nclients)
        return -EINVAL;
    s3_get *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    if (snprintf(g->key, sizeof(g->key), "%s/hls/%s", asset, path) >= (int)sizeof(g->key)) {
        free(g);
        return -ENAMETOOLONG;
    }
    g->sink = sink;
    g->op.method = S3_GET;
    g->op.bucket = so->bucket;
    g->op.key = g->key;
    g->op.on_chunk = on_chunk;
    g->op.done = on_done;
    int r = s3_start(so->clients[i], &g->op);
    if (r < 0) {
        free(g);
        return r;
    }
    *out = (origin_get *)(void *)g;
    return 0;
}

static void s3o_cancel(origin_get *og)
{
    /* The client has no cancel: the next piece of body stops the GET, or its attempt
     * timeout (FETCH_TIMEOUT_MS) does. done then frees it without calling the sink. */
    ((s3_get *)(void *)og)->cancelled = 1;
}

static void s3o_destroy(origin *o)
{
    s3_origin *so = (s3_origin *)(void *)o;
    for (int i = 0; i < so->nclients; i++)
        s3_client_destroy(so->clients[i]);
    free(so->clients);
    tls_anchors_free(&so->anchors);
    free(so);
}

static const origin_ops s3_ops = {
    .name = "s3",
    .get = s3o_get,
    .cancel = s3o_cancel,
    .destroy = s3o_destroy,
};

int origin_s3_create(const origin_s3_config *cfg, rd_loop *const *loops, int nloops, origin **out,
                     char *err, size_t errlen)
{
    s3_origin *so = calloc(1, sizeof(*so));
    if (so == NULL || (so->clients = calloc((size_t)nloops, sizeof(*so->clients))) == NULL) {
        free(so);
        return -ENOMEM;
    }
    so->base.ops = &s3_ops;
    snprintf(so->bucket, sizeof(so->bucket), "%s", cfg->bucket);
    int tls = strncmp(cfg->endpoint, "https://", 8) == 0;
    int r = tls ? tls_anchors_load(&so->anchors, TLS_SYSTEM_CA_FILE, err, errlen) : 0;
    s3_config sc = {.endpoint = cfg->endpoint,
                    .region = cfg->region,
                    .access_key_id = cfg->access_key_id,
                    .secret_access_key = cfg->secret_access_key,
                    .anchors = tls ? &so->anchors : NULL,
                    .timeout_ms = cfg->timeout_ms};
    for (int i = 0; i < nloops && r == 0; i++) {
        r = s3_client_create(&so->clients[i], loops[i], &sc, err, errlen);
        if (r == 0)
            so->nclients = i + 1;
    }
    if (r < 0) {
        s3o_destroy(&so->base);
        return r;
    }
    *out = &so->base;
    return 0;
}
