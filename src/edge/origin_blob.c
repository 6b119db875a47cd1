/* The blob origin: the edge's GETs of {asset}/hls/{path} in the previews bucket, each one GET
 * of the asynchronous blob store. See origin.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/edge/origin.h"
#include "src/rt/alloc.h"

typedef struct blob_origin {
    origin base;
    blob_aio *store;
    char bucket[64];
} blob_origin;

/* {asset}/hls/{path} into key (S3_MAX_KEY + 1 bytes), by hand: a playlist's read is one a
 * turn on a busy edge, and the format machinery was a visible share of it. */
static int key_of(const char *asset, const char *path, char *key)
{
    size_t al = strlen(asset), pl = strlen(path);
    if (al + 5 + pl > S3_MAX_KEY)
        return -ENAMETOOLONG;
    memcpy(key, asset, al);
    memcpy(key + al, "/hls/", 5);
    memcpy(key + al + 5, path, pl + 1);
    return 0;
}

static int blob_get_watched(origin *o, rd_loop *loop, const char *asset, const char *path,
                            int inotify_fd, blob_sink *sink, origin_get **out)
{
    blob_origin *bo = (blob_origin *)(void *)o;
    char key[S3_MAX_KEY + 1];
    int e = key_of(asset, path, key);
    if (e < 0)
        return e;
    blob_req *r;
    e = blob_aio_get_watched(bo->store, loop, bo->bucket, key, inotify_fd, sink, &r);
    if (e == 0)
        *out = (origin_get *)(void *)r;
    return e == -EINVAL ? -ENOENT : e;
}

static int blob_get(origin *o, rd_loop *loop, const char *asset, const char *path, blob_sink *sink,
                    origin_get **out)
{
    return blob_get_watched(o, loop, asset, path, 0, sink, out);
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
    .get_watched = blob_get_watched,
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
