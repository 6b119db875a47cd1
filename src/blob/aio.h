/* Object storage, asynchronous: the one interface through which actors reach objects, with
 * two backends, each answering on the asking loop like any rd_op.
 *
 *   fs  (embedded default, no S3_ENDPOINT): objects under DATA_DIR/blobs in the layout of
 *       src/blob/fs.h (its names' rules, its presigned URLs, its LIST's walk). Every file-system
 *       call goes through the loop's io_uring: openat2 beneath the tree (no symlink followed),
 *       read, write, fsync, renameat, mkdirat, unlinkat. A PUT writes a temp file, fsyncs it,
 *       writes the metadata the same way, then renames both into place (metadata
 *       first), so a reader sees the old object or the new one, never half of one.
 *   s3  (S3_ENDPOINT set): the S3 client (src/blob/s3.h) of the asking loop, one per loop the
 *       store was opened with; retries, resumption of a cut GET and the keep-alive pool are
 *       the client's. A request of several S3 calls (a file in parts, a copy in parts with
 *       its retention, a delete that asks for the retention first) runs them one after the
 *       other on that loop, and aborts an upload it leaves unfinished.
 *
 * The blocking face of this store, for the threads that must wait (an FFmpeg read callback,
 * the encoders, the commands), is src/blob/blob.h: the same requests, waited for, not a second
 * implementation.
 *
 * A request is started either on a loop thread, naming that loop (its callbacks run there), or
 * from any other thread with loop NULL: it then runs on the store's home loop (the first one it
 * was opened with) and its callbacks run there, so they must only hand the result back to the
 * asking thread (a thread actor: push it on a list and actor_wake itself).
 *
 * The sink: `head` once when the object is known (GET and HEAD: its size and modification
 * time, with the ETag and content type where the backend has them without another read: HEAD
 * always, a GET on S3; PUT, PUT from a file, COPY: what was stored, once it is durable; an
 * upload's start: its id; a delete unless retained: only when it kept the object, with until
 * when), `data` with each chunk of a
 * GET in order (a LIST's keys; the reference moves to the sink), then `done` once: 0, or
 * -ENOENT (no such
 * object), -EINVAL (a bucket or key refused), -ERANGE (a GET from past the end), -EACCES,
 * -EIO, another -errno, with one sentence in `why` ("" on success). After done the request is
 * over and the store frees it.
 *
 * owns:  per store, its backend (the fs directories' descriptors, or the S3 clients and trust
 *        anchors it made) and one small actor ("blob_aio") on the home loop that starts the
 *        requests of other threads; per request, its buffers and descriptors until done.
 * takes: MSG_BLOB_CALL (requests from threads that are not a loop).
 * never: blocks a loop (the MD5 of a PUT's body is taken on the asking thread, before the
 *        request reaches a loop); calls a sink after done or after cancel; lets a key leave
 *        its bucket (buckets and keys pass src/blob/fs.h's checks on both backends, and the fs
 *        backend follows no symlink, in reads, writes or deletes). */
#ifndef REELD_BLOB_AIO_H
#define REELD_BLOB_AIO_H

#include <stddef.h>
#include <stdint.h>

#include "src/blob/s3.h"
#include "src/rt/buf.h"
#include "src/rt/config.h"
#include "src/rt/loop.h"

typedef struct blob_aio blob_aio;
typedef struct blob_req blob_req;

typedef struct blob_meta {
    uint64_t size;
    int64_t mtime;          /* unix seconds (S3 GET: the fetch time: the client has no other) */
    uint64_t file_id;       /* fs GET and HEAD: the file's inode (every PUT stores a new one), so
                               ranged reads can tell one version from the next; 0 on S3 */
    char etag[80];          /* quoted, as S3 gives it; "" when the backend has not read it */
    char content_type[128]; /* "" when the backend has not read it */
    char upload_id[256];    /* blob_aio_upload_start: the upload's id (S3's UploadId) */
    int64_t retained_until; /* blob_aio_delete_unless_retained: kept under retention until
                               then (unix seconds); 0: deleted */
    int watch;              /* blob_aio_get_watched on fs: the inotify watch descriptor of the
                               object's file, added before a byte of it was read; 0: none */
} blob_meta;

typedef struct blob_sink blob_sink;
struct blob_sink {
    void (*head)(blob_sink *s, const blob_meta *m); /* may be NULL */
    void (*data)(blob_sink *s, rd_buf *chunk);      /* GET only */
    void (*done)(blob_sink *s, int err, const char *why);
};

/* The store of a process's settings: S3 (cfg->s3_endpoint set: a client per loop of `loops`,
 * made here, trusting the system CA bundle for https, each attempt of a request given
 * `timeout_ms`, 0: S3_DEFAULT_TIMEOUT) or fs under cfg->data_dir. Home loop: loops[0]. Not on
 * a loop thread (S3 endpoints are resolved here). 0, or -errno with one sentence in `err`. */
int blob_aio_open(const rd_config *cfg, rd_loop *const *loops, int nloops, uint32_t timeout_ms,
                  blob_aio **out, char *err, size_t errlen);
/* The fs backend under `data_dir` (its directories made when missing), home loop `home`. */
int blob_aio_open_fs(const char *data_dir, rd_loop *home, blob_aio **out, char *err, size_t errlen);
/* The s3 backend: one client per loop of `loops`, made with `sc` (its anchors borrowed: they
 * must outlive the store). */
int blob_aio_open_s3(const s3_config *sc, rd_loop *const *loops, int nloops, blob_aio **out,
                     char *err, size_t errlen);
/* The s3 backend over `client` (borrowed: it must outlive the store, which never destroys it),
 * the client of `loop`, the store's only and home loop. For a command that made its client. */
int blob_aio_open_s3_client(s3_client *client, rd_loop *loop, blob_aio **out);
/* After every loop it was opened with has stopped. NULL is a no-op. */
void blob_aio_close(blob_aio *s);
/* "fs" or "s3". */
const char *blob_aio_kind(const blob_aio *s);
/* The loop that runs the requests of threads that are not a loop. */
rd_loop *blob_aio_home(const blob_aio *s);
/* s3: the client of `loop` (for the blocking src/blob/blob.h over the same connections);
 * NULL on fs or for a loop the store was not opened with. */
s3_client *blob_aio_client(const blob_aio *s, const rd_loop *loop);

/* Each starts one request. `loop`: the calling thread's loop, or NULL from a thread that is
 * not a loop. 0 with *out set (when out is not NULL), or -errno when it could not start (a name
 * refused, no memory, the home actor's mailbox full or stopped): then no callback follows.
 * Strings are copied; a PUT's body is borrowed until done. */

/* Bytes off .. off+len-1 of bucket/key (len 0: to the end). */
int blob_aio_get(blob_aio *s, rd_loop *loop, const char *bucket, const char *key, uint64_t off,
                 uint64_t len, blob_sink *sink, blob_req **out);
/* All of bucket/key, and where the backend can (blob_aio_watches), a watch on its file in the
 * inotify instance `inotify_fd` (the caller's), added between the open and the first read:
 * its descriptor is the head's `watch` (0 when none could be added). From then on a write to
 * the file, its truncation, its replacement by a rename, its removal or its move each raise an
 * event on that watch, so the caller may keep what it read until it hears one. The watch is the
 * caller's to remove (inotify_rm_watch). Not seen: writes through a shared mapping, and a
 * directory above the object renamed (the store renames files only). */
int blob_aio_get_watched(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                         int inotify_fd, blob_sink *sink, blob_req **out);
/* 1 when blob_aio_get_watched adds watches (fs), 0 when it never does: s3, and fs on a network
 * or FUSE file system (NFS, SMB, Ceph, 9p, ...), whose files another machine or a user-space
 * server may change without an event from this kernel. */
int blob_aio_watches(const blob_aio *s);
int blob_aio_head(blob_aio *s, rd_loop *loop, const char *bucket, const char *key, blob_sink *sink,
                  blob_req **out);
/* Stores body[0..len) as bucket/key with its content type (NULL: application/octet-stream)
 * and, on S3, Cache-Control (NULL: none; the fs backend keeps none). */
int blob_aio_put(blob_aio *s, rd_loop *loop, const char *bucket, const char *key, const void *body,
                 size_t len, const char *content_type, const char *cache_control, blob_sink *sink,
                 blob_req **out);
/* Deleting what is not there succeeds, as on S3. */
int blob_aio_delete(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                    blob_sink *sink, blob_req **out);

/* Stores the first `len` bytes of the file `fd` (borrowed until done, read from offset 0 as
 * the request goes: nothing is read into memory whole) as bucket/key. fs: `fd` may be a pipe,
 * read as its bytes come (a body arriving over HTTP), and ending before `len` bytes fails the
 * request with nothing stored. s3: one PutObject, or
 * above the store's threshold (blob_aio_set_parts) a multipart upload in parts, aborted when a
 * part fails so none is left behind; fs: through a temp file, as blob_aio_put. `head` tells
 * the size, ETag and content type stored. */
#define BLOB_MULTIPART_MIN (64ull << 20)
#define BLOB_PART_SIZE     (16ull << 20)
#define BLOB_COPY_MAX      (5ull << 30) /* the largest CopyObject S3 takes */
int blob_aio_put_fd(blob_aio *s, rd_loop *loop, const char *bucket, const char *key, int fd,
                    uint64_t len, const char *content_type, blob_sink *sink, blob_req **out);
/* Copies src to dst, with its content type. `lock_days` > 0 asks S3 for retention that long in
 * `lock_mode` ("GOVERNANCE", or NULL for COMPLIANCE); the fs backend has no retention and
 * ignores both. `src_size`: the source's size when the caller has just read it, else -1 (then
 * it is asked for): above the store's copy part size (blob_aio_set_copy_parts; most and
 * default 5 GiB, what S3's CopyObject takes) the copy is a multipart upload of UploadPartCopy
 * parts, aborted when one fails. `head` tells what the copy is (S3: a HEAD of it). */
int blob_aio_copy(blob_aio *s, rd_loop *loop, const char *src_bucket, const char *src_key,
                  int64_t src_size, const char *dst_bucket, const char *dst_key, int lock_days,
                  const char *lock_mode, blob_sink *sink, blob_req **out);
/* Deletes bucket/key for good unless it is under retention: on S3 the current version is
 * named (in a versioned bucket a plain delete would only hide it). A retained object is left,
 * and `head` (only then) says until when in retained_until. On fs: blob_aio_delete. */
int blob_aio_delete_unless_retained(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                                    blob_sink *sink, blob_req **out);

/* Lists the keys of `bucket` that begin with `prefix` (NULL or "": every key; one that ends
 * with '/' names a folder): `data` gets them a page at a time, each key followed by a NUL
 * byte, then `done`: 0 (also when none matched), -ENOENT (S3: no such bucket) or the failure. On S3
 * in pages of ListObjectsV2 (BLOB_LIST_PAGE keys each, what the client keeps of a response),
 * in S3's order; on fs in no particular order, the walk of the directories on the way to the
 * prefix and under it done on a thread of the request's own (io_uring reads no directory, and
 * a loop never blocks), handed back to the loop when it ends. */
#define BLOB_LIST_PAGE 40
int blob_aio_list(blob_aio *s, rd_loop *loop, const char *bucket, const char *prefix,
                  blob_sink *sink, blob_req **out);

/* Multipart uploads made by clients (the API hands out presigned part URLs between start and
 * complete). Only the s3 backend has them: blob_aio_has_uploads says so, and on fs the three
 * calls refuse to start with -ENOTSUP. Start: `head` gives the upload id. Complete: from
 * `parts` in order (borrowed until done); -ENOENT when the upload is gone (completed or
 * aborted already). Abort: an upload that is gone already is not an error. */
int blob_aio_has_uploads(const blob_aio *s);
int blob_aio_upload_start(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                          const char *content_type, blob_sink *sink, blob_req **out);
int blob_aio_upload_complete(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                             const char *upload_id, const s3_part *parts, size_t nparts,
                             blob_sink *sink, blob_req **out);
int blob_aio_upload_abort(blob_aio *s, rd_loop *loop, const char *bucket, const char *key,
                          const char *upload_id, blob_sink *sink, blob_req **out);

/* s3: files of more than `threshold` bytes go up in parts of `part_size` (S3 refuses, at
 * completion, a part under 5 MiB but the last: the callers' settings are checked for that).
 * Defaults: BLOB_MULTIPART_MIN, BLOB_PART_SIZE. Before the first request. */
void blob_aio_set_parts(blob_aio *s, uint64_t threshold, uint64_t part_size);
/* s3: copies of more than `part_max` bytes (clamped to 5 MiB .. BLOB_COPY_MAX) go as
 * UploadPartCopy parts of that size. Before the first request. */
void blob_aio_set_copy_parts(blob_aio *s, uint64_t part_max);

/* On the request's loop thread, before done: no callback follows. A GET or HEAD stops at its
 * next step (the fs backend also cancels the I/O in flight, so a stuck open ends now); every
 * other request runs to its end unseen (a PUT's body, a file's descriptor and a completion's
 * parts must stay valid until then: cancel only those whose are the store's or static). The store
 * frees the request when its I/O ends. */
void blob_aio_cancel(blob_req *r);

#endif
