/* The embedded blob backend: objects as files under DATA_DIR/blobs/{bucket}/{key}, and what
 * reeld needs to answer presigned PUT/GET/HEAD for them under /blob/{bucket}/{key}.
 *
 * owns:  DATA_DIR/blobs/ (the objects), DATA_DIR/blobs.meta/ (per object: its ETag and content
 *        type, one line each, same relative path), DATA_DIR/blobs.tmp/ (objects being written:
 *        a temp file is renamed into place once complete, so a reader sees the old object or
 *        the new one, never half of one). A blobfs_writer owns its temp file until commit or
 *        abort.
 * never: lets a key leave DATA_DIR/blobs: keys are checked by blobfs_valid_key before any path
 *        is built, and again after percent-decoding; follows a symlink inside the tree (reads
 *        open with openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, writes and deletes work in
 *        the object's directory opened the same way); logs a signature or a secret.
 *
 * The layout is shared with the asynchronous fs backend (src/blob/aio_fs.c), which is how
 * every other part of reeld reaches these objects. What stays here, blocking, is what the blob
 * server's thread streams (a writer for a presigned PUT's body as it arrives, a reader for a
 * GET), the names' checks, the presigned URLs' check, and a walk of a bucket's directories
 * (io_uring has no operation that reads a directory: the asynchronous LIST runs it on a thread
 * of its own, blobfs_list_at).
 *
 * Every function does blocking file-system calls (open, write, fsync, rename): call them from
 * thread actors and commands, not from a loop thread. ETags are the hex MD5 of the content in
 * quotes, as S3 gives for a single PUT. A key and a key under it ("a" and "a/b") cannot both
 * exist: the second put fails with -ENOTDIR or -EISDIR. */
#ifndef REELD_BLOB_FS_H
#define REELD_BLOB_FS_H

#include <bearssl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/sigv4.h"

#define BLOBFS_MAX_KEY     1024 /* bytes, as S3 */
#define BLOBFS_MAX_SEGMENT 255  /* bytes between slashes: a file name (NAME_MAX) */
#define BLOBFS_MAX_BUCKET  63

typedef struct blobfs blobfs;

typedef struct blob_info {
    int64_t size;
    char etag[80];          /* "\"<32 hex>\"" */
    char content_type[128]; /* "application/octet-stream" when none was given */
} blob_info;

/* 1 when `bucket` is 3..63 of a-z 0-9 . - starting and ending with a letter or digit, without
 * "..". */
int blobfs_valid_bucket(const char *bucket);

/* 1 when key[0..len) may name a file under a bucket: 1..BLOBFS_MAX_KEY bytes, no NUL, not
 * starting with '/', no empty, "." or ".." segment (a//b, a/./b, ../x, x/..), no segment longer
 * than BLOBFS_MAX_SEGMENT (S3 takes one, a file system does not), no trailing '/',
 * and the same holds for its percent-decoded form (so "%2e%2e/x" is refused too). */
int blobfs_valid_key(const char *key, size_t len);

/* Opens the store under `data_dir`, creating its directories (0700). 0 or -errno with one
 * sentence in `err`. */
int blobfs_open(blobfs **out, const char *data_dir, char *err, size_t errlen);
/* NULL is a no-op. */
void blobfs_close(blobfs *fs);

/* Writes an object whose bytes arrive in pieces (a presigned PUT's body). */
typedef struct blobfs_writer {
    blobfs *fs;
    int fd;             /* the temp file; -1 when none */
    uint64_t len;       /* bytes written so far */
    br_md5_context md5; /* of the bytes so far */
    char bucket[BLOBFS_MAX_BUCKET + 1];
    char key[BLOBFS_MAX_KEY + 1];
    char content_type[128];
    char tmp[PATH_MAX]; /* the temp file's path */
} blobfs_writer;

/* Starts writing bucket/key. Returns 0 (then `w` owns a temp file until commit or abort),
 * -EINVAL for a bad bucket, key or content type, or -errno. */
int blobfs_write_begin(blobfs *fs, const char *bucket, const char *key, const char *content_type,
                       blobfs_writer *w);
/* Appends bytes. 0 or -errno (then abort). */
int blobfs_write(blobfs_writer *w, const void *data, size_t len);
/* Makes the object visible, durable (fsync), with its metadata; fills `info` if non-NULL.
 * 0 or -errno; `w` is finished either way. */
int blobfs_write_commit(blobfs_writer *w, blob_info *info);
/* Drops the temp file. A finished writer is a no-op. */
void blobfs_write_abort(blobfs_writer *w);

/* Whole-object conveniences. 0, -EINVAL (bad names), -ENOENT, or -errno. */
int blobfs_put(blobfs *fs, const char *bucket, const char *key, const void *data, size_t len,
               const char *content_type, blob_info *info);
int blobfs_head(blobfs *fs, const char *bucket, const char *key, blob_info *info);
/* Opens the object for reading (a GET to stream with sendfile or io_uring reads). Returns the
 * fd (the caller's to close) or -errno; fills `info`. */
int blobfs_open_read(blobfs *fs, const char *bucket, const char *key, blob_info *info);
/* Calls fn for every key of `bucket` starting with `prefix`, in no particular order; fn returns
 * 0 to go on. 0, -ENOENT for a missing bucket, or what fn returned. */
int blobfs_list(blobfs *fs, const char *bucket, const char *prefix,
                int (*fn)(void *ctx, const char *key, int64_t size), void *ctx);
/* blobfs_list in the objects' tree opened as `objects_fd` (the asynchronous store's, which
 * walks it on a thread of its own). */
int blobfs_list_at(int objects_fd, const char *bucket, const char *prefix,
                   int (*fn)(void *ctx, const char *key, int64_t size), void *ctx);

/* A presigned request to /blob/{bucket}/{key}: the path as received (percent-encoded, no
 * query) is split and decoded into `bucket` and `key` (buffers of BLOBFS_MAX_BUCKET + 1 and
 * BLOBFS_MAX_KEY + 1 bytes), both validated, then the signature is checked with sigv4_verify.
 * Returns 0, -EINVAL (not /blob/{bucket}/{key}, or a name refused), or sigv4_verify's result
 * (-EACCES, -EKEYEXPIRED, ...): answer 400 for -EINVAL, 403 otherwise. The HTTP handler then
 * streams a PUT body through blobfs_write_*, or answers GET/HEAD with blobfs_open_read. */
int blobfs_presigned_check(sigv4_key_cache *cache, const sigv4_credentials *cred, int64_t now,
                           const sigv4_incoming *in, char *bucket, char *key);

#endif
