/* Where the edge fetches what it does not have: an interface with one backend per kind of
 * storage, asked for one object at a time and answering through callbacks on the asking loop.
 *
 *   fs  (embedded default) the previews bucket as files: DATA_DIR/blobs/{S3_BUCKET_PREVIEWS,
 *       default "previews"}/{asset}/hls/{path}, opened and read through the loop's io_uring
 *       (never a blocking read).
 *   s3  (S3_ENDPOINT set) the S3 client's streamed GET of S3_BUCKET_PREVIEWS/{asset}/hls/
 *       {path} (src/blob/s3.h), one client per loop, retries and resumption included.
 *
 * A GET calls the sink's head once (size and modification time), then data with each chunk
 * in order, then done once; or done alone when it fails before the head. After done the GET
 * is over and its memory is the backend's to free. */
#ifndef REELD_EDGE_ORIGIN_H
#define REELD_EDGE_ORIGIN_H

#include <stdint.h>

#include "src/rt/buf.h"
#include "src/rt/loop.h"

typedef struct origin_sink origin_sink;
struct origin_sink {
    /* The object exists: `size` bytes, last modified at `mtime` (unix seconds). */
    void (*head)(origin_sink *s, uint64_t size, int64_t mtime);
    /* The next bytes of the object; the reference `chunk` moves to the sink. */
    void (*data)(origin_sink *s, rd_buf *chunk);
    /* The end: 0 when every byte was delivered, -ENOENT when there is no such object, another
     * -errno when the origin failed (nothing after this). */
    void (*done)(origin_sink *s, int err);
};

typedef struct origin_get origin_get;
typedef struct origin origin;

typedef struct origin_ops {
    const char *name;
    int (*get)(origin *o, rd_loop *loop, const char *asset, const char *path, origin_sink *sink,
               origin_get **out);
    void (*cancel)(origin_get *g);
    void (*destroy)(origin *o);
} origin_ops;

struct origin {
    const origin_ops *ops;
};

/* The fs origin over DATA_DIR/blobs/BUCKET (both copied). 0, -ENOMEM or -ENAMETOOLONG. */
int origin_fs_create(const char *data_dir, const char *bucket, origin **out);

typedef struct origin_s3_config {
    const char *endpoint, *region, *access_key_id, *secret_access_key;
    const char *bucket;  /* S3_BUCKET_PREVIEWS */
    uint32_t timeout_ms; /* per attempt: FETCH_TIMEOUT_MS */
} origin_s3_config;

/* The s3 origin: one S3 client per loop of `loops` (created here: DNS resolves now, so call it
 * before the loops serve; https endpoints trust the system CA bundle). 0, or -errno with one
 * sentence in `err`. */
int origin_s3_create(const origin_s3_config *cfg, rd_loop *const *loops, int nloops, origin **out,
                     char *err, size_t errlen);

/* Starts a GET of {asset}/{path} (both already validated names) on `loop`, the calling thread's.
 * The sink must stay valid until done is called or the GET is cancelled. 0 with *out set, or
 * -errno (then no callback follows). */
static inline int origin_get_start(origin *o, rd_loop *loop, const char *asset, const char *path,
                                   origin_sink *sink, origin_get **out)
{
    return o->ops->get(o, loop, asset, path, sink, out);
}

/* Stops a GET before done: no callback follows; the backend frees it when its I/O ends. */
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
