/* src/blob/aio: the asynchronous object store, both backends, as src/blob/aio.h promises.
 *
 * fs (a temporary DATA_DIR, one started home loop): a PUT into nested directories that do not
 * exist yet is durable in the layout of src/blob/fs.h (the exact bytes under blobs/, the
 * metadata under blobs.meta/, nothing left in blobs.tmp) and its `head` says what was stored
 * (size, the quoted hex MD5 that the blocking blob_head also gives, the content type, by
 * default application/octet-stream); HEAD; GET whole (600,000 bytes: more than one chunk may
 * come), a range, from an offset to the end, a range running past the end, from at or past the
 * end (-ERANGE), of an empty object, of a missing key or bucket (-ENOENT); an overwrite; DELETE
 * (object and metadata gone, deleting what is not there still 0); a watched GET (its watch on
 * the file read, from before its bytes: a PUT over it, a write in place, its removal heard); names
 * refused (-EINVAL from the start call or from done) with nothing created or removed outside the
 * bucket; a key whose directory is a file, a key that is a directory; symlinks planted in the tree
 * never followed, for reading and (a directory link) for writing or deleting; cancel on the loop
 * thread right after the start and from the sink's head and data callbacks (nothing more is heard;
 * a cancelled PUT still lands); many requests in flight at once; requests made on a loop thread by
 * an actor (the home loop and a second loop) with their callbacks on that loop, and those of the
 * main thread (loop NULL) on the home loop; blob_aio_kind and blob_aio_client. A PUT from a file
 * (600,000 bytes, streamed: the MD5 taken chunk by chunk is the whole file's; a file shorter than
 * said is -EIO with nothing stored), a COPY (bytes, ETag and the source's content type; a missing
 * source named; retention ignored), no uploads (-ENOTSUP at the start), a delete unless retained
 * that deletes; a content type with a line break refused.
 *
 * s3 also: a PUT from a file whole and in parts (CreateMultipartUpload, each part's bytes,
 * Complete; a refused part aborts the upload), a COPY (CopyObject with the lock mode, the
 * source's size asked when unknown, UploadPartCopy ranges above the copy part size with the
 * retention set again, a refused part aborting), a delete unless retained (kept until a
 * future date without a DELETE; otherwise the version named), the clients' uploads (start,
 * complete, NoSuchUpload as -ENOENT, abort of a gone upload as success).
 *
 * s3 (two started loops, a fake S3 peer on a loopback socket): path-style requests, what a
 * PUT sends (Content-Type, application/octet-stream by default, Cache-Control) and the ETag it
 * returns, HEAD, GET whole and ranged (Range header, 206), -ERANGE from a 416, -ENOENT from
 * NoSuchKey, DELETE, empty names and keys with ".." segments refused before anything is sent,
 * the actor path on the second loop (its own client), cancel.
 *
 * Every sink checks that no callback follows done, that head comes at most once and before the
 * data, and that it runs on the loop the request belongs to. Waits are bounded: a broken
 * implementation fails instead of hanging. */
#include "src/blob/aio.h"

#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/blob_meta.h"
#include "src/blob/blob.h"
#include "src/rt/actor.h"
#include "src/rt/metrics.h"
#include "tests/unit/fixture_net.h"
#include "tests/unit/test.h"

#define MS      1000000ull
#define WAIT_MS 10000 /* the longest any request may take here */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- The recording sink ---------------------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

typedef struct rec {
    blob_sink sink;
    rd_loop *want_loop; /* the loop its callbacks must run on */
    int start;          /* what the start call returned */
    int heads, datas, dones;
    int head_after_data; /* head came after a chunk */
    int late;            /* callbacks after done */
    int off_loop;        /* callbacks on another thread than want_loop's */
    int null_chunks;
    int heads_at_done;
    int err;
    int why_null;
    char why[512];
    blob_meta meta;
    unsigned char *data;
    size_t len, cap;
    blob_req *req;      /* set on the loop thread right after the start (actor requests) */
    int cancel_on_head; /* the sink cancels the request from its head callback */
    int cancel_on_data; /* ... from its first data callback */
} rec;

#define NRECS 1024
static rec recs[NRECS];
static int nrecs;

static void rec_check(rec *r)
{
    if (loop_current() != r->want_loop)
        r->off_loop++;
    if (r->dones)
        r->late++;
}

static void on_head(blob_sink *s, const blob_meta *m)
{
    rec *r = (rec *)s;
    pthread_mutex_lock(&mu);
    rec_check(r);
    if (r->datas)
        r->head_after_data = 1;
    r->heads++;
    r->meta = *m;
    pthread_mutex_unlock(&mu);
    if (r->cancel_on_head && r->req != NULL)
        blob_aio_cancel(r->req);
}

static void on_data(blob_sink *s, rd_buf *chunk)
{
    rec *r = (rec *)s;
    pthread_mutex_lock(&mu);
    rec_check(r);
    r->datas++;
    if (chunk == NULL) {
        r->null_chunks++;
    } else {
        if (r->len + chunk->len > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + chunk->len)
                cap *= 2;
            r->data = realloc(r->data, cap);
            r->cap = cap;
        }
        memcpy(r->data + r->len, chunk->data, chunk->len);
        r->len += chunk->len;
    }
    int cancel = r->cancel_on_data && r->req != NULL && r->datas == 1;
    pthread_mutex_unlock(&mu);
    buf_unref(chunk); /* the reference moved to the sink */
    if (cancel)
        blob_aio_cancel(r->req);
}

static void on_done(blob_sink *s, int err, const char *why)
{
    rec *r = (rec *)s;
    pthread_mutex_lock(&mu);
    rec_check(r);
    r->heads_at_done = r->heads;
    r->dones++;
    r->err = err;
    r->why_null = why == NULL;
    snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static rec *rec_new(rd_loop *want)
{
    if (nrecs == NRECS) {
        printf("  test bug: more than %d requests\n", NRECS);
        fflush(stdout);
        abort();
    }
    rec *r = &recs[nrecs++];
    r->sink.head = on_head;
    r->sink.data = on_data;
    r->sink.done = on_done;
    r->want_loop = want;
    return r;
}

/* Waits until *flag (an int guarded by mu) is set, at most `ms`. 1 when it was. */
static int wait_flag(int *flag, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&mu);
    while (!*flag)
        if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT)
            break;
    int ok = *flag != 0;
    pthread_mutex_unlock(&mu);
    return ok;
}

/* After the start call: waits for done when it started. 1 when done came. */
static int finish(rec *r)
{
    if (r->start != 0)
        return 0;
    int ok = wait_flag(&r->dones, WAIT_MS);
    if (!ok)
        printf("  no done within %d ms\n", WAIT_MS);
    return ok;
}

/* Requests from the main thread (loop NULL): they run on the home loop. */
static rd_loop *home; /* the home loop of the store under test */

static rec *get(blob_aio *s, const char *b, const char *k, uint64_t off, uint64_t len)
{
    rec *r = rec_new(home);
    r->start = blob_aio_get(s, NULL, b, k, off, len, &r->sink, NULL);
    finish(r);
    return r;
}

static rec *head_of(blob_aio *s, const char *b, const char *k)
{
    rec *r = rec_new(home);
    blob_req *req = NULL;
    r->start = blob_aio_head(s, NULL, b, k, &r->sink, &req);
    if (r->start == 0 && req == NULL)
        printf("  blob_aio_head returned 0 without setting *out\n");
    finish(r);
    return r;
}

static rec *put(blob_aio *s, const char *b, const char *k, const void *body, size_t len,
                const char *type, const char *cache)
{
    rec *r = rec_new(home);
    r->start = blob_aio_put(s, NULL, b, k, body, len, type, cache, &r->sink, NULL);
    finish(r);
    return r;
}

static rec *del(blob_aio *s, const char *b, const char *k)
{
    rec *r = rec_new(home);
    r->start = blob_aio_delete(s, NULL, b, k, &r->sink, NULL);
    finish(r);
    return r;
}

static rec *put_fd(blob_aio *s, const char *b, const char *k, int fd, uint64_t len,
                   const char *type)
{
    rec *r = rec_new(home);
    r->start = blob_aio_put_fd(s, NULL, b, k, fd, len, type, &r->sink, NULL);
    finish(r);
    return r;
}

static rec *copy_of(blob_aio *s, const char *sb, const char *sk, int64_t size, const char *db,
                    const char *dk, int days, const char *mode)
{
    rec *r = rec_new(home);
    r->start = blob_aio_copy(s, NULL, sb, sk, size, db, dk, days, mode, &r->sink, NULL);
    finish(r);
    return r;
}

static rec *del_kept(blob_aio *s, const char *b, const char *k)
{
    rec *r = rec_new(home);
    r->start = blob_aio_delete_unless_retained(s, NULL, b, k, &r->sink, NULL);
    finish(r);
    return r;
}

/* A file under /tmp holding p[0..n), opened for reading (unlinked already), or -1. */
static int temp_file(const void *p, size_t n)
{
    char path[] = "/tmp/reeld-aio-file-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    if (write(fd, p, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Started, done once with 0 and an empty `why`, on the right loop. */
#define CHECK_OK(r)                                                                                \
    do {                                                                                           \
        CHECK_EQ_INT((r)->start, 0);                                                               \
        CHECK_EQ_INT((r)->dones, 1);                                                               \
        CHECK_EQ_INT((r)->err, 0);                                                                 \
        CHECK_EQ_STR((r)->why, "");                                                                \
        CHECK_EQ_INT((r)->off_loop, 0);                                                            \
    } while (0)

/* Started and done once with `e` (< 0) and a sentence saying why. */
#define CHECK_FAILS(r, e)                                                                          \
    do {                                                                                           \
        CHECK_EQ_INT((r)->start, 0);                                                               \
        CHECK_EQ_INT((r)->dones, 1);                                                               \
        CHECK_EQ_INT((r)->err, (e));                                                               \
        CHECK(!(r)->why_null && (r)->why[0] != '\0');                                              \
        CHECK_EQ_INT((r)->datas, 0);                                                               \
        CHECK_EQ_INT((r)->off_loop, 0);                                                            \
    } while (0)

/* A name refused: either the start call says -EINVAL (and no callback follows), or it starts
 * and done says -EINVAL (with no head and no data before it). */
static int refused(rec *r)
{
    if (r->start == -EINVAL) {
        sleep_ms(50);
        pthread_mutex_lock(&mu);
        int quiet = r->heads == 0 && r->datas == 0 && r->dones == 0;
        pthread_mutex_unlock(&mu);
        if (!quiet)
            printf("  a callback followed a start that returned -EINVAL\n");
        return quiet;
    }
    if (r->start != 0) {
        printf("  start returned %d, not -EINVAL\n", r->start);
        return 0;
    }
    if (r->dones != 1 || r->err != -EINVAL || r->heads != 0 || r->datas != 0) {
        printf("  done %d err %d heads %d datas %d (want done(-EINVAL) alone)\n", r->dones, r->err,
               r->heads, r->datas);
        return 0;
    }
    return 1;
}

/* `r` (a request for bad[i]) refused, said with the name when not. */
#define CHECK_REFUSED(r, what, i)                                                                  \
    do {                                                                                           \
        int ok_ = refused(r);                                                                      \
        if (!ok_)                                                                                  \
            printf("  %s %s/%s was not refused\n", what, bad[i].bucket, bad[i].key);               \
        CHECK(ok_);                                                                                \
    } while (0)

/* ---- An actor that starts requests on its own loop thread ------------------------------- */

static rec *list_of(blob_aio *s, const char *b, const char *prefix)
{
    rec *r = rec_new(home);
    r->start = blob_aio_list(s, NULL, b, prefix, &r->sink, NULL);
    finish(r);
    return r;
}

/* The keys a LIST gave (each followed by a NUL in r->data), sorted, one per line, into out. */
static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void keys_of(const rec *r, char *out, size_t cap)
{
    const char *k[512];
    size_t n = 0, o = 0;
    for (size_t at = 0; at < r->len && n < 512; at += strlen((const char *)r->data + at) + 1)
        k[n++] = (const char *)r->data + at;
    qsort(k, n, sizeof(k[0]), key_cmp);
    out[0] = '\0';
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s\n", k[i]);
}

enum { J_GET, J_HEAD, J_PUT, J_DELETE, J_WAIT, J_LIST };

static char data_dir[128]; /* top/data */

typedef struct job {
    int op;
    int cancel; /* blob_aio_cancel right after the start, in the same handler */
    blob_aio *s;
    const char *bucket, *key;
    const void *body;
    size_t len;
    uint64_t off, get_len;
    const char *type;
    rec *r;
    int ran;            /* the handler ran (under mu) */
    int on_actor_loop;  /* loop_current() was the actor's loop */
    int early_callback; /* a callback ran inside the start call */
    int out_set;        /* *out was set */
} job;

static int starter_handle(rd_actor *self, rd_msg *m)
{
    if (m->type != MSG_PING)
        return RD_DONE;
    job *j = (job *)(uintptr_t)msg_body(m, ping)->seq;
    rd_loop *l = loop_current();
    blob_req *req = NULL;
    switch (j->op) {
    case J_GET:
        j->r->start =
            blob_aio_get(j->s, l, j->bucket, j->key, j->off, j->get_len, &j->r->sink, &req);
        break;
    case J_HEAD:
        j->r->start = blob_aio_head(j->s, l, j->bucket, j->key, &j->r->sink, &req);
        break;
    case J_PUT:
        j->r->start = blob_aio_put(j->s, l, j->bucket, j->key, j->body, j->len, j->type, NULL,
                                   &j->r->sink, &req);
        break;
    case J_DELETE:
        j->r->start = blob_aio_delete(j->s, l, j->bucket, j->key, &j->r->sink, &req);
        break;
    case J_LIST:
        j->r->start = blob_aio_list(j->s, l, j->bucket, j->key, &j->r->sink, &req);
        break;
    case J_WAIT: { /* the blocking face, asked on this loop: refused, not waited for */
        blob_store *b = blob_open(j->s);
        j->r->start = blob_head(b, j->bucket, j->key, NULL, j->r->why, sizeof(j->r->why));
        blob_close(b);
        break;
    }
    }
    /* Callbacks run on this very thread: nothing can come between the start and here but what
     * the start call itself did. */
    pthread_mutex_lock(&mu);
    int early = j->r->heads + j->r->datas + j->r->dones;
    pthread_mutex_unlock(&mu);
    j->r->req = req; /* for a sink that cancels from a callback: they run later, here */
    if (j->cancel && j->r->start == 0 && req != NULL && early == 0)
        blob_aio_cancel(req);
    pthread_mutex_lock(&mu);
    j->out_set = req != NULL;
    j->early_callback = early;
    j->on_actor_loop = l != NULL && l == self->loop;
    j->ran = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return RD_DONE;
}

static const rd_actor_def starter_def = {.name = "aio_test", .handle = starter_handle};

/* Hands `j` to the actor and waits until its handler has run; then, unless it cancels, until
 * done. The job's rec must have been made for the actor's loop. */
static void on_actor(rd_actor *a, job *j)
{
    rd_msg *m = msg_new(MSG_PING);
    msg_body(m, ping)->seq = (uint64_t)(uintptr_t)j;
    if (actor_send(a, m) != 0) {
        msg_free(m);
        CHECK(!"actor_send failed");
        return;
    }
    CHECK(wait_flag(&j->ran, WAIT_MS));
    CHECK(j->on_actor_loop);
    CHECK_EQ_INT(j->early_callback, 0);
    if (j->r->start == 0) {
        CHECK(j->out_set);
        if (!j->cancel && !j->r->cancel_on_head && !j->r->cancel_on_data)
            finish(j->r); /* a cancelled request has no done to wait for */
    }
}

/* ---- Files ------------------------------------------------------------------------------ */

static char top[64]; /* mkdtemp: holds the data dir and what must stay outside it */

static void path_of(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", data_dir, rel);
}

/* 1 when the file at data_dir/rel holds exactly p[0..n). */
static int file_is(const char *rel, const void *p, size_t n)
{
    char path[512];
    path_of(path, sizeof(path), rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    unsigned char *b = malloc(n + 1);
    size_t got = fread(b, 1, n + 1, f);
    fclose(f);
    int same = got == n && memcmp(b, p, n) == 0;
    free(b);
    return same;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int exists_rel(const char *rel)
{
    char path[512];
    path_of(path, sizeof(path), rel);
    return exists(path);
}

/* Entries of a directory other than . and ..; -1 when it cannot be read. */
static int entries(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int tmp_entries(void)
{
    char path[512];
    path_of(path, sizeof(path), "blobs.tmp");
    return entries(path);
}

/* ---- fs --------------------------------------------------------------------------------- */

#define BIG_LEN 600000 /* more than two 256 KiB chunks */

static blob_aio *fs;
static rd_actor *fs_actor;
static rd_loop *loop2; /* a second loop, not the home, for the fs backend's actor path */
static rd_actor *loop2_actor;
static unsigned char *big;
static unsigned char seg[3000];
static unsigned char seg2[1234];

static const char SEG_KEY[] = "a1/hls/720p/seg_00001.m4s";

TEST(fs_open)
{
    big = malloc(BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++)
        big[i] = (unsigned char)(i * 7 + i / 251);
    for (size_t i = 0; i < sizeof(seg); i++)
        seg[i] = (unsigned char)(i * 13 + 1);
    for (size_t i = 0; i < sizeof(seg2); i++)
        seg2[i] = (unsigned char)(255 - i * 3);

    snprintf(top, sizeof(top), "/tmp/reeld-aio-XXXXXX");
    NEED(mkdtemp(top) != NULL);
    snprintf(data_dir, sizeof(data_dir), "%s/data", top);
    NEED(mkdir(data_dir, 0700) == 0);
    NEED(loop_create(&home, 0, -1) == 0);
    NEED(loop_start(home) == 0);
    char err[256] = "";
    int r = blob_aio_open_fs(data_dir, home, &fs, err, sizeof(err));
    if (r != 0)
        printf("  blob_aio_open_fs: %d %s\n", r, err);
    NEED(r == 0 && fs != NULL);
    CHECK_EQ_STR(blob_aio_kind(fs), "fs");
    CHECK(blob_aio_client(fs, home) == NULL);
    CHECK(exists_rel("blobs"));
    CHECK(exists_rel("blobs.meta"));
    CHECK_EQ_INT(actor_spawn(home, &starter_def, NULL, &fs_actor), 0);
}

TEST(fs_put_nested)
{
    NEED(fs != NULL);
    char want[40];
    md5_etag(seg, sizeof(seg), want);
    rec *r = put(fs, "previews", SEG_KEY, seg, sizeof(seg), "video/mp4", NULL);
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->heads_at_done, 1); /* before done */
    CHECK_EQ_INT(r->datas, 0);
    CHECK_EQ_INT(r->meta.size, sizeof(seg));
    CHECK_EQ_STR(r->meta.etag, want);
    CHECK_EQ_STR(r->meta.content_type, "video/mp4");
    /* The layout of src/blob/fs.h: the bytes, the metadata (proto/blob_meta.h: the ETag's line,
     * then the type's, which its parser reads back as `head` said them), no temp file left. */
    CHECK(file_is("blobs/previews/a1/hls/720p/seg_00001.m4s", seg, sizeof(seg)));
    char meta[BLOB_META_MAX], etag[80], type[128];
    int ml = snprintf(meta, sizeof(meta), "%s\nvideo/mp4\n", want);
    CHECK(file_is("blobs.meta/previews/a1/hls/720p/seg_00001.m4s", meta, (size_t)ml));
    blob_meta_parse(meta, (size_t)ml, etag, sizeof(etag), type, sizeof(type));
    CHECK_EQ_STR(etag, r->meta.etag);
    CHECK_EQ_STR(type, r->meta.content_type);
    CHECK_EQ_INT(tmp_entries(), 0);
}

TEST(fs_put_empty_default_type)
{
    NEED(fs != NULL);
    rec *r = put(fs, "previews", "empty", "", 0, NULL, NULL);
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->meta.size, 0);
    CHECK_EQ_STR(r->meta.etag, "\"d41d8cd98f00b204e9800998ecf8427e\""); /* md5("") */
    CHECK_EQ_STR(r->meta.content_type, "application/octet-stream");
    CHECK(file_is("blobs/previews/empty", "", 0));
    r = head_of(fs, "previews", "empty");
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.size, 0);
    CHECK_EQ_STR(r->meta.content_type, "application/octet-stream");
    /* The whole of an empty object is no bytes, not an error. */
    r = get(fs, "previews", "empty", 0, 0);
    CHECK_OK(r);
    CHECK_EQ_INT(r->len, 0);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->meta.size, 0);
    /* A type with a line break (it would be a second line of the metadata, or a header on S3) is
     * refused: nothing stored, no temp file left. */
    CHECK(refused(put(fs, "previews", "typed", "abc", 3, "bad\r\ntype", NULL)));
    CHECK(!exists_rel("blobs/previews/typed"));
    CHECK(!exists_rel("blobs.meta/previews/typed"));
    CHECK_EQ_INT(tmp_entries(), 0);
}

TEST(fs_head)
{
    NEED(fs != NULL);
    char want[40];
    md5_etag(seg, sizeof(seg), want);
    rec *r = head_of(fs, "previews", SEG_KEY);
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->heads_at_done, 1);
    CHECK_EQ_INT(r->datas, 0);
    CHECK_EQ_INT(r->meta.size, sizeof(seg));
    CHECK_EQ_STR(r->meta.etag, want);
    CHECK_EQ_STR(r->meta.content_type, "video/mp4");
    int64_t now = (int64_t)time(NULL);
    CHECK(r->meta.mtime > now - 120 && r->meta.mtime < now + 120);

    r = head_of(fs, "previews", "a1/hls/720p/nope.m4s");
    CHECK_FAILS(r, -ENOENT);
    CHECK_EQ_INT(r->heads, 0);
    r = head_of(fs, "nobucket", "x");
    CHECK_FAILS(r, -ENOENT);
    CHECK_EQ_INT(r->heads, 0);
}

TEST(fs_get)
{
    NEED(fs != NULL);
    rec *r = put(fs, "previews", "big/object.mp4", big, BIG_LEN, "video/mp4", NULL);
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.size, BIG_LEN);

    r = get(fs, "previews", "big/object.mp4", 0, 0);
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->head_after_data, 0);
    CHECK_EQ_INT(r->meta.size, BIG_LEN);
    CHECK_EQ_INT(r->null_chunks, 0);
    CHECK_EQ_INT(r->len, BIG_LEN);
    CHECK(r->len == BIG_LEN && memcmp(r->data, big, BIG_LEN) == 0);
    printf("  a GET of %d bytes came in %d chunks\n", BIG_LEN, r->datas);

    /* A range in the middle: exactly those bytes; head still gives the object's size. */
    r = get(fs, "previews", "big/object.mp4", 100000, 250000);
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->meta.size, BIG_LEN);
    CHECK_EQ_INT(r->len, 250000);
    CHECK(r->len == 250000 && memcmp(r->data, big + 100000, 250000) == 0);

    /* From an offset to the end (len 0). */
    r = get(fs, "previews", "big/object.mp4", 599000, 0);
    CHECK_OK(r);
    CHECK_EQ_INT(r->len, 1000);
    CHECK(r->len == 1000 && memcmp(r->data, big + 599000, 1000) == 0);

    /* A range that runs past the end: what there is (as S3, and the blocking blob_get_range over
     * this store). */
    r = get(fs, "previews", "big/object.mp4", BIG_LEN - 10, 100);
    CHECK_OK(r);
    CHECK_EQ_INT(r->len, 10);
    CHECK(r->len == 10 && memcmp(r->data, big + BIG_LEN - 10, 10) == 0);

    /* From at or past the end of a non-empty object. */
    r = get(fs, "previews", "big/object.mp4", BIG_LEN, 0);
    CHECK_FAILS(r, -ERANGE);
    r = get(fs, "previews", "big/object.mp4", BIG_LEN + 100000, 10);
    CHECK_FAILS(r, -ERANGE);

    /* Missing keys and buckets. */
    r = get(fs, "previews", "big/nope.mp4", 0, 0);
    CHECK_FAILS(r, -ENOENT);
    CHECK_EQ_INT(r->heads, 0);
    r = get(fs, "previews", "nodir/nope.mp4", 0, 0);
    CHECK_FAILS(r, -ENOENT);
    r = get(fs, "nobucket", "x", 0, 0);
    CHECK_FAILS(r, -ENOENT);
}

TEST(fs_overwrite)
{
    NEED(fs != NULL);
    char want[40];
    md5_etag(seg2, sizeof(seg2), want);
    rec *r = put(fs, "previews", SEG_KEY, seg2, sizeof(seg2), "video/iso.segment", NULL);
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.size, sizeof(seg2));
    CHECK_EQ_STR(r->meta.etag, want);
    r = get(fs, "previews", SEG_KEY, 0, 0);
    CHECK_OK(r);
    CHECK_EQ_INT(r->len, sizeof(seg2));
    CHECK(r->len == sizeof(seg2) && memcmp(r->data, seg2, sizeof(seg2)) == 0);
    r = head_of(fs, "previews", SEG_KEY);
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.size, sizeof(seg2));
    CHECK_EQ_STR(r->meta.etag, want);
    CHECK_EQ_STR(r->meta.content_type, "video/iso.segment");
    CHECK(file_is("blobs/previews/a1/hls/720p/seg_00001.m4s", seg2, sizeof(seg2)));
    CHECK_EQ_INT(tmp_entries(), 0);
}

/* The events waiting in inotify instance `ino`, their masks ORed, for watch `wd`; -1 when the
 * instance holds an event of another watch. */
static int events_of(int ino, int wd)
{
    union {
        struct inotify_event ev;
        char b[4096];
    } u;
    int mask = 0;
    ssize_t n;
    while ((n = read(ino, u.b, sizeof(u.b))) > 0) {
        for (size_t at = 0; at + sizeof(struct inotify_event) <= (size_t)n;) {
            struct inotify_event ev;
            memcpy(&ev, u.b + at, sizeof(ev));
            if (ev.wd != wd)
                return -1;
            mask |= (int)ev.mask;
            at += sizeof(ev) + ev.len;
        }
    }
    return mask;
}

/* A watched GET of previews/key from the main thread, waited for. */
static rec *get_watched(blob_aio *s, const char *key, int ino)
{
    rec *r = rec_new(home);
    r->start = blob_aio_get_watched(s, NULL, "previews", key, ino, &r->sink, NULL);
    finish(r);
    return r;
}

/* A watched GET: the watch is on the file read, from before its bytes; reading raises nothing;
 * a PUT over it (a rename), a write in place and a removal each raise an event on it. */
TEST(fs_get_watched)
{
    NEED(fs != NULL);
    CHECK_EQ_INT(blob_aio_watches(fs), 1);
    int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    NEED(ino > 0);
    const char *key = "w1/hls/v0/index.m3u8";
    rec *r = put(fs, "previews", key, "#EXTM3U\n#a\n", 11, NULL, NULL);
    CHECK_OK(r);

    r = get_watched(fs, key, ino);
    CHECK_OK(r);
    CHECK(r->len == 11 && memcmp(r->data, "#EXTM3U\n#a\n", 11) == 0);
    int wd = r->meta.watch;
    CHECK(wd > 0);
    CHECK_EQ_INT(events_of(ino, wd), 0); /* its own open, read and close: nothing */

    r = put(fs, "previews", key, "#EXTM3U\n#b\n", 11, NULL, NULL); /* renamed over it */
    CHECK_OK(r);
    CHECK(events_of(ino, wd) & IN_ATTRIB);

    r = get_watched(fs, key, ino);
    CHECK_OK(r);
    CHECK(r->len == 11 && memcmp(r->data, "#EXTM3U\n#b\n", 11) == 0);
    int wd2 = r->meta.watch;
    CHECK(wd2 > 0 && wd2 != wd); /* another file */
    char path[512];
    path_of(path, sizeof(path), "blobs/previews/w1/hls/v0/index.m3u8");
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0 && pwrite(fd, "c", 1, 9) == 1);
    if (fd >= 0)
        close(fd);
    int m = events_of(ino, wd2);
    CHECK(m > 0 && (m & IN_MODIFY) && (m & IN_CLOSE_WRITE));
    r = del(fs, "previews", key);
    CHECK_OK(r);
    CHECK(events_of(ino, wd2) & IN_ATTRIB); /* unlinked */

    /* Unwatched: a plain GET, a watched one without an instance, a missing object. */
    r = put(fs, "previews", key, "#EXTM3U\n", 8, NULL, NULL);
    CHECK_OK(r);
    r = get(fs, "previews", key, 0, 0);
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.watch, 0);
    r = get_watched(fs, key, 0);
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.watch, 0);
    r = get_watched(fs, "w1/hls/nope.m3u8", ino);
    CHECK_FAILS(r, -ENOENT);
    CHECK_EQ_INT(r->heads, 0);
    close(ino);
}

/* Requests the home loop's own actor starts, naming its loop: callbacks on that loop. */
TEST(fs_loop_actor)
{
    NEED(fs != NULL && fs_actor != NULL);
    job g = {.op = J_GET, .s = fs, .bucket = "previews", .key = "big/object.mp4"};
    g.r = rec_new(home);
    on_actor(fs_actor, &g);
    CHECK_OK(g.r);
    CHECK_EQ_INT(g.r->heads, 1);
    CHECK_EQ_INT(g.r->meta.size, BIG_LEN);
    CHECK(g.r->len == BIG_LEN && memcmp(g.r->data, big, BIG_LEN) == 0);

    job rg = {.op = J_GET,
              .s = fs,
              .bucket = "previews",
              .key = "big/object.mp4",
              .off = 300001,
              .get_len = 7};
    rg.r = rec_new(home);
    on_actor(fs_actor, &rg);
    CHECK_OK(rg.r);
    CHECK(rg.r->len == 7 && memcmp(rg.r->data, big + 300001, 7) == 0);

    static const char body[] = "written from the loop thread";
    char want[40];
    md5_etag(body, sizeof(body) - 1, want);
    job p = {.op = J_PUT,
             .s = fs,
             .bucket = "previews",
             .key = "actor/put.txt",
             .body = body,
             .len = sizeof(body) - 1,
             .type = "text/plain"};
    p.r = rec_new(home);
    on_actor(fs_actor, &p);
    CHECK_OK(p.r);
    CHECK_EQ_INT(p.r->heads_at_done, 1);
    CHECK_EQ_INT(p.r->meta.size, sizeof(body) - 1);
    CHECK_EQ_STR(p.r->meta.etag, want);
    CHECK(file_is("blobs/previews/actor/put.txt", body, sizeof(body) - 1));

    job h = {.op = J_HEAD, .s = fs, .bucket = "previews", .key = "actor/put.txt"};
    h.r = rec_new(home);
    on_actor(fs_actor, &h);
    CHECK_OK(h.r);
    CHECK_EQ_STR(h.r->meta.content_type, "text/plain");

    job d = {.op = J_DELETE, .s = fs, .bucket = "previews", .key = "actor/put.txt"};
    d.r = rec_new(home);
    on_actor(fs_actor, &d);
    CHECK_OK(d.r);
    CHECK(!exists_rel("blobs/previews/actor/put.txt"));
}

/* The blocking face on a loop's thread would hold back the loop it waits for: -EDEADLK with
 * its sentence, at once, in every build (an assertion would vanish from a release build). */
TEST(blocking_face_refused_on_a_loop)
{
    NEED(fs != NULL && fs_actor != NULL);
    job w = {.op = J_WAIT, .s = fs, .bucket = "previews", .key = "big/object.mp4"};
    w.r = rec_new(home);
    on_actor(fs_actor, &w);
    CHECK_EQ_INT(w.r->start, -EDEADLK);
    CHECK(strstr(w.r->why, "event loop") != NULL);
}

/* The fs backend works on whatever loop asks (opened with a home alone): an actor on a second
 * loop gets its callbacks there. */
TEST(fs_other_loop)
{
    NEED(fs != NULL);
    NEED(loop_create(&loop2, 1, -1) == 0);
    NEED(loop_start(loop2) == 0);
    NEED(actor_spawn(loop2, &starter_def, NULL, &loop2_actor) == 0);
    job g = {.op = J_GET, .s = fs, .bucket = "previews", .key = "big/object.mp4"};
    g.r = rec_new(loop2);
    on_actor(loop2_actor, &g);
    CHECK_OK(g.r);
    CHECK_EQ_INT(g.r->meta.size, BIG_LEN);
    CHECK(g.r->len == BIG_LEN && memcmp(g.r->data, big, BIG_LEN) == 0);
}

/* Cancelled in the handler that started it: nothing more is heard of it. */
static void check_quiet(rec *r)
{
    sleep_ms(200);
    pthread_mutex_lock(&mu);
    int h = r->heads, d = r->datas, n = r->dones;
    pthread_mutex_unlock(&mu);
    CHECK_EQ_INT(h, 0);
    CHECK_EQ_INT(d, 0);
    CHECK_EQ_INT(n, 0);
}

TEST(fs_cancel)
{
    NEED(fs != NULL && fs_actor != NULL);
    job g = {.op = J_GET, .cancel = 1, .s = fs, .bucket = "previews", .key = "big/object.mp4"};
    g.r = rec_new(home);
    on_actor(fs_actor, &g);
    CHECK_EQ_INT(g.r->start, 0);
    check_quiet(g.r);

    job h = {.op = J_HEAD, .cancel = 1, .s = fs, .bucket = "previews", .key = SEG_KEY};
    h.r = rec_new(home);
    on_actor(fs_actor, &h);
    CHECK_EQ_INT(h.r->start, 0);
    check_quiet(h.r);

    job m = {.op = J_GET, .cancel = 1, .s = fs, .bucket = "previews", .key = "no/such"};
    m.r = rec_new(home);
    on_actor(fs_actor, &m);
    CHECK_EQ_INT(m.r->start, 0);
    check_quiet(m.r);

    /* A cancelled PUT runs to its end unseen: the object lands. */
    static const char body[] = "a put nobody waits for";
    job p = {.op = J_PUT,
             .cancel = 1,
             .s = fs,
             .bucket = "previews",
             .key = "cancelled/put.txt",
             .body = body,
             .len = sizeof(body) - 1};
    p.r = rec_new(home);
    on_actor(fs_actor, &p);
    CHECK_EQ_INT(p.r->start, 0);
    check_quiet(p.r);
    int landed = 0;
    for (int i = 0; i < 200 && !landed; i++) {
        landed = file_is("blobs/previews/cancelled/put.txt", body, sizeof(body) - 1);
        if (!landed)
            sleep_ms(10);
    }
    CHECK(landed);
}

/* Cancelled from the sink's own callbacks: after head, no data and no done; after the first
 * chunk, nothing more. */
TEST(fs_cancel_from_callbacks)
{
    NEED(fs != NULL && fs_actor != NULL);
    job g = {.op = J_GET, .s = fs, .bucket = "previews", .key = "big/object.mp4"};
    g.r = rec_new(home);
    g.r->cancel_on_head = 1;
    on_actor(fs_actor, &g);
    CHECK_EQ_INT(g.r->start, 0);
    sleep_ms(200);
    pthread_mutex_lock(&mu);
    CHECK_EQ_INT(g.r->heads, 1);
    CHECK_EQ_INT(g.r->datas, 0);
    CHECK_EQ_INT(g.r->dones, 0);
    pthread_mutex_unlock(&mu);

    job d = {.op = J_GET, .s = fs, .bucket = "previews", .key = "big/object.mp4"};
    d.r = rec_new(home);
    d.r->cancel_on_data = 1;
    on_actor(fs_actor, &d);
    CHECK_EQ_INT(d.r->start, 0);
    sleep_ms(200);
    pthread_mutex_lock(&mu);
    CHECK_EQ_INT(d.r->heads, 1);
    CHECK_EQ_INT(d.r->datas, 1);
    CHECK_EQ_INT(d.r->dones, 0);
    CHECK(d.r->len > 0 && d.r->len < BIG_LEN && memcmp(d.r->data, big, d.r->len) == 0);
    pthread_mutex_unlock(&mu);

    job h = {.op = J_HEAD, .s = fs, .bucket = "previews", .key = "big/object.mp4"};
    h.r = rec_new(home);
    h.r->cancel_on_head = 1;
    on_actor(fs_actor, &h);
    CHECK_EQ_INT(h.r->start, 0);
    sleep_ms(200);
    pthread_mutex_lock(&mu);
    CHECK_EQ_INT(h.r->heads, 1);
    CHECK_EQ_INT(h.r->dones, 0);
    pthread_mutex_unlock(&mu);
}

/* Many requests in flight at once from the main thread: PUTs into one new directory (each
 * finds it missing, makes it, one of them gets EEXIST) and ranged GETs. */
TEST(fs_many_at_once)
{
    NEED(fs != NULL);
    enum { N = 16 };
    rec *p[N], *g[N];
    char keys[N][64];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "many/new/dir/k%02d", i);
        p[i] = rec_new(home);
        p[i]->start = blob_aio_put(fs, NULL, "previews", keys[i], big + i * 1000, 1000 + i,
                                   "video/mp4", NULL, &p[i]->sink, NULL);
        g[i] = rec_new(home);
        g[i]->start = blob_aio_get(fs, NULL, "previews", "big/object.mp4", (uint64_t)i * 30000,
                                   20000, &g[i]->sink, NULL);
    }
    for (int i = 0; i < N; i++) {
        finish(p[i]);
        finish(g[i]);
    }
    for (int i = 0; i < N; i++) {
        CHECK_OK(p[i]);
        CHECK_OK(g[i]);
        CHECK(g[i]->len == 20000 && memcmp(g[i]->data, big + i * 30000, 20000) == 0);
        char rel[128];
        snprintf(rel, sizeof(rel), "blobs/previews/%s", keys[i]);
        CHECK(file_is(rel, big + i * 1000, 1000 + (size_t)i));
    }
    CHECK_EQ_INT(tmp_entries(), 0);
}

/* A key whose directory is a file, or which names a directory: an error, nothing half-made. */
TEST(fs_key_conflicts)
{
    NEED(fs != NULL);
    rec *r = put(fs, "previews", "plain", "abc", 3, NULL, NULL);
    CHECK_OK(r);
    r = put(fs, "previews", "plain/sub", "xyz", 3, NULL, NULL);
    CHECK_EQ_INT(r->start, 0);
    CHECK_EQ_INT(r->dones, 1);
    CHECK(r->err < 0);
    CHECK_EQ_INT(r->heads, 0);
    CHECK(file_is("blobs/previews/plain", "abc", 3));
    CHECK_EQ_INT(tmp_entries(), 0);
    /* A directory is not an object. */
    r = get(fs, "previews", "a1/hls", 0, 0);
    CHECK_FAILS(r, -ENOENT);
    r = head_of(fs, "previews", "a1");
    CHECK_FAILS(r, -ENOENT);
    r = put(fs, "previews", "a1/hls", "xyz", 3, NULL, NULL);
    CHECK_EQ_INT(r->dones, 1);
    CHECK(r->err < 0);
    CHECK_EQ_INT(tmp_entries(), 0);
    r = get(fs, "previews", SEG_KEY, 0, 0); /* still there */
    CHECK_OK(r);
}

TEST(fs_delete)
{
    NEED(fs != NULL);
    rec *r = del(fs, "previews", SEG_KEY);
    CHECK_OK(r);
    CHECK_EQ_INT(r->datas, 0);
    r = get(fs, "previews", SEG_KEY, 0, 0);
    CHECK_FAILS(r, -ENOENT);
    r = head_of(fs, "previews", SEG_KEY);
    CHECK_FAILS(r, -ENOENT);
    CHECK(!exists_rel("blobs/previews/a1/hls/720p/seg_00001.m4s"));
    CHECK(!exists_rel("blobs.meta/previews/a1/hls/720p/seg_00001.m4s"));
    /* As S3: deleting what is not there succeeds. */
    r = del(fs, "previews", SEG_KEY);
    CHECK_OK(r);
    r = del(fs, "previews", "never/was");
    CHECK_OK(r);
    /* The other objects are untouched. */
    r = head_of(fs, "previews", "big/object.mp4");
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.size, BIG_LEN);
}

TEST(fs_refused_names)
{
    NEED(fs != NULL);
    /* A file the refused names would reach: data/canary = blobs/previews/../../canary. */
    char canary[256];
    path_of(canary, sizeof(canary), "canary");
    FILE *f = fopen(canary, "w");
    NEED(f != NULL);
    fputs("canary", f);
    fclose(f);
    int before = entries(top);

    static const struct {
        const char *bucket, *key;
    } bad[] = {
        {"previews", "../x"},
        {"previews", "a//b"},
        {"previews", ""},
        {"UP", "x"},
        {"..", "x"},
        {"previews", "../../../x"},
        {"previews", "%2e%2e/x"},
        {"previews", "/abs"},
        {"previews", "a/./b"},
        {"previews", "a/"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_REFUSED(put(fs, bad[i].bucket, bad[i].key, "evil", 4, NULL, NULL), "PUT", i);
        CHECK_REFUSED(get(fs, bad[i].bucket, bad[i].key, 0, 0), "GET", i);
        CHECK_REFUSED(head_of(fs, bad[i].bucket, bad[i].key), "HEAD", i);
        CHECK_REFUSED(del(fs, bad[i].bucket, bad[i].key), "DELETE", i);
    }
    CHECK(refused(del(fs, "previews", "../../canary")));
    CHECK(refused(del(fs, "..", "canary")));

    /* Nothing made outside the bucket, nothing removed. */
    CHECK(exists(canary));
    CHECK_EQ_INT(entries(top), before);
    char p[512];
    snprintf(p, sizeof(p), "%s/x", top);
    CHECK(!exists(p));
    CHECK(!exists_rel("x"));
    CHECK(!exists_rel("blobs/x"));
    CHECK(!exists_rel("blobs.meta/x"));
    CHECK(!exists_rel("blobs/UP"));
    CHECK(!exists_rel("blobs/previews/a"));
    CHECK(!exists_rel("blobs/previews/%2e%2e"));
    CHECK_EQ_INT(tmp_entries(), 0);
    unlink(canary);
}

TEST(fs_symlinks_not_followed)
{
    NEED(fs != NULL);
    static const char secret[] = "TOP SECRET: outside the tree";
    char outside[256], link[512], dirlink[512];
    snprintf(outside, sizeof(outside), "%s/secret", top);
    FILE *f = fopen(outside, "w");
    NEED(f != NULL);
    fputs(secret, f);
    fclose(f);
    path_of(link, sizeof(link), "blobs/previews/link");
    path_of(dirlink, sizeof(dirlink), "blobs/previews/dirlink");
    CHECK_EQ_INT(symlink(outside, link), 0);
    CHECK_EQ_INT(symlink(top, dirlink), 0); /* a directory outside */
    char host[512];
    path_of(host, sizeof(host), "blobs/previews/hostname");
    CHECK_EQ_INT(symlink("/etc/hostname", host), 0);

    static const char *keys[] = {"link", "dirlink/secret", "hostname"};
    for (size_t i = 0; i < 3; i++) {
        rec *r = get(fs, "previews", keys[i], 0, 0);
        CHECK_EQ_INT(r->start, 0);
        CHECK_EQ_INT(r->dones, 1);
        CHECK(r->err < 0);
        CHECK_EQ_INT(r->len, 0);
        CHECK(r->len == 0 || memmem(r->data, r->len, "SECRET", 6) == NULL);
        r = head_of(fs, "previews", keys[i]);
        CHECK_EQ_INT(r->start, 0);
        CHECK_EQ_INT(r->dones, 1);
        CHECK(r->err < 0);
        CHECK_EQ_INT(r->heads, 0);
    }
    unlink(link);
    unlink(dirlink);
    unlink(host);
    unlink(outside);
}

/* A directory symlink planted in the tree is not written or deleted through either: the key
 * would leave its bucket (aio.h: never). */
TEST(fs_symlinked_dir_not_written_through)
{
    NEED(fs != NULL);
    char outside[256], dirlink[512];
    snprintf(outside, sizeof(outside), "%s/secret", top);
    FILE *f = fopen(outside, "w");
    NEED(f != NULL);
    fputs("outside", f);
    fclose(f);
    path_of(dirlink, sizeof(dirlink), "blobs/previews/dirlink");
    CHECK_EQ_INT(symlink(top, dirlink), 0);
    /* A PUT through the directory link does not write outside. */
    rec *r = put(fs, "previews", "dirlink/planted", "x", 1, NULL, NULL);
    CHECK_EQ_INT(r->dones + (r->start != 0), 1);
    char planted[256];
    snprintf(planted, sizeof(planted), "%s/planted", top);
    CHECK(!exists(planted));
    CHECK_EQ_INT(tmp_entries(), 0);
    /* ...nor a DELETE through it remove anything there. */
    r = del(fs, "previews", "dirlink/secret");
    CHECK_EQ_INT(r->dones + (r->start != 0), 1);
    CHECK(exists(outside));
    unlink(dirlink);
    unlink(planted);
    unlink(outside);
}

static void check_no_late_callbacks(int from)
{
    pthread_mutex_lock(&mu);
    for (int i = from; i < nrecs; i++) {
        if (recs[i].late || recs[i].dones > 1 || recs[i].heads > 1 || recs[i].off_loop)
            printf("  request %d: late %d dones %d heads %d off-loop %d\n", i, recs[i].late,
                   recs[i].dones, recs[i].heads, recs[i].off_loop);
        CHECK_EQ_INT(recs[i].late, 0);
        CHECK(recs[i].dones <= 1);
        CHECK(recs[i].heads <= 1);
        CHECK_EQ_INT(recs[i].off_loop, 0);
    }
    pthread_mutex_unlock(&mu);
}

TEST(fs_put_fd_streams_a_file)
{
    NEED(fs != NULL);
    int fd = temp_file(big, BIG_LEN);
    NEED(fd >= 0);
    char want[40];
    md5_etag(big, BIG_LEN, want);
    rec *r = put_fd(fs, "masters", "from/file.mp4", fd, BIG_LEN, "video/mp4");
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads_at_done, 1);
    CHECK_EQ_INT(r->meta.size, BIG_LEN);
    CHECK_EQ_STR(r->meta.etag, want); /* the MD5 taken chunk by chunk is the whole file's */
    CHECK_EQ_STR(r->meta.content_type, "video/mp4");
    CHECK(file_is("blobs/masters/from/file.mp4", big, BIG_LEN));
    CHECK_EQ_INT(tmp_entries(), 0);
    /* A file shorter than it was said to be: an error, nothing stored, no temp file left. */
    r = put_fd(fs, "masters", "from/short.mp4", fd, BIG_LEN + 10, NULL);
    CHECK_FAILS(r, -EIO);
    CHECK(!exists_rel("blobs/masters/from/short.mp4"));
    CHECK_EQ_INT(tmp_entries(), 0);
    /* An empty file is an empty object. */
    r = put_fd(fs, "masters", "from/empty", fd, 0, NULL);
    CHECK_OK(r);
    CHECK_EQ_STR(r->meta.etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    CHECK(file_is("blobs/masters/from/empty", "", 0));
    close(fd);
    CHECK_EQ_INT(blob_aio_put_fd(fs, NULL, "masters", "x", -1, 0, NULL, &rec_new(home)->sink, NULL),
                 -EBADF);
}

/* A pipe fed from this thread in pieces, as a body arrives over HTTP. */
static rec *put_from_pipe(const char *key, const unsigned char *data, size_t len, size_t send)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return NULL;
    rec *r = rec_new(home);
    r->start = blob_aio_put_fd(fs, NULL, "masters", key, p[0], len, "video/mp4", &r->sink, NULL);
    for (size_t at = 0; r->start == 0 && at < send;) {
        size_t n = send - at < 70000 ? send - at : 70000;
        ssize_t w = write(p[1], data + at, n);
        if (w <= 0)
            break;
        at += (size_t)w;
        sleep_ms(1);
    }
    close(p[1]); /* all of it, or cut off */
    finish(r);
    close(p[0]);
    return r;
}

TEST(fs_put_fd_from_a_pipe_as_it_comes)
{
    NEED(fs != NULL);
    char want[40];
    md5_etag(big, BIG_LEN, want);
    rec *r = put_from_pipe("pipe/whole.mp4", big, BIG_LEN, BIG_LEN);
    NEED(r != NULL);
    CHECK_OK(r);
    CHECK_EQ_STR(r->meta.etag, want);
    CHECK(file_is("blobs/masters/pipe/whole.mp4", big, BIG_LEN));
    /* Cut off before its length: an error, nothing stored, no temp file left. */
    r = put_from_pipe("pipe/cut.mp4", big, BIG_LEN, BIG_LEN / 3);
    NEED(r != NULL);
    CHECK_FAILS(r, -EIO);
    CHECK(!exists_rel("blobs/masters/pipe/cut.mp4"));
    CHECK_EQ_INT(tmp_entries(), 0);
}

TEST(fs_copy)
{
    NEED(fs != NULL);
    rec *r = put(fs, "staging", "up/big", big, BIG_LEN, "video/quicktime", NULL);
    CHECK_OK(r);
    char want[40];
    md5_etag(big, BIG_LEN, want);
    /* Retention asked of the fs backend: ignored (it keeps none), the copy made. */
    r = copy_of(fs, "staging", "up/big", -1, "masters", "m/big", 30, "GOVERNANCE");
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.size, BIG_LEN);
    CHECK_EQ_STR(r->meta.etag, want);
    CHECK_EQ_STR(r->meta.content_type, "video/quicktime"); /* the source's */
    CHECK(file_is("blobs/masters/m/big", big, BIG_LEN));
    r = head_of(fs, "masters", "m/big");
    CHECK_OK(r);
    CHECK_EQ_STR(r->meta.content_type, "video/quicktime");
    CHECK_EQ_STR(r->meta.etag, want);
    /* A source without metadata: the default type, and the MD5 taken from the bytes. */
    char meta[512];
    path_of(meta, sizeof(meta), "blobs.meta/staging/up/big");
    CHECK_EQ_INT(unlink(meta), 0);
    r = copy_of(fs, "staging", "up/big", -1, "masters", "m/bare", 0, NULL);
    CHECK_OK(r);
    CHECK_EQ_STR(r->meta.etag, want);
    CHECK_EQ_STR(r->meta.content_type, "application/octet-stream");
    CHECK(file_is("blobs/masters/m/bare", big, BIG_LEN));
    /* A source whose metadata names other bytes (a PUT renames its metadata into place before
     * its object, and a crash can fall between): the copy's ETag is its own bytes' MD5. */
    uint8_t other[16] = {1, 2, 3};
    char text[256];
    int tn = blob_meta_format(text, sizeof(text), other, "video/mp4");
    CHECK(tn > 0);
    FILE *f = fopen(meta, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fwrite(text, 1, (size_t)tn, f);
        fclose(f);
    }
    r = copy_of(fs, "staging", "up/big", -1, "masters", "m/stale", 0, NULL);
    CHECK_OK(r);
    CHECK_EQ_STR(r->meta.etag, want);
    r = head_of(fs, "masters", "m/stale");
    CHECK_OK(r);
    CHECK_EQ_STR(r->meta.etag, want);
    /* A missing source: -ENOENT naming the source; nothing made. */
    r = copy_of(fs, "staging", "up/nope", -1, "masters", "m/nope", 0, NULL);
    CHECK_FAILS(r, -ENOENT);
    CHECK(strstr(r->why, "staging/up/nope") != NULL);
    CHECK(!exists_rel("blobs/masters/m/nope"));
    CHECK_EQ_INT(tmp_entries(), 0);
    /* Names refused on either side; a lock mode S3 does not know. */
    CHECK_EQ_INT(blob_aio_copy(fs, NULL, "staging", "../x", -1, "masters", "y", 0, NULL,
                               &rec_new(home)->sink, NULL),
                 -EINVAL);
    CHECK_EQ_INT(blob_aio_copy(fs, NULL, "staging", "up/big", -1, "masters", "a//b", 0, NULL,
                               &rec_new(home)->sink, NULL),
                 -EINVAL);
    CHECK_EQ_INT(blob_aio_copy(fs, NULL, "staging", "up/big", -1, "masters", "y", 1, "FOREVER",
                               &rec_new(home)->sink, NULL),
                 -EINVAL);
}

TEST(fs_list)
{
    NEED(fs != NULL);
    const char *keys[] = {"ls/a/1.ts", "ls/a/2.ts", "ls/b.txt", "lsx/c"};
    for (size_t i = 0; i < 4; i++)
        CHECK_OK(put(fs, "previews", keys[i], seg2, sizeof(seg2), NULL, NULL));
    char got[4096];
    rec *r = list_of(fs, "previews", "ls/");
    CHECK_OK(r);
    keys_of(r, got, sizeof(got));
    CHECK_EQ_STR(got, "ls/a/1.ts\nls/a/2.ts\nls/b.txt\n");
    r = list_of(fs, "previews", "ls/a/");
    CHECK_OK(r);
    keys_of(r, got, sizeof(got));
    CHECK_EQ_STR(got, "ls/a/1.ts\nls/a/2.ts\n");
    /* A prefix that is not a folder: any key that begins with it, as on S3. */
    r = list_of(fs, "previews", "ls");
    CHECK_OK(r);
    keys_of(r, got, sizeof(got));
    CHECK_EQ_STR(got, "ls/a/1.ts\nls/a/2.ts\nls/b.txt\nlsx/c\n");
    /* Nothing under it, or a bucket never written: no key, no failure. */
    r = list_of(fs, "previews", "nothing/here/");
    CHECK_OK(r);
    CHECK_EQ_INT(r->datas, 0);
    r = list_of(fs, "never-written", NULL);
    CHECK_OK(r);
    CHECK_EQ_INT(r->datas, 0);
    /* Names refused before anything starts. */
    CHECK_EQ_INT(blob_aio_list(fs, NULL, "previews", "../", &rec_new(home)->sink, NULL), -EINVAL);
    CHECK_EQ_INT(blob_aio_list(fs, NULL, "previews", "a//", &rec_new(home)->sink, NULL), -EINVAL);
    CHECK_EQ_INT(blob_aio_list(fs, NULL, "previews", "/", &rec_new(home)->sink, NULL), -EINVAL);
    CHECK_EQ_INT(blob_aio_list(fs, NULL, "Bad_Bucket", "", &rec_new(home)->sink, NULL), -EINVAL);
    /* More keys than one chunk holds (64 KiB): each key once, whole, across the chunks. */
    char key[900], want[90][900];
    memset(key, 'k', sizeof(key));
    for (int i = 0; i < 90; i++) {
        snprintf(key, sizeof(key), "ls/many/%0200d/%0200d/%0200d/%0200d/%02d", 0, 1, 2, 3, i);
        snprintf(want[i], sizeof(want[i]), "%s", key);
        CHECK_OK(put(fs, "previews", key, seg2, 10, NULL, NULL));
    }
    r = list_of(fs, "previews", "ls/many/");
    CHECK_OK(r);
    CHECK(r->datas >= 2);
    size_t n = 0;
    int match = 1;
    for (size_t at = 0; at < r->len; at += strlen((const char *)r->data + at) + 1, n++)
        match &= n < 90 && strncmp((const char *)r->data + at, "ls/many/", 8) == 0;
    CHECK_EQ_INT(n, 90);
    CHECK(match);
    keys_of(r, got, sizeof(got)); /* sorted: the first is key 00 */
    CHECK(strncmp(got, want[0], strlen(want[0])) == 0);
    /* From a loop actor on another loop: the keys and the end come on that loop. */
    job j = {.op = J_LIST, .s = fs, .bucket = "previews", .key = "ls/a/"};
    j.r = rec_new(loop2);
    on_actor(loop2_actor, &j);
    CHECK_OK(j.r);
    keys_of(j.r, got, sizeof(got));
    CHECK_EQ_STR(got, "ls/a/1.ts\nls/a/2.ts\n");
}

TEST(fs_no_uploads_no_retention)
{
    NEED(fs != NULL);
    CHECK_EQ_INT(blob_aio_has_uploads(fs), 0);
    rec *r = rec_new(home);
    CHECK_EQ_INT(blob_aio_upload_start(fs, NULL, "staging", "k", NULL, &r->sink, NULL), -ENOTSUP);
    s3_part p = {.number = 1, .etag = "\"x\""};
    CHECK_EQ_INT(blob_aio_upload_complete(fs, NULL, "staging", "k", "u", &p, 1, &r->sink, NULL),
                 -ENOTSUP);
    CHECK_EQ_INT(blob_aio_upload_abort(fs, NULL, "staging", "k", "u", &r->sink, NULL), -ENOTSUP);
    /* Nothing is retained on fs: the object is deleted, and head is not called. */
    r = put(fs, "masters", "gone/soon", seg, sizeof(seg), NULL, NULL);
    CHECK_OK(r);
    r = del_kept(fs, "masters", "gone/soon");
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 0);
    CHECK(!exists_rel("blobs/masters/gone/soon"));
}

TEST(fs_close)
{
    if (loop2 != NULL)
        loop_stop(loop2, rd_now_ns() + 1000 * MS);
    if (home != NULL)
        loop_stop(home, rd_now_ns() + 1000 * MS);
    if (loop2 != NULL)
        loop_join(loop2);
    if (home != NULL)
        loop_join(home);
    check_no_late_callbacks(0);
    blob_aio_close(fs);
    blob_aio_close(NULL);
    actor_free_all();
    loop_destroy(loop2);
    loop_destroy(home);
    if (data_dir[0])
        CHECK_EQ_INT(tmp_entries(), 0);
    if (top[0])
        rm_rf(top);
    fs = NULL;
    home = loop2 = NULL;
}

/* ---- s3: a fake peer -------------------------------------------------------------------- */

typedef struct seen {
    char method[8];
    char path[256];
    char type[128];
    char cache[128];
    char range[64];
    char copy_source[256];
    char copy_range[64];
    char lock_mode[32];
    size_t body;
} seen;

#define NSEEN 256
static seen peer_seen[NSEEN];
static int npeer; /* under peer_mu */
static pthread_mutex_t peer_mu = PTHREAD_MUTEX_INITIALIZER;

#define PEER_BUF 65536

static void header_value(const char *b, const char *end, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *p = b; p < end; p++) {
        if ((p == b || p[-1] == '\n') && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = v;
            while (e < end && *e != '\r' && *e != '\n')
                e++;
            snprintf(out, cap, "%.*s", (int)(e - v), v);
            return;
        }
    }
}

static int reply(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

static const char HELLO[] = "hello";

/* A 200 with an XML body. */
static int reply_xml(int fd, const char *xml)
{
    char out[1024];
    snprintf(out, sizeof(out),
             "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(xml), xml);
    return reply(fd, out);
}

static int reply_error(int fd, int status, const char *reason, const char *code)
{
    char out[1024], xml[256];
    snprintf(xml, sizeof(xml), "<Error><Code>%s</Code><Message>x</Message></Error>", code);
    snprintf(out, sizeof(out),
             "HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %zu\r\n\r\n%s",
             status, reason, strlen(xml), xml);
    return reply(fd, out);
}

/* The multipart calls: an upload "up-1" made, parts taken (each part's ETag "p<n>", a part
 * copy's in a CopyPartResult; part 2 of a key with "failpart" in it refused), completed into
 * "whole", aborted; an upload of a key with "gone" in it is no more (NoSuchUpload). -1 when
 * `q` is none of them. */
static int answer_multipart(int fd, const seen *q)
{
    const char *part = strstr(q->path, "partNumber=");
    int upload = strstr(q->path, "uploadId=") != NULL;
    if (strcmp(q->method, "POST") == 0 && strstr(q->path, "?uploads") != NULL)
        return reply_xml(fd, "<InitiateMultipartUploadResult><UploadId>up-1</UploadId>"
                             "</InitiateMultipartUploadResult>");
    if (upload && strstr(q->path, "gone") != NULL)
        return reply_error(fd, 404, "Not Found", "NoSuchUpload");
    if (strcmp(q->method, "POST") == 0 && upload)
        return reply_xml(fd, "<CompleteMultipartUploadResult><ETag>\"whole\"</ETag>"
                             "</CompleteMultipartUploadResult>");
    if (strcmp(q->method, "DELETE") == 0 && upload)
        return reply(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    if (strcmp(q->method, "PUT") == 0 && part != NULL) {
        int n = atoi(part + 11);
        if (n == 2 && strstr(q->path, "failpart") != NULL)
            return reply_error(fd, 403, "Forbidden", "AccessDenied");
        char out[256];
        if (q->copy_source[0]) {
            snprintf(out, sizeof(out), "<CopyPartResult><ETag>\"c%d\"</ETag></CopyPartResult>", n);
            return reply_xml(fd, out);
        }
        snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nETag: \"p%d\"\r\nContent-Length: 0\r\n\r\n",
                 n);
        return reply(fd, out);
    }
    if (strcmp(q->method, "PUT") == 0 && strstr(q->path, "?retention") != NULL)
        return reply(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    if (strcmp(q->method, "PUT") == 0 && q->copy_source[0])
        return reply_xml(fd, "<CopyObjectResult><ETag>\"copied\"</ETag></CopyObjectResult>");
    return -1;
}

/* One request: its answer. */
static int answer(int fd, const seen *q)
{
    char out[1024];
    int m = answer_multipart(fd, q);
    if (m != -1)
        return m;
    if (strcmp(q->method, "GET") == 0 && strstr(q->path, "list-type=2") != NULL) {
        if (strstr(q->path, "continuation-token=tok2") == NULL)
            return reply_xml(fd, "<ListBucketResult><IsTruncated>true</IsTruncated>"
                                 "<Contents><Key>a1/x</Key><Size>1</Size></Contents>"
                                 "<Contents><Key>a1/y</Key><Size>2</Size></Contents>"
                                 "<NextContinuationToken>tok2</NextContinuationToken>"
                                 "</ListBucketResult>");
        return reply_xml(fd, "<ListBucketResult><IsTruncated>false</IsTruncated>"
                             "<Contents><Key>a1/z&amp;w</Key><Size>3</Size></Contents>"
                             "</ListBucketResult>");
    }
    if (strcmp(q->method, "DELETE") == 0)
        return reply(fd, "HTTP/1.1 204 No Content\r\n\r\n"); /* also when missing, as S3 */
    if (strcmp(q->method, "HEAD") == 0 && strstr(q->path, "kept") != NULL)
        return reply(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"abc\"\r\n"
                         "x-amz-version-id: v7\r\n"
                         "x-amz-object-lock-retain-until-date: 2099-01-01T00:00:00.000Z\r\n\r\n");
    if (strcmp(q->method, "HEAD") == 0 && strstr(q->path, "versioned") != NULL)
        return reply(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"abc\"\r\n"
                         "x-amz-version-id: v7\r\n"
                         "x-amz-object-lock-retain-until-date: 2001-01-01T00:00:00.000Z\r\n\r\n");
    if (strstr(q->path, "missing") != NULL) {
        if (strcmp(q->method, "HEAD") == 0)
            return reply(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        static const char xml[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                  "<Error><Code>NoSuchKey</Code><Message>x</Message></Error>";
        snprintf(out, sizeof(out),
                 "HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 sizeof(xml) - 1, xml);
        return reply(fd, out);
    }
    if (strcmp(q->method, "PUT") == 0)
        return reply(fd, "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 0\r\n\r\n");
    if (strcmp(q->method, "HEAD") == 0)
        return reply(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"abc\"\r\n"
                         "Content-Type: text/plain\r\n"
                         "Last-Modified: Wed, 01 Jan 2025 00:00:00 GMT\r\n\r\n");
    if (strcmp(q->method, "GET") == 0) {
        unsigned long long a = 0, b = 4;
        if (q->range[0]) {
            if (sscanf(q->range, "bytes=%llu-%llu", &a, &b) < 1)
                a = 0;
            if (b > 4)
                b = 4;
            if (a >= 5) {
                static const char xml[] =
                    "<Error><Code>InvalidRange</Code><Message>x</Message></Error>";
                snprintf(out, sizeof(out),
                         "HTTP/1.1 416 Requested Range Not Satisfiable\r\n"
                         "Content-Range: bytes */5\r\nContent-Type: application/xml\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         sizeof(xml) - 1, xml);
                return reply(fd, out);
            }
            snprintf(out, sizeof(out),
                     "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %llu-%llu/5\r\n"
                     "Content-Length: %llu\r\nETag: \"abc\"\r\nContent-Type: text/plain\r\n\r\n"
                     "%.*s",
                     a, b, b - a + 1, (int)(b - a + 1), HELLO + a);
            return reply(fd, out);
        }
        return reply(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"abc\"\r\n"
                         "Content-Type: text/plain\r\n\r\nhello");
    }
    return reply(fd, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
}

/* One connection, kept alive: reads each request (headers, then Content-Length bytes), records
 * it, answers it. */
static void *peer_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *b = malloc(PEER_BUF);
    size_t have = 0, head, len;
    while ((len = request_read(fd, b, PEER_BUF, &have, &head)) > 0) {
        const char *end = b + head - 4;
        size_t body = len - head;
        seen q = {.body = body};
        sscanf(b, "%7s %255s", q.method, q.path);
        header_value(b, end, "content-type", q.type, sizeof(q.type));
        header_value(b, end, "cache-control", q.cache, sizeof(q.cache));
        header_value(b, end, "range", q.range, sizeof(q.range));
        header_value(b, end, "x-amz-copy-source", q.copy_source, sizeof(q.copy_source));
        header_value(b, end, "x-amz-copy-source-range", q.copy_range, sizeof(q.copy_range));
        header_value(b, end, "x-amz-object-lock-mode", q.lock_mode, sizeof(q.lock_mode));
        pthread_mutex_lock(&peer_mu);
        if (npeer < NSEEN)
            peer_seen[npeer++] = q;
        pthread_mutex_unlock(&peer_mu);
        if (answer(fd, &q) < 0)
            break;
        request_done(b, &have, len);
    }
    free(b);
    close(fd);
    return NULL;
}

static int listen_fd = -1;

static void *peer(void *arg)
{
    (void)arg;
    accept_each(listen_fd, peer_conn);
    return NULL;
}

static int peer_count(void)
{
    pthread_mutex_lock(&peer_mu);
    int n = npeer;
    pthread_mutex_unlock(&peer_mu);
    return n;
}

/* The last request the peer saw whose method is `method` (a copy), or an empty one. */
static seen peer_last(const char *method)
{
    seen q = {0};
    pthread_mutex_lock(&peer_mu);
    for (int i = npeer - 1; i >= 0; i--)
        if (strcmp(peer_seen[i].method, method) == 0) {
            q = peer_seen[i];
            break;
        }
    pthread_mutex_unlock(&peer_mu);
    return q;
}

/* The requests the peer saw from index `from` on, `method` first, as "METHOD path" lines into
 * out (for a whole sequence compared at once). */
static void peer_since(int from, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    pthread_mutex_lock(&peer_mu);
    for (int i = from; i < npeer && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s %s\n", peer_seen[i].method, peer_seen[i].path);
    pthread_mutex_unlock(&peer_mu);
}

/* ---- s3 --------------------------------------------------------------------------------- */

static blob_aio *s3;
static rd_loop *s3_loops[2];
static rd_actor *s3_actor; /* on s3_loops[1] */
static int s3_recs_from;

TEST(s3_open)
{
    s3_recs_from = nrecs;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    NEED(bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    NEED(listen(listen_fd, 16) == 0);
    NEED(getsockname(listen_fd, (struct sockaddr *)&a, &alen) == 0);
    pthread_t pt;
    NEED(pthread_create(&pt, NULL, peer, NULL) == 0);
    pthread_detach(pt);

    for (int i = 0; i < 2; i++) {
        NEED(loop_create(&s3_loops[i], i, -1) == 0);
        NEED(loop_start(s3_loops[i]) == 0);
    }
    home = s3_loops[0];
    char endpoint[64], err[256] = "";
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", ntohs(a.sin_port));
    s3_config sc = {.endpoint = endpoint,
                    .region = "us-east-1",
                    .access_key_id = "a",
                    .secret_access_key = "b",
                    .max_attempts = 2};
    int r = blob_aio_open_s3(&sc, s3_loops, 2, &s3, err, sizeof(err));
    if (r != 0)
        printf("  blob_aio_open_s3: %d %s\n", r, err);
    NEED(r == 0 && s3 != NULL);
    CHECK_EQ_STR(blob_aio_kind(s3), "s3");
    s3_client *c0 = blob_aio_client(s3, s3_loops[0]);
    s3_client *c1 = blob_aio_client(s3, s3_loops[1]);
    CHECK(c0 != NULL);
    CHECK(c1 != NULL);
    CHECK(c0 != c1); /* one client per loop */
    rd_loop *stranger;
    if (loop_create(&stranger, 7, -1) == 0) {
        CHECK(blob_aio_client(s3, stranger) == NULL);
        loop_destroy(stranger);
    }
    CHECK_EQ_INT(actor_spawn(s3_loops[1], &starter_def, NULL, &s3_actor), 0);
}

TEST(s3_put)
{
    NEED(s3 != NULL);
    rec *r = put(s3, "previews", "k1", HELLO, 5, "video/mp4", "max-age=60");
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->heads_at_done, 1);
    CHECK_EQ_INT(r->meta.size, 5);
    CHECK_EQ_STR(r->meta.etag, "\"abc\"");
    seen q = peer_last("PUT");
    CHECK_EQ_STR(q.path, "/previews/k1"); /* path style: bucket, then key */
    CHECK_EQ_STR(q.type, "video/mp4");
    CHECK_EQ_STR(q.cache, "max-age=60");
    CHECK_EQ_INT(q.body, 5);

    /* No content type: application/octet-stream; no Cache-Control. */
    r = put(s3, "previews", "a1/k2.bin", HELLO, 5, NULL, NULL);
    CHECK_OK(r);
    q = peer_last("PUT");
    CHECK_EQ_STR(q.path, "/previews/a1/k2.bin");
    CHECK_EQ_STR(q.type, "application/octet-stream");
    CHECK_EQ_STR(q.cache, "");
}

TEST(s3_head)
{
    NEED(s3 != NULL);
    rec *r = head_of(s3, "previews", "k1");
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->heads_at_done, 1);
    CHECK_EQ_INT(r->datas, 0);
    CHECK_EQ_INT(r->meta.size, 5);
    CHECK_EQ_STR(r->meta.etag, "\"abc\"");
    CHECK_EQ_STR(r->meta.content_type, "text/plain");
    seen q = peer_last("HEAD");
    CHECK_EQ_STR(q.path, "/previews/k1");

    r = head_of(s3, "previews", "missing");
    CHECK_FAILS(r, -ENOENT);
    CHECK_EQ_INT(r->heads, 0);
}

TEST(s3_get)
{
    NEED(s3 != NULL);
    rec *r = get(s3, "previews", "k1", 0, 0);
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->head_after_data, 0);
    CHECK_EQ_INT(r->meta.size, 5);
    CHECK_EQ_STR(r->meta.etag, "\"abc\""); /* a GET on S3 has them */
    CHECK_EQ_STR(r->meta.content_type, "text/plain");
    CHECK_EQ_INT(r->len, 5);
    CHECK(r->len == 5 && memcmp(r->data, "hello", 5) == 0);
    seen q = peer_last("GET");
    CHECK_EQ_STR(q.path, "/previews/k1");
    CHECK_EQ_STR(q.range, "");

    r = get(s3, "previews", "k1", 1, 3);
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.size, 5);
    CHECK_EQ_INT(r->len, 3);
    CHECK(r->len == 3 && memcmp(r->data, "ell", 3) == 0);
    q = peer_last("GET");
    CHECK_EQ_STR(q.range, "bytes=1-3");

    r = get(s3, "previews", "k1", 5, 0);
    CHECK_FAILS(r, -ERANGE);

    r = get(s3, "previews", "missing", 0, 0);
    CHECK_FAILS(r, -ENOENT);
    CHECK_EQ_INT(r->heads, 0);
    q = peer_last("GET");
    CHECK_EQ_STR(q.path, "/previews/missing");
}

TEST(s3_delete)
{
    NEED(s3 != NULL);
    rec *r = del(s3, "previews", "k1");
    CHECK_OK(r);
    seen q = peer_last("DELETE");
    CHECK_EQ_STR(q.path, "/previews/k1");
    r = del(s3, "previews", "missing");
    CHECK_OK(r);
}

/* Empty names, and keys with ".." segments, which would leave their bucket once a server or
 * proxy normalises the path: refused before anything is sent (one rule for names on both
 * backends, src/blob/fs.h's). */
TEST(s3_refused_names)
{
    NEED(s3 != NULL);
    int before = peer_count();
    static const struct {
        const char *bucket, *key;
    } bad[] = {{"previews", ""}, {"", "x"}, {"previews", "../x"}, {"previews", "a/../../x"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_REFUSED(put(s3, bad[i].bucket, bad[i].key, "evil", 4, NULL, NULL), "PUT", i);
        CHECK_REFUSED(get(s3, bad[i].bucket, bad[i].key, 0, 0), "GET", i);
        CHECK_REFUSED(head_of(s3, bad[i].bucket, bad[i].key), "HEAD", i);
        CHECK_REFUSED(del(s3, bad[i].bucket, bad[i].key), "DELETE", i);
    }
    CHECK_EQ_INT(peer_count(), before); /* nothing went on the wire */
}

/* The second loop's actor: requests on its own client, callbacks on its loop. */
TEST(s3_loop_actor)
{
    NEED(s3 != NULL && s3_actor != NULL);
    job g = {.op = J_GET, .s = s3, .bucket = "previews", .key = "k1"};
    g.r = rec_new(s3_loops[1]);
    on_actor(s3_actor, &g);
    CHECK_OK(g.r);
    CHECK_EQ_INT(g.r->meta.size, 5);
    CHECK(g.r->len == 5 && memcmp(g.r->data, "hello", 5) == 0);

    static const char body[] = "from the loop";
    job p = {.op = J_PUT,
             .s = s3,
             .bucket = "previews",
             .key = "k3",
             .body = body,
             .len = sizeof(body) - 1,
             .type = "text/plain"};
    p.r = rec_new(s3_loops[1]);
    on_actor(s3_actor, &p);
    CHECK_OK(p.r);
    CHECK_EQ_INT(p.r->meta.size, sizeof(body) - 1);
    CHECK_EQ_STR(p.r->meta.etag, "\"abc\"");
    seen q = peer_last("PUT");
    CHECK_EQ_STR(q.path, "/previews/k3");
    CHECK_EQ_INT(q.body, sizeof(body) - 1);

    job m = {.op = J_GET, .s = s3, .bucket = "previews", .key = "missing"};
    m.r = rec_new(s3_loops[1]);
    on_actor(s3_actor, &m);
    CHECK_FAILS(m.r, -ENOENT);
}

TEST(s3_cancel)
{
    NEED(s3 != NULL && s3_actor != NULL);
    job g = {.op = J_GET, .cancel = 1, .s = s3, .bucket = "previews", .key = "k1"};
    g.r = rec_new(s3_loops[1]);
    on_actor(s3_actor, &g);
    CHECK_EQ_INT(g.r->start, 0);
    check_quiet(g.r);
    job h = {.op = J_HEAD, .cancel = 1, .s = s3, .bucket = "previews", .key = "k1"};
    h.r = rec_new(s3_loops[1]);
    on_actor(s3_actor, &h);
    CHECK_EQ_INT(h.r->start, 0);
    check_quiet(h.r);
    /* From the sink's head callback: no data, no done. */
    job c = {.op = J_GET, .s = s3, .bucket = "previews", .key = "k1"};
    c.r = rec_new(s3_loops[1]);
    c.r->cancel_on_head = 1;
    on_actor(s3_actor, &c);
    CHECK_EQ_INT(c.r->start, 0);
    sleep_ms(300);
    pthread_mutex_lock(&mu);
    CHECK_EQ_INT(c.r->heads, 1);
    CHECK_EQ_INT(c.r->datas, 0);
    CHECK_EQ_INT(c.r->dones, 0);
    pthread_mutex_unlock(&mu);
}

TEST(s3_put_fd)
{
    NEED(s3 != NULL);
    enum { LEN = 40000 };
    unsigned char *p = malloc(LEN);
    for (size_t i = 0; i < LEN; i++)
        p[i] = (unsigned char)(i * 31);
    int fd = temp_file(p, LEN);
    free(p);
    NEED(fd >= 0);
    /* Below the threshold: one PutObject with the file's bytes. */
    rec *r = put_fd(s3, "masters", "one.mp4", fd, LEN, "video/mp4");
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.size, LEN);
    CHECK_EQ_STR(r->meta.content_type, "video/mp4");
    seen q = peer_last("PUT");
    CHECK_EQ_STR(q.path, "/masters/one.mp4");
    CHECK_EQ_INT(q.body, LEN);

    /* Above it: CreateMultipartUpload, the parts in order (the last short), Complete. */
    blob_aio_set_parts(s3, 1000, 16384);
    int from = peer_count();
    r = put_fd(s3, "masters", "parts.mp4", fd, LEN, "video/mp4");
    CHECK_OK(r);
    CHECK_EQ_INT(r->meta.size, LEN);
    CHECK_EQ_STR(r->meta.etag, "\"whole\"");
    char log[2048];
    peer_since(from, log, sizeof(log));
    CHECK_EQ_STR(log, "POST /masters/parts.mp4?uploads=\n"
                      "PUT /masters/parts.mp4?partNumber=1&uploadId=up-1\n"
                      "PUT /masters/parts.mp4?partNumber=2&uploadId=up-1\n"
                      "PUT /masters/parts.mp4?partNumber=3&uploadId=up-1\n"
                      "POST /masters/parts.mp4?uploadId=up-1\n");
    pthread_mutex_lock(&peer_mu);
    if (npeer >= 2) {
        CHECK_EQ_INT(peer_seen[npeer - 2].body, LEN - 2 * 16384);
        CHECK_EQ_INT(peer_seen[npeer - 3].body, 16384);
    }
    pthread_mutex_unlock(&peer_mu);

    /* A part refused: the upload is aborted, so no part is left behind; the refusal is said. */
    from = peer_count();
    r = put_fd(s3, "masters", "failpart.mp4", fd, LEN, NULL);
    CHECK_FAILS(r, -EACCES);
    peer_since(from, log, sizeof(log));
    CHECK_EQ_STR(log, "POST /masters/failpart.mp4?uploads=\n"
                      "PUT /masters/failpart.mp4?partNumber=1&uploadId=up-1\n"
                      "PUT /masters/failpart.mp4?partNumber=2&uploadId=up-1\n"
                      "DELETE /masters/failpart.mp4?uploadId=up-1\n");

    /* A part larger than any size (`reeld s3 multipart --part-size` takes what it is given):
     * one part, not a count that wrapped to none. */
    blob_aio_set_parts(s3, 1000, UINT64_MAX);
    from = peer_count();
    r = put_fd(s3, "masters", "onepart.mp4", fd, LEN, "video/mp4");
    CHECK_OK(r);
    peer_since(from, log, sizeof(log));
    CHECK_EQ_STR(log, "POST /masters/onepart.mp4?uploads=\n"
                      "PUT /masters/onepart.mp4?partNumber=1&uploadId=up-1\n"
                      "POST /masters/onepart.mp4?uploadId=up-1\n");
    blob_aio_set_parts(s3, BLOB_MULTIPART_MIN, BLOB_PART_SIZE);
    close(fd);
}

TEST(s3_copy)
{
    NEED(s3 != NULL);
    /* Size known and small: one CopyObject with the retention asked, then a HEAD of the copy. */
    int from = peer_count();
    rec *r = copy_of(s3, "staging", "up/a", 5, "masters", "m/a", 30, "GOVERNANCE");
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->meta.size, 5);
    CHECK_EQ_STR(r->meta.content_type, "text/plain");
    char log[2048];
    peer_since(from, log, sizeof(log));
    CHECK_EQ_STR(log, "PUT /masters/m/a\nHEAD /masters/m/a\n");
    seen q = peer_last("PUT");
    CHECK_EQ_STR(q.copy_source, "/staging/up/a");
    CHECK_EQ_STR(q.lock_mode, "GOVERNANCE");

    /* Size unknown: asked first. */
    from = peer_count();
    r = copy_of(s3, "staging", "up/a", -1, "masters", "m/b", 0, NULL);
    CHECK_OK(r);
    peer_since(from, log, sizeof(log));
    CHECK_EQ_STR(log, "HEAD /staging/up/a\nPUT /masters/m/b\nHEAD /masters/m/b\n");
    q = peer_last("PUT");
    CHECK_EQ_STR(q.lock_mode, "");

    /* Above the copy part size (12 MiB in parts of 5 MiB): the source's type asked (an upload
     * is not a CopyObject: it keeps no metadata of the source's unless told), UploadPartCopy
     * ranges, Complete, the retention set again on the object, a HEAD of it. */
    blob_aio_set_copy_parts(s3, 5u << 20);
    from = peer_count();
    r = copy_of(s3, "staging", "up/a", 12 << 20, "masters", "m/c", 1, NULL);
    CHECK_OK(r);
    peer_since(from, log, sizeof(log));
    CHECK_EQ_STR(log, "HEAD /staging/up/a\n"
                      "POST /masters/m/c?uploads=\n"
                      "PUT /masters/m/c?partNumber=1&uploadId=up-1\n"
                      "PUT /masters/m/c?partNumber=2&uploadId=up-1\n"
                      "PUT /masters/m/c?partNumber=3&uploadId=up-1\n"
                      "POST /masters/m/c?uploadId=up-1\n"
                      "PUT /masters/m/c?retention=\n"
                      "HEAD /masters/m/c\n");
    pthread_mutex_lock(&peer_mu);
    if (npeer >= 7) {
        CHECK_EQ_STR(peer_seen[npeer - 7].lock_mode, "COMPLIANCE");
        CHECK_EQ_STR(peer_seen[npeer - 7].type, "text/plain"); /* the source's */
        CHECK_EQ_STR(peer_seen[npeer - 6].copy_range, "bytes=0-5242879");
        CHECK_EQ_STR(peer_seen[npeer - 4].copy_range, "bytes=10485760-12582911");
        CHECK_EQ_STR(peer_seen[npeer - 4].copy_source, "/staging/up/a");
    }
    pthread_mutex_unlock(&peer_mu);
    /* A part refused: aborted. */
    from = peer_count();
    r = copy_of(s3, "staging", "up/a", 12 << 20, "masters", "failpart", 0, NULL);
    CHECK_FAILS(r, -EACCES);
    peer_since(from, log, sizeof(log));
    CHECK(strstr(log, "DELETE /masters/failpart?uploadId=up-1\n") != NULL);
    CHECK(strstr(log, "POST /masters/failpart?uploadId") == NULL);
    blob_aio_set_copy_parts(s3, BLOB_COPY_MAX);
    /* A missing source. */
    r = copy_of(s3, "staging", "missing", -1, "masters", "m/d", 0, NULL);
    CHECK_FAILS(r, -ENOENT);
}

TEST(s3_delete_unless_retained)
{
    NEED(s3 != NULL);
    /* Retained until 2099: left, and head says until when. */
    int from = peer_count();
    rec *r = del_kept(s3, "masters", "kept");
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 1);
    CHECK_EQ_INT(r->meta.retained_until, 4070908800); /* 2099-01-01 */
    char log[1024];
    peer_since(from, log, sizeof(log));
    CHECK_EQ_STR(log, "HEAD /masters/kept\n");
    /* Retention over: the current version deleted for good. */
    from = peer_count();
    r = del_kept(s3, "masters", "versioned");
    CHECK_OK(r);
    CHECK_EQ_INT(r->heads, 0);
    peer_since(from, log, sizeof(log));
    CHECK_EQ_STR(log, "HEAD /masters/versioned\nDELETE /masters/versioned?versionId=v7\n");
    r = del_kept(s3, "masters", "missing");
    CHECK_FAILS(r, -ENOENT);
}

TEST(s3_uploads)
{
    NEED(s3 != NULL);
    CHECK_EQ_INT(blob_aio_has_uploads(s3), 1);
    rec *r = rec_new(home);
    r->start = blob_aio_upload_start(s3, NULL, "staging", "u/1", "video/mp4", &r->sink, NULL);
    finish(r);
    CHECK_OK(r);
    CHECK_EQ_STR(r->meta.upload_id, "up-1");
    seen q = peer_last("POST");
    CHECK_EQ_STR(q.type, "video/mp4");
    s3_part parts[2] = {{1, "\"p1\""}, {2, "\"p2\""}};
    r = rec_new(home);
    r->start =
        blob_aio_upload_complete(s3, NULL, "staging", "u/1", "up-1", parts, 2, &r->sink, NULL);
    finish(r);
    CHECK_OK(r);
    CHECK_EQ_STR(r->meta.etag, "\"whole\"");
    CHECK_EQ_STR(peer_last("POST").path, "/staging/u/1?uploadId=up-1");
    r = rec_new(home);
    r->start =
        blob_aio_upload_complete(s3, NULL, "staging", "gone", "up-1", parts, 2, &r->sink, NULL);
    finish(r);
    CHECK_FAILS(r, -ENOENT);
    /* Aborted; one that is gone already is no error. */
    r = rec_new(home);
    r->start = blob_aio_upload_abort(s3, NULL, "staging", "u/1", "up-1", &r->sink, NULL);
    finish(r);
    CHECK_OK(r);
    CHECK_EQ_STR(peer_last("DELETE").path, "/staging/u/1?uploadId=up-1");
    r = rec_new(home);
    r->start = blob_aio_upload_abort(s3, NULL, "staging", "gone", "up-1", &r->sink, NULL);
    finish(r);
    CHECK_OK(r);
    /* What cannot be sent is refused at the start. */
    CHECK_EQ_INT(blob_aio_upload_complete(s3, NULL, "staging", "u/1", "up-1", parts, 0,
                                          &rec_new(home)->sink, NULL),
                 -EINVAL);
    CHECK_EQ_INT(blob_aio_upload_abort(s3, NULL, "staging", "u/1", "", &rec_new(home)->sink, NULL),
                 -EINVAL);
}

TEST(s3_list)
{
    NEED(s3 != NULL);
    int from = peer_count();
    rec *r = list_of(s3, "previews", "a1/");
    CHECK_OK(r);
    CHECK_EQ_INT(r->datas, 2); /* a page each */
    char got[256];
    keys_of(r, got, sizeof(got));
    CHECK_EQ_STR(got, "a1/x\na1/y\na1/z&w\n");
    char seq[1024];
    peer_since(from, seq, sizeof(seq));
    CHECK(strstr(seq, "prefix=a1%2F") != NULL);
    CHECK(strstr(seq, "max-keys=40") != NULL);
    CHECK(strstr(seq, "continuation-token=tok2") != NULL);
    CHECK_EQ_INT(blob_aio_list(s3, NULL, "previews", "../", &rec_new(home)->sink, NULL), -EINVAL);
}

TEST(s3_close)
{
    for (int i = 0; i < 2; i++)
        if (s3_loops[i] != NULL)
            loop_stop(s3_loops[i], rd_now_ns() + 1000 * MS);
    for (int i = 0; i < 2; i++)
        if (s3_loops[i] != NULL)
            loop_join(s3_loops[i]);
    check_no_late_callbacks(s3_recs_from);
    blob_aio_close(s3);
    actor_free_all();
    for (int i = 0; i < 2; i++)
        loop_destroy(s3_loops[i]);
    if (listen_fd >= 0) {
        shutdown(listen_fd, SHUT_RDWR);
        close(listen_fd);
    }
    s3 = NULL;
}

int main(void)
{
    RUN(fs_open);
    RUN(fs_put_nested);
    RUN(fs_put_empty_default_type);
    RUN(fs_head);
    RUN(fs_get);
    RUN(fs_overwrite);
    RUN(fs_get_watched);
    RUN(fs_loop_actor);
    RUN(blocking_face_refused_on_a_loop);
    RUN(fs_other_loop);
    RUN(fs_cancel);
    RUN(fs_cancel_from_callbacks);
    RUN(fs_many_at_once);
    RUN(fs_key_conflicts);
    RUN(fs_delete);
    RUN(fs_refused_names);
    RUN(fs_symlinks_not_followed);
    RUN(fs_symlinked_dir_not_written_through);
    RUN(fs_put_fd_streams_a_file);
    RUN(fs_put_fd_from_a_pipe_as_it_comes);
    RUN(fs_copy);
    RUN(fs_list);
    RUN(fs_no_uploads_no_retention);
    RUN(fs_close);

    RUN(s3_open);
    RUN(s3_put);
    RUN(s3_head);
    RUN(s3_get);
    RUN(s3_delete);
    RUN(s3_refused_names);
    RUN(s3_loop_actor);
    RUN(s3_cancel);
    RUN(s3_put_fd);
    RUN(s3_copy);
    RUN(s3_delete_unless_retained);
    RUN(s3_uploads);
    RUN(s3_list);
    RUN(s3_close);

    for (int i = 0; i < nrecs; i++)
        free(recs[i].data);
    free(big);
    metrics_free_all();
    return test_summary();
}
