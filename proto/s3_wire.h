/* What S3 says besides bytes: XML error documents and the few XML elements the client reads
 * (UploadId, ETag), the retry policy (which failures to retry, how long to wait), and the HTTP
 * date of a response (to correct clock skew).
 *
 * owns:  nothing; output goes into the caller's buffers.
 * never: does I/O, allocates, or reads the clock or a random source (callers pass them in).
 *
 * The XML reader is not a general parser: it finds the first <Name>text</Name> element and
 * decodes the five predefined entities and numeric character references in its text, which is
 * all S3's error and multipart documents need. */
#ifndef REELD_PROTO_S3_WIRE_H
#define REELD_PROTO_S3_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define S3WIRE_MAX_ATTEMPTS 5    /* tries of one request, the first included */
#define S3WIRE_BACKOFF_BASE 100  /* ms: the cap of the first retry's delay */
#define S3WIRE_BACKOFF_MAX  5000 /* ms: the largest cap */

/* The text of the first element <name>…</name> in xml[0..len), entities decoded and control
 * characters turned into spaces, into `out` (cap bytes, NUL-terminated, cut to fit). Returns
 * its length, or -ENOENT when absent. */
int s3wire_xml_text(const char *xml, size_t len, const char *name, char *out, size_t cap);

/* The text xml[0..len) of an element with its entities (the five predefined ones, numeric
 * character references) decoded and control characters turned into spaces, into `out` (cap
 * bytes, NUL-terminated, cut to fit). Returns the length written. */
int s3wire_xml_decode(const char *xml, size_t len, char *out, size_t cap);

/* An S3 error document: <Error><Code>…</Code><Message>…</Message></Error>. */
typedef struct s3wire_error {
    char code[64];     /* "NoSuchKey", "SignatureDoesNotMatch"; "" when none */
    char message[256]; /* the service's message; "" when none */
} s3wire_error;

/* Fills `e` from an error body. Returns 0, or -ENOENT when the body holds no <Error> element
 * (then `e` is empty). */
int s3wire_parse_error(const char *xml, size_t len, s3wire_error *e);

/* One sentence for a failed request, into `out`: "S3 PUT bucket/key failed: 403
 * SignatureDoesNotMatch: The request signature we calculated does not match...". `status` 0
 * means no response arrived and `err` (a negative errno) says why. Returns the length. */
int s3wire_describe(char *out, size_t cap, const char *method, const char *bucket, const char *key,
                    int status, const s3wire_error *e, int err);

/* 1 when a failed attempt may be retried: a connection error (reset, refused, timeout, closed
 * early), any 5xx, 429, or the codes SlowDown, RequestTimeout, RequestTimeTooSkewed,
 * InternalError. `status` 0 means no response and `err` the errno. */
int s3wire_retryable(int status, const char *code, int err);

/* The delay before retry number `attempt` (1 for the first retry): "full jitter", a uniform
 * draw from [0, min(S3WIRE_BACKOFF_MAX, S3WIRE_BACKOFF_BASE * 2^(attempt-1))] ms, taken from
 * the caller's random 32-bit `rnd`. */
uint32_t s3wire_backoff_ms(int attempt, uint32_t rnd);

/* Parses an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT", the IMF-fixdate) into seconds since
 * the epoch. Returns 0 or -EINVAL. */
int s3wire_parse_http_date(const char *s, size_t len, int64_t *t);

/* Parses an ISO 8601 UTC date-time as S3 writes them (Object Lock's RetainUntilDate, HEAD's
 * x-amz-object-lock-retain-until-date): "2026-11-22T11:00:00Z", with optional fractions of a
 * second (dropped) and "Z" or "+00:00". Into seconds since the epoch; 0 or -EINVAL. */
int s3wire_parse_iso8601(const char *s, size_t len, int64_t *t);

/* Formats `t` as ISO 8601 UTC, "2026-11-22T11:00:00Z" (Object Lock retain-until dates), into
 * `out` (at least 21 bytes). Returns 0 or -ERANGE. */
int s3wire_iso8601(int64_t t, char *out, size_t cap);

#endif
