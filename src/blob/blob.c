/* The blocking blob interface: each call one request of the asynchronous store (aio.h), waited
 * for. See blob.h. */
#include "src/blob/blob.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/s3_wire.h"
#include "src/rt/alloc.h"

struct blob_store {
    blob_aio *aio; /* borrowed */
};

blob_store *blob_open(blob_aio *aio)
{
    blob_store *b = rd_calloc(1, sizeof(*b), "the blob store");
    b->aio = aio;
    return b;
}

void blob_close(blob_store *b)
{
    free(b);
}

const char *blob_kind(const blob_store *b)
{
    return blob_aio_kind(b->aio);
}

/* ---- one request, waited for ---- */

typedef struct waiter {
    blob_sink sink;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, err;
    blob_meta meta;
    uint8_t *buf; /* GET: the caller's buffer */
    size_t cap, got;
    char why[512];
} waiter;

static void w_head(blob_sink *s, const blob_meta *m)
{
    ((waiter *)(void *)s)->meta = *m;
}

static void w_data(blob_sink *s, rd_buf *chunk)
{
    waiter *w = (waiter *)(void *)s;
    size_t take = chunk->len < w->cap - w->got ? chunk->len : w->cap - w->got;
    memcpy(w->buf + w->got, chunk->data, take);
    w->got += take;
    buf_unref(chunk);
}

static void w_done(blob_sink *s, int err, const char *why)
{
    waiter *w = (waiter *)(void *)s;
    pthread_mutex_lock(&w->mu);
    w->err = err;
    snprintf(w->why, sizeof(w->why), "%s", why);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* 0, or -EDEADLK on an event loop's thread: a loop that waited here would hold back its own
 * completions, or the outbox its request waits in (a request is posted at the end of the
 * loop's turn), so it is refused, in every build, not waited for. */
static int w_init(waiter *w, const blob_store *b)
{
    (void)b;
    memset(w, 0, sizeof(*w));
    w->sink = (blob_sink){.head = w_head, .data = w_data, .done = w_done};
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    return loop_current() != NULL ? -EDEADLK : 0;
}

/* Waits for the request the caller just started (`started`: what the start call returned) and
 * gives its result, with its sentence in msg. */
static int w_wait(waiter *w, int started, const char *what, const char *bucket, const char *key,
                  char *msg, size_t msglen)
{
    if (started < 0) {
        const char *why = started == -EINVAL         ? "the bucket or key was refused"
                          : started == -ENAMETOOLONG ? "the key is too long"
                          : started == -ENOTSUP      ? "the store has no such operation"
                          : started == -EAGAIN       ? "the store is overloaded, try again"
                          : started == -EDEADLK      ? "asked on an event loop, which never waits"
                                                     : "the store is stopped";
        snprintf(w->why, sizeof(w->why), "%s %.63s/%.200s: %s.", what, bucket, key, why);
        w->err = started;
    } else {
        pthread_mutex_lock(&w->mu);
        while (!w->done)
            pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    if (w->err < 0 && msg != NULL)
        snprintf(msg, msglen, "%s", w->why);
    return w->err;
}

static void info_of(const waiter *w, blob_info *info)
{
    if (info == NULL)
        return;
    info->size = (int64_t)w->meta.size;
    snprintf(info->etag, sizeof(info->etag), "%s", w->meta.etag);
    snprintf(info->content_type, sizeof(info->content_type), "%s", w->meta.content_type);
}

/* ---- objects ---- */

int blob_put(blob_store *b, const char *bucket, const char *key, const void *data, size_t len,
             const char *content_type, blob_info *info, char *msg, size_t msglen)
{
    waiter w;
    int r = w_init(&w, b);
    if (r == 0)
        r = blob_aio_put(b->aio, NULL, bucket, key, data, len, content_type, NULL, &w.sink, NULL);
    r = w_wait(&w, r, "PUT", bucket, key, msg, msglen);
    if (r == 0)
        info_of(&w, info);
    return r;
}

int blob_put_file(blob_store *b, const char *bucket, const char *key, const char *path,
                  const char *content_type, blob_info *info, char *msg, size_t msglen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int r = -errno;
        if (fd >= 0)
            close(fd);
        if (msg != NULL)
            snprintf(msg, msglen, "cannot read %s (%s).", path, strerror(-r));
        return r;
    }
    waiter w;
    int r = w_init(&w, b);
    if (r == 0)
        r = blob_aio_put_fd(b->aio, NULL, bucket, key, fd, (uint64_t)st.st_size, content_type,
                            &w.sink, NULL);
    r = w_wait(&w, r, "PUT", bucket, key, msg, msglen);
    close(fd);
    if (r == 0)
        info_of(&w, info);
    return r;
}

int blob_get_range(blob_store *b, const char *bucket, const char *key, uint64_t offset, void *buf,
                   size_t len, size_t *got, char *msg, size_t msglen)
{
    *got = 0;
    if (len == 0)
        return 0; /* the store's length 0 means "to the end" */
    waiter w;
    int r = w_init(&w, b);
    w.buf = buf;
    w.cap = len;
    if (r == 0)
        r = blob_aio_get(b->aio, NULL, bucket, key, offset, len, &w.sink, NULL);
    r = w_wait(&w, r, "GET", bucket, key, msg, msglen);
    *got = w.got;
    return r;
}

int blob_head(blob_store *b, const char *bucket, const char *key, blob_info *info, char *msg,
              size_t msglen)
{
    waiter w;
    int r = w_init(&w, b);
    if (r == 0)
        r = blob_aio_head(b->aio, NULL, bucket, key, &w.sink, NULL);
    r = w_wait(&w, r, "HEAD", bucket, key, msg, msglen);
    if (r == 0)
        info_of(&w, info);
    return r;
}

int blob_delete(blob_store *b, const char *bucket, const char *key, char *msg, size_t msglen)
{
    waiter w;
    int r = w_init(&w, b);
    if (r == 0)
        r = blob_aio_delete(b->aio, NULL, bucket, key, &w.sink, NULL);
    return w_wait(&w, r, "DELETE", bucket, key, msg, msglen);
}

int blob_delete_unless_retained(blob_store *b, const char *bucket, const char *key, int64_t *until,
                                char *msg, size_t msglen)
{
    waiter w;
    int r = w_init(&w, b);
    if (r == 0)
        r = blob_aio_delete_unless_retained(b->aio, NULL, bucket, key, &w.sink, NULL);
    r = w_wait(&w, r, "DELETE", bucket, key, msg, msglen);
    if (until != NULL)
        *until = r == 0 ? w.meta.retained_until : 0;
    return r;
}

int blob_copy(blob_store *b, const char *src_bucket, const char *src_key, int64_t src_size,
              const char *dst_bucket, const char *dst_key, int lock_days, const char *lock_mode,
              blob_info *info, char *msg, size_t msglen)
{
    waiter w;
    int r = w_init(&w, b);
    if (r == 0)
        r = blob_aio_copy(b->aio, NULL, src_bucket, src_key, src_size, dst_bucket, dst_key,
                          lock_days, lock_mode, &w.sink, NULL);
    r = w_wait(&w, r, "COPY", src_bucket, src_key, msg, msglen);
    if (r == 0)
        info_of(&w, info);
    return r;
}

/* ---- clients' multipart uploads ---- */

int blob_has_uploads(const blob_store *b)
{
    return blob_aio_has_uploads(b->aio);
}

int blob_upload_start(blob_store *b, const char *bucket, const char *key, const char *content_type,
                      char *upload_id, size_t cap, char *msg, size_t msglen)
{
    waiter w;
    int r = w_init(&w, b);
    if (r == 0)
        r = blob_aio_upload_start(b->aio, NULL, bucket, key, content_type, &w.sink, NULL);
    r = w_wait(&w, r, "multipart upload", bucket, key, msg, msglen);
    if (r == 0 && (size_t)snprintf(upload_id, cap, "%s", w.meta.upload_id) >= cap) {
        if (msg != NULL)
            snprintf(msg, msglen, "the storage's upload id is longer than %zu bytes", cap - 1);
        r = -ENAMETOOLONG;
    }
    return r;
}

int blob_upload_complete(blob_store *b, const char *bucket, const char *key, const char *upload_id,
                         const s3_part *parts, size_t nparts, char *msg, size_t msglen)
{
    waiter w;
    int r = w_init(&w, b);
    if (r == 0)
        r = blob_aio_upload_complete(b->aio, NULL, bucket, key, upload_id, parts, nparts, &w.sink,
                                     NULL);
    return w_wait(&w, r, "multipart upload", bucket, key, msg, msglen);
}

int blob_upload_abort(blob_store *b, const char *bucket, const char *key, const char *upload_id,
                      char *msg, size_t msglen)
{
    if (!blob_aio_has_uploads(b->aio))
        return 0; /* nothing to abort */
    waiter w;
    int r = w_init(&w, b);
    if (r == 0)
        r = blob_aio_upload_abort(b->aio, NULL, bucket, key, upload_id, &w.sink, NULL);
    return w_wait(&w, r, "multipart upload", bucket, key, msg, msglen);
}

/* ---- buckets: configuration and listing, not object requests of the store ---- */

/* The S3 client of the store's home loop, or NULL on fs. */
static s3_client *client_of(const blob_store *b)
{
    return blob_aio_client(b->aio, blob_aio_home(b->aio));
}

int blob_lock_enabled(blob_store *b, const char *bucket, char *msg, size_t msglen)
{
    s3_client *c = client_of(b);
    if (c == NULL)
        return -ENOTSUP;
    char doc[4096];
    s3_op op = {
        .method = S3_GET_OBJECT_LOCK, .bucket = bucket, .resp = doc, .resp_cap = sizeof(doc)};
    int r = s3_call(c, &op);
    if (r == -ENOENT && strcmp(op.code, "NoSuchBucket") != 0)
        return 0; /* the bucket is there, with no lock configuration */
    if (r < 0) {
        if (msg != NULL)
            snprintf(msg, msglen, "%s", op.message);
        return r;
    }
    char enabled[32] = "";
    s3wire_xml_text(doc, strlen(doc), "ObjectLockEnabled", enabled, sizeof(enabled));
    return strcmp(enabled, "Enabled") == 0;
}
