/* The blob origin: the edge's GETs of {asset}/hls/{path} in the previews bucket, each one GET
 * of the asynchronous blob store. See origin.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "src/edge/origin.h"
#include "src/rt/alloc.h"

typedef struct blob_origin {
    origin base;
    blob_aio *store;
    char bucket[64];
} blob_origin;

static int blob_get(origin *o, rd_loop *loop, const char *asset, const char *path, blob_sink *sink,
                    origin_get **out)
{
    blob_origin *bo = (blob_origin *)(void *)o;
    char key[S3_MAX_KEY + 1];
    if (snprintf(key, sizeof(key), "%s/hls/%s", asset, path) >= (int)sizeof(key))
        return -ENAMETOOLONG;
    blob_req *r;
    int e = blob_aio_get(bo->store, loop, bo->bucket, key, 0, 0, sink, &r);
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
    *out = &bo->base;
    return 0;
}
