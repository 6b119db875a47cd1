/* The fs origin: objects of the previews bucket as files under DATA_DIR/blobs/BUCKET, read
 * through the loop's io_uring in 256 KiB chunks. See origin.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/edge/origin.h"

#define CHUNK (256 * 1024)

typedef struct fs_origin {
    origin base;
    char root[PATH_MAX]; /* DATA_DIR/blobs/BUCKET */
} fs_origin;

struct origin_get {
    rd_op op;
    rd_loop *loop;
    origin_sink *sink;
    int fd;
    uint8_t cancelled;
    uint64_t size, off;
    rd_buf *chunk;       /* the read in flight */
    char path[PATH_MAX]; /* read by the kernel when the open is submitted */
};

static void get_free(origin_get *g)
{
    if (g->fd >= 0)
        close(g->fd);
    buf_unref(g->chunk);
    free(g);
}

static void finish(origin_get *g, int err)
{
    origin_sink *s = g->sink;
    get_free(g);
    s->done(s, err);
}

static void read_next(origin_get *g)
{
    uint64_t left = g->size - g->off;
    g->chunk = buf_new(left < CHUNK ? (size_t)left : CHUNK);
    struct io_uring_sqe *sqe = loop_sqe(g->loop, &g->op);
    io_uring_prep_read(sqe, g->fd, g->chunk->data, (unsigned)g->chunk->cap, g->off);
}

static void on_read(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    origin_get *g = (origin_get *)(void *)op;
    if (g->cancelled) {
        get_free(g);
        return;
    }
    if (res <= 0) {
        finish(g, res < 0 ? res : -EIO); /* shorter than its size: it changed under us */
        return;
    }
    rd_buf *b = g->chunk;
    b->len += (size_t)res;
    g->off += (uint64_t)res;
    if (b->len < b->cap) {
        /* A short read: ask for the rest of this chunk before handing it on. */
        struct io_uring_sqe *sqe = loop_sqe(g->loop, &g->op);
        io_uring_prep_read(sqe, g->fd, b->data + b->len, (unsigned)(b->cap - b->len), g->off);
        return;
    }
    g->chunk = NULL;
    g->sink->data(g->sink, b);
    if (g->cancelled) {
        get_free(g);
        return;
    }
    if (g->off == g->size) {
        finish(g, 0);
        return;
    }
    read_next(g);
}

static void on_open(rd_op *op, int res, uint32_t flags)
{
    (void)flags;
    origin_get *g = (origin_get *)(void *)op;
    if (res >= 0)
        g->fd = res;
    if (g->cancelled) {
        get_free(g);
        return;
    }
    if (res < 0) {
        finish(g, res == -ENOTDIR || res == -EISDIR ? -ENOENT : res);
        return;
    }
    /* The inode is in memory once opened: fstat does not wait on the disk. */
    struct stat st;
    if (fstat(g->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        finish(g, -ENOENT);
        return;
    }
    g->size = (uint64_t)st.st_size;
    g->sink->head(g->sink, g->size, (int64_t)st.st_mtime);
    if (g->cancelled) {
        get_free(g);
        return;
    }
    if (g->size == 0) {
        finish(g, 0);
        return;
    }
    g->op.done = on_read;
    read_next(g);
}

static int fs_get(origin *o, rd_loop *loop, const char *asset, const char *path, origin_sink *sink,
                  origin_get **out)
{
    fs_origin *fo = (fs_origin *)(void *)o;
    origin_get *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    if (snprintf(g->path, sizeof(g->path), "%s/%s/hls/%s", fo->root, asset, path) >=
        (int)sizeof(g->path)) {
        free(g);
        return -ENAMETOOLONG;
    }
    g->loop = loop;
    g->sink = sink;
    g->fd = -1;
    g->op.done = on_open;
    struct io_uring_sqe *sqe = loop_sqe(loop, &g->op);
    io_uring_prep_openat(sqe, AT_FDCWD, g->path, O_RDONLY | O_CLOEXEC, 0);
    *out = g;
    return 0;
}

static void fs_cancel(origin_get *g)
{
    /* An operation is always in flight between callbacks: its completion frees g. Cancel it
     * too, so an open that hangs (a FIFO, a stuck network filesystem) ends now. */
    g->cancelled = 1;
    struct io_uring_sqe *sqe = loop_sqe(g->loop, NULL);
    io_uring_prep_cancel(sqe, &g->op, 0);
}

static void fs_destroy(origin *o)
{
    free(o);
}

static const origin_ops fs_ops = {
    .name = "fs",
    .get = fs_get,
    .cancel = fs_cancel,
    .destroy = fs_destroy,
};

int origin_fs_create(const char *data_dir, const char *bucket, origin **out)
{
    fs_origin *fo = calloc(1, sizeof(*fo));
    if (fo == NULL)
        return -ENOMEM;
    if (snprintf(fo->root, sizeof(fo->root), "%s/blobs/%s", data_dir, bucket) >=
        (int)sizeof(fo->root)) {
        free(fo);
        return -ENAMETOOLONG;
    }
    fo->base.ops = &fs_ops;
    *out = &fo->base;
    return 0;
}
