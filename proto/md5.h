/* MD5 for S3's Content-MD5 header: the digest of a request body, base64-encoded (RFC 1864).
 * S3 refuses PutBucketCors, PutBucketLifecycleConfiguration and PutObjectLockConfiguration
 * without it (or another checksum). MD5 here is an integrity check of a body on the wire, never
 * a security boundary.
 *
 * owns:  nothing; output goes into the caller's buffers. Over BearSSL's MD5. */
#ifndef REELD_PROTO_MD5_H
#define REELD_PROTO_MD5_H

#include <stddef.h>
#include <stdint.h>

#define MD5_LEN        16 /* bytes of a digest */
#define MD5_BASE64_LEN 24 /* characters of its base64 form, padding included, without the NUL */

/* out = MD5(data[0..len)). */
void md5_digest(const void *data, size_t len, uint8_t out[MD5_LEN]);

/* The value of a Content-MD5 header for data[0..len): standard base64 (RFC 4648 section 4, with
 * padding) of its MD5, NUL-terminated. */
void md5_base64(const void *data, size_t len, char out[MD5_BASE64_LEN + 1]);

#endif
