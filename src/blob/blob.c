/* The blob interface over its two backends. See blob.h.
 *
 * The backends differ enough (file-system calls against an asynchronous client on a loop) that
 * a table of function pointers would only forward; each call switches on the kind instead. */
#include "src/blob/blob.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/s3_wire.h"
#include "src/rt/alloc.h"

struct blob_store {
    blobfs *fs;    /* fs backend, or NULL */
    s3_client *s3; /* s3 backend (borrowed), or NULL */
    uint64_t multipart_threshold, part_size;
    uint64_t copy_part_max; /* copies above go in UploadPartCopy parts of this */
};

int blob_open_fs(blob_store **out, const char *data_dir, char *err, size_t errlen)
{
    blobfs *fs;
    int r = blobfs_open(&fs, data_dir, err, errlen);
    if (r < 0)
        return r;
    blob_store *b = rd_calloc(1, sizeof(*b), "the blob store");
    b->fs = fs;
    *out = b;
    return 0;
}

int blob_open_s3(blob_store **out, s3_client *client)
{
    blob_store *b = rd_calloc(1, sizeof(*b), "the blob store");
    b->s3 = client;
    b->multipart_threshold = BLOB_MULTIPART_MIN;
    b->part_size = BLOB_PART_SIZE;
    b->copy_part_max = BLOB_COPY_MAX;
    *out = b;
    return 0;
}

void blob_set_parts(blob_store *b, uint64_t threshold, uint64_t part_size)
{
    assert(part_size >= (5u << 20));
    b->multipart_threshold = threshold;
    b->part_size = part_size;
}

void blob_close(blob_store *b)
{
    if (b == NULL)
        return;
    blobfs_close(b->fs);
    free(b);
}

const char *blob_kind(const blob_store *b)
{
    return b->fs ? "fs" : "s3";
}

/* One sentence for an fs failure. */
static int fs_result(int r, const char *what, const char *bucket, const char *key, char *msg,
                     size_t msglen)
{
    if (r >= 0 || msg == NULL)
        return r < 0 ? r : 0;
    if (r == -EINVAL)
        snprintf(msg, msglen, "%s %s/%s refused: bucket or key is not a safe name.", what, bucket,
                 key);
    else if (r == -ENOENT)
        snprintf(msg, msglen, "%s %s/%s failed: no such object.", what, bucket, key);
    else
        snprintf(msg, msglen, "%s %s/%s failed: %s.", what, bucket, key, strerror(-r));
    return r;
}

static int s3_result(s3_op *op, int r, blob_info *info, char *msg, size_t msglen)
{
    if (r < 0) {
        if (msg != NULL)
            snprintf(msg, msglen, "%s", op->message);
        return r;
    }
    if (info != NULL) {
        info->size = op->object_size >= 0 ? op->object_size : (int64_t)op->body_len;
        snprintf(info->etag, sizeof(info->etag), "%s", op->etag);
        snprintf(info->content_type, sizeof(info->content_type), "%s", op->content_type_out);
    }
    return 0;
}

int blob_put(blob_store *b, const char *bucket, const char *key, const void *data, size_t len,
             const char *content_type, blob_info *info, char *msg, size_t msglen)
{
    if (b->fs)
        return fs_result(blobfs_put(b->fs, bucket, key, data, len, content_type, info), "PUT",
                         bucket, key, msg, msglen);
    s3_op op = {.method = S3_PUT,
                .bucket = bucket,
                .key = key,
                .body = data,
                .body_len = len,
                .content_type = content_type};
    int r = s3_result(&op, s3_call(b->s3, &op), info, msg, msglen);
    if (r == 0 && info != NULL) {
        info->size = (int64_t)len;
        snprintf(info->content_type, sizeof(info->content_type), "%s",
                 content_type ? content_type : "");
    }
    return r;
}

static int s3_multipart(blob_store *b, const char *bucket, const char *key, int fd, uint64_t size,
                        const char *content_type, blob_info *info, char *msg, size_t msglen)
{
    s3_op op = {
        .method = S3_MPU_CREATE, .bucket = bucket, .key = key, .content_type = content_type};
    if (s3_call(b->s3, &op) < 0)
        return s3_result(&op, op.res, NULL, msg, msglen);
    char upload_id[sizeof(op.upload_id_out)];
    snprintf(upload_id, sizeof(upload_id), "%s", op.upload_id_out);
    uint64_t part = b->part_size;
    size_t nparts = size ? (size_t)((size + part - 1) / part) : 1;
    s3_part *parts = rd_calloc(nparts, sizeof(*parts), "multipart part list");
    int r = 0;
    for (size_t i = 0; i < nparts && r == 0; i++) {
        uint64_t off = i * part;
        op = (s3_op){.method = S3_MPU_PART,
                     .bucket = bucket,
                     .key = key,
                     .upload_id = upload_id,
                     .part_number = (int)i + 1,
                     .from_file = 1,
                     .body_fd = fd,
                     .file_off = (int64_t)off,
                     .file_len = size - off < part ? size - off : part};
        r = s3_result(&op, s3_call(b->s3, &op), NULL, msg, msglen);
        parts[i].number = (int)i + 1;
        snprintf(parts[i].etag, sizeof(parts[i].etag), "%s", op.etag);
    }
    if (r == 0) {
        op = (s3_op){.method = S3_MPU_COMPLETE,
                     .bucket = bucket,
                     .key = key,
                     .upload_id = upload_id,
                     .parts = parts,
                     .nparts = nparts};
        r = s3_result(&op, s3_call(b->s3, &op), info, msg, msglen);
    }
    if (r < 0) {
        s3_op abort_op = {
            .method = S3_MPU_ABORT, .bucket = bucket, .key = key, .upload_id = upload_id};
        s3_call(b->s3, &abort_op);
    } else if (info != NULL) {
        info->size = (int64_t)size;
    }
    free(parts);
    return r;
}

int blob_put_file(blob_store *b, const char *bucket, const char *key, const char *path,
                  const char *content_type, blob_info *info, char *msg, size_t msglen)
{
    if (b->fs)
        return fs_result(blobfs_put_file(b->fs, bucket, key, path, content_type, info), "PUT",
                         bucket, key, msg, msglen);
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
    int r;
    if ((uint64_t)st.st_size > b->multipart_threshold) {
        r = s3_multipart(b, bucket, key, fd, (uint64_t)st.st_size, content_type, info, msg, msglen);
    } else {
        s3_op op = {.method = S3_PUT,
                    .bucket = bucket,
                    .key = key,
                    .from_file = 1,
                    .body_fd = fd,
                    .file_len = (uint64_t)st.st_size,
                    .content_type = content_type};
        r = s3_result(&op, s3_call(b->s3, &op), info, msg, msglen);
        if (r == 0 && info != NULL)
            info->size = st.st_size;
    }
    close(fd);
    return r;
}

int blob_get_range(blob_store *b, const char *bucket, const char *key, uint64_t offset, void *buf,
                   size_t len, size_t *got, char *msg, size_t msglen)
{
    if (b->fs)
        return fs_result(blobfs_get_range(b->fs, bucket, key, offset, buf, len, got), "GET", bucket,
                         key, msg, msglen);
    return s3_get_range(b->s3, bucket, key, offset, buf, len, got, msg, msglen);
}

int blob_head(blob_store *b, const char *bucket, const char *key, blob_info *info, char *msg,
              size_t msglen)
{
    if (b->fs)
        return fs_result(blobfs_head(b->fs, bucket, key, info), "HEAD", bucket, key, msg, msglen);
    s3_op op = {.method = S3_HEAD, .bucket = bucket, .key = key};
    return s3_result(&op, s3_call(b->s3, &op), info, msg, msglen);
}

int blob_delete(blob_store *b, const char *bucket, const char *key, char *msg, size_t msglen)
{
    if (b->fs)
        return fs_result(blobfs_delete(b->fs, bucket, key), "DELETE", bucket, key, msg, msglen);
    s3_op op = {.method = S3_DELETE, .bucket = bucket, .key = key};
    return s3_result(&op, s3_call(b->s3, &op), NULL, msg, msglen);
}

int blob_has_uploads(const blob_store *b)
{
    return b->s3 != NULL;
}

int blob_upload_start(blob_store *b, const char *bucket, const char *key, const char *content_type,
                      char *upload_id, size_t cap, char *msg, size_t msglen)
{
    if (b->fs)
        return fs_result(-ENOTSUP, "multipart upload", bucket, key, msg, msglen);
    s3_op op = {
        .method = S3_MPU_CREATE, .bucket = bucket, .key = key, .content_type = content_type};
    int r = s3_result(&op, s3_call(b->s3, &op), NULL, msg, msglen);
    if (r == 0 && (size_t)snprintf(upload_id, cap, "%s", op.upload_id_out) >= cap) {
        if (msg != NULL)
            snprintf(msg, msglen, "the storage's upload id is longer than %zu bytes", cap - 1);
        r = -ENAMETOOLONG;
    }
    return r;
}

int blob_upload_complete(blob_store *b, const char *bucket, const char *key, const char *upload_id,
                         const s3_part *parts, size_t nparts, char *msg, size_t msglen)
{
    if (b->fs)
        return fs_result(-ENOTSUP, "multipart upload", bucket, key, msg, msglen);
    s3_op op = {.method = S3_MPU_COMPLETE,
                .bucket = bucket,
                .key = key,
                .upload_id = upload_id,
                .parts = parts,
                .nparts = nparts};
    return s3_result(&op, s3_call(b->s3, &op), NULL, msg, msglen);
}

int blob_upload_abort(blob_store *b, const char *bucket, const char *key, const char *upload_id,
                      char *msg, size_t msglen)
{
    if (b->fs)
        return 0;
    s3_op op = {.method = S3_MPU_ABORT, .bucket = bucket, .key = key, .upload_id = upload_id};
    int r = s3_result(&op, s3_call(b->s3, &op), NULL, msg, msglen);
    return r == -ENOENT ? 0 : r;
}

int blob_delete_unless_retained(blob_store *b, const char *bucket, const char *key, int64_t *until,
                                char *msg, size_t msglen)
{
    if (until != NULL)
        *until = 0;
    if (b->fs)
        return blob_delete(b, bucket, key, msg, msglen);
    s3_op h = {.method = S3_HEAD, .bucket = bucket, .key = key};
    int r = s3_result(&h, s3_call(b->s3, &h), NULL, msg, msglen);
    if (r < 0)
        return r;
    int64_t t = 0;
    if (h.lock_until_out[0] &&
        s3wire_parse_iso8601(h.lock_until_out, strlen(h.lock_until_out), &t) < 0)
        t = 0; /* a date S3 would not write: as if none (the delete then says why) */
    if (t > (int64_t)time(NULL)) {
        if (until != NULL)
            *until = t;
        return 0;
    }
    s3_op d = {.method = S3_DELETE,
               .bucket = bucket,
               .key = key,
               .version_id = h.version_id_out[0] ? h.version_id_out : NULL};
    return s3_result(&d, s3_call(b->s3, &d), NULL, msg, msglen);
}

int blob_lock_enabled(blob_store *b, const char *bucket, char *msg, size_t msglen)
{
    if (b->fs)
        return -ENOTSUP;
    char doc[4096];
    s3_op op = {
        .method = S3_GET_OBJECT_LOCK, .bucket = bucket, .resp = doc, .resp_cap = sizeof(doc)};
    int r = s3_call(b->s3, &op);
    if (r == -ENOENT && strcmp(op.code, "NoSuchBucket") != 0)
        return 0; /* the bucket is there, with no lock configuration */
    if (r < 0)
        return s3_result(&op, r, NULL, msg, msglen);
    char enabled[32] = "";
    s3wire_xml_text(doc, strlen(doc), "ObjectLockEnabled", enabled, sizeof(enabled));
    return strcmp(enabled, "Enabled") == 0;
}

void blob_set_copy_parts(blob_store *b, uint64_t part_max)
{
    b->copy_part_max = part_max < (5u << 20)      ? 5u << 20
                       : part_max > BLOB_COPY_MAX ? BLOB_COPY_MAX
                                                  : part_max;
}

/* A copy of `size` bytes in parts, as S3 requires above 5 GiB: CreateMultipartUpload on the
 * destination (with the retention, when asked), UploadPartCopy per range, Complete; aborted
 * when a part fails, so no half object and no stray upload is left. */
static int copy_in_parts(blob_store *b, const char *src_bucket, const char *src_key,
                         const char *dst_bucket, const char *dst_key, int lock_days,
                         const char *lock_mode, uint64_t size, char *msg, size_t msglen)
{
    uint64_t part = b->copy_part_max;
    if ((size + part - 1) / part > 10000) /* S3's most parts */
        part = (size + 9999) / 10000;
    size_t nparts = (size_t)((size + part - 1) / part);
    s3_op cr = {.method = S3_MPU_CREATE,
                .bucket = dst_bucket,
                .key = dst_key,
                .lock_days = lock_days,
                .lock_mode = lock_mode};
    int r = s3_result(&cr, s3_call(b->s3, &cr), NULL, msg, msglen);
    if (r < 0)
        return r;
    s3_part *parts = rd_calloc(nparts, sizeof(*parts), "the parts of a copy");
    for (size_t i = 0; i < nparts && r == 0; i++) {
        s3_op p = {.method = S3_MPU_PART_COPY,
                   .bucket = dst_bucket,
                   .key = dst_key,
                   .upload_id = cr.upload_id_out,
                   .part_number = (int)i + 1,
                   .copy_bucket = src_bucket,
                   .copy_key = src_key,
                   .range_start = i * part,
                   .range_len = i + 1 < nparts ? part : size - i * part};
        r = s3_result(&p, s3_call(b->s3, &p), NULL, msg, msglen);
        parts[i].number = (int)i + 1;
        snprintf(parts[i].etag, sizeof(parts[i].etag), "%s", p.etag);
    }
    if (r == 0) {
        s3_op done = {.method = S3_MPU_COMPLETE,
                      .bucket = dst_bucket,
                      .key = dst_key,
                      .upload_id = cr.upload_id_out,
                      .parts = parts,
                      .nparts = nparts};
        r = s3_result(&done, s3_call(b->s3, &done), NULL, msg, msglen);
    }
    if (r == 0 && lock_days > 0) {
        /* The upload carried the retention (S3 applies it at Complete); it is set again on the
         * object, since not every S3-compatible store takes it from CreateMultipartUpload. */
        char until[32], doc[256];
        s3wire_iso8601((int64_t)time(NULL) + (int64_t)lock_days * 86400, until, sizeof(until));
        int n = snprintf(doc, sizeof(doc),
                         "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>%s"
                         "</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>",
                         lock_mode ? lock_mode : "COMPLIANCE", until);
        s3_op ret = {.method = S3_PUT_RETENTION,
                     .bucket = dst_bucket,
                     .key = dst_key,
                     .body = doc,
                     .body_len = (size_t)n};
        int e = s3_result(&ret, s3_call(b->s3, &ret), NULL, msg, msglen);
        if (e < 0) {
            free(parts);
            return e; /* Complete has made the object: nothing is left to abort */
        }
    }
    if (r < 0) {
        s3_op ab = {.method = S3_MPU_ABORT,
                    .bucket = dst_bucket,
                    .key = dst_key,
                    .upload_id = cr.upload_id_out};
        s3_call(b->s3, &ab);
    }
    free(parts);
    return r;
}

int blob_copy(blob_store *b, const char *src_bucket, const char *src_key, int64_t src_size,
              const char *dst_bucket, const char *dst_key, int lock_days, const char *lock_mode,
              blob_info *info, char *msg, size_t msglen)
{
    if (b->fs)
        return fs_result(blobfs_copy(b->fs, src_bucket, src_key, dst_bucket, dst_key, info), "COPY",
                         src_bucket, src_key, msg, msglen);
    int r = 0;
    if (src_size < 0) {
        blob_info src;
        if ((r = blob_head(b, src_bucket, src_key, &src, msg, msglen)) < 0)
            return r;
        src_size = src.size;
    }
    if ((uint64_t)src_size > b->copy_part_max) {
        r = copy_in_parts(b, src_bucket, src_key, dst_bucket, dst_key, lock_days, lock_mode,
                          (uint64_t)src_size, msg, msglen);
        if (r == 0 && info != NULL)
            r = blob_head(b, dst_bucket, dst_key, info, msg, msglen);
        return r;
    }
    s3_op op = {.method = S3_COPY,
                .bucket = dst_bucket,
                .key = dst_key,
                .copy_bucket = src_bucket,
                .copy_key = src_key,
                .lock_days = lock_days,
                .lock_mode = lock_mode};
    r = s3_result(&op, s3_call(b->s3, &op), NULL, msg, msglen);
    if (r == 0 && info != NULL)
        r = blob_head(b, dst_bucket, dst_key, info, msg, msglen);
    return r;
}

int blob_list(blob_store *b, const char *bucket, const char *prefix,
              int (*fn)(void *ctx, const char *key, int64_t size), void *ctx, char *msg,
              size_t msglen)
{
    if (b->fs)
        return fs_result(blobfs_list(b->fs, bucket, prefix, fn, ctx), "LIST", bucket,
                         prefix ? prefix : "", msg, msglen);
    /* ListObjectsV2 in pages small enough for the client's kept response (40 keys), each
     * page's keys handed to fn before the next is asked for. */
    char *doc = malloc(BLOB_LIST_DOC), token[1024] = "";
    if (doc == NULL)
        return -ENOMEM;
    int r = 0;
    for (int more = 1; more && r == 0;) {
        s3_op op = {.method = S3_LIST_OBJECTS,
                    .bucket = bucket,
                    .prefix = prefix,
                    .continuation = token[0] ? token : NULL,
                    .max_keys = 40,
                    .resp = doc,
                    .resp_cap = BLOB_LIST_DOC};
        r = s3_call(b->s3, &op);
        if (r < 0) {
            if (msg != NULL)
                snprintf(msg, msglen, "%s", op.message);
            break;
        }
        const char *p = doc, *end = doc + op.resp_len;
        while (r == 0) {
            const char *c = strstr(p, "<Contents>");
            if (c == NULL || c >= end)
                break;
            const char *ce = strstr(c, "</Contents>");
            if (ce == NULL)
                break;
            char key[1100], size[32] = "0";
            if (s3wire_xml_text(c, (size_t)(ce - c), "Key", key, sizeof(key)) > 0) {
                s3wire_xml_text(c, (size_t)(ce - c), "Size", size, sizeof(size));
                r = fn(ctx, key, strtoll(size, NULL, 10));
            }
            p = ce + 11;
        }
        char trunc[8] = "";
        s3wire_xml_text(doc, op.resp_len, "IsTruncated", trunc, sizeof(trunc));
        more = strcmp(trunc, "true") == 0 &&
               s3wire_xml_text(doc, op.resp_len, "NextContinuationToken", token, sizeof(token)) > 0;
    }
    free(doc);
    return r;
}
