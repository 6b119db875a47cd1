/* The XML documents of S3 bucket configuration that `reeld buckets init` writes (CreateBucket's
 * location, CORS, lifecycle, Object Lock) and a canonical form to compare what a bucket has with
 * what it should have.
 *
 * owns:  nothing; output goes into the caller's buffers.
 * never: does I/O, allocates, or reads the clock.
 *
 * Comparing: servers answer a GetBucketCors (and the others) with the document they were given,
 * but re-serialised: a namespace added, elements reordered, empty ones dropped or added. The
 * canonical form makes two documents equal when they say the same thing: one line
 * "Path/To/Leaf=text" per element without child elements, entities decoded, surrounding white
 * space trimmed, leaves with empty text left out, namespace prefixes and attributes ignored, and
 * the lines sorted. The children of the root element are numbered by name
 * ("CORSConfiguration/CORSRule[2]/AllowedOrigin=..."), so that the leaves of two rules are not
 * mixed up, while the order of leaves inside one rule (origins, methods) does not count. */
#ifndef REELD_PROTO_S3_BUCKET_H
#define REELD_PROTO_S3_BUCKET_H

#include <stddef.h>

#define S3BUCKET_MAX_DOC    16384 /* bytes of a document built or canonicalised */
#define S3BUCKET_MAX_LEAVES 512   /* leaves of a document canonicalised */
#define S3BUCKET_MAX_DEPTH  16    /* nesting of elements */

/* The staging bucket's CORS rule, for a browser that PUTs a file (or its parts) to a presigned
 * URL with a Content-Type and reads back the ETag: AllowedOrigin for each origin of the
 * comma-separated `origins` (white space around each trimmed; "*" allowed), AllowedMethod PUT,
 * GET and HEAD, AllowedHeader content-type, ExposeHeader ETag, MaxAgeSeconds `max_age`.
 * Returns the document's length, -EINVAL when `origins` names none or one holds a control
 * character, or -ENOSPC. */
int s3bucket_cors_xml(char *out, size_t cap, const char *origins, int max_age);

/* A lifecycle configuration of one rule, ID `id`, over every object: incomplete multipart
 * uploads aborted `abort_days` after they began, and, when `expire_days` > 0, objects deleted
 * that many days after they were written. Returns the length, -EINVAL (abort_days < 1, an id
 * with characters other than letters, digits, '-', '_', '.'), or -ENOSPC. */
int s3bucket_lifecycle_xml(char *out, size_t cap, const char *id, int abort_days, int expire_days);

/* An Object Lock configuration: enabled, with a default retention of `days` days in `mode`
 * ("COMPLIANCE" or "GOVERNANCE", any case). Returns the length, -EINVAL, or -ENOSPC. */
int s3bucket_object_lock_xml(char *out, size_t cap, const char *mode, int days);

/* CreateBucket's body for `region`: a CreateBucketConfiguration naming it, or nothing (0) for
 * us-east-1, the one region where S3 wants no LocationConstraint. Returns the length, -EINVAL (a
 * region with characters other than letters, digits and '-'), or -ENOSPC. */
int s3bucket_create_xml(char *out, size_t cap, const char *region);

/* The canonical form of xml[0..len) (see above) into `out`: the sorted lines, each ending in
 * '\n', NUL-terminated. Returns its length, -EINVAL when the XML is not well-formed as far as
 * this reader can tell (a mismatched or unclosed element, nothing but a prolog), or -E2BIG
 * (over S3BUCKET_MAX_DOC bytes of lines, S3BUCKET_MAX_LEAVES leaves, S3BUCKET_MAX_DEPTH
 * levels, or a `cap` too small). Uses about 30 KiB of stack. */
int s3bucket_canon(const char *xml, size_t len, char *out, size_t cap);

#endif
