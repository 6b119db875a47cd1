/* Where the edge gets what it does not have: one object at a time, answering through a sink
 * on the asking loop. Not a storage interface: storage is src/blob/aio.h, and the edge's
 * origins are its users or makers of objects.
 *
 *   blob   (origin_blob.c) the previews bucket through the asynchronous blob store (fs on the
 *          loop's io_uring, or S3 with a client per loop): GET {asset}/hls/{path}.
 *   thumb  (origin_thumb.h) on-demand thumbnails, made from the ladder read through another
 *          origin.
 *
 * A GET calls the sink's head once (size and modification time), then data with each chunk
 * in order, then done once; or done alone when it fails before the head. After done the GET
 * is over and its memory is the origin's to free. The sink is blob_sink (src/blob/aio.h), so
 * the blob origin hands it to the store unchanged. */
#ifndef REELD_EDGE_ORIGIN_H
#define REELD_EDGE_ORIGIN_H

#include <stdint.h>

#include "src/blob/aio.h"
#include "src/rt/buf.h"
#include "src/rt/loop.h"

typedef struct origin_get origin_get;
typedef struct origin origin;

typedef struct origin_ops {
    const char *name;
    int (*get)(origin *o, rd_loop *loop, const char *asset, const char *path, int inotify_fd,
               blob_sink *sink, origin_get **out);
    void (*cancel)(origin_get *g);
    void (*destroy)(origin *o);
} origin_ops;

struct origin {
    const origin_ops *ops;
    int watches; /* a GET given an inotify instance adds a watch: the head's `watch` may be set */
};

/* The previews of `store` (borrowed: it must outlive the origin) in `bucket` (copied). 0 or
 * -ENOMEM / -ENAMETOOLONG. */
int origin_blob_create(blob_aio *store, const char *bucket, origin **out);

/* Starts a GET of {asset}/{path} (both already validated names) on `loop`, the calling thread's.
 * With an inotify instance (`inotify_fd` > 0; -1: none) and where the origin can (o->watches),
 * the object's file is watched in it from before its first byte was read: the head's `watch`
 * (0: none; see blob_aio_get_watched for what it sees). The sink must stay valid until done is
 * called or the GET is cancelled. 0 with *out set, or -errno (then no callback follows). */
static inline int origin_get_start(origin *o, rd_loop *loop, const char *asset, const char *path,
                                   int inotify_fd, blob_sink *sink, origin_get **out)
{
    return o->ops->get(o, loop, asset, path, inotify_fd, sink, out);
}

/* Stops a GET before done: no callback follows; the origin frees it when its I/O ends. */
static inline void origin_get_cancel(origin *o, origin_get *g)
{
    o->ops->cancel(g);
}

/* Frees an origin no loop uses any more. NULL is a no-op. */
static inline void origin_destroy(origin *o)
{
    if (o != NULL)
        o->ops->destroy(o);
}

#endif
