/* The blob origin: the edge's GETs of {asset}/hls/{path} in the previews bucket, each one GET
 * of the asynchronous blob store. See origin.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/wbuf.h"
#include "src/edge/origin.h"
#include "src/rt/alloc.h"

typedef struct blob_origin {
    origin base;
    blob_aio *store;
    char bucket[64];
} blob_origin;

static int blob_get(origin *o, rd_loop *loop, const char *asset, const char *path, int inotify_fd,
                    blob_sink *sink, origin_get **out)
{
    blob_origin *bo = (blob_origin *)(void *)o;
    /* The key without snprintf: on a busy edge without watches a playlist is read each turn,
     * and the format machinery was a visible share of that read. */
    char key[S3_MAX_KEY + 1];
    rd_wbuf w = wbuf_init(key, sizeof(key));
    wbuf_str(&w, asset);
    wbuf_str(&w, "/hls/");
    wbuf_str(&w, path);
    if (wbuf_end(&w) < 0)
        return -ENAMETOOLONG;
    blob_req *r;
    int e = blob_aio_get_watched(bo->store, loop, bo->bucket, key, inotify_fd, sink, &r);
    if (e == 0)
        *out = (origin_get *)(void *)r;
    return e == -EINVAL ? -ENOENT : e;
}

static void blob_cancel(origin_get *g)
{
    blob_aio_cancel((blob_req *)(void *)g);
}

static void blob_destroy(origin *o)
{
    free(o);
}

static const origin_ops blob_ops = {
    .name = "blob",
    .get = blob_get,
    .cancel = blob_cancel,
    .destroy = blob_destroy,
};

int origin_blob_create(blob_aio *store, const char *bucket, origin **out)
{
    blob_origin *bo = rd_calloc(1, sizeof(*bo), "the edge's origin");
    if (snprintf(bo->bucket, sizeof(bo->bucket), "%s", bucket) >= (int)sizeof(bo->bucket)) {
        free(bo);
        return -ENAMETOOLONG;
    }
    bo->store = store;
    bo->base.ops = &blob_ops;
    bo->base.watches = blob_aio_watches(store);
    *out = &bo->base;
    return 0;
}
