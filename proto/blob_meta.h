/* The fs blob backends' metadata file (DATA_DIR/blobs.meta/{bucket}/{key}): the object's ETag
 * and content type, one line each: "\"<32 hex MD5>\"\n<content type>\n". Written and read by
 * src/blob/aio_fs.c (io_uring); one format, one parser.
 *
 * Pure: no I/O, no allocation. */
#ifndef REELD_PROTO_BLOB_META_H
#define REELD_PROTO_BLOB_META_H

#include <stddef.h>
#include <stdint.h>

#define BLOB_META_MAX          256 /* bytes of a metadata file, at most */
#define BLOB_META_DEFAULT_TYPE "application/octet-stream"

/* Writes the file's text for `md5` (16 bytes) and `content_type` (no CR or LF) into out[0..cap)
 * (BLOB_META_MAX is enough). Returns its length, or -ENOSPC. */
int blob_meta_format(char *out, size_t cap, const uint8_t md5[16], const char *content_type);

/* Reads text[0..n) (what the file held; not terminated): the first line into etag (cut to
 * etag_cap - 1 bytes), the second into content_type (cut likewise; BLOB_META_DEFAULT_TYPE when
 * missing or empty). A text without a first line break gives "" and the default: a file cut
 * short by a crash is treated as no metadata. Both outputs are always terminated. */
void blob_meta_parse(const char *text, size_t n, char *etag, size_t etag_cap, char *content_type,
                     size_t type_cap);

#endif
