/* The fs blob backend's layout, and what goes with it but is no request of the asynchronous
 * store (src/blob/aio.h, whose fs backend src/blob/aio_fs.c reads and writes every object):
 * objects as files under DATA_DIR/blobs/{bucket}/{key}, served presigned under
 * /blob/{bucket}/{key} by the blob server (actors/blob_server.c, a loop actor on that store).
 *
 * owns:  the layout (DATA_DIR/blobs/ the objects; DATA_DIR/blobs.meta/ per object its ETag and
 *        content type, one line each, same relative path, proto/blob_meta.h; DATA_DIR/blobs.tmp/
 *        objects and metadata being written, renamed into place once complete, so a reader sees
 *        the old object or the new one, never half of one), made by blobfs_make_layout; the names'
 *        rules (blobfs_valid_bucket, blobfs_valid_key), which both backends apply before any
 *        path or request is built; the presigned URLs' check (blobfs_presigned_check); the walk
 *        of a bucket's directories (blobfs_list_at), which the asynchronous LIST runs on a
 *        thread of its own since io_uring has no operation that reads a directory.
 * never: lets a key leave DATA_DIR/blobs: keys are checked by blobfs_valid_key before any path
 *        is built, and again after percent-decoding; follows a symlink inside the tree (the walk
 *        opens the bucket with openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS and the
 *        directories under it with O_NOFOLLOW, and lists regular files only); logs a signature
 *        or a secret.
 *
 * blobfs_make_layout and blobfs_list_at do blocking file-system calls (mkdir, open, readdir): call
 * them from a thread that may block (the store's opening, the LIST's own thread), not from a
 * loop thread. The checks do no I/O.
 *
 * In this layout an ETag is the hex MD5 of the content in quotes, as S3 gives for a single PUT,
 * and a key and a key under it ("a" and "a/b") cannot both exist: the second PUT fails. */
#ifndef REELD_BLOB_FS_H
#define REELD_BLOB_FS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/sigv4.h"

#define BLOBFS_MAX_KEY     1024 /* bytes, as S3 */
#define BLOBFS_MAX_SEGMENT 255  /* bytes between slashes: a file name (NAME_MAX) */
#define BLOBFS_MAX_BUCKET  63

/* What a PUT or HEAD says of an object (src/blob/blob.h's blocking face and its callers). */
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

/* Makes the layout's directories under `data_dir` (0700, as needed) and checks that each is one
 * (blob_aio_open_fs then opens them for itself). 0 or -errno with one sentence in `err`. */
int blobfs_make_layout(const char *data_dir, char *err, size_t errlen);

/* Calls fn for every key of `bucket` starting with `prefix` (NULL is ""), in no particular
 * order, in the objects' tree opened as `objects_fd` (DATA_DIR/blobs: the asynchronous store's,
 * which walks it on a thread of its own); fn returns 0 to go on. Only the directories on the
 * way to the prefix or under it are opened; only regular files are keys. 0, -EINVAL for a bad
 * bucket, -ENOENT for a missing bucket, another -errno, or what fn returned. */
int blobfs_list_at(int objects_fd, const char *bucket, const char *prefix,
                   int (*fn)(void *ctx, const char *key, int64_t size), void *ctx);

/* A presigned request to /blob/{bucket}/{key}: the path as received (percent-encoded, no
 * query) is split and decoded into `bucket` and `key` (buffers of BLOBFS_MAX_BUCKET + 1 and
 * BLOBFS_MAX_KEY + 1 bytes), both validated, then the signature is checked with sigv4_verify.
 * Returns 0, -EINVAL (not /blob/{bucket}/{key}, or a name refused), or sigv4_verify's result
 * (-EACCES, -EKEYEXPIRED, ...): answer 400 for -EINVAL, 403 otherwise. The blob server then
 * serves the request through the asynchronous store (src/blob/aio.h). */
int blobfs_presigned_check(sigv4_key_cache *cache, const sigv4_credentials *cred, int64_t now,
                           const sigv4_incoming *in, char *bucket, char *key);

#endif
