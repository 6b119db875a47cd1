/* The front of the asynchronous blob interface: requests made, copied and handed to their
 * backend on the right loop. See aio.h. */
#include "src/blob/aio.h"

#include <bearssl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/blob/aio_impl.h"
#include "src/blob/fs.h"
#include "src/rt/alloc.h"

static const char *start_failure(int err)
{
    switch (err) {
    case -EINVAL:
        return "the bucket or key was refused";
    case -ENAMETOOLONG:
        return "the key is too long";
    case -ECANCELED:
        return "reeld is stopping";
    default:
        return "the request could not start";
    }
}

/* ---- the home actor: requests of threads that are not a loop ---- */

static int home_handle(rd_actor *self, rd_msg *m)
{
    blob_aio *s = self->state;
    if (m->type != MSG_BLOB_CALL)
        return RD_DONE;
    blob_req *r = msg_body(m, blob_call)->req;
    r->loop = s->home;
    int e = loop_stopping(s->home) ? -ECANCELED : s->ops->start(r);
    if (e < 0) {
        char why[200];
        snprintf(why, sizeof(why), "%s %.63s/%.60s: %s.", s->ops->name, r->bucket, r->key,
                 start_failure(e));
        blob_req_end(r, e, why);
    }
    return RD_DONE;
}

static int home_init(rd_actor *self, void *arg)
{
    self->state = arg;
    return 0;
}

static const rd_actor_def home_def = {
    .name = "blob_aio",
    .init = home_init,
    .handle = home_handle,
    .mailbox_bound = 4096,
};

int blob_aio_init(blob_aio *s, const blob_aio_ops *ops, rd_loop *home)
{
    s->ops = ops;
    s->home = home;
    s->multipart_threshold = BLOB_MULTIPART_MIN;
    s->part_size = BLOB_PART_SIZE;
    s->copy_part_max = BLOB_COPY_MAX;
    return actor_spawn(home, &home_def, s, &s->actor);
}

/* ---- requests ---- */

void blob_req_free(blob_req *r)
{
    free(r);
}

void blob_req_end(blob_req *r, int err, const char *why)
{
    /* done first: `why` may live in the request (the S3 client's message) */
    if (!r->cancelled)
        r->sink->done(r->sink, err, err < 0 && why != NULL ? why : "");
    free(r);
}

int blob_req_head(blob_req *r, const blob_meta *m)
{
    if (!r->cancelled && r->sink->head != NULL)
        r->sink->head(r->sink, m);
    return !r->cancelled;
}

int blob_req_data(blob_req *r, rd_buf *chunk)
{
    if (r->cancelled) {
        buf_unref(chunk);
        return 0;
    }
    r->sink->data(r->sink, chunk);
    return !r->cancelled;
}

/* 1 when `key` (the prefix of a LIST when `prefix`) passes the names' rule. One rule for
 * names on both backends (fs.h's): a key S3 would take but a file system would not ("a//b",
 * "../x") is refused everywhere, so no object is storable on one backend and not the other,
 * and no ".." reaches a server or proxy that normalises. A prefix is "" or such a key, with a
 * '/' after it when it names a folder. */
static int name_ok(const char *key, size_t kl, int prefix)
{
    if (prefix && kl > 0 && key[kl - 1] == '/')
        kl--;
    return (prefix && kl == 0 && key[0] == '\0') || blobfs_valid_key(key, kl);
}

static int make(blob_aio *s, blob_kind_op kind, const char *bucket, const char *key,
                blob_sink *sink, blob_req **out)
{
    size_t bl = strlen(bucket), kl = strlen(key);
    if (!blobfs_valid_bucket(bucket) || !name_ok(key, kl, kind == BLOB_OP_LIST))
        return -EINVAL;
    if (bl >= sizeof((*out)->bucket) || kl >= sizeof((*out)->key))
        return -ENAMETOOLONG;
    blob_req *r = rd_calloc(1, s->ops->req_size, "blob request");
    r->store = s;
    r->sink = sink;
    r->kind = kind;
    r->fd = -1;
    r->src_size = -1;
    memcpy(r->bucket, bucket, bl + 1);
    memcpy(r->key, key, kl + 1);
    *out = r;
    return 0;
}

static int go(blob_aio *s, rd_loop *loop, blob_req *r, blob_req **out)
{
    if (out != NULL)
        *out = r;
    if (loop != NULL) {
        r->loop = loop;
        int e = s->ops->start(r);
        if (e < 0)
            free(r);
        return e;
    }
    rd_msg *m = msg_new(MSG_BLOB_CALL);
    msg_body(m, blob_call)->req = r;
    int e = actor_send(s->actor, m);
    if (e < 0) {
        msg_free(m);
        free(r);
    }
    return e;
}

int blob_aio_get(blob_aio *s, rd_loop *loop, const char *bucket, const char *key, uint64_t off,
                 uint64_t len, blob_sink *sink, blob_req **out)
{
    blob_req *r;
    int e = make(s, BLOB_OP_GET, bucket, key, sink, &r);
    if (e < 0)
        return e;
    r->off = off;
    r->len = len;
    return go(s, loop, r, out);
}

int blob_aio_get_watched(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                         int inotify_fd, blob_sink *sink, blob_req **out)
{
    blob_req *r;
    int e = make(s, BLOB_OP_GET, bucket, key, sink, &r);
    if (e < 0)
        return e;
    r->watch_fd = s->watches && inotify_fd > 0 ? inotify_fd : 0;
    return go(s, loop, r, out);
}

int blob_aio_watches(const blob_aio *s)
{
    return s->watches;
}

int blob_aio_head(blob_aio *s, rd_loop *loop, const char *bucket, const char *key, blob_sink *sink,
                  blob_req **out)
{
    blob_req *r;
    int e = make(s, BLOB_OP_HEAD, bucket, key, sink, &r);
    return e < 0 ? e : go(s, loop, r, out);
}

/* A content type for the store: NULL or "" is application/octet-stream; none with a line
 * break, none longer than the request keeps. */
static int set_type(blob_req *r, const char *content_type)
{
    const char *ct =
        content_type != NULL && *content_type ? content_type : "application/octet-stream";
    if (strpbrk(ct, "\r\n") != NULL || snprintf(r->content_type, sizeof(r->content_type), "%s",
                                                ct) >= (int)sizeof(r->content_type))
        return -EINVAL;
    return 0;
}

int blob_aio_put(blob_aio *s, rd_loop *loop, const char *bucket, const char *key, const void *body,
                 size_t len, const char *content_type, const char *cache_control, blob_sink *sink,
                 blob_req **out)
{
    const char *cc = cache_control != NULL ? cache_control : "";
    if (strpbrk(cc, "\r\n") != NULL)
        return -EINVAL;
    blob_req *r;
    int e = make(s, BLOB_OP_PUT, bucket, key, sink, &r);
    if (e < 0)
        return e;
    if (set_type(r, content_type) < 0 || snprintf(r->cache_control, sizeof(r->cache_control), "%s",
                                                  cc) >= (int)sizeof(r->cache_control)) {
        free(r);
        return -EINVAL;
    }
    r->body = body;
    r->body_len = len;
    if (s->ops->wants_md5) {
        br_md5_context md5;
        br_md5_init(&md5);
        br_md5_update(&md5, body, len);
        br_md5_out(&md5, r->md5);
    }
    return go(s, loop, r, out);
}

int blob_aio_delete(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                    blob_sink *sink, blob_req **out)
{
    blob_req *r;
    int e = make(s, BLOB_OP_DELETE, bucket, key, sink, &r);
    return e < 0 ? e : go(s, loop, r, out);
}

int blob_aio_put_fd(blob_aio *s, rd_loop *loop, const char *bucket, const char *key, int fd,
                    uint64_t len, const char *content_type, blob_sink *sink, blob_req **out)
{
    if (fd < 0)
        return -EBADF;
    blob_req *r;
    int e = make(s, BLOB_OP_PUT_FD, bucket, key, sink, &r);
    if (e == 0 && (e = set_type(r, content_type)) < 0)
        free(r);
    if (e < 0)
        return e;
    r->fd = fd;
    r->body_len = len;
    return go(s, loop, r, out);
}

int blob_aio_copy(blob_aio *s, rd_loop *loop, const char *src_bucket, const char *src_key,
                  int64_t src_size, const char *dst_bucket, const char *dst_key, int lock_days,
                  const char *lock_mode, blob_sink *sink, blob_req **out)
{
    size_t sl = strlen(src_key);
    if (!blobfs_valid_bucket(src_bucket) || !blobfs_valid_key(src_key, sl))
        return -EINVAL;
    if (strlen(src_bucket) >= sizeof((blob_req){0}.src_bucket) || sl > S3_MAX_KEY)
        return -ENAMETOOLONG;
    const char *mode = lock_mode != NULL ? lock_mode : "";
    if (strcmp(mode, "") != 0 && strcmp(mode, "GOVERNANCE") != 0 && strcmp(mode, "COMPLIANCE") != 0)
        return -EINVAL;
    blob_req *r;
    int e = make(s, BLOB_OP_COPY, dst_bucket, dst_key, sink, &r);
    if (e < 0)
        return e;
    memcpy(r->src_bucket, src_bucket, strlen(src_bucket) + 1);
    memcpy(r->src_key, src_key, sl + 1);
    r->src_size = src_size;
    r->lock_days = lock_days > 0 ? lock_days : 0;
    snprintf(r->lock_mode, sizeof(r->lock_mode), "%s", mode);
    return go(s, loop, r, out);
}

int blob_aio_delete_unless_retained(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                                    blob_sink *sink, blob_req **out)
{
    blob_req *r;
    int e = make(s, BLOB_OP_DELETE_KEPT, bucket, key, sink, &r);
    return e < 0 ? e : go(s, loop, r, out);
}

int blob_aio_list(blob_aio *s, rd_loop *loop, const char *bucket, const char *prefix,
                  blob_sink *sink, blob_req **out)
{
    blob_req *r;
    int e = make(s, BLOB_OP_LIST, bucket, prefix != NULL ? prefix : "", sink, &r);
    return e < 0 ? e : go(s, loop, r, out);
}

int blob_aio_has_uploads(const blob_aio *s)
{
    return s->ops->uploads;
}

/* An upload request of `kind` for bucket/key, or -ENOTSUP on a backend without uploads. */
static int make_upload(blob_aio *s, blob_kind_op kind, const char *bucket, const char *key,
                       const char *upload_id, blob_sink *sink, blob_req **out)
{
    if (!s->ops->uploads)
        return -ENOTSUP;
    if (upload_id != NULL && (*upload_id == '\0' || strlen(upload_id) >= sizeof((*out)->upload_id)))
        return -EINVAL;
    int e = make(s, kind, bucket, key, sink, out);
    if (e == 0 && upload_id != NULL)
        memcpy((*out)->upload_id, upload_id, strlen(upload_id) + 1);
    return e;
}

int blob_aio_upload_start(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                          const char *content_type, blob_sink *sink, blob_req **out)
{
    blob_req *r;
    int e = make_upload(s, BLOB_OP_UPLOAD_START, bucket, key, NULL, sink, &r);
    if (e == 0 && (e = set_type(r, content_type)) < 0)
        free(r);
    return e < 0 ? e : go(s, loop, r, out);
}

int blob_aio_upload_complete(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                             const char *upload_id, const s3_part *parts, size_t nparts,
                             blob_sink *sink, blob_req **out)
{
    blob_req *r;
    int e = make_upload(s, BLOB_OP_UPLOAD_COMPLETE, bucket, key, upload_id, sink, &r);
    if (e == 0 && (nparts == 0 || parts == NULL)) {
        free(r);
        e = -EINVAL;
    }
    if (e < 0)
        return e;
    r->parts = parts;
    r->nparts = nparts;
    return go(s, loop, r, out);
}

int blob_aio_upload_abort(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                          const char *upload_id, blob_sink *sink, blob_req **out)
{
    blob_req *r;
    int e = make_upload(s, BLOB_OP_UPLOAD_ABORT, bucket, key, upload_id, sink, &r);
    return e < 0 ? e : go(s, loop, r, out);
}

void blob_aio_set_parts(blob_aio *s, uint64_t threshold, uint64_t part_size)
{
    s->multipart_threshold = threshold;
    s->part_size = part_size > 0 ? part_size : BLOB_PART_SIZE;
}

void blob_aio_set_copy_parts(blob_aio *s, uint64_t part_max)
{
    s->copy_part_max = part_max < (5u << 20)      ? 5u << 20
                       : part_max > BLOB_COPY_MAX ? BLOB_COPY_MAX
                                                  : part_max;
}

void blob_aio_cancel(blob_req *r)
{
    if (r->cancelled)
        return;
    r->cancelled = 1;
    r->store->ops->cancel(r);
}

/* ---- stores ---- */

int blob_aio_open(const rd_config *cfg, rd_loop *const *loops, int nloops, uint32_t timeout_ms,
                  blob_aio **out, char *err, size_t errlen)
{
    err[0] = '\0';
    if (cfg->s3_endpoint == NULL)
        return blob_aio_open_fs(cfg->data_dir, loops[0], out, err, errlen);
    tls_anchors *anchors = NULL;
    int r = 0;
    if (strncmp(cfg->s3_endpoint, "https://", 8) == 0) {
        anchors = rd_calloc(1, sizeof(*anchors), "blob store");
        r = tls_anchors_load(anchors, TLS_SYSTEM_CA_FILE, err, errlen);
        if (r < 0) {
            free(anchors);
            return r;
        }
    }
    s3_config sc = {.endpoint = cfg->s3_endpoint,
                    .region = cfg->s3_region,
                    .access_key_id = cfg->s3_access_key_id,
                    .secret_access_key = cfg->s3_secret_access_key,
                    .anchors = anchors,
                    .timeout_ms = timeout_ms};
    r = blob_aio_s3_create(&sc, loops, nloops, anchors, out, err, errlen);
    if (r < 0 && err[0] == '\0')
        snprintf(err, errlen, "cannot open S3_ENDPOINT: %s", strerror(-r));
    return r;
}

int blob_aio_open_s3(const s3_config *sc, rd_loop *const *loops, int nloops, blob_aio **out,
                     char *err, size_t errlen)
{
    return blob_aio_s3_create(sc, loops, nloops, NULL, out, err, errlen);
}

void blob_aio_close(blob_aio *s)
{
    if (s != NULL)
        s->ops->close(s);
}

const char *blob_aio_kind(const blob_aio *s)
{
    return s->ops->name;
}

rd_loop *blob_aio_home(const blob_aio *s)
{
    return s->home;
}

s3_client *blob_aio_client(const blob_aio *s, const rd_loop *loop)
{
    return s->ops->client(s, loop);
}
