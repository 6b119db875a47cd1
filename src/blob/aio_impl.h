/* What the two backends of src/blob/aio.h share with its front (aio.c): the store's and the
 * request's common parts and the backend's table. Private to src/blob/aio*.c. */
#ifndef REELD_BLOB_AIO_IMPL_H
#define REELD_BLOB_AIO_IMPL_H

#include "src/blob/aio.h"
#include "src/rt/actor.h"

typedef enum blob_kind_op {
    BLOB_OP_GET,
    BLOB_OP_HEAD,
    BLOB_OP_PUT,
    BLOB_OP_DELETE,
    BLOB_OP_PUT_FD,
    BLOB_OP_COPY,
    BLOB_OP_DELETE_KEPT, /* delete unless retained */
    BLOB_OP_UPLOAD_START,
    BLOB_OP_UPLOAD_COMPLETE,
    BLOB_OP_UPLOAD_ABORT,
    BLOB_OP_LIST, /* key: the prefix ("" for every key) */
} blob_kind_op;

typedef struct blob_aio_ops {
    const char *name;
    size_t req_size; /* bytes of the backend's request; struct blob_req comes first */
    int wants_md5;   /* a PUT's MD5 is taken on the asking thread (blob_req.md5) */
    int uploads;     /* takes the BLOB_OP_UPLOAD_* requests */
    /* On r->loop's thread: 0 (then exactly one blob_req_end follows, unless cancelled), or
     * -errno with nothing started and nothing to free but the request. */
    int (*start)(blob_req *r);
    void (*cancel)(blob_req *r);
    s3_client *(*client)(const blob_aio *s, const rd_loop *loop);
    void (*close)(blob_aio *s);
} blob_aio_ops;

struct blob_aio {
    const blob_aio_ops *ops;
    rd_loop *home;
    rd_actor *actor;                         /* on home: starts the requests of other threads */
    uint64_t multipart_threshold, part_size; /* PUT_FD on s3 */
    uint64_t copy_part_max;                  /* COPY on s3 */
    int watches; /* a GET adds the watch blob_req.watch_fd asks for (blob_meta.watch): fs on a
                    file system whose every change the local kernel makes */
};

struct blob_req {
    blob_aio *store;
    rd_loop *loop;
    blob_sink *sink;
    blob_kind_op kind;
    uint8_t cancelled;
    uint64_t off, len;   /* GET */
    int watch_fd;        /* GET: the inotify instance to watch the object's file in; 0: none */
    const uint8_t *body; /* PUT, borrowed */
    size_t body_len;
    uint8_t md5[16]; /* PUT, when the backend wants it */
    char bucket[64];
    char key[S3_MAX_KEY + 1];
    char content_type[128];
    char cache_control[128];
    int fd;               /* PUT_FD, borrowed */
    int64_t src_size;     /* COPY: -1 when unknown */
    int lock_days;        /* COPY */
    char lock_mode[16];   /* COPY: "" for COMPLIANCE */
    const s3_part *parts; /* UPLOAD_COMPLETE, borrowed */
    size_t nparts;
    char upload_id[256]; /* UPLOAD_COMPLETE, UPLOAD_ABORT */
    char src_bucket[64]; /* COPY */
    char src_key[S3_MAX_KEY + 1];
};

/* Makes the store's actor on `home`; the backend's part of `s` is set. 0 or -errno. */
int blob_aio_init(blob_aio *s, const blob_aio_ops *ops, rd_loop *home);

/* The end of `r`: the sink hears done (unless cancelled), then the request is freed. The
 * backend has released its own resources before. */
void blob_req_end(blob_req *r, int err, const char *why);

/* The sink hears head (unless cancelled or NULL). 1 when the request goes on, 0 when it was
 * cancelled meanwhile (the backend then frees it without another callback). */
int blob_req_head(blob_req *r, const blob_meta *m);

/* The sink gets `chunk` (the reference moves); 1 / 0 as blob_req_head. */
int blob_req_data(blob_req *r, rd_buf *chunk);

/* Frees a request that ends unseen (cancelled). */
void blob_req_free(blob_req *r);

/* The s3 backend taking ownership of `anchors` (heap, may be NULL). */
int blob_aio_s3_create(const s3_config *sc, rd_loop *const *loops, int nloops, tls_anchors *anchors,
                       blob_aio **out, char *err, size_t errlen);

#endif
