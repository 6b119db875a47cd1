/* AWS Signature Version 4 as S3 speaks it: signing requests (Authorization header), presigning
 * URLs (X-Amz-* query parameters), and verifying presigned URLs for the embedded blob server.
 *
 * owns:  nothing. The signing-key cache is the caller's state (sigv4_key_cache below): one per
 *        thread or actor, never shared without the caller's own exclusion. Output goes into the
 *        caller's buffers; scratch lives on the stack, bounded by the SIGV4_MAX_* limits (about
 *        32 KiB at most, in sigv4_verify).
 * never: does I/O or reads the clock (callers pass `now`), allocates, or normalizes paths (S3
 *        keys are taken literally: "a//b/./c" stays as it is).
 *
 * Encoding is S3's: A-Z a-z 0-9 - . _ ~ are kept, '/' is kept in paths, every other byte (space,
 * '+', '$', each byte of UTF-8) becomes %XX in uppercase hex. Strings handed in are raw
 * (not encoded); this module encodes them once. Query parameters are sorted by encoded name,
 * then encoded value. Header names are lowercased and sorted; values are trimmed and inner runs
 * of spaces folded to one; repeated names are joined with ',' in the order given. */
#ifndef REELD_PROTO_SIGV4_H
#define REELD_PROTO_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "proto/hmac.h"

#define SIGV4_ALGORITHM        "AWS4-HMAC-SHA256"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_DATE_LEN         16     /* "20130524T000000Z" */
#define SIGV4_MAX_EXPIRES      604800 /* seven days: the longest S3 accepts */
#define SIGV4_MAX_SKEW         900    /* seconds a request's X-Amz-Date may be ahead of us */

#define SIGV4_MAX_PARAMS       32   /* query parameters, the X-Amz-* ones included */
#define SIGV4_MAX_HEADERS      32   /* signed headers */
#define SIGV4_MAX_SCOPE        128  /* "date/region/service/aws4_request" */
#define SIGV4_MAX_SECRET       128  /* secret access key length */
#define SIGV4_MAX_CANON        8192 /* canonical request, and each scratch area */

/* A name and value, both NUL-terminated and not encoded. */
typedef struct sigv4_pair {
    const char *name;
    const char *value;
} sigv4_pair;

/* Who signs, and for what. Strings are borrowed for the duration of each call. */
typedef struct sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *region;  /* "us-east-1" */
    const char *service; /* "s3" */
} sigv4_credentials;

/* The signing key of the last day/region/service/secret asked for, as a ready HMAC key. Deriving
 * it takes four HMACs; a cache hit takes none. Caller-owned: zero it before first use
 * (sigv4_key_cache c = {0};) and call sigv4_key_cache_clear() when done, since it holds a copy
 * of the secret and a key derived from it. Not thread-safe: one cache per thread or actor. */
typedef struct sigv4_key_cache {
    int valid;                   /* 1 once a key has been derived */
    char scope[SIGV4_MAX_SCOPE]; /* "20130524/us-east-1/s3/aws4_request" */
    char secret[SIGV4_MAX_SECRET + 1];
    hmac_key key; /* HMAC key = the SigV4 signing key */
} sigv4_key_cache;

/* What a canonical request is built from. */
typedef struct sigv4_request {
    const char *method;      /* "GET", "PUT", as sent */
    const char *path;        /* not encoded, from the first '/': "/bucket/my key.mp4" */
    const sigv4_pair *query; /* not encoded, any order; may be NULL when nquery is 0 */
    size_t nquery;
    const sigv4_pair *headers; /* every signed header, host included; any case and order */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body, or SIGV4_UNSIGNED_PAYLOAD */
} sigv4_request;

/* Zeroes the cache, secret and derived key included. NULL is a no-op. */
void sigv4_key_cache_clear(sigv4_key_cache *cache);

/* Writes `t` (seconds since the epoch, UTC) as "YYYYMMDDTHHMMSSZ" and a NUL into `out`. Returns
 * 0, or -ERANGE for a time outside years 1970..9999. */
int sigv4_format_date(int64_t t, char out[SIGV4_DATE_LEN + 1]);

/* Parses exactly "YYYYMMDDTHHMMSSZ" (len 16) into seconds since the epoch. Returns 0, or -EINVAL
 * when the text is not such a date (month 13, second 61, February 30, ...). */
int sigv4_parse_date(const char *s, size_t len, int64_t *t);

/* S3 URI encoding of src[0..len) into `dst` (cap bytes, NUL-terminated); '/' is kept when
 * `keep_slash`. Returns the encoded length, or -ENOSPC when it and the NUL do not fit. */
int sigv4_uri_encode(char *dst, size_t cap, const char *src, size_t len, int keep_slash);

/* Lowercased signed-header names joined by ';' ("host;range;x-amz-date") into `out`. Returns the
 * length, -ENOSPC, or -E2BIG past SIGV4_MAX_HEADERS. */
int sigv4_signed_headers(char *out, size_t cap, const sigv4_pair *headers, size_t n);

/* The canonical request of `req` into `out`: method, encoded path, sorted query, canonical
 * headers, signed headers, payload hash, joined by '\n'. Returns the length, -ENOSPC when `out`
 * or a scratch area is too small, -E2BIG past SIGV4_MAX_PARAMS/HEADERS, -EINVAL when a field is
 * missing or the path does not start with '/'. */
int sigv4_canonical_request(char *out, size_t cap, const sigv4_request *req);

/* "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex SHA-256 of the canonical request>" into `out`.
 * Returns the length or -ENOSPC. */
int sigv4_string_to_sign(char *out, size_t cap, const char *amz_date, const char *scope,
                         const char *canonical, size_t canonical_len);

/* The credential scope of `amz_date`'s day: "20130524/us-east-1/s3/aws4_request". Returns the
 * length, -ENOSPC, or -EINVAL when amz_date is shorter than 8 characters. */
int sigv4_scope(char *out, size_t cap, const char *amz_date, const sigv4_credentials *cred);

/* The signing key for `amz_date`'s day: from `cache` when it holds that day, region, service
 * and secret, else derived and stored there. Sets *key to the cache's key (valid until the
 * cache's next use). Returns 0 or -EINVAL (a field missing or over its SIGV4_MAX_* bound). */
int sigv4_signing_key(sigv4_key_cache *cache, const sigv4_credentials *cred, const char *amz_date,
                      const hmac_key **key);

/* Signs `req` as is: its headers must already include host and x-amz-date (amz_date), and for S3
 * x-amz-content-sha256. Writes the value of the Authorization header into `out`:
 * "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=<64 hex>" (one line). Returns its length or -errno as
 * sigv4_canonical_request() and sigv4_signing_key() do. */
int sigv4_authorization(sigv4_key_cache *cache, const sigv4_credentials *cred, const char *amz_date,
                        const sigv4_request *req, char *out, size_t cap);

/* Headers to add to a request signed by sigv4_sign_headers(). */
typedef struct sigv4_signed {
    char amz_date[SIGV4_DATE_LEN + 1];        /* X-Amz-Date */
    char content_sha256[HMAC_SHA256_HEX + 1]; /* x-amz-content-sha256 (the payload hash) */
    char authorization[512];                  /* Authorization */
} sigv4_signed;

/* S3 header signing at time `now`: signs host, x-amz-content-sha256 (payload_hash, NULL meaning
 * SIGV4_UNSIGNED_PAYLOAD), x-amz-date and the `extra` headers (may be NULL when nextra is 0),
 * over `method`, `path` and `query` as in sigv4_request. The caller sends the three headers in
 * `out` along with host and the extra ones. Returns 0 or -errno as sigv4_authorization(). */
int sigv4_sign_headers(sigv4_key_cache *cache, const sigv4_credentials *cred, int64_t now,
                       const char *host, const sigv4_request *req, const sigv4_pair *extra,
                       size_t nextra, sigv4_signed *out);

/* Presigns `req` at time `now` for `expires` seconds (1..SIGV4_MAX_EXPIRES). req->headers lists
 * the signed headers (at least host); req->payload_hash NULL means SIGV4_UNSIGNED_PAYLOAD.
 * Writes the encoded path and query into `out`, as botocore orders it: the request's own
 * parameters in the order given, then X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
 * X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature:
 *   /test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...&X-Amz-Signature=aeee...
 * The caller puts scheme and host in front. Returns the length, -EINVAL for a bad `expires` or
 * a request that already carries one of the six X-Amz-* parameters presigning adds, or -errno as
 * sigv4_authorization(). */
int sigv4_presign(sigv4_key_cache *cache, const sigv4_credentials *cred, int64_t now,
                  int64_t expires, const sigv4_request *req, char *out, size_t cap);

/* An incoming presigned request, as slices of the received bytes. */
typedef struct sigv4_incoming {
    const char *method; /* "GET" */
    size_t method_len;
    const char *path; /* percent-encoded, as on the request line, without the '?' */
    size_t path_len;
    const char *query; /* after the '?', percent-encoded; may be NULL when query_len 0 */
    size_t query_len;
    const char *host; /* value of the Host header */
    size_t host_len;
    const sigv4_pair *headers; /* other headers received, looked up when signed; may be NULL */
    size_t nheaders;
} sigv4_incoming;

/* Verifies a presigned request against `cred` at time `now`. Returns:
 *   0             signature good, within its validity window;
 *   -EINVAL       malformed: an X-Amz-* parameter missing, repeated or unparseable, another
 *                 algorithm, X-Amz-Expires outside 1..SIGV4_MAX_EXPIRES, the credential's day
 *                 not X-Amz-Date's, host not signed, a signed header absent, bad encoding;
 *   -EKEYREJECTED the credential names another access key, region or service;
 *   -EAGAIN       X-Amz-Date more than SIGV4_MAX_SKEW seconds ahead of `now` (not valid yet);
 *   -EKEYEXPIRED  X-Amz-Date + X-Amz-Expires is before `now`;
 *   -EACCES       the signature does not match (compared in constant time);
 *   -E2BIG/-ENOSPC more parameters or bytes than the SIGV4_MAX_* bounds. */
int sigv4_verify(sigv4_key_cache *cache, const sigv4_credentials *cred, int64_t now,
                 const sigv4_incoming *in);

/* One sentence for a sigv4_verify() result, for logs and error bodies. */
const char *sigv4_strerror(int err);

#endif
