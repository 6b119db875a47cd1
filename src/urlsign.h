/* Presigned URLs for clients: where they upload and download objects, signed with the keys that
 * the object storage (S3 mode) or reeld itself (embedded mode, /blob/) will check.
 *
 * owns:  the credentials it signs with (the configured S3 keys, or the embedded pair from
 *        src/blob/localkey.h), and a SigV4 signing-key cache (so: urlsign_url with one urlsign
 *        per actor or thread; threads sharing one sign through urlsign_url_keyed, each with its
 *        own cache). urlsign_clear zeroes them.
 * never: logs a secret or a signature; does I/O after urlsign_init (which may read or create
 *        the embedded seed file). */
#ifndef REELD_URLSIGN_H
#define REELD_URLSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "proto/sigv4.h"
#include "src/blob/fs.h"
#include "src/blob/localkey.h"
#include "src/rt/config.h"

typedef struct urlsign {
    char base[512]; /* "http://127.0.0.1:9000" or "http://127.0.0.1:8080/blob"; no '/' at end */
    char host[256]; /* host[:port] of base, as clients send it in Host */
    sigv4_credentials cred;
    localkey local; /* the embedded pair, when cred points into it */
    sigv4_key_cache cache;
} urlsign;

/* From the settings: S3_ENDPOINT when set, else REELD_PUBLIC_URL (or http://REELD_LISTEN) plus
 * "/blob". Credentials: the S3 keys, or in embedded mode those or the pair from the data
 * directory. 0, or -errno with one sentence in `err`. */
int urlsign_init(urlsign *u, const rd_config *cfg, char *err, size_t errlen);

/* Zeroes the credentials and the key cache. NULL is a no-op. */
void urlsign_clear(urlsign *u);

/* A presigned URL for `method` on bucket/key (raw, not encoded), with extra query parameters
 * (partNumber, uploadId; may be NULL when nquery is 0), valid `expires` seconds from `now`,
 * into out. `length` >= 0 signs the Content-Length too (SignedHeaders=content-length;host), so
 * the URL takes a body of exactly that many bytes, as S3 and the embedded /blob/ both check;
 * -1 leaves it free. Returns its length, or -errno as sigv4_presign (-ENOSPC, -EINVAL). */
int urlsign_url(urlsign *u, const char *method, const char *bucket, const char *key,
                const sigv4_pair *query, size_t nquery, int64_t now, int64_t expires,
                int64_t length, char *out, size_t cap);
/* urlsign_url with the signing-key cache `cache` instead of the signer's own: one signer (its
 * settings are read only) may then sign on several threads, each with a cache of its own. */
int urlsign_url_keyed(const urlsign *u, sigv4_key_cache *cache, const char *method,
                      const char *bucket, const char *key, const sigv4_pair *query, size_t nquery,
                      int64_t now, int64_t expires, int64_t length, char *out, size_t cap);

#endif
