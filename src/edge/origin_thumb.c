/* The thumbnail origin. Contract in origin_thumb.h. */
#include "src/edge/origin_thumb.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/rt/msg.h"
#include "proto/thumb.h"
#include "src/media/thumb.h"
#include "src/rt/actor.h"
#include "src/rt/alloc.h"
#include "src/rt/log.h"

#define PLAYLIST_MAX (1u << 20)  /* a playlist bigger than this is not one of ours */
#define SEGMENT_MAX  (64u << 20) /* nor a segment */
#define ASSET_MAX    128
#define URI_MAX      256

typedef struct othumb {
    origin base;
    origin *inner;
    rd_actor *render; /* the render thread */
} othumb;

enum { ST_MASTER, ST_MEDIA, ST_INIT, ST_SEGMENT, ST_RENDER };

struct thumb_get {
    othumb *o;
    rd_loop *loop;
    blob_sink *sink;
    int stage;
    int cancelled;
    char asset[ASSET_MAX];
    int64_t time_ms;
    int width;
    /* the sub-GET of the inner origin, and what it brought */
    origin_get *sub;
    blob_sink subsink;
    uint8_t *buf;
    size_t len, cap, limit;
    char rung[URI_MAX];    /* the top rung's directory ("1080p/"), "" at the root */
    char seg_uri[URI_MAX]; /* relative to the rung */
    char map_uri[URI_MAX];
    int64_t seg_start_ms;
    uint8_t *init;
    size_t init_len;
    /* the render */
    int pipe[2];
    rd_op op;
    char wake;
    _Atomic int rendered; /* the thread's results below are written */
    int err;
    uint8_t *jpeg;
    size_t jpeg_len;
    char why[160];
};

static void get_free(struct thumb_get *g)
{
    if (g->pipe[0] >= 0)
        close(g->pipe[0]);
    if (g->pipe[1] >= 0)
        close(g->pipe[1]);
    free(g->buf);
    free(g->init);
    free(g->jpeg);
    free(g);
}

static void finish(struct thumb_get *g, int err)
{
    blob_sink *s = g->sink;
    if (err == 0) {
        rd_buf *b = buf_new(g->jpeg_len);
        memcpy(b->data, g->jpeg, g->jpeg_len);
        b->len = g->jpeg_len;
        blob_meta m = {.size = g->jpeg_len, .mtime = (int64_t)time(NULL)};
        snprintf(m.content_type, sizeof(m.content_type), "image/jpeg");
        s->head(s, &m);
        s->data(s, b);
    }
    s->done(s, err, err < 0 ? "the thumbnail could not be made" : "");
    get_free(g);
}

static void sub_start(struct thumb_get *g, const char *path, size_t limit);

/* ---- the sub-GETs ---- */

static void sub_head(blob_sink *s, const blob_meta *m)
{
    struct thumb_get *g = (struct thumb_get *)((char *)s - offsetof(struct thumb_get, subsink));
    uint64_t size = m->size;
    if (size > g->limit)
        g->limit = 0; /* too big: refused when done */
    else if (size + 1 > g->cap) {
        free(g->buf);
        g->cap = size + 1;
        g->buf = rd_calloc(1, g->cap, "a thumbnail's source");
    }
}

static void sub_data(blob_sink *s, rd_buf *chunk)
{
    struct thumb_get *g = (struct thumb_get *)((char *)s - offsetof(struct thumb_get, subsink));
    if (g->limit > 0 && g->len + chunk->len <= g->limit) {
        if (g->len + chunk->len + 1 > g->cap) {
            size_t cap = (g->len + chunk->len + 1) * 2;
            uint8_t *nb = rd_realloc(g->buf, cap, "reading a thumbnail's source");
            g->buf = nb;
            g->cap = cap;
        }
        memcpy(g->buf + g->len, chunk->data, chunk->len);
        g->len += chunk->len;
    } else {
        g->limit = 0;
    }
    buf_unref(chunk);
}

static void render_start(struct thumb_get *g);

static void sub_done(blob_sink *s, int err, const char *why)
{
    (void)why;
    struct thumb_get *g = (struct thumb_get *)((char *)s - offsetof(struct thumb_get, subsink));
    g->sub = NULL;
    if (err == 0 && g->limit == 0)
        err = -EFBIG;
    if (err < 0) {
        /* A ladder without this object (not ready, deleted): no such picture. */
        finish(g, err == -EFBIG ? -EIO : err);
        return;
    }
    char path[2 * URI_MAX + 8];
    const char *text = (const char *)g->buf;
    switch (g->stage) {
    case ST_MASTER: {
        char uri[URI_MAX];
        int w = 0;
        if (thumb_top_variant(text, g->len, uri, sizeof(uri), &w) < 0 || strstr(uri, "..") ||
            strchr(uri, ':') || uri[0] == '/') {
            finish(g, -ENOENT);
            return;
        }
        const char *slash = strrchr(uri, '/');
        size_t dl = slash ? (size_t)(slash - uri) + 1 : 0;
        memcpy(g->rung, uri, dl);
        g->rung[dl] = '\0';
        g->stage = ST_MEDIA;
        sub_start(g, uri, PLAYLIST_MAX);
        return;
    }
    case ST_MEDIA:
        if (thumb_segment_at(text, g->len, g->time_ms, g->seg_uri, sizeof(g->seg_uri),
                             &g->seg_start_ms, g->map_uri, sizeof(g->map_uri)) < 0 ||
            strstr(g->seg_uri, "..") || strchr(g->seg_uri, '/') || strstr(g->map_uri, "..") ||
            strchr(g->map_uri, '/')) {
            finish(g, -ENOENT);
            return;
        }
        g->stage = g->map_uri[0] ? ST_INIT : ST_SEGMENT;
        snprintf(path, sizeof(path), "%s%s", g->rung, g->map_uri[0] ? g->map_uri : g->seg_uri);
        sub_start(g, path, SEGMENT_MAX);
        return;
    case ST_INIT:
        g->init = g->buf;
        g->init_len = g->len;
        g->buf = NULL;
        g->cap = 0;
        g->stage = ST_SEGMENT;
        snprintf(path, sizeof(path), "%s%s", g->rung, g->seg_uri);
        sub_start(g, path, SEGMENT_MAX);
        return;
    default:
        render_start(g);
    }
}

/* Starts the next sub-GET; -errno when it could not start (nothing is called then). */
static int sub_try(struct thumb_get *g, const char *path, size_t limit)
{
    g->len = 0;
    g->limit = limit;
    if (g->buf == NULL) {
        g->cap = 64 * 1024;
        g->buf = rd_calloc(1, g->cap, "a thumbnail's source");
    }
    g->subsink = (blob_sink){.head = sub_head, .data = sub_data, .done = sub_done};
    return origin_get_start(g->o->inner, g->loop, g->asset, path, -1, &g->subsink, &g->sub);
}

/* The same from a callback: a failure ends the GET. */
static void sub_start(struct thumb_get *g, const char *path, size_t limit)
{
    int r = sub_try(g, path, limit);
    if (r < 0)
        finish(g, r);
}

/* ---- the render: on the thread, then back on the loop ---- */

static void rendered(rd_op *op, int res, uint32_t flags)
{
    (void)res;
    (void)flags;
    struct thumb_get *g = (struct thumb_get *)((char *)op - offsetof(struct thumb_get, op));
    if (!atomic_load_explicit(&g->rendered, memory_order_acquire)) {
        /* the pipe broke without the thread's byte: cannot happen, but never wait forever */
        g->err = -EIO;
    }
    if (g->cancelled) {
        get_free(g);
        return;
    }
    if (g->err < 0)
        log_warn("thumbnail_failed", KV_STR("asset", g->asset), KV_INT("time_ms", g->time_ms),
                 KV_STR("why", g->why));
    finish(g, g->err);
}

static void render_start(struct thumb_get *g)
{
    g->stage = ST_RENDER;
    if (pipe2(g->pipe, O_CLOEXEC) < 0) {
        finish(g, -errno);
        return;
    }
    rd_msg *m = msg_new(MSG_THUMB_RENDER);
    msg_body(m, thumb_render)->get = g;
    if (actor_send(g->o->render, m) < 0) {
        msg_free(m);
        finish(g, -EBUSY);
        return;
    }
    g->op.done = rendered;
    struct io_uring_sqe *sqe = loop_sqe(g->loop, &g->op);
    io_uring_prep_read(sqe, g->pipe[0], &g->wake, 1, 0);
}

static int render_handle(rd_actor *self, rd_msg *m)
{
    (void)self;
    if (m->type != MSG_THUMB_RENDER)
        return RD_DONE;
    struct thumb_get *g = msg_body(m, thumb_render)->get;
    int64_t offset = g->time_ms - g->seg_start_ms;
    g->err = thumb_render(g->init, g->init_len, g->buf, g->len, offset < 0 ? 0 : offset, g->width,
                          &g->jpeg, &g->jpeg_len, g->why, sizeof(g->why));
    if (g->err < 0)
        g->err = g->err == AVERROR(ENOMEM) ? -ENOMEM : -EIO;
    atomic_store_explicit(&g->rendered, 1, memory_order_release);
    ssize_t w = write(g->pipe[1], "x", 1);
    (void)w; /* a pipe with room for one byte and a reader: it cannot fail */
    return RD_DONE;
}

static const rd_actor_def render_def = {.name = "thumbnail-render", .handle = render_handle};

/* ---- the origin ---- */

static int thumb_get_start(origin *base, rd_loop *loop, const char *asset, const char *path,
                           int inotify_fd, blob_sink *sink, origin_get **out)
{
    (void)inotify_fd; /* a picture is made, not read: nothing to watch */
    othumb *o = (othumb *)base;
    int64_t t;
    int w;
    if (!thumb_path_parse(path, &t, &w) || strlen(asset) >= ASSET_MAX)
        return -ENOENT;
    struct thumb_get *g = rd_calloc(1, sizeof(*g), "a thumbnail");
    g->o = o;
    g->loop = loop;
    g->sink = sink;
    g->time_ms = t;
    g->width = w;
    g->pipe[0] = g->pipe[1] = -1;
    snprintf(g->asset, sizeof(g->asset), "%s", asset);
    g->stage = ST_MASTER;
    int r = sub_try(g, "master.m3u8", PLAYLIST_MAX);
    if (r < 0) {
        get_free(g);
        return r;
    }
    *out = (origin_get *)g;
    return 0;
}

static void thumb_cancel(origin_get *og)
{
    struct thumb_get *g = (struct thumb_get *)og;
    if (g->stage == ST_RENDER) {
        g->cancelled = 1; /* freed when the render's byte arrives */
        return;
    }
    if (g->sub != NULL)
        origin_get_cancel(g->o->inner, g->sub);
    get_free(g);
}

static void thumb_destroy(origin *base)
{
    othumb *o = (othumb *)base;
    actor_stop(o->render);
    actor_join(o->render);
    free(o);
}

static const origin_ops thumb_ops = {
    .name = "thumbnails", .get = thumb_get_start, .cancel = thumb_cancel, .destroy = thumb_destroy};

int origin_thumb_create(origin *inner, origin **out)
{
    othumb *o = rd_calloc(1, sizeof(*o), "the thumbnail origin");
    o->base.ops = &thumb_ops;
    o->inner = inner;
    int r = actor_spawn_thread(&render_def, NULL, -1, &o->render);
    if (r < 0) {
        free(o);
        return r;
    }
    *out = &o->base;
    return 0;
}
