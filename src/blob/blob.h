/* Object storage for the threads that wait: each call one request of the asynchronous store
 * (src/blob/aio.h), started from this thread (it runs on the store's home loop) and waited
 * for. One implementation of each backend, the asynchronous one; this is its blocking face.
 *
 * Who uses it: threads that must block anyway. An FFmpeg AVIOContext reading a source
 * (src/media/source.c: FFmpeg's read callback returns the bytes), the encoder threads between
 * frames, the API's start (a bucket's Object Lock check), and the commands. An actor on a loop
 * uses aio.h directly.
 *
 * owns:  nothing of the store (borrowed: it must outlive this one).
 * never: waits on an event loop's thread (it would hold back the loop's own completions, or
 *        the outbox its request waits in): a call there is refused with -EDEADLK, in every
 *        build; keeps a request after it returns.
 *
 * One call is not an object request of the store and stays here: blob_lock_enabled (a bucket's
 * configuration, on S3 through the home loop's client).
 *
 * Every call returns 0 or -errno: -ENOENT (no such object), -EINVAL (a bucket or key refused),
 * -EACCES (refused by the storage), -ERANGE (read past the end), -EIO (the storage failed after
 * its retries), -ENOTSUP (no such operation on this backend), -EAGAIN (the store's mailbox is
 * full), -ECANCELED (reeld is stopping), -EDEADLK (called on an event loop). A failure also leaves
 * one sentence in `msg` (msglen bytes; may be NULL). */
#ifndef REELD_BLOB_BLOB_H
#define REELD_BLOB_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "src/blob/aio.h"
#include "src/blob/fs.h"
#include "src/blob/s3.h"

typedef struct blob_store blob_store;

/* The blocking face of `aio` (borrowed; its home loop running). Never NULL. */
blob_store *blob_open(blob_aio *aio);
/* NULL is a no-op. */
void blob_close(blob_store *b);
/* "fs" or "s3". */
const char *blob_kind(const blob_store *b);

/* Stores data[0..len) as bucket/key; fills `info` (size, ETag, type) when non-NULL. */
int blob_put(blob_store *b, const char *bucket, const char *key, const void *data, size_t len,
             const char *content_type, blob_info *info, char *msg, size_t msglen);
/* Stores the file at `path` as bucket/key, read as it goes (blob_aio_put_fd: on S3 in parts
 * above the store's threshold, the upload aborted on failure so no part is left behind). */
int blob_put_file(blob_store *b, const char *bucket, const char *key, const char *path,
                  const char *content_type, blob_info *info, char *msg, size_t msglen);
/* Reads up to `len` bytes of bucket/key from `offset` into buf; *got is how many. */
int blob_get_range(blob_store *b, const char *bucket, const char *key, uint64_t offset, void *buf,
                   size_t len, size_t *got, char *msg, size_t msglen);
int blob_head(blob_store *b, const char *bucket, const char *key, blob_info *info, char *msg,
              size_t msglen);
/* Deleting a missing object succeeds, as on S3. */
int blob_delete(blob_store *b, const char *bucket, const char *key, char *msg, size_t msglen);
/* Copies src to dst (a clip's master into masters); `lock_days` > 0 asks S3 for retention that
 * long in `lock_mode` ("GOVERNANCE", or NULL for COMPLIANCE); the fs backend has no retention
 * and ignores both. `src_size`: the source's size when the caller has just read it, else -1
 * (then it is asked for): it says whether one CopyObject may take it or parts are needed
 * (blob_aio_copy). */
int blob_copy(blob_store *b, const char *src_bucket, const char *src_key, int64_t src_size,
              const char *dst_bucket, const char *dst_key, int lock_days, const char *lock_mode,
              blob_info *info, char *msg, size_t msglen);
/* Multipart uploads made by clients (the API hands out presigned part URLs between start and
 * complete). Only the s3 backend has them: blob_has_uploads says so, and the fs backend answers
 * -ENOTSUP to start and complete, 0 to abort (nothing to abort). */
int blob_has_uploads(const blob_store *b);
/* Starts one for bucket/key; its id (S3's UploadId) in upload_id[0..cap), -ENAMETOOLONG when
 * it does not fit. */
int blob_upload_start(blob_store *b, const char *bucket, const char *key, const char *content_type,
                      char *upload_id, size_t cap, char *msg, size_t msglen);
/* Completes it from its parts in order (number, ETag). -ENOENT: no such upload (completed or
 * aborted already). */
int blob_upload_complete(blob_store *b, const char *bucket, const char *key, const char *upload_id,
                         const s3_part *parts, size_t nparts, char *msg, size_t msglen);
/* Aborts it; an upload that is gone already is not an error. */
int blob_upload_abort(blob_store *b, const char *bucket, const char *key, const char *upload_id,
                      char *msg, size_t msglen);
/* Deletes bucket/key for good unless it is under retention: on S3 the current version is
 * named (in a versioned bucket a plain delete would only hide it). A retained object is left
 * and *until (when non-NULL) says until when (Unix seconds); 0 otherwise. */
int blob_delete_unless_retained(blob_store *b, const char *bucket, const char *key, int64_t *until,
                                char *msg, size_t msglen);
/* 1 when bucket has Object Lock enabled, 0 when not, -ENOENT when there is no such bucket,
 * -ENOTSUP on the fs backend (no retention), or another -errno when it cannot be asked. */
int blob_lock_enabled(blob_store *b, const char *bucket, char *msg, size_t msglen);

#endif
